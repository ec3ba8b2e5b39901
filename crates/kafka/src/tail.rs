//! The last message of each partition of a topic, for the Kafka sink: where
//! it left off is in the topic itself (a header on every message it wrote).
//!
//! A partition's last message is read from `high - k`, `k` growing until a
//! message arrives, then on until nothing more comes for a moment. Both guard
//! against tansu (the test broker): it answers a fetch from inside a record
//! batch with the batch after it (for the last batch: nothing), and its high
//! watermark is the last batch's first offset + 1, not the end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ingesta_config::Secret;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::KafkaError as Error;
use crate::client::client_config;

const WAIT: Duration = Duration::from_secs(10);
/// How long a try waits for its first message.
const FIRST: Duration = Duration::from_secs(3);
/// Once messages came, the partition's end is when none came for this long.
const QUIET: Duration = Duration::from_millis(700);

/// What ends a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// No message.
    Empty,
    /// The last message, without the header asked for (someone else wrote it).
    Foreign,
    /// The header's value on the last message.
    Header(Vec<u8>),
}

/// The topic's partition count and, per partition, the `header` of its last message.
pub fn tails(
    brokers: &str,
    properties: &BTreeMap<String, Secret>,
    topic: &str,
    header: &str,
) -> Result<Vec<Tail>, Error> {
    let consumer = client(brokers, properties)?;
    let md = consumer.fetch_metadata(Some(topic), WAIT).map_err(|e| Error::from_kafka(&e))?;
    let t = md.topics().iter().find(|t| t.name() == topic);
    let partitions = match t {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => t.partitions().len() as i32,
        _ => return Err(Error::Broker(format!("topic `{topic}` does not exist on {brokers}; create it first"))),
    };
    (0..partitions).map(|p| tail(&consumer, brokers, properties, topic, p, header)).collect()
}

fn client(brokers: &str, properties: &BTreeMap<String, Secret>) -> Result<BaseConsumer, Error> {
    let mut c = client_config(brokers, properties);
    c.set("group.id", "ingesta-sink-tail").set("enable.auto.commit", "false");
    c.create().map_err(|e| Error::config(&e))
}

fn tail(
    meta: &BaseConsumer,
    brokers: &str,
    properties: &BTreeMap<String, Secret>,
    topic: &str,
    partition: i32,
    header: &str,
) -> Result<Tail, Error> {
    let (low, high) = meta.fetch_watermarks(topic, partition, WAIT).map_err(|e| Error::from_kafka(&e))?;
    if high <= low {
        return Ok(Tail::Empty);
    }
    let mut back = 1;
    loop {
        let from = (high - back).max(low);
        // a new client each time: no end-of-partition event left from the last try
        let c = client(brokers, properties)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(from)).map_err(|e| Error::config(&e))?;
        c.assign(&tpl).map_err(|e| Error::from_kafka(&e))?;
        // wait a while for the first message, then read on until the partition goes quiet
        let mut deadline = Instant::now() + FIRST;
        let mut last: Option<Tail> = None;
        while Instant::now() < deadline {
            match c.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    let value = m.headers().and_then(|h| h.iter().find(|x| x.key == header).and_then(|x| x.value));
                    last = Some(value.map_or(Tail::Foreign, |v| Tail::Header(v.to_vec())));
                    deadline = Instant::now() + QUIET;
                }
                Some(Err(e)) => return Err(Error::from_kafka(&e)),
                None => {}
            }
        }
        if let Some(t) = last {
            return Ok(t);
        }
        if from == low {
            return Ok(Tail::Empty); // nothing readable (retention removed it)
        }
        back *= 4;
    }
}

/// Each partition's low watermark: the first offset the topic still holds
/// (records before it are past the retention, or were deleted).
pub fn low_watermarks(
    brokers: &str,
    properties: &BTreeMap<String, Secret>,
    partitions: &[crate::TopicPartition],
) -> Result<Vec<i64>, Error> {
    let consumer = client(brokers, properties)?;
    partitions
        .iter()
        .map(|tp| {
            let (low, _) =
                consumer.fetch_watermarks(&tp.topic, tp.partition, WAIT).map_err(|e| Error::from_kafka(&e))?;
            Ok(low)
        })
        .collect()
}
