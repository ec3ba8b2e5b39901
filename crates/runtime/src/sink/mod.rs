//! A table's new rows published to a Kafka topic, exactly once with respect
//! to the table's versions (decision 0007).
//!
//! Every row has a stable position: (input version, its number within the
//! version, counting the version's added files in commit order, each read
//! alone and in order). The sink picks each row's partition itself (CRC-32 of
//! the key, or of the position when there is no key) and sends the position
//! as a header through the idempotent producer. After a version is flushed
//! (every message acknowledged), its number is committed as a `txn` to the
//! sink's ledger (`<lake>/_sinks/<name>`). On start, the ledger says which
//! versions are surely in the topic, and the last message of each partition
//! says how far that partition got in the next one: a row is sent only if its
//! position is past its partition's last, so nothing is sent twice after a
//! crash, and nothing is skipped. One process runs a sink; the topic is the
//! sink's alone. Values are JSON or Avro (`encode`).

mod encode;

use std::sync::Arc;
use std::time::Instant;

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Schema};
use ingesta_config::KafkaSink;
use ingesta_core::{Error, TableStore, WriteMode};
use ingesta_kafka::{Health, Producer, Record, Tail, tails};
use ingesta_lake::datafusion::prelude::{SessionConfig, SessionContext};
use ingesta_lake::{Lake, LakeTable};

use crate::report::{Progress, TableReport};

/// Rows sent between two commits of the ledger (a crash re-reads at most
/// this many; the topic's last positions skip what was sent).
const RECORD_EVERY: u64 = 100_000;

/// The header carrying a row's position, `version:row`.
pub const POSITION_HEADER: &str = "ingesta.position";

pub struct SinkTask {
    name: String,
    cfg: KafkaSink,
    lake: Lake,
    producer: Option<Arc<Producer>>,
    /// The versions published (`<lake>/_sinks/<name>`).
    ledger: Option<LakeTable>,
    /// Per partition, the position of its last message (read once per process).
    last: Option<Vec<Option<(i64, i64)>>>,
    encoder: encode::Encoder,
}

impl SinkTask {
    pub fn new(lake: Lake, name: &str, cfg: &KafkaSink) -> Self {
        let encoder = encode::Encoder::new(name, cfg);
        Self { name: name.to_string(), cfg: cfg.clone(), lake, producer: None, ledger: None, last: None, encoder }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes every version the input gained since the last run. After a
    /// failure the topic's last positions are read again (what was in flight
    /// may or may not have arrived).
    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        let r = self.publish_new(progress).await;
        if r.is_err() {
            self.last = None;
            self.producer = None;
        }
        r
    }

