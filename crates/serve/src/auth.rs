//! Bearer tokens with two scopes: `read` (reports, tables, SQL, metrics) and
//! `admin` (anything that changes state; an admin token also reads).
//! Compared in constant time; never logged. With neither token configured
//! the server listens on loopback only and lets every local caller in.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::fail;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Read,
    Admin,
}

#[derive(Clone, Default)]
pub struct Tokens {
    pub read: Option<String>,
    pub admin: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens").field("read", &self.read.is_some()).field("admin", &self.admin.is_some()).finish()
    }
}

impl Tokens {
    /// No token at all: an open server, which must stay on loopback.
    pub fn open(&self) -> bool {
        self.read.is_none() && self.admin.is_none()
    }

    /// The refusal for a request that lacks `scope` (none: let it through).
    pub fn refuse(&self, headers: &HeaderMap, scope: Scope) -> Option<Response> {
        if self.open() {
            return None;
        }
        let given = bearer(headers);
        let is = |t: &Option<String>| matches!((t, given), (Some(t), Some(g)) if same(g.as_bytes(), t.as_bytes()));
        let granted = match (is(&self.admin), is(&self.read)) {
            (true, _) => Some(Scope::Admin),
            (false, true) => Some(Scope::Read),
            _ => None,
        };
        match (granted, scope) {
            (Some(Scope::Admin), _) | (Some(Scope::Read), Scope::Read) => None,
            (Some(Scope::Read), Scope::Admin) => {
                Some(fail(StatusCode::FORBIDDEN, "this needs the admin token; a read token was given".into()))
            }
            (None, _) => {
                let mut resp = fail(
                    StatusCode::UNAUTHORIZED,
                    "missing or wrong bearer token (Authorization: Bearer <token>)".into(),
                );
                resp.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"ingesta\""));
                Some(resp)
            }
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares without stopping at the first difference (no timing hint).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    let len = a.len() == b.len();
    let diff = a.iter().zip(b.iter().cycle()).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    len && diff == 0 && !b.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).unwrap());
        h
    }

    #[test]
    fn scopes() {
        let t = Tokens { read: Some("r".repeat(20)), admin: Some("a".repeat(20)) };
        assert!(t.refuse(&with(&"r".repeat(20)), Scope::Read).is_none());
        assert_eq!(t.refuse(&with(&"r".repeat(20)), Scope::Admin).unwrap().status(), StatusCode::FORBIDDEN);
        assert!(t.refuse(&with(&"a".repeat(20)), Scope::Admin).is_none());
        assert!(t.refuse(&with(&"a".repeat(20)), Scope::Read).is_none());
        assert_eq!(t.refuse(&with("nope"), Scope::Read).unwrap().status(), StatusCode::UNAUTHORIZED);
        assert_eq!(t.refuse(&HeaderMap::new(), Scope::Read).unwrap().status(), StatusCode::UNAUTHORIZED);
        assert!(Tokens::default().refuse(&HeaderMap::new(), Scope::Admin).is_none());
    }
}
