//! A bronze table of a PostgreSQL database's changes, exactly once.
//!
//! The first run creates the publication (when absent) and the slot, copies
//! every published table under the slot's exported snapshot and commits the
//! copy in one commit with the slot's consistent point as its position. Then
//! it streams: each change is placed by its transaction's commit LSN and its
//! ordinal in that transaction, a micro-batch commits with the last change's
//! place (`ingesta/pgcdc/<slot>/lsn` and `…/ordinal`), and only then is the
//! end of the last whole transaction in it confirmed to PostgreSQL. A rerun
//! reads from the slot's confirmed position and skips what the table holds,
//! so a transaction committed in parts (a large one) or sent again after a
//! crash is kept once. While nothing is pending the server's WAL end is
//! confirmed, so the slot holds no WAL when only unpublished tables change.

pub(crate) mod columns;
mod snapshot;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ingesta_config::{PostgresCdc, Table};
use ingesta_core::{Error, TableStore, WriteMode, app_id};
use ingesta_lake::{Lake, LakeTable};
use ingesta_pgcdc::{Event, Lsn, Scope, Source, Stream, Tx, slot};
use ingesta_sources::schema::RecordSchema;

pub use columns::change_schema;
use columns::{Placed, assemble};

use crate::bronze::{self, Batch, Tables, open_tables};
use crate::report::{Progress, TableReport};
use crate::upkeep::Upkeep;

/// Pending change rows beyond this many bytes are committed (a large
/// transaction is committed in parts rather than held whole).
const MAX_PENDING_BYTES: usize = 64 << 20;

/// How long a change waits for its micro-batch by default.
const DEFAULT_WAIT: Duration = Duration::from_millis(250);

/// Where the table is in the source's history: a change's commit LSN and ordinal.
type Place = (u64, u32);

pub struct CdcTask {
    name: String,
    cfg: Table,
    scope: Scope,
    source: Source,
    lake: Lake,
    copy_connections: usize,
}

impl CdcTask {
    pub fn new(
        lake: Lake,
        pipeline: &str,
        name: &str,
        cfg: &Table,
        source: &str,
        c: &PostgresCdc,
    ) -> Result<Self, Error> {
        let slot = c.slot.clone().unwrap_or_else(|| slot_name(&format!("ingesta_{pipeline}_{name}")));
        let publication = c.publication.clone().unwrap_or_else(|| format!("ingesta_{source}"));
        let scope = match c.tables.is_empty() {
            true => Scope::Schemas(c.schemas.clone()),
            false => Scope::Tables(c.tables.clone()),
        };
        let pg = Source::new(c.url.expose(), &publication, &slot, c.copy_connections)?;
        Ok(Self { name: name.into(), cfg: cfg.clone(), scope, source: pg, lake, copy_connections: c.copy_connections })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads every change committed before the run started.
    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        self.run(None, progress).await
    }

    /// Reads until `stop` is set, committing at each trigger.
    pub async fn run_until(&mut self, stop: Arc<AtomicBool>, progress: &Progress) -> Result<TableReport, Error> {
        self.run(Some(stop), progress).await
    }

    async fn run(&mut self, stop: Option<Arc<AtomicBool>>, progress: &Progress) -> Result<TableReport, Error> {
        let mut w = Worker {
            report: TableReport { table: self.name.clone(), ..Default::default() },
            started: Instant::now(),
            tables: self.open().await?,
            progress: progress.clone(),
            at: None,
            upkeep: Upkeep::new(&self.cfg),
        };
        let r = self.read(&mut w, stop).await.map_err(|e| e.context(&format!("table `{}`", self.name)));
        progress.done();
        w.report.elapsed = w.started.elapsed();
        r.map(|()| w.report)
    }

