//! The health of each table while `run --watch` runs: ok, retrying (a passing
//! fault: broker unreachable, commit conflict, folder gone), failed (such a
//! fault outlasted the table's retries; still tried) or stopped (a fault that
//! needs a person: bad credentials, a `fail` expectation), with
//! the problem, since when, and the last commit. `run --watch --health ADDR`
//! serves it as `GET /health` (200 when every table is ok, 503 otherwise).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

#[derive(Clone, Default)]
pub struct Board {
    tables: Arc<Mutex<BTreeMap<String, TableHealth>>>,
    /// Kafka clients' own state (librdkafka retries inside them).
    clients: Arc<Mutex<Vec<(String, ingesta_kafka::Health)>>>,
    /// The alerts firing now (`alerts.rs`).
    alerts: Arc<Mutex<Vec<Value>>>,
}

#[derive(Clone, Debug, Default)]
struct TableHealth {
    stopped: Option<String>,
    retrying: Option<(String, DateTime<Utc>)>,
    /// `retrying` after the table's last attempt.
    failed: bool,
    last_commit: Option<DateTime<Utc>>,
    /// How long the pass that made the last commit took (reading, writing, committing).
    last_commit_seconds: Option<f64>,
    rows: u64,
}

impl Board {
    pub fn watch_client(&self, table: &str, health: ingesta_kafka::Health) {
        self.clients.lock().expect("health").push((table.to_string(), health));
        self.entry(table, |_| {});
    }

    /// A pass of the table went through: `rows` new rows, and when it
    /// committed, the seconds it took.
    pub fn ok(&self, table: &str, rows: u64, committed: Option<f64>) {
        self.entry(table, |t| {
            t.retrying = None;
            t.failed = false;
            t.rows += rows;
            if let Some(seconds) = committed {
                t.last_commit = Some(Utc::now());
                t.last_commit_seconds = Some(seconds);
            }
        });
    }

    pub fn retrying(&self, table: &str, problem: &str) {
        self.entry(table, |t| match &t.retrying {
            Some((p, _)) if p == problem => {}
            _ => t.retrying = Some((problem.to_string(), Utc::now())),
        });
    }

    /// A pass failed on its last attempt (it is still tried, less often).
    pub fn failed(&self, table: &str, problem: &str) {
        self.retrying(table, problem);
        self.entry(table, |t| t.failed = true);
    }

    pub fn stopped(&self, table: &str, error: &str) {
        self.entry(table, |t| t.stopped = Some(error.to_string()));
    }

    /// The alerts firing now: `{alert, table, since, message}` each.
    pub fn set_alerts(&self, firing: Vec<Value>) {
        *self.alerts.lock().expect("health") = firing;
    }

    fn entry(&self, table: &str, f: impl FnOnce(&mut TableHealth)) {
        f(self.tables.lock().expect("health").entry(table.to_string()).or_default());
    }

    /// (every table ok, the report).
    pub fn snapshot(&self) -> (bool, Value) {
        let tables = self.tables.lock().expect("health").clone();
        let clients = self.clients.lock().expect("health").clone();
        let mut all_ok = true;
        let rows: Vec<Value> = tables
            .iter()
            .map(|(name, t)| {
                let health = clients.iter().find(|(n, _)| n == name).map(|(_, h)| h);
                let client = health.and_then(|h| h.problem());
                let lag = health.and_then(|h| h.lag());
                let (state, problem, since) = match (&t.stopped, &t.retrying, client) {
                    (Some(e), _, _) => ("stopped", Some(e.clone()), None),
                    (None, Some((p, at)), _) if t.failed => ("failed", Some(p.clone()), Some(at.to_rfc3339())),
                    (None, Some((p, at)), _) => ("retrying", Some(p.clone()), Some(at.to_rfc3339())),
                    (None, None, Some(p)) => {
                        let since = Utc::now() - chrono::Duration::from_std(p.since.elapsed()).unwrap_or_default();
                        ("retrying", Some(format!("{} ({} times)", p.message, p.count)), Some(since.to_rfc3339()))
                    }
                    (None, None, None) => ("ok", None, None),
                };
                all_ok &= state == "ok";
                json!({
                    "table": name, "state": state, "problem": problem, "since": since,
                    "last_commit": t.last_commit.map(|c| c.to_rfc3339()),
                    "last_commit_seconds": t.last_commit_seconds, "rows": t.rows,
                    "lag_messages": lag,
                })
            })
            .collect();
        let alerts = self.alerts.lock().expect("health").clone();
        (all_ok, json!({"status": if all_ok { "ok" } else { "degraded" }, "tables": rows, "alerts": alerts}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_ok_until_a_problem_and_stopped_wins() {
        let b = Board::default();
        b.ok("a", 10, Some(0.25));
        assert!(b.snapshot().0);
        assert_eq!(b.snapshot().1["tables"][0]["last_commit_seconds"], 0.25);
        b.retrying("a", "broker gone");
        let (ok, v) = b.snapshot();
        assert!(!ok);
        assert_eq!(v["tables"][0]["state"], "retrying");
        assert_eq!(v["tables"][0]["problem"], "broker gone");
        b.ok("a", 5, None);
        assert_eq!(b.snapshot().1["tables"][0]["rows"], 15);
        assert!(b.snapshot().0);
        let h = ingesta_kafka::Health::default();
        b.watch_client("k", h.clone());
        h.failed("all brokers down".into());
        assert_eq!(b.snapshot().1["tables"][1]["state"], "retrying");
        h.ok();
        b.stopped("a", "bad credentials");
        let v = b.snapshot().1;
        assert_eq!((v["tables"][0]["state"].as_str(), v["tables"][1]["state"].as_str()), (Some("stopped"), Some("ok")));
    }
}
