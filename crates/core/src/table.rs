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
    /// higher (so the arrival order does not matter). With `deletes`, rows
    /// carry a boolean [`DELETE_FLAG`] column, and such a row, when it wins,
    /// deletes its key instead.
    Upsert { key: Vec<String>, sequence: String, deletes: bool },
    /// A row deletes the stored row with the same key.
    Delete { key: Vec<String> },
    /// A row's measures are combined with the stored measures of the same key.
    CounterMerge { key: Vec<String>, measures: Vec<(String, Measure)> },
    /// Slowly changing dimension, type 2: each row is a version of its key
    /// from its `sequence` on, kept beside the others. The table's
    /// [`VALID_FROM`] is the version's sequence, [`VALID_TO`] the next
    /// version's (null for the newest) and [`IS_CURRENT`] true for the
    /// newest, whatever order the versions arrive in; a version already
    /// stored (same key and sequence) is left as it is.
    History { key: Vec<String>, sequence: String },
}

/// A history table's columns beside the transform's: when a version starts,
/// when the next one starts, and whether it is the newest.
pub const VALID_FROM: &str = "valid_from";
pub const VALID_TO: &str = "valid_to";
pub const IS_CURRENT: &str = "is_current";

/// The column of an upsert's rows saying the row deletes its key.
pub const DELETE_FLAG: &str = "__ingesta_delete";

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
    /// A list of distinct values (`array_agg(DISTINCT x)`), merged by union.
    Set,
    /// The number of values in a `set` measure of the same row, recomputed
    /// after it merges: an exact count of distinct values across batches.
    CountDistinct {
        set: String,
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
            "set" => Measure::Set,
            _ => {
                let raw = s.trim();
                // `name(args)`: the arguments as written (column names keep their case)
                let args = |name: &str| {
                    (t.starts_with(name) && t[name.len()..].trim_start().starts_with('(') && t.ends_with(')'))
                        .then(|| raw[raw.find('(').unwrap_or(0) + 1..raw.len() - 1].trim())
                };
                if let Some((sum, count)) = args("avg").and_then(|a| a.split_once(','))
                    && !sum.trim().is_empty()
                    && !count.trim().is_empty()
                {
                    Measure::Avg { sum: sum.trim().to_string(), count: count.trim().to_string() }
                } else if let Some(set) = args("count_distinct").filter(|a| !a.is_empty() && !a.contains(',')) {
                    Measure::CountDistinct { set: set.to_string() }
                } else {
                    return Err(format!(
                        "unknown measure `{s}`; expected one of: sum, count, min, max, last, \
                         avg(SUM_COLUMN, COUNT_COLUMN), set, count_distinct(SET_COLUMN)"
                    ));
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

/// An input position that another writer moved since it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub app_id: String,
    pub expected: Option<i64>,
    pub stored: Option<i64>,
}

/// A table that commits rows together with input positions: the contract
/// every store honours (the Delta lake now), checked for each store by the
/// same suite (`ingesta_testkit::contract`).
#[allow(async_fn_in_trait)]
pub trait TableStore {
    /// Rows accepted but not yet committed (open Parquet files, an open COPY).
    type Staged;

    /// The table's name, for logs and metrics.
    fn name(&self) -> &str;

    /// The version this handle has read (-1 before the first commit).
    fn version(&self) -> i64;

    /// Reads what other writers committed since this handle last looked.
    async fn refresh(&mut self) -> Result<()>;

    /// The durable version recorded for an input (`app_id`), if any.
    async fn position(&self, app_id: &str) -> Result<Option<i64>>;

    /// Starts a write in `mode`.
    fn begin(&self, mode: &WriteMode) -> Result<Self::Staged>;

    /// Accepts rows into a write; nothing is visible to readers yet, and a
    /// write dropped without its commit leaves the table as it was.
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

    /// [`TableStore::commit`] only if every position in `expected` is still
    /// what the caller read (compare-and-set), so a writer that lost an input
    /// to another cannot commit it twice; `Ok(Err(moved))`, nothing written,
    /// when one moved.
    async fn commit_checked(
        &mut self,
        staged: Self::Staged,
        positions: Vec<(String, i64)>,
        expected: &[(String, Option<i64>)],
        info: Vec<(String, String)>,
    ) -> Result<std::result::Result<CommitReceipt, Moved>>;

    /// The rows appended by the commits after version `after`, up to the
    /// version this handle has read (returned with them): how a reader takes
    /// only what is new. A store may refuse a range in which rows were
    /// changed or deleted.
    async fn rows_since(&self, after: i64) -> Result<(i64, Vec<RecordBatch>)>;

    /// Every row the table holds at the version this handle has read.
    async fn scan(&self) -> Result<Vec<RecordBatch>>;
}

#[cfg(test)]
mod tests {
    use super::Measure;

    #[test]
    fn measures_parse_with_their_arguments_as_written() {
        let m = |s: &str| Measure::try_from(s.to_string());
        assert_eq!(m(" Count "), Ok(Measure::Sum));
        assert_eq!(m("avg(t_Sum, n)"), Ok(Measure::Avg { sum: "t_Sum".into(), count: "n".into() }));
        assert_eq!(m("set"), Ok(Measure::Set));
        assert_eq!(m("count_distinct( Customers )"), Ok(Measure::CountDistinct { set: "Customers".into() }));
        for bad in ["count_distinct()", "count_distinct(a, b)", "avg(x)", "median", "avgx(a, b)"] {
            assert!(m(bad).unwrap_err().contains("count_distinct(SET_COLUMN)"), "{bad}");
        }
    }
}
