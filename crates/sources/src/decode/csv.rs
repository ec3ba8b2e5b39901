//! CSV with a header (or columns by order), a delimiter and a quote character.
//! Every file column is read as text first; a record with the wrong number of
//! fields or invalid UTF-8 is quarantined. Positions count data records from 1.

use std::io::BufRead;
use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::cast::AsArray;
use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ingesta_core::Reason;

use super::{Chunk, Collector, PART_ROWS, ReadCtx, Stopped};

pub struct CsvFormat {
    pub header: bool,
    pub delimiter: u8,
    pub quote: u8,
}

/// Bytes read from the input at a time (the landing's readers buffer as
/// much, so a read goes straight into this buffer).
const BUFFER: usize = 1 << 20;

/// A column's fields as text. They are cut from UTF-8 records at the
/// (ASCII) delimiters and quotes, so this is one check of the whole buffer.
fn text(fields: BinaryArray) -> StringArray {
    StringArray::try_from_binary(fields.clone())
        .unwrap_or_else(|_| fields.iter().map(|f| f.map(String::from_utf8_lossy)).collect())
}

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
    let schema: SchemaRef =
        Arc::new(Schema::new(names.iter().map(|n| Field::new(n, DataType::Utf8, true)).collect::<Vec<_>>()));
    // typed a part at a time (see `Collector`), emitted a chunk at a time
    let part_rows = ctx.chunk_rows.min(PART_ROWS);
    let mut in_chunk = 0;
    // each column's bytes, sized by the last part's (no regrowth)
    let mut builders: Vec<BinaryBuilder> =
        names.iter().map(|_| BinaryBuilder::with_capacity(part_rows, part_rows * 16)).collect();
    let mut positions: Vec<i64> = Vec::new();
    let mut position: i64 = 0;
    let text_of = |builders: &mut Vec<BinaryBuilder>| {
        let cols: Vec<ArrayRef> = builders
            .iter_mut()
            .map(|b| {
                let bytes = b.values_slice().len();
                let col = Arc::new(text(b.finish())) as ArrayRef;
                *b = BinaryBuilder::with_capacity(part_rows, bytes.max(part_rows * 16));
                col
            })
            .collect();
        RecordBatch::try_new(schema.clone(), cols).expect("text columns")
    };
    let raw_of = |batch: &RecordBatch, row: usize| -> Vec<u8> {
        let mut w = csv::WriterBuilder::new().delimiter(format.delimiter).quote(format.quote).from_writer(Vec::new());
        let fields: Vec<&str> = batch.columns().iter().map(|c| c.as_string::<i32>().value(row)).collect();
        let _ = w.write_record(&fields);
        let mut out = w.into_inner().unwrap_or_default();
        out.pop();
        out
    };
    loop {
        let record = match rdr.read_byte_record() {
            Ok(None) => break,
            Ok(Some(record)) => record,
            Err(e) => {
                let batch = text_of(&mut builders);
                col.flush(&batch, &positions, &|r| raw_of(&batch, r), false)?;
                return col.finish(Some(format!("cannot read past record {position}: {e}")));
            }
        };
        position += 1;
        if col.skipped(position) {
            continue;
        }
        // the record as written: fields, delimiters and quotes, plus its line end
        let raw = record.as_slice();
        col.bytes += raw.len() as u64 + 1;
        if record.len() != names.len() {
            let msg = format!("expected {} fields, found {}", names.len(), record.len());
            col.bad(position, Reason::Parse, msg, raw);
            continue;
        }
        if raw.len() > ctx.max_record_bytes {
            let msg = format!(
                "record is {} bytes, longer than max_record_bytes ({}); kept its first bytes",
                raw.len(),
                ctx.max_record_bytes
            );
            col.bad(position, Reason::TooLarge, msg, raw);
            continue;
        }
        // an ASCII record is UTF-8; the columns are checked again as a whole in `text`
        if !raw.is_ascii()
            && let Err(e) = std::str::from_utf8(raw)
        {
            let msg = format!("invalid UTF-8 at byte {} of the record", e.valid_up_to());
            col.bad(position, Reason::Parse, msg, raw);
            continue;
        }
        for (i, b) in builders.iter_mut().enumerate() {
            match record.unescape(i) {
                None => b.append_null(),
                Some(f) if f.is_empty() => b.append_null(),
                Some(f) => b.append_value(&f),
            }
        }
        positions.push(position);
        if positions.len() >= part_rows || in_chunk + positions.len() >= ctx.chunk_rows {
            let batch = text_of(&mut builders);
            col.add(&batch, &positions, &|r| raw_of(&batch, r));
            in_chunk += positions.len();
            positions.clear();
            if in_chunk >= ctx.chunk_rows {
                col.emit(false)?;
                in_chunk = 0;
            }
        }
    }
    let batch = text_of(&mut builders);
    col.flush(&batch, &positions, &|r| raw_of(&batch, r), true)
}
