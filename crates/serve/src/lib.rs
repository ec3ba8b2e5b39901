//! The HTTP surface of a pipeline, apart from ingestion (the collector's
//! `POST /ingest/<source>` lives in `ingesta-collector`): the dashboard, the
//! read API (reports, SQL, tables, quarantine, OpenAPI), metrics and probes.
//!
//! * `GET /health`: liveness, no detail, open. `GET /ready`: 200 when every
//!   table is ok, 503 otherwise; the detail only to token holders.
//! * `GET /`, `/assets/*`, `/api/docs`: the dashboard and the API's docs page,
//!   built into the binary (they hold no data; their calls carry the token).
//! * Everything else needs a bearer token (`auth`); `/status` is the status
//!   JSON of `ingesta status --json`.
//!
//! What the routes answer comes from a [`Data`], which the runtime implements.

mod answer;
mod api;
mod assets;
mod auth;
mod cache;
mod metrics;
mod openapi;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::future::BoxFuture;
use ingesta_config::Report;
use serde_json::json;

pub use answer::{Answer, Format, json_objects};
pub use auth::{Scope, Tokens};
pub use metrics::Metrics;

/// What `GET /ready` reports: (ready, the detail).
pub type Probe = Arc<dyn Fn() -> (bool, serde_json::Value) + Send + Sync>;

/// Why a request for data failed, as the caller should hear it.
#[derive(Debug)]
pub enum Failure {
    /// The caller's mistake: a bad parameter, a query that writes.
    Bad(String),
    NotFound(String),
    /// The query ran past its time.
    Timeout(String),
    /// The store could not answer now (try again).
    Unavailable(String),
}

/// What the routes read; the runtime implements it over the lake and the
/// warehouse.
pub trait Data: Send + Sync + 'static {
    /// `GET /api/tables`: the pipeline, its sources and its tables.
    fn tables(&self) -> BoxFuture<'_, Result<serde_json::Value, Failure>>;
    /// `GET /api/tables/{name}/quarantine`: counts by reason and samples.
    fn quarantine(&self, table: String, limit: usize) -> BoxFuture<'_, Result<serde_json::Value, Failure>>;
    /// A declared report with the caller's parameters (text, parsed by type).
    fn report(
        &self,
        name: String,
        params: BTreeMap<String, String>,
        page: Page,
    ) -> BoxFuture<'_, Result<Answer, Failure>>;
    /// `GET /api/runs`: the latest passes (of one table, or all), newest first.
    fn runs(&self, table: Option<String>, limit: usize) -> BoxFuture<'_, Result<serde_json::Value, Failure>>;
    /// Read-only SQL.
    fn sql(&self, sql: String, page: Page) -> BoxFuture<'_, Result<Answer, Failure>>;
    /// `POST /api/tables/{name}/replay` (admin): reads the table's quarantined
    /// records again (of one `reason`, quarantined at or after `since`, RFC 3339).
    fn replay(
        &self,
        table: String,
        reason: Option<String>,
        since: Option<String>,
    ) -> BoxFuture<'_, Result<serde_json::Value, Failure>>;
    /// `POST /api/tables/{name}/compact` (admin): rewrites small files into large ones.
    fn compact(&self, table: String) -> BoxFuture<'_, Result<serde_json::Value, Failure>>;
    /// A number that changes whenever any table commits (seen within a
    /// second or so): answers are kept until it moves.
    fn generation(&self) -> BoxFuture<'_, Result<u64, Failure>>;
    /// `GET /status`: what `ingesta status --json` prints.
    fn status(&self) -> BoxFuture<'_, Result<serde_json::Value, Failure>>;
}

/// Which rows of an answer: `offset` skipped, at most `limit` (capped by
/// the server's row limit).
#[derive(Clone, Copy, Debug, Default)]
pub struct Page {
    pub offset: usize,
    pub limit: Option<usize>,
}

/// Everything one server answers.
#[derive(Clone)]
pub struct Surface {
    pub pipeline: String,
    pub ready: Probe,
    pub data: Option<Arc<dyn Data>>,
    pub reports: BTreeMap<String, Report>,
    pub metrics: Option<Metrics>,
    pub tokens: Tokens,
    /// A request still unanswered after this long gets 408 (slow clients) or
    /// 504 (slow queries).
    pub request_timeout: Duration,
    /// Bytes of encoded answers kept until the data changes (0: none).
    pub cache_bytes: usize,
}

