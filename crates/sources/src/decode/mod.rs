//! Reading one input into typed record batches. Every format first produces its
//! records as text (or its own types, for Parquet), then `coerce` converts them
//! to the table's columns; what fails goes to quarantine, never stops the file.

mod avro;
mod coerce;
pub(crate) mod csv;
mod csv_fields;
mod gather;
mod json_doc;
mod message;
mod ndjson;
mod number;
mod parquet;
mod rescue;
mod timestamp;

use arrow_array::RecordBatch;
use arrow_buffer::{BooleanBuffer, BooleanBufferBuilder, NullBuffer};
use ingesta_core::{QuarantineRecord, Reason};

use crate::schema::RecordSchema;

pub use self::avro::read_avro;
pub use self::coerce::{Typed, coerce_columns};
pub use self::csv::read_csv;
pub use self::json_doc::{read_json_doc, records as json_records};
pub use self::message::{Decoded, Raw, SchemaLookup, decode_messages, value_schema};
pub use self::ndjson::read_ndjson;
pub use self::parquet::read_parquet;

/// A piece of one input, ready to commit: the typed good rows with their
/// positions, the quarantined records, and how far the input is covered.
#[derive(Debug)]
pub struct Chunk {
    pub rows: RecordBatch,
    pub positions: Vec<i64>,
    pub quarantine: Vec<QuarantineRecord>,
    /// Every record up to this position has been read (kept or quarantined).
    pub last: i64,
    /// The input is read to its end.
    pub done: bool,
    /// Bytes of input (after decompression) this chunk covers.
    pub bytes: u64,
}

/// The reader was asked to stop (the pipeline is shutting down).
#[derive(Debug)]
pub struct Stopped;

/// What a reader needs to know about the input it reads.
pub struct ReadCtx<'a> {
    /// The input's name in `_source` and quarantine (path relative to the source folder).
    pub source: &'a str,
    pub schema: &'a RecordSchema,
    /// Records at or before this position are already in the table: skip them.
    pub skip_until: i64,
    /// Bad records at or before this position are already quarantined.
    pub quarantined_until: i64,
    /// Records per chunk.
    pub chunk_rows: usize,
    pub max_record_bytes: usize,
}

/// Collects one chunk's records and hands finished chunks to `emit`. A
/// reader types its records in parts of a few thousand rows ([`Self::add`]),
/// each while its text is still in the CPU caches, and the chunk gathers the
/// kept rows of the typed parts in one copy ([`Self::emit`], `gather.rs`).
pub(crate) struct Collector<'a, 'e> {
    pub ctx: &'a ReadCtx<'a>,
    emit: &'e mut dyn FnMut(Chunk) -> Result<(), Stopped>,
    pub bad: Vec<QuarantineRecord>,
    pub last: i64,
    pub bytes: u64,
    /// The chunk's typed rows so far (quarantined rows still in), and the
    /// positions of the kept ones.
    parts: Vec<gather::Part>,
    kept: Vec<i64>,
}

/// Rows of text a reader types at a time (see [`Collector`]).
pub(crate) const PART_ROWS: usize = 4096;

impl<'a, 'e> Collector<'a, 'e> {
    pub fn new(ctx: &'a ReadCtx<'a>, emit: &'e mut dyn FnMut(Chunk) -> Result<(), Stopped>) -> Self {
        Self { ctx, emit, bad: Vec::new(), last: ctx.skip_until, bytes: 0, parts: Vec::new(), kept: Vec::new() }
    }

    /// Types `text`, read from `positions`; the rows that fail go to
    /// quarantine (their raw form from `raw`, by row of `text`).
    pub fn add(&mut self, text: &RecordBatch, positions: &[i64], raw: &dyn Fn(usize) -> Vec<u8>) {
        self.add_typed(coerce::coerce(text, self.ctx.schema), positions, raw);
    }

    /// Adds rows typed by [`coerce::coerce`] (as [`Self::add`]).
    pub fn add_typed(&mut self, typed: coerce::Typed, positions: &[i64], raw: &dyn Fn(usize) -> Vec<u8>) {
        for (row, problem) in typed.problems {
            self.bad(positions[row], problem.0, problem.1, &raw(row));
        }
        self.kept.extend(typed.keep.iter().zip(positions).filter(|(k, _)| **k).map(|(_, p)| *p));
        if let Some(p) = positions.last() {
            self.last = self.last.max(*p);
        }
        let kept = typed.keep.iter().filter(|k| **k).count();
        if kept > 0 {
            let keep = (kept < typed.keep.len()).then(|| BooleanBuffer::from(typed.keep));
            self.parts.push(gather::Part { rows: typed.all, keep });
        }
    }

    /// Emits the rows added so far and the quarantined records as a chunk.
    pub fn emit(&mut self, done: bool) -> Result<(), Stopped> {
        let schema = &self.ctx.schema.schema;
        let rows = gather::gather(schema, &std::mem::take(&mut self.parts));
        let chunk = Chunk {
            rows,
            positions: std::mem::take(&mut self.kept),
            quarantine: std::mem::take(&mut self.bad),
            last: self.last,
            done,
            bytes: std::mem::take(&mut self.bytes),
        };
        (self.emit)(chunk)
    }

    /// True when the record at `position` was committed by an earlier run.
    pub fn skipped(&self, position: i64) -> bool {
        position <= self.ctx.skip_until
    }

    pub fn bad(&mut self, position: i64, reason: Reason, error: String, raw: &[u8]) {
        self.last = self.last.max(position);
        if position <= self.ctx.quarantined_until {
            return;
        }
        let keep = raw.len().min(self.ctx.max_record_bytes);
        self.bad.push(QuarantineRecord {
            source: self.ctx.source.to_string(),
            position,
            reason,
            error,
            raw: raw[..keep].to_vec(),
        });
    }

    /// Adds `text` (as [`Self::add`]) and emits the chunk.
    pub fn flush(
        &mut self,
        text: &RecordBatch,
        positions: &[i64],
        raw: &dyn Fn(usize) -> Vec<u8>,
        done: bool,
    ) -> Result<(), Stopped> {
        self.add(text, positions, raw);
        self.emit(done)
    }

    /// Ends the input, optionally with a file-level error at the next position.
    pub fn finish(&mut self, file_error: Option<String>) -> Result<(), Stopped> {
        if let Some(e) = file_error {
            let p = self.last + 1;
            self.bad(p, Reason::File, e, b"");
        }
        self.emit(true)
    }
}

/// The validity of `rows` rows of which those in `null` (ascending) are
/// null; none when all are valid.
pub(crate) fn nulls_at(rows: usize, null: &[usize]) -> Option<NullBuffer> {
    if null.is_empty() {
        return None;
    }
    let mut valid = BooleanBufferBuilder::new(rows);
    valid.append_n(rows, true);
    for &row in null {
        valid.set_bit(row, false);
    }
    Some(NullBuffer::new(valid.finish()))
}

/// Cuts `text` to a readable excerpt for an error message.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(MAX).collect::<String>())
    }
}
