//! A bronze table fed by a landing source: which files are new (by the
//! positions recorded in the table), the table's columns (declared, stored, or
//! inferred once), and the tables themselves (data and quarantine).

mod changed;
mod microbatch;
pub mod replay;
mod settled;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use arrow_schema::SchemaRef;
use ingesta_config::{Landing as LandingConfig, Table};
use ingesta_core::{Error, Progress as Pos, TableStore};
use ingesta_lake::{Lake, LakeTable};
use ingesta_sources::schema::{RESCUED, RecordSchema};
use ingesta_sources::{FileInfo, Landing};

use crate::bronze::enrich::{bronze_schema, read_schema};
use crate::bronze::{Tables, open_tables, stored_record};
use crate::report::{Progress, TableReport};
use crate::upkeep::Upkeep;

pub struct BronzeTask {
    name: String,
    cfg: Table,
    landing: Arc<Landing>,
    lake: Lake,
    tables: Option<Tables>,
    /// Files known to be fully committed (saves a log lookup per scan), with
    /// when each appeared: forgotten once the watermark passes them.
    done: HashMap<String, i64>,
    /// The settled watermark (`settled.rs`) and the table it is of, kept
    /// between polls: the note is read once, not at every poll.
    settled: Option<(String, i64)>,
    /// When this process last wrote the watermark's note.
    settled_written: Option<Instant>,
    upkeep: Upkeep,
}

/// A file to read, and from where.
pub(crate) struct Work {
    pub file: FileInfo,
    pub skip_until: i64,
    /// The quarantine table's recorded version for this file: bad records up
    /// to its position are already quarantined, and it is the floor of what
    /// the next quarantine commit may record (positions never go back).
    pub quarantine_version: i64,
}

impl Work {
    /// Bad records at or before this position are already quarantined.
    pub fn quarantined_until(&self) -> i64 {
        Pos::decode(self.quarantine_version).last
    }
}