    async fn read(&mut self, w: &mut Worker, stop: Option<Arc<AtomicBool>>) -> Result<(), Error> {
        w.at = held(&w.tables.bronze, &self.source.slot).await?;
        let conn = self.source.connect().await?;
        slot::ensure_publication(&conn.client, &self.source.publication, &self.scope).await?;
        let state = slot::slot_state(&conn.client, &self.source.slot).await?;
        let slot_name = &self.source.slot;
        match (w.at, state) {
            (None, state) => {
                if let Some(s) = state {
                    if s.active {
                        return Err(Error::retry(format!("the slot `{slot_name}` is held by another session")));
                    }
                    // a slot without a copy in the table: its changes cannot be placed after one
                    tracing::info!(slot = %slot_name, "dropping the slot the table holds no copy from, to copy again");
                    slot::drop_slot(&conn.client, slot_name).await?;
                }
                let copied = snapshot::copy(self, w).await?;
                w.at = Some(copied);
            }
            (Some((lsn, _)), None) => return Err(self.gone(lsn, "no longer exists (dropped)")),
            (Some((lsn, _)), Some(s)) if s.wal_status.as_deref() == Some("lost") => {
                return Err(
                    self.gone(lsn, "was invalidated: PostgreSQL removed WAL it still needed (max_slot_wal_keep_size)")
                );
            }
            (Some(_), Some(s)) if s.active => {
                return Err(Error::retry(format!("the slot `{slot_name}` is held by another session")));
            }
            (Some(_), Some(_)) => {}
        }
        let target = match stop {
            None => Some(slot::current_lsn(&conn.client).await?),
            Some(_) => None,
        };
        conn.release();
        let mut stream = Stream::open(self.source.replication()?).await?;
        let r = self.stream(w, &mut stream, stop, target).await;
        if r.is_ok() {
            stream.close().await;
        }
        r
    }

    fn gone(&self, lsn: u64, what: &str) -> Error {
        Error::stop(format!(
            "the replication slot `{}` {what}; the changes after {} can no longer be read, so the table stops rather \
             than keep a gap. To start again from a fresh copy of the source: `ingesta rebuild PIPELINE {} \
             --accept-loss` (the change rows held so far are replaced by the copy), then rebuild the tables that read it",
            self.source.slot,
            Lsn(lsn),
            self.name
        ))
    }

    async fn stream(
        &mut self,
        w: &mut Worker,
        stream: &mut Stream,
        stop: Option<Arc<AtomicBool>>,
        target: Option<Lsn>,
    ) -> Result<(), Error> {
        let (max_rows, max_wait) = (self.cfg.batch.max_rows.max(1), self.cfg.batch.max_wait(DEFAULT_WAIT));
        let mut pending: Vec<Placed> = Vec::new();
        let (mut bytes, mut since) = (0usize, None::<Instant>);
        let mut tx: Option<Tx> = None;
        let mut ordinal = 0u32;
        // the end of the last whole transaction among the pending rows
        let mut confirm: Option<Lsn> = None;
        let mut caught_up = false;
        loop {
            let stopping = stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
            match stream.next(Duration::from_millis(100)).await? {
                None => {}
                Some(Event::Begin(t)) => (tx, ordinal) = (Some(t), 0),
                Some(Event::Change(row, lsn)) => {
                    let t =
                        tx.ok_or_else(|| Error::stop("a change outside a transaction in the replication stream"))?;
                    ordinal += 1;
                    if w.at.is_some_and(|at| (t.commit_lsn.0, ordinal) <= at) {
                        continue;
                    }
                    bytes += row.size();
                    since.get_or_insert_with(Instant::now);
                    pending.push(Placed { row, lsn: lsn.0, tx: t, ordinal });
                }
                Some(Event::Commit { end_lsn }) => {
                    tx = None;
                    match pending.is_empty() {
                        true => stream.confirm(end_lsn),
                        false => confirm = Some(end_lsn),
                    }
                    caught_up |= target.is_some_and(|t| end_lsn >= t);
                }
                Some(Event::Idle { wal_end }) => {
                    if pending.is_empty() {
                        stream.confirm(wal_end);
                    }
                    caught_up |= target.is_some_and(|t| wal_end >= t);
                }
            }
            let due = pending.len() >= max_rows
                || bytes >= MAX_PENDING_BYTES
                || since.is_some_and(|s| s.elapsed() >= max_wait)
                || ((caught_up || stopping) && !pending.is_empty());
            if due {
                self.commit(w, std::mem::take(&mut pending)).await?;
                (bytes, since) = (0, None);
                if let Some(end) = confirm.take() {
                    stream.confirm(end);
                }
            }
            if (caught_up || stopping) && pending.is_empty() && tx.is_none() {
                return Ok(());
            }
        }
    }

