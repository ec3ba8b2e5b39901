//! The HTTP collector: clients `POST /ingest/<source>` JSON or NDJSON events
//! (gzip accepted) with a bearer token. A request is answered 2xx only once
//! its events are in the source's write-ahead log and fsynced (`wal/`); the
//! runtime then commits the log to the table exactly once, recording the last
//! event number in the same Delta commit, and deletes what the table holds.

mod body;
mod server;
pub mod wal;

pub use body::{BodyError, Parsed, parse};
pub use server::{Route, serve};
pub use wal::{AppendError, Appender, Batch, Frame, Limit, Reader, Wal};

/// A fail point for crash tests (`INGESTA_FAILPOINT=<name>` aborts here, as a
/// power cut would); compiled in only with the `failpoints` feature, which
/// test builds turn on through `ingesta-runtime`.
#[cfg(feature = "failpoints")]
pub(crate) fn failpoint(name: &str) {
    if std::env::var("INGESTA_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("fail point `{name}` reached: aborting");
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn failpoint(_name: &str) {}
