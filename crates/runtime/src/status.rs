//! What a pipeline's tables hold now, read from their logs: computed once
//! here, printed by `ingesta status` and served over HTTP alike.

use std::collections::BTreeMap;

use ingesta_config::Pipeline;
use ingesta_core::Error;
use ingesta_lake::LakeTable;
use serde::Serialize;

use crate::lake_of;

#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    pub pipeline: String,
    /// Where the lake is (a folder or a URL; never its storage options).
    #[serde(skip)]
    pub lake: String,
    pub tables: Vec<TableStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    pub name: String,
    pub layer: &'static str,
    pub location: String,
    pub exists: bool,
    /// The table's Delta version (none before its first commit).
    pub version: Option<i64>,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub quarantined_rows: u64,
    /// How the warehouse partitions the table: `range` (PostgreSQL's own
    /// partitions) or `hypertable` (TimescaleDB); absent for lake tables
    /// and unpartitioned ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitioning: Option<&'static str>,
    /// Per expectation: its action and the rows that passed and failed it.
    pub expectations: BTreeMap<String, ExpectationStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpectationStatus {
    pub action: &'static str,
    pub passed: u64,
    pub failed: u64,
}

/// Every table of the pipeline, in the pipeline's order.
pub async fn status(p: &Pipeline) -> Result<PipelineStatus, Error> {
    let lake = lake_of(p)?;
    let warehouse = crate::warehouse_of(p)?;
    let mut tables = Vec::new();
    for (name, t) in &p.tables {
        if let (Some(wh), ingesta_config::Store::Warehouse) = (&warehouse, t.store) {
            tables.push(in_warehouse(&lake, wh, name, t).await?);
            continue;
        }
        let data = LakeTable::open(&lake, name, &lake.table_url(name)).await?;
        let quarantine = LakeTable::open(&lake, name, &lake.quarantine_url(name)).await?;
        let stats = data.as_ref().map(LakeTable::stats).transpose()?;
        let q = quarantine.as_ref().map(LakeTable::stats).transpose()?;
        let counts = match &data {
            Some(d) if !t.expect.is_empty() => crate::transform::sum_expectations(&d.commit_infos(10_000).await?),
            _ => Default::default(),
        };
        let expectations = expectations(t, &counts);
        tables.push(TableStatus {
            name: name.clone(),
            layer: t.layer.as_str(),
            location: lake.table_url(name).to_string(),
            exists: stats.is_some(),
            version: stats.as_ref().map(|s| s.version),
            rows: stats.as_ref().map_or(0, |s| s.rows),
            files: stats.as_ref().map_or(0, |s| s.files),
            bytes: stats.as_ref().map_or(0, |s| s.bytes),
            quarantined_rows: q.as_ref().map_or(0, |s| s.rows),
            partitioning: None,
            expectations,
        });
    }
    Ok(PipelineStatus { pipeline: p.pipeline.clone(), lake: lake.root().to_string(), tables })
}

fn expectations(
    t: &ingesta_config::Table,
    counts: &BTreeMap<String, crate::transform::RuleCount>,
) -> BTreeMap<String, ExpectationStatus> {
    t.expect
        .iter()
        .map(|e| {
            let c = counts.get(&e.name).copied().unwrap_or_default();
            (e.name.clone(), ExpectationStatus { action: e.action.as_str(), passed: c.passed, failed: c.failed })
        })
        .collect()
}

/// A table kept in the warehouse (its quarantine is in the lake).
async fn in_warehouse(
    lake: &ingesta_lake::Lake,
    wh: &ingesta_warehouse::Warehouse,
    name: &str,
    t: &ingesta_config::Table,
) -> Result<TableStatus, Error> {
    let spec = crate::transform::warehouse_spec(name, t);
    let data = ingesta_warehouse::WarehouseTable::open_existing(wh, &spec).await?;
    let quarantine = LakeTable::open(lake, name, &lake.quarantine_url(name)).await?;
    let q = quarantine.as_ref().map(LakeTable::stats).transpose()?;
    let (stats, counts) = match &data {
        Some(d) => {
            let infos = if t.expect.is_empty() { Vec::new() } else { d.commit_infos(10_000).await? };
            (Some(d.stats().await?), crate::transform::sum_expectations(&infos))
        }
        None => (None, Default::default()),
    };
    Ok(TableStatus {
        name: name.to_string(),
        layer: t.layer.as_str(),
        location: match &data {
            Some(d) => d.location(),
            None => format!("postgresql://{} {}", wh.describe(), spec.qualified()),
        },
        exists: stats.is_some(),
        version: stats.map(|s| s.0),
        rows: stats.map_or(0, |s| s.1),
        files: 0,
        bytes: stats.map_or(0, |s| s.2),
        quarantined_rows: q.as_ref().map_or(0, |s| s.rows),
        partitioning: match &data {
            Some(d) if spec.partition.is_some() => d.partitioning().await?,
            _ => None,
        },
        expectations: expectations(t, &counts),
    })
}
