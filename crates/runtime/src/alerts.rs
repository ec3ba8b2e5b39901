//! `alerts:` under `run --watch`: each rule is checked after every round of
//! passes (the lake-reading ones at most every [`READ_EVERY`]) for every table
//! it watches; the webhook hears "firing" once when a condition starts, again
//! every `repeat` if set, and "resolved" once when it ends. A message that
//! cannot be delivered is tried again at the next check. The webhook's URL is
//! never logged (it usually carries a token).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ingesta_config::{Alert, AlertOn, Pipeline, Threshold, WebhookFormat};
use ingesta_core::Error;
use serde_json::{Value, json};

use crate::health::Board;

/// Freshness and quarantine rates read the tables' commits this often at most.
const READ_EVERY: Duration = Duration::from_secs(10);
/// Commits read for a quarantine rate (the window's, up to this many).
const COMMITS_READ: usize = 200;

/// A condition firing.
#[derive(Clone)]
struct Firing {
    since: DateTime<Utc>,
    /// When the webhook last heard of it (`None`: not yet delivered).
    sent: Option<Instant>,
    message: String,
}

pub(crate) struct Alerts {
    pipeline: Pipeline,
    rules: Vec<(String, Alert, Threshold)>,
    /// Per (rule, table): the conditions firing now.
    firing: BTreeMap<(String, String), Firing>,
    /// Per (rule, table): resolved, still to be delivered.
    resolving: BTreeMap<(String, String), String>,
    /// The last reading of the tables' commits, per (rule, table).
    read: Option<Instant>,
    from_commits: BTreeMap<(String, String), Option<String>>,
    client: reqwest::Client,
}

impl Alerts {
    pub fn new(p: &Pipeline) -> Result<Self, Error> {
        let mut rules = Vec::new();
        for (name, a) in &p.alerts {
            let t = a.threshold().map_err(|e| Error::stop(format!("alerts.{name}: {e}")))?;
            rules.push((name.clone(), a.clone(), t));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::stop(format!("cannot make the webhook client: {e}")))?;
        Ok(Self {
            pipeline: p.clone(),
            rules,
            firing: BTreeMap::new(),
            resolving: BTreeMap::new(),
            read: None,
            from_commits: BTreeMap::new(),
            client,
        })
    }

