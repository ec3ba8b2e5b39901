//! `ingesta compact FILE [TABLE...] [--vacuum RETENTION]` and `ingesta rebuild FILE TABLE`

use std::path::PathBuf;
use std::process::ExitCode;

use ingesta_runtime::Progress;

#[derive(clap::Args)]
pub struct CompactArgs {
    pipeline: PathBuf,
    /// Tables to compact (default: all).
    tables: Vec<String>,
    /// Also delete files no version younger than this needs (e.g. 168h, 7d is 168h).
    #[arg(long, value_name = "RETENTION")]
    vacuum: Option<String>,
}

pub async fn compact(args: CompactArgs) -> anyhow::Result<ExitCode> {
    let p = super::load(&args.pipeline).await?;
    for t in &args.tables {
        anyhow::ensure!(p.tables.contains_key(t), "unknown table `{t}`");
    }
    let retention = match &args.vacuum {
        Some(text) => Some(parse_duration(text)?),
        None => None,
    };
    for m in ingesta_runtime::compact(&p, &args.tables, retention).await? {
        print!(
            "{:<20} files {:>5} -> {:<5} ({} rewritten into {})",
            m.table, m.files_before, m.files_after, m.compacted.files_removed, m.compacted.files_added
        );
        match (&m.vacuum_skipped, retention) {
            (Some(why), _) => print!("; {why}"),
            (None, Some(_)) => print!(", {} old files vacuumed", m.vacuumed),
            (None, None) => {}
        }
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    let t = text.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num.parse().map_err(|_| anyhow::anyhow!("`{text}` is not a duration; write e.g. 168h or 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" | "" => n * 3600,
        "d" => n * 86400,
        _ => anyhow::bail!("`{text}` is not a duration; write e.g. 168h or 7d"),
    };
    Ok(std::time::Duration::from_secs(secs))
}

#[derive(clap::Args)]
pub struct RebuildArgs {
    pipeline: PathBuf,
    /// The table to delete and compute again from its input.
    table: String,
    /// Rebuild even when the input no longer holds everything the table does
    /// (those records are then gone for good).
    #[arg(long)]
    accept_loss: bool,
}

pub async fn rebuild(args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let p = super::load(&args.pipeline).await?;
    let progress = Progress::new(true);
    let report = ingesta_runtime::rebuild(&p, &args.table, args.accept_loss, &progress).await?;
    super::run::print_report(&ingesta_runtime::RunReport { tables: vec![report.clone()] }, false);
    if let Some(e) = report.error {
        eprintln!("error: {e}");
        return Ok(ExitCode::from(1));
    }
    let below = p.downstream(&args.table);
    if !below.is_empty() {
        println!("tables that read `{}` must be rebuilt too, in this order: {}", args.table, below.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
