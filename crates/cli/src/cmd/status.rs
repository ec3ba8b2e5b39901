//! `ingesta status FILE [--json]`

use std::path::Path;
use std::process::ExitCode;

use ingesta_lake::LakeTable;

pub async fn run(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let p = super::load(path).await?;
    let lake = ingesta_runtime::lake_of(&p)?;
    let mut rows = Vec::new();
    for (name, t) in &p.tables {
        let data = LakeTable::open(&lake, name, &lake.table_url(name)).await?;
        let quarantine = LakeTable::open(&lake, name, &lake.quarantine_url(name)).await?;
        let stats = data.as_ref().map(LakeTable::stats).transpose()?;
        let q = quarantine.as_ref().map(LakeTable::stats).transpose()?;
        let expectations = match &data {
            Some(d) if !t.expect.is_empty() => {
                ingesta_runtime::transform::sum_expectations(&d.commit_infos(10_000).await?)
            }
            _ => Default::default(),
        };
        let expectations: serde_json::Map<String, serde_json::Value> = t
            .expect
            .iter()
            .map(|e| {
                let c = expectations.get(&e.name).copied().unwrap_or_default();
                let v = serde_json::json!({"action": e.action.as_str(), "passed": c.passed, "failed": c.failed});
                (e.name.clone(), v)
            })
            .collect();
        rows.push(serde_json::json!({
            "name": name,
            "layer": t.layer.as_str(),
            "location": lake.table_url(name).to_string(),
            "exists": stats.is_some(),
            "version": stats.as_ref().map(|s| s.version),
            "rows": stats.as_ref().map_or(0, |s| s.rows),
            "files": stats.as_ref().map_or(0, |s| s.files),
            "bytes": stats.as_ref().map_or(0, |s| s.bytes),
            "quarantined_rows": q.as_ref().map_or(0, |s| s.rows),
            "expectations": expectations,
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "pipeline": p.pipeline, "tables": rows }))?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("pipeline `{}` — lake at {}", p.pipeline, lake.root());
    println!("{:<20} {:<7} {:>8} {:>12} {:>6} {:>12}", "table", "layer", "version", "rows", "files", "quarantined");
    for r in rows {
        let version = r["version"].as_u64().map_or("-".to_string(), |v| v.to_string());
        println!(
            "{:<20} {:<7} {:>8} {:>12} {:>6} {:>12}",
            r["name"].as_str().unwrap_or_default(),
            r["layer"].as_str().unwrap_or_default(),
            version,
            r["rows"].as_u64().unwrap_or(0),
            r["files"].as_u64().unwrap_or(0),
            r["quarantined_rows"].as_u64().unwrap_or(0)
        );
        for (rule, c) in r["expectations"].as_object().into_iter().flatten() {
            println!(
                "  expect {rule} ({}): {} passed, {} failed",
                c["action"].as_str().unwrap_or_default(),
                c["passed"],
                c["failed"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
