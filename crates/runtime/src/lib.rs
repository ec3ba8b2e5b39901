//! The runtime: runs each table's task. A bronze task scans its source, reads
//! new inputs on worker threads (one file each), and commits micro-batches of
//! rows together with the inputs' positions, quarantine first, then the table.

mod alerts;
mod backfill;
mod bronze;
mod check;
mod events;
mod fail;
pub mod health;
mod maintain;
pub mod query;
mod rebuild;
mod repair;
mod replicas;
mod report;
mod retry;
pub mod runs;
mod schedule;
pub mod serving;
pub mod sink;
mod status;
pub mod transform;
mod upkeep;

use futures::StreamExt;
use std::time::Duration;

use ingesta_config::{Layer, Pipeline, Source};
use ingesta_core::{Error, ErrorKind};
use ingesta_lake::Lake;

pub use backfill::backfill;
pub use bronze::http::CollectTask;
pub use bronze::kafka::StreamTask;
pub use bronze::landing::BronzeTask;
pub use bronze::landing::replay::{ReplayReport, replay};
pub use bronze::postgres::CdcTask;
pub use bronze::rest::RestTask;
pub use bronze::sql::SqlTask;
pub use check::{Finding, check};
pub use maintain::compact;
pub use rebuild::rebuild;
pub use repair::repair;
pub use replicas::discover;
pub use report::{Progress, RunReport, TableReport};
pub use sink::SinkTask;
pub use status::{ExpectationStatus, PipelineStatus, TableStatus, status};
pub use transform::{Backfilled, TransformTask};

/// The most Parquet writers one table's append encodes on.
pub(crate) const MAX_WRITERS: usize = 4;

/// Parquet writers (threads) a table's large appends encode on: one per core,
/// at most [`MAX_WRITERS`] (decision 0012). Both bronze and transforms take them.
pub(crate) fn parquet_writers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_WRITERS)
}

/// Builds the lake a pipeline names.
pub fn lake_of(p: &Pipeline) -> Result<Lake, Error> {
    let storage = p.lake.storage.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
    Ok(Lake::new(&p.lake.root, storage)?.with_change_feeds(p.change_feeds()))
}

/// A table's task: bronze tables read sources, silver and gold read tables.
pub enum Task {
    Bronze(BronzeTask),
    Stream(StreamTask),
    Collect(CollectTask),
    Cdc(CdcTask),
    Sql(SqlTask),
    Rest(Box<RestTask>),
    Transform(TransformTask),
    Sink(SinkTask),
}

impl Task {
    pub fn name(&self) -> &str {
        match self {
            Task::Bronze(t) => t.name(),
            Task::Stream(t) => t.name(),
            Task::Collect(t) => t.name(),
            Task::Cdc(t) => t.name(),
            Task::Sql(t) => t.name(),
            Task::Rest(t) => t.name(),
            Task::Transform(t) => t.name(),
            Task::Sink(t) => t.name(),
        }
    }

    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        match self {
            Task::Bronze(t) => t.run_once(progress).await,
            Task::Stream(t) => t.run_once(progress).await,
            Task::Collect(t) => t.run_once(progress).await,
            Task::Cdc(t) => t.run_once(progress).await,
            Task::Sql(t) => t.run_once(progress).await,
            Task::Rest(t) => t.run_once(progress).await,
            Task::Transform(t) => t.run_once(progress).await,
            Task::Sink(t) => t.run_once(progress).await,
        }
    }

    /// In a long-running pipeline: a silver or gold table's state update
    /// after its commit and its upkeep run in the background, once every
    /// table's pass is over (`settle_in_background`).
    fn overlap_upkeep(&mut self) {
        if let Task::Transform(t) = self {
            t.overlap_upkeep();
        }
    }

    /// Starts the background work `overlap_upkeep` leaves after a pass.
    fn settle_in_background(&mut self) {
        if let Task::Transform(t) = self {
            t.settle_in_background();
        }
    }

    /// Waits for the work `overlap_upkeep` left in the background.
    async fn settle(&mut self) {
        if let Task::Transform(t) = self {
            t.settle().await;
        }
    }
}

/// The pipeline's warehouse connection (nothing is opened yet), if it has
/// one; an empty URL (`${INGESTA_WAREHOUSE:-}` unset) is none.
pub fn warehouse_of(p: &Pipeline) -> Result<Option<ingesta_warehouse::Warehouse>, Error> {
    let w = p.warehouse.as_ref().filter(|w| !w.url.expose().trim().is_empty());
    w.map(|w| ingesta_warehouse::Warehouse::new(w.url.expose(), w.pool)).transpose()
}

