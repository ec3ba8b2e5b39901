//! A consumer-group member that resumes from the lake, not from the group.
//!
//! On every assignment the consumer asks its owner where each new partition
//! stands (the offsets recorded in the table) and assigns the partitions at
//! the next offset, before any message is fetched; partitions the table has
//! never seen start where the source's `start` says. Group offsets are only
//! committed (asynchronously, after the table commit) so that lag shows up in
//! the usual tools. Rebalance callbacks run inside `poll`, on the caller's
//! thread, so the owner sees assignments and revocations in order with the
//! messages.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingesta_config::{Kafka as KafkaConfig, Start};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList as Tpl};

use crate::client::{Health, client_config};
use crate::{KafkaError as Error, Message, TopicPartition};

/// Where an assigned partition stands in the table: the last offset covered,
/// or `None` when the table has never seen it.
pub type Lookup = dyn Fn(&[TopicPartition]) -> Result<Vec<Option<i64>>, String> + Send + Sync;

/// What happened to the assignment since the last `take_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The partition is ours, starting after `covered` (the table's position).
    Assigned { tp: TopicPartition, covered: Option<i64> },
    /// The partition went to another member; rows not committed for it must go.
    Revoked { tp: TopicPartition },
}

/// What one `poll` returned.
pub enum Polled {
    Message(Message),
    /// The partition has no more messages for now.
    Caught(i32),
    Idle,
}

pub struct Consumer {
    inner: BaseConsumer<Ctx>,
    /// When the lag was last measured (it costs a request per partition).
    lag_measured: Mutex<Option<std::time::Instant>>,
}

/// The lag is measured at most this often.
const LAG_EVERY: Duration = Duration::from_secs(10);

struct Ctx {
    lookup: Arc<Lookup>,
    start: Start,
    events: Mutex<Vec<Event>>,
    health: Health,
}

impl ClientContext for Ctx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => tracing::error!(target: "librdkafka", "{fac}: {message}"),
            L::Warning => tracing::warn!(target: "librdkafka", "{fac}: {message}"),
            L::Notice | L::Info => tracing::info!(target: "librdkafka", "{fac}: {message}"),
            L::Debug => tracing::debug!(target: "librdkafka", "{fac}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // reaching the end of a partition is news, not a problem
        if matches!(error, KafkaError::PartitionEOF(_)) || reason.contains("reached end of partition") {
            return;
        }
        // "all brokers are down" follows each broker's own error (which one, why): keep that
        if reason.contains("brokers are down") && self.health.problem().is_some() {
            return;
        }
        crate::client::report(&self.health, &error, reason);
    }
}

impl ConsumerContext for Ctx {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let tps: Vec<TopicPartition> =
            tpl.elements().iter().map(|e| TopicPartition::new(e.topic(), e.partition())).collect();
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl, &tps, cooperative),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.events.lock().expect("events").extend(tps.iter().map(|tp| Event::Revoked { tp: tp.clone() }));
                if cooperative { consumer.incremental_unassign(tpl) } else { consumer.unassign() }
                    .map_err(|e| e.to_string())
            }
            other => {
                tracing::warn!(error = ?other, "rebalance failed; dropping the assignment");
                self.events.lock().expect("events").extend(tps.iter().map(|tp| Event::Revoked { tp: tp.clone() }));
                consumer.unassign().map_err(|e| e.to_string())
            }
        };
        if let Err(e) = result {
            self.health.failed(format!("rebalance: {e}"));
        }
    }
}

impl Ctx {
    /// Assigns `tpl` at the offsets after the table's positions.
    fn assign(
        &self,
        consumer: &BaseConsumer<Self>,
        tpl: &mut TopicPartitionList,
        tps: &[TopicPartition],
        cooperative: bool,
    ) -> Result<(), String> {
        let covered = match (self.lookup)(tps) {
            Ok(c) => c,
            Err(e) => {
                // without positions nothing may be read: give the partitions
                // back; the group assigns them again after the next rebalance
                self.health.failed(format!("cannot read the table's positions: {e}"));
                let empty = TopicPartitionList::new();
                return if cooperative { Ok(()) } else { consumer.assign(&empty).map_err(|e| e.to_string()) };
            }
        };
        let mut by_time = Tpl::new();
        for (tp, c) in tps.iter().zip(&covered) {
            let offset = match (c, &self.start) {
                (Some(o), _) => Offset::Offset(o + 1),
                (None, Start::Earliest) => Offset::Beginning,
                (None, Start::Latest) => Offset::End,
                (None, Start::At(ms)) => {
                    by_time
                        .add_partition_offset(&tp.topic, tp.partition, Offset::Offset(*ms))
                        .map_err(|e| e.to_string())?;
                    continue;
                }
            };
            tpl.set_partition_offset(&tp.topic, tp.partition, offset).map_err(|e| e.to_string())?;
        }
        if by_time.count() > 0 {
            let found = consumer.offsets_for_times(by_time, Duration::from_secs(30)).map_err(|e| e.to_string())?;
            for e in found.elements() {
                // no message at or after the time: start at the end
                let offset = match e.offset() {
                    Offset::Offset(o) => Offset::Offset(o),
                    _ => Offset::End,
                };
                tpl.set_partition_offset(e.topic(), e.partition(), offset).map_err(|e| e.to_string())?;
            }
        }
        let mut events = self.events.lock().expect("events");
        for (tp, c) in tps.iter().zip(covered) {
            events.push(Event::Assigned { tp: tp.clone(), covered: c });
        }
        drop(events);
        tracing::info!(partitions = ?tps, "assigned");
        if cooperative { consumer.incremental_assign(tpl) } else { consumer.assign(tpl) }.map_err(|e| e.to_string())
    }
}

