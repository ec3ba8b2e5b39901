//! Bronze: one folder per source kind (`landing/` files, `kafka/` topics,
//! `http/` the collector's log, `postgres/` a database's changes, `sql/` a query's new rows,
//! `rest/` an API's pages), each a task that reads its input after the
//! positions the table holds and hands micro-batches to [`commit`], the one
//! ingestion protocol they share: the quarantine's commit first, then the
//! table's, each recording the input positions it covers in the same atomic
//! step. A crash between the two neither loses a bad record (it is in the
//! quarantine) nor keeps a good one twice (the table's position did not
//! move, and the rerun skips bad records up to the quarantine's position).

pub(crate) mod enrich;
pub(crate) mod http;
pub(crate) mod kafka;
pub(crate) mod landing;
pub(crate) mod postgres;
pub(crate) mod rest;
pub(crate) mod sql;

use std::sync::Arc;

use arrow_schema::SchemaRef;
use ingesta_core::{Error, QuarantineRecord, TableStore, WriteMode};
use ingesta_lake::{Lake, LakeTable, quarantine_batch, quarantine_schema};
use ingesta_sources::schema::RecordSchema;

use crate::fail;

/// A micro-batch, staged: the table's rows are in `staged`; the bad records
/// wait to be written to the quarantine.
pub(crate) struct Batch<S> {
    pub staged: S,
    pub rows: u64,
    /// The input positions the table's commit records.
    pub positions: Vec<(String, i64)>,
    pub quarantine: Vec<QuarantineRecord>,
    /// The input positions the quarantine's commit records (with bad records only).
    pub quarantine_positions: Vec<(String, i64)>,
    /// Compare-and-set: the positions each table must still hold, so a
    /// writer that lost its inputs to another (a Kafka group member that
    /// missed a rebalance) cannot commit them twice. None: plain commits.
    pub expect: Option<Expected>,
    pub batch_id: String,
    pub ingested_at: i64,
}

impl<S> Batch<S> {
    /// A batch of a source whose records cannot be malformed (a database's
    /// rows): nothing for the quarantine, plain commits.
    pub fn clean(staged: S, rows: u64, positions: Vec<(String, i64)>, batch_id: String, ingested_at: i64) -> Self {
        let (quarantine, quarantine_positions, expect) = (Vec::new(), Vec::new(), None);
        Self { staged, rows, positions, quarantine, quarantine_positions, expect, batch_id, ingested_at }
    }
}

/// The positions the table and its quarantine held when the batch was read.
pub(crate) struct Expected {
    pub table: Vec<(String, Option<i64>)>,
    pub quarantine: Vec<(String, Option<i64>)>,
}

/// What [`commit`] did.
pub(crate) enum Committed {
    /// The table's commit (and the quarantine's, when there were bad records).
    Done,
    /// A position moved since the batch was read (its application id):
    /// another writer owns that input now; nothing of the batch's table rows
    /// was committed.
    Moved(String),
}

/// Commits a micro-batch: the quarantine first, then the table. Written
/// against the table contract, so it holds for every store.
pub(crate) async fn commit<T: TableStore>(
    table: &mut T,
    quarantine: &mut T,
    b: Batch<T::Staged>,
) -> Result<Committed, Error> {
    commit_with(table, quarantine, b, Vec::new()).await
}

