//! A bronze table of a query's new rows, by a watermark column, exactly once.
//!
//! Each poll reads the rows whose watermark is above the highest one the
//! table holds (`ingesta/sql/<source>`), minus `look_back` for rows that
//! committed late, skips those the table holds already (same key and
//! watermark), and commits the rest as change rows (`op` r) with the new
//! highest watermark in the same commit. Every `sweep`, the query's keys are
//! compared with the keys the table holds, and a key gone from the source
//! gets a delete row (`op` d). The rows have the change-row shape of
//! `postgres_cdc`, so `replicas:` keeps them the same way.

use std::collections::HashSet;
use std::time::Instant;

use ingesta_config::{SqlSource, Table};
use ingesta_core::{Error, TableStore, app_id};
use ingesta_lake::Lake;
use ingesta_lake::datafusion::arrow::array::AsArray;
use ingesta_pgcdc::extract::{Described, Extracted, describe};
use ingesta_pgcdc::{Lsn, Row, Tx};
use ingesta_warehouse::Warehouse;

use super::postgres::columns::Placed;
use super::postgres::{commit_rows, open_change_table};
use crate::bronze::Tables;
use crate::report::{Progress, TableReport};

/// Rows per chunk read from the cursor (and per staged batch).
const CHUNK: usize = 50_000;

pub struct SqlTask {
    name: String,
    cfg: Table,
    source: String,
    src: SqlSource,
    db: Warehouse,
    lake: Lake,
    /// When the keys were last swept (this process).
    swept: Option<Instant>,
    /// When the query was last read (this process): a long-running
    /// pipeline passes more often than `poll` when other tables commit.
    polled: Option<Instant>,
    /// The table and its quarantine, kept between polls (a failed poll opens them again).
    tables: Option<Tables>,
}

