//! `ingesta query FILE "SQL" [--format table|csv|json|parquet] [--out FILE]`

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ingesta_lake::datafusion::arrow::array::RecordBatch;
use ingesta_lake::datafusion::arrow::{csv, json, util::pretty};
use ingesta_lake::datafusion::execution::context::SQLOptions;
use ingesta_lake::datafusion::parquet::arrow::ArrowWriter;

#[derive(clap::Args)]
pub struct Args {
    pipeline: PathBuf,
    /// A read-only query; tables go by their pipeline names, quarantines as `<table>__quarantine`.
    sql: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to this file instead of standard output (required for parquet).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Table,
    Csv,
    Json,
    Parquet,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let p = super::load(&args.pipeline).await?;
    let ctx = ingesta_runtime::query::session(&p).await?;
    // read-only: no DDL, DML or session statements anywhere in the plan
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let frame = ctx.sql_with_options(&args.sql, options).await.map_err(|e| {
        anyhow::anyhow!(
            "{e}\nonly queries (SELECT, WITH, VALUES, EXPLAIN) run here; the lake changes through `ingesta run`"
        )
    })?;
    let schema = frame.schema().as_arrow().clone();
    let batches = frame.collect().await?;
    let mut sink: Box<dyn Write + Send> = match &args.out {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None if matches!(args.format, Format::Parquet) => {
            anyhow::bail!("--format parquet writes a file: add --out FILE.parquet")
        }
        None => Box::new(std::io::stdout()),
    };
    match args.format {
        Format::Table => {
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            writeln!(sink, "{}", pretty::pretty_format_batches(&batches)?)?;
            writeln!(sink, "{rows} row{}", if rows == 1 { "" } else { "s" })?;
        }
        Format::Csv => {
            let mut w = csv::WriterBuilder::new().with_header(true).build(sink);
            for b in &batches {
                w.write(b)?;
            }
        }
        Format::Json => {
            let mut w = json::LineDelimitedWriter::new(sink);
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        Format::Parquet => {
            let mut w = ArrowWriter::try_new(sink, std::sync::Arc::new(schema), None)?;
            for b in &batches {
                w.write(b)?;
            }
            w.close()?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