/// One task per table, each after the tables it reads, then one per sink.
pub fn tasks_of(p: &Pipeline, lake: &Lake) -> Result<Vec<Task>, Error> {
    let warehouse = warehouse_of(p)?;
    let sinks = p.sinks.iter().map(|(name, s)| match s {
        ingesta_config::Sink::Kafka(k) => Ok(Task::Sink(SinkTask::new(lake.clone(), name, k))),
    });
    p.run_order()
        .into_iter()
        .map(|name| {
            let t = &p.tables[&name];
            if t.layer != Layer::Bronze {
                let mut task = TransformTask::new(lake.clone(), &name, t);
                if let Some(wh) = &warehouse {
                    if let Some(cfg) = p.tables.get(&t.input).filter(|c| c.store == ingesta_config::Store::Warehouse) {
                        task = task.from_warehouse(wh.clone(), cfg);
                    }
                    for l in &t.transform.lookups {
                        if let Some(cfg) = p.tables.get(l).filter(|c| c.store == ingesta_config::Store::Warehouse) {
                            task = task.warehouse_lookup(l, wh.clone(), cfg);
                        }
                    }
                }
                if let (Some(r), false) = (&p.redis, t.transform.enrich.is_empty()) {
                    task = task.enriched(r.url.expose())?;
                }
                return Ok(Task::Transform(match (&warehouse, t.store) {
                    (Some(wh), ingesta_config::Store::Warehouse) => task.in_warehouse(wh.clone()),
                    _ => task,
                }));
            }
            match p.sources.get(&t.input) {
                Some(Source::Landing(l)) => Ok(Task::Bronze(BronzeTask::new(lake.clone(), &name, t, &t.input, l)?)),
                Some(Source::Kafka(k)) => Ok(Task::Stream(StreamTask::new(lake.clone(), &p.pipeline, &name, t, k))),
                Some(Source::Http(h)) => {
                    Ok(Task::Collect(CollectTask::new(lake.clone(), &p.lake.root, &name, t, &t.input, h)))
                }
                Some(Source::PostgresCdc(c)) => {
                    Ok(Task::Cdc(CdcTask::new(lake.clone(), &p.pipeline, &name, t, &t.input, c)?))
                }
                Some(Source::Sql(s)) => Ok(Task::Sql(SqlTask::new(lake.clone(), &name, t, &t.input, s)?)),
                Some(Source::Rest(r)) => Ok(Task::Rest(Box::new(RestTask::new(lake.clone(), &name, t, &t.input, r)?))),
                None => Err(Error::stop(format!("table `{name}`: unknown input `{}`", t.input))),
            }
        })
        .chain(sinks)
        .collect()
}

/// Runs every table once over what its source holds now; a pass that fails
/// on a passing fault is tried again as the table's `retry` says. A table
/// that fails does not stop the others: its report carries the error. Every
/// pass that did something, or failed, goes to the run history.
pub async fn run_once(p: &Pipeline, progress: &Progress) -> Result<RunReport, Error> {
    run_tables(p, progress, None, runs::Trigger::Once).await
}

