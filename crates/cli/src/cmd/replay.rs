//! `ingesta replay FILE TABLE [--reason R] [--since TIME] [--json]`: reads a
//! landing bronze table's quarantined records again with the pipeline as it
//! is now; those that read land in the table, once.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    table: String,
    /// Only records quarantined for this reason (`type_error`, `missing_required`, `parse_error`, ...).
    #[arg(long)]
    reason: Option<String>,
    /// Only records quarantined at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Print the counts as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let pipeline = super::load(&args.pipeline).await?;
    let since = match &args.since {
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--since `{t}` is not a time like 2026-12-01T00:00:00Z"))?
                .to_utc(),
        ),
        None => None,
    };
    let r = ingesta_runtime::replay(&pipeline, &args.table, args.reason.as_deref(), since).await?;
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "{}: {} quarantined records to replay: {} written to the table, {} already there (marked), {} still bad (left in quarantine), {} not replayable (CSV records, whole-file errors)",
            r.table, r.candidates, r.replayed, r.marked, r.still_bad, r.skipped
        );
    }
    Ok(ExitCode::SUCCESS)
}
