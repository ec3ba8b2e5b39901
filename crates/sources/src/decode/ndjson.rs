//! Newline-delimited JSON. Lines are gathered into blocks and decoded by
//! arrow-json in one pass; a block with a bad line is decoded again line by
//! line so that only the bad lines go to quarantine. Blank lines are not
//! records; positions are line numbers.

use std::io::BufRead;

use arrow_array::RecordBatch;
use arrow_json::ReaderBuilder;
use arrow_schema::SchemaRef;
use ingesta_core::Reason;

use super::{Chunk, Collector, ReadCtx, Stopped};

/// Bytes of JSON text gathered before a block is decoded.
const BLOCK_BYTES: usize = 8 << 20;

pub fn read_ndjson(
    reader: &mut dyn BufRead,
    ctx: &ReadCtx,
    emit: &mut dyn FnMut(Chunk) -> Result<(), Stopped>,
) -> Result<(), Stopped> {
    let mut col = Collector::new(ctx, emit);
    let mut lines = JsonLines::new(ctx.schema.as_text());
    let mut line_no: i64 = 0;
    loop {
        let start = lines.buf.len();
        let read = read_line(reader, &mut lines.buf, ctx.max_record_bytes);
        let (len, too_long) = match read {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                lines.buf.truncate(start);
                lines.flush(&mut col, false)?;
                return col.finish(Some(format!("cannot read past line {line_no}: {e}")));
            }
        };
        line_no += 1;
        col.bytes += len as u64;
        let line = &lines.buf[start..];
        if col.skipped(line_no) || line.iter().all(u8::is_ascii_whitespace) {
            lines.buf.truncate(start);
            continue;
        }
        if too_long {
            let msg = format!(
                "line is {len} bytes, longer than max_record_bytes ({}); kept its first bytes",
                ctx.max_record_bytes
            );
            let raw = line.to_vec();
            lines.buf.truncate(start);
            col.bad(line_no, Reason::TooLarge, msg, &raw);
            continue;
        }
        lines.end_line(start, line_no);
        if lines.len() >= ctx.chunk_rows || lines.buf.len() >= BLOCK_BYTES {
            lines.flush(&mut col, false)?;
        }
    }
    if lines.len() > 0 { lines.flush(&mut col, true) } else { col.finish(None) }
}

/// Appends one line (without its end of line) to `buf`, keeping at most `max`
/// bytes of it. Returns the line's full length and whether it was cut, or
/// `None` at the end of input.
fn read_line(r: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Option<(usize, bool)>> {
    let start = buf.len();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            break;
        }
        any = true;
        let (take, found) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        let room = max.saturating_sub(len);
        buf.extend_from_slice(&avail[..take.min(room)]);
        len += take;
        r.consume(take + usize::from(found));
        if found {
            break;
        }
    }
    if !any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') && buf.len() > start {
        buf.pop();
        len -= 1;
    }
    Ok(Some((len, len > max)))
}

/// JSON records, one per line, waiting to be decoded together.
pub(crate) struct JsonLines {
    schema: SchemaRef,
    pub buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
    positions: Vec<i64>,
}

impl JsonLines {
    pub fn new(schema: SchemaRef) -> Self {
        Self { schema, buf: Vec::with_capacity(BLOCK_BYTES + (1 << 16)), spans: Vec::new(), positions: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Marks `buf[start..]` as the record at `position`.
    pub fn end_line(&mut self, start: usize, position: i64) {
        self.spans.push((start, self.buf.len()));
        self.positions.push(position);
        self.buf.push(b'\n');
    }

    pub fn push(&mut self, line: &[u8], position: i64) {
        let start = self.buf.len();
        self.buf.extend_from_slice(line);
        self.end_line(start, position);
    }

    /// Decodes the gathered lines and emits them as a chunk.
    pub fn flush(&mut self, col: &mut Collector, done: bool) -> Result<(), Stopped> {
        let (batch, rows) = self.decode(col);
        let positions: Vec<i64> = rows.iter().map(|&i| self.positions[i]).collect();
        let raw = |row: usize| {
            let (s, e) = self.spans[rows[row]];
            self.buf[s..e].to_vec()
        };
        let result = col.flush(&batch, &positions, &raw, done);
        self.buf.clear();
        self.spans.clear();
        self.positions.clear();
        result
    }

    /// The decoded text columns and, per decoded row, its line index.
    fn decode(&self, col: &mut Collector) -> (RecordBatch, Vec<usize>) {
        let n = self.spans.len();
        if std::str::from_utf8(&self.buf).is_ok()
            && let Ok(batch) = decode_json(&self.schema, &self.buf, n)
            && batch.num_rows() == n
        {
            return (batch, (0..n).collect());
        }
        // Slow path: find the bad lines one by one.
        let mut good = Vec::new();
        let mut rows = Vec::new();
        for (i, &(s, e)) in self.spans.iter().enumerate() {
            let line = &self.buf[s..e];
            let error = match std::str::from_utf8(line) {
                Err(u) => format!("invalid UTF-8 at byte {} of the line", u.valid_up_to()),
                Ok(_) => match decode_json(&self.schema, line, 1) {
                    Ok(b) if b.num_rows() == 1 => {
                        good.push(b);
                        rows.push(i);
                        continue;
                    }
                    Ok(b) => format!("expected one JSON object on the line, found {}", b.num_rows()),
                    Err(e) => format!("invalid JSON: {e}"),
                },
            };
            col.bad(self.positions[i], Reason::Parse, error, line);
        }
        let batch = arrow_select::concat::concat_batches(&self.schema, &good).expect("same schema");
        (batch, rows)
    }
}

fn decode_json(schema: &SchemaRef, bytes: &[u8], rows: usize) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let mut d = ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .with_batch_size(rows.max(1) + 1)
        .build_decoder()?;
    let used = d.decode(bytes)?;
    if used != bytes.len() {
        return Err(arrow_schema::ArrowError::JsonError("trailing data after the last record".into()));
    }
    Ok(d.flush()?.unwrap_or_else(|| RecordBatch::new_empty(schema.clone())))
}
