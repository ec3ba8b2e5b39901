//! The sales mart in `ingesta demo`: `examples/sales-mart` on the demo's
//! lake, with no broker. Its order events are written to a collector log
//! (the one `POST /ingest/order_upd` would fill) and decoded as messages,
//! as a topic's are; the tracker's events likewise. The sales-mart tables
//! and reports join the farm's, so the dashboard shows both.

use std::path::Path;

use anyhow::Context;
use ingesta_config::{Pipeline, Source};
use ingesta_generate::{Body, MessageKind};

/// The example pipeline, built into the binary so the demo runs from anywhere.
const SALES_MART: &str = include_str!("../../../../examples/sales-mart/ingesta.yaml");

/// Events per collector log write.
const PER_WRITE: usize = 2_000;

/// The sales-mart pipeline on `lake`: both sources read collector logs.
pub fn pipeline(lake: &Path) -> anyhow::Result<Pipeline> {
    let env = |k: &str| match k {
        "INGESTA_LAKE" => Some(lake.display().to_string()),
        // never served: the logs are filled by the demo itself
        "INGESTA_COLLECTOR_TOKEN" => Some(uuid::Uuid::new_v4().simple().to_string()),
        "SALES_MART_STORE" | "INGESTA_WAREHOUSE" | "KAFKA_BROKERS" => None,
        _ => std::env::var(k).ok(),
    };
    let mut p = ingesta_config::load_str("examples/sales-mart/ingesta.yaml", SALES_MART, env)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let collector = match p.sources.get("traffic") {
        Some(Source::Http(h)) => h.clone(),
        _ => anyhow::bail!("examples/sales-mart has no `traffic` collector"),
    };
    p.sources.insert("order_upd".into(), Source::Http(collector));
    Ok(p)
}

/// Writes `orders` order events and `traffic` tracker events (seed `seed`)
/// to the collector logs of `p`'s two sources; returns how many of each.
pub async fn fill(p: &Pipeline, lake: &Path, seed: u64, orders: u64, traffic: u64) -> anyhow::Result<(u64, u64)> {
    for (source, kind, count) in
        [("order_upd", MessageKind::OrderUpd, orders), ("traffic", MessageKind::Traffic, traffic)]
    {
        let Some(Source::Http(h)) = p.sources.get(source) else { anyhow::bail!("no collector `{source}`") };
        let dir = match &h.wal {
            Some(d) => d.into(),
            None => lake.join("_wal").join(source),
        };
        let log =
            ingesta_collector::Wal::open(&dir, -1).map_err(anyhow::Error::msg)?.start().map_err(anyhow::Error::msg)?;
        let mut events = ingesta_generate::messages(kind, seed, count, 0.0).filter_map(|m| match m.body {
            Body::Bytes(b) => Some(b),
            Body::Sale(_) => None,
        });
        loop {
            let chunk: Vec<Vec<u8>> = events.by_ref().take(PER_WRITE).collect();
            if chunk.is_empty() {
                break;
            }
            let batch = ingesta_collector::Batch {
                count: chunk.len() as u32,
                events: chunk.join(&b'\n'),
                request: format!("demo-{source}"),
                received_at_us: chrono::Utc::now().timestamp_micros(),
                key: None,
            };
            log.append(batch).await.map_err(|e| anyhow::anyhow!("{e:?}")).context("writing the demo's events")?;
        }
        drop(log);
        // the log's writer thread lets go of its lock once its handle is gone
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while ingesta_collector::Wal::open(&dir, -1).is_err() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    Ok((orders, traffic))
}

/// `farm` with `sales`' sources, tables and reports (their names differ).
pub fn merge(farm: &mut Pipeline, sales: Pipeline) {
    farm.pipeline = format!("{} + {}", farm.pipeline, sales.pipeline);
    farm.sources.extend(sales.sources);
    farm.tables.extend(sales.tables);
    farm.reports.extend(sales.reports);
}
