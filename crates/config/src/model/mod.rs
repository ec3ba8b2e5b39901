//! The pipeline model, as written in YAML. Closed enums, unknown keys rejected.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;

mod enrich;
mod operate;
mod replica;
mod reports;
mod rest;
mod serve;
mod sources;
mod vault;
mod write;

pub use enrich::*;
pub use operate::*;
pub use replica::*;
pub use reports::*;
pub use rest::*;
pub use serve::*;
pub use sources::*;
pub use vault::*;
pub use write::*;

/// A pipeline file (read key by key in `load`, so every mistake is reported).
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// A name shown in logs, status and metrics.
    pub pipeline: String,
    pub lake: Lake,
    /// The PostgreSQL warehouse, for tables with `store: warehouse`.
    pub warehouse: Option<Warehouse>,
    /// The Redis server of tables' `enrich` lookups.
    pub redis: Option<Redis>,
    pub sources: BTreeMap<String, Source>,
    pub tables: BTreeMap<String, Table>,
    /// Where tables' new rows are published.
    pub sinks: BTreeMap<String, Sink>,
    /// The HTTP surface of `serve` and `run --watch --serve`.
    pub serve: Option<Serve>,
    /// Named queries served at `/api/reports/<name>` and on the dashboard.
    pub reports: BTreeMap<String, Report>,
    /// The `replicas:` declarations (their declared tables are in `tables`;
    /// the runtime adds those it discovers).
    pub replicas: BTreeMap<String, Replicas>,
    /// Rules that notify a webhook (`alerts:`).
    pub alerts: BTreeMap<String, Alert>,
    /// Where each key came from, for checks made after loading (SQL planning).
    pub origin: crate::Origin,
}

impl Pipeline {
    /// Tables that keep a Change Data Feed: asked for, or read with `read: changes`.
    pub fn change_feeds(&self) -> BTreeSet<String> {
        let read = self.tables.values().filter(|t| t.read == ReadMode::Changes).map(|t| t.input.clone());
        let asked = self.tables.iter().filter(|(_, t)| t.change_feed).map(|(n, _)| n.clone());
        read.chain(asked).collect()
    }

    /// Table names in an order where every table comes after its inputs and
    /// lookups (bronze first). The graph is acyclic once validated.
    pub fn run_order(&self) -> Vec<String> {
        let mut order: Vec<String> = Vec::new();
        let mut left: Vec<&String> = self.tables.keys().collect();
        while !left.is_empty() {
            let before = left.len();
            left.retain(|name| {
                let ready =
                    self.tables[*name].upstream().iter().all(|u| !self.tables.contains_key(u) || order.contains(u));
                if ready {
                    order.push((*name).clone());
                }
                !ready
            });
            if left.len() == before {
                order.extend(left.drain(..).cloned()); // a cycle: validation reports it
            }
        }
        order
    }

    /// Tables that read `name` (as input or lookup), transitively.
    pub fn downstream(&self, name: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.run_order() {
            let ups = self.tables[&t].upstream();
            if ups.iter().any(|u| u == name || out.contains(u)) {
                out.push(t);
            }
        }
        out
    }
}

/// Where lake tables live: a local folder, or an `s3://`, `abfss://`, `gs://` URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lake {
    pub root: String,
    /// Object-store options (credentials, region, endpoint). Never printed.
    #[serde(default)]
    pub storage: BTreeMap<String, Secret>,
}

/// The PostgreSQL warehouse: a libpq URL, by convention from the
/// environment (`url: ${INGESTA_WAREHOUSE}`), with the password in it or in
/// `PGPASSWORD`-style interpolation; never printed. TLS follows the URL's
/// `sslmode` (`disable`, `prefer` — the default —, `require`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Warehouse {
    pub url: Secret,
    /// At most this many connections open at once.
    #[serde(default = "default_pool")]
    pub pool: usize,
}

fn default_pool() -> usize {
    8
}