/// [`commit`], with `extra` in both commits' info: the source's state that
/// does not fit a position's integer (a REST source's cursor).
pub(crate) async fn commit_with<T: TableStore>(
    table: &mut T,
    quarantine: &mut T,
    b: Batch<T::Staged>,
    extra: Vec<(String, String)>,
) -> Result<Committed, Error> {
    let started = std::time::Instant::now();
    let (rows, bad) = (b.rows, b.quarantine.len() as u64);
    let mut info = commit_info(&b.batch_id, b.rows, bad);
    info.extend(extra);
    if !b.quarantine.is_empty() {
        let mut staged = quarantine.begin(&WriteMode::Append)?;
        quarantine.stage(&mut staged, quarantine_batch(&b.quarantine, b.ingested_at, &b.batch_id)).await?;
        match &b.expect {
            Some(e) => {
                let done = quarantine.commit_checked(staged, b.quarantine_positions, &e.quarantine, info.clone());
                if let Err(moved) = done.await? {
                    return Ok(Committed::Moved(moved.app_id));
                }
            }
            None => {
                quarantine.commit(staged, b.quarantine_positions, info.clone()).await?;
            }
        }
        fail::point(fail::AFTER_QUARANTINE_COMMIT);
    }
    let receipt = match &b.expect {
        Some(e) => match table.commit_checked(b.staged, b.positions, &e.table, info).await? {
            Ok(receipt) => receipt,
            Err(moved) => return Ok(Committed::Moved(moved.app_id)),
        },
        None => table.commit(b.staged, b.positions, info).await?,
    };
    crate::events::committed(table.name(), receipt.version, rows, bad, started.elapsed());
    Ok(Committed::Done)
}

/// The opened tables and the columns they hold.
pub(crate) struct Tables {
    pub bronze: LakeTable,
    pub quarantine: LakeTable,
    pub record: Arc<RecordSchema>,
    pub schema: SchemaRef,
}

/// The `info` of a bronze (or its quarantine's) commit: the batch and its counts.
/// Whether a polled source is due (its last poll at least `every` before
/// `now`); when it is, `now` becomes its last poll.
pub(crate) fn poll_due(
    polled: &mut Option<std::time::Instant>,
    every: std::time::Duration,
    now: std::time::Instant,
) -> bool {
    if polled.is_some_and(|at| now.duration_since(at) < every) {
        return false;
    }
    *polled = Some(now);
    true
}

fn commit_info(batch_id: &str, rows: u64, quarantined: u64) -> Vec<(String, String)> {
    vec![
        ("ingesta.batch_id".to_string(), batch_id.to_string()),
        ("ingesta.rows".to_string(), rows.to_string()),
        ("ingesta.quarantined".to_string(), quarantined.to_string()),
    ]
}

/// The items at `positions` (ascending; a subsequence of `items` by
/// `position`): the inputs a decode kept, for their metadata columns.
pub(crate) fn kept_at<'a, T>(items: &'a [T], position: impl Fn(&T) -> i64, positions: &[i64]) -> Vec<&'a T> {
    let mut out = Vec::with_capacity(positions.len());
    let mut it = items.iter();
    for &p in positions {
        if let Some(m) = it.by_ref().find(|m| position(m) == p) {
            out.push(m);
        }
    }
    out
}

/// Opens the quarantine table beside `bronze` (creating it when absent).
pub(crate) async fn open_tables(
    lake: &Lake,
    name: &str,
    bronze: LakeTable,
    record: RecordSchema,
    schema: SchemaRef,
    target_file_size: u64,
) -> Result<Tables, Error> {
    let qurl = lake.quarantine_url(name);
    let qname = format!("{name}__quarantine");
    let desc = format!("records of `{name}` that could not be read");
    let quarantine = LakeTable::open_or_create(lake, &qname, &qurl, &quarantine_schema(), &[], &desc).await?;
    let bronze = bronze.with_target_file_size(target_file_size).with_parallel_writers(crate::parquet_writers());
    Ok(Tables { bronze, quarantine, record: Arc::new(record), schema })
}

/// The record columns a bronze table stores (not metadata, not partitions).
pub(crate) fn stored_record(bronze: &LakeTable) -> Result<RecordSchema, Error> {
    let stored = bronze.arrow_schema()?;
    let parts = bronze.partition_columns();
    let fields: Vec<_> = stored
        .fields()
        .iter()
        .filter(|f| !f.name().starts_with('_') && !parts.contains(f.name()))
        .map(|f| f.as_ref().clone())
        .collect();
    Ok(RecordSchema::from_arrow(&arrow_schema::Schema::new(fields)))
}
