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
pub mod stream;
pub mod transform;

use std::time::Duration;

use ingesta_config::{Layer, Pipeline, Source};
use ingesta_core::{Error, ErrorKind};
use ingesta_lake::Lake;

pub use bronze::BronzeTask;
pub use check::{Finding, check};
pub use maintain::{compact, rebuild};
pub use report::{Progress, RunReport, TableReport};
pub use stream::StreamTask;
pub use transform::TransformTask;

/// Builds the lake a pipeline names.
pub fn lake_of(p: &Pipeline) -> Result<Lake, Error> {
    let storage = p.lake.storage.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
    Ok(Lake::new(&p.lake.root, storage)?)
}

/// A table's task: bronze tables read sources, silver and gold read tables.
pub enum Task {
    Bronze(BronzeTask),
    Stream(StreamTask),
    Transform(TransformTask),
}

impl Task {
    pub fn name(&self) -> &str {
        match self {
            Task::Bronze(t) => t.name(),
            Task::Stream(t) => t.name(),
            Task::Transform(t) => t.name(),
        }
    }

    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        match self {
            Task::Bronze(t) => t.run_once(progress).await,
            Task::Stream(t) => t.run_once(progress).await,
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
            match p.sources.get(&t.input) {
                Some(Source::Landing(l)) => Ok(Task::Bronze(BronzeTask::new(lake.clone(), &name, t, &t.input, l)?)),
                Some(Source::Kafka(k)) => Ok(Task::Stream(StreamTask::new(lake.clone(), &p.pipeline, &name, t, k))),
                None => Err(Error::stop(format!("table `{name}`: unknown input `{}`", t.input))),
            }
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

/// Keeps running every table until `stop` resolves: streams read
/// continuously on their own threads; file sources and table-to-table tasks
/// are polled in dependency order. A table that stops (a `fail` expectation,
/// a changed input) is reported and left out of later polls; the others keep
/// running.
pub async fn run_watch(
    p: &Pipeline,
    progress: &Progress,
    stop: impl std::future::Future<Output = ()>,
) -> Result<RunReport, Error> {
    let lake = lake_of(p)?;
    let (streams, mut tasks): (Vec<Task>, Vec<Task>) =
        tasks(p, &lake)?.into_iter().partition(|t| matches!(t, Task::Stream(_)));
    let poll = p.sources.values().filter_map(Source::poll).min().unwrap_or(Duration::from_secs(5));
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut running = tokio::task::JoinSet::new();
    for task in streams {
        let Task::Stream(mut t) = task else { unreachable!("partitioned") };
        let (flag, progress) = (stopping.clone(), progress.clone());
        running.spawn(async move {
            let name = t.name().to_string();
            stream_until_stopped(&mut t, flag, &progress).await.unwrap_or_else(|e| {
                tracing::error!(table = %name, error = %e, "table stopped; the others keep running");
                TableReport { table: name, error: Some(e.message), ..Default::default() }
            })
        });
    }
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
            _ = &mut stop => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
    stopping.store(true, std::sync::atomic::Ordering::Relaxed);
    while let Some(r) = running.join_next().await {
        if let Ok(r) = r {
            total.merge(RunReport { tables: vec![r] });
        }
    }
    Ok(total)
}

/// Runs a stream until `stop` is set; a passing fault (broker gone, commit
/// conflict) restarts it after a backoff, a configuration error ends it.
async fn stream_until_stopped(
    t: &mut StreamTask,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    progress: &Progress,
) -> Result<TableReport, Error> {
    let mut total = RunReport::default();
    let mut backoff = Duration::from_secs(1);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match t.run_until(stop.clone(), progress).await {
            Ok(r) => total.merge(RunReport { tables: vec![r] }),
            Err(e) if e.kind == ErrorKind::Retry => {
                tracing::warn!(table = t.name(), error = %e, ?backoff, "stream failed; starting again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(total.tables.pop().unwrap_or_else(|| TableReport { table: t.name().to_string(), ..Default::default() }))
}