impl BronzeTask {
    pub fn new(lake: Lake, name: &str, cfg: &Table, source: &str, landing: &LandingConfig) -> Result<Self, Error> {
        let landing = Landing::new(source, landing)?;
        Ok(Self {
            name: name.to_string(),
            cfg: cfg.clone(),
            landing: Arc::new(landing),
            lake,
            tables: None,
            done: HashMap::new(),
            settled: None,
            settled_written: None,
            upkeep: Upkeep::new(cfg),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads every new file of the source into the table.
    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        let started = Instant::now();
        let mut report = TableReport { table: self.name.clone(), ..Default::default() };
        self.open_existing().await?;
        let source = self.landing.name.clone();
        let taken_before = match &self.tables {
            Some(t) => {
                let table = t.bronze.table_id()?;
                match &self.settled {
                    Some((of, w)) if *of == table => Some(*w),
                    _ => {
                        let w = settled::read(&t.bronze, &source).await;
                        self.settled = w.map(|w| (table, w));
                        w
                    }
                }
            }
            None => None,
        };
        let scan_start = now_ms();
        let landing = self.landing.clone();
        let scan = tokio::task::spawn_blocking(move || landing.scan(taken_before))
            .await
            .map_err(|e| Error::stop(e.to_string()))?
            .map_err(|e| Error::retry(format!("table `{}`: {e}", self.name)))?;
        report.unsettled = scan.unsettled;
        report.failed = scan.unreadable;
        let unlisted = !report.failed.is_empty();
        // the positions of the listed files' paths, in one pass over the log
        // (per-file lookups replay it each); the others' are not held
        let fresh: HashSet<String> = scan
            .ready
            .iter()
            .filter(|f| !self.done.contains_key(&f.key.app_id()))
            .map(|f| f.key.path.clone())
            .collect();
        let (all_b, all_q) = match &self.tables {
            Some(t) if !fresh.is_empty() => {
                let prefix = ingesta_core::app_id::landing_prefix(&source);
                let keep = |id: &str| {
                    id.strip_prefix(&prefix)
                        .and_then(|rest| rest.rsplit_once('@'))
                        .is_some_and(|(p, _)| fresh.contains(p))
                };
                let all_b = t.bronze.positions_where(&keep).await?;
                if all_b.is_none() {
                    tracing::warn!(table = %self.name, "the table's log cannot be read in one pass: a file that changed after it was ingested is read again whole");
                }
                (all_b, t.quarantine.positions_where(&keep).await?)
            }
            _ => (None, None),
        };
        let earlier = match &all_b {
            Some(m) => changed::Earlier::from_positions(&source, m),
            None => changed::Earlier::default(),
        };
        let mut work = Vec::new();
        for mut file in scan.ready {
            let id = file.key.app_id();
            if self.done.contains_key(&id) {
                continue;
            }
            let (b, q) = match &self.tables {
                Some(t) => (
                    match &all_b {
                        Some(m) => m.get(&id).copied(),
                        None => t.bronze.position(&id).await?,
                    },
                    match &all_q {
                        Some(m) => m.get(&id).copied(),
                        None => t.quarantine.position(&id).await?,
                    },
                ),
                None => (None, None),
            };
            let skip_until = match b.map(Pos::decode) {
                Some(b) if b.done => {
                    self.done.insert(id, file.appeared_ms);
                    continue;
                }
                Some(b) => b.last,
                None => match changed::plan(self.landing.config.on_change, &self.name, &file.key, &earlier)? {
                    changed::Plan::Read(after) => after,
                    changed::Plan::Skip => {
                        tracing::info!(table = %self.name, file = %file.key.path, "the file changed after it was ingested; on_change: ignore leaves it");
                        self.done.insert(id, file.appeared_ms);
                        continue;
                    }
                    changed::Plan::Refuse(why) => {
                        file.problem = Some(why);
                        0
                    }
                },
            };
            let q = q.unwrap_or_default();
            work.push(Work { file, skip_until, quarantine_version: q });
        }
        let appeared: HashMap<String, i64> = work.iter().map(|w| (w.file.key.app_id(), w.file.appeared_ms)).collect();
        if !work.is_empty() {
            self.ensure_tables(&work[0].file).await?;
            let tables = self.tables.as_mut().expect("ensured");
            let done = microbatch::run(tables, &self.landing, &self.cfg, work, progress, &mut report).await?;
            for id in done {
                let at = appeared.get(&id).copied().unwrap_or(i64::MAX);
                self.done.insert(id, at);
            }
            progress.done();
        }
        if let Some(t) = &mut self.tables {
            // every listed file is taken but those still pending: the watermark moves
            if !unlisted {
                let pending = appeared.iter().filter(|(id, _)| !self.done.contains_key(*id)).map(|(_, &a)| a);
                let c = &self.landing.config;
                let (settle, skew) = (c.settle.0.as_millis() as i64, c.clock_skew.0.as_millis() as i64);
                let w = settled::after(scan_start, settle, skew, pending);
                if taken_before.is_none_or(|old| w > old) {
                    self.settled = Some((t.bronze.table_id()?, w));
                    self.done.retain(|_, at| *at > w);
                    if self.settled_written.is_none_or(|at| at.elapsed() >= WRITE_EVERY) {
                        settled::write(&t.bronze, &source, w).await;
                        self.settled_written = Some(Instant::now());
                    }
                }
            }
            self.upkeep.run(&mut t.bronze).await;
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }
}

/// A process writes the watermark at most this often (a note per poll would
/// be a write per second under `--watch`).
const WRITE_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl BronzeTask {
    async fn open_existing(&mut self) -> Result<(), Error> {
        if let Some(t) = &mut self.tables {
            t.bronze.refresh().await?;
            t.quarantine.refresh().await?;
            return Ok(());
        }
        let url = self.lake.table_url(&self.name);
        let Some(mut bronze) = LakeTable::open(&self.lake, &self.name, &url).await? else {
            return Ok(());
        };
        let record = self.record_schema_of(&bronze)?;
        let schema = bronze_schema(&record, &self.cfg.partition_by, self.rescues());
        if let Ok(rescued) = schema.field_with_name(RESCUED)
            && bronze.arrow_schema()?.field_with_name(RESCUED).is_err()
        {
            tracing::info!(table = %self.name, "adding column `{RESCUED}` for fields the columns do not name");
            bronze.add_columns(std::slice::from_ref(rescued)).await?;
        }
        self.tables = Some(self.finish_open(bronze, record, schema).await?);
        Ok(())
    }

    /// Creates the tables on first use, inferring columns from `sample` if none are declared.
    async fn ensure_tables(&mut self, sample: &FileInfo) -> Result<(), Error> {
        if self.tables.is_some() {
            return Ok(());
        }
        let record = match &self.cfg.columns {
            Some(cols) => RecordSchema::from_columns(cols),
            None => {
                let landing = self.landing.clone();
                let sample = sample.clone();
                let inferred = tokio::task::spawn_blocking(move || landing.infer(&sample))
                    .await
                    .map_err(|e| Error::stop(e.to_string()))?;
                let r = inferred.map_err(|e| Error::from(e).context(&format!("table `{}`", self.name)))?;
                tracing::info!(table = %self.name, columns = ?r.schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>(), "inferred columns");
                r
            }
        };
        let schema = bronze_schema(&record, &self.cfg.partition_by, self.rescues());
        let parts: Vec<String> = self.cfg.partition_by.iter().map(|p| p.column.clone()).collect();
        let url = self.lake.table_url(&self.name);
        let desc = format!("bronze table fed by source `{}`", self.landing.name);
        let bronze = LakeTable::open_or_create(&self.lake, &self.name, &url, &schema, &parts, &desc).await?;
        self.tables = Some(self.finish_open(bronze, record, schema).await?);
        Ok(())
    }

    /// Fields the columns do not name are kept (in `_rescued`).
    fn rescues(&self) -> bool {
        self.landing.config.format.rescues()
    }

    async fn finish_open(&self, bronze: LakeTable, record: RecordSchema, schema: SchemaRef) -> Result<Tables, Error> {
        let record = if self.rescues() { read_schema(&record) } else { record };
        open_tables(&self.lake, &self.name, bronze, record, schema, self.cfg.target_file_size.0).await
    }

    /// The record columns of an existing table; they must match declared ones.
    fn record_schema_of(&self, bronze: &LakeTable) -> Result<RecordSchema, Error> {
        let from_table = stored_record(bronze)?;
        let Some(cols) = &self.cfg.columns else {
            return Ok(from_table);
        };
        let declared = RecordSchema::from_columns(cols);
        let sig = |s: &RecordSchema| {
            s.schema.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect::<Vec<_>>().join(", ")
        };
        if sig(&declared) != sig(&from_table) {
            return Err(Error::stop(format!(
                "table `{}` exists with columns ({}) but the pipeline declares ({}); changing a table's columns is not supported yet: write to a new table or remove the old one",
                self.name,
                sig(&from_table),
                sig(&declared)
            )));
        }
        Ok(declared)
    }
}
