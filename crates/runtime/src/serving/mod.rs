//! The pipeline's HTTP surface (`ingesta-serve`) over this pipeline: its
//! tables, reports and SQL through [`data::PipelineData`], the health board
//! while `run --watch` runs, the metrics the runtime's events record.

mod data;
pub mod reports;
pub(crate) mod tables;

use std::sync::Arc;
use std::time::Duration;

use ingesta_config::Pipeline;
use ingesta_core::Error;
use ingesta_serve::{Metrics, Probe, Surface, Tokens};
use serde_json::json;

use crate::health::Board;

/// The address to serve and what: `addr` when given, else the pipeline's
/// `serve.listen`; none when neither is set. Tokens come from `serve:`, else
/// from `INGESTA_READ_TOKEN` and `INGESTA_ADMIN_TOKEN`.
pub fn surface(p: &Pipeline, board: Option<&Board>, addr: Option<&str>) -> Result<Option<(String, Surface)>, Error> {
    let addr = match (addr, &p.serve) {
        (Some(a), _) => a.to_string(),
        (None, Some(s)) => s.listen.clone(),
        (None, None) => return Ok(None),
    };
    let serve = p.serve.clone().unwrap_or_default();
    let from_env = |var: &str| std::env::var(var).ok().filter(|t| !t.trim().is_empty());
    let tokens = Tokens {
        read: serve.read_token.map(|t| t.expose().to_string()).or_else(|| from_env("INGESTA_READ_TOKEN")),
        admin: serve.admin_token.map(|t| t.expose().to_string()).or_else(|| from_env("INGESTA_ADMIN_TOKEN")),
    };
    let ready: Probe = match board {
        Some(b) => {
            let b = b.clone();
            Arc::new(move || b.snapshot())
        }
        None => Arc::new(|| (true, json!({"status": "ok", "tables": []}))),
    };
    let pipeline = Arc::new(p.clone());
    let data = data::PipelineData::new(pipeline, board.cloned())?;
    Ok(Some((
        addr,
        Surface {
            pipeline: p.pipeline.clone(),
            ready,
            data: Some(Arc::new(data)),
            reports: p.reports.clone(),
            metrics: Some(Metrics::install().map_err(Error::stop)?),
            tokens,
            request_timeout: serve.query_timeout.0 + Duration::from_secs(5),
            cache_bytes: serve.cache.0 as usize,
        },
    )))
}

/// `ingesta serve`: the dashboard and the API over the pipeline's tables
/// (nothing is ingested), at `addr` until `stop` resolves; `read_token`,
/// when given, is the read token (the demo makes one per run).
pub async fn serve(
    p: &Pipeline,
    addr: &str,
    read_token: Option<String>,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (addr, mut surface) = surface(p, None, Some(addr))?.expect("an address is given");
    if read_token.is_some() {
        surface.tokens.read = read_token;
    }
    let server = ingesta_serve::serve(&addr, surface, stop).await.map_err(Error::stop)?;
    server.await.map_err(|e| Error::stop(e.to_string()))
}
