//! A silver or gold table whose input is kept in the warehouse: it reads the
//! rows the input's commits appended after the version it last recorded
//! (each warehouse row carries the version that wrote it), runs the same
//! query, checks and enrichment, and commits with the new version as its
//! position, under the input's identity (a table dropped and created again
//! is another input). Either store may hold the reader.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use ingesta_core::{Error, TableStore};
use ingesta_lake::datafusion::datasource::MemTable;
use ingesta_warehouse::{TableSpec, Warehouse, WarehouseTable};

use super::{TransformTask, df, plan};
use crate::report::{Laps, Progress, TableReport};

impl TransformTask {
    /// Reads the input in the warehouse at `wh`, `spec` (see [`TransformTask::from_warehouse`]).
    pub(super) async fn run_from_warehouse(
        &mut self,
        (wh, spec): (Warehouse, TableSpec),
        progress: &Progress,
    ) -> Result<TableReport, Error> {
        let started = Instant::now();
        let mut laps = Laps::new();
        let mut report = TableReport { table: self.name.clone(), ..Default::default() };
        self.open_own().await?;
        let Some(input) = WarehouseTable::open_existing(&wh, &spec).await? else {
            report.elapsed = started.elapsed();
            return Ok(report); // the input has not committed yet
        };
        let app = ingesta_core::app_id::table(&self.cfg.input, &input.identity().await?);
        laps.lap("open");
        let after = self.position(&app).await?;
        let q = match &self.quarantine {
            Some(t) => t.position(&app).await?.unwrap_or(-1),
            None => -1,
        };
        // A crash after the quarantine commit: redo exactly that range.
        let until = if q > after { q } else { input.version() };
        let (to, batches) = input.rows_between(after, until).await?;
        laps.lap("range");
        if to > after {
            let schema = input.arrow_schema();
            let ctx = plan::session_of(2);
            let mem = MemTable::try_new(schema.clone(), vec![batches]).map_err(df)?;
            ctx.register_table(plan::INPUT, Arc::new(mem)).map_err(df)?;
            self.register_lookups(&ctx).await?;
            let sql = plan::checked_sql(&self.cfg, &plan::table_sql(&self.cfg, &schema));
            let frame = ctx.sql(&sql).await.map_err(|e| self.sql_error(e))?;
            let out = Arc::new(frame.schema().as_arrow().clone());
            let w = self.begin_write(&out, after, to).await?;
            let stream = frame.execute_stream().await.map_err(|e| self.sql_error(e))?.boxed();
            laps.lap("plan");
            self.write_rows(w, stream, &app, q, &mut report, &mut laps).await?;
            report.commits += 1;
            progress.show(&self.name, report.rows, report.quarantined, report.bytes, started);
        }
        if let Some(t) = self.target.as_mut().and_then(super::Target::lake_mut) {
            self.upkeep.run(t).await;
        }
        laps.log(&self.name);
        progress.done();
        report.elapsed = started.elapsed();
        Ok(report)
    }
}
