//! `GET /api/tables`: each table's layer, store, rows, version, freshness,
//! state, columns, expectations and recent commits, from its log (and from
//! the health board when this process runs the pipeline, with the alerts
//! firing).

use chrono::{DateTime, Utc};
use ingesta_config::{Pipeline, Source, Store};
use ingesta_lake::LakeTable;
use ingesta_serve::{Answer, Failure};
use serde_json::{Value, json};

use super::data::PipelineData;

/// Commits shown per table (the dashboard's sparkline).
const HISTORY: usize = 30;

pub async fn tables(d: &PipelineData) -> Result<Value, Failure> {
    let p = &d.p;
    let status = crate::status(p).await.map_err(|e| Failure::Unavailable(e.message))?;
    let health = d.board.as_ref().map(|b| b.snapshot().1);
    let columns = d.columns().await?;
    let mut out = Vec::new();
    for t in status.tables {
        let cfg = &p.tables[&t.name];
        let history = history(p, &t.name, HISTORY).await.map_err(|e| Failure::Unavailable(e.message))?;
        let last_commit = history.last().map(|c| c.0);
        let live = health
            .as_ref()
            .and_then(|h| h["tables"].as_array()?.iter().find(|x| x["table"] == t.name.as_str()).cloned());
        let (state, error) = match &live {
            Some(l) => (l["state"].as_str().unwrap_or("ok").to_string(), l["problem"].clone()),
            None => ("idle".to_string(), Value::Null),
        };
        let history: Vec<Value> =
            history.iter().map(|(at, rows)| json!({"time": at.to_rfc3339(), "rows": rows})).collect();
        out.push(json!({
            "name": t.name, "layer": t.layer,
            "store": if cfg.store == Store::Warehouse { "warehouse" } else { "lake" },
            "input": cfg.input, "lookups": cfg.transform.lookups,
            "location": t.location, "exists": t.exists, "version": t.version, "rows": t.rows, "bytes": t.bytes,
            "quarantined_rows": t.quarantined_rows,
            "last_commit": last_commit.map(|c| c.to_rfc3339()),
            "freshness_seconds": last_commit.map(|c| (Utc::now() - c).num_milliseconds() as f64 / 1000.0),
            "state": state, "last_error": error,
            "columns": columns.get(&t.name).cloned().unwrap_or_default(),
            "expectations": t.expectations,
            "history": history,
        }));
    }
    let sources: Vec<Value> = p.sources.iter().map(|(n, s)| json!({"name": n, "type": kind(s)})).collect();
    let alerts = health.as_ref().map_or(Value::Array(Vec::new()), |h| h["alerts"].clone());
    Ok(json!({"pipeline": p.pipeline, "sources": sources, "tables": out, "alerts": alerts}))
}

fn kind(s: &Source) -> &'static str {
    match s {
        Source::Landing(_) => "landing",
        Source::Kafka(_) => "kafka",
        Source::Http(_) => "http",
        Source::PostgresCdc(_) => "postgres_cdc",
        Source::Sql(_) => "sql",
        Source::Rest(_) => "rest",
    }
}

/// The table's latest `n` commits, oldest first: when, and the rows it wrote
/// (or read, for silver and gold).
pub async fn history(p: &Pipeline, name: &str, n: usize) -> Result<Vec<(DateTime<Utc>, u64)>, ingesta_core::Error> {
    let infos = commit_infos(p, name, n).await?;
    let mut out: Vec<(DateTime<Utc>, u64)> = infos
        .iter()
        .filter_map(|i| {
            let at = DateTime::from_timestamp_millis(i.get("timestamp")?.as_i64()?)?;
            let rows = ["ingesta.rows", "ingesta.rows_in"]
                .iter()
                .find_map(|k| i.get(*k).and_then(|v| v.as_str()).and_then(|v| v.parse().ok()))
                .unwrap_or(0);
            Some((at, rows))
        })
        .collect();
    out.reverse();
    Ok(out)
}

/// An answer's rows as JSON objects.
pub fn objects(a: Answer) -> Result<Vec<Value>, Failure> {
    let rows = ingesta_serve::json_objects(&a.batches).map_err(Failure::Unavailable)?;
    Ok(rows.into_iter().map(Value::Object).collect())
}

/// The table's latest `n` commit infos, newest first (each with its `timestamp`, ms).
pub(crate) async fn commit_infos(
    p: &Pipeline,
    name: &str,
    n: usize,
) -> Result<Vec<serde_json::Map<String, Value>>, ingesta_core::Error> {
    let cfg = &p.tables[name];
    Ok(match (cfg.store, crate::warehouse_of(p)?) {
        (Store::Warehouse, Some(wh)) => {
            let spec = crate::transform::warehouse_spec(name, cfg);
            match ingesta_warehouse::WarehouseTable::open_existing(&wh, &spec).await? {
                Some(t) => t.commit_infos(n as i64).await?,
                None => Vec::new(),
            }
        }
        _ => {
            let lake = crate::lake_of(p)?;
            match LakeTable::open(&lake, name, &lake.table_url(name)).await? {
                Some(t) => t.commit_infos(n).await?,
                None => Vec::new(),
            }
        }
    })
}
