//! Idempotency keys: a client that resends a request with the same
//! `Idempotency-Key` (it lost the answer: a timeout, or the server died
//! after the fsync) gets the first answer again instead of its events twice.
//!
//! A key is written in its request's frame, so it is durable exactly when
//! the events are. The writer thread keeps every key of the last `window` in
//! memory and checks it before writing, so two requests with one key never
//! both write. When a segment is deleted (the table holds its events), the
//! keys of its frames still inside the window are appended to the `KEYS`
//! file first; opening the log reads `KEYS` (dropping expired keys) and the
//! keys of the segments left.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::frame::{Next, read_frame};

/// The first answer to a keyed request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    pub key: String,
    pub first: i64,
    pub last: i64,
    pub count: u32,
    pub request: String,
    /// When the first request came (microseconds since the epoch).
    pub at: i64,
}

/// Keys seen within the window, by key.
#[derive(Debug, Default)]
pub struct Keys {
    window_us: i64,
    map: HashMap<String, Remembered>,
    /// Inserts since the last pruning.
    inserts: usize,
}

const FILE: &str = "KEYS";

impl Keys {
    pub fn new(window: Duration) -> Keys {
        Keys { window_us: window.as_micros() as i64, ..Keys::default() }
    }

    pub fn get(&self, key: &str, now_us: i64) -> Option<&Remembered> {
        self.map.get(key).filter(|r| now_us - r.at < self.window_us)
    }

    pub fn insert(&mut self, r: Remembered, now_us: i64) {
        self.map.insert(r.key.clone(), r);
        self.inserts += 1;
        if self.inserts >= 4096 {
            self.inserts = 0;
            let window = self.window_us;
            self.map.retain(|_, r| now_us - r.at < window);
        }
    }

    /// The keys of `dir`: its `KEYS` file, then its segments' frames (the
    /// file is rewritten without expired keys).
    pub fn load(dir: &Path, window: Duration, now_us: i64) -> Result<Keys, String> {
        let mut keys = Keys::new(window);
        let path = dir.join(FILE);
        if path.exists() {
            let f = File::open(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for line in BufReader::new(f).lines() {
                let line = line.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                // a line cut by a crash was never needed: its segment was not deleted yet
                if let Ok(r) = serde_json::from_str::<Remembered>(&line)
                    && now_us - r.at < keys.window_us
                {
                    keys.map.insert(r.key.clone(), r);
                }
            }
        }
        for (_, segment) in super::segments(dir)? {
            // a segment last written before the window holds no key of it (archives can be long)
            let written = fs::metadata(&segment).and_then(|m| m.modified()).ok();
            let age_us = written.and_then(|w| w.elapsed().ok()).map_or(0, |d| d.as_micros() as i64);
            if age_us >= keys.window_us {
                continue;
            }
            for r in in_segment(&segment)? {
                if now_us - r.at < keys.window_us {
                    keys.map.insert(r.key.clone(), r);
                }
            }
        }
        // keys whose events a segment still holds are read from it next time
        let held_from = super::segments(dir)?.first().map(|(first, _)| *first);
        let kept: Vec<&Remembered> = keys.map.values().filter(|r| held_from.is_none_or(|h| r.first < h)).collect();
        rewrite(&path, &kept)?;
        Ok(keys)
    }
}

/// The keyed frames of a segment (up to a torn tail).
pub fn in_segment(path: &Path) -> Result<Vec<Remembered>, String> {
    let f = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut r = BufReader::new(f);
    let mut out = Vec::new();
    while let Next::Frame(f, _) = read_frame(&mut r).map_err(|e| format!("cannot read {}: {e}", path.display()))? {
        if let Some(key) = f.key.clone() {
            let last = f.last();
            out.push(Remembered {
                key,
                first: f.first,
                last,
                count: f.count,
                request: f.request,
                at: f.received_at_us,
            });
        }
    }
    Ok(out)
}

/// Before `segment` is deleted: its keys still inside `window` go to `KEYS` (fsynced).
pub fn keep_before_delete(dir: &Path, segment: &Path, window: Duration, now_us: i64) -> Result<(), String> {
    let window_us = window.as_micros() as i64;
    let keep: Vec<Remembered> = in_segment(segment)?.into_iter().filter(|r| now_us - r.at < window_us).collect();
    if keep.is_empty() {
        return Ok(());
    }
    let path = dir.join(FILE);
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut buf = Vec::new();
    for r in &keep {
        serde_json::to_writer(&mut buf, r).expect("a key serialises");
        buf.push(b'\n');
    }
    f.write_all(&buf).and_then(|()| f.sync_data()).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    // a long run without a restart: drop the expired keys once the file grows
    if f.metadata().map_or(0, |m| m.len()) > COMPACT_BYTES {
        let text = fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let live: Vec<Remembered> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Remembered>(l).ok())
            .filter(|r| now_us - r.at < window_us)
            .collect();
        rewrite(&path, &live.iter().collect::<Vec<_>>())?;
    }
    Ok(())
}

/// `KEYS` is rewritten without expired keys past this size.
const COMPACT_BYTES: u64 = 8 << 20;

/// Replaces `KEYS` with `kept` (written beside it, fsynced, renamed).
fn rewrite(path: &Path, kept: &[&Remembered]) -> Result<(), String> {
    if kept.is_empty() {
        return match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("cannot delete {}: {e}", path.display())),
            _ => Ok(()),
        };
    }
    let tmp = path.with_extension("tmp");
    let mut buf = Vec::new();
    for r in kept {
        serde_json::to_writer(&mut buf, r).expect("a key serialises");
        buf.push(b'\n');
    }
    let mut f = File::create(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    f.write_all(&buf).and_then(|()| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}
