//! What a run did, per table, and live progress for a terminal.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub struct TableReport {
    pub table: String,
    pub files: u64,
    /// Rows a silver or gold table's query read from its input.
    pub rows_in: u64,
    /// A silver or gold table's input versions: after the first, up to the last it read.
    pub input_versions: Option<(i64, i64)>,
    pub rows: u64,
    pub quarantined: u64,
    pub bytes: u64,
    pub commits: u64,
    pub elapsed: Duration,
    /// Files left for a later scan: still being written.
    pub unsettled: Vec<String>,
    /// Files that could not be opened (path, why); tried again next run.
    pub failed: Vec<(String, String)>,
    /// Why the table stopped, when it did (the other tables still ran).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub tables: Vec<TableReport>,
}

impl RunReport {
    /// Adds a later pass of the same tables (watch mode).
    pub fn merge(&mut self, other: RunReport) {
        for t in other.tables {
            match self.tables.iter_mut().find(|x| x.table == t.table) {
                Some(x) => {
                    x.files += t.files;
                    x.rows_in += t.rows_in;
                    x.input_versions = match (x.input_versions, t.input_versions) {
                        (Some((from, _)), Some((_, to))) => Some((from, to)),
                        (a, b) => b.or(a),
                    };
                    x.rows += t.rows;
                    x.quarantined += t.quarantined;
                    x.bytes += t.bytes;
                    x.commits += t.commits;
                    x.elapsed += t.elapsed;
                    x.unsettled = t.unsettled;
                    x.failed = t.failed;
                    if t.error.is_some() {
                        x.error = t.error;
                    }
                }
                None => self.tables.push(t),
            }
        }
    }

    /// The tables that stopped with an error.
    pub fn errors(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tables.iter().filter_map(|t| t.error.as_deref().map(|e| (t.table.as_str(), e)))
    }

    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
    pub fn quarantined(&self) -> u64 {
        self.tables.iter().map(|t| t.quarantined).sum()
    }
    pub fn bytes(&self) -> u64 {
        self.tables.iter().map(|t| t.bytes).sum()
    }
}

/// A one-line live counter on a terminal; silent otherwise. Clones share the
/// line, and a signal that a stream committed (which wakes `--watch`'s
/// tables at once instead of at their next poll).
#[derive(Clone)]
pub struct Progress {
    enabled: bool,
    state: Arc<Mutex<(Instant, Instant)>>,
    commits: Arc<tokio::sync::Notify>,
}

impl Progress {
    pub fn new(enabled: bool) -> Self {
        let now = Instant::now();
        Self {
            enabled: enabled && std::io::stdout().is_terminal(),
            state: Arc::new(Mutex::new((now, now))),
            commits: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// A stream (Kafka, collector) committed new rows.
    pub fn committed(&self) {
        self.commits.notify_one();
    }

    /// Waits until a stream commits (at once if one did since the last wait).
    pub async fn next_commit(&self) {
        self.commits.notified().await;
    }

    /// Shows the running totals of `table`, at most a few times a second.
    pub fn show(&self, table: &str, rows: u64, quarantined: u64, bytes: u64, since: Instant) {
        if !self.enabled {
            return;
        }
        let mut s = self.state.lock().expect("progress lock");
        if s.1.elapsed() < Duration::from_millis(250) {
            return;
        }
        s.1 = Instant::now();
        let secs = since.elapsed().as_secs_f64().max(1e-3);
        let mut out = std::io::stdout().lock();
        let _ = write!(
            out,
            "\r\x1b[2K  {table}: {rows} rows, {quarantined} quarantined, {:.1} MB/s, {:.0} rows/s",
            bytes as f64 / 1e6 / secs,
            rows as f64 / secs
        );
        let _ = out.flush();
    }

    /// Clears the live line.
    pub fn done(&self) {
        if self.enabled {
            print!("\r\x1b[2K");
            let _ = std::io::stdout().flush();
        }
    }
}

/// Where a pass of a table spent its time: milliseconds between named
/// points, logged at debug level (`INGESTA_LOG=ingesta_runtime=debug`), so
/// a slow commit can be taken apart without a profiler.
pub struct Laps {
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl Laps {
    pub fn new() -> Self {
        Self { last: Instant::now(), laps: Vec::new() }
    }

    /// Ends the lap `name` (the time since the previous one); laps of one name add up.
    pub fn lap(&mut self, name: &'static str) {
        let now = Instant::now();
        let d = now - self.last;
        self.last = now;
        match self.laps.iter_mut().find(|(n, _)| *n == name) {
            Some((_, t)) => *t += d,
            None => self.laps.push((name, d)),
        }
    }

    /// Logs the laps of `table`'s pass, as `name=ms` pairs.
    pub fn log(&self, table: &str) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            let laps: Vec<String> =
                self.laps.iter().map(|(n, d)| format!("{n}={:.1}", d.as_secs_f64() * 1e3)).collect();
            tracing::debug!(table, laps = %laps.join(" "), "pass timings (ms)");
        }
    }
}

impl Default for Laps {
    fn default() -> Self {
        Self::new()
    }
}
