//! The run history: one row per table pass that committed or failed (passes
//! with nothing to do are not kept), in the lake's `_runs` Delta table,
//! queryable as `ingesta_runs`. Rows are gathered in memory and appended at
//! most once a minute under `--watch`, at once after a failure, and when the
//! process ends; a process killed outright loses the rows it had not
//! appended yet (the tables' own commits are not affected).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ingesta_core::{Error, TableStore, WriteMode};
use ingesta_lake::datafusion::error::DataFusionError;
use ingesta_lake::datafusion::prelude::{SessionContext, lit};
use ingesta_lake::datafusion::scalar::ScalarValue;
use ingesta_lake::{Lake, LakeTable};

use crate::report::TableReport;
use crate::upkeep::Upkeep;

/// The name the history is queried by (`ingesta query`, the SQL API).
pub const TABLE: &str = "ingesta_runs";

/// How often `--watch` appends what it gathered (a failure: at once).
const FLUSH_EVERY: Duration = Duration::from_secs(60);

/// Why a pass ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// `run --once`.
    Once,
    /// A poll of `run --watch`.
    Watch,
    /// A time of the table's `schedule` (under `run --watch`).
    Schedule,
    /// `ingesta repair`.
    Repair,
    /// `ingesta backfill`.
    Backfill,
}

impl Trigger {
    fn code(self) -> &'static str {
        match self {
            Trigger::Once => "once",
            Trigger::Watch => "watch",
            Trigger::Schedule => "schedule",
            Trigger::Repair => "repair",
            Trigger::Backfill => "backfill",
        }
    }
}

/// How a pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Failed on a passing fault; it is tried again.
    Retrying,
    /// Failed after its last attempt, or stopped.
    Failed,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Retrying => "retrying",
            Status::Failed => "failed",
        }
    }
}

/// One pass of one table.
pub struct Pass<'a> {
    pub table: &'a str,
    pub trigger: Trigger,
    pub attempt: u32,
    pub status: Status,
    pub started: SystemTime,
    pub report: Option<&'a TableReport>,
    pub error: Option<&'a str>,
}

struct Row {
    table: String,
    trigger: Trigger,
    attempt: i32,
    status: &'static str,
    started: i64,
    ended: i64,
    /// Rows written, quarantined, files, commits, rows read.
    counts: [i64; 5],
    input: Option<(i64, i64)>,
    error: Option<String>,
}

pub struct RunLog {
    lake: Lake,
    run_id: String,
    rows: Vec<Row>,
    appended: Instant,
    table: Option<LakeTable>,
    upkeep: Upkeep,
}

fn schema() -> SchemaRef {
    let ts = || DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some("UTC".into()));
    let fields = [
        ("run_id", DataType::Utf8),
        ("trigger", DataType::Utf8),
        ("table", DataType::Utf8),
        ("attempt", DataType::Int32),
        ("status", DataType::Utf8),
        ("started", ts()),
        ("ended", ts()),
        ("rows", DataType::Int64),
        ("quarantined", DataType::Int64),
        ("files", DataType::Int64),
        ("commits", DataType::Int64),
        ("rows_in", DataType::Int64),
        ("input_from", DataType::Int64),
        ("input_to", DataType::Int64),
        ("error", DataType::Utf8),
    ];
    Arc::new(Schema::new(fields.into_iter().map(|(n, t)| Field::new(n, t, true)).collect::<Vec<_>>()))
}

