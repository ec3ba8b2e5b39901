//! `ingesta repair FILE [--json]`: runs once the tables whose latest pass
//! failed (by the run history) and the tables and sinks that read them.

use std::path::PathBuf;
use std::process::ExitCode;

use ingesta_runtime::Progress;

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pipeline = super::load(&args.pipeline).await?;
    let progress = Progress::new(!args.json);
    let (tables, report) = ingesta_runtime::repair(&pipeline, &progress).await?;
    if tables.is_empty() && !args.json {
        println!("nothing to repair: no table's latest pass failed");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.json {
        println!("repairing {}", tables.join(", "));
    }
    super::run::print_report(&report, args.json);
    let mut failed = false;
    for (table, error) in report.errors() {
        eprintln!("error: table `{table}`: {error}");
        failed = true;
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
