//! A silver or gold table: reads what its input table appended since the last
//! commit (by Delta version), runs the transform, checks the expectations and
//! writes in the table's mode. Each commit records the last input version it
//! covers as a `txn` (`ingesta/table/<input>/<input table id>`), in the same
//! commit as its rows, so a crash or rerun never reads a version twice or
//! skips one. The quarantine commits first with the same position; a rerun
//! after a crash between the two redoes exactly the same range.

mod backfill;
mod copy;
mod enrich;
mod from_warehouse;
pub mod live;
mod own;
pub mod plan;
mod query;
mod rows;
mod target;
mod truncate;
mod vault_hash;

use std::collections::BTreeMap;
use std::time::Instant;

use arrow_schema::SchemaRef;
use futures::StreamExt;
use ingesta_config::{ReadMode, Table, WriteModeName};
use ingesta_core::{DELETE_FLAG, Error, QuarantineRecord, TableStore};
use ingesta_lake::datafusion::catalog::TableProvider;
use ingesta_lake::datafusion::datasource::MemTable;
use ingesta_lake::{AddedFile, Appended, Lake, LakeTable, change_schema};

use crate::report::{Laps, Progress, TableReport};
use crate::upkeep::Upkeep;
pub use backfill::Backfilled;
pub use enrich::schema as enriched_schema;
use own::reload;
use query::Query;
pub use rows::RuleCount;
use rows::{Split, apply_expectations, conform};
use target::Target;
pub use target::spec as warehouse_spec;

/// The commit `info` key holding the expectation counts of a commit (JSON).
pub const EXPECTATIONS_INFO: &str = "ingesta.expectations";

/// The commit `info` key holding how many input files a commit copied (`copy.rs`).
pub const COPIED_INFO: &str = "ingesta.copied_files";

pub struct TransformTask {
    name: String,
    cfg: Table,
    lake: Lake,
    /// The input table, kept between runs of a long-running pipeline and
    /// refreshed (only its new commits are read) instead of opened anew.
    input: Option<LakeTable>,
    target: Option<Target>,
    /// The warehouse and where in it, for a table with `store: warehouse`.
    warehouse: Option<Box<(ingesta_warehouse::Warehouse, ingesta_warehouse::TableSpec)>>,
    /// What the transform reads beside its input, other than lake tables.
    side: Box<SideReads>,
    quarantine: Option<LakeTable>,
    upkeep: Upkeep,
    /// Parquet writers (threads) for this table's large commits.
    writers: usize,
    /// Whether the input's large files may be copied (`copy.rs`).
    copies: bool,
    /// In a long-running pipeline: a commit returns once its commit file is
    /// written, and delta-rs's state update after it and the upkeep run in
    /// the background (`settle_in_background`), after the pass.
    overlap: bool,
    /// That background work of the last pass: it hands the table back.
    settling: Option<tokio::task::JoinHandle<Settled>>,
    /// In a long-running pipeline: the last small append's query, run
    /// again over the next one's files (`query.rs`).
    kept: Option<Box<Query>>,
    /// The rules that decide which files are copied, as the last pass made them (`copy.rs`).
    rules: Option<Box<copy::Rules>>,
    /// The input's columns for which the query could not be prepared (it
    /// failed, or reads the clock): not tried again until they change.
    unprepared: Option<SchemaRef>,
}

/// A write under way: staged rows, the expectation counts, where they came from.
struct Write {
    staged: target::Staged,
    /// The stored columns (and the delete flag, for `delete_when`).
    stored: SchemaRef,
    /// The input and its versions read, as quarantine records name them.
    source: String,
    /// The input version this write covers.
    to: i64,
    counts: BTreeMap<String, RuleCount>,
    copied_files: usize,
    /// With `truncate_when`: the truncates met and the keys staged.
    truncates: Option<truncate::Truncates>,
}

/// Reads of a transform beside its input and lake lookups.
#[derive(Default)]
struct SideReads {
    /// The Redis lookups of `transform.enrich`.
    enricher: Option<enrich::Enricher>,
    /// Lookup tables kept in the warehouse: name, warehouse, where in it.
    warehouse: Vec<(String, ingesta_warehouse::Warehouse, ingesta_warehouse::TableSpec)>,
    /// The input, when it is kept in the warehouse.
    input: Option<(ingesta_warehouse::Warehouse, ingesta_warehouse::TableSpec)>,
}