fn micros(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

impl RunLog {
    pub fn new(lake: &Lake) -> Self {
        Self {
            lake: lake.clone(),
            run_id: uuid::Uuid::new_v4().to_string(),
            rows: Vec::new(),
            appended: Instant::now(),
            table: None,
            upkeep: Upkeep::with(64, Duration::from_secs(7 * 24 * 3600)),
        }
    }

    /// Keeps a pass; one with nothing done and no error is left out, unless
    /// its schedule called it.
    pub fn record(&mut self, pass: Pass) {
        let r = pass.report;
        let counts = r.map_or([0; 5], |r| [r.rows, r.quarantined, r.files, r.commits, r.rows_in].map(|n| n as i64));
        if pass.status == Status::Ok && counts[3] == 0 && pass.trigger != Trigger::Schedule {
            return;
        }
        self.rows.push(Row {
            table: pass.table.to_string(),
            trigger: pass.trigger,
            attempt: pass.attempt as i32,
            status: pass.status.code(),
            started: micros(pass.started),
            ended: micros(SystemTime::now()),
            counts,
            input: r.and_then(|r| r.input_versions),
            error: pass.error.map(str::to_string),
        });
    }

    /// Appends what was gathered when it is due: a minute after the last
    /// append, or at once when a pass failed.
    pub async fn append_when_due(&mut self) {
        let failed = self.rows.iter().any(|r| r.status != Status::Ok.code());
        if failed || self.appended.elapsed() >= FLUSH_EVERY {
            self.append().await;
        }
    }

    /// Appends what was gathered; a failure is logged and the rows kept for the next try.
    pub async fn append(&mut self) {
        self.appended = Instant::now();
        if self.rows.is_empty() {
            return;
        }
        if let Err(e) = self.try_append().await {
            tracing::warn!(error = %e, "cannot append to the run history; tried again later");
        }
    }

    async fn try_append(&mut self) -> Result<(), Error> {
        let table = match &mut self.table {
            Some(t) => t,
            None => {
                let url = self.lake.runs_url();
                let desc = "the run history: one row per table pass";
                let mut t = LakeTable::open_or_create(&self.lake, "_runs", &url, &schema(), &[], desc).await?;
                // a history made by an earlier version gains the columns added since
                let stored = t.arrow_schema()?;
                let missing: Vec<Field> = schema()
                    .fields()
                    .iter()
                    .filter(|f| stored.field_with_name(f.name()).is_err())
                    .map(|f| f.as_ref().clone())
                    .collect();
                if !missing.is_empty() {
                    t.add_columns(&missing).await?;
                }
                self.table.insert(t)
            }
        };
        let n = self.rows.len();
        let col =
            |f: &dyn Fn(&Row) -> i64| -> ArrayRef { Arc::new(Int64Array::from_iter_values(self.rows.iter().map(f))) };
        let ts = |f: &dyn Fn(&Row) -> i64| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from_iter_values(self.rows.iter().map(f)).with_timezone("UTC"))
        };
        let text = |f: &dyn Fn(&Row) -> Option<String>| -> ArrayRef {
            Arc::new(self.rows.iter().map(f).collect::<StringArray>())
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(&self.run_id, n))),
            Arc::new(StringArray::from_iter_values(self.rows.iter().map(|r| r.trigger.code()))),
            text(&|r| Some(r.table.clone())),
            Arc::new(Int32Array::from_iter_values(self.rows.iter().map(|r| r.attempt))),
            text(&|r| Some(r.status.to_string())),
            ts(&|r| r.started),
            ts(&|r| r.ended),
            col(&|r| r.counts[0]),
            col(&|r| r.counts[1]),
            col(&|r| r.counts[2]),
            col(&|r| r.counts[3]),
            col(&|r| r.counts[4]),
            Arc::new(self.rows.iter().map(|r| r.input.map(|v| v.0)).collect::<Int64Array>()),
            Arc::new(self.rows.iter().map(|r| r.input.map(|v| v.1)).collect::<Int64Array>()),
            text(&|r| r.error.clone()),
        ];
        let batch = RecordBatch::try_new(schema(), columns).map_err(|e| Error::stop(e.to_string()))?;
        // in the stored order (added columns come last)
        let stored = table.arrow_schema()?;
        let order: Vec<usize> = stored.fields().iter().filter_map(|f| batch.schema().index_of(f.name()).ok()).collect();
        let batch = batch.project(&order).map_err(|e| Error::stop(e.to_string()))?;
        table.refresh().await?;
        let mut staged = table.begin(&WriteMode::Append)?;
        table.stage(&mut staged, batch).await?;
        table.commit(staged, Vec::new(), Vec::new()).await?;
        self.rows.clear();
        self.upkeep.run(table).await;
        Ok(())
    }
}