    /// Commits change rows with the place of the last one.
    async fn commit(&mut self, w: &mut Worker, mut rows: Vec<Placed>) -> Result<(), Error> {
        let last = rows.last().map(|p| (p.tx.commit_lsn.0, p.ordinal)).expect("rows to commit");
        if rows.iter().any(|p| p.row.unchanged.is_some()) {
            let conn = self.source.connect().await?;
            slot::fill_unchanged(&conn.client, rows.iter_mut().map(|p| &mut p.row)).await?;
            conn.release();
        }
        let progress = (&w.progress, self.name.as_str(), w.started);
        commit_rows(&mut w.tables, rows, positions(&self.source.slot, last), &mut w.report, progress).await?;
        w.upkeep.run(&mut w.tables.bronze).await;
        w.at = Some(last);
        Ok(())
    }

    async fn open(&self) -> Result<Tables, Error> {
        let desc = format!("change rows of {} (slot `{}`)", self.source.describe(), self.source.slot);
        open_change_table(&self.lake, &self.name, &self.cfg, &desc).await
    }
}

/// Commits change rows with `positions` (nothing can be malformed: no
/// quarantine), counted in `report` and shown by the progress of
/// (table, its start).
pub(crate) async fn commit_rows(
    t: &mut Tables,
    rows: Vec<Placed>,
    positions: Vec<(String, i64)>,
    report: &mut TableReport,
    (progress, name, started): (&Progress, &str, Instant),
) -> Result<(), Error> {
    let (ingested_at, batch_id) = (chrono::Utc::now().timestamp_micros(), uuid::Uuid::new_v4().to_string());
    let batch = assemble(&t.schema, &rows, ingested_at, &batch_id);
    let n = rows.len() as u64;
    drop(rows); // the batch holds them now
    let mut staged = t.bronze.begin(&WriteMode::Append)?;
    t.bronze.stage(&mut staged, batch).await?;
    let b = Batch::clean(staged, n, positions, batch_id, ingested_at);
    bronze::commit(&mut t.bronze, &mut t.quarantine, b).await?;
    report.rows += n;
    report.commits += 1;
    progress.committed();
    progress.show(name, report.rows, 0, 0, started);
    Ok(())
}

/// Opens (or creates) a table of change rows and its quarantine.
pub(crate) async fn open_change_table(lake: &Lake, name: &str, cfg: &Table, desc: &str) -> Result<Tables, Error> {
    let schema = change_schema();
    let url = lake.table_url(name);
    let bronze = LakeTable::open_or_create(lake, name, &url, &schema, &[], desc).await?;
    let record = RecordSchema::from_arrow(&schema);
    open_tables(lake, name, bronze, record, schema, cfg.target_file_size.0).await
}

struct Worker {
    report: TableReport,
    started: Instant,
    tables: Tables,
    progress: Progress,
    /// The place of the last change the table holds.
    at: Option<Place>,
    /// Compaction of the small files frequent commits leave.
    upkeep: Upkeep,
}

fn positions(slot: &str, (lsn, ordinal): Place) -> Vec<(String, i64)> {
    vec![(app_id::pg_lsn(slot), lsn as i64), (app_id::pg_ordinal(slot), i64::from(ordinal))]
}

/// The place the table holds for `slot`, if it holds a copy.
async fn held(bronze: &LakeTable, slot: &str) -> Result<Option<Place>, Error> {
    let lsn = bronze.position(&app_id::pg_lsn(slot)).await?;
    let ordinal = bronze.position(&app_id::pg_ordinal(slot)).await?;
    Ok(lsn.map(|l| (l as u64, ordinal.unwrap_or(0) as u32)))
}

/// A slot name from `s`: lower-case letters, digits and `_`, at most 63.
fn slot_name(s: &str) -> String {
    let mut out: String =
        s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    out.truncate(63);
    out
}