/// The table and its upkeep after their background work, and how it went.
type Settled = (LakeTable, Upkeep, Result<(), ingesta_lake::LakeError>);

impl TransformTask {
    /// Keeps the table in `warehouse` (a table with `store: warehouse`).
    pub fn in_warehouse(mut self, warehouse: ingesta_warehouse::Warehouse) -> Self {
        self.warehouse = Some(Box::new((warehouse, target::spec(&self.name, &self.cfg))));
        self.copies = false; // column-chunk copies are the lake's
        self
    }

    /// Reads `transform.enrich`'s lookups from the Redis at `url`.
    pub fn enriched(mut self, url: &str) -> Result<Self, Error> {
        self.side.enricher = Some(enrich::Enricher::new(&self.name, url, &self.cfg.transform.enrich)?);
        Ok(self)
    }

    /// Reads the input from the warehouse, where its config `cfg` keeps it.
    pub fn from_warehouse(mut self, wh: ingesta_warehouse::Warehouse, cfg: &Table) -> Self {
        self.side.input = Some((wh, target::spec(&self.cfg.input, cfg)));
        self.copies = false; // column-chunk copies read lake files
        self
    }

    /// Reads the lookup table `name` from the warehouse (whole, at each pass).
    pub fn warehouse_lookup(mut self, name: &str, wh: ingesta_warehouse::Warehouse, cfg: &Table) -> Self {
        self.side.warehouse.push((name.to_string(), wh, target::spec(name, cfg)));
        self
    }

    pub fn new(lake: Lake, name: &str, cfg: &Table) -> Self {
        let upkeep = Upkeep::new(cfg);
        let writers = crate::parquet_writers();
        let copies = copy::copies(cfg);
        Self {
            name: name.to_string(),
            cfg: cfg.clone(),
            lake,
            input: None,
            target: None,
            warehouse: None,
            side: Box::default(),
            quarantine: None,
            upkeep,
            writers,
            copies,
            overlap: false,
            settling: None,
            kept: None,
            rules: None,
            unprepared: None,
        }
    }

    /// Lets each pass leave the state update after its commit and the
    /// upkeep to the background, started by `settle_in_background` (a
    /// long-running pipeline: the next pass of this table waits for them). A `run
    /// --once` does them in its pass, as the next table opens this one.
    pub fn overlap_upkeep(&mut self) {
        self.overlap = true;
    }

    /// Waits for the background work of the last pass (`overlap_upkeep`).
    /// When it failed the table is opened anew by the next pass.
    pub async fn settle(&mut self) {
        let Some(work) = self.settling.take() else { return };
        match work.await {
            Ok((t, upkeep, Ok(()))) => {
                self.target = Some(Target::Lake(t));
                self.upkeep = upkeep;
            }
            Ok((_, upkeep, Err(e))) => {
                tracing::warn!(table = %self.name, error = %e, "the state after the last commit could not be read; opening the table anew");
                self.upkeep = upkeep;
            }
            Err(e) => {
                tracing::warn!(table = %self.name, error = %e, "the upkeep after the last commit failed; opening the table anew")
            }
        }
    }

