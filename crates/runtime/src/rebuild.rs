//! `rebuild`: deletes one table and its quarantine and computes them again
//! from the table's input — only when that input can still be read in full.
//! A bronze table may hold records its source no longer has (collector log
//! segments deleted once committed, landing files removed, topic records past
//! their retention); rebuilding it would lose them, so it is refused, naming
//! what would be lost, unless the caller accepts the loss.

use std::collections::BTreeSet;

use ingesta_config::{Http, Kafka, Landing as LandingConfig, Pipeline, Source, Start};
use ingesta_core::{Error, TableStore};
use ingesta_kafka::TopicPartition;
use ingesta_lake::LakeTable;

use crate::{Progress, TableReport, Task, lake_of, tasks_of};

/// At most this many lost inputs are named one by one.
const NAMED: usize = 5;

/// Deletes table `name` and its quarantine, then recomputes it from its input
/// (every file of a bronze table's source; every version of a table's input).
/// Refused when the input no longer holds everything the table does, unless
/// `accept_loss`. Tables that read it must be rebuilt after it.
pub async fn rebuild(p: &Pipeline, name: &str, accept_loss: bool, progress: &Progress) -> Result<TableReport, Error> {
    let lake = lake_of(p)?;
    let Some(cfg) = p.tables.get(name) else {
        let known: Vec<&str> = p.tables.keys().map(String::as_str).collect();
        return Err(Error::stop(format!("unknown table `{name}`; tables: {}", known.join(", "))));
    };
    let mut task = tasks_of(p, &lake)?.into_iter().find(|t| t.name() == name).expect("a task per table");
    // the table and its quarantine, where they exist
    let mut held = Vec::new();
    for url in [lake.table_url(name), lake.quarantine_url(name)] {
        held.extend(LakeTable::open(&lake, name, &url).await?);
    }
    let lost = match (&task, p.sources.get(&cfg.input)) {
        (Task::Collect(c), Some(Source::Http(h))) => collector_losses(&held, &cfg.input, h, c.wal_dir()).await?,
        (Task::Bronze(_), Some(Source::Landing(l))) => landing_losses(&held, &cfg.input, l).await?,
        (Task::Stream(_), Some(Source::Kafka(k))) => topic_losses(&held, k).await?,
        // a fresh copy holds each row's current state, not the changes before it
        (Task::Cdc(_) | Task::Sql(_), _) if !held.is_empty() => {
            vec!["the change rows held so far (a new copy gives each source row's current state only)".into()]
        }
        // an API gives the records it holds now, not every one the table took
        (Task::Rest(_), _) if !held.is_empty() => {
            vec!["the records held so far (the API may no longer give all of them)".into()]
        }
        _ => Vec::new(),
    };
    if !lost.is_empty() {
        let what = lost.join("; ");
        if !accept_loss {
            return Err(Error::stop(format!(
                "not rebuilt: table `{name}` holds records its input `{}` no longer has, and a rebuild would lose them: {what}. \
                 Nothing was changed. Keep the input to rebuild from (a collector source's `archive:`, the landing files, \
                 the topic's retention), or pass --accept-loss to rebuild from what is left",
                cfg.input
            )));
        }
        tracing::warn!(table = %name, lost = %what, "rebuilding with --accept-loss: these records will be gone");
    }
    for t in held {
        t.destroy().await?;
    }
    task.run_once(progress).await
}

/// Events the table holds that the collector's log has deleted.
async fn collector_losses(
    held_by: &[LakeTable],
    source: &str,
    http: &Http,
    wal_dir: &std::path::Path,
) -> Result<Vec<String>, Error> {
    let id = crate::bronze::http::app_id(source);
    let mut held = -1;
    for t in held_by {
        held = held.max(t.position(&id).await?.unwrap_or(-1));
    }
    if held < 0 {
        return Ok(Vec::new());
    }
    let first = ingesta_collector::wal::first_event(wal_dir).map_err(Error::stop)?;
    let kept_from = first.unwrap_or(held + 1).min(held + 1);
    if kept_from == 0 {
        return Ok(Vec::new());
    }
    let archive = match http.archive {
        Some(d) => format!("its `archive: {}s` has already deleted them", d.0.as_secs()),
        None => "the log deletes what the table holds (set `archive:` on the source to keep it)".to_string(),
    };
    Ok(vec![format!(
        "events 0 to {} ({} events) of collector source `{source}` are no longer in its log {}: {archive}",
        kept_from - 1,
        kept_from,
        wal_dir.display()
    )])
}

