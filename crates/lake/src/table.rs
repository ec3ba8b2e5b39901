//! One Delta table: created on first use with its schema and partitioning,
//! appended to with input positions as `txn` actions in the same commit.

use std::collections::HashMap;

use arrow_array::RecordBatch;
use arrow_schema::Schema;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, PostCommit};
use deltalake::kernel::{Action, Add, StructType, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::table::state::DeltaTableState;
use deltalake::writer::RecordBatchWriter;
use deltalake::{DeltaTable, DeltaTableBuilder, TableProperty};
use ingesta_core::WriteMode;
use object_store::ObjectStoreExt;
use url::Url;

use crate::changes::has_change_column;
use crate::encoding::writer_properties;
use crate::root::Snapshots;
use crate::writers::Writers;
use crate::{Lake, LakeError};

/// Facts about a table's current version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableStats {
    pub version: i64,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// Data files are cut at about this size unless the table says otherwise.
const DEFAULT_FILE_SIZE: u64 = 128 << 20;

/// A checkpoint every this many commits (Spark's default; delta-rs's is 100).
/// Opening a table replays the commits after the last checkpoint, and
/// delta-rs parses each commit file with a JSON decoder sized for the whole
/// log schema: an open's cost grows with the commits since the checkpoint.
const CHECKPOINT_INTERVAL: &str = "10";

pub struct LakeTable {
    pub(crate) name: String,
    pub(crate) table: DeltaTable,
    pub(crate) target_file_size: u64,
    /// At most this many writers (threads) encode an append's data files.
    pub(crate) writers: usize,
    /// The lake's object-store options (for writers of files beside the data).
    pub(crate) storage: HashMap<String, String>,
    /// The commit file of the version last refreshed to, as the store saw it
    /// (`refresh` checks it is still there, unchanged).
    seen: Option<Seen>,
    pub(crate) snapshots: Snapshots,
    pub(crate) recent: crate::recent::RecentFiles,
    /// Whether a commit returns once its commit file is written, its state
    /// update left to [`LakeTable::settle`] (`with_deferred_state`).
    defer: bool,
    /// The rest of the last commit: delta-rs's update of the state to the
    /// new version, and a checkpoint every `CHECKPOINT_INTERVAL` commits.
    pub(crate) after_commit: Option<Box<PostCommit>>,
    /// Commits after the state's version that [`LakeTable::follow`] read
    /// without bringing the state to them (appends only), oldest first.
    pub(crate) followed: Vec<(i64, Vec<serde_json::Value>)>,
}

/// `follow` brings the state itself to the newest commit once it has
/// followed this many commits past it.
const MAX_FOLLOWED: usize = 10;

/// A commit file's identity: its version and its store metadata.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Seen {
    version: i64,
    modified: chrono::DateTime<chrono::Utc>,
    size: u64,
}

impl LakeTable {
    /// Opens the table at `url`, or `None` when there is none yet.
    pub async fn open(lake: &Lake, name: &str, url: &Url) -> Result<Option<Self>, LakeError> {
        let table = unloaded(name, url, lake.storage())?;
        let published = lake.snapshots.newer(table.table_url(), -1);
        let mut t = Self {
            name: name.to_string(),
            table,
            target_file_size: DEFAULT_FILE_SIZE,
            writers: 1,
            storage: lake.storage().clone(),
            seen: None,
            snapshots: lake.snapshots.clone(),
            recent: lake.recent.clone(),
            defer: false,
            after_commit: None,
            followed: Vec::new(),
        };
        // committed by this process a moment ago (another task's table), and
        // still the same commit file: its state, then only newer commits read
        if let Some((state, seen)) = published
            && t.commit_file(seen.version).await? == Some(seen.clone())
        {
            t.table.state = Some(state);
            t.seen = Some(seen);
            t.catch_up().await?;
            t.settled().await?;
            return Ok(Some(t));
        }
        if !t.table.verify_deltatable_existence().await.map_err(|e| LakeError::delta(name, e))? {
            return Ok(None);
        }
        t.table.load().await.map_err(|e| LakeError::delta(name, e))?;
        t.settled().await?;
        Ok(Some(t))
    }

