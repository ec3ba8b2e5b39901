//! `ingesta runs FILE [TABLE] [--last N] [--json]`: the run history, newest first.

use std::path::PathBuf;
use std::process::ExitCode;

use ingesta_lake::datafusion::arrow::array::RecordBatch;
use ingesta_lake::datafusion::arrow::{json, util::pretty};

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    /// Only this table's passes.
    table: Option<String>,
    /// How many passes to show.
    #[arg(long, default_value_t = 20)]
    last: usize,
    /// One JSON object per pass, per line.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let p = super::load(&args.pipeline).await?;
    if let Some(t) = &args.table
        && !p.tables.contains_key(t)
        && !p.sinks.contains_key(t)
    {
        anyhow::bail!("no table or sink `{t}` in {}", args.pipeline.display());
    }
    let lake = ingesta_runtime::lake_of(&p)?;
    let batches = ingesta_runtime::runs::recent(&lake, args.table.as_deref(), args.last).await?;
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    if args.json {
        let mut w = json::LineDelimitedWriter::new(std::io::stdout());
        for b in &batches {
            w.write(b)?;
        }
        w.finish()?;
    } else if rows == 0 {
        println!("no passes recorded yet: the history keeps every pass that committed or failed");
    } else {
        println!("{}", pretty::pretty_format_batches(&batches)?);
    }
    Ok(ExitCode::SUCCESS)
}
