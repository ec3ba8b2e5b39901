//! Keeping a table fast to read: compaction rewrites small files into files of
//! the target size (a `dataChange: false` commit, so results and readers'
//! positions are untouched); vacuum deletes files no version younger than the
//! retention period needs.

use deltalake::table::config::TablePropertiesExt;
use std::collections::BTreeMap;
use std::time::Duration;

use deltalake::DeltaTableError;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::{Action, Remove, Transaction};
use deltalake::protocol::DeltaOperation;
use deltalake::writer::DeltaWriter;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::{LakeError, LakeTable};

/// A file to compact: its path, and the action that removes it.
type SmallFile = (String, Remove);

/// An empty object beside the table's log, written after each vacuum: its
/// time is the last vacuum's, so upkeep keeps its pace across processes (a
/// `run --once` every minute does not vacuum every minute). A name starting
/// with `_`: Delta readers and every vacuum leave it alone.
const VACUUMED: &str = "_ingesta_vacuumed";

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    pub files_removed: u64,
    pub files_added: u64,
}

impl LakeTable {
    /// Files small enough that readers suffer from them when they pile up:
    /// below 1/32 of the target size (4 MiB by default). An append's files
    /// of a few MiB each (one per partition of a large batch) are not: a
    /// reader opens a handful of them in no time, and rewriting them after
    /// every large run cost more than the run itself.
    pub fn small_files(&self) -> Result<usize, LakeError> {
        debug_assert!(self.is_settled(), "small files of `{}` before its last commit settled", self.name);
        let snapshot = self.table.snapshot().map_err(|e| LakeError::delta(&self.name, e))?;
        let limit = self.tiny_limit();
        Ok(snapshot.log_data().iter().filter(|f| (f.size() as u64) < limit).count())
    }

    fn tiny_limit(&self) -> u64 {
        self.target_file_size / 32
    }

    /// The automatic compaction: the files [`Self::small_files`] counts,
    /// smallest first, at most the target size of them in one pass, so its
    /// time and memory stay bounded however large the table (a pass after
    /// many small appends rewrites the smallest; the next pass the next).
    pub async fn compact_small(&mut self) -> Result<Compacted, LakeError> {
        let (limit, budget) = (self.tiny_limit(), self.target_file_size);
        self.compact_files(limit, Some(budget)).await
    }

    /// Rewrites the small files of each partition into files of about the
    /// target size, in one `dataChange: false` commit.
    ///
    /// Not delta-rs's optimize: it lets two compactions that remove the same
    /// files both commit (`dataChange: false` removes do not conflict), which
    /// keeps both rewrites, so rows twice, and it drops the `txn` actions
    /// given to it. Here every compaction commits the `txn` of
    /// [`crate::shared::COMPACTION_APP`], on the snapshot it planned from: of two racing
    /// compactions (two group members, or `ingesta compact` next to a running
    /// pipeline) the second fails with a conflict instead. Keyed merges carry
    /// the same `txn` (decision 0009), so a compaction racing one fails too.
    pub async fn compact(&mut self) -> Result<Compacted, LakeError> {
        self.compact_files(self.target_file_size / 2, None).await
    }

