//! Automatic upkeep of a table between its commits, for every kind of table
//! task: compaction when small files pile up (`compact_after`), and a vacuum
//! of data files unreferenced for longer than `vacuum_after`, at most once an
//! hour (or once per `vacuum_after` when that is shorter), also across
//! `run --once` processes: the lake remembers when the table was last
//! vacuumed (delta-rs's lite vacuum: the log's tombstones, no listing, no
//! commit when nothing is due). Upkeep never fails its table: a failure
//! (say, two group members compacting at once) is logged and tried again
//! later.

use std::time::{Duration, Instant};

use ingesta_config::Table;
use ingesta_lake::LakeTable;

const VACUUM_EVERY: Duration = Duration::from_secs(3600);

pub struct Upkeep {
    compact_after: usize,
    vacuum_after: Duration,
    last_vacuum: Option<Instant>,
}

impl Upkeep {
    pub fn new(cfg: &Table) -> Self {
        Self::with(cfg.compact_after, cfg.vacuum_after.0)
    }

    pub fn with(compact_after: usize, vacuum_after: Duration) -> Self {
        Self { compact_after, vacuum_after, last_vacuum: None }
    }

    /// Compacts and vacuums `t` when due.
    pub async fn run(&mut self, t: &mut LakeTable) {
        let name = t.name().to_string();
        if self.compact_after > 0 {
            let r = match t.small_files() {
                Ok(n) if n >= self.compact_after => t.compact_small().await.map(Some),
                Ok(_) => Ok(None),
                Err(e) => Err(e),
            };
            match r {
                Ok(Some(c)) => {
                    tracing::info!(table = %name, removed = c.files_removed, added = c.files_added, "compacted")
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(table = %name, error = %e, "compaction failed; tried again later"),
            }
        }
        if self.vacuum_after.is_zero() {
            return;
        }
        // no more often than files can expire
        let every = VACUUM_EVERY.min(self.vacuum_after);
        if self.last_vacuum.is_none() {
            // a process's first upkeep: when did another one vacuum last?
            match t.vacuumed_at().await {
                Ok(Some(at)) => {
                    let age = (chrono::Utc::now() - at).to_std().unwrap_or_default();
                    if age < every {
                        self.last_vacuum = Some(Instant::now().checked_sub(age).unwrap_or_else(Instant::now));
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::debug!(table = %name, error = %e, "cannot tell when the table was last vacuumed"),
            }
        }
        if self.last_vacuum.is_some_and(|at| at.elapsed() < every) {
            return;
        }
        self.last_vacuum = Some(Instant::now());
        match t.vacuum(self.vacuum_after).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(table = %name, files = n, "vacuumed old files"),
            Err(e) => tracing::warn!(table = %name, error = %e, "vacuum failed; tried again later"),
        }
    }
}
