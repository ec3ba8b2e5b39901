//! `ingesta status FILE [--json]`

use std::path::Path;
use std::process::ExitCode;

pub async fn run(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let p = super::load(path).await?;
    let s = ingesta_runtime::status(&p).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("pipeline `{}` — lake at {}", s.pipeline, s.lake);
    println!("{:<20} {:<7} {:>8} {:>12} {:>6} {:>12}", "table", "layer", "version", "rows", "files", "quarantined");
    for t in &s.tables {
        let version = t.version.map_or("-".to_string(), |v| v.to_string());
        println!(
            "{:<20} {:<7} {:>8} {:>12} {:>6} {:>12}",
            t.name, t.layer, version, t.rows, t.files, t.quarantined_rows
        );
        if let Some(kind) = t.partitioning {
            println!("  partitioned in the warehouse as a {kind} table");
        }
        for (rule, c) in &t.expectations {
            println!("  expect {rule} ({}): {} passed, {} failed", c.action, c.passed, c.failed);
        }
    }
    Ok(ExitCode::SUCCESS)
}
