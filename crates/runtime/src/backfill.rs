//! `ingesta backfill`: a range of one table's partitions computed again from
//! its input and put in their place in one commit (`transform/backfill.rs`),
//! recorded in the run history with the trigger `backfill`.

use std::time::SystemTime;

use ingesta_config::{Layer, Pipeline, ReadMode};
use ingesta_core::Error;

use crate::transform::Backfilled;
use crate::{TableReport, Task, lake_of, runs, tasks_of};

/// Backfills table `name` over `from..=to` of `column` (by default its one
/// partition column). Refused for a table another reads by its appends: the
/// replaced rows would be changes that reader cannot follow.
pub async fn backfill(
    p: &Pipeline,
    name: &str,
    column: Option<&str>,
    from: &str,
    to: &str,
) -> Result<Backfilled, Error> {
    let lake = lake_of(p)?;
    let Some(cfg) = p.tables.get(name) else {
        let known: Vec<&str> = p.tables.keys().map(String::as_str).collect();
        return Err(Error::stop(format!("unknown table `{name}`; tables: {}", known.join(", "))));
    };
    if cfg.layer == Layer::Bronze {
        return Err(Error::stop(format!(
            "table `{name}` is a bronze table, which keeps what its source gave: `ingesta replay` reads its \
             quarantined records again, `ingesta rebuild` reads its source again"
        )));
    }
    let column = match (column, cfg.partition_by.as_slice()) {
        (Some(c), _) => c.to_string(),
        (None, [one]) => one.column.clone(),
        (None, []) => {
            return Err(Error::stop(format!(
                "table `{name}` has no `partition_by`: name the range's column with --column (a lake table must be \
                 partitioned by it: a backfill replaces whole partitions), or recompute the table whole with \
                 `ingesta rebuild`"
            )));
        }
        (None, many) => {
            let names: Vec<&str> = many.iter().map(|p| p.column.as_str()).collect();
            return Err(Error::stop(format!(
                "table `{name}` has several partition columns; name one with --column: {}",
                names.join(", ")
            )));
        }
    };
    let readers: Vec<&str> = p
        .tables
        .iter()
        .filter(|(_, t)| t.read == ReadMode::Appends && t.upstream().iter().any(|u| u == name))
        .map(|(n, _)| n.as_str())
        .collect();
    if !readers.is_empty() {
        return Err(Error::stop(format!(
            "table `{name}` cannot be backfilled: {} read{} its appended rows, and a backfill replaces rows; \
             backfill those tables instead, or have them read `{name}` with `read: changes`",
            readers.join(", "),
            if readers.len() == 1 { "s" } else { "" }
        )));
    }
    let task = tasks_of(p, &lake)?.into_iter().find(|t| t.name() == name).expect("a task per table");
    let Task::Transform(mut task) = task else { unreachable!("a silver or gold table is a transform") };
    let started = SystemTime::now();
    let done = task.backfill(&column, from, to).await;
    let mut history = runs::RunLog::new(&lake);
    let report = done.as_ref().ok().map(|d| TableReport {
        table: name.to_string(),
        rows_in: d.computed,
        input_versions: Some((-1, d.input_version)),
        rows: d.rows,
        files: d.added as u64,
        commits: 1,
        elapsed: d.elapsed,
        ..Default::default()
    });
    let (status, error) = match &done {
        Ok(_) => (runs::Status::Ok, None),
        Err(e) => (runs::Status::Failed, Some(e.message.as_str())),
    };
    let trigger = runs::Trigger::Backfill;
    history.record(runs::Pass { table: name, trigger, attempt: 1, status, started, report: report.as_ref(), error });
    history.append().await;
    done
}
