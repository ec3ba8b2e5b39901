//! `ingesta generate KIND --seed S --rows N --files F --out DIR`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use ingesta_generate::{FileFormat, Kind, Options};

#[derive(clap::Args)]
pub struct Args {
    /// iot, inventory, sales, weather or farm (all four in subfolders).
    kind: String,
    #[arg(long, default_value_t = 20261101)]
    seed: u64,
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    #[arg(long, default_value_t = 10)]
    files: u32,
    #[arg(long)]
    out: PathBuf,
    /// ndjson, csv, parquet or json (default: the kind's own).
    #[arg(long)]
    format: Option<String>,
    /// Share of records made malformed on purpose.
    #[arg(long, default_value_t = 0.001)]
    malformed_rate: f64,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
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
        out: a.out.clone(),
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
        a.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