/// Runs the tables of `only` (every table when none), once each, in order.
pub(crate) async fn run_tables(
    p: &Pipeline,
    progress: &Progress,
    only: Option<&std::collections::BTreeSet<String>>,
    trigger: runs::Trigger,
) -> Result<RunReport, Error> {
    let lake = lake_of(p)?;
    let mut report = RunReport::default();
    let mut runs = runs::RunLog::new(&lake);
    let tasks = tasks_of(p, &lake)?.into_iter().filter(|t| only.is_none_or(|o| o.contains(t.name())));
    for mut task in tasks {
        let policy = retry::policy(p, task.name());
        let mut attempt = 1;
        let table = loop {
            let started = std::time::SystemTime::now();
            let name = task.name().to_string();
            let pass =
                |status, report, error| runs::Pass { table: &name, trigger, attempt, status, started, report, error };
            match task.run_once(progress).await {
                Ok(r) => {
                    runs.record(pass(runs::Status::Ok, Some(&r), None));
                    break r;
                }
                Err(e) if e.kind == ErrorKind::Retry && attempt < policy.attempts => {
                    runs.record(pass(runs::Status::Retrying, None, Some(&e.message)));
                    let wait = retry::backoff(&policy, attempt);
                    events::retrying(&name, &e.message, attempt, wait);
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => {
                    progress.done();
                    runs.record(pass(runs::Status::Failed, None, Some(&e.message)));
                    break TableReport { table: name, error: Some(e.message), ..Default::default() };
                }
            }
        };
        report.tables.push(table);
    }
    runs.append().await;
    Ok(report)
}

/// Keeps running every table until `stop` resolves: streams read
/// continuously on their own threads, HTTP collectors serve and commit on
/// theirs; file sources and table-to-table tasks are polled in dependency
/// order. A table that stops (a `fail` expectation, a changed input) is
/// reported and left out of later polls; the others keep running. On stop,
/// the collectors' servers finish their requests first, then every stream
/// and collector commits what it holds.
pub async fn run_watch(
    p: &Pipeline,
    progress: &Progress,
    health_addr: Option<&str>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<RunReport, Error> {
    let board = health::Board::default();
    let lake = lake_of(p)?;
    let mut tasks: Vec<Task> = Vec::new();
    let mut streams: Vec<Task> = Vec::new();
    let mut collectors: Vec<CollectTask> = Vec::new();
    for t in tasks_of(p, &lake)? {
        match t {
            s @ (Task::Stream(_) | Task::Cdc(_)) => streams.push(s),
            Task::Collect(c) => collectors.push(c),
            mut other => {
                other.overlap_upkeep();
                tasks.push(other)
            }
        }
    }
    let (shutdown, mut servers) = serve(&mut collectors).await?;
    if let Some((addr, surface)) = serving::surface(p, Some(&board), health_addr)? {
        let mut rx = shutdown.subscribe();
        let until = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        servers.push(ingesta_serve::serve(&addr, surface, until).await.map_err(Error::stop)?);
    }
    let poll = p.sources.values().filter_map(Source::poll).min().unwrap_or(Duration::from_secs(5));
    let stopping = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut running = tokio::task::JoinSet::new();
    for mut t in streams {
        let (flag, progress, board) = (stopping.clone(), progress.clone(), board.clone());
        match &t {
            Task::Stream(s) => board.watch_client(s.name(), s.health().clone()),
            _ => board.ok(t.name(), 0, None),
        }
        running.spawn(async move {
            let name = t.name().to_string();
            stream_until_stopped(&mut t, flag, &progress, &board).await.unwrap_or_else(|e| stopped(&board, name, e))
        });
    }
    for mut c in collectors {
        let (flag, progress, board) = (stopping.clone(), progress.clone(), board.clone());
        board.ok(c.name(), 0, None);
        running.spawn(async move {
            let name = c.name().to_string();
            c.run_until(flag, &progress).await.unwrap_or_else(|e| stopped(&board, name, e))
        });
    }
    let mut total = RunReport::default();
    let mut failed: Vec<String> = Vec::new();
    let mut runs = runs::RunLog::new(&lake);
    let mut failing = retry::Failing::default();
    let mut schedules = schedule::Schedules::new(p);
    let mut alerts = alerts::Alerts::new(p)?;
    tokio::pin!(stop);
    let waves = waves(p, &tasks);
    loop {
        let scheduled = schedules.due(&lake).await;
        for wave in &waves {
            // a scheduled table passes at its times (and to retry); the others at every poll
            let go: Vec<bool> = tasks
                .iter()
                .map(|t| match schedules.has(t.name()) {
                    true => scheduled.contains(t.name()) || failing.retry_due(t.name()),
                    false => failing.due(t.name()),
                })
                .collect();
            // the tables of a wave read nothing another of them writes: their
            // passes overlap (each waits on its store most of the time)
            let passes = tasks
                .iter_mut()
                .enumerate()
                .filter(|(i, t)| wave.contains(i) && go[*i] && !failed.iter().any(|s| s == t.name()))
                .map(|(_, task)| async move {
                    let started = std::time::SystemTime::now();
                    (task.name().to_string(), started, task.run_once(progress).await)
                });
            let done: Vec<_> = futures::stream::iter(passes).buffer_unordered(PASSES_AT_ONCE).collect().await;
            for (name, started, result) in done {
                let attempt = failing.attempt(&name);
                let trigger = if scheduled.contains(&name) { runs::Trigger::Schedule } else { runs::Trigger::Watch };
                let pass = |status, report, error| runs::Pass {
                    table: &name,
                    trigger,
                    attempt,
                    status,
                    started,
                    report,
                    error,
                };
                match result {
                    Ok(r) => {
                        if r.commits > 0 {
                            events::passed(&name, r.elapsed);
                        }
                        failing.passed(&name);
                        runs.record(pass(runs::Status::Ok, Some(&r), None));
                        board.ok(&name, r.rows, (r.commits > 0).then_some(r.elapsed.as_secs_f64()));
                        total.merge(RunReport { tables: vec![r] });
                    }
                    // a passing fault (a folder briefly gone, a commit conflict): tried again
                    Err(e) if e.kind == ErrorKind::Retry => {
                        let policy = retry::policy(p, &name);
                        let (last, wait) = failing.failed(&name, &policy);
                        let status = if last { runs::Status::Failed } else { runs::Status::Retrying };
                        runs.record(pass(status, None, Some(&e.message)));
                        if last {
                            events::failed(&name, &e.message, policy.attempts, wait);
                            board.failed(&name, &e.message);
                        } else {
                            events::retrying(&name, &e.message, attempt, wait);
                            board.retrying(&name, &e.message);
                        }
                    }
                    Err(e) => {
                        progress.done();
                        failed.push(name.clone());
                        runs.record(pass(runs::Status::Failed, None, Some(&e.message)));
                        total.merge(RunReport { tables: vec![stopped(&board, name, e)] });
                    }
                }
            }
        }
        runs.append_when_due().await;
        alerts.check(&board).await;
        // the tables' state updates and upkeep, while the pipeline waits
        for task in &mut tasks {
            task.settle_in_background();
        }
        // the next pass at the next poll, or as soon as a stream commits
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(poll) => {}
            _ = progress.next_commit() => {}
        }
    }
    for task in &mut tasks {
        task.settle().await;
    }
    runs.append().await;
    let _ = shutdown.send(true);
    for s in servers {
        if tokio::time::timeout(Duration::from_secs(10), s).await.is_err() {
            tracing::warn!("the collector's server did not finish its requests in 10 s");
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

/// Table passes that overlap under `--watch`: each holds at most two
/// warehouse connections at once, so half the default pool of 8.
const PASSES_AT_ONCE: usize = 4;

/// The tasks in waves: each wave after the waves holding what it reads, so
/// the tasks of one wave may pass at the same time.
fn waves(p: &Pipeline, tasks: &[Task]) -> Vec<Vec<usize>> {
    let mut level: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, task) in tasks.iter().enumerate() {
        let reads: Vec<String> = match (p.tables.get(task.name()), p.sinks.get(task.name())) {
            (Some(t), _) => t.upstream(),
            (None, Some(ingesta_config::Sink::Kafka(k))) => vec![k.input.clone()],
            (None, None) => Vec::new(),
        };
        let l = reads.iter().filter_map(|r| level.get(r.as_str())).map(|l| l + 1).max().unwrap_or(0);
        level.insert(task.name(), l);
        if waves.len() <= l {
            waves.resize(l + 1, Vec::new());
        }
        waves[l].push(i);
    }
    waves
}

fn stopped(board: &health::Board, table: String, e: Error) -> TableReport {
    events::stopped(&table, &e.message);
    board.stopped(&table, &e.message);
    TableReport { table, error: Some(e.message), ..Default::default() }
}

/// Opens every collector's log and starts one server per listen address;
/// the servers stop (finishing their requests) when `true` is sent.
async fn serve(
    collectors: &mut [CollectTask],
) -> Result<(tokio::sync::watch::Sender<bool>, Vec<tokio::task::JoinHandle<()>>), Error> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut by_addr: std::collections::BTreeMap<String, Vec<ingesta_collector::Route>> = Default::default();
    for c in collectors.iter_mut() {
        let route = c.open().await?;
        by_addr.entry(c.listen().to_string()).or_default().push(route);
    }
    let mut servers = Vec::new();
    for (addr, routes) in by_addr {
        let mut rx = rx.clone();
        let shutdown = async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        servers.push(ingesta_collector::serve(&addr, routes, shutdown).await.map_err(Error::stop)?);
    }
    Ok((tx, servers))
}

/// Runs a stream (a topic, a database's changes) until `stop` is set; a
/// passing fault (broker or database gone, refused credentials, commit
/// conflict) restarts it after a backoff (1 s doubling to 60 s, cut short by
/// `stop`), a configuration error ends it.
async fn stream_until_stopped(
    t: &mut Task,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    progress: &Progress,
    board: &health::Board,
) -> Result<TableReport, Error> {
    let mut total = RunReport::default();
    let mut backoff = Duration::from_secs(1);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let run = match t {
            Task::Stream(s) => s.run_until(stop.clone(), progress).await,
            Task::Cdc(c) => c.run_until(stop.clone(), progress).await,
            _ => unreachable!("streams are topics and database changes"),
        };
        match run {
            Ok(r) => total.merge(RunReport { tables: vec![r] }),
            Err(e) if e.kind == ErrorKind::Retry => {
                tracing::warn!(table = t.name(), error = %e, ?backoff, "stream failed; starting again");
                board.retrying(t.name(), &e.message);
                let until = tokio::time::Instant::now() + backoff;
                while tokio::time::Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                board.ok(t.name(), 0, None);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(total.tables.pop().unwrap_or_else(|| TableReport { table: t.name().to_string(), ..Default::default() }))
}
