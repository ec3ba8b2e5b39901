//! The dashboard's files, built into the binary (nothing is fetched at run
//! time): `/` is `index.html`, `/api/docs` is `docs.html`, `/assets/<path>`
//! any file of `crates/serve/assets/` (uPlot vendored under `vendor/`,
//! pinned by `web/package-lock.json`). They hold no data: every call they
//! make carries the token the user gave.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use include_dir::{Dir, include_dir};

static ASSETS: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// The pages may load scripts, styles and data from this server only.
const POLICY: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
                      connect-src 'self'; frame-ancestors 'none'";

pub async fn index() -> Response {
    file("index.html")
}

pub async fn docs() -> Response {
    file("docs.html")
}

pub async fn asset(Path(path): Path<String>) -> Response {
    file(&path)
}

fn file(path: &str) -> Response {
    let Some(f) = ASSETS.get_file(path) else {
        return crate::fail(StatusCode::NOT_FOUND, format!("no file `{path}` in the dashboard"));
    };
    let kind = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    };
    let mut resp = f.contents().into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}
