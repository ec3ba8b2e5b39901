//! What a downstream table reads from its input: the data files appended in a
//! range of versions, found in the commit log, then scanned by DataFusion at
//! the version that still holds them.
//!
//! Inputs are append-only tables. A compaction (files removed and added with
//! `dataChange: false`) moves rows already read; a range stops before one, and
//! a range that starts on one skips it. A commit that removes rows
//! (`dataChange: true`) is refused with a clear error: such a table must be
//! read whole (as a lookup), not incrementally.

use std::sync::Arc;

use deltalake::DeltaTableError;
use deltalake::datafusion::catalog::TableProvider;

use crate::{LakeError, LakeTable};

/// Data files appended after version `after`, up to and including `to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    pub after: i64,
    pub to: i64,
    /// Paths relative to the table root, as written in the log.
    pub paths: Vec<String>,
    pub bytes: u64,
}

impl LakeTable {
    /// The table's current version.
    pub fn version(&self) -> i64 {
        self.table.version().map(|v| v as i64).unwrap_or(-1)
    }

    /// The table's identity (Delta metadata id): a rebuilt table gets a new one.
    pub fn table_id(&self) -> Result<String, LakeError> {
        let snapshot = self.table.snapshot().map_err(|e| LakeError::delta(&self.name, e))?;
        Ok(snapshot.metadata().id().to_string())
    }

    /// The files appended after `after`, ending at `until` (or the current
    /// version), cut at a version boundary once `max_bytes` are collected.
    pub async fn appended_since(&self, after: i64, until: Option<i64>, max_bytes: u64) -> Result<Appended, LakeError> {
        let current = self.version();
        let end = until.unwrap_or(current).min(current);
        let mut out = Appended { after, to: after, ..Default::default() };
        let err = |e: DeltaTableError| LakeError::delta(&self.name, e);
        for v in after + 1..=end {
            let Some(bytes) = self.table.log_store().read_commit_entry(v as u64).await.map_err(err)? else {
                return Err(LakeError::Unsupported {
                    table: self.name.clone(),
                    reason: format!("commit {v} is no longer in the log; rebuild the tables that read this one"),
                });
            };
            let mut adds = Vec::new();
            let (mut moved, mut removed) = (false, false);
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let action: serde_json::Value = serde_json::from_slice(line)
                    .map_err(|e| err(DeltaTableError::Generic(format!("commit {v}: {e}"))))?;
                if let Some(add) = action.get("add") {
                    let path = add["path"].as_str().unwrap_or_default().to_string();
                    if add["dataChange"].as_bool().unwrap_or(true) {
                        adds.push((path, add["size"].as_u64().unwrap_or(0)));
                    } else {
                        moved = true;
                    }
                } else if let Some(remove) = action.get("remove") {
                    if remove["dataChange"].as_bool().unwrap_or(true) {
                        removed = true;
                    } else {
                        moved = true;
                    }
                }
            }
            if removed {
                return Err(LakeError::Unsupported {
                    table: self.name.clone(),
                    reason: format!(
                        "version {v} changed or deleted rows; a table read incrementally must be append-only \
                         (read this one whole, as a lookup)"
                    ),
                });
            }
            if moved {
                if out.paths.is_empty() {
                    out.to = v; // a compaction of rows already read: nothing new
                    continue;
                }
                break;
            }
            out.paths.extend(adds.iter().map(|(p, _)| p.clone()));
            out.bytes += adds.iter().map(|(_, s)| s).sum::<u64>();
            out.to = v;
            if out.bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// A DataFusion table of the rows in `files` (paths from [`Self::appended_since`]),
    /// read at `version`, where they are all present.
    pub async fn files_provider(&self, version: i64, files: &Appended) -> Result<Arc<dyn TableProvider>, LakeError> {
        let err = |e: DeltaTableError| LakeError::delta(&self.name, e);
        let mut table = self.table.clone();
        if version != self.version() {
            table.load_version(version as u64).await.map_err(err)?;
        }
        let provider = table
            .table_provider()
            .with_file_paths(files.paths.iter().cloned())
            .build()
            .await
            .map_err(|e| err(DeltaTableError::Generic(e.to_string())))?;
        Ok(Arc::new(provider))
    }

    /// A DataFusion table of the current rows.
    pub async fn provider(&self) -> Result<Arc<dyn TableProvider>, LakeError> {
        let provider = self
            .table
            .table_provider()
            .build()
            .await
            .map_err(|e| LakeError::delta(&self.name, DeltaTableError::Generic(e.to_string())))?;
        Ok(Arc::new(provider))
    }
}
