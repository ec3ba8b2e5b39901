//! `ingesta replay TABLE`: the quarantined records of a landing bronze table
//! read again with the pipeline as it is now (a column no longer required, a
//! value its parser now takes), exactly once. A record that reads lands in
//! the table with `_batch_id` `replay-<its quarantine batch>` and its own
//! `_source` and `_position`; then it is marked in the replay ledger
//! (`<table>__replayed`: source, position, batch, when). A replay killed
//! between the two finds the rows already in the table and only marks them,
//! so none lands twice. Records still bad stay in quarantine, unmarked.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::{DateTime, Utc};
use ingesta_config::{Format, Pipeline, Source};
use ingesta_core::{Error, TableStore, WriteMode};
use ingesta_lake::LakeTable;
use ingesta_lake::datafusion::prelude::SessionContext;
use ingesta_lake::datafusion::scalar::ScalarValue;
use ingesta_sources::Landing;
use ingesta_sources::decode::{Chunk, ReadCtx, Stopped, read_ndjson};
use ingesta_sources::schema::{RecordSchema, utc_micros};

use crate::bronze::enrich::{assemble, bronze_schema, enrich, read_schema};
use crate::bronze::stored_record;

/// What a replay did.
#[derive(Debug, Default, serde::Serialize)]
pub struct ReplayReport {
    pub table: String,
    /// Quarantined records that matched and were not replayed before.
    pub candidates: u64,
    /// Read and written to the table now.
    pub replayed: u64,
    /// Already in the table from a replay that stopped before marking them.
    pub marked: u64,
    /// Still bad: left in quarantine.
    pub still_bad: u64,
    /// Not replayable here (CSV records, whole-file errors).
    pub skipped: u64,
}

/// One quarantined record to read again.
struct Candidate {
    source: String,
    position: i64,
    batch: String,
    raw: String,
}

fn ledger_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, true),
        Field::new("position", DataType::Int64, true),
        Field::new("batch_id", DataType::Utf8, true),
        Field::new("replayed_at", utc_micros(), true),
        Field::new("replay_batch", DataType::Utf8, true),
    ]))
}

/// The replay ledger's name (queryable as such).
pub fn ledger_name(table: &str) -> String {
    format!("{table}__replayed")
}

pub async fn replay(
    p: &Pipeline,
    table: &str,
    reason: Option<&str>,
    since: Option<DateTime<Utc>>,
) -> Result<ReplayReport, Error> {
    let cfg = p.tables.get(table).ok_or_else(|| Error::stop(format!("no table `{table}` in the pipeline")))?;
    let Some(Source::Landing(source)) = p.sources.get(&cfg.input) else {
        return Err(Error::stop(format!(
            "`{table}` is not a bronze table fed by a landing folder: replay reads the quarantine of those only"
        )));
    };
    let lake = crate::lake_of(p)?;
    let Some(mut bronze) = LakeTable::open(&lake, table, &lake.table_url(table)).await? else {
        return Err(Error::stop(format!("table `{table}` does not exist yet: nothing was quarantined")));
    };
    let qname = format!("{table}__quarantine");
    let Some(quarantine) = LakeTable::open(&lake, &qname, &lake.quarantine_url(table)).await? else {
        return Ok(ReplayReport { table: table.to_string(), ..Default::default() });
    };
    let ledger_url = lake.quarantine_url(&ledger_name(table));
    let desc = format!("quarantined records of `{table}` replayed into it");
    let mut ledger =
        LakeTable::open_or_create(&lake, &ledger_name(table), &ledger_url, &ledger_schema(), &[], &desc).await?;

    let ctx = crate::transform::plan::session();
    for (name, t) in [("q", &quarantine), ("bronze", &bronze), ("ledger", &ledger)] {
        t.delta().update_datafusion_session(&ctx.state()).map_err(stop)?;
        ctx.register_table(name, t.provider().await?).map_err(stop)?;
    }
    let mut report = ReplayReport { table: table.to_string(), ..Default::default() };
    let candidates = candidates(&ctx, reason, since).await?;
    report.candidates = candidates.len() as u64;
    let landed = already_landed(&ctx).await?;
    let landing = Landing::new(&cfg.input, source)?;
    let (mut mark, mut read) = (Vec::new(), BTreeMap::<(String, String), Vec<Candidate>>::new());
    for c in candidates {
        let json = matches!(landing.detect(&c.source).map(|f| f.0), Ok(Format::Ndjson | Format::Json));
        if landed.contains(&(c.source.clone(), c.position, c.batch.clone())) {
            mark.push((c.source, c.position, c.batch));
        } else if json {
            read.entry((c.source.clone(), c.batch.clone())).or_default().push(c);
        } else {
            report.skipped += 1;
        }
    }
    report.marked = mark.len() as u64;

    // the columns as declared now (their `required` too), else as stored
    let record = match &cfg.columns {
        Some(cols) => RecordSchema::from_columns(cols),
        None => stored_record(&bronze)?,
    };
    let schema = bronze_schema(&record, &cfg.partition_by, source.format.rescues());
    let record = if source.format.rescues() { read_schema(&record) } else { record };
    let replay_batch = uuid::Uuid::new_v4().to_string();
    let now = Utc::now().timestamp_micros();
    let mut staged = bronze.begin(&WriteMode::Append)?;
    for ((file, batch), group) in read {
        let text: String = group.iter().map(|c| c.raw.replace(['\n', '\r'], " ") + "\n").collect();
        let ctx = ReadCtx {
            source: &file,
            schema: &record,
            skip_until: 0,
            quarantined_until: i64::MAX,
            chunk_rows: 32 * 1024,
            max_record_bytes: usize::MAX,
        };
        let mut chunks = Vec::new();
        let mut emit = |c: Chunk| -> Result<(), Stopped> {
            chunks.push(c);
            Ok(())
        };
        let _ = read_ndjson(&mut text.as_bytes(), &ctx, &mut emit);
        let mut good = 0;
        for c in chunks {
            // positions in `text` are lines from 1: back to the records' own
            let positions: Vec<i64> = c.positions.iter().map(|&line| group[line as usize - 1].position).collect();
            let rows = c.rows.num_rows() as u64;
            let e = enrich(c.rows, &file, &positions, &cfg.partition_by);
            bronze.stage(&mut staged, assemble(&schema, &e, now, &format!("replay-{batch}"))).await?;
            good += rows;
            mark.extend(positions.into_iter().map(|p| (file.clone(), p, batch.clone())));
        }
        report.replayed += good;
        report.still_bad += group.len() as u64 - good;
    }
    let info = vec![
        ("ingesta.batch_id".to_string(), replay_batch.clone()),
        ("ingesta.rows".to_string(), report.replayed.to_string()),
        ("ingesta.replayed".to_string(), report.replayed.to_string()),
    ];
    if report.replayed > 0 {
        bronze.commit(staged, Vec::new(), info).await?;
    }
    crate::fail::point(crate::fail::REPLAY_AFTER_TABLE_COMMIT);
    if !mark.is_empty() {
        let mut staged = ledger.begin(&WriteMode::Append)?;
        ledger.stage(&mut staged, ledger_rows(&mark, now, &replay_batch)).await?;
        ledger.commit(staged, Vec::new(), Vec::new()).await?;
    }
    Ok(report)
}

