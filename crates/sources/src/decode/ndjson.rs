//! Newline-delimited JSON. The file is read in blocks straight into one
//! buffer; the complete lines of a block are decoded by arrow-json in place,
//! [`DECODE_ROWS`] lines at a time, and only a block with a bad line is decoded
//! again line by line so that just the bad lines go to quarantine. Blank lines
//! are not records; positions are line numbers.

use std::io::{BufRead, Read};

use arrow_array::RecordBatch;
use arrow_json::ReaderBuilder;
use arrow_schema::SchemaRef;
use ingesta_core::Reason;

use super::{Chunk, Collector, ReadCtx, Stopped, coerce, rescue};

/// Bytes read per block.
const BLOCK_BYTES: usize = 8 << 20;

/// Lines arrow-json decodes at a time. Its decoder lays its input out as a
/// tape, then walks the whole tape once per column: a block's ~50,000 lines
/// make a tape of ~20 MB that leaves the CPU caches between columns, while
/// 1,024 lines (~0.4 MB) stay in them. On the benchmark that cut the whole
/// run's CPU time (decision 0015). Each batch is typed at once, still
/// in the caches, and the chunk joins typed columns rather than text.
const DECODE_ROWS: usize = 1024;

pub fn read_ndjson(
    reader: &mut dyn BufRead,
    ctx: &ReadCtx,
    emit: &mut dyn FnMut(Chunk) -> Result<(), Stopped>,
) -> Result<(), Stopped> {
    let mut col = Collector::new(ctx, emit);
    let schema = ctx.schema.as_text();
    let mut block: Vec<u8> = Vec::with_capacity(BLOCK_BYTES + (1 << 16));
    let mut lines = Lines::default();
    let mut line_no: i64 = 0;
    // the line being dropped because it is longer than max_record_bytes
    let mut discarding = false;
    loop {
        let before = block.len();
        // on an error, what was read before it is in `block` (read_to_end's contract)
        let (eof, error) = match (&mut *reader).take(BLOCK_BYTES as u64).read_to_end(&mut block) {
            Ok(n) => (n == 0, None),
            Err(e) => (false, Some(e)),
        };
        col.bytes += (block.len() - before) as u64;
        // complete lines end at the last newline, or at the end of the input
        let end = if eof { block.len() } else { memchr::memrchr(b'\n', &block).map_or(0, |i| i + 1) };
        let mut at = 0;
        while at < end {
            let nl = memchr::memchr(b'\n', &block[at..end]).map_or(end, |i| at + i);
            let line_end = if nl > at && block[nl - 1] == b'\r' { nl - 1 } else { nl };
            let line = &block[at..line_end];
            if discarding {
                discarding = false; // the tail of a line already reported
            } else {
                line_no += 1;
                if col.skipped(line_no) || line.iter().all(u8::is_ascii_whitespace) {
                    lines.contiguous = false;
                } else if line.len() > ctx.max_record_bytes {
                    col.bad(line_no, Reason::TooLarge, too_long(Some(line.len()), ctx), line);
                    lines.contiguous = false;
                } else {
                    lines.add(at, line_end, line_no);
                }
            }
            at = nl + 1;
        }
        lines.emit(&schema, &block, &mut col, ctx.chunk_rows, eof)?;
        if let Some(e) = error {
            // the cut line and everything after it: one file-level record
            return col.finish(Some(format!("cannot read past line {line_no}: {e}")));
        }
        if eof {
            return Ok(());
        }
        block.drain(..end.min(block.len()));
        if block.len() > ctx.max_record_bytes {
            // an unfinished line already longer than the limit: report it once, drop the rest
            if !discarding {
                line_no += 1;
                if !col.skipped(line_no) {
                    col.bad(line_no, Reason::TooLarge, too_long(None, ctx), &block);
                }
                discarding = true;
            }
            block.clear();
        }
    }
}

fn too_long(len: Option<usize>, ctx: &ReadCtx) -> String {
    let max = ctx.max_record_bytes;
    match len {
        Some(n) => format!("line is {n} bytes, longer than max_record_bytes ({max}); kept its first bytes"),
        None => format!("line is longer than max_record_bytes ({max}); kept its first bytes"),
    }
}

/// The lines of a block to decode.
#[derive(Default)]
struct Lines {
    spans: Vec<(usize, usize)>,
    positions: Vec<i64>,
    /// No line between the first and the last span was left out, so the
    /// block's bytes between them can be decoded as they are.
    contiguous: bool,
}

impl Lines {
    fn add(&mut self, start: usize, end: usize, position: i64) {
        if self.spans.is_empty() {
            self.contiguous = true;
        }
        self.spans.push((start, end));
        self.positions.push(position);
    }

    /// Emits the gathered lines in chunks of at most `chunk_rows`.
    fn emit(
        &mut self,
        schema: &SchemaRef,
        block: &[u8],
        col: &mut Collector,
        chunk_rows: usize,
        eof: bool,
    ) -> Result<(), Stopped> {
        if self.spans.is_empty() {
            self.contiguous = false;
            return if eof { col.finish(None) } else { Ok(()) };
        }
        let n = self.spans.len();
        let mut compact = JsonLines::new(schema.clone());
        for (i, (spans, positions)) in self.spans.chunks(chunk_rows).zip(self.positions.chunks(chunk_rows)).enumerate()
        {
            let done = eof && (i + 1) * chunk_rows >= n;
            if self.contiguous {
                let range = (spans[0].0, spans[spans.len() - 1].1);
                decode_and_emit(schema, block, range, spans, positions, col, done)?;
            } else {
                for (&(a, b), &p) in spans.iter().zip(positions) {
                    compact.push(&block[a..b], p);
                }
                compact.flush(col, done)?;
            }
        }
        self.spans.clear();
        self.positions.clear();
        self.contiguous = false;
        Ok(())
    }
}

