//! The pipeline's HTTP surface while `run --watch` runs (`ingesta-serve`):
//! the health board, the status computed when asked, the metrics the
//! runtime's events record.

use std::sync::Arc;

use ingesta_config::Pipeline;
use ingesta_core::Error;
use ingesta_serve::{Metrics, Probe, StatusSource, Surface};

use crate::health::Board;

/// What to serve and where: the `--health` address when given, else the
/// pipeline's `serve.listen`; none when neither is set. `/status` and
/// `/metrics` only with `serve.token`.
pub(crate) fn surface(p: &Pipeline, board: &Board, addr: Option<&str>) -> Result<Option<(String, Surface)>, Error> {
    let addr = match (addr, &p.serve) {
        (Some(a), _) => a.to_string(),
        (None, Some(s)) => s.listen.clone(),
        (None, None) => return Ok(None),
    };
    let token = p.serve.as_ref().and_then(|s| s.token.as_ref()).map(|t| t.expose().to_string());
    let b = board.clone();
    let health: Probe = Arc::new(move || b.snapshot());
    let (status, metrics) = match &token {
        Some(_) => {
            let pipeline = Arc::new(p.clone());
            let status: StatusSource = Arc::new(move || {
                let p = pipeline.clone();
                Box::pin(async move {
                    let s = crate::status(&p).await.map_err(|e| e.message)?;
                    serde_json::to_value(s).map_err(|e| e.to_string())
                })
            });
            (Some(status), Some(Metrics::install().map_err(Error::stop)?))
        }
        None => (None, None),
    };
    Ok(Some((addr, Surface { health, status, metrics, token })))
}
