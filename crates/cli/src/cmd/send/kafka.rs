//! Messages to a topic through the idempotent producer; Avro kinds register
//! their schema in the Schema Registry and go in the Confluent wire format.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use ingesta_generate::{MessageKind, ONLINE_SALES_SCHEMA, Sale, encode_sale};
use ingesta_kafka::registry::{Registry, wire};
use ingesta_kafka::{Health, Producer, Record};

use super::{Sink, Target};

pub struct KafkaSink {
    producer: Producer,
    topic: String,
    avro: Option<(u32, apache_avro::Schema)>,
}

impl KafkaSink {
    /// `rest` is `HOST:PORT[,HOST:PORT]/TOPIC`.
    pub fn new(rest: &str, kind: MessageKind, t: &Target) -> anyhow::Result<KafkaSink> {
        let Some((brokers, topic)) = rest.split_once('/').filter(|(b, t)| !b.is_empty() && !t.is_empty()) else {
            bail!("--to `{}`: expected kafka://HOST:PORT/TOPIC", t.to);
        };
        let avro = match kind {
            MessageKind::OnlineSales => {
                let Some(url) = &t.schema_registry else { bail!("online_sales is Avro: give --schema-registry URL") };
                let cfg = ingesta_config::SchemaRegistry { url: url.clone(), username: None, password: None };
                let registry = Registry::new(&cfg)?;
                let id = registry.register(&format!("{topic}-value"), ONLINE_SALES_SCHEMA)?;
                let schema = apache_avro::Schema::parse_str(ONLINE_SALES_SCHEMA).context("the online sales schema")?;
                Some((id, schema))
            }
            _ => None,
        };
        let mut properties = BTreeMap::new();
        for p in &t.properties {
            let Some((k, v)) = p.split_once('=') else { bail!("--property `{p}`: expected KEY=VALUE") };
            properties.insert(k.trim().to_string(), ingesta_config::Secret::new(v.trim()));
        }
        let producer = Producer::new(brokers, &properties, Health::default())?;
        Ok(KafkaSink { producer, topic: topic.to_string(), avro })
    }
}

/// An online sale in the wire format of the schema the sink registered.
pub fn avro_sale(sink: &dyn Sink, s: &Sale) -> anyhow::Result<Vec<u8>> {
    let Some((id, schema)) = sink.avro() else { bail!("online_sales needs a topic with a schema registry") };
    Ok(wire(*id, &encode_sale(schema, s).map_err(anyhow::Error::msg)?))
}

impl Sink for KafkaSink {
    fn send(&mut self, key: Option<&str>, value: Vec<u8>) -> anyhow::Result<()> {
        let record =
            Record { topic: &self.topic, key: key.map(str::as_bytes), payload: &value, headers: &[], partition: None };
        Ok(self.producer.send(&record)?)
    }

    fn finish(&mut self, manifest: &mut serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
        let delivered = self.producer.flush(Duration::from_secs(600))?;
        manifest.insert("delivered".into(), delivered.into());
        Ok(())
    }

    fn avro(&self) -> Option<&(u32, apache_avro::Schema)> {
        self.avro.as_ref()
    }
}
