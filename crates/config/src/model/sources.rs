//! The pipeline's inputs and outputs as written in YAML: sources (landing
//! folders, Kafka topics, HTTP collectors, databases, REST APIs) and sinks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, Dur, Rest, Secret};

/// An input of the pipeline, chosen by its `type` key.
#[derive(Debug, Clone)]
pub enum Source {
    /// Files dropped in a folder.
    Landing(Landing),
    /// Kafka or Event Hubs topics (any Kafka-protocol broker).
    Kafka(Kafka),
    /// Events posted to `POST /ingest/<source>` (a tracker endpoint).
    Http(Http),
    /// A PostgreSQL database's changes, from a logical replication slot.
    PostgresCdc(PostgresCdc),
    /// A query's new rows by a watermark column, polled.
    Sql(SqlSource),
    /// A REST API's records, page by page, polled.
    Rest(Rest),
}

impl Source {
    /// The accepted values of `type`.
    pub const TYPES: [&'static str; 6] = ["landing", "kafka", "http", "postgres_cdc", "sql", "rest"];

    /// How often `--watch` looks for new input (streams are read continuously).
    pub fn poll(&self) -> Option<Duration> {
        match self {
            Source::Landing(l) => Some(l.poll.0),
            Source::Sql(s) => Some(s.poll.0),
            Source::Rest(r) => Some(r.poll.0),
            Source::Kafka(_) | Source::Http(_) | Source::PostgresCdc(_) => None,
        }
    }
}

/// An output of the pipeline, chosen by its `type` key.
#[derive(Debug, Clone)]
pub enum Sink {
    /// A table's new rows, published to a Kafka topic exactly once.
    Kafka(KafkaSink),
}

impl Sink {
    pub const TYPES: [&'static str; 1] = ["kafka"];

    pub fn input(&self) -> &str {
        match self {
            Sink::Kafka(k) => &k.input,
        }
    }
}

/// Publishes the rows a table appends to a topic: one message per row (JSON,
/// or Avro in the Confluent wire format), keyed by `key`, through an
/// idempotent producer; each row exactly once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSink {
    /// The table whose new rows are published (append-only).
    pub input: String,
    pub brokers: String,
    pub topic: String,
    /// Columns whose values, joined with `|`, make the message key (and pick
    /// the partition); none: no key, rows spread over the partitions.
    #[serde(default)]
    pub key: Vec<String>,
    #[serde(default)]
    pub format: SinkFormat,
    /// For `format: avro`: the registry the value schema is registered with
    /// (subject `<topic>-value`).
    #[serde(default)]
    pub schema_registry: Option<SchemaRegistry>,
    /// librdkafka settings passed as they are. Never printed.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
}

/// How a sink encodes each row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkFormat {
    /// One JSON object per row.
    #[default]
    Json,
    /// Confluent wire format (byte 0, the schema id, Avro binary); the schema
    /// is derived from the table's columns and registered.
    Avro,
}

/// An HTTP collector: clients post JSON or NDJSON events to
/// `POST /ingest/<source>`; each request is answered 2xx only once its events
/// are in the collector's write-ahead log (fsynced), from which they are
/// committed to the table exactly once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// The address to listen on; sources with the same address share a server.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The bearer token clients send (`Authorization: Bearer <token>`). Never printed.
    pub token: Secret,
    /// The write-ahead log's folder (local disk). Default: `_wal/<source>`
    /// under a local lake root; required when the lake is an object store.
    #[serde(default)]
    pub wal: Option<String>,
    /// A request body larger than this (after gzip) is refused with 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: ByteSize,
    /// An event larger than this is refused with 413.
    #[serde(default = "default_max_event_bytes")]
    pub max_record_bytes: ByteSize,
    /// Accepted bytes not yet in the table; beyond this, posts get 429 with
    /// `Retry-After` until the table catches up.
    #[serde(default = "default_max_pending_bytes")]
    pub max_pending_bytes: ByteSize,
    /// Keep log segments the table holds this long (e.g. `30d`) instead of
    /// deleting them at once, so `ingesta rebuild` can read them again.
    #[serde(default)]
    pub archive: Option<Dur>,
    /// Web pages allowed to post from a browser (CORS), e.g.
    /// `["https://shop.example.com"]`, or `["*"]` for any origin.
    #[serde(default)]
    pub cors: Vec<String>,
}

