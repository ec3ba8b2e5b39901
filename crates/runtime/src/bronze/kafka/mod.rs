//! A bronze table fed by Kafka topics, exactly once.
//!
//! One thread per table polls a consumer-group member (`ingesta-kafka`),
//! gathers messages per partition, and at each trigger (max rows, max bytes,
//! max wait) decodes them and commits: the quarantine first, then the table,
//! each recording per partition the last offset covered
//! (`ingesta/kafka/<topic>/<partition>`) in the same Delta commit as the rows.
//! Commits are compare-and-set on those positions (`commit_checked`): if
//! another member committed a partition since we read its position (a
//! rebalance we had not seen yet), the batch is dropped and every partition
//! goes back to the table's positions. Revoked partitions drop their
//! uncommitted messages; the new owner reads them from the table's positions.

mod columns;
mod commit;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow_schema::SchemaRef;
use ingesta_config::{Kafka as KafkaConfig, Table};
use ingesta_core::{Error, TableStore};
use ingesta_kafka::registry::Registry;
use ingesta_kafka::{Consumer, Event, Health, Message, Polled, TopicPartition};
use ingesta_lake::{Lake, LakeTable};
use ingesta_sources::schema::RecordSchema;
use tokio::runtime::Handle;

pub use columns::{declared_record, stream_schema};

use crate::bronze::{Tables, open_tables, stored_record};
use crate::report::{Progress, TableReport};
use crate::upkeep::Upkeep;

/// How long `--once` waits for the group to hand out partitions.
const ASSIGN_WAIT: Duration = Duration::from_secs(20);

pub struct StreamTask {
    name: String,
    cfg: Table,
    kafka: KafkaConfig,
    group: String,
    lake: Lake,
    health: Health,
}

/// When a run ends.
#[derive(Clone)]
enum Until {
    /// Every assigned partition is read to its end.
    CaughtUp,
    /// The flag is set (Ctrl-C).
    Stopped(Arc<AtomicBool>),
}

impl StreamTask {
    pub fn new(lake: Lake, pipeline: &str, name: &str, cfg: &Table, kafka: &KafkaConfig) -> Self {
        let group = kafka.group.clone().unwrap_or_else(|| format!("ingesta.{pipeline}.{name}"));
        Self { name: name.to_string(), cfg: cfg.clone(), kafka: kafka.clone(), group, lake, health: Health::default() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client's current problem (broker unreachable, bad credentials), if any.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Reads until every partition assigned to this member is caught up.
    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        self.run(Until::CaughtUp, progress).await
    }

    /// Reads until `stop` is set, committing at each trigger.
    pub async fn run_until(&mut self, stop: Arc<AtomicBool>, progress: &Progress) -> Result<TableReport, Error> {
        self.run(Until::Stopped(stop), progress).await
    }

    async fn run(&mut self, until: Until, progress: &Progress) -> Result<TableReport, Error> {
        let mut w = Worker {
            name: self.name.clone(),
            cfg: self.cfg.clone(),
            kafka: self.kafka.clone(),
            lake: self.lake.clone(),
            rt: Handle::current(),
            tables: None,
            owned: BTreeMap::new(),
            registry: None,
            report: TableReport { table: self.name.clone(), ..Default::default() },
            progress: progress.clone(),
            started: Instant::now(),
            upkeep: Upkeep::new(&self.cfg),
        };
        let (group, health) = (self.group.clone(), self.health.clone());
        tokio::task::spawn_blocking(move || {
            let r = w.run(&group, health, until);
            w.progress.done();
            w.report.elapsed = w.started.elapsed();
            r.map(|()| w.report)
        })
        .await
        .map_err(|e| Error::stop(format!("table `{}`: the stream thread failed: {e}", self.name)))?
    }
}

/// A partition this member owns.
pub(crate) struct Part {
    /// The table's position when we read it or last committed it.
    pub bronze: Option<i64>,
    pub quarantine: Option<i64>,
    /// The last offset taken (committed or pending); older ones are replays.
    pub seen: i64,
    pub caught_up: bool,
    pub pending: Vec<Message>,
    pub pending_bytes: u64,
    /// When the oldest pending message arrived.
    pub pending_since: Option<Instant>,
}

pub(crate) struct Worker {
    pub name: String,
    pub cfg: Table,
    pub kafka: KafkaConfig,
    pub lake: Lake,
    pub rt: Handle,
    pub tables: Option<Tables>,
    pub owned: BTreeMap<TopicPartition, Part>,
    pub registry: Option<Registry>,
    pub report: TableReport,
    pub progress: Progress,
    pub started: Instant,
    pub upkeep: Upkeep,
}

impl Worker {
    fn run(&mut self, group: &str, health: Health, until: Until) -> Result<(), Error> {
        if let Some(r) = &self.kafka.schema_registry {
            self.registry = Some(Registry::new(r)?);
        }
        self.open_existing()?;
        let lookup = self.lookup();
        let consumer = Consumer::new(&self.kafka, group, lookup, health.clone())?;
        let result = self.consume(&consumer, &health, &until);
        consumer.close();
        result
    }

