//! What a downstream table reads from its input, by Delta version:
//! * appends: the data files appended in a range of versions, found in the
//!   commit log, then scanned by DataFusion at the version that still holds
//!   them. The input must be append-only. A compaction (files removed and
//!   added with `dataChange: false`) moves rows already read; a range stops
//!   before one, and a range that starts on one skips it. A commit that
//!   removes rows (`dataChange: true`) is refused with a clear error;
//! * changes: the table's Change Data Feed over a range of versions, read by
//!   delta-rs: the change files a merge wrote (`lake/merge.rs`), else a
//!   version's added files as inserts and removed files as deletes. A new
//!   reader's first range is a snapshot (the rows, as inserts); a reader
//!   turns the feed on when the table keeps none (decision 0011).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use deltalake::DeltaTableError;
use deltalake::datafusion::catalog::{Session, TableProvider};
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode};
use deltalake::datafusion::common::{Column, DataFusionError, Result as DfResult, ScalarValue};
use deltalake::datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use deltalake::datafusion::physical_plan::empty::EmptyExec;
use deltalake::datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use deltalake::datafusion::prelude::{SessionContext, lit};
use deltalake::delta_datafusion::DeltaCdfTableProvider;

use crate::{LakeError, LakeTable};

/// Why a table's changes cannot be read.
const NO_FEED: &str = "it keeps no change feed (`delta.enableChangeDataFeed`)";

/// What to do about a range the feed does not cover.
const REBUILD: &str = "rebuild the tables that read its changes (`ingesta rebuild PIPELINE TABLE`): \
     they start again from a snapshot of its rows";

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

/// Whether a table with these columns may keep a feed (Delta's rule: its
/// rows would be ambiguous with the columns the feed adds).
pub(crate) fn has_change_column(schema: &Schema) -> bool {
    schema.fields().iter().any(|f| CHANGE_COLUMNS.contains(&f.name().as_str()))
}

/// Data files appended after version `after`, up to and including `to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appended {
    pub after: i64,
    pub to: i64,
    pub files: Vec<AddedFile>,
    pub bytes: u64,
    /// A reader's first range of changes: the rows at version `to` (the
    /// files in `files`), read as inserts.
    pub snapshot: bool,
}

/// A data file as its `add` action describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddedFile {
    /// Relative to the table root, as written in the log (URL-encoded).
    pub path: String,
    pub size: u64,
    /// By column name, so a file's partition compares and hashes as a whole.
    pub partition_values: BTreeMap<String, Option<String>>,
    /// Delta's statistics (JSON: `numRecords`, `minValues`, ...), when written.
    pub stats: Option<String>,
    /// Whether a deletion vector hides some of the file's rows.
    pub deletion_vector: bool,
}

impl AddedFile {
    fn from_action(add: &serde_json::Value) -> Self {
        let partition_values = add["partitionValues"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string))).collect())
            .unwrap_or_default();
        Self {
            path: add["path"].as_str().unwrap_or_default().to_string(),
            size: add["size"].as_u64().unwrap_or(0),
            partition_values,
            stats: add["stats"].as_str().map(str::to_string),
            deletion_vector: !add["deletionVector"].is_null(),
        }
    }
}

impl Appended {
    /// The files' paths, as written in the log.
    pub fn paths(&self) -> Vec<String> {
        self.files.iter().map(|f| f.path.clone()).collect()
    }
}