/// Change data capture from PostgreSQL (10+, `wal_level = logical`): a
/// publication and a logical replication slot, an initial copy consistent
/// with the slot, then every committed change, exactly once. The bronze table
/// holds change rows (`op`, `table`, `key`, `before`, `after`, positions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresCdc {
    /// A libpq URL (`postgresql://user:password@host:5432/db?sslmode=require`);
    /// the user needs the REPLICATION attribute. Never printed.
    pub url: Secret,
    /// The schemas whose tables are captured, including tables created later
    /// (when the publication is created).
    #[serde(default)]
    pub schemas: Vec<String>,
    /// Or the tables (`schema.table`) captured.
    #[serde(default)]
    pub tables: Vec<String>,
    /// The publication: created when absent, adopted as it is when present.
    /// Default: `ingesta_<source>`.
    #[serde(default)]
    pub publication: Option<String>,
    /// The logical slot (created with the initial copy). Default:
    /// `ingesta_<pipeline>_<table>` (letters, digits and `_` only).
    #[serde(default)]
    pub slot: Option<String>,
    /// Connections the initial copy reads tables on at once.
    #[serde(default = "default_copy_connections")]
    pub copy_connections: usize,
}

/// Incremental extraction from PostgreSQL: the query's rows whose
/// `watermark` (an increasing `updated_at` or id) is above the last one
/// committed, as change rows (`op` r, `d` for a swept delete), exactly once
/// (the watermark in the commit). For batch loads and for databases without
/// logical replication.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSource {
    /// A libpq URL. Never printed.
    pub url: Secret,
    /// A read-only query (`SELECT … FROM crm.accounts`), without ORDER BY.
    pub query: String,
    /// The column that grows with each change: an integer, a date or a timestamp.
    pub watermark: String,
    /// The key columns (for `look_back` and `sweep`), named in `key` of each row.
    #[serde(default)]
    pub key: Vec<String>,
    /// Read again the rows up to this far below the last watermark (a
    /// timestamp watermark), for rows committed late; rows already held are skipped.
    #[serde(default)]
    pub look_back: Option<Dur>,
    /// Compare the query's keys with the table's this often, and write a
    /// delete (`op` d) for each key gone from the source.
    #[serde(default)]
    pub sweep: Option<Dur>,
    /// How often `--watch` polls the query.
    #[serde(default = "default_sql_poll")]
    pub poll: Dur,
    /// The `table` of its change rows (default: the source's name).
    #[serde(default)]
    pub table: Option<String>,
}

fn default_sql_poll() -> Dur {
    Dur(std::time::Duration::from_secs(60))
}

fn default_copy_connections() -> usize {
    2
}

fn default_listen() -> String {
    "127.0.0.1:8088".into()
}
fn default_max_body_bytes() -> ByteSize {
    ByteSize(16 << 20)
}
pub(super) fn default_max_event_bytes() -> ByteSize {
    ByteSize(1 << 20)
}
fn default_max_pending_bytes() -> ByteSize {
    ByteSize(256 << 20)
}

/// Topics of a Kafka-protocol broker (Apache Kafka, Azure Event Hubs' Kafka
/// endpoint, Redpanda, managed services), read by a consumer group.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kafka {
    /// `host:port[,host:port...]` (`bootstrap.servers`).
    pub brokers: String,
    /// Topics to read; or `pattern`.
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regular expression starting with `^`, matched against topic names.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The consumer group (default `ingesta.<pipeline>.<table>`). Processes
    /// in one group share the topics' partitions.
    #[serde(default)]
    pub group: Option<String>,
    /// Where a partition the table has never seen starts: `earliest`,
    /// `latest`, or an RFC 3339 time.
    #[serde(default)]
    pub start: Start,
    #[serde(default)]
    pub format: MessageFormat,
    /// For `format: avro`: the Confluent Schema Registry holding the schemas.
    #[serde(default)]
    pub schema_registry: Option<SchemaRegistry>,
    /// librdkafka settings passed as they are (`security.protocol`,
    /// `sasl.mechanism`, `sasl.username`, `sasl.password`, ...). Never printed.
    #[serde(default)]
    pub properties: BTreeMap<String, Secret>,
    /// A message larger than this is quarantined instead of read.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: ByteSize,
}

/// Where to start a partition that the table holds no position for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Start {
    #[default]
    Earliest,
    Latest,
    /// Milliseconds since the epoch: the first message at or after it.
    At(i64),
}

