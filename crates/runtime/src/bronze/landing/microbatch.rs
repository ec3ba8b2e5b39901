//! Cutting the chunks that workers read into micro-batches and committing each
//! with the positions of the files it covers: quarantine first, then the table,
//! so a crash between the two never loses a bad record nor duplicates a good one.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ingesta_config::{Partition, Table};
use ingesta_core::{Error, Progress as Pos, QuarantineRecord, Reason, TableStore, WriteMode};
use ingesta_lake::Staged;
use ingesta_sources::Landing;
use ingesta_sources::decode::{Chunk, ReadCtx, Stopped};
use ingesta_sources::schema::RecordSchema;
use tokio::sync::mpsc;

use crate::bronze::enrich::{Enriched, assemble, enrich};
use crate::bronze::landing::Work;
use crate::bronze::{self, Batch, Tables};
use crate::report::{Progress, TableReport};

/// Rows per chunk a worker hands over. CSV types a chunk in one part, so a
/// chunk's columns are the memory a worker holds at once: 32k rows keep the
/// CSV benchmark's peak RSS lower than 128k rows do, at the same speed
/// (bench/README.md).
const CHUNK_ROWS: usize = 32 * 1024;

enum Msg {
    Chunk {
        app_id: String,
        enriched: Enriched,
        quarantine: Vec<QuarantineRecord>,
        last: i64,
        done: bool,
        bytes: u64,
        /// The quarantine table's version for the file when the run started.
        quarantine_floor: i64,
    },
    Failed {
        path: String,
        error: String,
    },
}

/// One micro-batch being gathered.
struct Pending {
    staged: Staged,
    quarantine: Vec<QuarantineRecord>,
    positions: BTreeMap<String, Pos>,
    /// Per file: what the quarantine commit records, never below what the
    /// quarantine table already holds (an earlier run may have got further
    /// there before it stopped).
    quarantine_positions: BTreeMap<String, i64>,
    rows: u64,
    bytes: u64,
    files_done: Vec<String>,
    started: Instant,
    batch_id: String,
    ingested_at: i64,
}

/// Reads `work` on worker threads and commits it; returns the files completed.
pub(crate) async fn run(
    t: &mut Tables,
    landing: &Arc<Landing>,
    cfg: &Table,
    work: Vec<Work>,
    progress: &Progress,
    report: &mut TableReport,
) -> Result<Vec<String>, Error> {
    let (tx, mut rx) = mpsc::channel::<Msg>(4);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(work.len()).max(1);
    let queue = Arc::new(Mutex::new(VecDeque::from(work)));
    let chunk_rows = cfg.batch.max_rows.min(CHUNK_ROWS);
    let handles: Vec<_> = (0..workers)
        .map(|_| {
            let (tx, queue, landing, record) = (tx.clone(), queue.clone(), landing.clone(), t.record.clone());
            let partitions = cfg.partition_by.clone();
            std::thread::Builder::new()
                .name("ingesta-reader".into())
                .spawn(move || worker(&landing, &record, &partitions, chunk_rows, &queue, &tx))
                .expect("a reader thread starts")
        })
        .collect();
    drop(tx);

    let started = Instant::now();
    let mut completed = Vec::new();
    let mut pending: Option<Pending> = None;
    loop {
        let msg = match &pending {
            None => rx.recv().await,
            Some(p) => {
                let left = cfg.batch.wait().saturating_sub(p.started.elapsed());
                match tokio::time::timeout(left, rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => {
                        commit(t, pending.take().expect("pending"), report, &mut completed).await?;
                        continue;
                    }
                }
            }
        };
        let Some(msg) = msg else { break };
        match msg {
            Msg::Failed { path, error } => {
                tracing::warn!(table = %report.table, file = %path, %error, "cannot open file; it will be tried again");
                report.failed.push((path, error));
            }
            Msg::Chunk { app_id, enriched, quarantine, last, done, bytes, quarantine_floor } => {
                let p = match &mut pending {
                    Some(p) => p,
                    None => pending.insert(Pending {
                        staged: t.bronze.begin(&WriteMode::Append)?,
                        quarantine: Vec::new(),
                        positions: BTreeMap::new(),
                        quarantine_positions: BTreeMap::new(),
                        rows: 0,
                        bytes: 0,
                        files_done: Vec::new(),
                        started: Instant::now(),
                        batch_id: uuid::Uuid::new_v4().to_string(),
                        ingested_at: chrono::Utc::now().timestamp_micros(),
                    }),
                };
                let batch = assemble(&t.schema, &enriched, p.ingested_at, &p.batch_id);
                p.rows += batch.num_rows() as u64;
                p.bytes += bytes;
                t.bronze.stage(&mut p.staged, batch).await?;
                p.quarantine.extend(quarantine);
                let pos = Pos { last, done };
                p.positions.insert(app_id.clone(), pos);
                p.quarantine_positions.insert(app_id.clone(), pos.encode().max(quarantine_floor));
                if done {
                    p.files_done.push(app_id);
                }
                progress.show(
                    &report.table,
                    report.rows + p.rows,
                    report.quarantined + p.quarantine.len() as u64,
                    report.bytes + p.bytes,
                    started,
                );
                if p.rows >= cfg.batch.max_rows as u64 || p.bytes >= cfg.batch.max_bytes.0 {
                    commit(t, pending.take().expect("pending"), report, &mut completed).await?;
                }
            }
        }
    }
    if let Some(p) = pending.take() {
        commit(t, p, report, &mut completed).await?;
    }
    for h in handles {
        h.join().map_err(|_| Error::stop("a reader thread panicked"))?;
    }
    Ok(completed)
}

