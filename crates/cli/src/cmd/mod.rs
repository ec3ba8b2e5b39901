//! The commands. Each file is one command.

mod demo;
mod generate;
mod run;
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
    /// Write deterministic example data and a `_manifest.json`.
    Generate(generate::Args),
    /// Generate farm data, run examples/farm-iot on a local lake and summarise.
    Demo(demo::Args),
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Validate { pipeline } => validate::run(&pipeline),
        Command::Run(args) => run::run(args).await,
        Command::Status { pipeline, json } => status::run(&pipeline, json).await,
        Command::Generate(args) => generate::run(args),
        Command::Demo(args) => demo::run(args).await,
    }
}

/// Loads a pipeline or prints its mistakes.
fn load(path: &Path) -> anyhow::Result<ingesta_config::Pipeline> {
    ingesta_config::load_file(path).map_err(|d| {
        let n = d.0.len();
        anyhow::anyhow!("{d}\n{n} mistake{} in {}", if n == 1 { "" } else { "s" }, path.display())
    })
}
