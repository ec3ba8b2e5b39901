//! The log's writer: one thread takes every request waiting, numbers their
//! events, writes their frames and fsyncs once for all of them (group
//! commit), then answers each request. A failed write is cut off again, so
//! the log never holds a frame that was not acknowledged as written.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::keys::{Keys, Remembered};
use super::{Frame, segment_path};

/// Requests waiting for the writer beyond this are answered 429.
const QUEUE: usize = 1024;
/// One write holds at most this many bytes of frames.
const GROUP_BYTES: usize = 32 << 20;

/// One request's events, ready to be logged.
pub struct Batch {
    /// One JSON object per line, no trailing newline.
    pub events: Vec<u8>,
    pub count: u32,
    pub request: String,
    pub received_at_us: i64,
    /// The client's `Idempotency-Key`: a key seen within the window is
    /// answered with its first answer, nothing written.
    pub key: Option<String>,
}

/// The event numbers a logged request got.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub first: i64,
    pub last: i64,
    pub count: u32,
    /// The id of the request that wrote the events (an earlier one when replayed).
    pub request: String,
    /// The key was seen before: these are the first request's events.
    pub replayed: bool,
}

#[derive(Debug)]
pub enum AppendError {
    /// Too many requests are waiting: try again shortly.
    Busy,
    /// The log is closed (shutting down).
    Closed,
    /// The write failed (disk full, I/O error); nothing of the request is logged.
    Failed(String),
}

/// What the writer and the table's committer share.
pub struct Shared {
    /// The last event number written and fsynced.
    pub durable: AtomicI64,
    /// Bytes logged (since the log was opened, plus the backlog found then).
    pub written: AtomicU64,
    /// Bytes the table has taken.
    pub committed: AtomicU64,
}

type Job = (Batch, oneshot::Sender<Result<Accepted, String>>);

/// A handle to the log: append requests, see what is durable and pending.
#[derive(Clone)]
pub struct Appender {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl Appender {
    /// Logs `batch`; returns once it is on disk.
    pub async fn append(&self, batch: Batch) -> Result<Accepted, AppendError> {
        let (tx, rx) = oneshot::channel();
        self.tx.try_send((batch, tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AppendError::Busy,
            mpsc::error::TrySendError::Closed(_) => AppendError::Closed,
        })?;
        rx.await.map_err(|_| AppendError::Closed)?.map_err(AppendError::Failed)
    }

    /// The last event number on disk (-1 when none).
    pub fn durable(&self) -> i64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// Bytes logged that the table has not taken yet.
    pub fn pending_bytes(&self) -> u64 {
        let w = self.shared.written.load(Ordering::Relaxed);
        w.saturating_sub(self.shared.committed.load(Ordering::Relaxed))
    }

    /// Called by the committer: the table took `bytes` more of the log.
    pub fn taken(&self, bytes: u64) {
        self.shared.committed.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

pub(super) fn start(
    dir: PathBuf,
    lock: File,
    next: i64,
    backlog: u64,
    segment_bytes: u64,
    keys: Keys,
) -> Result<Appender, String> {
    let shared = Arc::new(Shared {
        durable: AtomicI64::new(next - 1),
        written: AtomicU64::new(backlog),
        committed: AtomicU64::new(0),
    });
    let (tx, rx) = mpsc::channel(QUEUE);
    let seg = Segment::create(&dir, next)?;
    let w = Writer { dir: dir.clone(), seg, next, segment_bytes, shared: shared.clone(), keys, _lock: lock };
    std::thread::Builder::new()
        .name("ingesta-wal".into())
        .spawn(move || w.run(rx))
        .map_err(|e| format!("cannot start the log writer: {e}"))?;
    Ok(Appender { tx, shared, dir })
}

struct Segment {
    file: File,
    path: PathBuf,
    len: u64,
}

impl Segment {
    /// A new, empty segment whose first event is `first` (fsyncs the folder).
    fn create(dir: &Path, first: i64) -> Result<Segment, String> {
        let path = segment_path(dir, first);
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
        Ok(Segment { file, path, len: 0 })
    }
}

struct Writer {
    dir: PathBuf,
    seg: Segment,
    next: i64,
    segment_bytes: u64,
    shared: Arc<Shared>,
    /// The idempotency keys of the window.
    keys: Keys,
    /// Held for as long as the log is written.
    _lock: File,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut buf = Vec::with_capacity(1 << 20);
        while let Some(job) = rx.blocking_recv() {
            let mut group = vec![job];
            let mut bytes = group[0].0.events.len();
            while bytes < GROUP_BYTES {
                match rx.try_recv() {
                    Ok(job) => {
                        bytes += job.0.events.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            if let Err(e) = self.roll_if_full() {
                tracing::error!(error = %e, "cannot start a new log segment");
                group.into_iter().for_each(|(_, reply)| drop(reply.send(Err(e.clone()))));
                continue;
            }
            buf.clear();
            let mut replies = Vec::with_capacity(group.len());
            let mut fresh: Vec<Remembered> = Vec::new();
            let mut next = self.next;
            let now = chrono_now_us();
            for (batch, reply) in group {
                let seen = batch
                    .key
                    .as_deref()
                    .and_then(|k| self.keys.get(k, now).or_else(|| fresh.iter().find(|r| r.key == k)).cloned());
                if let Some(r) = seen {
                    let acc =
                        Accepted { first: r.first, last: r.last, count: r.count, request: r.request, replayed: true };
                    replies.push((reply, acc));
                    continue;
                }
                let frame = Frame {
                    first: next,
                    count: batch.count,
                    received_at_us: batch.received_at_us,
                    request: batch.request,
                    key: batch.key,
                    events: batch.events,
                };
                frame.encode(&mut buf);
                let (first, last) = (next, frame.last());
                let acc = Accepted { first, last, count: frame.count, request: frame.request.clone(), replayed: false };
                if let Some(key) = frame.key {
                    let at = frame.received_at_us;
                    fresh.push(Remembered { key, first, last, count: frame.count, request: frame.request, at });
                }
                replies.push((reply, acc));
                next = last + 1;
            }
            match self.write(&buf) {
                Ok(()) => {
                    self.next = next;
                    self.shared.written.fetch_add(buf.len() as u64, Ordering::Relaxed);
                    self.shared.durable.store(next - 1, Ordering::Release);
                    fresh.into_iter().for_each(|r| self.keys.insert(r, now));
                    crate::failpoint("collector-after-fsync");
                    replies.into_iter().for_each(|(reply, acc)| drop(reply.send(Ok(acc))));
                }
                Err(e) => {
                    tracing::error!(segment = %self.seg.path.display(), error = %e, "cannot write the collector log; the requests are refused");
                    replies.into_iter().for_each(|(reply, _)| drop(reply.send(Err(e.clone()))));
                }
            }
        }
    }

    /// Appends and fsyncs; on failure cuts the segment back to where it was.
    fn write(&mut self, buf: &[u8]) -> Result<(), String> {
        let done = self.seg.file.write_all(buf).and_then(|()| self.seg.file.sync_data());
        match done {
            Ok(()) => {
                self.seg.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.seg.file.set_len(self.seg.len);
                let _ = std::io::Seek::seek(&mut self.seg.file, std::io::SeekFrom::Start(self.seg.len));
                Err(format!("{}: {e}", self.seg.path.display()))
            }
        }
    }

    fn roll_if_full(&mut self) -> Result<(), String> {
        if self.seg.len >= self.segment_bytes {
            self.seg = Segment::create(&self.dir, self.next)?;
        }
        Ok(())
    }
}

fn chrono_now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}
