//! The Kafka / Event Hubs side of Ingesta, on librdkafka (`rdkafka`): a
//! consumer-group member that resumes from the offsets recorded in the lake
//! (`consumer`), an idempotent producer (`producer`), and a Schema Registry
//! client (`registry`). Decoding messages into rows is the sources crate's
//! job; committing them is the runtime's.

mod client;
mod consumer;
mod producer;
pub mod registry;
mod tail;

use std::fmt;

pub use client::{Health, Problem, client_config};
pub use consumer::{Consumer, Event, Lookup, Polled};
pub use producer::{Producer, Record};
pub use tail::{Tail, low_watermarks, tails};

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: &str, partition: i32) -> Self {
        Self { topic: topic.to_string(), partition }
    }

    /// The position id in the table's log: `ingesta/kafka/<topic>/<partition>`.
    pub fn app_id(&self) -> String {
        ingesta_core::app_id::kafka(&self.topic, self.partition)
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// A consumed message, owned.
#[derive(Debug, Clone)]
pub struct Message {
    pub tp: TopicPartition,
    pub offset: i64,
    pub timestamp_ms: Option<i64>,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// Settings librdkafka refuses: fix the pipeline.
    #[error("kafka settings: {0}")]
    Config(String),
    /// The broker or the network: retried with backoff.
    #[error("kafka: {0}")]
    Broker(String),
    /// Credentials or authorisation refused: retried with backoff (a user or
    /// an ACL is often fixed on the broker's side), with a hint at the settings.
    #[error("kafka: {0} (check sasl.username / sasl.password / security.protocol)")]
    Auth(String),
    /// The Schema Registry.
    #[error("schema registry: {0}")]
    Registry(String),
}

impl KafkaError {
    fn config(e: &rdkafka::error::KafkaError) -> Self {
        Self::Config(e.to_string())
    }

    fn from_kafka(e: &rdkafka::error::KafkaError) -> Self {
        use rdkafka::error::RDKafkaErrorCode as C;
        match e.rdkafka_error_code() {
            Some(
                C::SaslAuthenticationFailed
                | C::Authentication
                | C::TopicAuthorizationFailed
                | C::GroupAuthorizationFailed
                | C::ClusterAuthorizationFailed,
            ) => Self::Auth(e.to_string()),
            _ => Self::Broker(e.to_string()),
        }
    }
}

impl From<KafkaError> for ingesta_core::Error {
    fn from(e: KafkaError) -> Self {
        let kind = match e {
            KafkaError::Broker(_) | KafkaError::Registry(_) | KafkaError::Auth(_) => ingesta_core::ErrorKind::Retry,
            KafkaError::Config(_) => ingesta_core::ErrorKind::Stop,
        };
        ingesta_core::Error::new(kind, e.to_string()).caused_by(e)
    }
}
