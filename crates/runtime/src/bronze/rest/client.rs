//! GET requests to a REST API: the source's parameters and headers on every
//! request, 429, 5xx and connection errors tried again with backoff (or the
//! server's `Retry-After`), then a passing fault; any other 4xx stops the
//! table. URLs are printed only through [`shown`], which masks every query
//! value and the user info, since a token may be in either.

use std::time::Duration;

use ingesta_config::{Dur, Rest, Retry};
use ingesta_core::Error;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LINK, RETRY_AFTER};
use reqwest::{StatusCode, Url};

/// The longest wait between two tries of one request.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A `Retry-After` longer than this fails the pass instead (tried again at the next one).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    params: Vec<(String, String)>,
    policy: Retry,
}

/// One page as it came.
pub(crate) struct Fetched {
    pub body: Vec<u8>,
    /// The `Link` header's `rel="next"` target.
    pub link: Option<String>,
}

impl Client {
    pub fn new(source: &str, r: &Rest) -> Result<Self, Error> {
        let base = Url::parse(r.url.expose().trim())
            .map_err(|e| Error::stop(format!("source `{source}`: `url` is not a URL ({e})")))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &r.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| Error::stop(format!("source `{source}`: `{k}` is not a header name")))?;
            let mut value = HeaderValue::from_str(v.expose())
                .map_err(|_| Error::stop(format!("source `{source}`: the value of header `{k}` is not valid")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let http =
            reqwest::Client::builder().default_headers(headers).timeout(r.timeout.0).build().map_err(|e| {
                Error::stop(format!("source `{source}`: cannot build an HTTP client: {}", e.without_url()))
            })?;
        let params = r.params.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
        let policy = Retry { attempts: r.attempts, backoff: r.backoff, max_backoff: Dur(MAX_BACKOFF) };
        Ok(Self { http, base, params, policy })
    }

    /// The first page's URL with the source's parameters and `extra`.
    pub fn first(&self, extra: &[(&str, String)]) -> Url {
        self.with(self.base.clone(), extra)
    }

    /// A next link (relative to the first page's URL), with the source's
    /// parameters put back, and `extra`.
    pub fn link(&self, link: &str, extra: &[(&str, String)]) -> Result<Url, String> {
        let url = self.base.join(link).map_err(|e| format!("the next link is not a URL ({e})"))?;
        Ok(self.with(url, extra))
    }

    /// A next link as kept in the state: without the source's parameters
    /// (which may hold a key the server echoed).
    pub fn keep(&self, link: &str) -> Result<String, String> {
        let url = self.base.join(link).map_err(|e| format!("the next link is not a URL ({e})"))?;
        Ok(without(&url, &self.params))
    }

    fn with(&self, mut url: Url, extra: &[(&str, String)]) -> Url {
        let names: Vec<&str> =
            self.params.iter().map(|(k, _)| k.as_str()).chain(extra.iter().map(|(k, _)| *k)).collect();
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !names.contains(&k.as_ref()))
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        url.set_query(None);
        if !(kept.is_empty() && self.params.is_empty() && extra.is_empty()) {
            let mut q = url.query_pairs_mut();
            q.extend_pairs(kept).extend_pairs(self.params.iter().map(|(k, v)| (k, v)));
            q.extend_pairs(extra.iter().map(|(k, v)| (*k, v)));
        }
        url
    }

    /// GETs `url`, trying again on 429, 5xx and connection errors.
    pub async fn get(&self, url: &Url) -> Result<Fetched, Error> {
        let mut failures = 0;
        loop {
            let (why, after) = match self.http.get(url.clone()).send().await {
                Ok(r) if r.status().is_success() => {
                    let link = r.headers().get(LINK).and_then(|v| v.to_str().ok()).and_then(next_of_link);
                    match r.bytes().await {
                        Ok(body) => return Ok(Fetched { body: body.to_vec(), link }),
                        Err(e) => (format!("the body could not be read: {}", e.without_url()), None),
                    }
                }
                Ok(r) if r.status() == StatusCode::TOO_MANY_REQUESTS || r.status().is_server_error() => {
                    let after = r.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(retry_after);
                    (format!("answered {}", r.status()), after)
                }
                Ok(r) => {
                    let status = r.status();
                    let body = r.text().await.unwrap_or_default();
                    let body: String = body.chars().take(200).collect();
                    return Err(Error::stop(format!(
                        "GET {} answered {status}: {body}; check the source's url, params and headers",
                        shown(url)
                    )));
                }
                Err(e) => (format!("failed: {}", e.without_url()), None),
            };
            failures += 1;
            if failures >= self.policy.attempts {
                return Err(Error::retry(format!("GET {} {why} ({failures} tries)", shown(url))));
            }
            let wait = after.unwrap_or_else(|| crate::retry::backoff(&self.policy, failures));
            if wait > MAX_RETRY_AFTER {
                return Err(Error::retry(format!("GET {} {why}; the server asks to wait {wait:?}", shown(url))));
            }
            tracing::debug!(url = %shown(url), why, ?wait, "trying the page again");
            tokio::time::sleep(wait).await;
        }
    }
}

/// `url` without the query parameters named in `params` and without user info.
fn without(url: &Url, params: &[(String, String)]) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !params.iter().any(|(p, _)| p == k))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    url.set_query(None);
    if !kept.is_empty() {
        url.query_pairs_mut().extend_pairs(kept);
    }
    url.to_string()
}

/// A URL as printed and kept in quarantine: every query value masked but
/// the page's own position (`visible`), no user info.
pub(crate) fn shown_keeping(url: &Url, visible: &[impl AsRef<str>]) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if visible.iter().any(|s| s.as_ref() == k) { v.into_owned() } else { "***".to_string() };
            (k.into_owned(), v)
        })
        .collect();
    url.set_query(None);
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    url.to_string()
}

/// A URL as printed in errors: every query value masked.
pub(crate) fn shown(url: &Url) -> String {
    shown_keeping(url, &[] as &[&str])
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(v: &str) -> Option<Duration> {
    if let Ok(s) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v.trim()).ok()?;
    let ms = (at.timestamp_millis() - chrono::Utc::now().timestamp_millis()).max(0);
    Some(Duration::from_millis(ms as u64))
}

/// The `rel="next"` target of a `Link` header.
fn next_of_link(v: &str) -> Option<String> {
    v.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let rel = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        rel.then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        assert_eq!(retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(retry_after("soon"), None);
    }

    #[test]
    fn the_next_link_is_read_from_the_link_header() {
        let h =
            r#"<https://api.example.com/items?page=1>; rel="prev", <https://api.example.com/items?page=3>; rel="next""#;
        assert_eq!(next_of_link(h).as_deref(), Some("https://api.example.com/items?page=3"));
        assert_eq!(next_of_link(r#"<https://a/x>; rel="last""#), None);
    }

    #[test]
    fn urls_are_shown_without_secrets_and_links_kept_without_the_source_params() {
        let url = Url::parse("https://user:pw@api.example.com/v1/items?key=s3cret&page=2").unwrap();
        assert_eq!(shown(&url), "https://api.example.com/v1/items?key=***&page=***");
        assert_eq!(shown_keeping(&url, &["page"]), "https://api.example.com/v1/items?key=***&page=2");
        let params = vec![("key".to_string(), "s3cret".to_string())];
        assert_eq!(without(&url, &params), "https://api.example.com/v1/items?page=2");
    }
}
