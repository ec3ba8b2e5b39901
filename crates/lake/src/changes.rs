//! What a downstream table reads from its input, by Delta version:
//! * appends: the data files appended in a range of versions, found in the
//!   commit log, then scanned by DataFusion at the version that still holds
//!   them. The input must be append-only. A compaction (files removed and
//!   added with `dataChange: false`) moves rows already read; a range stops
//!   before one, and a range that starts on one skips it. A commit that
//!   removes rows (`dataChange: true`) is refused with a clear error;
//! * changes: the table's Change Data Feed over a range of versions, read by
//!   delta-rs: the change files a merge wrote (`lake/merge.rs`), else a
//!   version's added files as inserts and removed files as deletes.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::DeltaTableError;
use deltalake::datafusion::catalog::{Session, TableProvider};
use deltalake::datafusion::common::Result as DfResult;
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode};
use deltalake::datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use deltalake::datafusion::physical_plan::empty::EmptyExec;
use deltalake::datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use deltalake::delta_datafusion::DeltaCdfTableProvider;

use crate::{LakeError, LakeTable};

/// Why a table's changes cannot be read.
const NO_FEED: &str = "it keeps no change feed (`delta.enableChangeDataFeed`). Tables Ingesta creates keep one \
     unless a column is named _change_type, _commit_version or _commit_timestamp; tables created before \
     the change feed (decision 0010) do not. Rebuild it (`ingesta rebuild PIPELINE TABLE`) to start one";

/// The table property that turns a table's Change Data Feed on.
pub(crate) const FEED_PROPERTY: &str = "delta.enableChangeDataFeed";

/// The columns a Change Data Feed adds to the rows it reads; a table holding
/// one of them keeps no feed (Delta's rule: its rows would be ambiguous).
pub const CHANGE_COLUMNS: [&str; 3] = [CHANGE_TYPE, "_commit_version", "_commit_timestamp"];

/// The change feed's column naming what happened to a row.
pub(crate) const CHANGE_TYPE: &str = "_change_type";

/// The columns a reader of a table's changes gets after the table's own:
/// what happened to the row (`insert`, `update_preimage`,
/// `update_postimage`, `delete`), and the version and time of its commit.
pub fn change_schema(table: &Schema) -> Schema {
    let mut fields: Vec<Field> = table.fields().iter().map(|f| f.as_ref().clone()).collect();
    let [kind, version, time] = CHANGE_COLUMNS;
    fields.push(Field::new(kind, DataType::Utf8, true));
    fields.push(Field::new(version, DataType::UInt64, true));
    fields.push(Field::new(time, DataType::Timestamp(TimeUnit::Millisecond, None), true));
    Schema::new(fields)
}

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
        for v in after + 1..=end {
            let mut adds = Vec::new();
            let (mut moved, mut removed) = (false, false);
            for action in self.commit_actions(v).await? {
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
                        "version {v} changed or deleted rows; read this table's changes (`read: changes`) \
                         or read it whole, as a lookup"
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

    /// The actions of commit `v`, as JSON.
    async fn commit_actions(&self, v: i64) -> Result<Vec<serde_json::Value>, LakeError> {
        let err = |e: DeltaTableError| LakeError::delta(&self.name, e);
        let Some(bytes) = self.table.log_store().read_commit_entry(v as u64).await.map_err(err)? else {
            return Err(LakeError::Unsupported {
                table: self.name.clone(),
                reason: format!("commit {v} is no longer in the log; rebuild the tables that read this one"),
            });
        };
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| {
                serde_json::from_slice(line).map_err(|e| err(DeltaTableError::Generic(format!("commit {v}: {e}"))))
            })
            .collect()
    }

    /// The versions after `after` a reader of the table's Change Data Feed
    /// takes next, ending at `until` (or the current version), cut at a
    /// version boundary once `max_bytes` of changes are collected. Unlike
    /// [`Self::appended_since`] every version counts (updates and deletes
    /// are changes too); a compaction changes nothing. The table must have
    /// kept its feed over the whole range.
    pub async fn changed_since(&self, after: i64, until: Option<i64>, max_bytes: u64) -> Result<Appended, LakeError> {
        let unsupported = |reason: String| Err(LakeError::Unsupported { table: self.name.clone(), reason });
        if !self.change_feed() {
            return unsupported(NO_FEED.to_string());
        }
        let current = self.version();
        let end = until.unwrap_or(current).min(current);
        let mut out = Appended { after, to: after, ..Default::default() };
        for v in after + 1..=end {
            let (mut files, mut recorded, mut kept) = (0u64, None::<u64>, true);
            for action in self.commit_actions(v).await? {
                let data = |kind: &str| action.get(kind).filter(|a| a["dataChange"].as_bool().unwrap_or(true));
                if let Some(file) = data("add").or_else(|| data("remove")) {
                    // without change files, removed files are read as deleted rows
                    files += file["size"].as_u64().unwrap_or(0);
                } else if let Some(cdc) = action.get("cdc") {
                    *recorded.get_or_insert(0) += cdc["size"].as_u64().unwrap_or(0);
                } else if let Some(meta) = action.get("metaData") {
                    let on = meta["configuration"][FEED_PROPERTY].as_str();
                    kept = on.is_some_and(|s| s.eq_ignore_ascii_case("true"));
                }
            }
            if !kept {
                return unsupported(format!("{NO_FEED} (not at version {v})"));
            }
            // a version with change files is read from them, else from its data files
            out.bytes += recorded.unwrap_or(files);
            out.to = v;
            if out.bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// A DataFusion table of the changes in `range` (from [`Self::changed_since`]):
    /// the table's columns and [`change_schema`]'s.
    pub fn changes_provider(&self, range: &Appended) -> Result<Arc<dyn TableProvider>, LakeError> {
        let builder = self
            .table
            .clone()
            .scan_cdf()
            .with_starting_version((range.after + 1) as u64)
            .with_ending_version(range.to as u64);
        let provider = DeltaCdfTableProvider::try_new(builder).map_err(|e| LakeError::delta(&self.name, e))?;
        Ok(Arc::new(Changes(provider)))
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

/// delta-rs's change feed table, its plan mended: it unions three scans
/// (change files, added files, removed files), and one with no file has no
/// partition, which DataFusion's plan check refuses once a sort is pushed
/// into it ("does not satisfy distribution requirements"). Such a scan
/// becomes an empty one of one partition.
#[derive(Debug)]
struct Changes(DeltaCdfTableProvider);

#[async_trait::async_trait]
impl TableProvider for Changes {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        self.0.table_type()
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = self.0.scan(state, projection, filters, limit).await?;
        let mended = plan.transform_up(|node| {
            if node.children().is_empty() && node.output_partitioning().partition_count() == 0 {
                let empty: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(node.schema()));
                return Ok(Transformed::yes(empty));
            }
            Ok(Transformed::no(node))
        })?;
        Ok(mended.data)
    }
}
