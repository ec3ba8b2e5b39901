//! CSV with a header (or columns by order), a delimiter and a quote character.
//! The table's columns are matched to the file's by name; each one's fields
//! are collected as bytes or parsed straight into its type (`csv_fields.rs`),
//! and `coerce` finishes them. A record with the wrong number of fields or
//! invalid UTF-8 is quarantined. Positions count data records from 1.

use std::io::BufRead;

use ingesta_core::Reason;

use super::coerce::coerce_columns;
use super::csv_fields::Fields;
use super::{Chunk, Collector, PART_ROWS, ReadCtx, Stopped};

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
    let columns: Vec<Option<usize>> =
        ctx.schema.schema.fields().iter().map(|f| names.iter().position(|n| n == f.name())).collect();
    // typed a part at a time (see `Collector`), emitted a chunk at a time
    let part_rows = ctx.chunk_rows.min(PART_ROWS);
    let mut in_chunk = 0;
    let mut fields: Vec<Fields> = ctx
        .schema
        .schema
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| Fields::new(f.data_type(), c.is_some(), part_rows))
        .collect();
    let read: Vec<(usize, usize)> = columns.iter().enumerate().filter_map(|(i, c)| c.map(|c| (i, c))).collect();
    // the part's records as written, for quarantine
    let mut raw = Part::default();
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
        for &(i, c) in &read {
            fields[i].push(&record.unescape(c).unwrap_or_default());
        }
        raw.push(record_bytes);
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