impl SqlTask {
    pub fn new(lake: Lake, name: &str, cfg: &Table, source: &str, src: &SqlSource) -> Result<Self, Error> {
        let db = Warehouse::database(src.url.expose(), 1, "the source database")?;
        Ok(Self {
            name: name.into(),
            cfg: cfg.clone(),
            source: source.into(),
            src: src.clone(),
            db,
            lake,
            swept: None,
            polled: None,
            tables: None,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One poll: the rows above the watermark, then a sweep when one is due
    /// (nothing when the last poll is more recent than `poll`).
    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        let started = Instant::now();
        let mut report = TableReport { table: self.name.clone(), ..Default::default() };
        if !crate::bronze::poll_due(&mut self.polled, self.src.poll.0, started) {
            return Ok(report);
        }
        let r = self.poll(&mut report, progress).await.map_err(|e| e.context(&format!("table `{}`", self.name)));
        progress.done();
        report.elapsed = started.elapsed();
        r.map(|()| report)
    }

    async fn poll(&mut self, report: &mut TableReport, progress: &Progress) -> Result<(), Error> {
        let mut t = match self.tables.take() {
            Some(mut t) => {
                t.bronze.refresh().await?;
                t
            }
            None => {
                let desc = format!("rows of a query on {}, by `{}`", self.db.describe(), self.src.watermark);
                open_change_table(&self.lake, &self.name, &self.cfg, &desc).await?
            }
        };
        let id = app_id::sql(&self.source);
        let held = t.bronze.position(&id).await?;
        let mut conn = self.db.connect().await?;
        let d = describe(&conn.client, &self.src.query, &self.src.watermark, &self.src.key).await?;
        let back = match (self.src.look_back, d.time) {
            (Some(b), true) => b.0.as_micros() as i64,
            (Some(_), false) => {
                return Err(Error::stop(format!(
                    "`look_back` applies to a timestamp watermark; `{}` is an integer",
                    self.src.watermark
                )));
            }
            (None, _) => 0,
        };
        let low = held.map_or(i64::MIN, |h| h.saturating_sub(back));
        let seen = match (back > 0, held) {
            (true, Some(_)) => held_since(&t, low).await?,
            _ => HashSet::new(),
        };
        let table = self.src.table.clone().unwrap_or_else(|| self.source.clone());
        let mut high = held.unwrap_or(i64::MIN);
        let started = Instant::now();
        let mut w =
            Writer { t: &mut t, table: &table, id: &id, ordinal: 0, report, progress, name: &self.name, started };
        // the rows of a chunk's last watermark wait for the next chunk: more
        // rows may share it, and the position says all rows up to it are held
        let mut carry: Vec<Extracted> = Vec::new();
        let read = |e: Extracted| ("r", e.key, Some(e.after), e.position);
        d.read_after(&mut conn.client, low, CHUNK, async |rows: Vec<Extracted>| {
            carry.extend(rows.into_iter().filter(|r| !seen.contains(&(r.key.clone(), r.position))));
            let last = carry.last().map_or(high, |r| r.position);
            let tail = carry.iter().rev().take_while(|r| r.position == last).count();
            let done: Vec<Extracted> = carry.drain(..carry.len() - tail).collect();
            if let Some(top) = done.last().map(|r| r.position) {
                high = high.max(top);
                w.commit(done.into_iter().map(read).collect(), high).await?;
            }
            Ok(())
        })
        .await?;
        if let Some(top) = carry.last().map(|r| r.position) {
            high = high.max(top);
            w.commit(carry.into_iter().map(read).collect(), high).await?;
        }
        let due = self.src.sweep.is_some_and(|every| self.swept.is_none_or(|at| at.elapsed() >= every.0));
        if due && held.is_some() {
            let gone = swept(&w, &d, &conn).await?;
            let rows = gone.into_iter().map(|k| ("d", k, None, high)).collect();
            w.commit(rows, high).await?;
            self.swept = Some(Instant::now());
        }
        conn.release();
        self.tables = Some(t);
        Ok(())
    }
}

/// Commits change rows in the table's own order.
struct Writer<'a> {
    t: &'a mut Tables,
    table: &'a str,
    id: &'a str,
    ordinal: u32,
    report: &'a mut TableReport,
    progress: &'a Progress,
    name: &'a str,
    started: Instant,
}

impl Writer<'_> {
    /// Commits `(op, key, after, watermark)` rows with `high` as the position.
    async fn commit(&mut self, rows: Vec<(&'static str, String, Option<String>, i64)>, high: i64) -> Result<(), Error> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now().timestamp_micros();
        let placed: Vec<Placed> = rows
            .into_iter()
            .map(|(op, key, after, position)| {
                self.ordinal = self.ordinal.wrapping_add(1);
                let row = Row { op, table: self.table.to_string(), key, before: None, after, unchanged: None };
                let tx = Tx { commit_lsn: Lsn(position as u64), xid: 0, commit_ts_us: now };
                Placed { row, lsn: position as u64, tx, ordinal: self.ordinal }
            })
            .collect();
        let positions = vec![(self.id.to_string(), high)];
        commit_rows(self.t, placed, positions, self.report, (self.progress, self.name, self.started)).await?;
        Ok(())
    }
}

/// The (key, watermark) pairs the table holds above `low`.
async fn held_since(t: &Tables, low: i64) -> Result<HashSet<(String, i64)>, Error> {
    let sql = format!("SELECT arrow_cast(\"key\", 'Utf8'), lsn FROM t WHERE op = 'r' AND lsn > {low}");
    let mut out = HashSet::new();
    for b in query(t, &sql).await? {
        let (keys, marks) =
            (b.column(0).as_string::<i32>(), b.column(1).as_primitive::<arrow_array::types::Int64Type>());
        out.extend((0..b.num_rows()).map(|i| (keys.value(i).to_string(), marks.value(i))));
    }
    Ok(out)
}

/// The keys the table holds (their last row is not a delete) that the
/// query no longer gives.
async fn swept(w: &Writer<'_>, d: &Described, c: &ingesta_warehouse::Conn) -> Result<Vec<String>, Error> {
    let sql = "SELECT arrow_cast(\"key\", 'Utf8') FROM (SELECT \"key\", op, row_number() OVER (PARTITION BY \"key\" ORDER BY seq DESC) AS n \
               FROM t) WHERE n = 1 AND op <> 'd'";
    let now: HashSet<String> = d.keys(&c.client).await?.into_iter().collect();
    let mut gone = Vec::new();
    for b in query(w.t, sql).await? {
        let keys = b.column(0).as_string::<i32>();
        gone.extend((0..b.num_rows()).map(|i| keys.value(i)).filter(|k| !now.contains(*k)).map(str::to_string));
    }
    Ok(gone)
}

/// The rows of `sql` over the table (as `t`); text columns cast to Utf8 in
/// the query, as the callers read them.
async fn query(t: &Tables, sql: &str) -> Result<Vec<arrow_array::RecordBatch>, Error> {
    let df = |e: ingesta_lake::datafusion::error::DataFusionError| {
        Error::new(ingesta_lake::datafusion_kind(&e), e.to_string())
    };
    let ctx = crate::transform::plan::session();
    ctx.register_table("t", t.bronze.provider().await?).map_err(df)?;
    ctx.sql(sql).await.map_err(df)?.collect().await.map_err(df)
}
