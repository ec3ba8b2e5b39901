//! `ingesta repair`: run again what failed, and what depends on it.

use std::collections::BTreeSet;

use ingesta_config::{Pipeline, Sink};
use ingesta_core::Error;

use crate::report::{Progress, RunReport};

/// `ingesta repair`: the tables whose latest pass failed, and every table and
/// sink that reads them (directly or not), run once; the others are left
/// alone. Nothing failed: nothing runs.
pub async fn repair(p: &Pipeline, progress: &Progress) -> Result<(Vec<String>, RunReport), Error> {
    let lake = crate::lake_of(p)?;
    let failed = crate::runs::failing(&lake).await?;
    let mut targets: BTreeSet<String> =
        failed.into_iter().filter(|t| p.tables.contains_key(t) || p.sinks.contains_key(t)).collect();
    loop {
        let before = targets.len();
        let readers = p.tables.iter().filter(|(_, t)| t.upstream().iter().any(|u| targets.contains(u))).map(|(n, _)| n);
        let sinks = p.sinks.iter().filter(|(_, s)| match s {
            Sink::Kafka(k) => targets.contains(&k.input),
        });
        let more: Vec<String> = readers.cloned().chain(sinks.map(|(n, _)| n.clone())).collect();
        targets.extend(more);
        if targets.len() == before {
            break;
        }
    }
    if targets.is_empty() {
        return Ok((Vec::new(), RunReport::default()));
    }
    let report = crate::run_tables(p, progress, Some(&targets), crate::runs::Trigger::Repair).await?;
    Ok((targets.into_iter().collect(), report))
}