/// The largest request body (`POST /api/sql`).
const MAX_BODY: usize = 1 << 20;

/// Binds `addr` and serves `surface` until `shutdown` resolves. Without
/// tokens, a non-loopback address is refused.
pub async fn serve(
    addr: &str,
    surface: Surface,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, String> {
    let at: std::net::SocketAddr = addr.parse().map_err(|_| format!("`{addr}` is not an address (ip:port)"))?;
    if surface.tokens.open() && !at.ip().is_loopback() {
        return Err(format!(
            "refusing to serve on {addr} without a token: set INGESTA_READ_TOKEN (and INGESTA_ADMIN_TOKEN), \
             or listen on 127.0.0.1"
        ));
    }
    let listener = tokio::net::TcpListener::bind(at).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    if surface.tokens.open() {
        tracing::warn!(%addr, "no INGESTA_READ_TOKEN or INGESTA_ADMIN_TOKEN: serving without tokens, on loopback only");
    } else {
        tracing::info!(%addr, "serving the dashboard and the API (bearer tokens required)");
    }
    let app = router(surface);
    // answers go out at once, not held back by Nagle's algorithm waiting for an ACK
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "the pipeline's HTTP server stopped");
        }
    }))
}

/// Every route, with the body limit and the request timeout.
pub fn router(surface: Surface) -> Router {
    let timeout = surface.request_timeout;
    Router::new()
        .route("/health", get(|| async { axum::Json(json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/api/tables", get(api::tables))
        .route("/api/tables/{name}", get(api::table))
        .route("/api/tables/{name}/quarantine", get(api::quarantine))
        .route("/api/tables/{name}/compact", post(api::compact))
        .route("/api/tables/{name}/replay", post(api::replay))
        .route("/api/runs", get(api::runs))
        .route("/api/reports", get(api::reports))
        .route("/api/reports/{name}", get(api::report))
        .route("/api/sql", post(api::sql))
        .route("/api/openapi.json", get(api::openapi))
        .route("/", get(assets::index))
        .route("/api/docs", get(assets::docs))
        .route("/assets/{*path}", get(assets::asset))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout + Duration::from_secs(5),
        ))
        .with_state(Arc::new(Served { cache: cache::Cache::new(surface.cache_bytes), surface }))
}

/// A surface and what the server keeps for it.
pub(crate) struct Served {
    surface: Surface,
    cache: cache::Cache,
}

impl std::ops::Deref for Served {
    type Target = Surface;
    fn deref(&self) -> &Surface {
        &self.surface
    }
}

type Shared = State<Arc<Served>>;

async fn ready(State(s): Shared, headers: HeaderMap) -> Response {
    let (ok, detail) = (s.ready)();
    let code = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    match s.tokens.refuse(&headers, Scope::Read) {
        None => (code, axum::Json(detail)).into_response(),
        Some(_) => (code, axum::Json(json!({"ready": ok}))).into_response(),
    }
}

async fn status(State(s): Shared, headers: HeaderMap) -> Response {
    if let Some(refused) = s.tokens.refuse(&headers, Scope::Read) {
        return refused;
    }
    let Some(data) = &s.data else { return fail(StatusCode::NOT_FOUND, "no status here".into()) };
    match data.status().await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => failure(e),
    }
}

async fn metrics(State(s): Shared, headers: HeaderMap) -> Response {
    if let Some(refused) = s.tokens.refuse(&headers, Scope::Read) {
        return refused;
    }
    let Some(m) = &s.metrics else { return fail(StatusCode::NOT_FOUND, "no metrics here".into()) };
    let mut resp = m.render().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    resp
}

pub(crate) fn failure(f: Failure) -> Response {
    match f {
        Failure::Bad(m) => fail(StatusCode::BAD_REQUEST, m),
        Failure::NotFound(m) => fail(StatusCode::NOT_FOUND, m),
        Failure::Timeout(m) => fail(StatusCode::GATEWAY_TIMEOUT, m),
        Failure::Unavailable(m) => fail(StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

pub(crate) fn fail(status: StatusCode, error: String) -> Response {
    (status, axum::Json(json!({ "error": error }))).into_response()
}
