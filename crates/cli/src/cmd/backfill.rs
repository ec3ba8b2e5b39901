//! `ingesta backfill FILE TABLE --from A --to B [--column C] [--json]`:
//! computes a range of a table's partitions again from its input and puts
//! them in place of the old ones, in one commit.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    /// The silver or gold table to backfill.
    table: String,
    /// The first value of the range (included), e.g. 2026-03-01.
    #[arg(long)]
    from: String,
    /// The last value of the range (included).
    #[arg(long)]
    to: String,
    /// The partition column the range is of (the table's only one by default).
    #[arg(long)]
    column: Option<String>,
    /// Print what was done as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let p = super::load(&args.pipeline).await?;
    let done = ingesta_runtime::backfill(&p, &args.table, args.column.as_deref(), &args.from, &args.to).await?;
    if args.json {
        let out = serde_json::json!({
            "table": args.table,
            "range": done.range,
            "input_version": done.input_version,
            "computed": done.computed,
            "rows": done.rows,
            "left_out_by_expectations": done.failed_rules,
            "files_removed": done.removed,
            "files_written": done.added,
            "version": done.version,
            "seconds": done.elapsed.as_secs_f64(),
        });
        println!("{out}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "backfilled {} ({}): {} rows written of {} computed (from input version {}), {} files replaced by {}, \
         version {} in {:.2} s",
        args.table,
        done.range,
        done.rows,
        done.computed,
        done.input_version,
        done.removed,
        done.added,
        done.version,
        done.elapsed.as_secs_f64()
    );
    if done.failed_rules > 0 {
        println!("{} rows failed an expectation and were left out (the quarantine holds them)", done.failed_rules);
    }
    Ok(ExitCode::SUCCESS)
}
