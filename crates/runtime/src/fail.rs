//! Fail points for crash tests: `INGESTA_FAILPOINT=<name>` aborts the process
//! at the named point, as a power cut would (no unwinding, nothing flushed).
//! Compiled in only with the `failpoints` feature, which test builds turn on;
//! in the shipped binary `point` does nothing.

/// A bronze micro-batch's quarantine is committed, its table not yet.
pub(crate) const AFTER_QUARANTINE_COMMIT: &str = "after-quarantine-commit";
/// A replay's rows are committed to the table, the replay ledger not yet.
pub(crate) const REPLAY_AFTER_TABLE_COMMIT: &str = "replay-after-table-commit";
/// The Kafka sink's messages are flushed, its position not yet recorded.
pub(crate) const SINK_AFTER_FLUSH: &str = "sink-after-flush";

#[cfg(feature = "failpoints")]
pub(crate) fn point(name: &str) {
    if std::env::var("INGESTA_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("fail point `{name}` reached: aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn point(_name: &str) {}
