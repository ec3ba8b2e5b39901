//! Operating a pipeline: a table's schedule and retry policy, and the
//! `alerts:` rules that notify a webhook when a table fails, goes stale,
//! quarantines too much or passes too slowly.

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
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
    /// (`5%`) for `quarantine_rate`, messages for `kafka_lag`; not used by
    /// `table_failed`.
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
    /// A topic-fed table is more than `over` messages behind its topic.
    KafkaLag,
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
    Count(u64),
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
            (AlertOn::KafkaLag, Some(o)) => {
                o.parse::<u64>().map(Threshold::Count).map_err(|_| format!("`{o}` is not a number of messages"))
            }
            (_, None) => {
                Err("this rule needs `over` (a duration like `15m`, for quarantine_rate `5%`, for kafka_lag messages)"
                    .into())
            }
        }
    }
}

/// When a table passes under `run --watch`: every `every` (counted from the
/// Unix epoch, so that every process agrees on the times), or at the times of
/// `cron` (five fields, minute first) in `timezone`. A table without one
/// passes at every poll.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    #[serde(default)]
    pub every: Option<Dur>,
    #[serde(default)]
    pub cron: Option<String>,
    /// The IANA time zone `cron` is read in (`Europe/Madrid`); UTC by default.
    #[serde(default)]
    pub timezone: Option<String>,
}

impl Schedule {
    /// The schedule, checked: one of `every` and `cron`, a pattern that
    /// parses, a time zone that exists.
    pub fn check(&self) -> Result<(), String> {
        match (&self.every, &self.cron) {
            (Some(_), Some(_)) | (None, None) => Err("give one of `every` (a duration) and `cron` (a pattern)".into()),
            (Some(d), None) if d.0.is_zero() => Err("`every` must be longer than 0".into()),
            (Some(_), None) if self.timezone.is_some() => Err("`timezone` goes with `cron`, not `every`".into()),
            (Some(_), None) => Ok(()),
            (None, Some(c)) => self.cron_in_zone(c).map(|_| ()),
        }
    }

    fn cron_in_zone(&self, pattern: &str) -> Result<(croner::Cron, chrono_tz::Tz), String> {
        let cron = pattern.parse::<croner::Cron>().map_err(|e| format!("`{pattern}` is not a cron pattern: {e}"))?;
        let zone = self.timezone.as_deref().unwrap_or("UTC");
        let tz = zone.parse::<chrono_tz::Tz>().map_err(|_| format!("`{zone}` is not an IANA time zone"))?;
        Ok((cron, tz))
    }

    /// The latest time of the schedule at or before `now`: the occurrence a
    /// pass at `now` serves.
    pub fn latest(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.step(now, true)
    }

    /// The first time of the schedule after `at`.
    pub fn next_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.step(at, false)
    }

    fn step(&self, at: DateTime<Utc>, back: bool) -> Option<DateTime<Utc>> {
        if let Some(every) = self.every {
            let step = every.0.as_millis().max(1) as i64;
            let floor = at.timestamp_millis().div_euclid(step) * step;
            return DateTime::from_timestamp_millis(if back { floor } else { floor + step });
        }
        let (cron, tz) = self.cron_in_zone(self.cron.as_deref()?).ok()?;
        // whole seconds, so that every call within a second names the same time
        let local = at.with_nanosecond(0)?.with_timezone(&tz);
        let found =
            if back { cron.find_previous_occurrence(&local, true) } else { cron.find_next_occurrence(&local, false) };
        found.ok().map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn intervals_are_counted_from_the_epoch_and_cron_in_its_time_zone() {
        let every = Schedule { every: Some(Dur(Duration::from_secs(900))), cron: None, timezone: None };
        assert_eq!(every.latest(at("2026-12-07T10:20:00Z")), Some(at("2026-12-07T10:15:00Z")));
        assert_eq!(every.next_after(at("2026-12-07T10:15:00Z")), Some(at("2026-12-07T10:30:00Z")));
        let madrid = Schedule { every: None, cron: Some("0 2 * * *".into()), timezone: Some("Europe/Madrid".into()) };
        assert_eq!(madrid.check(), Ok(()));
        // 02:00 in Madrid is 01:00 UTC in winter, 00:00 UTC in summer
        assert_eq!(madrid.latest(at("2026-12-07T10:00:00Z")), Some(at("2026-12-07T01:00:00Z")));
        assert_eq!(madrid.latest(at("2026-12-07T10:00:00.123456Z")), Some(at("2026-12-07T01:00:00Z")));
        assert_eq!(madrid.next_after(at("2026-07-01T10:00:00Z")), Some(at("2026-07-02T00:00:00Z")));
        let bad = Schedule { every: None, cron: Some("0 2 * *".into()), timezone: Some("Mars/Base".into()) };
        assert!(bad.check().unwrap_err().contains("not a cron pattern"));
        let both = Schedule { every: Some(Dur(Duration::from_secs(1))), ..madrid.clone() };
        assert!(both.check().is_err());
    }
}
