//! A backfill: a range of a silver or gold table's partitions computed again
//! from every row of its input — as of the input version the table last read,
//! so the next pass reads on from there and nothing is counted twice — and
//! put in place of those partitions in one commit. The other partitions'
//! files are left as they are.

use std::collections::BTreeMap;
use std::time::Instant;

use futures::StreamExt;
use ingesta_config::{ReadMode, WriteModeName};
use ingesta_core::{Error, TableStore};
use ingesta_lake::PartitionRange;

use super::rows::{Split, apply_expectations, conform};
use super::target::{Staged, Target};
use super::{TransformTask, open_table, plan};

/// What a backfill did.
#[derive(Debug, Clone, Default)]
pub struct Backfilled {
    /// The range, as `column from..=to`.
    pub range: String,
    /// The input's version the rows were computed from.
    pub input_version: i64,
    /// Rows the transform gave for the range (before the expectations and
    /// the write mode's combining per key).
    pub computed: u64,
    /// Rows written.
    pub rows: u64,
    /// Rows that failed an expectation: left out (the quarantine holds them
    /// from the pass that first read them).
    pub failed_rules: u64,
    /// Data files removed and written.
    pub removed: usize,
    pub added: usize,
    /// The table's version after the backfill.
    pub version: i64,
    pub elapsed: std::time::Duration,
}

impl TransformTask {
    /// Computes the partitions of this table whose `column` lies in
    /// `from..=to` again, and replaces them.
    pub async fn backfill(&mut self, column: &str, from: &str, to: &str) -> Result<Backfilled, Error> {
        let started = Instant::now();
        let name = self.name.clone();
        let refuse = |why: &str| Err(Error::stop(format!("table `{name}` cannot be backfilled: {why}")));
        if self.cfg.read == ReadMode::Changes {
            return refuse("it reads its input's changes, and a backfill computes from the input's rows");
        }
        if self.side.input.is_some() {
            return refuse("it reads its input from the warehouse (`ingesta rebuild` recomputes a whole table)");
        }
        if self.side.enricher.is_some() {
            return refuse("it enriches its rows from Redis, whose values may have changed since");
        }
        if self.cfg.write.truncate_when.is_some() {
            return refuse("a truncate in its input deletes rows of every partition");
        }
        if self.cfg.write.mode == WriteModeName::Scd2 {
            return refuse("an scd2 history is kept whole (`ingesta rebuild` recomputes it)");
        }
        self.open_own().await?;
        let Some(input) = open_table(&self.lake, &self.cfg.input).await? else {
            return refuse(&format!("its input `{}` has no data yet", self.cfg.input));
        };
        let app = ingesta_core::app_id::table(&self.cfg.input, &input.table_id()?);
        let at = self.position(&app).await?;
        let Some(table) = &self.target else {
            return refuse("it has not run yet; `ingesta run` computes it");
        };
        if at < 0 {
            return refuse("it has not read its input yet; `ingesta run` computes it");
        }
        let schema = table.arrow_schema()?;
        let Ok(field) = schema.field_with_name(column) else {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            return refuse(&format!("it has no column `{column}`; its columns: {}", names.join(", ")));
        };
        let range = PartitionRange::new(column, field.data_type(), from, to).map_err(Error::stop)?;

        // every row of the input as of the version last read, pruned to the range
        let ctx = plan::session_of(2);
        input.delta().update_datafusion_session(&ctx.state()).map_err(|e| Error::stop(e.to_string()))?;
        let frame = self.checked_frame(&ctx, input.provider_at(at).await?).await?;
        let frame = frame.filter(range.expr()).map_err(|e| self.sql_error(e))?;
        let mut w = self.begin_write(&plan::stored_schema(frame.schema().as_arrow()), -1, at).await?;
        let mut stream = frame.execute_stream().await.map_err(|e| self.sql_error(e))?;

        let mut done = Backfilled { range: range.to_string(), input_version: at, ..Default::default() };
        let mut counts = BTreeMap::new();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| self.sql_error(e))?;
            done.computed += batch.num_rows() as u64;
            let Split { keep, positions, quarantine } =
                apply_expectations(&self.name, &self.cfg.expect, batch, &mut counts, &w.source, 1)?;
            done.failed_rules += quarantine.len() as u64;
            let Split { keep, quarantine, .. } = conform(keep, &w.stored, &w.source, positions)?;
            done.failed_rules += quarantine.len() as u64;
            self.target.as_ref().expect("opened").stage(&mut w.staged, keep).await?;
        }
        drop(stream);
        let info = vec![
            ("ingesta.backfill".to_string(), done.range.clone()),
            ("ingesta.input".to_string(), w.source.clone()),
            ("ingesta.rows_in".to_string(), done.computed.to_string()),
        ];
        let positions = vec![(app.clone(), at)];
        let (version, rows) = match (self.target.as_mut().expect("opened"), w.staged) {
            (Target::Lake(t), Staged::Lake(staged)) => {
                let replaced = t.replace_partitions(staged, &range, positions, info).await?;
                (done.removed, done.added) = (replaced.removed, replaced.added);
                (replaced.version, replaced.rows)
            }
            // the range's rows deleted and the new ones written in one transaction,
            // refused when a pass moved the position meanwhile
            (Target::Warehouse(t), Staged::Warehouse(mut staged)) => {
                t.replacing(&mut staged, column, from, to)?;
                match t.commit_checked(staged, positions, &[(app, Some(at))], info).await? {
                    Ok(receipt) => (receipt.version, receipt.rows),
                    Err(moved) => {
                        return Err(Error::retry(format!(
                            "table `{name}`: a pass committed while the backfill ran ({moved:?}); nothing was changed, run it again"
                        )));
                    }
                }
            }
            _ => unreachable!("a table stages in its own store"),
        };
        crate::events::committed(&self.name, version, rows, 0, started.elapsed());
        done.rows = rows;
        done.version = version;
        done.elapsed = started.elapsed();
        Ok(done)
    }
}
