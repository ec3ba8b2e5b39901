//! Operating a pipeline: a table's retry policy and the `alerts:` rules that
//! notify a webhook when a table fails, goes stale, quarantines too much or
//! passes too slowly.

use std::time::Duration;

use serde::Deserialize;

use super::{Dur, Secret};

/// How a table's pass that failed on a passing fault (I/O, a timeout, a
/// commit conflict, a server gone) is tried again.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all, the first included; after the last one the table
    /// counts as failed (alerts fire), and `--watch` goes on trying every
    /// `max_backoff`.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each one after,
    /// with up to a quarter of it added or taken at random.
    #[serde(default = "default_backoff")]
    pub backoff: Dur,
    #[serde(default = "default_max_backoff")]
    pub max_backoff: Dur,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: default_attempts(), backoff: default_backoff(), max_backoff: default_max_backoff() }
    }
}

fn default_attempts() -> u32 {
    3
}
fn default_backoff() -> Dur {
    Dur(Duration::from_secs(1))
}
fn default_max_backoff() -> Dur {
    Dur(Duration::from_secs(10))
}

/// One rule of `alerts:`: when it fires, the webhook hears it once, and once
/// more when it is resolved (again every `repeat` while it lasts, if set).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub on: AlertOn,
    /// The tables it watches; all of them when left out.
    #[serde(default)]
    pub tables: Vec<String>,
    /// The threshold: a duration for `freshness` and `slow_pass`, a percentage
    /// (`5%`) for `quarantine_rate`; not used by `table_failed`.
    #[serde(default)]
    pub over: Option<String>,
    /// The window `quarantine_rate` counts in.
    #[serde(default = "default_window")]
    pub window: Dur,
    /// Where the message is POSTed. Never printed (it often holds a token).
    pub webhook: Secret,
    #[serde(default)]
    pub format: WebhookFormat,
    /// Send again while it still fires, this often; once when left out.
    #[serde(default)]
    pub repeat: Option<Dur>,
}

fn default_window() -> Dur {
    Dur(Duration::from_secs(15 * 60))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOn {
    /// A table's pass failed after its last retry, or the table stopped.
    TableFailed,
    /// A table has not committed for longer than `over` (on a bronze table:
    /// its source has been silent that long).
    Freshness,
    /// More than `over` percent of a table's records went to quarantine
    /// within `window`.
    QuarantineRate,
    /// A table's pass took longer than `over`.
    SlowPass,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"alert", "status": "firing"|"resolved", "table", "message", "pipeline", "at"}`.
    #[default]
    Json,
    /// `{"text": ...}`, as Slack's incoming webhooks (and Mattermost, Teams'
    /// Slack-compatible ones) take it.
    Slack,
}

/// A threshold of `over`, read for the rule's kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    None,
    Duration(Duration),
    Percent(f64),
}

impl Alert {
    /// `over` read for `on`, or why it cannot be.
    pub fn threshold(&self) -> Result<Threshold, String> {
        let over = self.over.as_deref().map(str::trim);
        match (self.on, over) {
            (AlertOn::TableFailed, None) => Ok(Threshold::None),
            (AlertOn::TableFailed, Some(_)) => Err("`over` means nothing for `on: table_failed`".into()),
            (AlertOn::Freshness | AlertOn::SlowPass, Some(o)) => Dur::parse(o).map(|d| Threshold::Duration(d.0)),
            (AlertOn::QuarantineRate, Some(o)) => match o.strip_suffix('%').map(|p| p.trim().parse::<f64>()) {
                Some(Ok(p)) if (0.0..=100.0).contains(&p) => Ok(Threshold::Percent(p)),
                _ => Err(format!("`{o}` is not a percentage; write it like `5%`")),
            },
            (_, None) => Err("this rule needs `over` (a duration like `15m`, or for quarantine_rate `5%`)".into()),
        }
    }
}