impl Consumer {
    /// Joins `group` and subscribes to the source's topics (or pattern).
    pub fn new(cfg: &KafkaConfig, group: &str, lookup: Arc<Lookup>, health: Health) -> Result<Self, Error> {
        let mut client = client_config(&cfg.brokers, &cfg.properties);
        client
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            .set("auto.offset.reset", if cfg.start == Start::Latest { "latest" } else { "earliest" });
        let ctx = Ctx { lookup, start: cfg.start.clone(), events: Mutex::new(Vec::new()), health };
        let inner: BaseConsumer<Ctx> = client.create_with_context(ctx).map_err(|e| Error::config(&e))?;
        let topics: Vec<&str> = match &cfg.pattern {
            Some(p) if p.starts_with('^') => vec![p.as_str()],
            Some(p) => return Err(Error::Config(format!("pattern `{p}` must start with `^` (a regular expression)"))),
            None => cfg.topics.iter().map(String::as_str).collect(),
        };
        inner.subscribe(&topics).map_err(|e| Error::config(&e))?;
        Ok(Self { inner, lag_measured: Mutex::new(None) })
    }

    /// Waits up to `timeout` for a message; rebalances happen in here.
    pub fn poll(&self, timeout: Duration) -> Result<Polled, Error> {
        match self.inner.poll(timeout) {
            None => Ok(Polled::Idle),
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
                    .unwrap_or_default();
                Ok(Polled::Message(Message {
                    tp: TopicPartition::new(m.topic(), m.partition()),
                    offset: m.offset(),
                    timestamp_ms: m.timestamp().to_millis(),
                    key: m.key().map(<[u8]>::to_vec),
                    payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    headers,
                }))
            }
            Some(Err(KafkaError::PartitionEOF(p))) => Ok(Polled::Caught(p)),
            Some(Err(e)) => Err(Error::from_kafka(&e)),
        }
    }

    /// Assignment changes since the last call, in the order they happened.
    pub fn take_events(&self) -> Vec<Event> {
        std::mem::take(&mut *self.inner.context().events.lock().expect("events"))
    }

    /// Tells the group how far each partition is covered (`covered` = last
    /// offset in the table), so lag monitors see it. Not a source of truth.
    pub fn commit_group_offsets(&self, covered: &BTreeMap<TopicPartition, i64>) {
        let mut tpl = Tpl::new();
        for (tp, o) in covered {
            if tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(o + 1)).is_err() {
                return;
            }
        }
        if let Err(e) = self.inner.commit(&tpl, CommitMode::Async) {
            tracing::debug!(error = %e, "group offset commit failed (lag monitoring only)");
        }
    }

    /// Messages each partition holds past `covered` (the last offset in the
    /// table), asked of the broker at most every 10 s (none in between); also
    /// noted in the client's health.
    pub fn lag(&self, covered: &BTreeMap<TopicPartition, i64>) -> Vec<(TopicPartition, i64)> {
        {
            let mut last = self.lag_measured.lock().expect("lag");
            if last.is_some_and(|at| at.elapsed() < LAG_EVERY) {
                return Vec::new();
            }
            *last = Some(std::time::Instant::now());
        }
        let lags: Vec<(TopicPartition, i64)> = covered
            .iter()
            .filter_map(|(tp, o)| {
                let (_, high) = self.inner.fetch_watermarks(&tp.topic, tp.partition, Duration::from_secs(2)).ok()?;
                Some((tp.clone(), (high - o - 1).max(0)))
            })
            .collect();
        self.inner.context().health.note_lag(&lags);
        lags
    }

    /// Moves a partition back to the offset after `covered` (after a commit
    /// lost a race and the rows gathered for it were dropped).
    pub fn seek_after(&self, tp: &TopicPartition, covered: Option<i64>, start: &Start) -> Result<(), Error> {
        let offset = match (covered, start) {
            (Some(o), _) => Offset::Offset(o + 1),
            (None, Start::Latest) => Offset::End,
            _ => Offset::Beginning,
        };
        self.inner.seek(&tp.topic, tp.partition, offset, Duration::from_secs(10)).map_err(|e| Error::from_kafka(&e))
    }

    /// Leaves the group cleanly (partitions go to the other members at once).
    pub fn close(self) {
        self.inner.unsubscribe();
        // serve the revocation so the group sees us leave
        for _ in 0..20 {
            if self.inner.poll(Duration::from_millis(50)).is_none()
                && self.inner.assignment().is_ok_and(|a| a.count() == 0)
            {
                break;
            }
        }
    }
}
