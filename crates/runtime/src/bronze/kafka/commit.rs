//! One micro-batch of a stream: decode each partition's pending messages,
//! commit the quarantine, then the table, both compare-and-set on the
//! partitions' positions; on a lost race or a failed commit, drop the batch
//! and go back to the positions the table holds.

use std::collections::BTreeMap;

use ingesta_core::{Error, QuarantineRecord, TableStore, WriteMode};
use ingesta_kafka::registry::Lookup as RegistryLookup;
use ingesta_kafka::{Consumer, Message, TopicPartition};
use ingesta_sources::decode::{Raw, ReadCtx, SchemaLookup, decode_messages};

use super::Worker;
use super::columns::{Parts, assemble};
use crate::bronze::{self, Batch, Committed, Expected};

impl Worker {
    /// Commits what is pending (nothing to do when nothing is).
    pub(crate) fn commit_now(&mut self, consumer: &Consumer) -> Result<(), Error> {
        let batch: Vec<(TopicPartition, Vec<Message>)> = self
            .owned
            .iter_mut()
            .filter(|(_, p)| !p.pending.is_empty())
            .map(|(tp, p)| {
                p.pending_bytes = 0;
                p.pending_since = None;
                (tp.clone(), std::mem::take(&mut p.pending))
            })
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        match self.try_commit(&batch) {
            Ok(true) => {
                let covered: BTreeMap<TopicPartition, i64> =
                    batch.iter().map(|(tp, msgs)| (tp.clone(), msgs.last().expect("non-empty").offset)).collect();
                consumer.commit_group_offsets(&covered);
                let newest = batch.iter().filter_map(|(_, m)| m.last()?.timestamp_ms).max();
                crate::events::kafka_lag(&self.name, &consumer.lag(&covered), newest);
                if let Some(t) = &mut self.tables {
                    self.rt.block_on(self.upkeep.run(&mut t.bronze));
                }
                Ok(())
            }
            Ok(false) => self.reset(consumer),
            Err(e) if e.kind == ingesta_core::ErrorKind::Retry => {
                tracing::warn!(table = %self.name, error = %e, "commit failed; reading again from the table's positions");
                std::thread::sleep(std::time::Duration::from_millis(500));
                self.reset(consumer)
            }
            Err(e) => Err(e),
        }
    }

