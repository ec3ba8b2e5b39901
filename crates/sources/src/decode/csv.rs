//! CSV with a header (or columns by order), a delimiter and a quote character.
//! The table's columns are matched to the file's by name; each one's fields
//! are collected as bytes or parsed straight into its type (`csv_fields.rs`),
//! and `coerce` finishes them. A record with the wrong number of fields or
//! invalid UTF-8 is quarantined. Positions count data records from 1.

use std::borrow::Cow;
use std::io::BufRead;

use ingesta_core::Reason;

use super::coerce::{cannot_read, coerce_columns, missing};
use super::csv_fields::{Fields, Pushed};
use super::{Chunk, Collector, PART_ROWS, ReadCtx, Stopped};
use crate::schema::RESCUED;

pub struct CsvFormat {
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
}

/// Bytes read from the input at a time (the landing's readers buffer as
/// much, so a read goes straight into this buffer).
const BUFFER: usize = 1 << 20;

pub fn read_csv(
    reader: &mut dyn BufRead,
    format: &CsvFormat,
    ctx: &ReadCtx,
    emit: &mut dyn FnMut(Chunk) -> Result<(), Stopped>,
) -> Result<(), Stopped> {
    let mut col = Collector::new(ctx, emit);
    let mut rdr = simd_csv::ZeroCopyReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(format.delimiter)
        .quote(format.quote)
        .buffer_capacity(BUFFER)
        .from_reader(reader);
    let names: Vec<String> = if format.header {
        match rdr.read_byte_record() {
            Ok(Some(header)) => {
                header.unescaped_iter().map(|f| String::from_utf8_lossy(&f).trim().to_string()).collect()
            }
            Ok(None) => return col.finish(None), // an empty file
            Err(e) => return col.finish(Some(format!("cannot read the header: {e}"))),
        }
    } else {
        ctx.schema.schema.fields().iter().map(|f| f.name().clone()).collect()
    };
    // each table column's file column (the first of its name) and its sink
    let targets = ctx.schema.schema.fields();
    let columns: Vec<Option<usize>> = targets.iter().map(|f| names.iter().position(|n| n == f.name())).collect();
    // file columns the table does not name: kept, as a JSON object, in `_rescued`
    let rescued_at = targets.iter().position(|f| f.name() == RESCUED && !names.contains(f.name()));
    let others: Vec<usize> = match rescued_at {
        Some(_) => (0..names.len()).filter(|c| !columns.contains(&Some(*c))).collect(),
        None => Vec::new(),
    };
    let present = |i: usize| columns[i].is_some() || (Some(i) == rescued_at && !others.is_empty());
    let mut fields: Vec<Fields> =
        targets.iter().enumerate().map(|(i, f)| Fields::new(f.data_type(), present(i), ctx.chunk_rows)).collect();
    // A record whose fields do not parse, or that lacks a required value, is
    // quarantined as it is read, so a chunk is typed in one part and needs no
    // copy without it. Only columns that a cast types later (dates, decimals,
    // ...) can still drop a row in `coerce`, which wants its record as written.
    let typed_later = fields.iter().zip(targets.iter()).any(|(f, t)| f.typed_later(t.data_type()));
    let part_rows = if typed_later { ctx.chunk_rows.min(PART_ROWS) } else { ctx.chunk_rows };
    let mut raw = Part::default();
    let mut in_chunk = 0;
    let mut positions: Vec<i64> = Vec::new();
    let mut position: i64 = 0;
    let add = |col: &mut Collector, fields: &mut Vec<Fields>, raw: &mut Part, positions: &mut Vec<i64>| {
        let n = positions.len();
        let input = fields.iter_mut().map(|f| f.finish(n)).collect();
        col.add_typed(coerce_columns(n, input, ctx.schema), positions, &|r| raw.record(r).to_vec());
        raw.clear();
        positions.clear();
    };
    loop {
        let record = match rdr.read_byte_record() {
            Ok(None) => break,
            Ok(Some(record)) => record,
            Err(e) => {
                add(&mut col, &mut fields, &mut raw, &mut positions);
                col.emit(false)?;
                return col.finish(Some(format!("cannot read past record {position}: {e}")));
            }
        };
        position += 1;
        if col.skipped(position) {
            continue;
        }
        // the record as written: fields, delimiters and quotes, plus its line end
        let record_bytes = record.as_slice();
        col.bytes += record_bytes.len() as u64 + 1;
        if record.len() != names.len() {
            let msg = format!("expected {} fields, found {}", names.len(), record.len());
            col.bad(position, Reason::Parse, msg, record_bytes);
            continue;
        }
        if record_bytes.len() > ctx.max_record_bytes {
            let msg = format!(
                "record is {} bytes, longer than max_record_bytes ({}); kept its first bytes",
                record_bytes.len(),
                ctx.max_record_bytes
            );
            col.bad(position, Reason::TooLarge, msg, record_bytes);
            continue;
        }
        // an ASCII record is UTF-8; text columns are checked again as a whole
        if !record_bytes.is_ascii()
            && let Err(e) = std::str::from_utf8(record_bytes)
        {
            let msg = format!("invalid UTF-8 at byte {} of the record", e.valid_up_to());
            col.bad(position, Reason::Parse, msg, record_bytes);
            continue;
        }
        // the first problem in the table's column order
        let mut problem = None;
        let other = (!others.is_empty()).then(|| other_fields(&names, &others, |c| record.unescape(c)));
        for (i, sink) in fields.iter_mut().enumerate() {
            let field = match (columns[i], &other) {
                (Some(c), _) => record.unescape(c).unwrap_or_default(),
                (None, Some(o)) if Some(i) == rescued_at => Cow::Borrowed(o.as_bytes()),
                _ => Cow::Borrowed(&b""[..]),
            };
            match sink.push(&field) {
                Pushed::Value => {}
                _ if problem.is_some() => {}
                Pushed::Null if ctx.schema.required[i] => problem = Some(missing(&targets[i])),
                Pushed::Null => {}
                Pushed::Failed => problem = Some(cannot_read(&targets[i], &String::from_utf8_lossy(&field))),
            }
        }
        if let Some((reason, msg)) = problem {
            fields.iter_mut().for_each(|f| f.truncate(positions.len()));
            col.bad(position, reason, msg, record_bytes);
            continue;
        }
        if typed_later {
            raw.push(record_bytes);
        }
        positions.push(position);
        if positions.len() >= part_rows || in_chunk + positions.len() >= ctx.chunk_rows {
            in_chunk += positions.len();
            add(&mut col, &mut fields, &mut raw, &mut positions);
            if in_chunk >= ctx.chunk_rows {
                col.emit(false)?;
                in_chunk = 0;
            }
        }
    }
    add(&mut col, &mut fields, &mut raw, &mut positions);
    col.emit(true)
}

/// The fields of `others` that are not empty, as a JSON object of strings
/// (empty when none is).
fn other_fields<'r>(names: &[String], others: &[usize], field: impl Fn(usize) -> Option<Cow<'r, [u8]>>) -> String {
    let mut out = serde_json::Map::new();
    for &c in others {
        if let Some(v) = field(c).filter(|v| !v.is_empty()) {
            out.insert(names[c].clone(), String::from_utf8_lossy(&v).into_owned().into());
        }
    }
    if out.is_empty() { String::new() } else { serde_json::Value::Object(out).to_string() }
}

/// The records of a part as written, one after another.
#[derive(Default)]
struct Part {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Part {
    fn push(&mut self, record: &[u8]) {
        self.bytes.extend_from_slice(record);
        self.ends.push(self.bytes.len());
    }

    fn record(&self, row: usize) -> &[u8] {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.bytes[start..self.ends[row]]
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }
}