impl TryFrom<String> for Start {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.trim() {
            "earliest" => Ok(Start::Earliest),
            "latest" => Ok(Start::Latest),
            t => chrono::DateTime::parse_from_rfc3339(t).map(|d| Start::At(d.timestamp_millis())).map_err(|_| {
                format!("`{s}` is not a start; expected earliest, latest or an RFC 3339 time like 2026-11-01T00:00:00Z")
            }),
        }
    }
}

/// How message values are encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageFormat {
    /// One JSON object per message; fields the columns do not name are kept
    /// in `_rescued`.
    #[default]
    Json,
    /// Confluent wire format: byte 0, a 4-byte schema id, Avro binary.
    Avro,
    /// The value as UTF-8 text, in a `value` column.
    String,
    /// The value as bytes, in a `value` column.
    Bytes,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistry {
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Landing {
    /// The folder to watch: a local path, or a `file://`, `s3://`, `abfss://`,
    /// `gs://` prefix (object stores need a build with `--features cloud`).
    pub path: String,
    /// Object-store options for a URL `path` (credentials, region). Never printed.
    #[serde(default)]
    pub storage: BTreeMap<String, Secret>,
    /// Which files, relative to `path` (`**` crosses folders). Names starting
    /// with `_` or `.` (manifests, temporary files) are always skipped.
    #[serde(default = "default_glob")]
    pub glob: String,
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub compression: Compression,
    #[serde(default)]
    pub csv: CsvOptions,
    /// For `format: json`: the array to turn into records (a dotted path).
    #[serde(default)]
    pub explode: Option<String>,
    /// A record longer than this is quarantined instead of read.
    #[serde(default = "default_max_record_bytes")]
    pub max_record_bytes: ByteSize,
    /// A file is taken once it was last modified longer ago than this; a
    /// younger one only when its size and modification time stayed the same
    /// for this long (files still being written are left for the next scan).
    #[serde(default = "default_settle")]
    pub settle: Dur,
    /// How far ahead of this machine's clock the clocks that stamp the files
    /// may run (a file server's, another writer's, an object store's). A
    /// poll passes over the files that appeared before its start less
    /// `settle` and this (decision 0035).
    #[serde(default = "default_clock_skew")]
    pub clock_skew: Dur,
    /// How often `--watch` looks for new files.
    #[serde(default = "default_poll")]
    pub poll: Dur,
    /// What a file that changes after it was ingested means.
    #[serde(default)]
    pub on_change: OnChange,
}

/// What to do with a landing file whose size or modification time changed
/// after (some of) it was ingested.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChange {
    /// The file grew: read only the records after the last one already
    /// ingested. A file that became smaller was rewritten: it is recorded in
    /// quarantine, not read.
    #[default]
    Tail,
    /// The changed file is a new input: read it again whole.
    Reingest,
    /// Stop the table, naming the file.
    Error,
    /// Leave the changed file alone.
    Ignore,
}

fn default_glob() -> String {
    "**/*".into()
}
fn default_max_record_bytes() -> ByteSize {
    ByteSize(8 << 20)
}
fn default_clock_skew() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_settle() -> Dur {
    Dur(Duration::from_millis(300))
}
fn default_poll() -> Dur {
    Dur(Duration::from_secs(5))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// From the file name: `.ndjson`/`.jsonl`, `.csv`/`.tsv`, `.parquet`, `.avro`, `.json`.
    #[default]
    Auto,
    Ndjson,
    Csv,
    Parquet,
    Avro,
    /// Whole JSON documents; with `explode`, one record per element of an array.
    Json,
}

impl Format {
    /// Records in this format can name fields the table does not (JSON,
    /// CSV): a landing bronze table keeps those in `_rescued`.
    pub fn rescues(self) -> bool {
        !matches!(self, Format::Parquet | Format::Avro)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// From the file name: `.gz`, `.zst`; otherwise none.
    #[default]
    Auto,
    None,
    Gzip,
    Zstd,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    #[serde(default = "yes")]
    pub header: bool,
    #[serde(default = "comma")]
    pub delimiter: char,
    #[serde(default = "dquote")]
    pub quote: char,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self { header: true, delimiter: ',', quote: '"' }
    }
}

fn yes() -> bool {
    true
}
fn comma() -> char {
    ','
}
fn dquote() -> char {
    '"'
}
