//! The data files of one append, encoded on one or several threads. Parquet
//! encoding is most of a transform's work and one writer keeps one core busy,
//! so a table may take several writers (`LakeTable::with_parallel_writers`):
//! the staged batches go round-robin to them, each on its own blocking
//! thread. A writer is added for every `SPLIT_ROWS` rows staged, so a small
//! commit still makes one file and a large one uses every core.
//!
//! Rows arrive mostly in partition order (a landing file covers a stretch of
//! time, a transform reads files partition by partition), so a batch's runs of
//! equal partition values go to their partition as slices; delta-rs's own
//! split copies every column of every batch to group its rows, and is left
//! the batches whose rows are mixed.

use arrow_array::{ArrayRef, RecordBatch};
use delta_kernel::expressions::Scalar;
use deltalake::DeltaTableError;
use deltalake::kernel::Add;
use deltalake::kernel::scalars::ScalarExt;
use deltalake::writer::{DeltaWriter, RecordBatchWriter, WriteMode};
use indexmap::IndexMap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use url::Url;

use crate::recent::{RecentFiles, Written};

/// One more writer (and file) for every this many rows of a commit.
const SPLIT_ROWS: u64 = 256 * 1024;

/// Batches sent to a writer that it has not encoded yet.
const QUEUE: usize = 2;

/// A batch with more runs of partition values than this is split by delta-rs.
const MAX_RUNS: usize = 16;

enum Msg {
    Batch(RecordBatch),
    /// Write the last files and return their `add` actions.
    Finish,
}

struct Lane {
    tx: mpsc::Sender<Msg>,
    done: JoinHandle<Result<Vec<Add>, DeltaTableError>>,
}

/// Writers of one commit's data files. Dropped without `finish`, the writers
/// stop and flush nothing more.
pub(crate) struct Writers {
    /// The table's root: each writer keeps the rows of its files (`recent.rs`).
    root: Url,
    recent: RecentFiles,
    lanes: Vec<Lane>,
    max: usize,
    next: usize,
    rows: u64,
}

impl Writers {
    pub(crate) fn new(max: usize, root: Url, recent: RecentFiles) -> Self {
        Self { root, recent, lanes: Vec::new(), max: max.max(1), next: 0, rows: 0 }
    }

    /// Hands `batch` to a writer, starting one with `open` when the commit
    /// has grown by `SPLIT_ROWS` since the last one started.
    pub(crate) async fn write(
        &mut self,
        batch: RecordBatch,
        open: impl FnOnce() -> Result<(RecordBatchWriter, Vec<String>), DeltaTableError>,
    ) -> Result<(), DeltaTableError> {
        if self.lanes.len() < self.max && self.rows >= self.lanes.len() as u64 * SPLIT_ROWS {
            let (writer, partitions) = open()?;
            self.lanes.push(Lane::start(writer, partitions, self.root.clone(), self.recent.clone()));
        }
        self.rows += batch.num_rows() as u64;
        let i = self.next % self.lanes.len();
        self.next += 1;
        if self.lanes[i].tx.send(Msg::Batch(batch)).await.is_err() {
            // the writer stopped on an error: that error is the answer
            let lane = self.lanes.swap_remove(i);
            return Err(lane.join().await.err().unwrap_or_else(|| stopped("stopped early")));
        }
        Ok(())
    }

    /// Writes the remaining files and returns every writer's `add` actions.
    pub(crate) async fn finish(self) -> Result<Vec<Add>, DeltaTableError> {
        for lane in &self.lanes {
            // a writer that stopped on an error reports it at join
            let _ = lane.tx.send(Msg::Finish).await;
        }
        let mut adds = Vec::new();
        for lane in self.lanes {
            adds.extend(lane.join().await?);
        }
        Ok(adds)
    }
}

impl Lane {
    fn start(mut writer: RecordBatchWriter, partitions: Vec<String>, root: Url, recent: RecentFiles) -> Self {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let handle = tokio::runtime::Handle::current();
        let done = tokio::task::spawn_blocking(move || {
            handle.block_on(async move {
                // the rows of its files, kept in memory (`recent.rs`)
                let mut written = Written::new();
                while let Some(msg) = rx.recv().await {
                    match msg {
                        Msg::Batch(b) => {
                            written.push(&b);
                            write(&mut writer, &partitions, b).await?
                        }
                        Msg::Finish => {
                            let adds = writer.flush().await?;
                            written.remember(&recent, &root, &partitions, &adds);
                            return Ok(adds);
                        }
                    }
                }
                // dropped without finish: the commit was abandoned
                Ok(Vec::new())
            })
        });
        Self { tx, done }
    }

    async fn join(self) -> Result<Vec<Add>, DeltaTableError> {
        drop(self.tx);
        self.done.await.map_err(|e| stopped(&e.to_string()))?
    }
}

/// Writes `batch`, each run of rows with equal partition values as a slice
/// straight to its partition.
async fn write(
    writer: &mut RecordBatchWriter,
    partitions: &[String],
    batch: RecordBatch,
) -> Result<(), DeltaTableError> {
    let columns: Option<Vec<_>> = partitions.iter().map(|p| batch.column_by_name(p).cloned()).collect();
    let runs = match columns.as_deref() {
        Some(columns) if !columns.is_empty() => arrow_ord::partition::partition(columns)?.ranges(),
        _ => Vec::new(),
    };
    let Some(columns) = columns.filter(|_| !runs.is_empty() && runs.len() <= MAX_RUNS) else {
        return writer.write(batch).await;
    };
    for run in runs {
        let values = partition_values(partitions, &columns, run.start)?;
        writer.write_partition(batch.slice(run.start, run.len()), &values, WriteMode::Default).await?;
    }
    Ok(())
}

/// The partition values of row `row`, given the partition `columns` (named `partitions`).
pub(crate) fn partition_values(
    partitions: &[String],
    columns: &[ArrayRef],
    row: usize,
) -> Result<IndexMap<String, Scalar>, DeltaTableError> {
    let mut values = IndexMap::new();
    for (name, column) in partitions.iter().zip(columns) {
        let value = ScalarExt::from_array(column.as_ref(), row)
            .ok_or_else(|| DeltaTableError::Generic(format!("partition column `{name}`: unsupported value")))?;
        values.insert(name.clone(), value);
    }
    Ok(values)
}

fn stopped(why: &str) -> DeltaTableError {
    DeltaTableError::Generic(format!("a data-file writer {why}"))
}