async fn commit(
    t: &mut Tables,
    p: Pending,
    report: &mut TableReport,
    completed: &mut Vec<String>,
) -> Result<(), Error> {
    let (rows, quarantined) = (p.rows, p.quarantine.len() as u64);
    let batch = Batch {
        staged: p.staged,
        rows,
        positions: p.positions.iter().map(|(id, pos)| (id.clone(), pos.encode())).collect(),
        quarantine: p.quarantine,
        quarantine_positions: p.quarantine_positions.into_iter().collect(),
        expect: None,
        batch_id: p.batch_id,
        ingested_at: p.ingested_at,
    };
    // without expected positions a commit is never refused (`Committed::Moved`)
    bronze::commit(&mut t.bronze, &mut t.quarantine, batch).await?;
    report.rows += rows;
    report.quarantined += quarantined;
    report.bytes += p.bytes;
    report.files += p.files_done.len() as u64;
    report.commits += 1;
    completed.extend(p.files_done);
    Ok(())
}

fn worker(
    landing: &Landing,
    record: &RecordSchema,
    partitions: &[Partition],
    chunk_rows: usize,
    queue: &Mutex<VecDeque<Work>>,
    tx: &mpsc::Sender<Msg>,
) {
    loop {
        let Some(w) = queue.lock().expect("queue").pop_front() else { return };
        let app_id = w.file.key.app_id();
        let path = w.file.key.path.clone();
        let mut emit = |c: Chunk| {
            let enriched = enrich(c.rows, &path, &c.positions, partitions);
            let msg = Msg::Chunk {
                app_id: app_id.clone(),
                enriched,
                quarantine: c.quarantine,
                last: c.last,
                done: c.done,
                bytes: c.bytes,
                quarantine_floor: w.quarantine_version,
            };
            tx.blocking_send(msg).map_err(|_| Stopped)
        };
        if let Some(problem) = &w.file.problem {
            if emit(unreadable(&w, record, problem)).is_err() {
                return;
            }
            continue;
        }
        let ctx = ReadCtx {
            source: &path,
            schema: record,
            skip_until: w.skip_until,
            quarantined_until: w.quarantined_until(),
            chunk_rows,
            max_record_bytes: landing.config.max_record_bytes.0 as usize,
        };
        match landing.read(&w.file, &ctx, &mut emit) {
            Ok(Ok(())) => {}
            Ok(Err(Stopped)) => return,
            Err(e) => {
                let msg = Msg::Failed { path: path.clone(), error: e.to_string() };
                if tx.blocking_send(msg).is_err() {
                    return;
                }
            }
        }
    }
}

/// A file that cannot be read at all (unknown format): one quarantine record.
fn unreadable(w: &Work, record: &RecordSchema, problem: &str) -> Chunk {
    let q = (w.quarantined_until() < 1).then(|| QuarantineRecord {
        source: w.file.key.path.clone(),
        position: 1,
        reason: Reason::File,
        error: problem.to_string(),
        raw: Vec::new(),
    });
    Chunk {
        rows: arrow_array::RecordBatch::new_empty(record.schema.clone()),
        positions: Vec::new(),
        quarantine: q.into_iter().collect(),
        last: 1,
        done: true,
        bytes: 0,
    }
}