/// Where a table's rows are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Store {
    /// A Delta table under the lake root.
    #[default]
    Lake,
    /// A PostgreSQL table in the pipeline's `warehouse`.
    Warehouse,
}

/// A value that must never reach a log line, an error or serialised output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: &str) -> Self {
        Self(value.to_string())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Bronze,
    Silver,
    Gold,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Bronze => "bronze",
            Layer::Silver => "silver",
            Layer::Gold => "gold",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub layer: Layer,
    /// Bronze: the source that feeds the table. Silver and gold: the upstream
    /// table whose new rows (appended since the last commit) are transformed.
    pub input: String,
    /// Silver and gold: where the table lives, `lake` (the default) or
    /// `warehouse` (a PostgreSQL table named after the table, in `schema`).
    #[serde(default)]
    pub store: Store,
    /// The PostgreSQL schema of a warehouse table (`public` by default);
    /// ignored in the lake, so that one setting can move a table.
    #[serde(default)]
    pub schema: Option<String>,
    /// Silver and gold: what of the input is read. `appends` (the default):
    /// the rows it appended, so it must be append-only. `changes`: its Change
    /// Data Feed, every row inserted, updated or deleted, with `_change_type`
    /// (`insert`, `update_preimage`, `update_postimage`, `delete`),
    /// `_commit_version` and `_commit_timestamp`.
    #[serde(default)]
    pub read: ReadMode,
    /// Keep a Change Data Feed for readers outside the pipeline (Databricks'
    /// `readChangeFeed`, delta-rs's `load_cdf`): merges then also write the
    /// rows they change. A table that another reads with `read: changes`
    /// keeps one anyway.
    #[serde(default)]
    pub change_feed: bool,
    /// Bronze: the record's columns; when absent they are inferred from a sample.
    #[serde(default)]
    pub columns: Option<Vec<Column>>,
    #[serde(default)]
    pub partition_by: Vec<Partition>,
    /// Silver and gold: how the input's new rows become this table's rows.
    #[serde(default)]
    pub transform: Transform,
    /// Data-quality rules checked on every row written.
    #[serde(default)]
    pub expect: Vec<Expectation>,
    #[serde(default)]
    pub write: WriteConfig,
    /// Compact the table when it has this many files smaller than 1/32 of
    /// the target size; each automatic compaction rewrites the smallest of
    /// them, at most the target size in all (0: never automatically;
    /// `ingesta compact` rewrites every file under half the target size).
    #[serde(default = "default_compact_after")]
    pub compact_after: usize,
    /// Data files no version has referenced for this long are deleted
    /// automatically (checked at most hourly; `0`: never automatically).
    /// Readers lagging further behind than this, or time travel further
    /// back, find their files gone.
    #[serde(default = "default_vacuum_after")]
    pub vacuum_after: Dur,
    #[serde(default)]
    pub batch: BatchConfig,
    /// Data files are cut at about this size.
    #[serde(default = "default_file_size")]
    pub target_file_size: ByteSize,
    /// How a pass that failed on a passing fault is tried again.
    #[serde(default)]
    pub retry: Retry,
    /// When the table passes under `run --watch` (at every poll without one).
    #[serde(default)]
    pub schedule: Option<Schedule>,
}

fn default_compact_after() -> usize {
    64
}

/// Delta Lake's own default retention (7 days).
fn default_vacuum_after() -> Dur {
    Dur(Duration::from_secs(7 * 24 * 3600))
}

impl Table {
    /// Tables this one reads: its input and the lookups of its SQL.
    pub fn upstream(&self) -> Vec<String> {
        let mut out = vec![self.input.clone()];
        out.extend(self.transform.lookups.iter().cloned());
        out
    }
}

/// What a silver or gold table reads of its input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// The rows appended since the last commit (the input is append-only).
    #[default]
    Appends,
    /// The input's Change Data Feed since the last commit.
    Changes,
}

