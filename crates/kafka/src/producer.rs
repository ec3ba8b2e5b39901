//! An idempotent producer (librdkafka's `enable.idempotence`: no duplicates
//! or reordering from its own retries) for the generators and the Kafka sink.
//! Sends never block; a full local queue is drained by polling, and `flush`
//! reports the first delivery that failed.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ingesta_config::Secret;
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext};
use rdkafka::{ClientContext, Message as _};

use crate::KafkaError as Error;
use crate::client::{Health, client_config};

/// A message to send.
pub struct Record<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub headers: &'a [(&'a str, &'a [u8])],
    /// A fixed partition, or the key's hash (librdkafka's default partitioner).
    pub partition: Option<i32>,
}

pub struct Producer {
    inner: BaseProducer<Ctx>,
}

struct Ctx {
    delivered: AtomicU64,
    failed: Mutex<Option<String>>,
    health: Health,
}

impl ClientContext for Ctx {
    fn error(&self, error: RdError, reason: &str) {
        crate::client::report(&self.health, &error, reason);
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => {
                let mut f = self.failed.lock().expect("failed");
                if f.is_none() {
                    *f = Some(format!("delivery to {}/{} failed: {e}", m.topic(), m.partition()));
                }
            }
        }
    }
}

impl Producer {
    pub fn new(brokers: &str, properties: &BTreeMap<String, Secret>, health: Health) -> Result<Self, Error> {
        let mut c = client_config(brokers, properties);
        c.set("enable.idempotence", "true").set("linger.ms", "5");
        let ctx = Ctx { delivered: AtomicU64::new(0), failed: Mutex::new(None), health };
        let inner = c.create_with_context(ctx).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self { inner })
    }

    /// Queues one message (waits while librdkafka's local queue is full).
    pub fn send(&self, r: &Record) -> Result<(), Error> {
        let mut headers = OwnedHeaders::new();
        for (k, v) in r.headers {
            headers = headers.insert(Header { key: k, value: Some(*v) });
        }
        let mut record = BaseRecord::to(r.topic).payload(r.payload).headers(headers);
        if let Some(k) = r.key {
            record = record.key(k);
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.inner.poll(Duration::from_millis(20));
                }
                Err((e, _)) => return Err(Error::Broker(e.to_string())),
            }
        }
    }

    /// Waits until every queued message is delivered; returns how many were.
    pub fn flush(&self, timeout: Duration) -> Result<u64, Error> {
        self.inner.flush(timeout).map_err(|e| Error::Broker(format!("flush: {e}")))?;
        if let Some(f) = self.inner.context().failed.lock().expect("failed").take() {
            return Err(Error::Broker(f));
        }
        Ok(self.inner.context().delivered.load(Ordering::Relaxed))
    }
}
