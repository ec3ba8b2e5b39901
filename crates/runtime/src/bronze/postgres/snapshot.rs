//! The initial copy: the published tables (a large one in key ranges)
//! copied under the new slot's snapshot, `copy_connections` at a time, staged as they arrive and made
//! visible in one commit whose position is the slot's consistent point, so a
//! crash during the copy leaves nothing (the rerun drops the slot and copies
//! again) and the stream takes over exactly where the copy ends.

use std::time::Instant;

use ingesta_core::{Error, TableStore, WriteMode};
use ingesta_pgcdc::{Row, Tx, slot, snapshot};
use tokio::sync::mpsc;

use super::columns::{Placed, assemble};
use super::{CdcTask, Place, Worker, positions};
use crate::bronze::{self, Batch};

/// Rows per chunk sent by a copying connection (and per staged batch).
const CHUNK: usize = 16_384;

/// Copies every published table; the place the commit recorded.
pub(super) async fn copy(task: &CdcTask, w: &mut Worker) -> Result<Place, Error> {
    let started = Instant::now();
    let conn = task.source.connect().await?;
    let names = slot::published_tables(&conn.client, &task.source.publication).await?;
    let mut parts = Vec::with_capacity(names.len());
    for n in &names {
        let rel = slot::relation(&conn.client, n).await?;
        parts.extend(snapshot::parts(&conn.client, rel, task.copy_connections).await?);
    }
    conn.release();
    let exported = snapshot::create_slot(task.source.replication()?).await?;
    let point = exported.consistent_point;
    let (send, mut receive) = mpsc::channel::<Vec<Row>>(2);
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(task.copy_connections.max(1)));
    let mut copies = tokio::task::JoinSet::new();
    for part in parts {
        let (source, name, send, gate) = (task.source.clone(), exported.snapshot.clone(), send.clone(), gate.clone());
        copies.spawn(async move {
            let _turn = gate.acquire_owned().await.map_err(|_| Error::stop("the copy was cancelled"))?;
            let conn = source.connect().await?;
            let n = snapshot::copy_part(&conn.client, &name, &part, CHUNK, &send).await?;
            conn.release();
            tracing::info!(table = %part.table.qualified(), range = ?part.range, rows = n, "copied");
            Ok::<u64, Error>(n)
        });
    }
    drop(send);
    // every snapshot row is placed at the consistent point, numbered in copy order
    let tx = Tx { commit_lsn: point, xid: 0, commit_ts_us: chrono::Utc::now().timestamp_micros() };
    let (ingested_at, batch_id) = (chrono::Utc::now().timestamp_micros(), uuid::Uuid::new_v4().to_string());
    let t = &mut w.tables;
    let mut staged = t.bronze.begin(&WriteMode::Append)?;
    let mut n: u32 = 0;
    while let Some(chunk) = receive.recv().await {
        let placed: Vec<Placed> = chunk
            .into_iter()
            .map(|row| {
                n = n.saturating_add(1);
                Placed { row, lsn: point.0, tx, ordinal: n }
            })
            .collect();
        t.bronze.stage(&mut staged, assemble(&t.schema, &placed, ingested_at, &batch_id)).await?;
        w.progress.show(&task.name, u64::from(n), 0, 0, started);
    }
    while let Some(done) = copies.join_next().await {
        done.map_err(|e| Error::stop(format!("a copying task failed: {e}")))??;
    }
    let place = (point.0, n);
    let b = Batch::clean(staged, u64::from(n), positions(&task.source.slot, place), batch_id, ingested_at);
    bronze::commit(&mut t.bronze, &mut t.quarantine, b).await?;
    drop(exported);
    tracing::info!(table = %task.name, rows = n, consistent_point = %point, elapsed = ?started.elapsed(), "initial copy committed");
    w.report.rows += u64::from(n);
    w.report.commits += 1;
    w.progress.committed();
    Ok(place)
}
