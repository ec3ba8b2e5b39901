//! One micro-batch of the collector's log: whole frames after the table's
//! position, decoded, committed to the quarantine then the table with the
//! last event number, then the log segments the table holds are deleted.

use ingesta_collector::Limit;
use ingesta_config::MessageFormat;
use ingesta_core::{Error, QuarantineRecord, TableStore, WriteMode};
use ingesta_lake::LakeTable;
use ingesta_sources::decode::{Raw, ReadCtx, SchemaLookup, decode_messages};
use ingesta_sources::schema::RecordSchema;

use super::columns::{Meta, Parts, assemble, collect_schema};
use super::{Committer, app_id};
use crate::bronze::{self, Batch, open_tables};

impl Committer {
    /// Commits the frames after the table's position, up to `upto`, within
    /// one batch's limits; the bytes of log they took.
    pub(super) fn commit_next(&mut self, upto: i64) -> Result<u64, Error> {
        let limit = Limit { events: self.cfg.batch.max_rows as u64, bytes: self.cfg.batch.max_bytes.0 };
        let frames = self
            .reader
            .read(self.committed, upto, limit)
            .map_err(|e| Error::stop(format!("table `{}`: {e}", self.name)))?;
        let Some(last) = frames.last().map(|(f, _)| f.last()) else {
            return Err(Error::stop(format!(
                "table `{}`: the collector log {} holds no events after {} though events up to {upto} were written; was a segment removed?",
                self.name,
                self.wal_dir.display(),
                self.committed
            )));
        };
        let bytes: u64 = frames.iter().map(|(_, size)| size).sum();
        let mut raws: Vec<Raw> = Vec::new();
        let mut meta: Vec<Meta> = Vec::new();
        for (f, _) in &frames {
            for (seq, value) in f.events().filter(|(seq, _)| *seq > self.committed) {
                raws.push(Raw { offset: seq, value });
                meta.push(Meta { seq, request: &f.request, received_at_us: f.received_at_us });
            }
        }
        self.ensure_tables(&raws)?;
        let t = self.tables.as_ref().expect("ensured");
        let ctx = ReadCtx {
            source: &self.source,
            schema: &t.record,
            skip_until: -1,
            quarantined_until: self.quarantined,
            chunk_rows: raws.len() + 1,
            max_record_bytes: self.max_record_bytes,
        };
        let decoded = decode_messages(MessageFormat::Json, &raws, &ctx, &|_| SchemaLookup::Unknown(String::new()))
            .map_err(|e| Error::from(e).context(&format!("table `{}`", self.name)))?;
        let kept = crate::bronze::kept_at(&meta, |m| m.seq, &decoded.chunk.positions);
        let ingested_at = chrono::Utc::now().timestamp_micros();
        let batch_id = uuid::Uuid::new_v4().to_string();
        let parts = Parts {
            rows: &decoded.chunk.rows,
            meta: &kept,
            rescued: decoded.rescued,
            ingested_at,
            batch_id: &batch_id,
        };
        let rows = assemble(&t.schema, &self.cfg.partition_by, parts);
        let quarantine: Vec<QuarantineRecord> = decoded.chunk.quarantine;
        let (n_rows, n_bad) = (rows.num_rows() as u64, quarantine.len() as u64);
        let id = app_id(&self.source);
        let quarantined = (!quarantine.is_empty()).then(|| last.max(self.quarantined));
        let t = self.tables.as_mut().expect("ensured");
        let mut staged = t.bronze.begin(&WriteMode::Append)?;
        self.rt.block_on(async {
            t.bronze.stage(&mut staged, rows).await?;
            let b = Batch {
                staged,
                rows: n_rows,
                positions: vec![(id.clone(), last)],
                quarantine,
                quarantine_positions: quarantined.map(|q| vec![(id, q)]).unwrap_or_default(),
                expect: None,
                batch_id,
                ingested_at,
            };
            bronze::commit(&mut t.bronze, &mut t.quarantine, b).await
        })?;
        if let Some(q) = quarantined {
            self.quarantined = q;
        }
        self.committed = last;
        if let Err(e) = ingesta_collector::wal::release(&self.wal_dir, last, self.archive) {
            tracing::warn!(table = %self.name, error = %e, "cannot delete log segments the table holds; tried again after the next commit");
        }
        self.report.rows += n_rows;
        self.report.quarantined += n_bad;
        self.report.bytes += bytes;
        self.report.commits += 1;
        self.progress.committed();
        self.progress.show(&self.name, self.report.rows, self.report.quarantined, self.report.bytes, self.started);
        Ok(bytes)
    }

    /// Creates the tables on first use (columns inferred from the first
    /// events when none are declared).
    fn ensure_tables(&mut self, sample: &[Raw]) -> Result<(), Error> {
        if self.tables.is_some() {
            return Ok(());
        }
        let record = match &self.cfg.columns {
            Some(cols) => RecordSchema::from_columns(cols),
            None => {
                let values: Vec<serde_json::Value> =
                    sample.iter().take(1000).filter_map(|r| serde_json::from_slice(r.value).ok()).collect();
                let r = ingesta_sources::infer::from_records(&values);
                tracing::info!(table = %self.name, columns = ?r.schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>(), "inferred columns");
                r
            }
        };
        let schema = collect_schema(&record, &self.cfg.partition_by);
        let parts: Vec<String> = self.cfg.partition_by.iter().map(|p| p.column.clone()).collect();
        let url = self.lake.table_url(&self.name);
        let desc = format!("bronze table fed by the HTTP collector source `{}`", self.source);
        let size = self.cfg.target_file_size.0;
        let tables = self.rt.block_on(async {
            let bronze = LakeTable::open_or_create(&self.lake, &self.name, &url, &schema, &parts, &desc).await?;
            open_tables(&self.lake, &self.name, bronze, record, schema, size).await
        })?;
        self.tables = Some(tables);
        Ok(())
    }
}
