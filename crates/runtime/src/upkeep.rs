//! Automatic upkeep of a table between its commits, for every kind of table
//! task: compaction when small files pile up (`compact_after`), and a vacuum
//! of data files unreferenced for longer than `vacuum_after`, at most once an
//! hour (delta-rs's lite vacuum: the log's tombstones, no listing, no commit
//! when nothing is due). Upkeep never fails its table: a failure (say, two
//! group members compacting at once) is logged and tried again later.

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
        Self { compact_after: cfg.compact_after, vacuum_after: cfg.vacuum_after.0, last_vacuum: None }
    }

    /// Compacts and vacuums `t` when due.
    pub async fn run(&mut self, t: &mut LakeTable) {
        let name = t.name().to_string();
        if self.compact_after > 0 {
            let r = match t.small_files() {
                Ok(n) if n >= self.compact_after => t.compact().await.map(Some),
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
        let due = self.last_vacuum.is_none_or(|at| at.elapsed() >= VACUUM_EVERY);
        if self.vacuum_after.is_zero() || !due {
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
