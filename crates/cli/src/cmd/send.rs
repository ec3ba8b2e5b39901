//! `ingesta generate KIND --to kafka://HOST:PORT/TOPIC [--rate N]`: sends a
//! message kind through the idempotent producer, deterministic for a seed,
//! and writes (or prints) a manifest of what was sent.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ingesta_generate::{Body, MessageKind, ONLINE_SALES_SCHEMA, encode_sale, messages};
use ingesta_kafka::registry::{Registry, wire};
use ingesta_kafka::{Health, Producer, Record};

pub struct Target {
    pub to: String,
    pub rate: Option<f64>,
    pub pad_to: Option<usize>,
    pub schema_registry: Option<String>,
    pub out: Option<PathBuf>,
    pub properties: Vec<String>,
}

pub fn run(kind: MessageKind, seed: u64, count: u64, malformed_rate: f64, t: &Target) -> anyhow::Result<ExitCode> {
    let Some(rest) = t.to.strip_prefix("kafka://") else {
        bail!("--to `{}`: expected kafka://HOST:PORT/TOPIC", t.to);
    };
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
        MessageKind::Orders => None,
    };
    let mut properties = BTreeMap::new();
    for p in &t.properties {
        let Some((k, v)) = p.split_once('=') else { bail!("--property `{p}`: expected KEY=VALUE") };
        properties.insert(k.trim().to_string(), ingesta_config::Secret::new(v.trim()));
    }
    let producer = Producer::new(brokers, &properties, Health::default())?;
    let started = Instant::now();
    let (mut malformed, mut updates, mut bytes) = (0u64, 0u64, 0u64);
    for (i, m) in messages(kind, seed, count, malformed_rate).enumerate() {
        if let Some(rate) = t.rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let value = match (&m.body, &avro) {
            (Body::Bytes(b), _) if !m.malformed && t.pad_to.is_some_and(|n| n > b.len() + 12) => {
                // `..."}` → `...", "pad": "xxxx"}`: still one JSON object
                let n = t.pad_to.unwrap_or_default() - b.len() - 12;
                let mut v = b[..b.len() - 1].to_vec();
                v.extend_from_slice(b", \"pad\": \"");
                v.extend(std::iter::repeat_n(b'x', n));
                v.extend_from_slice(b"\"}");
                v
            }
            (Body::Bytes(b), _) => b.clone(),
            (Body::Sale(s), Some((id, schema))) => wire(*id, &encode_sale(schema, s).map_err(anyhow::Error::msg)?),
            (Body::Sale(_), None) => unreachable!("sales are avro"),
        };
        malformed += u64::from(m.malformed);
        updates += u64::from(m.update);
        bytes += value.len() as u64;
        let record =
            Record { topic, key: m.key.as_deref().map(str::as_bytes), payload: &value, headers: &[], partition: None };
        producer.send(&record)?;
    }
    let delivered = producer.flush(Duration::from_secs(600)).context("delivering the messages")?;
    let manifest = serde_json::json!({
        "kind": format!("{kind:?}").to_lowercase(),
        "seed": seed,
        "to": t.to,
        "rows": count,
        "malformed": malformed,
        "valid_rows": count - malformed,
        "updates": updates,
        "bytes": bytes,
        "delivered": delivered,
    });
    match &t.out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let path = dir.join("_manifest.json");
            std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => println!("{manifest}"),
    }
    eprintln!(
        "sent {count} messages ({malformed} malformed on purpose, {updates} status updates) to {} in {:.1}s",
        t.to,
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
