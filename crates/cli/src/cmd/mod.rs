//! The commands. Each file is one command.

mod backfill;
mod demo;
mod demo_sales;
mod generate;
mod maintain;
mod query;
mod repair;
mod replay;
mod run;
mod runs;
mod send;
mod serve;
mod status;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "ingesta", version, about = "Files, events and database changes into a layered lake, exactly once.")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a pipeline file and report every mistake with file:line:column.
    Validate { pipeline: PathBuf },
    /// Run a pipeline: `--once` reads what is there and exits, `--watch` keeps polling.
    Run(run::Args),
    /// Show each table's version, rows, files and quarantined rows.
    Status {
        pipeline: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Read-only SQL over the pipeline's tables (DataFusion).
    Query(query::Args),
    /// The run history: each table pass that committed or failed, newest first.
    Runs(runs::Args),
    /// Serve the dashboard, reports, SQL and metrics over the pipeline's tables.
    Serve(serve::Args),
    /// Read a landing table's quarantined records again with the pipeline as it is now.
    Replay(replay::Args),
    /// Run again the tables whose latest pass failed, and the tables that read them.
    Repair(repair::Args),
    /// Rewrite small files into large ones; with --vacuum, delete old unreferenced files.
    Compact(maintain::CompactArgs),
    /// Compute a range of a table's partitions again from its input, in place.
    Backfill(backfill::Args),
    /// Delete one table and compute it again from its input.
    Rebuild(maintain::RebuildArgs),
    /// Write deterministic example data and a `_manifest.json`.
    Generate(Box<generate::Args>),
    /// Generate farm data, run examples/farm-iot on a local lake and summarise.
    Demo(demo::Args),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { pipeline } => validate::run(&pipeline).await,
        Command::Run(args) => run::run(args).await,
        Command::Status { pipeline, json } => status::run(&pipeline, json).await,
        Command::Query(args) => query::run(args).await,
        Command::Runs(args) => runs::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Repair(args) => repair::run(args).await,
        Command::Replay(args) => replay::run(args).await,
        Command::Compact(args) => maintain::compact(args).await,
        Command::Backfill(args) => backfill::run(args).await,
        Command::Rebuild(args) => maintain::rebuild(args).await,
        // blocking work (files, the producer, the registry client): off the runtime
        Command::Generate(args) => tokio::task::spawn_blocking(move || generate::run(*args)).await?,
        Command::Demo(args) => demo::run(args).await,
    }
}

/// Loads a pipeline and plans its transforms, or says every mistake.
async fn load(path: &Path) -> anyhow::Result<ingesta_config::Pipeline> {
    let loaded = match ingesta_config::load_file(path) {
        Ok(mut p) => {
            if let Err(e) = ingesta_runtime::discover(&mut p).await {
                // the declared tables still run; the source's own table says what is wrong
                tracing::warn!(error = %e, "replicas not discovered; declare their `columns` to run without the source database");
            }
            plan(p).await
        }
        Err(d) => Err(d),
    };
    loaded.map_err(|d| {
        let n = d.0.len();
        anyhow::anyhow!("{d}\n{n} mistake{} in {}", if n == 1 { "" } else { "s" }, path.display())
    })
}

/// Plans every transform (unknown columns, bad SQL) against the columns the
/// tables will have; an existing local lake supplies inferred bronze columns.
async fn plan(p: ingesta_config::Pipeline) -> Result<ingesta_config::Pipeline, ingesta_config::Diagnostics> {
    let root = p.lake.root.trim();
    let lake = (!root.contains("://") && Path::new(root).is_dir()).then(|| ingesta_runtime::lake_of(&p).ok()).flatten();
    let findings = ingesta_runtime::check(&p, lake.as_ref()).await;
    if findings.is_empty() {
        return Ok(p);
    }
    let mut d: Vec<_> = findings.into_iter().map(|(path, msg)| p.origin.diagnostic(&path, msg)).collect();
    d.sort_by_key(|d| (d.line, d.column));
    Err(ingesta_config::Diagnostics(d))
}