impl LakeTable {
    /// The table's current version.
    pub fn version(&self) -> i64 {
        debug_assert!(self.is_settled(), "the version of `{}` before its last commit settled", self.name);
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
        let current = self.tip();
        let end = until.unwrap_or(current).min(current);
        let mut out = Appended { after, to: after, ..Default::default() };
        for v in after + 1..=end {
            let mut adds = Vec::new();
            let (mut moved, mut removed) = (false, false);
            let read;
            let actions = match self.followed.iter().find(|(f, _)| *f == v) {
                Some((_, followed)) => followed,
                None => {
                    read = self.commit_actions(v).await?;
                    &read
                }
            };
            for action in actions {
                if let Some(add) = action.get("add") {
                    if add["dataChange"].as_bool().unwrap_or(true) {
                        adds.push(AddedFile::from_action(add));
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
                if out.files.is_empty() {
                    out.to = v; // a compaction of rows already read: nothing new
                    continue;
                }
                break;
            }
            out.bytes += adds.iter().map(|f| f.size).sum::<u64>();
            out.files.extend(adds);
            out.to = v;
            if out.bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// The actions of commit `v`, as JSON.
    async fn commit_actions(&self, v: i64) -> Result<Vec<serde_json::Value>, LakeError> {
        self.read_actions(v).await?.ok_or_else(|| LakeError::Unsupported {
            table: self.name.clone(),
            reason: format!("commit {v} is no longer in the log; rebuild the tables that read this one"),
        })
    }

    /// The actions of commit `v`, as JSON, or `None` when there is no such commit file.
    pub(crate) async fn read_actions(&self, v: i64) -> Result<Option<Vec<serde_json::Value>>, LakeError> {
        let err = |e: DeltaTableError| LakeError::delta(&self.name, e);
        let Some(bytes) = self.table.log_store().read_commit_entry(v as u64).await.map_err(err)? else {
            return Ok(None);
        };
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|line| {
                serde_json::from_slice(line).map_err(|e| err(DeltaTableError::Generic(format!("commit {v}: {e}"))))
            })
            .collect::<Result<_, _>>()
            .map(Some)
    }

    /// Turns the table's Change Data Feed on (one commit of its metadata),
    /// unless it is on; true when it was turned on. The feed covers the
    /// versions from then on.
    pub async fn enable_change_feed(&mut self) -> Result<bool, LakeError> {
        if self.change_feed() {
            return Ok(false);
        }
        if has_change_column(&self.arrow_schema()?) {
            return Err(LakeError::Unsupported {
                table: self.name.clone(),
                reason: format!(
                    "{NO_FEED} and cannot keep one: a column is named _change_type, _commit_version or _commit_timestamp"
                ),
            });
        }
        let props = [(FEED_PROPERTY.to_string(), "true".to_string())].into();
        self.table = self
            .table
            .clone()
            .set_tbl_properties()
            .with_properties(props)
            .await
            .map_err(|e| LakeError::delta(&self.name, e))?;
        Ok(true)
    }

    /// The versions after `after` a reader of the table's Change Data Feed
    /// takes next, ending at `until` (or the current version), cut at a
    /// version boundary once `max_bytes` of changes are collected. Unlike
    /// [`Self::appended_since`] every version counts (updates and deletes
    /// are changes too); a compaction changes nothing. The table must keep
    /// its feed over the whole range.
    ///
    /// A new reader (`after` is -1) starts from a snapshot: the rows at the
    /// end version, as inserts, whatever came before (Databricks' change
    /// feed readers and Debezium start the same way). So a feed turned on
    /// late serves new readers too.
    pub async fn changed_since(&self, after: i64, until: Option<i64>, max_bytes: u64) -> Result<Appended, LakeError> {
        let unsupported = |reason: String| Err(LakeError::Unsupported { table: self.name.clone(), reason });
        if !self.change_feed() {
            return unsupported(format!("{NO_FEED}; a table that reads it with `read: changes` turns it on"));
        }
        let current = self.version();
        let end = until.unwrap_or(current).min(current);
        if after < 0 {
            return self.snapshot_range(end).await;
        }
        let mut out = Appended { after, to: after, ..Default::default() };
        for v in after + 1..=end {
            let (mut files, mut recorded, mut kept, mut turned_on) = (0u64, None::<u64>, true, false);
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
                } else if let Some(info) = action.get("commitInfo") {
                    turned_on = info["operation"] == "SET TBLPROPERTIES"
                        && info["operationParameters"].to_string().contains(FEED_PROPERTY);
                }
            }
            if !kept {
                return unsupported(format!("{NO_FEED} at version {v}, which a reader has not read yet; {REBUILD}"));
            }
            if turned_on && v > after + 1 {
                let unread = format!("{}..{}", after + 1, v - 1);
                return unsupported(format!(
                    "{NO_FEED} before version {v}, and versions {unread} are unread; {REBUILD}"
                ));
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

    /// The rows at version `at` as a first range of changes.
    async fn snapshot_range(&self, at: i64) -> Result<Appended, LakeError> {
        let err = |e: DeltaTableError| LakeError::delta(&self.name, e);
        let mut table = self.table.clone();
        if at != self.version() {
            table.load_version(at as u64).await.map_err(err)?;
        }
        let snapshot = table.snapshot().map_err(err)?;
        let files = snapshot.log_data();
        let files: Vec<AddedFile> = files
            .iter()
            .map(|f| AddedFile { path: f.path().to_string(), size: f.size() as u64, ..Default::default() })
            .collect();
        let bytes = files.iter().map(|f| f.size).sum();
        Ok(Appended { after: -1, to: at, files, bytes, snapshot: true })
    }

    /// A DataFusion table of the changes in `range` (from [`Self::changed_since`]):
    /// the table's columns and [`change_schema`]'s.
    pub async fn changes_provider(&self, range: &Appended) -> Result<Arc<dyn TableProvider>, LakeError> {
        if range.snapshot {
            return self.snapshot_provider(range).await;
        }
        let builder = self
            .table
            .clone()
            .scan_cdf()
            .with_starting_version((range.after + 1) as u64)
            .with_ending_version(range.to as u64);
        let provider = DeltaCdfTableProvider::try_new(builder).map_err(|e| LakeError::delta(&self.name, e))?;
        Ok(Arc::new(Changes(provider)))
    }

    /// The rows of a snapshot range, each an insert of version `range.to`.
    async fn snapshot_provider(&self, range: &Appended) -> Result<Arc<dyn TableProvider>, LakeError> {
        let generic = |e: DataFusionError| LakeError::delta(&self.name, DeltaTableError::Generic(e.to_string()));
        let rows = self.files_provider(range.to, &range.paths()).await?;
        let time = self.commit_actions(range.to).await?.iter().find_map(|a| a["commitInfo"]["timestamp"].as_i64());
        let [kind, version, at] = CHANGE_COLUMNS;
        let mut columns: Vec<Expr> =
            rows.schema().fields().iter().map(|f| Expr::Column(Column::from_name(f.name()))).collect();
        columns.push(lit(ScalarValue::Utf8(Some("insert".into()))).alias(kind));
        columns.push(lit(ScalarValue::UInt64(Some(range.to as u64))).alias(version));
        columns.push(lit(ScalarValue::TimestampMillisecond(time, None)).alias(at));
        let ctx = SessionContext::new();
        let frame = ctx.read_table(rows).map_err(generic)?.select(columns).map_err(generic)?;
        Ok(frame.into_view())
    }

    /// A DataFusion table of the rows in `paths` (as in the log, e.g. from
    /// [`Self::appended_since`]), read at `version`, where they are all present.
    pub async fn files_provider(&self, version: i64, paths: &[String]) -> Result<Arc<dyn TableProvider>, LakeError> {
        self.files_table(version, paths, None).await
    }

    /// Like [`Self::files_provider`], with a column `file_column` naming each row's file.
    pub async fn files_table(
        &self,
        version: i64,
        paths: &[String],
        file_column: Option<&str>,
    ) -> Result<Arc<dyn TableProvider>, LakeError> {
        let err = |e: DeltaTableError| LakeError::delta(&self.name, e);
        let table = self.at_version(version).await?;
        let mut builder = table.table_provider().with_file_paths(paths.iter().cloned());
        if let Some(c) = file_column {
            builder = builder.with_file_column(c);
        }
        let provider = builder.build().await.map_err(|e| err(DeltaTableError::Generic(e.to_string())))?;
        Ok(Arc::new(provider))
    }

    /// The table as of `version` (this handle's own when it is the current one).
    pub(crate) async fn at_version(&self, version: i64) -> Result<deltalake::DeltaTable, LakeError> {
        let mut table = self.table.clone();
        if version != self.version() {
            table.load_version(version as u64).await.map_err(|e| LakeError::delta(&self.name, e))?;
        }
        Ok(table)
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