    async fn publish_new(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        let started = Instant::now();
        let mut report = TableReport { table: self.name.clone(), ..Default::default() };
        let input_url = self.lake.table_url(&self.cfg.input);
        let Some(input) = LakeTable::open(&self.lake, &self.cfg.input, &input_url).await? else {
            return Ok(report);
        };
        let app = ingesta_core::app_id::sink(&self.cfg.input, &input.table_id()?);
        let ledger = self.ledger().await?;
        let done = ledger.position(&app).await?.unwrap_or(-1);
        if done >= input.version() {
            return Ok(report);
        }
        let producer = self.producer().await?;
        let last = self.last_positions().await?;
        let (end, mut unrecorded) = (input.version(), 0u64);
        for v in done + 1..=end {
            let range = input.appended_since(v - 1, Some(v), u64::MAX).await?;
            let mut row = 0i64;
            for file in &range.files {
                for batch in read_in_order(&input, v, std::slice::from_ref(&file.path)).await? {
                    self.encoder.prepare(&batch.schema()).await?;
                    let (sent, bytes) = self.publish(&producer, &batch, v, &mut row, &last)?;
                    report.rows += sent;
                    report.bytes += bytes;
                    unrecorded += sent;
                }
            }
            // the ledger moves after a flush, every RECORD_EVERY rows and at the end
            if unrecorded < RECORD_EVERY && v < end {
                continue;
            }
            let p = producer.clone();
            tokio::task::spawn_blocking(move || p.flush(std::time::Duration::from_secs(300)))
                .await
                .map_err(|e| Error::stop(e.to_string()))?
                .map_err(|e| Error::retry(format!("sink `{}`: {e}", self.name)))?;
            if unrecorded > 0 {
                crate::fail::point(crate::fail::SINK_AFTER_FLUSH);
            }
            let ledger = self.ledger.as_mut().expect("opened");
            let staged = ledger.begin(&WriteMode::Append)?;
            ledger.commit(staged, vec![(app.clone(), v)], Vec::new()).await?;
            unrecorded = 0;
            report.commits += 1;
            progress.show(&self.name, report.rows, 0, report.bytes, started);
        }
        progress.done();
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Sends the rows of `batch` (numbered on from `row`) that their
    /// partition does not hold yet; (rows sent, bytes).
    fn publish(
        &mut self,
        producer: &Producer,
        batch: &RecordBatch,
        version: i64,
        row: &mut i64,
        last: &[Option<(i64, i64)>],
    ) -> Result<(u64, u64), Error> {
        let rows = self.encoder.encode(batch)?;
        let keys = self.key_columns(batch)?;
        let (mut sent, mut bytes) = (0u64, 0u64);
        for i in 0..rows.len() {
            let value = rows.get(i);
            *row += 1;
            let key = (!keys.is_empty())
                .then(|| keys.iter().map(|f| f.value(i).to_string()).collect::<Vec<_>>().join("|").into_bytes());
            let hashed =
                key.as_deref().map_or_else(|| crc32fast::hash(format!("{version}:{row}").as_bytes()), crc32fast::hash);
            let partition = (hashed % last.len() as u32) as i32;
            if last[partition as usize].is_some_and(|l| l >= (version, *row)) {
                continue; // sent before a crash: the partition has it
            }
            let position = format!("{version}:{row}");
            let headers = [(POSITION_HEADER, position.as_bytes())];
            let record = Record {
                topic: &self.cfg.topic,
                key: key.as_deref(),
                payload: value,
                headers: &headers,
                partition: Some(partition),
            };
            producer.send(&record).map_err(|e| Error::retry(format!("sink `{}`: {e}", self.name)))?;
            sent += 1;
            bytes += value.len() as u64;
        }
        Ok((sent, bytes))
    }

    /// Formatters of the key columns' values (a null is empty), read from the
    /// rows themselves rather than from their JSON.
    fn key_columns<'a>(&self, batch: &'a RecordBatch) -> Result<Vec<ArrayFormatter<'a>>, Error> {
        let options = FormatOptions::default();
        self.cfg
            .key
            .iter()
            .map(|k| {
                let col = batch.column_by_name(k).ok_or_else(|| {
                    Error::stop(format!(
                        "sink `{}`: key column `{k}` is not a column of `{}`",
                        self.name, self.cfg.input
                    ))
                })?;
                ArrayFormatter::try_new(col.as_ref(), &options)
                    .map_err(|e| Error::stop(format!("sink `{}`: key column `{k}`: {e}", self.name)))
            })
            .collect()
    }

    /// The sink's ledger (opened once, created on first use), read afresh.
    async fn ledger(&mut self) -> Result<&LakeTable, Error> {
        match &mut self.ledger {
            Some(l) => l.refresh().await?,
            None => {
                let schema = Arc::new(Schema::new(vec![Field::new("note", DataType::Utf8, true)]));
                let desc = format!(
                    "versions of `{}` published to topic `{}` by sink `{}`",
                    self.cfg.input, self.cfg.topic, self.name
                );
                let (name, url) = (format!("{}__sink", self.name), self.lake.sink_url(&self.name));
                let l = LakeTable::open_or_create(&self.lake, &name, &url, &schema, &[], &desc).await?;
                self.ledger = Some(l);
            }
        }
        Ok(self.ledger.as_ref().expect("opened"))
    }

    async fn producer(&mut self) -> Result<Arc<Producer>, Error> {
        if let Some(p) = &self.producer {
            return Ok(p.clone());
        }
        let p = Producer::new(&self.cfg.brokers, &self.cfg.properties, Health::default())
            .map_err(|e| Error::stop(format!("sink `{}`: {e}", self.name)))?;
        let p = Arc::new(p);
        self.producer = Some(p.clone());
        Ok(p)
    }

    /// Per partition, the position of its last message (once per process:
    /// afterwards this process is the only writer).
    async fn last_positions(&mut self) -> Result<Vec<Option<(i64, i64)>>, Error> {
        if let Some(l) = &self.last {
            return Ok(l.clone());
        }
        let (brokers, props, topic) = (self.cfg.brokers.clone(), self.cfg.properties.clone(), self.cfg.topic.clone());
        let found = tokio::task::spawn_blocking(move || tails(&brokers, &props, &topic, POSITION_HEADER))
            .await
            .map_err(|e| Error::stop(e.to_string()))?
            .map_err(|e| Error::retry(format!("sink `{}`: {e}", self.name)))?;
        let mut out = Vec::with_capacity(found.len());
        for (p, t) in found.into_iter().enumerate() {
            out.push(match t {
                Tail::Empty => None,
                Tail::Header(h) => Some(parse_position(&h).ok_or_else(|| {
                    Error::stop(format!("sink `{}`: partition {p} of `{}` ends with a bad position header", self.name, self.cfg.topic))
                })?),
                Tail::Foreign => {
                    return Err(Error::stop(format!(
                        "sink `{}`: partition {p} of topic `{}` ends with a message this sink did not write; a sink needs a topic of its own",
                        self.name, self.cfg.topic
                    )));
                }
            });
        }
        self.last = Some(out.clone());
        Ok(out)
    }
}

/// The rows of `paths` (one file) at `version`, in file order.
async fn read_in_order(input: &LakeTable, version: i64, paths: &[String]) -> Result<Vec<RecordBatch>, Error> {
    let provider = input.files_provider(version, paths).await?;
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let df = ctx.read_table(provider).map_err(|e| Error::stop(e.to_string()))?;
    df.collect().await.map_err(|e| Error::retry(format!("reading `{}`: {e}", input.name())))
}

fn parse_position(h: &[u8]) -> Option<(i64, i64)> {
    let s = std::str::from_utf8(h).ok()?;
    let (v, r) = s.split_once(':')?;
    Some((v.parse().ok()?, r.parse().ok()?))
}
