//! The rows of the data files this process wrote lately, kept in memory as
//! they were written (decision 0019). In a long-running pipeline each table
//! reads what the one before it just wrote: silver checks the new bronze
//! file, gold reads silver's copy of it and the gold file its last merge
//! wrote. Each of those reads decoded Parquet it had encoded a moment before
//! (a cost every small append paid); from here they are a lookup.
//!
//! A data file never changes once written (a new one has a new name), so
//! its rows stay right for as long as it is kept. Files are kept by their
//! URL (the table's root and the path the log gives), the oldest forgotten
//! first past [`KEPT`] bytes; a commit of more than [`KEEP_MAX`] bytes of
//! rows keeps nothing. A copy of a file by the store (`copy.rs`) is the same
//! rows under a second URL. A file is read from the store as before when it
//! is not here: written by another process, before this one started, or
//! forgotten. The cache belongs to the `Lake` (every table opened from it
//! shares it) and lives as long as the lake does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use arrow_array::{BooleanArray, RecordBatch, Scalar};
use deltalake::kernel::Add;
use url::Url;

/// Bytes of rows kept in all, at most.
pub(crate) const KEPT: usize = 64 << 20;

/// Rows of one writer (or merge) larger than this are not kept.
pub(crate) const KEEP_MAX: usize = 16 << 20;

/// The rows of one data file, as the table's columns (its partition columns too).
pub(crate) type Rows = Arc<Vec<RecordBatch>>;

#[derive(Default)]
struct Recent {
    files: HashMap<String, Rows>,
    /// Keys in the order they were kept, with their bytes.
    order: VecDeque<(String, usize)>,
    bytes: usize,
}

/// A lake's cache of recently written rows (clones share it).
#[derive(Clone, Default)]
pub(crate) struct RecentFiles(Arc<Mutex<Recent>>);

/// The key of the data file at `path` (as the log gives it) of the table at `root`.
pub(crate) fn key(root: &Url, path: &str) -> String {
    format!("{}/{path}", root.as_str().trim_end_matches('/'))
}

impl std::fmt::Debug for RecentFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files = self.0.lock().map(|r| r.files.len()).unwrap_or(0);
        f.debug_struct("RecentFiles").field("files", &files).finish()
    }
}

impl RecentFiles {
    /// The rows of the file at `key`, when this process wrote it lately.
    pub(crate) fn get(&self, key: &str) -> Option<Rows> {
        self.0.lock().expect("recent files").files.get(key).cloned()
    }

    /// Keeps the rows of the file at `to` as those of the file at `from` (a copy of it).
    pub(crate) fn alias(&self, from: &str, to: &str) {
        let mut recent = self.0.lock().expect("recent files");
        if let Some(rows) = recent.files.get(from).cloned() {
            let bytes = size(&rows);
            recent.keep(to.to_string(), rows, bytes);
        }
    }

    /// Keeps the rows of each of `adds`, data files of the table at `root` that
    /// were written from `batches` (the table's columns, `parts` its partition
    /// columns): a file's rows are the batches' rows with its partition values.
    /// A file that shares its partition values with another of `adds` (a
    /// partition split over files), or whose row count is not the one its
    /// statistics give, is not kept.
    pub(crate) fn remember(&self, root: &Url, parts: &[String], adds: &[Add], batches: &[RecordBatch]) {
        let bytes: usize = batches.iter().map(RecordBatch::get_array_memory_size).sum();
        if adds.is_empty() || bytes > KEEP_MAX {
            return;
        }
        for add in adds {
            if adds.iter().filter(|a| a.partition_values == add.partition_values).count() > 1 {
                continue;
            }
            let Some(rows) = rows_of(add, parts, batches) else { continue };
            let counted: usize = rows.iter().map(RecordBatch::num_rows).sum();
            if stats_rows(add) != Some(counted) {
                tracing::debug!(file = %add.path, counted, "a written file's rows do not match its statistics; not kept");
                continue;
            }
            let rows = Arc::new(rows);
            let bytes = size(&rows);
            self.0.lock().expect("recent files").keep(key(root, &add.path), rows, bytes);
        }
    }
}

/// The rows a writer wrote, kept while they are at most [`KEEP_MAX`] bytes.
pub(crate) struct Written {
    batches: Option<Vec<RecordBatch>>,
    bytes: usize,
}

impl Written {
    pub(crate) fn new() -> Self {
        Self { batches: Some(Vec::new()), bytes: 0 }
    }

    /// Notes `batch`, about to be written.
    pub(crate) fn push(&mut self, batch: &RecordBatch) {
        let Some(batches) = &mut self.batches else { return };
        self.bytes += batch.get_array_memory_size();
        batches.push(batch.clone());
        if self.bytes > KEEP_MAX {
            self.batches = None;
        }
    }

    /// Keeps the rows of `adds`, the files the batches went to, in `recent`
    /// ([`RecentFiles::remember`]).
    pub(crate) fn remember(self, recent: &RecentFiles, root: &Url, parts: &[String], adds: &[Add]) {
        if let Some(batches) = self.batches {
            recent.remember(root, parts, adds, &batches);
        }
    }
}

/// The rows of `batches` whose partition columns hold `add`'s values.
fn rows_of(add: &Add, parts: &[String], batches: &[RecordBatch]) -> Option<Vec<RecordBatch>> {
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let mut mask: Option<BooleanArray> = None;
        for p in parts {
            let column = b.column_by_name(p)?;
            let value = add.partition_values.get(p)?.as_deref();
            let wanted = crate::shared::constant(value, column.data_type(), 1).ok()?;
            let same = arrow_ord::cmp::not_distinct(column, &Scalar::new(wanted)).ok()?;
            mask = Some(match mask {
                Some(m) => arrow_arith::boolean::and(&m, &same).ok()?,
                None => same,
            });
        }
        match mask {
            None => out.push(b.clone()),
            Some(m) if m.true_count() == b.num_rows() => out.push(b.clone()),
            Some(m) if m.true_count() == 0 => {}
            Some(m) => out.push(arrow_select::filter::filter_record_batch(b, &m).ok()?),
        }
    }
    Some(out)
}

/// The rows a file's statistics give.
fn stats_rows(add: &Add) -> Option<usize> {
    crate::shared::stats_records(add.stats.as_deref()?)
}

fn size(rows: &Rows) -> usize {
    rows.iter().map(RecordBatch::get_array_memory_size).sum()
}

impl Recent {
    fn keep(&mut self, key: String, rows: Rows, bytes: usize) {
        if bytes > KEPT || self.files.contains_key(&key) {
            return;
        }
        while self.bytes + bytes > KEPT {
            let Some((old, b)) = self.order.pop_front() else { break };
            self.files.remove(&old);
            self.bytes -= b;
        }
        self.files.insert(key.clone(), rows);
        self.order.push_back((key, bytes));
        self.bytes += bytes;
    }
}
