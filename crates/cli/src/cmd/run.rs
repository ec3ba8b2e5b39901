//! `ingesta run FILE [--once | --watch]`

use std::path::PathBuf;
use std::process::ExitCode;

use ingesta_runtime::{Progress, RunReport};

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    /// Read what the sources hold now, then exit (the default).
    #[arg(long, conflicts_with = "watch")]
    once: bool,
    /// Keep polling the sources until interrupted (Ctrl-C).
    #[arg(long)]
    watch: bool,
    /// With --watch: serve the dashboard, the API, `/metrics` and the
    /// probes (`/health`, `/ready`) here, e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR", requires = "watch", alias = "health")]
    serve: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pipeline = super::load(&args.pipeline).await?;
    let progress = Progress::new(!args.json);
    let report = if args.watch {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        ingesta_runtime::run_watch(&pipeline, &progress, args.serve.as_deref(), stop).await?
    } else {
        ingesta_runtime::run_once(&pipeline, &progress).await?
    };
    print_report(&report, args.json);
    let mut failed = false;
    for (table, error) in report.errors() {
        match error.contains(&format!("`{table}`")) {
            true => eprintln!("error: {error}"),
            false => eprintln!("error: table `{table}`: {error}"),
        }
        failed = true;
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

pub fn print_report(report: &RunReport, json: bool) {
    if json {
        let tables: Vec<_> = report
            .tables
            .iter()
            .map(|t| {
                serde_json::json!({
                    "table": t.table, "files": t.files, "rows": t.rows, "quarantined": t.quarantined,
                    "bytes": t.bytes, "commits": t.commits, "seconds": t.elapsed.as_secs_f64(),
                    "unsettled": t.unsettled, "failed": t.failed, "error": t.error,
                })
            })
            .collect();
        println!("{}", serde_json::json!({ "tables": tables }));
        return;
    }
    for t in &report.tables {
        if t.error.is_some() {
            println!("{:<20} stopped (see the error below); the other tables ran", t.table);
            continue;
        }
        let secs = t.elapsed.as_secs_f64().max(1e-3);
        println!(
            "{:<20} {:>4} files  {:>10} rows  {:>7} quarantined  {:>8.1} MB/s  {:>10.0} rows/s  {} commits",
            t.table,
            t.files,
            t.rows,
            t.quarantined,
            t.bytes as f64 / 1e6 / secs,
            (t.rows + t.quarantined) as f64 / secs,
            t.commits
        );
        for f in &t.unsettled {
            println!("  waiting: {f} is still being written; it is read on a later run");
        }
        for (f, e) in &t.failed {
            println!("  skipped: {f}: {e}; it is tried again on the next run");
        }
    }
}