    /// Moves the table into a background task that settles its last commit
    /// and runs its upkeep (`overlap_upkeep`). A long-running pipeline calls
    /// it once the pass of every table is over: started beside the next
    /// tables' passes, that work (delta-rs's state update after a commit)
    /// slowed them on two cores (decision 0017's amendment). Not called, the
    /// next pass settles the commit before it reads.
    pub fn settle_in_background(&mut self) {
        if !self.overlap || self.settling.is_some() {
            return;
        }
        if !matches!(self.target, Some(Target::Lake(_))) {
            return;
        }
        let Some(mut t) = self.target.take().and_then(Target::into_lake) else { return };
        let mut upkeep = std::mem::replace(&mut self.upkeep, Upkeep::new(&self.cfg));
        self.settling = Some(tokio::spawn(async move {
            let settled = t.settle().await;
            if settled.is_ok() {
                upkeep.run(&mut t).await;
            }
            (t, upkeep, settled)
        }));
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Transforms everything the input appended since the last commit.
    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        if let Some(input) = self.side.input.clone() {
            return self.run_from_warehouse(input, progress).await;
        }
        let started = Instant::now();
        let mut laps = Laps::new();
        self.settle().await;
        laps.lap("settle");
        let mut report = TableReport { table: self.name.clone(), ..Default::default() };
        // The input is loaded once per run: versions it gains meanwhile are
        // read next run. It loads alongside this table and its quarantine
        // (a first open replays a Delta log: a few ms that overlap; later
        // runs of the same process read only the new commits).
        let lake = self.lake.clone();
        let (input_name, url) = (self.cfg.input.clone(), lake.table_url(&self.cfg.input));
        let mut input = self.input.take();
        let follows = self.cfg.read == ReadMode::Appends;
        tokio::try_join!(reload(&mut input, &lake, &input_name, &url, follows), self.open_own())?;
        laps.lap("open");
        if let Some(t) = &mut input
            && self.cfg.read == ReadMode::Changes
            && t.enable_change_feed().await?
        {
            tracing::info!(table = %self.name, input = %self.cfg.input, "turned the input's change feed on");
        }
        while let Some(input) = &input {
            let app = ingesta_core::app_id::table(&self.cfg.input, &input.table_id()?);
            let after = self.position(&app).await?;
            let q = match &self.quarantine {
                Some(t) => t.position(&app).await?.unwrap_or(-1),
                None => -1,
            };
            // A crash after the quarantine commit: redo exactly that range.
            let until = (q > after).then_some(q);
            let max = self.cfg.batch.max_bytes.0;
            let range = match self.cfg.read {
                ReadMode::Appends => input.appended_since(after, until, max).await?,
                ReadMode::Changes => input.changed_since(after, until, max).await?,
            };
            laps.lap("range");
            if range.to == after {
                self.prepare(input, &range).await;
                laps.lap("prepare");
                break;
            }
            let done = self.step(input, &app, &range, q, &mut report, &mut laps).await?;
            report.input_versions = Some((report.input_versions.map_or(range.after, |v| v.0), range.to));
            report.commits += 1;
            progress.show(&self.name, report.rows, report.quarantined, report.bytes, started);
            if !done {
                break;
            }
            // another writer may have committed meanwhile
            self.open_own().await?;
            laps.lap("open");
        }
        // a long-running pipeline starts them once every table's pass is
        // over (`settle_in_background`)
        if !self.overlap
            && let Some(t) = self.target.as_mut().and_then(Target::lake_mut)
        {
            self.upkeep.run(t).await;
        }
        laps.lap("upkeep");
        laps.log(&self.name);
        self.input = input;
        progress.done();
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Transforms and commits one range; false when there is nothing after it.
    async fn step(
        &mut self,
        input: &LakeTable,
        app: &str,
        range: &Appended,
        quarantined_to: i64,
        report: &mut TableReport,
        laps: &mut Laps,
    ) -> Result<bool, Error> {
        let small = self.cfg.read == ReadMode::Appends && input.reads_in_memory(&range.files);
        // a long-running pipeline plans a small append's query once (`query.rs`)
        let keeps = self.overlap && small && !range.files.is_empty() && self.cfg.transform.lookups.is_empty();
        let kept = match self.kept.take() {
            Some(q) if keeps && *q.input == input.arrow_schema()? => Some(q),
            _ => None,
        };
        let mut query = match kept {
            Some(q) => q,
            None => Box::new(self.query(input, range, &range.files).await?),
        };
        let mut w = self.begin_write(&query.out, range.after, range.to).await?;
        laps.lap("plan");
        let mut rest = None; // the files to read when some are copied
        if self.copies && !range.files.is_empty() {
            // files whose rows all pass are copied; the query reads the others
            let clean = copy::clean_files(&self.cfg, input, range, &mut self.rules).await?;
            let mut copied = Vec::new();
            let target = self.target.as_ref().expect("ensured");
            let (Target::Lake(lake_target), target::Staged::Lake(lake_staged)) = (target, &mut w.staged) else {
                return Err(Error::stop("column-chunk copies go to lake tables only"));
            };
            for (file, rows) in clean.iter().zip(lake_target.stage_copies(lake_staged, input, &clean).await?) {
                let Some(rows) = rows else { continue };
                for rule in &self.cfg.expect {
                    w.counts.entry(rule.name.clone()).or_default().passed += rows;
                }
                copied.push(file.path.clone());
            }
            w.copied_files = copied.len();
            if !copied.is_empty() {
                rest = Some(range.files.iter().filter(|f| !copied.contains(&f.path)).cloned().collect::<Vec<_>>());
            }
        }
        laps.lap("copy");
        // files in memory are read by the planned query, rebound to them
        let read = rest.as_deref().unwrap_or(&range.files);
        let rows = if rest.is_some() && read.is_empty() {
            None // every file copied: nothing left to read
        } else if small {
            Some(query.rows(input, Some(read)).await)
        } else if rest.is_none() {
            Some(query.rows(input, None).await)
        } else {
            Some(self.query(input, range, read).await?.rows(input, None).await)
        };
        let stream = match rows {
            Some(rows) => rows.map_err(|e| self.sql_error(e))?.boxed(),
            None => futures::stream::empty().boxed(),
        };
        laps.lap("scan");
        self.write_rows(w, stream, app, quarantined_to, report, laps).await?;
        if keeps && query.reruns {
            self.kept = Some(query);
        }
        report.bytes += range.bytes;
        Ok(range.to < input.tip())
    }

    /// Starts a write of the rows read from the input's versions `after+1..=to`,
    /// the table made (or given new columns) for the transform's columns `out`.
    async fn begin_write(&mut self, out: &SchemaRef, after: i64, to: i64) -> Result<Write, Error> {
        let produced = plan::with_history(&self.cfg, &enrich::schema(&self.cfg.transform.enrich, out));
        self.ensure_target(&produced).await?;
        let mut stored = self.target.as_ref().expect("ensured").write_schema(&produced)?;
        if let (WriteModeName::Scd2, Some(seq)) = (self.cfg.write.mode, &self.cfg.write.sequence) {
            // a version without a sequence has no place in the history: quarantined
            let fields = stored.fields().iter().map(|f| match f.name() == seq {
                true => std::sync::Arc::new(f.as_ref().clone().with_nullable(false)),
                false => f.clone(),
            });
            stored = arrow_schema::Schema::new(fields.collect::<Vec<_>>());
        }
        if self.cfg.write.delete_when.is_some() {
            // the flag goes with the rows to the merge, not into the table
            let flag = arrow_schema::Field::new(DELETE_FLAG, arrow_schema::DataType::Boolean, true);
            stored = arrow_schema::Schema::new([stored.fields().to_vec(), vec![std::sync::Arc::new(flag)]].concat());
        }
        let staged = self.target.as_ref().expect("ensured").begin(&self.write_mode())?;
        Ok(Write {
            staged,
            stored: std::sync::Arc::new(stored),
            source: format!("{}@{}..{}", self.cfg.input, after + 1, to),
            to,
            counts: BTreeMap::new(),
            copied_files: 0,
            truncates: self.cfg.write.truncate_when.as_ref().map(|_| {
                truncate::Truncates::new(&self.cfg.write.key, self.cfg.write.sequence.as_deref().unwrap_or_default())
            }),
        })
    }

    /// Checks, enriches and stages what the transform gave, then commits it
    /// (the quarantine first) with the input's position `w.to` under `app`.
    async fn write_rows(
        &mut self,
        mut w: Write,
        mut stream: futures::stream::BoxStream<'_, ingesta_lake::datafusion::error::Result<arrow_array::RecordBatch>>,
        app: &str,
        quarantined_to: i64,
        report: &mut TableReport,
        laps: &mut Laps,
    ) -> Result<(), Error> {
        let mut quarantine: Vec<QuarantineRecord> = Vec::new();
        let mut seen = 0i64;
        let source = w.source.clone();
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| self.sql_error(e))?;
            let n = batch.num_rows() as i64;
            let batch = match w.truncates.as_mut() {
                Some(t) => t.split(batch)?,
                None => batch,
            };
            let Split { keep, positions, quarantine: bad } =
                apply_expectations(&self.name, &self.cfg.expect, batch, &mut w.counts, &source, seen + 1)?;
            quarantine.extend(bad);
            let (keep, positions) = match self.side.enricher.as_mut() {
                Some(e) => {
                    let Split { keep, positions, quarantine: bad } = e.apply(keep, positions, &source).await?;
                    quarantine.extend(bad);
                    (keep, positions)
                }
                None => (keep, positions),
            };
            let Split { keep, quarantine: bad, .. } = conform(keep, &w.stored, &source, positions)?;
            quarantine.extend(bad);
            seen += n;
            self.target.as_ref().expect("ensured").stage(&mut w.staged, keep).await?;
        }
        drop(stream);
        if let Some(deletes) = w.truncates.take() {
            let target = self.target.as_ref().expect("ensured");
            if let Some(rows) = deletes.deletes(target, &w.stored).await? {
                target.stage(&mut w.staged, rows).await?;
            }
        }
        laps.lap("rows");
        report.quarantined += quarantine.len() as u64;
        report.rows_in += seen as u64;
        let positions = vec![(app.to_string(), w.to)];
        if !quarantine.is_empty() && w.to > quarantined_to {
            self.commit_quarantine(&quarantine, positions.clone()).await?;
            laps.lap("quarantine");
        }
        let mut info = vec![
            ("ingesta.input".to_string(), source),
            ("ingesta.quarantined".to_string(), quarantine.len().to_string()),
            ("ingesta.rows_in".to_string(), seen.to_string()),
        ];
        if w.copied_files > 0 {
            info.push((COPIED_INFO.to_string(), w.copied_files.to_string()));
        }
        if !w.counts.is_empty() {
            info.push((EXPECTATIONS_INFO.to_string(), serde_json::to_string(&w.counts).expect("counts")));
        }
        let target = self.target.as_mut().expect("ensured");
        // rows the table took (insert-if-absent skips keys it holds; merges count input rows)
        let committing = Instant::now();
        let receipt = target.commit(w.staged, positions, info).await?;
        crate::events::committed(
            &self.name,
            receipt.version,
            receipt.rows,
            quarantine.len() as u64,
            committing.elapsed(),
        );
        report.rows += receipt.rows;
        laps.lap("commit");
        Ok(())
    }

    /// On a pass with nothing new, a long-running pipeline makes the query
    /// a small append will run, planned over no files (`query.rs`), when it
    /// has none kept, and a copying table its rules (`copy.rs`): the first
    /// append after a start or a large range then costs what the later ones
    /// do (planning is a large part of a watched small append; decision
    /// 0020's amendment). A query that fails here is left to the append,
    /// which reports its error.
    async fn prepare(&mut self, input: &LakeTable, range: &Appended) {
        if self.overlap
            && self.copies
            && self.rules.is_none()
            && let Err(e) = copy::prepare(&self.cfg, input, &mut self.rules)
        {
            tracing::debug!(table = %self.name, error = %e, "preparing the rules failed");
        }
        let keeps = self.overlap && self.cfg.read == ReadMode::Appends && self.cfg.transform.lookups.is_empty();
        if !keeps || self.kept.is_some() || !input.reads_in_memory(&[]) {
            return;
        }
        let Ok(schema) = input.arrow_schema() else { return };
        if self.unprepared.as_deref() == Some(&schema) {
            return; // tried for these columns already
        }
        let prepared = match self.query(input, range, &[]).await {
            Ok(mut q) if q.reruns => q.plan().await.map(|()| q).map_err(|e| e.to_string()),
            Ok(_) => Err("it reads the clock or chance".to_string()),
            Err(e) => Err(e.to_string()),
        };
        match prepared {
            Ok(q) => self.kept = Some(Box::new(q)),
            Err(why) => {
                tracing::debug!(table = %self.name, why, "the query was not prepared");
                self.unprepared = Some(std::sync::Arc::new(schema));
            }
        }
    }

    /// The transform's query over `files` of `range` (its appends; the
    /// whole range when it reads changes) and the lookup tables.
    async fn query(&self, input: &LakeTable, range: &Appended, files: &[AddedFile]) -> Result<Query, Error> {
        let small = self.cfg.read == ReadMode::Appends && input.reads_in_memory(files);
        let ctx = plan::session_of(if small { 1 } else { 2 });
        input.delta().update_datafusion_session(&ctx.state()).map_err(|e| Error::stop(e.to_string()))?;
        let empty = |schema: arrow_schema::Schema| -> Result<std::sync::Arc<MemTable>, Error> {
            Ok(std::sync::Arc::new(MemTable::try_new(std::sync::Arc::new(schema), vec![vec![]]).map_err(df)?))
        };
        let provider: std::sync::Arc<dyn TableProvider> = match self.cfg.read {
            ReadMode::Changes if range.bytes > 0 => input.changes_provider(range).await?,
            // no files: still a scan of files in memory, when it may be rebound
            ReadMode::Appends if !files.is_empty() || input.reads_in_memory(files) => {
                input.files_rows(range.to, files).await?
            }
            ReadMode::Changes => empty(change_schema(&input.arrow_schema()?))?,
            ReadMode::Appends => empty(input.arrow_schema()?)?,
        };
        let input_schema = provider.schema();
        Ok(Query::new(self.checked_frame(&ctx, provider).await?, input_schema))
    }

    /// The transform's query, with its expectations' columns, over `input`
    /// and the lookup tables, registered in `ctx`.
    async fn checked_frame(
        &self,
        ctx: &ingesta_lake::datafusion::prelude::SessionContext,
        input: std::sync::Arc<dyn TableProvider>,
    ) -> Result<ingesta_lake::datafusion::prelude::DataFrame, Error> {
        let sql = plan::checked_sql(&self.cfg, &plan::table_sql(&self.cfg, &input.schema()));
        ctx.register_table(plan::INPUT, input).map_err(df)?;
        self.register_lookups(ctx).await?;
        ctx.sql(&sql).await.map_err(|e| self.sql_error(e))
    }

    /// Registers the lookup tables, each read whole at its current version.
    async fn register_lookups(&self, ctx: &ingesta_lake::datafusion::prelude::SessionContext) -> Result<(), Error> {
        for l in &self.cfg.transform.lookups {
            if let Some((_, wh, spec)) = self.side.warehouse.iter().find(|(n, ..)| n == l) {
                let Some(t) = ingesta_warehouse::WarehouseTable::open_existing(wh, spec).await? else {
                    return Err(Error::retry(format!("table `{}`: lookup table `{l}` has no data yet", self.name)));
                };
                let rows = TableStore::scan(&t).await?;
                ctx.register_table(
                    l.as_str(),
                    std::sync::Arc::new(MemTable::try_new(t.arrow_schema(), vec![rows]).map_err(df)?),
                )
                .map_err(df)?;
                continue;
            }
            let Some(t) = open_table(&self.lake, l).await? else {
                return Err(Error::retry(format!("table `{}`: lookup table `{l}` has no data yet", self.name)));
            };
            t.delta().update_datafusion_session(&ctx.state()).map_err(|e| Error::stop(e.to_string()))?;
            ctx.register_table(l.as_str(), t.provider().await?).map_err(df)?;
        }
        Ok(())
    }

    /// A read that failed on the way is retried (the next poll under
    /// `--watch`); a plan or schema error stops the table.
    fn sql_error(&self, e: ingesta_lake::datafusion::error::DataFusionError) -> Error {
        Error::new(ingesta_lake::datafusion_kind(&e), format!("table `{}`: transform: {e}", self.name)).caused_by(e)
    }
}

/// The lake's table `name`, or `None` when it has none yet.
async fn open_table(lake: &Lake, name: &str) -> Result<Option<LakeTable>, Error> {
    Ok(LakeTable::open(lake, name, &lake.table_url(name)).await?)
}

fn df(e: ingesta_lake::datafusion::error::DataFusionError) -> Error {
    Error::new(ingesta_lake::datafusion_kind(&e), e.to_string()).caused_by(e)
}

/// Expectation counts summed over commit infos (newest first, as the log gives them).
pub fn sum_expectations(infos: &[serde_json::Map<String, serde_json::Value>]) -> BTreeMap<String, RuleCount> {
    let mut total: BTreeMap<String, RuleCount> = BTreeMap::new();
    for info in infos {
        let Some(text) = info.get(EXPECTATIONS_INFO).and_then(|v| v.as_str()) else { continue };
        let Ok(map) = serde_json::from_str::<BTreeMap<String, serde_json::Value>>(text) else { continue };
        for (rule, c) in map {
            let t = total.entry(rule).or_default();
            t.passed += c["passed"].as_u64().unwrap_or(0);
            t.failed += c["failed"].as_u64().unwrap_or(0);
        }
    }
    total
}
