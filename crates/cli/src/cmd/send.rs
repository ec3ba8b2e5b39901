//! `ingesta generate KIND --to kafka://HOST:PORT/TOPIC | http://HOST:PORT/ingest/SOURCE`:
//! sends a message kind, deterministic for a seed, at a rate or as fast as
//! possible, and writes (or prints) a manifest of what was sent.

mod http;
mod kafka;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ingesta_generate::{MessageKind, messages};

pub struct Target {
    pub to: String,
    pub rate: Option<f64>,
    pub pad_to: Option<usize>,
    pub schema_registry: Option<String>,
    pub out: Option<PathBuf>,
    pub properties: Vec<String>,
    pub token: Option<String>,
    pub batch: usize,
    pub gzip: bool,
}

/// Where messages go: one at a time in, a count of what was delivered out.
trait Sink {
    fn send(&mut self, key: Option<&str>, value: Vec<u8>) -> anyhow::Result<()>;
    /// Waits for everything to be delivered; adds its own counts to the manifest.
    fn finish(&mut self, manifest: &mut serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()>;
    /// The Avro schema id and schema, for Avro kinds.
    fn avro(&self) -> Option<&(u32, apache_avro::Schema)> {
        None
    }
}

pub fn run(kind: MessageKind, seed: u64, count: u64, malformed_rate: f64, t: &Target) -> anyhow::Result<ExitCode> {
    send(kind, seed, messages(kind, seed, count, malformed_rate), t)
}

/// Sends `stream` (messages of `kind`) and writes or prints the manifest.
pub fn send(
    kind: MessageKind,
    seed: u64,
    stream: impl Iterator<Item = ingesta_generate::GenMessage>,
    t: &Target,
) -> anyhow::Result<ExitCode> {
    let mut sink: Box<dyn Sink> = if let Some(rest) = t.to.strip_prefix("kafka://") {
        Box::new(kafka::KafkaSink::new(rest, kind, t)?)
    } else if t.to.starts_with("http://") || t.to.starts_with("https://") {
        if kind == MessageKind::OnlineSales {
            bail!("online_sales is Avro for a topic; the HTTP collector takes JSON kinds (orders, order_upd, traffic)");
        }
        Box::new(http::HttpSink::new(t)?)
    } else {
        bail!("--to `{}`: expected kafka://HOST:PORT/TOPIC or http://HOST:PORT/ingest/SOURCE", t.to);
    };
    let started = Instant::now();
    let (mut malformed, mut updates, mut bytes) = (0u64, 0u64, 0u64);
    let mut labels: BTreeMap<&str, u64> = BTreeMap::new();
    let mut count = 0u64;
    for (i, m) in stream.enumerate() {
        count += 1;
        if let Some(rate) = t.rate {
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let value = match &m.body {
            ingesta_generate::Body::Bytes(b) if !m.malformed && t.pad_to.is_some_and(|n| n > b.len() + 12) => {
                pad(b, t.pad_to.unwrap_or_default())
            }
            ingesta_generate::Body::Bytes(b) => b.clone(),
            ingesta_generate::Body::Sale(s) => kafka::avro_sale(&*sink, s)?,
        };
        malformed += u64::from(m.malformed);
        updates += u64::from(m.update);
        bytes += value.len() as u64;
        if let Some(l) = m.label {
            *labels.entry(l).or_default() += 1;
        }
        sink.send(m.key.as_deref(), value)?;
    }
    let mut manifest = serde_json::json!({
        "kind": kind.name(),
        "seed": seed,
        "to": t.to,
        "rows": count,
        "malformed": malformed,
        "valid_rows": count - malformed,
        "updates": updates,
        "bytes": bytes,
        "labels": labels,
    });
    let map = manifest.as_object_mut().expect("an object");
    sink.finish(map).context("delivering the messages")?;
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

/// `..."}` → `...", "pad": "xxxx"}`: still one JSON object, about `to` bytes.
fn pad(b: &[u8], to: usize) -> Vec<u8> {
    let n = to - b.len() - 12;
    let mut v = b[..b.len() - 1].to_vec();
    v.extend_from_slice(b", \"pad\": \"");
    v.extend(std::iter::repeat_n(b'x', n));
    v.extend_from_slice(b"\"}");
    v
}
