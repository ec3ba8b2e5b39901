//! The runtime: runs each table's task. A bronze task scans its source, reads
//! new inputs on worker threads (one file each), and commits micro-batches of
//! rows together with the inputs' positions, quarantine first, then the table.

mod bronze;
mod enrich;
mod microbatch;
mod report;

use std::time::Duration;

use ingesta_config::{Pipeline, Source};
use ingesta_core::{Error, ErrorKind};
use ingesta_lake::Lake;

pub use bronze::BronzeTask;
pub use report::{Progress, RunReport, TableReport};

/// Builds the lake a pipeline names.
pub fn lake_of(p: &Pipeline) -> Result<Lake, Error> {
    let storage = p.lake.storage.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
    Ok(Lake::new(&p.lake.root, storage)?)
}

/// One task per table, in name order.
pub fn tasks(p: &Pipeline, lake: &Lake) -> Result<Vec<BronzeTask>, Error> {
    p.tables
        .iter()
        .map(|(name, t)| {
            let Some(Source::Landing(l)) = p.sources.get(&t.input) else {
                return Err(Error::stop(format!("table `{name}`: unknown input `{}`", t.input)));
            };
            BronzeTask::new(lake.clone(), name, t, &t.input, l)
        })
        .collect()
}

/// Runs every table once over what its source holds now. A table that fails
/// does not stop the others: its report carries the error.
pub async fn run_once(p: &Pipeline, progress: &Progress) -> Result<RunReport, Error> {
    let lake = lake_of(p)?;
    let mut report = RunReport::default();
    for mut task in tasks(p, &lake)? {
        let table = match task.run_once(progress).await {
            Ok(r) => r,
            Err(e) => {
                progress.done();
                TableReport { table: task.name().to_string(), error: Some(e.message), ..Default::default() }
            }
        };
        report.tables.push(table);
    }
    Ok(report)
}

/// Keeps running every table, polling sources, until `stop` resolves.
pub async fn run_watch(
    p: &Pipeline,
    progress: &Progress,
    stop: impl std::future::Future<Output = ()>,
) -> Result<RunReport, Error> {
    let lake = lake_of(p)?;
    let mut tasks = tasks(p, &lake)?;
    let poll = p.sources.values().map(|Source::Landing(l)| l.poll.0).min().unwrap_or(Duration::from_secs(5));
    let mut total = RunReport::default();
    tokio::pin!(stop);
    loop {
        for task in &mut tasks {
            match task.run_once(progress).await {
                Ok(r) => total.merge(RunReport { tables: vec![r] }),
                // a passing fault (a folder briefly gone, a commit conflict): next poll
                Err(e) if e.kind == ErrorKind::Retry => {
                    tracing::warn!(table = task.name(), error = %e, "will try again at the next poll");
                }
                Err(e) => return Err(e),
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(total),
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