    /// Decodes and commits; `Ok(false)` when another member moved a position.
    fn try_commit(&mut self, batch: &[(TopicPartition, Vec<Message>)]) -> Result<bool, Error> {
        let first: Vec<&Message> = batch.iter().flat_map(|(_, m)| m.iter()).collect();
        self.ensure_tables(&first)?;
        let t = self.tables.as_ref().expect("ensured");
        let (record, schema) = (t.record.clone(), t.schema.clone());
        let ingested_at = chrono::Utc::now().timestamp_micros();
        let batch_id = uuid::Uuid::new_v4().to_string();
        let registry = self.registry.as_ref();
        let schemas = |id: u32| match registry.map(|r| r.schema(id)) {
            Some(Ok(RegistryLookup::Found(s))) => SchemaLookup::Found(s),
            Some(Ok(RegistryLookup::Unknown(e))) => SchemaLookup::Unknown(e),
            Some(Err(e)) => SchemaLookup::Unavailable(e.to_string()),
            None => SchemaLookup::Unknown("no schema registry configured".into()),
        };
        let mut staged = t.bronze.begin(&WriteMode::Append)?;
        let mut quarantine: Vec<QuarantineRecord> = Vec::new();
        let mut bronze_pos: Vec<(String, i64)> = Vec::new();
        let mut bronze_expect: Vec<(String, Option<i64>)> = Vec::new();
        let mut q_pos: Vec<(String, i64)> = Vec::new();
        let mut q_expect: Vec<(String, Option<i64>)> = Vec::new();
        let (mut rows, mut bytes) = (0u64, 0u64);
        for (tp, msgs) in batch {
            let part = &self.owned[tp];
            let source = tp.to_string();
            let ctx = ReadCtx {
                source: &source,
                schema: &record,
                skip_until: -1,
                quarantined_until: part.quarantine.unwrap_or(-1),
                chunk_rows: msgs.len() + 1,
                max_record_bytes: self.kafka.max_record_bytes.0 as usize,
            };
            let raws: Vec<Raw> = msgs.iter().map(|m| Raw { offset: m.offset, value: &m.payload }).collect();
            let decoded = decode_messages(self.kafka.format, &raws, &ctx, &schemas)
                .map_err(|e| Error::from(e).context(&format!("table `{}`: schema registry", self.name)))?;
            let kept = crate::bronze::kept_at(msgs, |m| m.offset, &decoded.chunk.positions);
            let parts = Parts {
                rows: &decoded.chunk.rows,
                kept: &kept,
                rescued: decoded.rescued,
                ingested_at,
                batch_id: &batch_id,
            };
            let rows_batch = assemble(&schema, self.kafka.format, &self.cfg.partition_by, parts);
            rows += rows_batch.num_rows() as u64;
            bytes += msgs.iter().map(|m| m.payload.len() as u64).sum::<u64>();
            self.rt.block_on(t.bronze.stage(&mut staged, rows_batch))?;
            let last = msgs.last().expect("non-empty").offset;
            bronze_pos.push((tp.app_id(), last));
            bronze_expect.push((tp.app_id(), part.bronze));
            if !decoded.chunk.quarantine.is_empty() {
                q_pos.push((tp.app_id(), last.max(part.quarantine.unwrap_or(-1))));
                q_expect.push((tp.app_id(), part.quarantine));
                quarantine.extend(decoded.chunk.quarantine);
            }
        }
        let n_bad = quarantine.len() as u64;
        let b = Batch {
            staged,
            rows,
            positions: bronze_pos.clone(),
            quarantine,
            quarantine_positions: q_pos.clone(),
            expect: Some(Expected { table: bronze_expect, quarantine: q_expect }),
            batch_id,
            ingested_at,
        };
        let t = self.tables.as_mut().expect("ensured");
        if let Committed::Moved(app_id) = self.rt.block_on(bronze::commit(&mut t.bronze, &mut t.quarantine, b))? {
            tracing::warn!(table = %self.name, position = %app_id, "another member committed this partition; dropping the batch");
            return Ok(false);
        }
        for (tp, _) in batch {
            let Some(p) = self.owned.get_mut(tp) else { continue };
            let id = tp.app_id();
            if let Some((_, v)) = q_pos.iter().find(|(q, _)| *q == id) {
                p.quarantine = Some(*v);
            }
            p.bronze = bronze_pos.iter().find(|(b, _)| *b == id).map(|(_, v)| *v);
        }
        self.report.rows += rows;
        self.report.quarantined += n_bad;
        self.report.bytes += bytes;
        self.report.commits += 1;
        self.progress.committed();
        self.progress.show(&self.name, self.report.rows, self.report.quarantined, self.report.bytes, self.started);
        Ok(true)
    }

    /// Drops everything pending and goes back to the table's positions.
    fn reset(&mut self, consumer: &Consumer) -> Result<(), Error> {
        let tps: Vec<TopicPartition> = self.owned.keys().cloned().collect();
        let bronze = self.fresh_positions(&tps, true)?;
        let quarantine = self.fresh_positions(&tps, false)?;
        for ((tp, bronze), quarantine) in tps.into_iter().zip(bronze).zip(quarantine) {
            let p = self.owned.get_mut(&tp).expect("owned");
            p.pending.clear();
            p.pending_bytes = 0;
            p.pending_since = None;
            p.bronze = bronze;
            p.quarantine = quarantine;
            p.seen = bronze.unwrap_or(-1);
            p.caught_up = false;
            consumer.seek_after(&tp, bronze, &self.kafka.start)?;
        }
        Ok(())
    }
}