/// Steps applied to the new rows of the input, in this order: `explode`,
/// `select`, `filter`, `dedupe`; or one `sql` query over `input`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// A list column whose elements become one row each (other columns copied).
    #[serde(default)]
    pub explode: Option<String>,
    /// The output columns: a name, or `{name, expr, type}` (expr defaults to
    /// the name; type casts). Absent: every column.
    #[serde(default)]
    pub select: Option<Vec<SelectItem>>,
    /// A SQL condition; rows where it is not true are left out.
    #[serde(default)]
    pub filter: Option<String>,
    /// Keep one row per key among the new rows: the one with the highest `order_by`.
    #[serde(default)]
    pub dedupe: Option<Dedupe>,
    /// A query over `input` (the new rows) and, by name, any other table of the
    /// pipeline listed in `lookups` (their current rows).
    #[serde(default)]
    pub sql: Option<String>,
    /// Tables read whole by `sql` (joins, lookups); they run before this one.
    #[serde(default)]
    pub lookups: Vec<String>,
    /// Columns added from Redis to each row the transform gives (`Enrich`).
    #[serde(default)]
    pub enrich: Vec<Enrich>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum SelectItem {
    Name(String),
    Column(SelectColumn),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectColumn {
    pub name: String,
    /// A SQL expression over the input's columns; default: the column `name`.
    #[serde(default)]
    pub expr: Option<String>,
    /// Cast the value to this type.
    #[serde(default, rename = "type")]
    pub ty: Option<ColumnType>,
}

impl SelectItem {
    pub fn name(&self) -> &str {
        match self {
            SelectItem::Name(n) => n,
            SelectItem::Column(c) => &c.name,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dedupe {
    pub key: Vec<String>,
    pub order_by: String,
}

/// A data-quality rule: a SQL condition every row should meet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectation {
    pub name: String,
    /// A SQL boolean expression over the table's columns; a row fails when it is not true.
    pub check: String,
    #[serde(default)]
    pub action: ExpectAction,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectAction {
    /// Count failing rows, keep them.
    #[default]
    Warn,
    /// Count failing rows, leave them out.
    Drop,
    /// Move failing rows to the table's quarantine with the rule's name.
    Quarantine,
    /// Stop the table (nothing of the batch is written) and say why.
    Fail,
}

impl ExpectAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectAction::Warn => "warn",
            ExpectAction::Drop => "drop",
            ExpectAction::Quarantine => "quarantine",
            ExpectAction::Fail => "fail",
        }
    }
}

fn default_file_size() -> ByteSize {
    ByteSize(128 << 20)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// A record where this column is missing or null goes to quarantine.
    #[serde(default)]
    pub required: bool,
}

/// The column types a pipeline may declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ColumnType {
    String,
    Int,
    Bigint,
    Float,
    Double,
    Boolean,
    /// Microseconds, UTC. Accepts ISO-8601 / RFC 3339 and `YYYY-MM-DD HH:MM:SS[.f]`.
    Timestamp,
    Date,
    Decimal(u8, i8),
}

impl TryFrom<String> for ColumnType {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        Ok(match t.as_str() {
            "string" | "text" | "varchar" => Self::String,
            "int" | "integer" | "int32" => Self::Int,
            "bigint" | "long" | "int64" => Self::Bigint,
            "float" | "float32" | "real" => Self::Float,
            "double" | "float64" => Self::Double,
            "boolean" | "bool" => Self::Boolean,
            "timestamp" => Self::Timestamp,
            "date" => Self::Date,
            _ => {
                if let Some(args) = t.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')) {
                    let parsed = args
                        .split_once(',')
                        .and_then(|(p, s)| Some((p.trim().parse::<u8>().ok()?, s.trim().parse::<i8>().ok()?)));
                    if let Some((p, sc)) = parsed.filter(|(p, s)| (1..=38).contains(p) && *s >= 0 && *s as u8 <= *p) {
                        return Ok(Self::Decimal(p, sc));
                    }
                }
                return Err(format!(
                    "unknown column type `{s}`; expected one of: string, int, bigint, float, double, \
                     boolean, timestamp, date, decimal(P,S)"
                ));
            }
        })
    }
}

