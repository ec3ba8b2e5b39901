//! The table contract. Each store (the Delta lake now, PostgreSQL next) commits a
//! batch of rows together with the input positions it covers, atomically, and
//! tells what it has made durable. A store that cannot honour a write mode says
//! so with a `Stop` error instead of approximating it.

use arrow_array::RecordBatch;

use crate::Result;

/// How new rows combine with the rows a table already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// Every row is added.
    Append,
    /// A row whose key is already present is skipped.
    InsertIfAbsent { key: Vec<String> },
    /// A row replaces the stored row with the same key when its sequence is newer.
    Upsert { key: Vec<String>, sequence: String },
    /// Measures of a row are added to the stored measures of the same key.
    CounterMerge { key: Vec<String>, measures: Vec<String> },
}

/// One atomic write: rows plus the positions (application id, version) of the
/// inputs they came from.
#[derive(Debug)]
pub struct CommitRequest<'a> {
    pub batches: Vec<RecordBatch>,
    pub mode: &'a WriteMode,
    pub positions: Vec<(String, i64)>,
    /// Free-form facts recorded with the commit (batch id, counts).
    pub info: Vec<(String, String)>,
}

/// What became durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The store's version after the commit (Delta version, or a PostgreSQL sequence).
    pub version: i64,
    pub rows: u64,
}

/// A table that commits rows together with input positions.
#[allow(async_fn_in_trait)]
pub trait TableStore {
    /// The durable version recorded for an input, if any.
    async fn position(&self, app_id: &str) -> Result<Option<i64>>;
    /// Writes rows and positions in one atomic step. Only after it returns may a
    /// source consider the positions consumed.
    async fn commit(&mut self, request: CommitRequest<'_>) -> Result<CommitReceipt>;
}
