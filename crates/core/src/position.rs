//! Input positions. A table commit carries, for every input it consumed, how far
//! it got; the store keeps that in the same atomic write as the rows (a Delta
//! `txn` action, or a row of the positions table in the same PostgreSQL
//! transaction). On restart a source resumes from there.

/// Every application id: the key under which a table records how far it has
/// read one input (a Delta `txn`, a row of a positions table). Made here
/// only, so sources, readers and maintenance agree on them.
pub mod app_id {
    /// The ids of a landing source's files start with this.
    pub fn landing_prefix(source: &str) -> String {
        format!("ingesta/landing/{source}/")
    }

    /// One landing file, by its path, size and modification time.
    pub fn landing(source: &str, path: &str, size: u64, mtime_ms: i64) -> String {
        format!("{}{path}@{size}:{mtime_ms}", landing_prefix(source))
    }

    /// The ids of topic partitions start with this.
    pub const KAFKA_PREFIX: &str = "ingesta/kafka/";

    /// One partition of a topic: its last offset.
    pub fn kafka(topic: &str, partition: i32) -> String {
        format!("{KAFKA_PREFIX}{topic}/{partition}")
    }

    /// An HTTP collector source: the last event number.
    pub fn http(source: &str) -> String {
        format!("ingesta/http/{source}")
    }

    /// A PostgreSQL slot: the commit LSN of the last change held.
    pub fn pg_lsn(slot: &str) -> String {
        format!("ingesta/pgcdc/{slot}/lsn")
    }

    /// A PostgreSQL slot: the last change's ordinal in its transaction
    /// (recorded with [`pg_lsn`]; a large transaction commits in parts).
    pub fn pg_ordinal(slot: &str) -> String {
        format!("ingesta/pgcdc/{slot}/ordinal")
    }

    /// A `sql` source: the highest watermark held.
    pub fn sql(source: &str) -> String {
        format!("ingesta/sql/{source}")
    }

    /// A `rest` source: how many commits of its pages the table holds (the
    /// pages' resume state is in the same commit's info).
    pub fn rest(source: &str) -> String {
        format!("ingesta/rest/{source}")
    }

    /// The ids a table records for its input table `input` start with this.
    pub fn table_prefix(input: &str) -> String {
        format!("ingesta/table/{input}/")
    }

    /// A table's input table: the last version read, with the input's
    /// identity (a rebuilt input has another).
    pub fn table(input: &str, input_id: &str) -> String {
        format!("{}{input_id}", table_prefix(input))
    }

    /// A sink's input table: the last version published.
    pub fn sink(input: &str, input_id: &str) -> String {
        format!("ingesta/sink/{input}/{input_id}")
    }

    /// The guard every compaction and merge commits, so two racing ones
    /// cannot both keep their rows.
    pub const COMPACTION: &str = "ingesta/compaction";
}

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
        app_id::landing(&self.source, &self.path, self.size, self.mtime_ms)
    }

    /// The file an application id of `source` names (the inverse of
    /// [`FileKey::app_id`]); `None` for any other id.
    pub fn from_app_id(source: &str, id: &str) -> Option<Self> {
        let rest = id.strip_prefix(&app_id::landing_prefix(source))?;
        let (path, version) = rest.rsplit_once('@')?;
        let (size, mtime) = version.split_once(':')?;
        Some(Self { source: source.into(), path: path.into(), size: size.parse().ok()?, mtime_ms: mtime.parse().ok()? })
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

    /// Tables written by earlier builds hold these ids: they never change.
    #[test]
    fn app_ids_keep_their_stored_form() {
        let file = FileKey { source: "iot".into(), path: "d/a.csv".into(), size: 10, mtime_ms: 7 };
        assert_eq!(file.app_id(), "ingesta/landing/iot/d/a.csv@10:7");
        assert_eq!(app_id::kafka("orders", 3), "ingesta/kafka/orders/3");
        assert_eq!(app_id::http("clicks"), "ingesta/http/clicks");
        assert_eq!(app_id::rest("orders"), "ingesta/rest/orders");
        assert_eq!(app_id::table("bronze", "abc"), "ingesta/table/bronze/abc");
        assert_eq!(app_id::sink("gold", "abc"), "ingesta/sink/gold/abc");
        assert_eq!(app_id::COMPACTION, "ingesta/compaction");
    }

    #[test]
    fn app_id_changes_when_the_file_is_rewritten() {
        let a = FileKey { source: "iot".into(), path: "a.csv".into(), size: 10, mtime_ms: 1 };
        let b = FileKey { size: 11, ..a.clone() };
        assert_ne!(a.app_id(), b.app_id());
    }

    #[test]
    fn a_file_is_read_back_from_its_app_id() {
        let a = FileKey { source: "iot".into(), path: "d/x@y.csv".into(), size: 10, mtime_ms: -3 };
        assert_eq!(FileKey::from_app_id("iot", &a.app_id()), Some(a.clone()));
        assert_eq!(FileKey::from_app_id("other", &a.app_id()), None);
        assert_eq!(FileKey::from_app_id("iot", &app_id::kafka("iot", 1)), None);
    }
}
