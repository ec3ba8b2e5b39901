//! Reads the log in event order for the table's committer, from a cursor
//! that stays where the last read ended (a seek, by scanning one segment,
//! only when asked for another place).

use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::frame::{Next, read_frame};
use super::{Frame, segments};

pub struct Reader {
    dir: PathBuf,
    cur: Option<Cursor>,
}

struct Cursor {
    file: BufReader<File>,
    path: PathBuf,
    /// The segment's first event number.
    first: i64,
    /// Where the next frame starts.
    offset: u64,
    /// The event number the next read starts after, plus one.
    next: i64,
}

/// How much one read may take (it takes at least one frame when one is there).
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub events: u64,
    pub bytes: u64,
}

impl Reader {
    pub fn new(dir: &Path) -> Reader {
        Reader { dir: dir.to_path_buf(), cur: None }
    }

    /// Whole frames holding the events after `after`, none starting past
    /// `upto` (the last durable event), with their sizes on disk.
    pub fn read(&mut self, after: i64, upto: i64, limit: Limit) -> Result<Vec<(Frame, u64)>, String> {
        let mut out = Vec::new();
        if after >= upto {
            return Ok(out);
        }
        if self.cur.as_ref().is_none_or(|c| c.next != after + 1) && !self.seek(after)? {
            return Ok(out);
        }
        let (mut events, mut bytes) = (0u64, 0u64);
        while events < limit.events && bytes < limit.bytes {
            let c = self.cur.as_mut().expect("positioned");
            let next = read_frame(&mut c.file).map_err(|e| format!("cannot read {}: {e}", c.path.display()))?;
            match next {
                Next::Frame(f, size) if f.first <= upto => {
                    c.offset += size;
                    if f.last() <= after {
                        continue; // before the place asked for (after a seek)
                    }
                    c.next = f.last() + 1;
                    events += u64::from(f.count);
                    bytes += size;
                    let end = f.last() >= upto;
                    out.push((f, size));
                    if end {
                        break;
                    }
                }
                // not durable yet, or being written: read it next time
                Next::Frame(..) | Next::Torn(_) => {
                    c.file
                        .seek(SeekFrom::Start(c.offset))
                        .map_err(|e| format!("cannot read {}: {e}", c.path.display()))?;
                    break;
                }
                Next::End => {
                    let later = segments(&self.dir)?.into_iter().find(|(first, _)| *first > c.first);
                    let Some((first, path)) = later else { break };
                    let next = c.next;
                    self.cur = Some(open(first, path, next)?);
                }
            }
        }
        Ok(out)
    }

    /// Positions the cursor at the start of the segment holding `after + 1`;
    /// false when the log has no segment.
    fn seek(&mut self, after: i64) -> Result<bool, String> {
        let segs = segments(&self.dir)?;
        let pick = segs.iter().rev().find(|(first, _)| *first <= after + 1).or(segs.first());
        let Some((first, path)) = pick else {
            self.cur = None;
            return Ok(false);
        };
        self.cur = Some(open(*first, path.clone(), after + 1)?);
        Ok(true)
    }
}

fn open(first: i64, path: PathBuf, next: i64) -> Result<Cursor, String> {
    let file = File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(Cursor { file: BufReader::with_capacity(1 << 20, file), path, first, offset: 0, next })
}