/// Landing files the table holds (by name, size and time) that are gone.
async fn landing_losses(held_by: &[LakeTable], source: &str, cfg: &LandingConfig) -> Result<Vec<String>, Error> {
    let prefix = ingesta_core::app_id::landing_prefix(source);
    let mut held = BTreeSet::new();
    for t in held_by {
        for id in t.positions().await?.unwrap_or_default().into_keys() {
            if let Some(key) = id.strip_prefix(&prefix) {
                held.insert(key.to_string());
            }
        }
    }
    if held.is_empty() {
        return Ok(Vec::new());
    }
    let landing = ingesta_sources::Landing::new(source, cfg)?;
    let scan = tokio::task::spawn_blocking(move || landing.scan(None))
        .await
        .map_err(|e| Error::stop(e.to_string()))?
        .map_err(|e| Error::retry(format!("source `{source}`: {e}")))?;
    let present: BTreeSet<String> =
        scan.ready.iter().map(|f| f.key.app_id()).filter_map(|id| id.strip_prefix(&prefix).map(String::from)).collect();
    let unsettled: BTreeSet<&str> = scan.unsettled.iter().map(String::as_str).collect();
    let gone: Vec<&String> = held
        .iter()
        .filter(|k| !present.contains(*k) && !k.rsplit_once('@').is_some_and(|(path, _)| unsettled.contains(path)))
        .collect();
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    let named: Vec<&str> = gone.iter().take(NAMED).map(|k| k.rsplit_once('@').map_or(k.as_str(), |(p, _)| p)).collect();
    let more = if gone.len() > NAMED { format!(" and {} more", gone.len() - NAMED) } else { String::new() };
    Ok(vec![format!(
        "{} file(s) of landing source `{source}` are gone or were rewritten since they were read: {}{more}",
        gone.len(),
        named.join(", ")
    )])
}

/// Topic partitions whose earliest records are past the retention, or a
/// start other than `earliest` (a rebuild would not begin where the table did).
async fn topic_losses(held_by: &[LakeTable], cfg: &Kafka) -> Result<Vec<String>, Error> {
    let mut partitions = BTreeSet::new();
    for t in held_by {
        for id in t.positions().await?.unwrap_or_default().into_keys() {
            let Some((topic, partition)) =
                id.strip_prefix(ingesta_core::app_id::KAFKA_PREFIX).and_then(|k| k.rsplit_once('/'))
            else {
                continue;
            };
            if let Ok(p) = partition.parse::<i32>() {
                partitions.insert(TopicPartition::new(topic, p));
            }
        }
    }
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    if cfg.start != Start::Earliest {
        return Ok(vec![
            "the source starts partitions it has no position for at `latest` or a time, not where the table began \
             (set `start: earliest` to rebuild from the topics' first records)"
                .to_string(),
        ]);
    }
    let (brokers, props) = (cfg.brokers.clone(), cfg.properties.clone());
    let tps: Vec<TopicPartition> = partitions.into_iter().collect();
    let lows = {
        let tps = tps.clone();
        tokio::task::spawn_blocking(move || ingesta_kafka::low_watermarks(&brokers, &props, &tps))
            .await
            .map_err(|e| Error::stop(e.to_string()))??
    };
    let trimmed: Vec<String> =
        tps.iter().zip(lows).filter(|(_, low)| *low > 0).map(|(tp, low)| format!("{tp} before offset {low}")).collect();
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![format!(
        "records the topic no longer holds (past its retention; the table may hold them): {}",
        trimmed.join(", ")
    )])
}
