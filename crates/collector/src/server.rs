//! The collector's HTTP server (axum): `POST /ingest/<source>` and
//! `GET /health`. Sources listening on the same address share one server.
//!
//! Answers: 200 once the events are in the log (fsynced); 400 with the reason
//! for a body that is not JSON objects; 401 without a bearer token of this
//! server's sources (before anything else, so source names cannot be
//! probed); 404 for an unknown source; 413 past a size limit; 415 for an
//! encoding other than gzip; 429 with `Retry-After` when the table is behind
//! by more than `max_pending_bytes` or the writer's queue is full; 503 with
//! `Retry-After` while shutting down or when the log cannot be written.
//!
//! A request with an `Idempotency-Key` header that was seen within the
//! window (`wal::KEY_WINDOW`) gets the first request's answer again, with
//! `Idempotent-Replayed: true`, and nothing is written twice. A source with
//! `cors:` origins answers browsers' preflight `OPTIONS` requests.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::body::{BodyError, parse};
use crate::wal::{AppendError, Appender, Batch};

/// Bodies larger than this are parsed on a blocking thread.
const INLINE_PARSE: usize = 256 << 10;

/// One source served at `/ingest/<source>`.
pub struct Route {
    pub source: String,
    pub token: String,
    pub max_body_bytes: usize,
    pub max_record_bytes: usize,
    pub max_pending_bytes: u64,
    /// Origins allowed to post from a browser (`*`: any).
    pub cors: Vec<String>,
    pub log: Appender,
}

type Routes = Arc<BTreeMap<String, Route>>;

/// Binds `addr` and serves `routes` until `shutdown` resolves (requests in
/// flight are finished first).
pub async fn serve(
    addr: &str,
    routes: Vec<Route>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let routes: Routes = Arc::new(routes.into_iter().map(|r| (r.source.clone(), r)).collect());
    let names: Vec<&String> = routes.keys().collect();
    tracing::info!(%addr, sources = ?names, "collecting events at POST /ingest/<source>");
    let app = Router::new()
        .route("/ingest/{source}", post(ingest).options(preflight))
        .route("/health", axum::routing::get(health))
        .with_state(routes);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "the collector's server stopped");
        }
    }))
}

async fn health(State(routes): State<Routes>) -> Response {
    let sources: Vec<_> = routes
        .values()
        .map(|r| json!({"source": r.source, "last_event": r.log.durable(), "pending_bytes": r.log.pending_bytes()}))
        .collect();
    axum::Json(json!({"status": "ok", "sources": sources})).into_response()
}

/// `POST /ingest/<source>`, counted by answer (`ingesta_collector_requests_total`).
async fn ingest(State(routes): State<Routes>, Path(source): Path<String>, headers: HeaderMap, body: Body) -> Response {
    // a label only for the sources this server has (the path is the caller's)
    let label = if routes.contains_key(&source) { source.clone() } else { "unknown".to_string() };
    let resp = answer(State(routes), Path(source), headers, body).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!("ingesta_collector_requests_total", "source" => label, "status" => status).increment(1);
    resp
}

