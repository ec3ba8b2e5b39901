//! The table contract. Each store (the Delta lake now, PostgreSQL next) stages
//! rows, then commits them together with the input positions they cover in one
//! atomic step. Staged rows are only accepted; committed rows are durable, and
//! only a commit moves a position forward. A store that cannot honour a write
//! mode says so with a `Stop` error instead of approximating it.

use arrow_array::RecordBatch;

use crate::Result;

/// How new rows combine with the rows a table already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteMode {
    /// Every row is added.
    Append,
    /// A row whose key is already present is skipped.
    InsertIfAbsent { key: Vec<String> },
    /// A row replaces the stored row with the same key when its sequence is
    /// higher (so the arrival order does not matter).
    Upsert { key: Vec<String>, sequence: String },
    /// A row deletes the stored row with the same key.
    Delete { key: Vec<String> },
    /// A row's measures are combined with the stored measures of the same key.
    CounterMerge { key: Vec<String>, measures: Vec<(String, Measure)> },
}

/// How a measure of a counter merge combines a new value with the stored one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Measure {
    /// Added (counts are sums of counts).
    Sum,
    Min,
    Max,
    /// The newest value replaces the stored one.
    Last,
    /// `sum / count` of two sum measures of the same row, recomputed after they merge.
    Avg {
        sum: String,
        count: String,
    },
}

impl TryFrom<String> for Measure {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "sum" | "count" => Measure::Sum,
            "min" => Measure::Min,
            "max" => Measure::Max,
            "last" => Measure::Last,
            _ => {
                let raw = s.trim();
                let args = (t.starts_with("avg(") && t.ends_with(')'))
                    .then(|| raw[4..raw.len() - 1].split_once(','))
                    .flatten();
                match args {
                    Some((sum, count)) if !sum.trim().is_empty() && !count.trim().is_empty() => {
                        Measure::Avg { sum: sum.trim().to_string(), count: count.trim().to_string() }
                    }
                    _ => {
                        return Err(format!(
                            "unknown measure `{s}`; expected one of: sum, count, min, max, last, avg(SUM_COLUMN, COUNT_COLUMN)"
                        ));
                    }
                }
            }
        })
    }
}

/// What a commit made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitReceipt {
    /// The store's version after the commit (Delta version, or a PostgreSQL sequence).
    pub version: i64,
    pub rows: u64,
}

/// A table that commits rows together with input positions.
#[allow(async_fn_in_trait)]
pub trait TableStore {
    /// Rows accepted but not yet committed (open Parquet files, an open COPY).
    type Staged;

    /// The durable version recorded for an input (`app_id`), if any.
    async fn position(&self, app_id: &str) -> Result<Option<i64>>;

    /// Starts a write in `mode`.
    fn begin(&self, mode: &WriteMode) -> Result<Self::Staged>;

    /// Accepts rows into a write; nothing is visible to readers yet.
    async fn stage(&self, staged: &mut Self::Staged, batch: RecordBatch) -> Result<()>;

    /// Makes the staged rows and the input positions `(app_id, version)`
    /// durable in one atomic step; `info` is recorded with the commit.
    /// Positions never move back: a caller passes at least the version the
    /// store held for each input when it started reading (the store records
    /// what it is given, so the floor is the caller's to carry).
    async fn commit(
        &mut self,
        staged: Self::Staged,
        positions: Vec<(String, i64)>,
        info: Vec<(String, String)>,
    ) -> Result<CommitReceipt>;
}
