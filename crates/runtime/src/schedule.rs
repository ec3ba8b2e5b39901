//! Scheduled tables under `run --watch` (`schedule:`). Each round, a table
//! whose schedule has reached a new time claims that time in the lake
//! (`Lake::claim`): the process that claims it runs the pass, any other
//! skips it, so two processes never run the same scheduled pass. A process
//! starting after downtime finds the latest time unclaimed and runs once at
//! once, whatever number of times were missed (a pass reads everything new,
//! so one covers them all).

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use ingesta_config::{Pipeline, Schedule};
use ingesta_lake::Lake;

pub(crate) struct Schedules {
    /// Per scheduled table: its schedule and the latest time this process
    /// has dealt with (run, or found claimed by another).
    tables: BTreeMap<String, (Schedule, Option<chrono::DateTime<Utc>>)>,
}

impl Schedules {
    pub fn new(p: &Pipeline) -> Self {
        let tables = p.tables.iter().filter_map(|(n, t)| Some((n.clone(), (t.schedule.clone()?, None)))).collect();
        Self { tables }
    }

    pub fn has(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    /// The scheduled tables to pass this round: those at a new time of their
    /// schedule that this process claimed.
    pub async fn due(&mut self, lake: &Lake) -> BTreeSet<String> {
        let now = Utc::now();
        let mut due = BTreeSet::new();
        for (table, (schedule, served)) in &mut self.tables {
            let Some(at) = schedule.latest(now) else { continue };
            if *served == Some(at) {
                continue;
            }
            let name = format!("schedules/{table}/{}", at.format("%Y%m%dT%H%M%SZ"));
            match lake.claim(&name, &format!("claimed at {now}")).await {
                Ok(true) => {
                    tracing::info!(table = %table, at = %at, "scheduled pass");
                    due.insert(table.clone());
                    *served = Some(at);
                }
                Ok(false) => {
                    tracing::debug!(table = %table, at = %at, "this scheduled pass was claimed by another process");
                    *served = Some(at);
                }
                // not served: claimed again next round
                Err(e) => tracing::warn!(table = %table, error = %e, "cannot claim the scheduled pass; tried again"),
            }
        }
        due
    }
}
