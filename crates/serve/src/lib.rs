//! The HTTP surface of a running pipeline, apart from ingestion (the
//! collector's `POST /ingest/<source>` lives in `ingesta-collector`):
//!
//! * `GET /health`: every table's state, 200 when all are ok, 503 otherwise;
//!   open, so load balancers and Kubernetes probes can ask.
//! * `GET /status`: what each table holds (rows, files, version, quarantine,
//!   expectations), as `ingesta status --json` prints it.
//! * `GET /metrics`: the process's metrics in the Prometheus text format.
//!
//! `/status` and `/metrics` need `Authorization: Bearer <token>`; without a
//! configured token they are not served (404 says how to turn them on).

mod metrics;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use serde_json::json;

pub use metrics::Metrics;

/// What `GET /health` reports: (healthy, the JSON body).
pub type Probe = Arc<dyn Fn() -> (bool, serde_json::Value) + Send + Sync>;

/// What `GET /status` reports, computed when asked.
pub type StatusSource = Arc<dyn Fn() -> BoxFuture<'static, Result<serde_json::Value, String>> + Send + Sync>;

/// Everything one server answers.
#[derive(Clone)]
pub struct Surface {
    pub health: Probe,
    pub status: Option<StatusSource>,
    pub metrics: Option<Metrics>,
    /// The bearer token `/status` and `/metrics` ask for; none: not served.
    pub token: Option<String>,
}

/// Binds `addr` and serves `surface` until `shutdown` resolves.
pub async fn serve(
    addr: &str,
    surface: Surface,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let guarded = if surface.token.is_some() { "; /status and /metrics with the token" } else { "" };
    tracing::info!(%addr, "serving GET /health{guarded}");
    let app = Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(Arc::new(surface));
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "the pipeline's HTTP server stopped");
        }
    }))
}

type Shared = State<Arc<Surface>>;

async fn health(State(s): Shared) -> Response {
    let (ok, body) = (s.health)();
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(body)).into_response()
}

async fn status(State(s): Shared, headers: HeaderMap) -> Response {
    if let Some(refused) = refused(&s, &headers) {
        return refused;
    }
    let Some(source) = &s.status else { return fail(StatusCode::NOT_FOUND, "no status here".into()) };
    match source().await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => fail(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn metrics(State(s): Shared, headers: HeaderMap) -> Response {
    if let Some(refused) = refused(&s, &headers) {
        return refused;
    }
    let Some(m) = &s.metrics else { return fail(StatusCode::NOT_FOUND, "no metrics here".into()) };
    let mut resp = m.render().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}

/// The answer to a request without the token (none: let it through).
fn refused(s: &Surface, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &s.token else {
        let why = "not served: set `serve: {token: ...}` in the pipeline to serve /status and /metrics";
        return Some(fail(StatusCode::NOT_FOUND, why.into()));
    };
    let given =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given.is_some_and(|g| same(g.trim().as_bytes(), token.as_bytes())) {
        return None;
    }
    let mut resp =
        fail(StatusCode::UNAUTHORIZED, "missing or wrong bearer token (Authorization: Bearer <token>)".into());
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"ingesta\""));
    Some(resp)
}

/// Compares without stopping at the first difference (no timing hint).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn fail(status: StatusCode, error: String) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}
