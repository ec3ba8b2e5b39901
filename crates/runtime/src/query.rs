//! Read-only SQL over the lake and the warehouse: every table of a pipeline
//! under its name, and its quarantine as `<name>__quarantine`, at their
//! current versions. A warehouse table is read whole when the session opens
//! (marts are small; a provider that pushes filters down to PostgreSQL is
//! for later), so one statement can join it with lake tables.

use ingesta_config::Pipeline;
use ingesta_core::Error;
use ingesta_lake::LakeTable;
use ingesta_lake::datafusion::datasource::MemTable;
use ingesta_lake::datafusion::prelude::SessionContext;

use crate::lake_of;
use crate::transform::plan;

/// A DataFusion session with the pipeline's tables registered (those that exist).
pub async fn session(p: &Pipeline) -> Result<SessionContext, Error> {
    let lake = lake_of(p)?;
    let warehouse = crate::warehouse_of(p)?;
    let ctx = plan::session();
    let failed = |e: ingesta_lake::datafusion::error::DataFusionError| Error::stop(e.to_string());
    for (name, cfg) in &p.tables {
        let q = format!("{name}__quarantine");
        let mut tables = vec![(q, lake.quarantine_url(name))];
        match (&warehouse, cfg.store) {
            (Some(wh), ingesta_config::Store::Warehouse) => {
                let spec = crate::transform::warehouse_spec(name, cfg);
                if let Some(t) = ingesta_warehouse::WarehouseTable::open_existing(wh, &spec).await? {
                    let rows = ingesta_core::TableStore::scan(&t).await?;
                    let mem = MemTable::try_new(t.arrow_schema(), vec![rows]).map_err(failed)?;
                    ctx.register_table(name.as_str(), std::sync::Arc::new(mem)).map_err(failed)?;
                }
            }
            _ => tables.push((name.clone(), lake.table_url(name))),
        }
        for (table, url) in tables {
            let Some(t) = LakeTable::open(&lake, &table, &url).await? else { continue };
            t.delta().update_datafusion_session(&ctx.state()).map_err(|e| Error::stop(e.to_string()))?;
            ctx.register_table(table.as_str(), t.provider().await?).map_err(|e| Error::stop(e.to_string()))?;
        }
    }
    Ok(ctx)
}