/// A partition column: in bronze computed from a record column; in silver and
/// gold an output column of the transform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// The partition column's name.
    pub column: String,
    /// Bronze: the record column it is computed from.
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub transform: PartitionTransform,
    /// Warehouse tables: partitions whose range ended longer ago than this are dropped.
    #[serde(default)]
    pub retention: Option<Dur>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionTransform {
    /// The value itself.
    #[default]
    Identity,
    /// The UTC date of a timestamp (a `date` column).
    Day,
    /// The UTC month of a timestamp, as `YYYY-MM`.
    Month,
    /// The UTC year of a timestamp.
    Year,
}

/// When a micro-batch is cut: whichever limit is reached first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// How long the oldest row waits for its batch: 5 s by default, 250 ms
    /// for a database's changes (a replica's lag is what they are read for).
    #[serde(default)]
    pub max_wait: Option<Dur>,
}

impl BatchConfig {
    /// `max_wait`, or the source kind's default.
    pub fn max_wait(&self, default: Duration) -> Duration {
        self.max_wait.map_or(default, |d| d.0)
    }

    /// `max_wait`, or the default of files, topics and the collector.
    pub fn wait(&self) -> Duration {
        self.max_wait(Duration::from_secs(5))
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_rows: default_max_rows(), max_bytes: default_max_bytes(), max_wait: None }
    }
}

fn default_max_rows() -> usize {
    2_000_000
}
fn default_max_bytes() -> ByteSize {
    ByteSize(512 << 20)
}

/// A size: a number of bytes or `64KiB`, `128MiB`, `1GiB` (also KB/MB/GB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SizeOrText")]
pub struct ByteSize(pub u64);

/// A duration: `500ms`, `5s`, `2m`, `1h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "SizeOrText")]
pub struct Dur(pub Duration);

impl Dur {
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::try_from(SizeOrText::Text(text.to_string()))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SizeOrText {
    Int(u64),
    Text(String),
}

impl TryFrom<SizeOrText> for ByteSize {
    type Error = String;
    fn try_from(v: SizeOrText) -> Result<Self, String> {
        let text = match v {
            SizeOrText::Int(n) => return Ok(ByteSize(n)),
            SizeOrText::Text(t) => t,
        };
        let (num, unit) = split_unit(&text);
        let mult: u64 = match unit.to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1 << 10,
            "m" | "mb" | "mib" => 1 << 20,
            "g" | "gb" | "gib" => 1 << 30,
            _ => return Err(format!("`{text}` is not a size; write e.g. 65536, 64KiB, 128MiB or 1GiB")),
        };
        num.parse::<u64>()
            .map(|n| ByteSize(n * mult))
            .map_err(|_| format!("`{text}` is not a size; write e.g. 65536, 64KiB, 128MiB or 1GiB"))
    }
}

impl TryFrom<SizeOrText> for Dur {
    type Error = String;
    fn try_from(v: SizeOrText) -> Result<Self, String> {
        let text = match v {
            SizeOrText::Int(n) => return Ok(Dur(Duration::from_secs(n))),
            SizeOrText::Text(t) => t,
        };
        let bad = || format!("`{text}` is not a duration; write e.g. 500ms, 5s, 2m, 1h or 7d");
        let (num, unit) = split_unit(&text);
        let n: u64 = num.parse().map_err(|_| bad())?;
        Ok(Dur(match unit {
            "ms" => Duration::from_millis(n),
            "s" | "" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            "d" => Duration::from_secs(n * 86400),
            _ => return Err(bad()),
        }))
    }
}

fn split_unit(text: &str) -> (&str, &str) {
    let t = text.trim();
    let at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    (t[..at].trim(), t[at..].trim())
}