    fn consume(&mut self, consumer: &Consumer, health: &Health, until: &Until) -> Result<(), Error> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            if let Until::Stopped(flag) = until
                && flag.load(Ordering::Relaxed)
            {
                return self.commit_now(consumer);
            }
            let polled = consumer.poll(Duration::from_millis(100));
            let events = consumer.take_events();
            if events.iter().any(|e| matches!(e, Event::Assigned { .. })) {
                health.ok();
            }
            self.apply(events)?;
            match polled {
                Ok(Polled::Message(m)) => {
                    health.ok();
                    backoff = Duration::from_millis(100);
                    if let Some(p) = self.owned.get_mut(&m.tp)
                        && m.offset > p.seen
                    {
                        p.seen = m.offset;
                        p.caught_up = false;
                        p.pending_bytes += m.payload.len() as u64;
                        p.pending.push(m);
                        p.pending_since.get_or_insert_with(Instant::now);
                    }
                }
                Ok(Polled::Caught(n)) => {
                    health.ok();
                    // the event carries the partition number only
                    self.owned.iter_mut().filter(|(tp, _)| tp.partition == n).for_each(|(_, p)| p.caught_up = true);
                }
                Ok(Polled::Idle) => {}
                Err(e) => {
                    let e: Error = e.into();
                    if e.kind == ingesta_core::ErrorKind::Stop {
                        return Err(Error::stop(format!("table `{}`: {}", self.name, e.message)));
                    }
                    // the client's own report (which broker, why) is more telling than the poll's
                    if health.problem().is_none() {
                        health.failed(e.message.clone());
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
            let (rows, bytes) = self.pending();
            let oldest = self.owned.values().filter_map(|p| p.pending_since).min();
            let waited = oldest.is_some_and(|t| t.elapsed() >= self.cfg.batch.wait());
            let caught_up = !self.owned.is_empty() && self.owned.values().all(|p| p.caught_up);
            let once = matches!(until, Until::CaughtUp);
            if rows >= self.cfg.batch.max_rows as u64
                || bytes >= self.cfg.batch.max_bytes.0
                || (rows > 0 && (waited || (once && caught_up)))
            {
                self.commit_now(consumer)?;
            }
            if once && rows == 0 && caught_up {
                return Ok(());
            }
            // refused credentials end a one-off run at once (`--watch` retries)
            if let Some(p) = health.problem().filter(|p| once && p.refused) {
                return Err(Error::retry(format!("table `{}`: {}", self.name, p.message)));
            }
            if once && self.owned.is_empty() && started.elapsed() > ASSIGN_WAIT {
                if let Some(p) = health.problem() {
                    return Err(Error::retry(format!("table `{}`: {}", self.name, p.message)));
                }
                tracing::warn!(table = %self.name, "no partitions were assigned to this member");
                return Ok(());
            }
        }
    }

    fn pending(&self) -> (u64, u64) {
        self.owned.values().fold((0, 0), |(r, b), p| (r + p.pending.len() as u64, b + p.pending_bytes))
    }

    /// Applies assignment changes in the order they happened.
    fn apply(&mut self, events: Vec<Event>) -> Result<(), Error> {
        let assigned: Vec<TopicPartition> = events
            .iter()
            .filter_map(|e| match e {
                Event::Assigned { tp, .. } => Some(tp.clone()),
                Event::Revoked { .. } => None,
            })
            .collect();
        let mut quarantine = self.fresh_positions(&assigned, false)?.into_iter();
        for e in events {
            match e {
                Event::Revoked { tp } => {
                    if let Some(p) = self.owned.remove(&tp)
                        && !p.pending.is_empty()
                    {
                        tracing::info!(table = %self.name, partition = %tp, dropped = p.pending.len(), "revoked; its new owner reads the uncommitted messages");
                    }
                }
                Event::Assigned { tp, covered } => {
                    let part = Part {
                        bronze: covered,
                        quarantine: quarantine.next().flatten(),
                        seen: covered.unwrap_or(-1),
                        caught_up: false,
                        pending: Vec::new(),
                        pending_bytes: 0,
                        pending_since: None,
                    };
                    self.owned.insert(tp, part);
                }
            }
        }
        Ok(())
    }

    /// The partitions' positions in the table (or its quarantine), read
    /// afresh: one reload of the log, then one lookup each.
    pub(crate) fn fresh_positions(&mut self, tps: &[TopicPartition], bronze: bool) -> Result<Vec<Option<i64>>, Error> {
        let Some(t) = &mut self.tables else { return Ok(vec![None; tps.len()]) };
        if tps.is_empty() {
            return Ok(Vec::new());
        }
        let table = if bronze { &mut t.bronze } else { &mut t.quarantine };
        self.rt.block_on(async {
            table.refresh().await?;
            let mut out = Vec::with_capacity(tps.len());
            for tp in tps {
                out.push(table.position(&tp.app_id()).await?);
            }
            Ok(out)
        })
    }

    /// Reads bronze positions for the consumer's assignment callback (a
    /// fresh look at the table: another member may have committed).
    fn lookup(&self) -> Arc<ingesta_kafka::Lookup> {
        let (lake, name, rt) = (self.lake.clone(), self.name.clone(), self.rt.clone());
        Arc::new(move |tps: &[TopicPartition]| {
            rt.block_on(async {
                let url = lake.table_url(&name);
                let Some(t) = LakeTable::open(&lake, &name, &url).await.map_err(|e| e.to_string())? else {
                    return Ok(vec![None; tps.len()]);
                };
                let mut out = Vec::with_capacity(tps.len());
                for tp in tps {
                    out.push(t.position(&tp.app_id()).await.map_err(|e| e.to_string())?);
                }
                Ok(out)
            })
        })
    }

    fn open_existing(&mut self) -> Result<(), Error> {
        let url = self.lake.table_url(&self.name);
        let Some(bronze) = self.rt.block_on(LakeTable::open(&self.lake, &self.name, &url))? else {
            return Ok(());
        };
        let record = match declared_record(self.cfg.columns.as_deref(), self.kafka.format) {
            Some(r) => r,
            None => stored_record(&bronze)?,
        };
        let schema = stream_schema(&record, self.kafka.format, &self.cfg.partition_by);
        self.tables = Some(self.finish_open(bronze, record, schema)?);
        Ok(())
    }

    /// Creates the tables on first use (columns inferred from `sample` when
    /// none are declared).
    pub(crate) fn ensure_tables(&mut self, sample: &[&Message]) -> Result<(), Error> {
        if self.tables.is_some() {
            return Ok(());
        }
        let record = match declared_record(self.cfg.columns.as_deref(), self.kafka.format) {
            Some(r) => r,
            None => {
                let values: Vec<serde_json::Value> =
                    sample.iter().take(1000).filter_map(|m| serde_json::from_slice(&m.payload).ok()).collect();
                if values.is_empty() {
                    return Err(Error::stop(format!(
                        "table `{}`: no message of the first batch is a JSON object; declare `columns`",
                        self.name
                    )));
                }
                let r = ingesta_sources::infer::from_records(&values);
                tracing::info!(table = %self.name, columns = ?r.schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>(), "inferred columns");
                r
            }
        };
        let schema = stream_schema(&record, self.kafka.format, &self.cfg.partition_by);
        let parts: Vec<String> = self.cfg.partition_by.iter().map(|p| p.column.clone()).collect();
        let url = self.lake.table_url(&self.name);
        let desc = format!("bronze table fed by topics {:?}", self.kafka.topics);
        let bronze =
            self.rt.block_on(LakeTable::open_or_create(&self.lake, &self.name, &url, &schema, &parts, &desc))?;
        self.tables = Some(self.finish_open(bronze, record, schema)?);
        Ok(())
    }

    fn finish_open(&self, bronze: LakeTable, record: RecordSchema, schema: SchemaRef) -> Result<Tables, Error> {
        let size = self.cfg.target_file_size.0;
        self.rt.block_on(open_tables(&self.lake, &self.name, bronze, record, schema, size))
    }
}