fn stop(e: impl std::fmt::Display) -> Error {
    Error::stop(e.to_string())
}

/// Quarantined records that match and are not in the ledger (parameters bound).
async fn candidates(
    ctx: &SessionContext,
    reason: Option<&str>,
    since: Option<DateTime<Utc>>,
) -> Result<Vec<Candidate>, Error> {
    let sql = "SELECT q.source, q.position, q.batch_id, q.raw FROM q LEFT ANTI JOIN ledger r \
               ON q.source = r.source AND q.position = r.position AND q.batch_id = r.batch_id \
               WHERE q.raw IS NOT NULL AND q.reason <> 'file_error' AND ($1 IS NULL OR q.reason = $1) \
               AND ($2 IS NULL OR q.quarantined_at >= $2) ORDER BY q.source, q.position";
    let params = vec![
        ScalarValue::Utf8(reason.map(str::to_string)),
        ScalarValue::TimestampMicrosecond(since.map(|t| t.timestamp_micros()), Some("UTC".into())),
    ];
    let batches = ctx.sql(sql).await.map_err(stop)?.with_param_values(params).map_err(stop)?.collect().await;
    let mut out = Vec::new();
    for b in batches.map_err(stop)? {
        let text = |i: usize| arrow_cast::cast(b.column(i), &DataType::Utf8).map_err(stop);
        let (source, batch, raw) = (text(0)?, text(2)?, text(3)?);
        let position = arrow_cast::cast(b.column(1), &DataType::Int64).map_err(stop)?;
        let (source, batch, raw) = (source.as_string::<i32>(), batch.as_string::<i32>(), raw.as_string::<i32>());
        for i in 0..b.num_rows() {
            out.push(Candidate {
                source: source.value(i).to_string(),
                position: position.as_primitive::<Int64Type>().value(i),
                batch: batch.value(i).to_string(),
                raw: raw.value(i).to_string(),
            });
        }
    }
    Ok(out)
}

/// (source, position, quarantine batch) of every row an earlier replay wrote.
async fn already_landed(ctx: &SessionContext) -> Result<HashSet<(String, i64, String)>, Error> {
    let sql = "SELECT _source, _position, _batch_id FROM bronze WHERE _batch_id LIKE 'replay-%'";
    let mut out = HashSet::new();
    for b in ctx.sql(sql).await.map_err(stop)?.collect().await.map_err(stop)? {
        let text = |i: usize| arrow_cast::cast(b.column(i), &DataType::Utf8).map_err(stop);
        let (s, id) = (text(0)?, text(2)?);
        let position = arrow_cast::cast(b.column(1), &DataType::Int64).map_err(stop)?;
        let (s, p, id) = (s.as_string::<i32>(), position.as_primitive::<Int64Type>(), id.as_string::<i32>());
        for i in 0..b.num_rows() {
            let batch = id.value(i).trim_start_matches("replay-").to_string();
            out.insert((s.value(i).to_string(), p.value(i), batch));
        }
    }
    Ok(out)
}

fn ledger_rows(mark: &[(String, i64, String)], now: i64, replay_batch: &str) -> RecordBatch {
    let n = mark.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(mark.iter().map(|m| Some(m.0.as_str())).collect::<StringArray>()),
        Arc::new(Int64Array::from_iter_values(mark.iter().map(|m| m.1))),
        Arc::new(mark.iter().map(|m| Some(m.2.as_str())).collect::<StringArray>()),
        Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(replay_batch, n))),
    ];
    RecordBatch::try_new(ledger_schema(), columns).expect("columns follow the ledger's schema")
}