    /// Rewrites the files below `limit` bytes, partition by partition; with
    /// a `budget`, only the smallest of them, up to that many bytes in all.
    async fn compact_files(&mut self, limit: u64, budget: Option<u64>) -> Result<Compacted, LakeError> {
        self.settle().await?;
        let err = |e: DeltaTableError| LakeError::delta(&self.name, e);
        let snapshot = self.table.snapshot().map_err(err)?.clone();
        let mut small: Vec<_> = snapshot.log_data().iter().filter(|f| (f.size() as u64) < limit).collect();
        if let Some(budget) = budget {
            small.sort_by_key(|f| f.size());
            let mut total = 0u64;
            small.retain(|f| {
                total += f.size() as u64;
                total <= budget
            });
        }
        let mut groups: BTreeMap<Vec<(String, Option<String>)>, Vec<SmallFile>> = BTreeMap::new();
        for f in small {
            let mut part: Vec<_> = f.partition_values_map().into_iter().collect();
            part.sort();
            groups.entry(part).or_default().push((f.path().to_string(), f.remove_action(false)));
        }
        groups.retain(|_, files| files.len() > 1);
        if groups.is_empty() {
            return Ok(Compacted::default());
        }
        let mut writer = self.writer().map_err(err)?;
        let mut actions = Vec::new();
        let ctx = SessionContext::new();
        // the table's own types (DataFusion reads strings as views)
        let schema = std::sync::Arc::new(self.arrow_schema()?);
        for files in groups.into_values() {
            let paths: Vec<String> = files.iter().map(|(p, _)| p.clone()).collect();
            let provider = self.files_provider(self.version(), &paths).await?;
            let generic = |e: DataFusionError| err(DeltaTableError::Generic(e.to_string()));
            let mut rows = ctx.read_table(provider).map_err(generic)?.execute_stream().await.map_err(generic)?;
            while let Some(batch) = rows.try_next().await.map_err(generic)? {
                for batch in crate::shared::conform(&schema, vec![batch]).map_err(err)? {
                    writer.write(batch).await.map_err(err)?;
                }
            }
            actions.extend(files.into_iter().map(|(_, remove)| Action::Remove(remove)));
        }
        let adds = writer.flush().await.map_err(err)?;
        let added = adds.len() as u64;
        let removed = actions.len() as u64;
        actions.extend(adds.into_iter().map(|mut a| {
            a.data_change = false;
            Action::Add(a)
        }));
        let guard = Transaction::new(crate::shared::COMPACTION_APP, chrono::Utc::now().timestamp_millis());
        let operation = DeltaOperation::Optimize {
            predicate: None,
            target_size: self.target_file_size.min(i64::MAX as u64) as i64,
        };
        let props = CommitProperties::default().with_application_transaction(guard);
        self.write_commit(&snapshot, actions, operation, props).await?;
        self.settle().await?;
        Ok(Compacted { files_removed: removed, files_added: added })
    }

    /// Deletes data files unreferenced for longer than `retention` (returns
    /// how many), and the log's commits older than its retention.
    pub async fn vacuum(&mut self, retention: Duration) -> Result<usize, LakeError> {
        self.settle().await?;
        let period = chrono::Duration::from_std(retention)
            .map_err(|e| LakeError::delta(&self.name, DeltaTableError::Generic(e.to_string())))?;
        let (table, metrics) = self
            .table
            .clone()
            .vacuum()
            .with_retention_period(period)
            .with_enforce_retention_duration(false)
            .await
            .map_err(|e| LakeError::delta(&self.name, e))?;
        self.table = table;
        // the log's expired commits too (Delta's `delta.enableExpiredLogCleanup`):
        // here, not after every commit, which then listed the log each time (decision 0016)
        if self.table.snapshot().is_ok_and(|s| s.table_config().enable_expired_log_cleanup()) {
            deltalake::protocol::checkpoints::cleanup_metadata(&self.table, None)
                .await
                .map_err(|e| LakeError::delta(&self.name, e))?;
        }
        let marker = object_store::path::Path::from(VACUUMED);
        let store = self.table.object_store();
        store.put(&marker, Vec::new().into()).await.map_err(|e| LakeError::delta(&self.name, e.into()))?;
        Ok(metrics.files_deleted.len())
    }

    /// When the table was last vacuumed (by any process), if it ever was.
    pub async fn vacuumed_at(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, LakeError> {
        match self.table.object_store().head(&object_store::path::Path::from(VACUUMED)).await {
            Ok(meta) => Ok(Some(meta.last_modified)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(LakeError::delta(&self.name, e.into())),
        }
    }

    /// Deletes the table: every object under its location (its log and data).
    pub async fn destroy(self) -> Result<usize, LakeError> {
        self.snapshots.forget(self.table.table_url());
        let err = |e: object_store::Error| LakeError::delta(&self.name, DeltaTableError::from(e));
        let store = self.table.log_store().object_store(None);
        let paths: Vec<deltalake::Path> = store.list(None).map_ok(|m| m.location).try_collect().await.map_err(err)?;
        for p in &paths {
            match store.delete(p).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(err(e)),
            }
        }
        if let Ok(dir) = self.table.table_url().to_file_path() {
            let _ = std::fs::remove_dir_all(dir); // empty folders left by the file store
        }
        Ok(paths.len())
    }

    /// The custom `info` of the latest `limit` commits (newest first), with
    /// the commit's `timestamp` (milliseconds since the epoch).
    pub async fn commit_infos(
        &self,
        limit: usize,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, LakeError> {
        let infos: Vec<_> =
            self.table.history(Some(limit)).try_collect().await.map_err(|e| LakeError::delta(&self.name, e))?;
        let with_time = |i: deltalake::kernel::CommitInfo| {
            let mut m: serde_json::Map<String, serde_json::Value> = i.info.into_iter().collect();
            if let Some(ms) = i.timestamp {
                m.insert("timestamp".into(), ms.into());
            }
            m
        };
        Ok(infos.into_iter().map(with_time).collect())
    }
}