/// JSON records, one per line, gathered into their own buffer (Avro records
/// and exploded documents are read this way).
pub(crate) struct JsonLines {
    schema: SchemaRef,
    buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
    positions: Vec<i64>,
}

impl JsonLines {
    pub fn new(schema: SchemaRef) -> Self {
        Self { schema, buf: Vec::new(), spans: Vec::new(), positions: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn push(&mut self, line: &[u8], position: i64) {
        let start = self.buf.len();
        self.buf.extend_from_slice(line);
        self.spans.push((start, self.buf.len()));
        self.positions.push(position);
        self.buf.push(b'\n');
    }

    /// Decodes the gathered lines and emits them as a chunk.
    pub fn flush(&mut self, col: &mut Collector, done: bool) -> Result<(), Stopped> {
        let range = (0, self.buf.len());
        let result = decode_and_emit(&self.schema, &self.buf, range, &self.spans, &self.positions, col, done);
        self.buf.clear();
        self.spans.clear();
        self.positions.clear();
        result
    }
}

/// Decodes `data[range]`, which holds exactly the lines at `spans`, and emits
/// a chunk; a line that does not decode goes to quarantine (as written), and
/// fields the columns do not name go to `_rescued` when the schema keeps them.
fn decode_and_emit(
    schema: &SchemaRef,
    data: &[u8],
    range: (usize, usize),
    spans: &[(usize, usize)],
    positions: &[i64],
    col: &mut Collector,
    done: bool,
) -> Result<(), Stopped> {
    let raw = |row: usize| data[spans[row].0..spans[row].1].to_vec();
    if emit_fast(schema, &data[range.0..range.1], positions, col, &raw) {
        return col.emit(done);
    }
    let rescued = rescue::rewrite(schema, data, spans);
    let (data, spans) = match &rescued {
        Some((buf, _)) if emit_fast(schema, buf, positions, col, &raw) => return col.emit(done),
        Some((buf, rewritten)) => (&buf[..], &rewritten[..]),
        None => (data, spans),
    };
    let (batch, rows) = decode_each(schema, data, spans, positions, col, &raw);
    let kept: Vec<i64> = rows.iter().map(|&i| positions[i]).collect();
    col.flush(&batch, &kept, &|row| raw(rows[row]), done)
}

/// Decodes `text` (one line per position) in one go and adds the rows;
/// false, adding nothing, when a line does not decode.
fn emit_fast(
    schema: &SchemaRef,
    text: &[u8],
    positions: &[i64],
    col: &mut Collector,
    raw: &dyn Fn(usize) -> Vec<u8>,
) -> bool {
    let n = positions.len();
    let record = col.ctx.schema;
    // arrow-json checks the strings' UTF-8 itself: a bad line fails the block;
    // each part is typed as soon as it is decoded, while it is in the caches
    let typed = |b: RecordBatch| coerce::coerce(&b, record);
    let fast = if n > 0 { decode_json(schema, text, typed).ok() } else { None };
    let Some(parts) = fast.filter(|p| p.iter().map(|t| t.keep.len()).sum::<usize>() == n) else { return false };
    let mut at = 0;
    for part in parts {
        let rows = part.keep.len();
        col.add_typed(part, &positions[at..at + rows], &|row| raw(at + row));
        at += rows;
    }
    true
}

/// The slow path: each line on its own; bad lines to quarantine. Returns the
/// decoded rows and, per row, its index in `spans`.
fn decode_each(
    schema: &SchemaRef,
    data: &[u8],
    spans: &[(usize, usize)],
    positions: &[i64],
    col: &mut Collector,
    raw: &dyn Fn(usize) -> Vec<u8>,
) -> (RecordBatch, Vec<usize>) {
    let mut good = Vec::new();
    let mut rows = Vec::new();
    for (i, &(s, e)) in spans.iter().enumerate() {
        let line = &data[s..e];
        let error = match std::str::from_utf8(line) {
            Err(u) => format!("invalid UTF-8 at byte {} of the line", u.valid_up_to()),
            Ok(_) => match decode_json(schema, line, |b| b) {
                Ok(parts) if rows_of(&parts) == 1 => {
                    good.extend(parts);
                    rows.push(i);
                    continue;
                }
                Ok(parts) => format!("expected one JSON object on the line, found {}", rows_of(&parts)),
                Err(e) => format!("invalid JSON: {e}"),
            },
        };
        col.bad(positions[i], Reason::Parse, error, &raw(i));
    }
    let batch = arrow_select::concat::concat_batches(schema, &good).expect("same schema");
    (batch, rows)
}

fn rows_of(parts: &[RecordBatch]) -> usize {
    parts.iter().map(RecordBatch::num_rows).sum()
}

/// Decodes every JSON value in `bytes`, [`DECODE_ROWS`] at a time, and
/// hands each batch of them to `each` at once.
fn decode_json<T>(
    schema: &SchemaRef,
    bytes: &[u8],
    mut each: impl FnMut(RecordBatch) -> T,
) -> Result<Vec<T>, arrow_schema::ArrowError> {
    let mut d = ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .with_strict_mode(rescue::rescues(schema))
        .with_batch_size(DECODE_ROWS)
        .build_decoder()?;
    let mut batches = Vec::new();
    let mut at = 0;
    // `decode` stops after DECODE_ROWS values; `flush` has none once all is read
    loop {
        at += d.decode(&bytes[at..])?;
        match d.flush()? {
            Some(b) => batches.push(each(b)),
            None => break,
        }
    }
    if at != bytes.len() {
        return Err(arrow_schema::ArrowError::JsonError("trailing data after the last record".into()));
    }
    Ok(batches)
}
