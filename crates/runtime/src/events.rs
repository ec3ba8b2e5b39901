//! What the runtime reports as it goes: one call per event writes the log
//! line and records the metric, so the two always agree (the pattern of
//! Vector's `internal_events`). Metrics are named `ingesta_*` and labelled
//! by `table`; `ingesta-serve` renders them for Prometheus at `/metrics`.

use std::time::Duration;

/// A table committed version `version`: `rows` rows (and `quarantined` bad
/// records), the commit taking `took`.
pub(crate) fn committed(table: &str, version: i64, rows: u64, quarantined: u64, took: Duration) {
    tracing::debug!(table, version, rows, quarantined, seconds = took.as_secs_f64(), "committed");
    let t = table.to_string();
    metrics::counter!("ingesta_rows_committed_total", "table" => t.clone()).increment(rows);
    metrics::counter!("ingesta_rows_quarantined_total", "table" => t.clone()).increment(quarantined);
    metrics::counter!("ingesta_commits_total", "table" => t.clone()).increment(1);
    metrics::histogram!("ingesta_commit_seconds", "table" => t.clone()).record(took.as_secs_f64());
    // freshness in Prometheus: time() - ingesta_last_commit_timestamp_seconds
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    metrics::gauge!("ingesta_last_commit_timestamp_seconds", "table" => t).set(now.as_secs_f64());
}

/// A pass over a table's new input that committed, start to end (reading,
/// transforming, writing, committing).
pub(crate) fn passed(table: &str, took: Duration) {
    metrics::histogram!("ingesta_pass_seconds", "table" => table.to_string()).record(took.as_secs_f64());
}

/// A table's pass failed with a passing fault (attempt `attempt`); it is
/// tried again after `wait`.
pub(crate) fn retrying(table: &str, error: &str, attempt: u32, wait: Duration) {
    tracing::warn!(table, error, attempt, wait = ?wait, "pass failed; will try again");
    metrics::counter!("ingesta_retries_total", "table" => table.to_string()).increment(1);
    metrics::counter!("ingesta_errors_total", "table" => table.to_string(), "kind" => "retry").increment(1);
}

/// A table's pass failed on its last attempt; `--watch` goes on trying
/// every `wait`.
pub(crate) fn failed(table: &str, error: &str, attempts: u32, wait: Duration) {
    tracing::error!(table, error, attempts, wait = ?wait, "pass failed on its last attempt; will try again later");
    metrics::gauge!("ingesta_table_failed", "table" => table.to_string()).set(1.0);
    metrics::counter!("ingesta_errors_total", "table" => table.to_string(), "kind" => "retry").increment(1);
}

/// A table passed again after failing.
pub(crate) fn recovered(table: &str, failures: u32) {
    tracing::info!(table, failures, "table recovered");
    metrics::gauge!("ingesta_table_failed", "table" => table.to_string()).set(0.0);
}

/// A table stopped on a fault that needs a person; the others go on.
pub(crate) fn stopped(table: &str, error: &str) {
    tracing::error!(table, error, "table stopped; the others keep running");
    metrics::gauge!("ingesta_table_stopped", "table" => table.to_string()).set(1.0);
    metrics::counter!("ingesta_errors_total", "table" => table.to_string(), "kind" => "stop").increment(1);
}

/// How far a stream's table is behind its topic after a commit: messages per
/// partition (from the client's watermarks), and seconds since the newest
/// committed message was produced.
pub(crate) fn kafka_lag(table: &str, lag: &[(ingesta_kafka::TopicPartition, i64)], newest_ms: Option<i64>) {
    for (tp, n) in lag {
        let (t, topic, partition) = (table.to_string(), tp.topic.clone(), tp.partition.to_string());
        metrics::gauge!("ingesta_kafka_lag_messages", "table" => t, "topic" => topic, "partition" => partition)
            .set(*n as f64);
    }
    if let Some(ms) = newest_ms {
        let behind = (chrono::Utc::now().timestamp_millis() - ms).max(0) as f64 / 1000.0;
        metrics::gauge!("ingesta_kafka_lag_seconds", "table" => table.to_string()).set(behind);
    }
}
