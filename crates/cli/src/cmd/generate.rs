//! `ingesta generate KIND --seed S --rows N --files F --out DIR`, or for
//! message kinds `--to kafka://HOST:PORT/TOPIC` (see `send.rs`).

mod oltp;
mod orders_dwh;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use ingesta_generate::{FileFormat, Kind, MessageKind, Options};

#[derive(clap::Args)]
pub struct Args {
    /// Files: iot, inventory, sales, weather or farm (all four in subfolders).
    /// Messages (with --to): orders, online_sales, order_upd, traffic.
    /// A database (--to postgresql://…): oltp, the `shop` schema and its writes.
    kind: String,
    #[arg(long, default_value_t = 20261101)]
    seed: u64,
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    #[arg(long, default_value_t = 10)]
    files: u32,
    /// The folder for files (and for the manifest of messages).
    #[arg(long, required_unless_present = "to")]
    out: Option<PathBuf>,
    /// Send messages instead of writing files: kafka://HOST:PORT/TOPIC or
    /// http://HOST:PORT/ingest/SOURCE (the HTTP collector).
    #[arg(long)]
    to: Option<String>,
    /// The collector's bearer token (default: $INGESTA_TOKEN).
    #[arg(long)]
    token: Option<String>,
    /// Events per request to the collector.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Gzip the requests to the collector.
    #[arg(long)]
    gzip: bool,
    /// Messages per second (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// JSON messages: add a `pad` field so each is about this many bytes
    /// (benchmarks use 1024).
    #[arg(long)]
    pad_to: Option<usize>,
    /// For online_sales: the Schema Registry to register the Avro schema in.
    #[arg(long)]
    schema_registry: Option<String>,
    /// A librdkafka producer setting, KEY=VALUE (repeatable): security
    /// settings for Event Hubs or a managed Kafka, batching.
    #[arg(long = "property", value_name = "KEY=VALUE")]
    properties: Vec<String>,
    /// ndjson, csv, parquet or json (default: the kind's own).
    #[arg(long)]
    format: Option<String>,
    /// Share of records made malformed on purpose.
    #[arg(long, default_value_t = 0.001)]
    malformed_rate: f64,
    /// For orders: load the users and restaurants into this Redis
    /// (redis://HOST:PORT) before sending; `--rows` then counts orders, and
    /// the messages and Redis values are the orders DWH's (formats.md).
    #[arg(long)]
    redis: Option<String>,
    /// For the orders DWH: users (default: orders / 10).
    #[arg(long)]
    users: Option<u64>,
    /// For the orders DWH: restaurants.
    #[arg(long, default_value_t = 12)]
    restaurants: u64,
    /// For oltp: products created with the schema (customers: --users,
    /// default --rows / 5).
    #[arg(long, default_value_t = 200)]
    products: i64,
    /// For oltp: write transactions after the initial orders (at --rate per
    /// second when given).
    #[arg(long, default_value_t = 0)]
    transactions: u64,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if a.kind == "oltp" {
        let Some(url) = a.to.as_deref().filter(|t| t.starts_with("postgres")) else {
            bail!("give --to postgresql://USER:PASSWORD@HOST:PORT/DATABASE, the database to create `shop` in");
        };
        return oltp::run(&a, url);
    }
    if a.kind == "orders" && (a.redis.is_some() || a.to.is_none()) {
        return orders_dwh::run(&a);
    }
    if let Some(to) = &a.to {
        let Some(kind) = MessageKind::parse(&a.kind) else {
            bail!("unknown message kind `{}`; expected one of: {}", a.kind, MessageKind::NAMES.join(", "));
        };
        return super::send::run(kind, a.seed, a.rows, a.malformed_rate, &target(&a, to));
    }

    let Some(out) = a.out.clone() else { bail!("give --out DIR (or --to for message kinds)") };
    let Some(kind) = Kind::parse(&a.kind) else {
        bail!("unknown kind `{}`; expected one of: {}", a.kind, Kind::NAMES.join(", "));
    };
    let format = match a.format.as_deref() {
        None => None,
        Some("ndjson") => Some(FileFormat::Ndjson),
        Some("csv") => Some(FileFormat::Csv),
        Some("parquet") => Some(FileFormat::Parquet),
        Some("json") => Some(FileFormat::Json),
        Some(other) => bail!("unknown format `{other}`; expected ndjson, csv, parquet or json"),
    };
    if !(0.0..=1.0).contains(&a.malformed_rate) {
        bail!("--malformed-rate must be between 0 and 1");
    }
    let opts = Options {
        seed: a.seed,
        rows: a.rows,
        files: a.files,
        out: out.clone(),
        format,
        malformed_rate: a.malformed_rate,
    };
    let m = ingesta_generate::generate(kind, &opts).with_context(|| format!("generating {}", a.kind))?;
    println!(
        "wrote {} records ({} malformed on purpose) in {} files, {:.1} MB, to {} (manifest: _manifest.json)",
        m.rows,
        m.malformed,
        m.files,
        m.bytes as f64 / 1e6,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where and how messages are sent.
pub fn target(a: &Args, to: &str) -> super::send::Target {
    super::send::Target {
        to: to.to_string(),
        rate: a.rate,
        pad_to: a.pad_to,
        schema_registry: a.schema_registry.clone(),
        out: a.out.clone(),
        properties: a.properties.clone(),
        token: a.token.clone(),
        batch: a.batch,
        gzip: a.gzip,
    }
}
