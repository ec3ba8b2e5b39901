//! A bronze table fed by the HTTP collector, exactly once.
//!
//! The collector (`ingesta-collector`) answers a request only once its events
//! are in the source's write-ahead log. This task commits the log to the
//! table: it reads whole frames after the last event number the table holds
//! (`ingesta/http/<source>`, a Delta `txn` written in the same commit as the
//! rows), decodes them like topic messages (JSON with `_rescued`; bad events
//! to quarantine with their number), commits the quarantine then the table,
//! and deletes the log segments the table now holds. After a crash the log is
//! replayed from the table's position, so an acknowledged event lands once.

mod columns;
mod commit;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ingesta_collector::{Appender, Reader, Route, Wal};
use ingesta_config::{Http, Table};
use ingesta_core::{Error, TableStore};
use ingesta_lake::{Lake, LakeTable};
use tokio::runtime::Handle;

pub use columns::collect_schema;

use crate::bronze::{Tables, open_tables, stored_record};
use crate::report::{Progress, TableReport};
use crate::upkeep::Upkeep;

/// How often an idle committer looks at the log.
const IDLE: Duration = Duration::from_millis(20);

pub struct CollectTask {
    name: String,
    source: String,
    cfg: Table,
    http: Http,
    lake: Lake,
    wal_dir: PathBuf,
    log: Option<Appender>,
}