    /// Checks every rule against the board (and, when due, the tables'
    /// commits) and tells the webhooks what changed.
    pub async fn check(&mut self, board: &Board) {
        if self.rules.is_empty() {
            return;
        }
        if self.read.is_none_or(|at| at.elapsed() >= READ_EVERY) {
            self.read = Some(Instant::now());
            self.read_commits().await;
        }
        let (_, health) = board.snapshot();
        let health: BTreeMap<String, Value> = health["tables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t["table"].as_str()?.to_string(), t.clone())))
            .collect();
        for i in 0..self.rules.len() {
            let (rule, alert, threshold) = self.rules[i].clone();
            for table in self.watched(&alert) {
                let key = (rule.clone(), table.clone());
                let now = match alert.on {
                    AlertOn::TableFailed => health.get(&table).and_then(failure),
                    AlertOn::SlowPass => health.get(&table).and_then(|h| slow(h, threshold)),
                    AlertOn::KafkaLag => health.get(&table).and_then(|h| lagging(h, threshold)),
                    AlertOn::Freshness | AlertOn::QuarantineRate => self.from_commits.get(&key).cloned().flatten(),
                };
                self.update(&alert, key, now).await;
            }
        }
        board.set_alerts(self.firing());
    }

    fn watched(&self, alert: &Alert) -> Vec<String> {
        if alert.tables.is_empty() { self.pipeline.tables.keys().cloned().collect() } else { alert.tables.clone() }
    }

    /// A rule's state for one table: firing with `message`, or not (`None`).
    async fn update(&mut self, alert: &Alert, key: (String, String), message: Option<String>) {
        match (message, self.firing.get(&key).cloned()) {
            (Some(m), None) => {
                self.resolving.remove(&key);
                let sent = self.send(alert, &key, "firing", &m).await.then(Instant::now);
                self.firing.insert(key.clone(), Firing { since: Utc::now(), sent, message: m });
            }
            (Some(m), Some(Firing { since, sent, .. })) => {
                let due = match (sent, alert.repeat) {
                    (None, _) => true,
                    (Some(at), Some(every)) => at.elapsed() >= every.0,
                    (Some(_), None) => false,
                };
                let sent = if due && self.send(alert, &key, "firing", &m).await { Some(Instant::now()) } else { sent };
                self.firing.insert(key.clone(), Firing { since, sent, message: m });
            }
            (None, Some(Firing { since, sent, .. })) => {
                self.firing.remove(&key);
                // a firing never delivered needs no resolution
                if sent.is_some() {
                    let took = (Utc::now() - since).num_seconds();
                    self.resolving.insert(key.clone(), format!("resolved after {took} s"));
                }
            }
            (None, None) => {}
        }
        if let Some(m) = self.resolving.get(&key).cloned()
            && self.send(alert, &key, "resolved", &m).await
        {
            self.resolving.remove(&key);
        }
    }

    /// The alerts firing now, for the dashboard.
    fn firing(&self) -> Vec<Value> {
        let each = |((rule, table), f): (&(String, String), &Firing)| json!({"alert": rule, "table": table, "since": f.since.to_rfc3339(), "message": f.message});
        self.firing.iter().map(each).collect()
    }

    /// POSTs one message; false (logged, without the URL) when it did not go through.
    async fn send(&self, alert: &Alert, (rule, table): &(String, String), status: &str, message: &str) -> bool {
        let body = match alert.format {
            WebhookFormat::Json => json!({
                "alert": rule, "status": status, "table": table, "message": message,
                "pipeline": self.pipeline.pipeline, "at": Utc::now().to_rfc3339(),
            }),
            WebhookFormat::Slack => {
                let mark = if status == "firing" { ":red_circle:" } else { ":white_check_mark:" };
                let p = &self.pipeline.pipeline;
                json!({"text": format!("{mark} {p}: alert `{rule}` {status} for table `{table}`: {message}")})
            }
        };
        let sent = self.client.post(alert.webhook.expose()).json(&body).send().await;
        match sent.map(|r| r.error_for_status()) {
            Ok(Ok(_)) => {
                tracing::info!(alert = %rule, table = %table, status, "alert sent");
                true
            }
            Ok(Err(e)) | Err(e) => {
                let e = e.without_url();
                tracing::warn!(alert = %rule, table = %table, status, error = %e, "cannot deliver the alert; tried again at the next check");
                false
            }
        }
    }

    /// Freshness and quarantine rates, from the tables' latest commits.
    async fn read_commits(&mut self) {
        let rules: Vec<_> = self
            .rules
            .iter()
            .filter(|(_, a, _)| matches!(a.on, AlertOn::Freshness | AlertOn::QuarantineRate))
            .cloned()
            .collect();
        for (rule, alert, threshold) in rules {
            for table in self.watched(&alert) {
                let n = if alert.on == AlertOn::Freshness { 1 } else { COMMITS_READ };
                let infos = match crate::serving::tables::commit_infos(&self.pipeline, &table, n).await {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::debug!(table = %table, error = %e.message, "cannot read the table's commits for its alerts");
                        continue;
                    }
                };
                let state = match (alert.on, threshold) {
                    (AlertOn::Freshness, Threshold::Duration(over)) => stale(&infos, over),
                    (AlertOn::QuarantineRate, Threshold::Percent(over)) => quarantining(&infos, alert.window.0, over),
                    _ => None,
                };
                self.from_commits.insert((rule.clone(), table), state);
            }
        }
    }
}