    /// Opens the table, creating it with `schema` and `partitions` when absent.
    pub async fn open_or_create(
        lake: &Lake,
        name: &str,
        url: &Url,
        schema: &Schema,
        partitions: &[String],
        description: &str,
    ) -> Result<Self, LakeError> {
        if let Some(t) = Self::open(lake, name, url).await? {
            return Ok(t);
        }
        let kernel: StructType = schema.try_into_kernel().map_err(|e| LakeError::delta(name, e.into()))?;
        if let Ok(path) = url.to_file_path() {
            std::fs::create_dir_all(&path).map_err(|e| LakeError::Root {
                root: path.display().to_string(),
                reason: format!("cannot create the table folder: {e}"),
            })?;
        }
        let table = unloaded(name, url, lake.storage())?;
        // a table whose changes are read keeps a feed (unless a column name
        // forbids it): its merges record what they changed
        let feed = lake.keeps_change_feed(name) && !has_change_column(schema);
        let mut create = table
            .create()
            .with_table_name(name)
            .with_comment(description)
            .with_configuration_property(TableProperty::CheckpointInterval, Some(CHECKPOINT_INTERVAL));
        if feed {
            create = create.with_configuration_property(TableProperty::EnableChangeDataFeed, Some("true"));
        }
        let created = create
            .with_columns(kernel.fields().cloned())
            .with_partition_columns(partitions.to_vec())
            .with_save_mode(SaveMode::Ignore)
            .await
            .map_err(|e| LakeError::delta(name, e))?;
        Ok(Self {
            name: name.to_string(),
            table: created,
            target_file_size: DEFAULT_FILE_SIZE,
            writers: 1,
            storage: lake.storage().clone(),
            seen: None,
            snapshots: lake.snapshots.clone(),
            recent: lake.recent.clone(),
            defer: false,
            after_commit: None,
            followed: Vec::new(),
        })
    }

    /// A writer of new data files for this table, cut at its target size.
    pub(crate) fn writer(&self) -> Result<RecordBatchWriter, deltalake::DeltaTableError> {
        let writer = RecordBatchWriter::for_table(&self.table)?.with_target_file_size(self.target_file_size);
        let props = writer_properties(&writer.arrow_schema());
        Ok(writer.with_writer_properties(props))
    }

    pub fn with_target_file_size(mut self, bytes: u64) -> Self {
        self.target_file_size = bytes;
        self
    }

    /// Encodes an append's data files on up to `n` threads (one more for
    /// every 256 Ki rows staged), so a large commit's last files are encoded
    /// side by side instead of on one thread while the others wait.
    pub fn with_parallel_writers(mut self, n: usize) -> Self {
        self.writers = n.max(1);
        self
    }

    /// Lets a commit return once its commit file is written: the data is in
    /// the table then, for every reader. The state update after it (delta-rs
    /// lists the log, reads the new commit, and writes a checkpoint every
    /// `CHECKPOINT_INTERVAL` commits) waits for [`LakeTable::settle`], which
    /// the next refresh, commit or maintenance call runs first. Until then
    /// the handle's state is the one before the commit: settle before reading
    /// it (positions, stats, schema).
    pub fn with_deferred_state(mut self, defer: bool) -> Self {
        self.defer = defer;
        self
    }

    /// Brings the state to the last commit when that commit deferred it
    /// (`with_deferred_state`). The commit itself landed whatever happens
    /// here: when delta-rs's update fails (say, its checkpoint), the state is
    /// read from the log instead.
    pub async fn settle(&mut self) -> Result<(), LakeError> {
        let Some(after) = self.after_commit.take() else { return Ok(()) };
        match (*after).await {
            Ok(done) => self.table.state = Some(done.snapshot()),
            Err(e) => {
                tracing::warn!(table = %self.name, error = %e, "updating the state after a commit failed; reading the log");
                self.table.update_state().await.map_err(|e| LakeError::delta(&self.name, e))?;
            }
        }
        self.settled().await
    }

    /// Commits `actions` on `snapshot`, the state they were made from (so a
    /// conflicting commit since makes this one fail), and takes the commit
    /// (`landed`): the one way the lake writes its log. Returns the version.
    pub(crate) async fn write_commit(
        &mut self,
        snapshot: &DeltaTableState,
        actions: Vec<Action>,
        operation: DeltaOperation,
        props: CommitProperties,
    ) -> Result<i64, LakeError> {
        let name = self.name.clone();
        let err = |e| LakeError::delta(&name, e);
        let written = CommitBuilder::from(props)
            .with_actions(actions)
            .build(Some(snapshot), self.table.log_store(), operation)
            .into_prepared_commit_future()
            .await
            .map_err(err)?
            .await
            .map_err(err)?;
        self.landed(written).await
    }

    /// Takes a commit whose commit file is written: settles it now, or
    /// leaves that for later when the table defers it. Returns its version.
    pub(crate) async fn landed(&mut self, after: PostCommit) -> Result<i64, LakeError> {
        let version = after.version as i64;
        self.after_commit = Some(Box::new(after));
        if !self.defer {
            self.settle().await?;
        }
        Ok(version)
    }

