//! Keeping a table fast to read: compaction rewrites small files into files of
//! the target size (a `dataChange: false` commit, so results and readers'
//! positions are untouched); vacuum deletes files no version younger than the
//! retention period needs.

use std::num::NonZeroU64;
use std::time::Duration;

use deltalake::DeltaTableError;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use crate::{LakeError, LakeTable};

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compacted {
    pub files_removed: u64,
    pub files_added: u64,
}

impl LakeTable {
    /// Files smaller than half the target size.
    pub fn small_files(&self) -> Result<usize, LakeError> {
        let snapshot = self.table.snapshot().map_err(|e| LakeError::delta(&self.name, e))?;
        Ok(snapshot.log_data().iter().filter(|f| (f.size() as u64) < self.target_file_size / 2).count())
    }

    /// Rewrites small files into files of about the target size.
    pub async fn compact(&mut self) -> Result<Compacted, LakeError> {
        let target = NonZeroU64::new(self.target_file_size.max(1)).expect("not zero");
        let (table, metrics) = self
            .table
            .clone()
            .optimize()
            .with_target_size(target)
            .await
            .map_err(|e| LakeError::delta(&self.name, e))?;
        self.table = table;
        Ok(Compacted { files_removed: metrics.num_files_removed, files_added: metrics.num_files_added })
    }

    /// Deletes data files unreferenced for longer than `retention`; returns how many.
    pub async fn vacuum(&mut self, retention: Duration) -> Result<usize, LakeError> {
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
        Ok(metrics.files_deleted.len())
    }

    /// Deletes the table: every object under its location (its log and data).
    pub async fn destroy(self) -> Result<usize, LakeError> {
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

    /// The custom `info` of the latest `limit` commits (newest first).
    pub async fn commit_infos(
        &self,
        limit: usize,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, LakeError> {
        let infos: Vec<_> =
            self.table.history(Some(limit)).try_collect().await.map_err(|e| LakeError::delta(&self.name, e))?;
        Ok(infos.into_iter().map(|i| i.info.into_iter().collect()).collect())
    }
}
