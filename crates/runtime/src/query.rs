//! Read-only SQL over the lake and the warehouse: every table of a pipeline
//! under its name, its quarantine as `<name>__quarantine` (and what was
//! replayed from it as `<name>__replayed`) and the run history as
//! `ingesta_runs`, at their current versions. A warehouse table is read whole
//! when the session opens (marts are small; a provider that pushes filters
//! down to PostgreSQL is for later), so one statement can join it with lake
//! tables.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ingesta_config::Pipeline;
use ingesta_core::Error;
use ingesta_lake::LakeTable;
use ingesta_lake::datafusion::datasource::MemTable;
use ingesta_lake::datafusion::prelude::SessionContext;

use crate::lake_of;
use crate::transform::live::OpenedTable;
use crate::transform::plan;

/// A DataFusion session with the pipeline's tables registered (those that exist).
pub async fn session(p: &Pipeline) -> Result<SessionContext, Error> {
    Ok(session_with_commits(p).await?.0)
}

/// [`session`], and when each table last committed, read from the tables it
/// opened (the HTTP server's freshness).
pub async fn session_with_commits(p: &Pipeline) -> Result<(SessionContext, BTreeMap<String, DateTime<Utc>>), Error> {
    let lake = lake_of(p)?;
    let warehouse = crate::warehouse_of(p)?;
    let ctx = plan::session();
    let mut commits = BTreeMap::new();
    let mut opened = crate::transform::live::Opened::new();
    let failed = |e: ingesta_lake::datafusion::error::DataFusionError| Error::stop(e.to_string());
    for (name, cfg) in &p.tables {
        let q = format!("{name}__quarantine");
        let replayed = crate::bronze::landing::replay::ledger_name(name);
        let mut tables = vec![(q, lake.quarantine_url(name)), (replayed.clone(), lake.quarantine_url(&replayed))];
        match (&warehouse, cfg.store) {
            (Some(wh), ingesta_config::Store::Warehouse) => {
                let spec = crate::transform::warehouse_spec(name, cfg);
                if let Some(t) = ingesta_warehouse::WarehouseTable::open_existing(wh, &spec).await? {
                    let rows = ingesta_core::TableStore::scan(&t).await?;
                    let mem = MemTable::try_new(t.arrow_schema(), vec![rows]).map_err(failed)?;
                    ctx.register_table(name.as_str(), std::sync::Arc::new(mem)).map_err(failed)?;
                    commits.extend(last_commit(&t.commit_infos(1).await?).map(|at| (name.clone(), at)));
                    opened.insert(name.clone(), OpenedTable::Warehouse(t));
                }
            }
            _ => tables.push((name.clone(), lake.table_url(name))),
        }
        for (table, url) in tables {
            let Some(t) = LakeTable::open(&lake, &table, &url).await? else { continue };
            t.delta().update_datafusion_session(&ctx.state()).map_err(|e| Error::stop(e.to_string()))?;
            ctx.register_table(table.as_str(), t.provider().await?).map_err(|e| Error::stop(e.to_string()))?;
            if &table == name {
                commits.extend(last_commit(&t.commit_infos(1).await?).map(|at| (name.clone(), at)));
                opened.insert(table, OpenedTable::Lake(t));
            }
        }
    }
    // the run history, as `ingesta_runs`
    if let Some(t) = LakeTable::open(&lake, crate::runs::TABLE, &lake.runs_url()).await? {
        t.delta().update_datafusion_session(&ctx.state()).map_err(|e| Error::stop(e.to_string()))?;
        ctx.register_table(crate::runs::TABLE, t.provider().await?).map_err(|e| Error::stop(e.to_string()))?;
    }
    // aggregates read with the input rows they have not rolled up yet
    crate::transform::live::register(&ctx, p, &opened).await?;
    Ok((ctx, commits))
}

/// The time of the newest of `infos` (commit infos carry it in milliseconds).
pub(crate) fn last_commit(infos: &[serde_json::Map<String, serde_json::Value>]) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(infos.first()?.get("timestamp")?.as_i64()?)
}