/// A table's failure on the board: failed after its last attempt, or stopped.
fn failure(h: &Value) -> Option<String> {
    matches!(h["state"].as_str(), Some("failed" | "stopped")).then(|| h["problem"].as_str().unwrap_or("").to_string())
}

fn slow(h: &Value, threshold: Threshold) -> Option<String> {
    let (Some(took), Threshold::Duration(over)) = (h["last_commit_seconds"].as_f64(), threshold) else { return None };
    (took > over.as_secs_f64()).then(|| format!("its last pass took {took:.1} s, over {} s", over.as_secs_f64()))
}

/// A topic-fed table further behind its topic than the threshold.
fn lagging(h: &Value, threshold: Threshold) -> Option<String> {
    let (Some(lag), Threshold::Count(over)) = (h["lag_messages"].as_i64(), threshold) else { return None };
    (lag > over as i64).then(|| format!("{lag} messages behind its topic, over {over}"))
}

fn committed_at(info: &serde_json::Map<String, Value>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(info.get("timestamp")?.as_i64()?)
}

/// No commit for longer than `over` (a table never committed is not stale: it has not started).
fn stale(infos: &[serde_json::Map<String, Value>], over: Duration) -> Option<String> {
    let last = committed_at(infos.first()?)?;
    let age = (Utc::now() - last).to_std().unwrap_or_default();
    (age > over).then(|| {
        format!("no commit for {} s (last at {}), over {} s", age.as_secs(), last.to_rfc3339(), over.as_secs())
    })
}

/// More than `over` percent of the records of the commits within `window` quarantined.
fn quarantining(infos: &[serde_json::Map<String, Value>], window: Duration, over: f64) -> Option<String> {
    let since = Utc::now() - chrono::Duration::from_std(window).unwrap_or_default();
    let count = |i: &serde_json::Map<String, Value>, k: &str| {
        i.get(k).and_then(|v| v.as_str()).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
    };
    let (mut rows, mut bad) = (0, 0);
    for i in infos.iter().filter(|i| committed_at(i).is_some_and(|at| at >= since)) {
        rows += count(i, "ingesta.rows");
        bad += count(i, "ingesta.quarantined");
    }
    let rate = if rows + bad == 0 { 0.0 } else { bad as f64 * 100.0 / (rows + bad) as f64 };
    (rate > over).then(|| {
        format!(
            "{bad} of {} records quarantined in the last {} s ({rate:.1}%), over {over}%",
            rows + bad,
            window.as_secs()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(secs_ago: i64, rows: u64, bad: u64) -> serde_json::Map<String, Value> {
        let at = (Utc::now() - chrono::Duration::seconds(secs_ago)).timestamp_millis();
        let v = json!({"timestamp": at, "ingesta.rows": rows.to_string(), "ingesta.quarantined": bad.to_string()});
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_table_behind_its_topic_lags_only_past_the_threshold() {
        let h = json!({"table": "t", "lag_messages": 1500});
        assert_eq!(lagging(&h, Threshold::Count(1000)).unwrap(), "1500 messages behind its topic, over 1000");
        assert!(lagging(&h, Threshold::Count(1500)).is_none());
        assert!(lagging(&json!({"table": "t", "lag_messages": null}), Threshold::Count(0)).is_none());
    }

    #[test]
    fn stale_and_quarantining_tables_are_told_apart() {
        let hour = Duration::from_secs(3600);
        assert!(stale(&[info(10, 1, 0)], hour).is_none());
        assert!(stale(&[info(7200, 1, 0)], hour).unwrap().contains("no commit for 7200 s"));
        assert!(stale(&[], hour).is_none(), "a table not started is not stale");
        let infos = [info(10, 90, 10), info(20, 100, 0), info(7200, 0, 1000)];
        assert!(quarantining(&infos, hour, 5.0).is_none(), "10 of 200 is 5%, not over it");
        let m = quarantining(&infos, hour, 4.0).unwrap();
        assert!(m.contains("10 of 200 records"), "{m}");
    }
}