/// A session with the history registered as `ingesta_runs`; none before the
/// first pass was recorded.
async fn history(lake: &Lake) -> Result<Option<SessionContext>, Error> {
    let Some(t) = LakeTable::open(lake, TABLE, &lake.runs_url()).await? else { return Ok(None) };
    let ctx = crate::transform::plan::session();
    t.delta().update_datafusion_session(&ctx.state()).map_err(|e| Error::stop(e.to_string()))?;
    let stored = t.arrow_schema()?;
    let mut rows = ctx.read_table(t.provider().await?).map_err(failed)?;
    // a history made by an earlier version: the columns added since read null
    for f in schema().fields().iter().filter(|f| stored.field_with_name(f.name()).is_err()) {
        let null = ScalarValue::try_from(f.data_type()).map_err(failed)?;
        rows = rows.with_column(f.name(), lit(null)).map_err(failed)?;
    }
    ctx.register_table(TABLE, rows.into_view()).map_err(failed)?;
    Ok(Some(ctx))
}

fn failed(e: DataFusionError) -> Error {
    Error::stop(e.to_string())
}

/// The latest `last` passes (of `table`, or of all), newest first. The table
/// name is a bound parameter.
pub async fn recent(lake: &Lake, table: Option<&str>, last: usize) -> Result<Vec<RecordBatch>, Error> {
    let Some(ctx) = history(lake).await? else { return Ok(Vec::new()) };
    let sql = format!(
        "SELECT started, \"table\", status, attempt, \"trigger\", rows, quarantined, files, commits, rows_in, \
         input_from, input_to, \
         round((CAST(ended AS BIGINT) - CAST(started AS BIGINT)) / 1000000.0, 3) AS seconds, error, run_id \
         FROM {TABLE} WHERE $1 IS NULL OR \"table\" = $1 ORDER BY started DESC, attempt DESC LIMIT {last}"
    );
    let frame = ctx.sql(&sql).await.map_err(failed)?;
    let frame = frame.with_param_values(vec![ScalarValue::Utf8(table.map(str::to_string))]).map_err(failed)?;
    frame.collect().await.map_err(failed)
}

/// The tables and sinks whose latest recorded pass failed.
pub async fn failing(lake: &Lake) -> Result<Vec<String>, Error> {
    let Some(ctx) = history(lake).await? else { return Ok(Vec::new()) };
    let sql = format!(
        "SELECT CAST(\"table\" AS VARCHAR) FROM (SELECT \"table\", status, row_number() OVER (PARTITION BY \"table\" \
         ORDER BY started DESC, attempt DESC) AS latest FROM {TABLE}) WHERE latest = 1 AND status = 'failed' ORDER BY 1"
    );
    let batches = ctx.sql(&sql).await.map_err(failed)?.collect().await.map_err(failed)?;
    let names = batches.iter().flat_map(|b| {
        let col = arrow_cast::cast(b.column(0), &DataType::Utf8).expect("text casts to text");
        col.as_string::<i32>().iter().flatten().map(str::to_string).collect::<Vec<_>>()
    });
    Ok(names.collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history written before `rows_in`, `input_from` and `input_to`
    /// existed is read with them null, and takes new rows with them.
    #[tokio::test]
    async fn a_history_from_an_earlier_version_gains_the_new_columns() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
        let added = ["rows_in", "input_from", "input_to"];
        let old: Vec<Field> = schema()
            .fields()
            .iter()
            .filter(|f| !added.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone())
            .collect();
        let old = Schema::new(old);
        LakeTable::open_or_create(&lake, TABLE, &lake.runs_url(), &old, &[], "old").await.unwrap();
        assert!(recent(&lake, None, 10).await.unwrap().iter().all(|b| b.num_rows() == 0));

        let mut log = RunLog::new(&lake);
        let report =
            TableReport { rows: 5, rows_in: 7, commits: 1, input_versions: Some((1, 3)), ..Default::default() };
        let (started, error) = (SystemTime::now(), None);
        let status = Status::Ok;
        log.record(Pass {
            table: "t",
            trigger: Trigger::Once,
            attempt: 1,
            status,
            started,
            report: Some(&report),
            error,
        });
        log.try_append().await.unwrap();
        let got = recent(&lake, Some("t"), 10).await.unwrap();
        let batch = &got[0];
        let int =
            |name: &str| batch.column_by_name(name).unwrap().as_primitive::<arrow_array::types::Int64Type>().value(0);
        assert_eq!((int("rows"), int("rows_in"), int("input_from"), int("input_to")), (5, 7, 1, 3));
    }
}
