//! A landing table's settled watermark (decision 0035): a time `W` such that
//! every file of the source that appeared at or before it (by its own and
//! its folders' change times, or an object's `last_modified`) was taken. A
//! scan passes over those files as it lists them, so a poll neither looks up
//! nor holds every file ever ingested. `W` is a note beside the table
//! (`_ingesta_landing`), written after the commits it sums up: lost, stale or
//! from an earlier table of the same name, it is not used, and every listed
//! file is looked up in the log as before.

use ingesta_lake::LakeTable;
use serde::{Deserialize, Serialize};

/// The watermark stays at least this far behind a scan's start, whatever
/// the source's `clock_skew` (times are kept in milliseconds; a listing
/// misses no file that was there before it started).
const MIN_MARGIN_MS: i64 = 1_000;

const NOTE: &str = "landing";

#[derive(Serialize, Deserialize)]
struct Note {
    table_id: String,
    source: String,
    settled_ms: i64,
}

/// The watermark of `source`'s files in table `t`, when it has one.
pub async fn read(t: &LakeTable, source: &str) -> Option<i64> {
    let id = t.table_id().ok()?;
    let note = t.note(NOTE).await.map_err(|e| e.to_string());
    let note = note
        .and_then(|text| text.map(|text| serde_json::from_str::<Note>(&text)).transpose().map_err(|e| e.to_string()));
    match note {
        // another table's (of the same name, rebuilt), or another source's: not this one's
        Ok(note) => note.filter(|n| n.table_id == id && n.source == source).map(|n| n.settled_ms),
        Err(e) => {
            tracing::warn!(table = %t.name(), error = %e, "the landing watermark cannot be read; looking every file up");
            None
        }
    }
}

/// Records `settled_ms` as the watermark of `source`'s files in `t`. A
/// failure only leaves the older one (the next poll looks up more files).
pub async fn write(t: &LakeTable, source: &str, settled_ms: i64) {
    let Ok(table_id) = t.table_id() else { return };
    let note = Note { table_id, source: source.to_string(), settled_ms };
    let text = serde_json::to_string(&note).expect("a note serialises");
    if let Err(e) = t.write_note(NOTE, &text).await {
        tracing::warn!(table = %t.name(), error = %e, "the landing watermark was not written; tried again next poll");
    }
}

/// The watermark after a poll whose listing started at `scan_start_ms`:
/// that start less the source's `settle` and `clock_skew` (at least a
/// second), and before every listed file not taken (`pending`: their
/// appearance times).
pub fn after(scan_start_ms: i64, settle_ms: i64, skew_ms: i64, pending: impl Iterator<Item = i64>) -> i64 {
    let start = scan_start_ms - settle_ms - skew_ms.max(MIN_MARGIN_MS);
    pending.fold(start, |w, appeared| w.min(appeared - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watermark_stays_behind_the_scan_and_before_every_file_not_taken() {
        assert_eq!(after(100_000, 300, 30_000, std::iter::empty()), 69_700);
        assert_eq!(after(100_000, 0, 0, std::iter::empty()), 99_000, "at least a second");
        assert_eq!(after(100_000, 300, 30_000, [50_000, 60_000].into_iter()), 49_999);
    }
}
