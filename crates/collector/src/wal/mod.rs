//! The collector's write-ahead log: a folder of segments named by the number
//! of their first event (`00000000000000000042.wal`), each a run of frames
//! (one accepted request each). Event numbers run on across segments and
//! restarts; the table records the last number it holds, so the log is
//! replayed from there after a crash and segments the table fully holds are
//! deleted — or, with an archive retention, kept until they are that old, so
//! the table can be rebuilt from them. A `LOCK` file keeps a second process
//! off the folder.
//!
//! Only the last segment can end in a torn frame (the process died while
//! writing it, before it was acknowledged); opening the log cuts it off.

mod frame;
mod keys;
mod reader;
mod writer;

use std::fs::{self, File, OpenOptions};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use frame::Frame;
pub use keys::Remembered;
pub use reader::{Limit, Reader};
pub use writer::{AppendError, Appender, Batch};

use frame::{Next, read_frame};

/// A segment is closed and a new one started past this size.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// How long an `Idempotency-Key` is remembered (see `keys`).
pub const KEY_WINDOW: Duration = Duration::from_secs(15 * 60);

/// An opened log: recovered, locked, not yet written to.
pub struct Wal {
    dir: PathBuf,
    lock: File,
    /// The next event number to hand out.
    next: i64,
    /// Bytes of frames the table does not hold yet.
    backlog: u64,
    segment_bytes: u64,
    keys: keys::Keys,
}

impl Wal {
    /// Opens (creating) the log in `dir`, given the last event number the
    /// table holds (-1 for none): cuts a torn tail, deletes segments the
    /// table holds, and finds where numbering goes on.
    pub fn open(dir: &Path, committed: i64) -> Result<Wal, String> {
        Wal::open_archived(dir, committed, None)
    }

    /// [`Wal::open`], keeping segments the table holds until they are older
    /// than `archive` (none: deleted at once).
    pub fn open_archived(dir: &Path, committed: i64, archive: Option<Duration>) -> Result<Wal, String> {
        fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the collector log folder {}: {e}", dir.display()))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(|e| format!("cannot open {}: {e}", dir.join("LOCK").display()))?;
        if lock.try_lock().is_err() {
            return Err(format!(
                "another Ingesta process is using the collector log {}; one process per source",
                dir.display()
            ));
        }
        release(dir, committed, archive)?;
        let keys = keys::Keys::load(dir, KEY_WINDOW, now_us())?;
        let segments = segments(dir)?;
        let (mut next, mut backlog) = (committed + 1, 0u64);
        for (i, (_, path)) in segments.iter().enumerate() {
            let last_segment = i + 1 == segments.len();
            // a segment the table holds whole (kept by the archive) is not read:
            // the numbering goes on from a later one, and none of it is backlog
            if segments.get(i + 1).is_some_and(|(next_first, _)| *next_first <= committed + 1) {
                continue;
            }
            let mut r = BufReader::new(File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?);
            let mut good = 0u64;
            loop {
                match read_frame(&mut r).map_err(|e| format!("cannot read {}: {e}", path.display()))? {
                    Next::Frame(f, size) => {
                        good += size;
                        next = next.max(f.last() + 1);
                        if f.last() > committed {
                            backlog += size;
                        }
                    }
                    Next::End => break,
                    Next::Torn(why) if last_segment => {
                        tracing::warn!(segment = %path.display(), offset = good, %why, "cutting a write the process died during (it was never acknowledged)");
                        let f = OpenOptions::new()
                            .write(true)
                            .open(path)
                            .map_err(|e| format!("cannot cut {}: {e}", path.display()))?;
                        f.set_len(good)
                            .and_then(|()| f.sync_all())
                            .map_err(|e| format!("cannot cut {}: {e}", path.display()))?;
                        break;
                    }
                    Next::Torn(why) => {
                        return Err(format!(
                            "the collector log is damaged: {} at byte {good}: {why}; move the segment away to go on (its events after that point are lost)",
                            path.display()
                        ));
                    }
                }
            }
            if good == 0 && last_segment {
                let _ = fs::remove_file(path);
            }
        }
        Ok(Wal { dir: dir.to_path_buf(), lock, next: next.max(0), backlog, segment_bytes: SEGMENT_BYTES, keys })
    }

    /// The last event number in the log (-1 when it never held one).
    pub fn last(&self) -> i64 {
        self.next - 1
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Segments are closed past this size (default [`SEGMENT_BYTES`]).
    pub fn with_segment_bytes(mut self, bytes: u64) -> Wal {
        self.segment_bytes = bytes;
        self
    }

    /// Starts the writer thread; the log is written through the returned handle.
    pub fn start(self) -> Result<Appender, String> {
        writer::start(self.dir, self.lock, self.next, self.backlog, self.segment_bytes, self.keys)
    }
}

/// The segments of `dir` in order, with the number of their first event.
pub(crate) fn segments(dir: &Path) -> Result<Vec<(i64, PathBuf)>, String> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for e in entries {
        let path = e.map_err(|e| format!("cannot list {}: {e}", dir.display()))?.path();
        let first =
            path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".wal")).and_then(|n| n.parse().ok());
        if let Some(first) = first {
            out.push((first, path));
        }
    }
    out.sort();
    Ok(out)
}

pub(crate) fn segment_path(dir: &Path, first: i64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

/// Deletes the segments whose events the table holds (all numbers up to
/// `committed`) and, with an `archive` retention, that were last written
/// longer ago than it; the last segment stays, it may still be written.
pub fn release(dir: &Path, committed: i64, archive: Option<Duration>) -> Result<(), String> {
    let segs = segments(dir)?;
    for pair in segs.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        if *next_first > committed + 1 || archived(path, archive) {
            break; // later segments are newer: held later, and kept longer
        }
        keys::keep_before_delete(dir, path, KEY_WINDOW, now_us())?;
        fs::remove_file(path).map_err(|e| format!("cannot delete {}: {e}", path.display()))?;
    }
    Ok(())
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

/// Whether the archive retention still keeps the segment at `path`.
fn archived(path: &Path, archive: Option<Duration>) -> bool {
    let Some(keep) = archive else { return false };
    let modified = fs::metadata(path).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
    SystemTime::now().duration_since(modified).unwrap_or_default() < keep
}

/// The number of the first event the log still holds: events before it were
/// deleted once the table held them. `None` when the log holds no segment.
pub fn first_event(dir: &Path) -> Result<Option<i64>, String> {
    if !dir.exists() {
        return Ok(None);
    }
    Ok(segments(dir)?.first().map(|(first, _)| *first))
}

#[cfg(test)]
mod tests;