    /// Whether the handle's state is the table's as this process last
    /// committed it (no commit waiting for [`LakeTable::settle`]).
    pub(crate) fn is_settled(&self) -> bool {
        self.after_commit.is_none()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table's columns as Arrow types.
    pub fn arrow_schema(&self) -> Result<Schema, LakeError> {
        let snapshot = self.table.snapshot().map_err(|e| LakeError::delta(&self.name, e))?;
        let schema = snapshot.schema();
        schema.as_ref().try_into_arrow().map_err(|e| LakeError::delta(&self.name, e.into()))
    }

    /// Whether the table keeps a Change Data Feed (`delta.enableChangeDataFeed`).
    pub fn change_feed(&self) -> bool {
        self.table.snapshot().is_ok_and(|s| {
            s.metadata()
                .configuration()
                .get(crate::changes::FEED_PROPERTY)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        })
    }

    pub fn partition_columns(&self) -> Vec<String> {
        self.table.snapshot().map(|s| s.metadata().partition_columns().to_vec()).unwrap_or_default()
    }

    /// Reloads the table to its latest version (another process may have
    /// committed): only the commits after the one in memory are read. A table
    /// deleted and created again meanwhile (`ingesta rebuild`) is loaded
    /// afresh instead: the commit file last refreshed to is gone or another
    /// file, and the new log's later commits replayed over the old table
    /// would mix the two.
    pub async fn refresh(&mut self) -> Result<(), LakeError> {
        self.settle().await?;
        self.followed.clear();
        let err = |e| LakeError::delta(&self.name, e);
        if let Some(seen) = &self.seen
            && self.commit_file(seen.version).await? != Some(seen.clone())
        {
            tracing::info!(table = %self.name, "the table was replaced since it was read; loading it afresh");
            let mut table = unloaded(&self.name, self.table.table_url(), &self.storage)?;
            table.load().await.map_err(err)?;
            self.table = table;
            self.seen = None; // a commit file of the new table
        } else {
            self.catch_up().await?;
        }
        self.settled().await
    }

    /// Like [`LakeTable::refresh`] for a reader of the table's appends
    /// ([`LakeTable::appended_since`]): the commits after the state's
    /// version are read (their actions, which that reader needs anyway), and
    /// the state is left where it is while they only add files and record
    /// positions. What a reader takes from the state (the table's identity,
    /// columns, partitioning) is the same at those versions, and delta-rs's
    /// update of the state (a listing of the log, a replay of the new
    /// commits) stays off the reader's path. The state moves on when this
    /// process publishes a newer one (the writer's task settled its commit),
    /// when a commit changes the table's metadata or protocol, and after
    /// `MAX_FOLLOWED` commits. [`LakeTable::tip`] is the newest version read.
    pub async fn follow(&mut self) -> Result<(), LakeError> {
        if let Some(seen) = &self.seen
            && self.commit_file(seen.version).await? != Some(seen.clone())
        {
            return self.refresh().await; // replaced: loaded afresh
        }
        self.take_published();
        let v = self.version();
        self.followed.retain(|(f, _)| *f > v);
        loop {
            let next = self.tip() + 1;
            let Some(actions) = self.read_actions(next).await? else { break };
            let changes_table = actions.iter().any(|a| a.get("metaData").is_some() || a.get("protocol").is_some());
            if changes_table || self.followed.len() >= MAX_FOLLOWED {
                self.followed.clear();
                self.table.update_state().await.map_err(|e| LakeError::delta(&self.name, e))?;
                return self.settled().await;
            }
            self.followed.push((next, actions));
        }
        Ok(())
    }

    /// The newest version read: the state's, or the last commit
    /// [`LakeTable::follow`] read past it.
    pub fn tip(&self) -> i64 {
        self.followed.last().map_or_else(|| self.version(), |(v, _)| *v)
    }

    /// Brings a state whose commit file is still the table's to its newest
    /// commit: the state this process published since (another task's
    /// table), then the log only when the next commit file exists (one
    /// `head`, where delta-rs lists the log).
    async fn catch_up(&mut self) -> Result<(), LakeError> {
        self.take_published();
        if self.commit_file(self.version() + 1).await?.is_some() {
            self.table.update_state().await.map_err(|e| LakeError::delta(&self.name, e))?;
        }
        Ok(())
    }

    /// Takes the state this process published since the handle's version
    /// (another task's handle of the table committed or read further).
    fn take_published(&mut self) {
        if let Some((state, seen)) = self.snapshots.newer(self.table.table_url(), self.version()) {
            self.table.state = Some(state);
            self.seen = Some(seen);
        }
    }

    /// Records the commit file of the version in memory when that version
    /// changed (a load, a refresh, a commit), and offers the state with it to
    /// this process's other handles of the table: the next task to open it
    /// (bronze's rows are silver's input) takes it instead of replaying the log.
    pub(crate) async fn settled(&mut self) -> Result<(), LakeError> {
        if self.seen.as_ref().map(|s| s.version) == Some(self.version()) {
            return Ok(());
        }
        self.seen = self.commit_file(self.version()).await?;
        if let (Some(state), Some(seen)) = (&self.table.state, &self.seen) {
            self.snapshots.publish(self.table.table_url(), state, seen.clone());
        }
        Ok(())
    }

    /// The store's metadata of the commit file of `version`, if it exists.
    async fn commit_file(&self, version: i64) -> Result<Option<Seen>, LakeError> {
        let path = object_store::path::Path::from(format!("_delta_log/{version:020}.json"));
        match self.table.log_store().object_store(None).head(&path).await {
            Ok(meta) => Ok(Some(Seen { version, modified: meta.last_modified, size: meta.size })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(LakeError::delta(&self.name, e.into())),
        }
    }

    pub fn stats(&self) -> Result<TableStats, LakeError> {
        debug_assert!(self.is_settled(), "stats of `{}` before its last commit settled", self.name);
        let snapshot = self.table.snapshot().map_err(|e| LakeError::delta(&self.name, e))?;
        let mut s = TableStats { version: snapshot.version() as i64, ..Default::default() };
        for f in snapshot.log_data().iter() {
            s.files += 1;
            s.rows += f.num_records().unwrap_or(0) as u64;
            s.bytes += f.size() as u64;
        }
        Ok(s)
    }

    /// Every input position recorded in the table (`app_id -> version`), read
    /// in one pass; `None` when the log's layout asks for per-input lookups.
    pub async fn positions(&self) -> Result<Option<HashMap<String, i64>>, LakeError> {
        let version = self.table.snapshot().map_err(|e| LakeError::delta(&self.name, e))?.version() as i64;
        crate::ledger::transactions(&self.table, version).await.map_err(|e| LakeError::delta(&self.name, e))
    }

    /// Adds nullable columns (schema evolution); their values are null in
    /// the rows already stored.
    pub async fn add_columns(&mut self, fields: &[arrow_schema::Field]) -> Result<(), LakeError> {
        let schema = Schema::new(fields.to_vec());
        let kernel: StructType = (&schema).try_into_kernel().map_err(|e| LakeError::delta(&self.name, e.into()))?;
        let table = self
            .table
            .clone()
            .add_columns()
            .with_fields(kernel.fields().cloned().collect::<Vec<_>>())
            .await
            .map_err(|e| LakeError::delta(&self.name, e))?;
        self.table = table;
        Ok(())
    }

    /// The underlying delta-rs table (for maintenance: checkpoints, vacuum).
    pub fn delta(&self) -> &DeltaTable {
        &self.table
    }

    /// URIs of the table's current data files (for readers and tests).
    pub fn file_uris(&self) -> Result<Vec<String>, LakeError> {
        Ok(self.table.get_file_uris().map_err(|e| LakeError::delta(&self.name, e))?.collect())
    }
}

impl LakeTable {
    /// Commit properties: the input positions as `txn` actions, and `info`.
    /// The log's expired commits are deleted by the vacuum (`maintain.rs`),
    /// not after each commit (delta-rs's default lists the log each time).
    pub(crate) fn props(positions: Vec<(String, i64)>, info: Vec<(String, String)>) -> CommitProperties {
        let txns = positions.into_iter().map(|(id, v)| Transaction::new(id, v)).collect();
        let info: HashMap<String, serde_json::Value> =
            info.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
        CommitProperties::default()
            .with_application_transactions(txns)
            .with_metadata(info)
            .with_cleanup_expired_logs(Some(false))
    }
}

/// The table at `url`, its log not read yet.
fn unloaded(name: &str, url: &Url, storage: &HashMap<String, String>) -> Result<DeltaTable, LakeError> {
    DeltaTableBuilder::from_url(url.clone())
        .map_err(|e| LakeError::delta(name, e))?
        .with_storage_options(storage.clone())
        .build()
        .map_err(|e| LakeError::delta(name, e))
}

/// Rows accepted for a commit: appended rows are already in Parquet files of
/// the table (not yet in its log); rows of the key-based modes wait in memory
/// for the merge the commit runs.
pub struct Staged {
    pub(crate) files: Writers,
    pub(crate) keyed: Option<(WriteMode, Vec<RecordBatch>)>,
    pub(crate) rows: u64,
    /// Data files copied from an input (`lake/copy.rs`), already written.
    pub(crate) copied: Vec<Add>,
}

impl Staged {
    /// Whether the rows are appended (not merged by key).
    pub(crate) fn appends(&self) -> bool {
        self.keyed.is_none()
    }

    pub(crate) fn add_copy(&mut self, add: Add, rows: u64) {
        self.copied.push(add);
        self.rows += rows;
    }
}
