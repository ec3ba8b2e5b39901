//! The runtime: runs each table's task. A bronze task scans its source, reads
//! new inputs on worker threads (one file each), and commits micro-batches of
//! rows together with the inputs' positions, quarantine first, then the table.

mod bronze;
mod check;
mod enrich;
mod maintain;
mod microbatch;
pub mod query;
mod report;
pub mod transform;

use std::time::Duration;

use ingesta_config::{Layer, Pipeline, Source};
use ingesta_core::{Error, ErrorKind};
use ingesta_lake::Lake;

pub use bronze::BronzeTask;
pub use check::{Finding, check};
pub use maintain::{compact, rebuild};
pub use report::{Progress, RunReport, TableReport};
pub use transform::TransformTask;

/// Builds the lake a pipeline names.
pub fn lake_of(p: &Pipeline) -> Result<Lake, Error> {
    let storage = p.lake.storage.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
    Ok(Lake::new(&p.lake.root, storage)?)
}

/// A table's task: bronze tables read sources, silver and gold read tables.
pub enum Task {
    Bronze(BronzeTask),
    Transform(TransformTask),
}

impl Task {
    pub fn name(&self) -> &str {
        match self {
            Task::Bronze(t) => t.name(),
            Task::Transform(t) => t.name(),
        }
    }

    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        match self {
            Task::Bronze(t) => t.run_once(progress).await,
            Task::Transform(t) => t.run_once(progress).await,
        }
    }
}

/// One task per table, each after the tables it reads.
pub fn tasks(p: &Pipeline, lake: &Lake) -> Result<Vec<Task>, Error> {
    p.run_order()
        .into_iter()
        .map(|name| {
            let t = &p.tables[&name];
            if t.layer != Layer::Bronze {
                return Ok(Task::Transform(TransformTask::new(lake.clone(), &name, t)));
            }
            let Some(Source::Landing(l)) = p.sources.get(&t.input) else {
                return Err(Error::stop(format!("table `{name}`: unknown input `{}`", t.input)));
            };
            Ok(Task::Bronze(BronzeTask::new(lake.clone(), &name, t, &t.input, l)?))
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

/// Keeps running every table, polling sources, until `stop` resolves. A table
/// that stops (a `fail` expectation, a changed input) is reported and left
/// out of later polls; the others keep running.
pub async fn run_watch(
    p: &Pipeline,
    progress: &Progress,
    stop: impl std::future::Future<Output = ()>,
) -> Result<RunReport, Error> {
    let lake = lake_of(p)?;
    let mut tasks = tasks(p, &lake)?;
    let poll = p.sources.values().map(|Source::Landing(l)| l.poll.0).min().unwrap_or(Duration::from_secs(5));
    let mut total = RunReport::default();
    let mut stopped: Vec<String> = Vec::new();
    tokio::pin!(stop);
    loop {
        for task in &mut tasks {
            if stopped.iter().any(|s| s == task.name()) {
                continue;
            }
            match task.run_once(progress).await {
                Ok(r) => total.merge(RunReport { tables: vec![r] }),
                // a passing fault (a folder briefly gone, a commit conflict): next poll
                Err(e) if e.kind == ErrorKind::Retry => {
                    tracing::warn!(table = task.name(), error = %e, "will try again at the next poll");
                }
                Err(e) => {
                    progress.done();
                    tracing::error!(table = task.name(), error = %e, "table stopped; the others keep running");
                    stopped.push(task.name().to_string());
                    let report =
                        TableReport { table: task.name().to_string(), error: Some(e.message), ..Default::default() };
                    total.merge(RunReport { tables: vec![report] });
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(total),
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
