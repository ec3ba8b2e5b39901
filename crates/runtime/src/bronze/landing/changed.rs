//! Landing files that change after they were ingested (`on_change`): the
//! latest version of each path that a table holds, and what to do with a file
//! whose path was ingested before under another size or modification time.

use std::collections::HashMap;

use ingesta_config::OnChange;
use ingesta_core::{Error, FileKey, Progress as Pos};

/// The latest ingested version of each path of a source, with how far it was read.
#[derive(Default)]
pub(crate) struct Earlier(HashMap<String, (FileKey, Pos)>);

impl Earlier {
    /// From every position a table records (other inputs' ids are passed over).
    pub fn from_positions(source: &str, positions: &HashMap<String, i64>) -> Self {
        let mut by_path: HashMap<String, (FileKey, Pos)> = HashMap::new();
        for (id, &version) in positions {
            let Some(key) = FileKey::from_app_id(source, id) else { continue };
            let newer = by_path.get(&key.path).is_none_or(|(k, _)| (key.mtime_ms, key.size) > (k.mtime_ms, k.size));
            if newer {
                by_path.insert(key.path.clone(), (key, Pos::decode(version)));
            }
        }
        Self(by_path)
    }
}

/// What to do with a file the table holds no position for.
#[derive(Debug, PartialEq)]
pub(crate) enum Plan {
    /// Read the records after this position (0: the whole file).
    Read(i64),
    /// Leave the file alone (`on_change: ignore`).
    Skip,
    /// Record the file in quarantine, unread, with this reason.
    Refuse(String),
}

pub(crate) fn plan(policy: OnChange, table: &str, file: &FileKey, earlier: &Earlier) -> Result<Plan, Error> {
    let Some((was, pos)) = earlier.0.get(&file.path) else { return Ok(Plan::Read(0)) };
    let change = format!(
        "`{}` changed after it was ingested (it had {} bytes, modified {}; it has {} bytes, modified {})",
        file.path,
        was.size,
        time(was.mtime_ms),
        file.size,
        time(file.mtime_ms)
    );
    Ok(match policy {
        OnChange::Reingest => Plan::Read(0),
        OnChange::Ignore => Plan::Skip,
        OnChange::Tail if file.size >= was.size => Plan::Read(pos.last),
        OnChange::Tail => Plan::Refuse(format!(
            "{change}: it is smaller, so it was rewritten rather than appended to; on_change: tail reads only \
             appended records, so it is not read again (on_change: reingest reads a rewritten file whole)"
        )),
        OnChange::Error => {
            return Err(Error::stop(format!(
                "table `{table}`: {change}, and the source says on_change: error. Move the file away, or set \
                 on_change to tail (read what was appended), reingest (read it again whole) or ignore"
            )));
        }
    })
}

fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(|| ms.to_string(), |t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str, size: u64, mtime_ms: i64) -> FileKey {
        FileKey { source: "iot".into(), path: path.into(), size, mtime_ms }
    }

    fn earlier(versions: &[(FileKey, Pos)]) -> Earlier {
        let mut positions: HashMap<String, i64> = versions.iter().map(|(k, p)| (k.app_id(), p.encode())).collect();
        positions.insert(ingesta_core::app_id::kafka("iot", 0), 5);
        Earlier::from_positions("iot", &positions)
    }

    #[test]
    fn a_grown_file_is_read_after_the_last_record_of_its_latest_version() {
        let done = |last| Pos { last, done: true };
        let e = earlier(&[(key("a.ndjson", 100, 1), done(10)), (key("a.ndjson", 150, 2), done(15))]);
        let grown = key("a.ndjson", 200, 3);
        assert_eq!(plan(OnChange::Tail, "t", &grown, &e).unwrap(), Plan::Read(15));
        assert_eq!(plan(OnChange::Reingest, "t", &grown, &e).unwrap(), Plan::Read(0));
        assert_eq!(plan(OnChange::Ignore, "t", &grown, &e).unwrap(), Plan::Skip);
        let stop = plan(OnChange::Error, "t", &grown, &e).unwrap_err().to_string();
        assert!(stop.contains("`a.ndjson` changed after it was ingested"), "{stop}");
        assert_eq!(plan(OnChange::Tail, "t", &key("new.ndjson", 9, 9), &e).unwrap(), Plan::Read(0));
    }

    #[test]
    fn a_smaller_file_under_tail_is_refused_and_a_half_read_one_resumes() {
        let e = earlier(&[(key("a.ndjson", 100, 1), Pos { last: 4, done: false })]);
        let Plan::Refuse(why) = plan(OnChange::Tail, "t", &key("a.ndjson", 50, 2), &e).unwrap() else {
            panic!("a smaller file is refused")
        };
        assert!(why.contains("smaller"), "{why}");
        assert_eq!(plan(OnChange::Tail, "t", &key("a.ndjson", 120, 2), &e).unwrap(), Plan::Read(4));
    }
}
