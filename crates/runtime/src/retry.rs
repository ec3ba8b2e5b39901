//! A table's retry policy (`retry:`): the wait before the next attempt of a
//! pass that failed on a passing fault.

use std::hash::BuildHasher;
use std::time::Duration;

use ingesta_config::{Pipeline, Retry};

/// The policy of the table or sink `name` (the default for a sink).
pub(crate) fn policy(p: &Pipeline, name: &str) -> Retry {
    p.tables.get(name).map(|t| t.retry).unwrap_or_default()
}

/// The wait after `failures` failed attempts in a row: `backoff` doubled for
/// each failure after the first, at most `max_backoff`, then up to a quarter
/// of it added or taken at random (so that tables failing together do not
/// retry together).
pub(crate) fn backoff(policy: &Retry, failures: u32) -> Duration {
    let doubled = policy.backoff.0.saturating_mul(1 << failures.saturating_sub(1).min(20));
    let wait = doubled.min(policy.max_backoff.0);
    let random = std::collections::hash_map::RandomState::new().hash_one(failures) as f64 / u64::MAX as f64;
    wait.mul_f64(0.75 + random * 0.5)
}

/// The tables whose passes failed on passing faults, under `--watch`: how
/// many times in a row, and when each may pass again.
#[derive(Default)]
pub(crate) struct Failing(std::collections::HashMap<String, (u32, tokio::time::Instant)>);

impl Failing {
    /// The table may pass (it is not waiting out a backoff).
    pub fn due(&self, table: &str) -> bool {
        self.0.get(table).is_none_or(|(_, next)| tokio::time::Instant::now() >= *next)
    }

    /// The table is failing and its backoff is over: its next attempt is due.
    pub fn retry_due(&self, table: &str) -> bool {
        self.0.contains_key(table) && self.due(table)
    }

    /// The attempt a pass of `table` is (1 unless it has been failing).
    pub fn attempt(&self, table: &str) -> u32 {
        self.0.get(table).map_or(1, |(n, _)| n + 1)
    }

    pub fn passed(&mut self, table: &str) {
        if let Some((n, _)) = self.0.remove(table) {
            crate::events::recovered(table, n);
        }
    }

    /// Counts a failure: (it was the last attempt, or one after it; the wait).
    pub fn failed(&mut self, table: &str, policy: &ingesta_config::Retry) -> (bool, Duration) {
        let e = self.0.entry(table.to_string()).or_insert((0, tokio::time::Instant::now()));
        e.0 += 1;
        let last = e.0 >= policy.attempts;
        let wait = if last { backoff(policy, u32::MAX) } else { backoff(policy, e.0) };
        e.1 = tokio::time::Instant::now() + wait;
        (last, wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_cap_within_a_quarter() {
        let secs = |n| ingesta_config::Dur(Duration::from_secs(n));
        let p = Retry { attempts: 5, backoff: secs(2), max_backoff: secs(60) };
        for (failures, base) in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0), (40, 60.0)] {
            let wait = backoff(&p, failures).as_secs_f64();
            assert!((base * 0.75..=base * 1.25).contains(&wait), "{failures} failures: {wait} s");
        }
    }
}
