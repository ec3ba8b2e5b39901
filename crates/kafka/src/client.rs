//! Client settings shared by the consumer and the producer, and the health
//! state that broker errors (unreachable, unknown topic, bad credentials) are
//! reported through while librdkafka retries with backoff.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ingesta_config::Secret;
use rdkafka::ClientConfig;

/// `bootstrap.servers` plus the source's `properties`, passed to librdkafka
/// as they are (security settings: `security.protocol`, `sasl.mechanism`,
/// `sasl.username`, `sasl.password`, `ssl.ca.location`, ...).
pub fn client_config(brokers: &str, properties: &BTreeMap<String, Secret>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers);
    // librdkafka's own backoff between reconnects, capped low enough that a
    // broker coming back is noticed quickly
    c.set("reconnect.backoff.ms", "100").set("reconnect.backoff.max.ms", "10000");
    // a subscribed topic created after the start is found within 30 s (librdkafka: 5 min)
    c.set("topic.metadata.refresh.interval.ms", "30000");
    for (k, v) in properties {
        c.set(k, v.expose());
    }
    c
}

/// Reports a client error: librdkafka's words, and for refused credentials
/// which settings to check.
pub(crate) fn report(health: &Health, error: &rdkafka::error::KafkaError, reason: &str) {
    match crate::KafkaError::from_kafka(error) {
        crate::KafkaError::Auth(_) => {
            health.note(format!("{error}: {reason} (check sasl.username / sasl.password / security.protocol)"), true)
        }
        _ => health.failed(format!("{error}: {reason}")),
    }
}

/// The last problem a client met, if it has not recovered since, and how
/// far its table is behind the topic.
#[derive(Debug, Clone, Default)]
pub struct Health {
    state: Arc<Mutex<Option<Problem>>>,
    /// Messages each partition held past the table, when last measured.
    lag: Arc<Mutex<BTreeMap<(String, i32), i64>>>,
    /// Whether `state` holds a problem: `ok` and `problem` are called per
    /// message and take the lock only when there is one.
    troubled: Arc<AtomicBool>,
}

#[derive(Debug, Clone)]
pub struct Problem {
    pub message: String,
    pub since: Instant,
    pub count: u64,
    /// The broker refused the credentials or the access (retrying may help
    /// once a user or an ACL is fixed on its side, but a one-off run stops).
    pub refused: bool,
}

impl Health {
    pub fn failed(&self, message: String) {
        self.note(message, false);
    }

    fn note(&self, message: String, refused: bool) {
        let mut s = self.state.lock().expect("health");
        match &mut *s {
            Some(p) if p.message == message => p.count += 1,
            _ => {
                tracing::warn!(error = %message, "kafka client problem; librdkafka retries with backoff");
                *s = Some(Problem { message, since: Instant::now(), count: 1, refused });
            }
        }
        self.troubled.store(true, Ordering::Relaxed);
    }

    /// The client works again (a message, a partition assigned or caught up).
    pub fn ok(&self) {
        if !self.troubled.load(Ordering::Relaxed) {
            return;
        }
        let mut s = self.state.lock().expect("health");
        self.troubled.store(false, Ordering::Relaxed);
        if let Some(p) = s.take() {
            tracing::info!(after = ?p.since.elapsed(), "kafka client recovered from: {}", p.message);
        }
    }

    /// Records the lag measured for some partitions (the others keep theirs).
    pub fn note_lag(&self, lags: &[(crate::TopicPartition, i64)]) {
        let mut all = self.lag.lock().expect("lag");
        for (tp, n) in lags {
            all.insert((tp.topic.clone(), tp.partition), *n);
        }
    }

    /// Messages the table is behind the topic, over its partitions (none
    /// before the first measure).
    pub fn lag(&self) -> Option<i64> {
        let all = self.lag.lock().expect("lag");
        (!all.is_empty()).then(|| all.values().sum())
    }

    /// The problem, if any (no lock while there is none: polled per message).
    pub fn problem(&self) -> Option<Problem> {
        if !self.troubled.load(Ordering::Relaxed) {
            return None;
        }
        self.state.lock().expect("health").clone()
    }
}
