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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_cap_within_a_quarter() {
        let p = Retry { attempts: 5, backoff: ingesta_config::Dur(Duration::from_secs(2)), ..Retry::default() };
        for (failures, base) in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0), (40, 60.0)] {
            let wait = backoff(&p, failures).as_secs_f64();
            assert!((base * 0.75..=base * 1.25).contains(&wait), "{failures} failures: {wait} s");
        }
    }
}