async fn answer(State(routes): State<Routes>, Path(source): Path<String>, headers: HeaderMap, body: Body) -> Response {
    let received_at_us = chrono::Utc::now().timestamp_micros();
    // the token first: without one of this server's tokens, nothing is said about its sources
    let Some(r) = routes.get(&source).filter(|r| authorized(&headers, &r.token)) else {
        if routes.values().any(|r| authorized(&headers, &r.token)) {
            return fail(StatusCode::NOT_FOUND, format!("no source `{source}` here"));
        }
        let mut resp =
            fail(StatusCode::UNAUTHORIZED, "missing or wrong bearer token (Authorization: Bearer <token>)".into());
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"ingesta\""));
        return with_cors(resp, routes.get(&source), &headers);
    };
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    if r.log.pending_bytes() > r.max_pending_bytes {
        return retry(StatusCode::TOO_MANY_REQUESTS, 1, "the table is behind the collector; try again shortly".into());
    }
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > r.max_body_bytes) {
        return too_large(r.max_body_bytes);
    }
    let raw = match axum::body::to_bytes(body, r.max_body_bytes).await {
        Ok(b) => b,
        Err(e) if e.to_string().contains("length limit") => return too_large(r.max_body_bytes),
        Err(e) => return fail(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")),
    };
    let body = match decoded(&headers, raw, r.max_body_bytes) {
        Ok(b) => b,
        Err(resp) => return *resp,
    };
    let max = r.max_record_bytes;
    let parsed = if body.len() > INLINE_PARSE {
        match tokio::task::spawn_blocking(move || parse(&body, max)).await {
            Ok(p) => p,
            Err(e) => return fail(StatusCode::INTERNAL_SERVER_ERROR, format!("parsing failed: {e}")),
        }
    } else {
        parse(&body, max)
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(BodyError::Bad(e)) => return fail(StatusCode::BAD_REQUEST, e),
        Err(BodyError::TooLarge(e)) => return fail(StatusCode::PAYLOAD_TOO_LARGE, e),
    };
    let request = uuid::Uuid::new_v4().to_string();
    let count = parsed.count;
    let batch = Batch { events: parsed.events, count, request, received_at_us, key };
    let answer = match r.log.append(batch).await {
        Ok(acc) => {
            let body = json!({"accepted": acc.count, "first": acc.first, "last": acc.last, "request_id": acc.request});
            let mut resp = axum::Json(body).into_response();
            if acc.replayed {
                resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            }
            resp
        }
        Err(AppendError::Busy) => {
            retry(StatusCode::TOO_MANY_REQUESTS, 1, "too many requests waiting; try again shortly".into())
        }
        Err(AppendError::Closed) => retry(StatusCode::SERVICE_UNAVAILABLE, 1, "the collector is shutting down".into()),
        Err(AppendError::Failed(e)) => {
            tracing::error!(%source, error = %e, "refused a request: the log cannot be written");
            retry(StatusCode::SERVICE_UNAVAILABLE, 5, "the collector cannot write its log; nothing was kept".into())
        }
    };
    metrics::gauge!("ingesta_collector_pending_bytes", "source" => source).set(r.log.pending_bytes() as f64);
    with_cors(answer, Some(r), &headers)
}

/// The `Idempotency-Key` header: printable ASCII, at most 255 bytes.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, String> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    match v.to_str() {
        Ok(k) if !k.trim().is_empty() && k.len() <= 255 => Ok(Some(k.trim().to_string())),
        _ => Err("`Idempotency-Key` must be 1 to 255 printable ASCII characters".into()),
    }
}

/// A browser's preflight: allowed when the source lists the page's origin.
async fn preflight(State(routes): State<Routes>, Path(source): Path<String>, headers: HeaderMap) -> Response {
    let resp = StatusCode::NO_CONTENT.into_response();
    let mut resp = with_cors(resp, routes.get(&source), &headers);
    let h = resp.headers_mut();
    if h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, content-encoding, idempotency-key"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    resp
}

/// Adds `Access-Control-Allow-Origin` when the request's origin may post to `route`.
fn with_cors(mut resp: Response, route: Option<&Route>, headers: &HeaderMap) -> Response {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else { return resp };
    let allowed = route.is_some_and(|r| r.cors.iter().any(|c| c == "*" || c == origin));
    if let (true, Ok(v)) = (allowed, HeaderValue::from_str(origin)) {
        resp.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        resp.headers_mut().insert(header::VARY, HeaderValue::from_static("origin"));
    }
    resp
}

/// The body after `Content-Encoding` (gzip or none), within `limit`.
fn decoded(headers: &HeaderMap, raw: Bytes, limit: usize) -> Result<Bytes, Box<Response>> {
    let enc = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    match enc.trim().to_ascii_lowercase().as_str() {
        "identity" | "" => Ok(raw),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(raw.len() * 4);
            let read = flate2::read::MultiGzDecoder::new(&raw[..]).take(limit as u64 + 1).read_to_end(&mut out);
            match read {
                Ok(n) if n > limit => Err(Box::new(too_large(limit))),
                Ok(_) => Ok(Bytes::from(out)),
                Err(e) => Err(Box::new(fail(StatusCode::BAD_REQUEST, format!("the body is not valid gzip: {e}")))),
            }
        }
        other => Err(Box::new(fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding `{other}` is not accepted; send gzip or no encoding"),
        ))),
    }
}

fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    given.is_some_and(|g| same(g.trim().as_bytes(), token.as_bytes()))
}

/// Compares without stopping at the first difference (no timing hint).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn fail(status: StatusCode, error: String) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}

fn too_large(limit: usize) -> Response {
    fail(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than {limit} bytes (`max_body_bytes`); send smaller batches"),
    )
}

fn retry(status: StatusCode, seconds: u32, error: String) -> Response {
    let mut resp = fail(status, error);
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    resp
}
