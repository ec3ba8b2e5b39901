//! Deterministic data generators for the examples and tests. Each kind writes
//! files into a folder and a `_manifest.json` that counts everything it wrote,
//! including the malformed records it injected on purpose, so that a test can
//! reconcile exactly: records in = table rows + quarantined rows.
//!
//! A file kind is a module with one `generate` function. Message kinds (for
//! Kafka topics and the HTTP collector) are iterators in `messages.rs` and
//! `sales_mart.rs`; the `ingesta generate --to` command sends them.

mod farm;
mod manifest;
mod messages;
pub mod orders_dwh;
mod out;
mod sales_mart;

use std::path::PathBuf;

pub use manifest::{FileEntry, Manifest};
pub use messages::{Body, GenMessage, MessageKind, ONLINE_SALES_SCHEMA, Sale, encode_sale, messages};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// IoT sensor readings (NDJSON or CSV), about 0.1% malformed.
    Iot,
    /// Daily warehouse inventory snapshots (CSV).
    Inventory,
    /// Batch sales orders (CSV or Parquet).
    Sales,
    /// Weather API documents with nested observations (JSON).
    Weather,
    /// All four farm datasets, one subfolder each.
    Farm,
}

impl Kind {
    pub const NAMES: [&'static str; 5] = ["iot", "inventory", "sales", "weather", "farm"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "iot" => Self::Iot,
            "inventory" => Self::Inventory,
            "sales" => Self::Sales,
            "weather" => Self::Weather,
            "farm" => Self::Farm,
            _ => return None,
        })
    }
}

/// File formats a kind may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Ndjson,
    Csv,
    Parquet,
    Json,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Records in all (for `farm`: IoT readings; the other datasets scale with it).
    pub rows: u64,
    pub files: u32,
    pub out: PathBuf,
    /// `None`: the kind's default.
    pub format: Option<FileFormat>,
    /// Share of records made malformed on purpose.
    pub malformed_rate: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write `{path}`: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
}

/// Writes the data of `kind` and its manifest; returns the manifest.
pub fn generate(kind: Kind, opts: &Options) -> Result<Manifest, GenerateError> {
    if opts.files == 0 {
        return Err(GenerateError::Invalid("--files must be at least 1".into()));
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| out::io(&opts.out, e))?;
    let m = match kind {
        Kind::Iot => farm::iot(opts)?,
        Kind::Inventory => farm::inventory(opts)?,
        Kind::Sales => farm::sales(opts)?,
        Kind::Weather => farm::weather(opts)?,
        Kind::Farm => farm::all(opts)?,
    };
    m.write(&opts.out)?;
    Ok(m)
}
