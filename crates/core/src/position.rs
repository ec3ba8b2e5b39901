//! Input positions. A table commit carries, for every input it consumed, how far
//! it got; the store keeps that in the same atomic write as the rows (a Delta
//! `txn` action, or a row of the positions table in the same PostgreSQL
//! transaction). On restart a source resumes from there.

/// The identity of one landing file: a file rewritten in place (other size or
/// modification time) is a new input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// The source's name in the pipeline.
    pub source: String,
    /// Path relative to the source's folder, with `/` separators.
    pub path: String,
    pub size: u64,
    /// Modification time in milliseconds since the Unix epoch.
    pub mtime_ms: i64,
}

impl FileKey {
    /// The application id under which the store records this file's progress.
    pub fn app_id(&self) -> String {
        format!("ingesta/landing/{}/{}@{}:{}", self.source, self.path, self.size, self.mtime_ms)
    }
}

/// How far one input has been consumed: records up to and including `last` are
/// committed; `done` once the whole input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub last: i64,
    pub done: bool,
}

impl Progress {
    /// Packs progress into the single monotonic integer a `txn` action holds.
    pub fn encode(self) -> i64 {
        self.last * 2 + i64::from(self.done)
    }

    pub fn decode(version: i64) -> Self {
        Self { last: version / 2, done: version % 2 == 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_round_trips_and_stays_monotonic() {
        let steps = [
            Progress { last: 0, done: false },
            Progress { last: 0, done: true },
            Progress { last: 7, done: false },
            Progress { last: 7, done: true },
        ];
        for p in steps {
            assert_eq!(Progress::decode(p.encode()), p);
        }
        assert!(steps[2].encode() > steps[1].encode());
        assert!(steps[3].encode() > steps[2].encode());
    }

    #[test]
    fn app_id_changes_when_the_file_is_rewritten() {
        let a = FileKey { source: "iot".into(), path: "a.csv".into(), size: 10, mtime_ms: 1 };
        let b = FileKey { size: 11, ..a.clone() };
        assert_ne!(a.app_id(), b.app_id());
    }
}
