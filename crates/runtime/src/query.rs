//! Read-only SQL over the lake: every table of a pipeline under its name, and
//! its quarantine as `<name>__quarantine`, at their current versions.

use ingesta_config::Pipeline;
use ingesta_core::Error;
use ingesta_lake::LakeTable;
use ingesta_lake::datafusion::prelude::SessionContext;

use crate::lake_of;
use crate::transform::plan;

/// A DataFusion session with the pipeline's tables registered (those that exist).
pub async fn session(p: &Pipeline) -> Result<SessionContext, Error> {
    let lake = lake_of(p)?;
    let ctx = plan::session();
    for name in p.tables.keys() {
        let q = format!("{name}__quarantine");
        for (table, url) in [(name.clone(), lake.table_url(name)), (q, lake.quarantine_url(name))] {
            let Some(t) = LakeTable::open(&lake, &table, &url).await? else { continue };
            t.delta().update_datafusion_session(&ctx.state()).map_err(|e| Error::stop(e.to_string()))?;
            ctx.register_table(table.as_str(), t.provider().await?).map_err(|e| Error::stop(e.to_string()))?;
        }
    }
    Ok(ctx)
}