impl CollectTask {
    pub fn new(lake: Lake, root: &str, name: &str, cfg: &Table, source: &str, http: &Http) -> Self {
        let wal_dir = match &http.wal {
            Some(w) => PathBuf::from(w),
            None => PathBuf::from(root.strip_prefix("file://").unwrap_or(root)).join("_wal").join(source),
        };
        Self {
            name: name.to_string(),
            source: source.to_string(),
            cfg: cfg.clone(),
            http: http.clone(),
            lake,
            wal_dir,
            log: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The write-ahead log's folder.
    pub fn wal_dir(&self) -> &std::path::Path {
        &self.wal_dir
    }

    pub fn listen(&self) -> &str {
        &self.http.listen
    }

    /// Recovers the log and starts its writer; the route to serve.
    pub async fn open(&mut self) -> Result<Route, Error> {
        let committed = self.position().await?;
        let archive = self.http.archive.map(|d| d.0);
        let wal = Wal::open_archived(&self.wal_dir, committed, archive)
            .map_err(|e| Error::stop(format!("table `{}`: {e}", self.name)))?;
        let log = wal.start().map_err(|e| Error::stop(format!("table `{}`: {e}", self.name)))?;
        self.log = Some(log.clone());
        Ok(Route {
            source: self.source.clone(),
            token: self.http.token.expose().to_string(),
            max_body_bytes: self.http.max_body_bytes.0 as usize,
            max_record_bytes: self.http.max_record_bytes.0 as usize,
            max_pending_bytes: self.http.max_pending_bytes.0,
            cors: self.http.cors.clone(),
            log,
        })
    }

    /// Commits what the log holds now (events accepted before a crash or
    /// while the table was stopped), without serving.
    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        let committed = self.position().await?;
        let archive = self.http.archive.map(|d| d.0);
        let wal = Wal::open_archived(&self.wal_dir, committed, archive)
            .map_err(|e| Error::stop(format!("table `{}`: {e}", self.name)))?;
        let last = wal.last();
        let mut c = self.committer(progress);
        let r = tokio::task::spawn_blocking(move || {
            let r = c.run(&|| last, &|| 0, None, &|_| {});
            drop(wal); // the lock is held until the log is committed
            c.finish(r)
        });
        r.await.map_err(|e| Error::stop(format!("table `{}`: the commit thread failed: {e}", self.name)))?
    }

    /// Commits events as they arrive until `stop` is set, then what is left.
    pub async fn run_until(&mut self, stop: Arc<AtomicBool>, progress: &Progress) -> Result<TableReport, Error> {
        let Some(log) = self.log.clone() else {
            return Err(Error::stop(format!("table `{}`: the collector log is not open", self.name)));
        };
        let mut c = self.committer(progress);
        let r = tokio::task::spawn_blocking(move || {
            let (durable, pending) = (|| log.durable(), || log.pending_bytes());
            let r = c.run(&durable, &pending, Some(&stop), &|b| log.taken(b));
            c.finish(r)
        });
        r.await.map_err(|e| Error::stop(format!("table `{}`: the commit thread failed: {e}", self.name)))?
    }

    /// The last event number the table holds (-1 when none).
    async fn position(&self) -> Result<i64, Error> {
        let url = self.lake.table_url(&self.name);
        match LakeTable::open(&self.lake, &self.name, &url).await? {
            Some(t) => Ok(t.position(&app_id(&self.source)).await?.unwrap_or(-1)),
            None => Ok(-1),
        }
    }

    fn committer(&self, progress: &Progress) -> Committer {
        Committer {
            name: self.name.clone(),
            source: self.source.clone(),
            cfg: self.cfg.clone(),
            max_record_bytes: self.http.max_record_bytes.0 as usize,
            lake: self.lake.clone(),
            rt: Handle::current(),
            reader: Reader::new(&self.wal_dir),
            wal_dir: self.wal_dir.clone(),
            archive: self.http.archive.map(|d| d.0),
            tables: None,
            committed: -1,
            quarantined: -1,
            report: TableReport { table: self.name.clone(), ..Default::default() },
            progress: progress.clone(),
            started: Instant::now(),
            upkeep: Upkeep::new(&self.cfg),
        }
    }
}

/// The position's application id: the last event number the table holds.
pub fn app_id(source: &str) -> String {
    ingesta_core::app_id::http(source)
}

pub(crate) struct Committer {
    pub name: String,
    pub source: String,
    pub cfg: Table,
    pub max_record_bytes: usize,
    pub lake: Lake,
    pub rt: Handle,
    pub reader: Reader,
    pub wal_dir: PathBuf,
    /// How long segments the table holds are kept (none: deleted at once).
    pub archive: Option<Duration>,
    pub tables: Option<Tables>,
    /// The last event number in the table, and in its quarantine.
    pub committed: i64,
    pub quarantined: i64,
    pub report: TableReport,
    pub progress: Progress,
    pub started: Instant,
    pub upkeep: Upkeep,
}

impl Committer {
    /// Commits the log up to `durable()` at each trigger (max rows, max
    /// bytes, max wait), until caught up (`stop` None) or `stop` is set.
    fn run(
        &mut self,
        durable: &dyn Fn() -> i64,
        pending_bytes: &dyn Fn() -> u64,
        stop: Option<&AtomicBool>,
        taken: &dyn Fn(u64),
    ) -> Result<(), Error> {
        self.open_existing()?;
        let mut since: Option<Instant> = None;
        let mut backoff = Duration::from_millis(200);
        loop {
            let upto = durable();
            let stopping = stop.is_none_or(|s| s.load(Ordering::Relaxed));
            let waiting = upto - self.committed;
            if waiting <= 0 {
                if stopping {
                    return Ok(());
                }
                since = None;
                std::thread::sleep(IDLE);
                continue;
            }
            let first_seen = *since.get_or_insert_with(Instant::now);
            let due = stopping
                || waiting as u64 >= self.cfg.batch.max_rows as u64
                || pending_bytes() >= self.cfg.batch.max_bytes.0
                || first_seen.elapsed() >= self.cfg.batch.wait();
            if !due {
                std::thread::sleep(IDLE);
                continue;
            }
            match self.commit_next(upto) {
                Ok(bytes) => {
                    taken(bytes);
                    since = None;
                    backoff = Duration::from_millis(200);
                    if let Some(t) = &mut self.tables {
                        self.rt.block_on(self.upkeep.run(&mut t.bronze));
                    }
                }
                // a passing fault while serving: the events wait in the log (when
                // stopping, they wait there for the next start)
                Err(e) if e.kind == ingesta_core::ErrorKind::Retry && !stopping => {
                    tracing::warn!(table = %self.name, error = %e, ?backoff, "commit failed; the events stay in the log and are tried again");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    self.reload_positions()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn finish(mut self, r: Result<(), Error>) -> Result<TableReport, Error> {
        self.progress.done();
        self.report.elapsed = self.started.elapsed();
        r.map(|()| self.report)
    }

    fn open_existing(&mut self) -> Result<(), Error> {
        let url = self.lake.table_url(&self.name);
        let Some(bronze) = self.rt.block_on(LakeTable::open(&self.lake, &self.name, &url))? else {
            return Ok(());
        };
        let record = match &self.cfg.columns {
            Some(cols) => ingesta_sources::schema::RecordSchema::from_columns(cols),
            None => stored_record(&bronze)?,
        };
        let schema = collect_schema(&record, &self.cfg.partition_by);
        let size = self.cfg.target_file_size.0;
        self.tables = Some(self.rt.block_on(open_tables(&self.lake, &self.name, bronze, record, schema, size))?);
        self.reload_positions()
    }

    /// Reads the table's and the quarantine's positions afresh.
    fn reload_positions(&mut self) -> Result<(), Error> {
        let Some(t) = &mut self.tables else { return Ok(()) };
        let id = app_id(&self.source);
        let (b, q) = self.rt.block_on(async {
            t.bronze.refresh().await?;
            t.quarantine.refresh().await?;
            Ok::<_, Error>((t.bronze.position(&id).await?, t.quarantine.position(&id).await?))
        })?;
        self.committed = b.unwrap_or(-1);
        self.quarantined = q.unwrap_or(-1);
        Ok(())
    }
}
