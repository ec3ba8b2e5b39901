//! Arrow arrays to PostgreSQL's binary `COPY` format, column by column over
//! the arrays (no per-value `ToSql` call). Each column is first cast to the
//! Arrow type of its PostgreSQL column ([`PgType::arrow`]), so the encoder
//! only knows one Arrow type per PostgreSQL type.
//!
//! The format: a header, then per row a field count and per field its length
//! (-1 for NULL) and bytes, then a trailer. Dates count days and timestamps
//! microseconds from 2000-01-01; `numeric` is base-10000 digits.
//! <https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.4>

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use bytes::{BufMut, BytesMut};
use ingesta_core::{Error, ErrorKind, Result};

use crate::types::PgType;

const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Days and microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Casts `column` to the Arrow type of `pg` (naming the column when a value does not fit).
pub fn conform(name: &str, column: &ArrayRef, pg: &PgType) -> Result<ArrayRef> {
    let target = pg.arrow();
    if column.data_type() == &target {
        return Ok(column.clone());
    }
    let options = arrow_cast::CastOptions { safe: false, ..Default::default() };
    arrow_cast::cast_with_options(column, &target, &options).map_err(|e| {
        Error::new(ErrorKind::Quarantine, format!("column `{name}` does not fit `{}`: {e}", pg.sql())).caused_by(e)
    })
}

/// The end of a binary COPY stream.
pub const TRAILER: [u8; 2] = (-1i16).to_be_bytes();

/// Encodes `batch`'s columns (already conformed, in the COPY's column order,
/// typed by `types`) as one binary COPY stream, header and trailer included.
pub fn encode(columns: &[ArrayRef], types: &[PgType], rows: usize) -> Result<BytesMut> {
    let mut out = encode_rows(columns, types, rows, true)?;
    out.put_slice(&TRAILER);
    Ok(out)
}

/// The rows of a stream that goes on: the header first when `first`, no
/// trailer (the stream's last write sends [`TRAILER`]).
pub fn encode_rows(columns: &[ArrayRef], types: &[PgType], rows: usize, first: bool) -> Result<BytesMut> {
    let mut out = BytesMut::with_capacity(HEADER.len() + rows * (2 + columns.len() * 12) + 2);
    if first {
        out.put_slice(HEADER);
    }
    let fields = i16::try_from(columns.len()).map_err(|_| Error::stop("more than 32767 columns"))?;
    for row in 0..rows {
        out.put_i16(fields);
        for (column, pg) in columns.iter().zip(types) {
            value(&mut out, column.as_ref(), pg, row)?;
        }
    }
    Ok(out)
}

/// The columns of `batch` named `names`, conformed to `types`.
pub fn columns(batch: &RecordBatch, names: &[String], types: &[PgType]) -> Result<Vec<ArrayRef>> {
    names
        .iter()
        .zip(types)
        .map(|(name, pg)| {
            let column = batch.column_by_name(name).ok_or_else(|| Error::stop(format!("no column `{name}`")))?;
            conform(name, column, pg)
        })
        .collect()
}

/// Writes one field: its length, then its bytes.
fn value(out: &mut BytesMut, a: &dyn Array, pg: &PgType, row: usize) -> Result<()> {
    if a.is_null(row) {
        out.put_i32(-1);
        return Ok(());
    }
    match pg {
        PgType::Bool => {
            out.put_i32(1);
            out.put_u8(u8::from(a.as_boolean().value(row)));
        }
        PgType::Int2 => {
            out.put_i32(2);
            out.put_i16(a.as_primitive::<Int16Type>().value(row));
        }
        PgType::Int4 => {
            out.put_i32(4);
            out.put_i32(a.as_primitive::<Int32Type>().value(row));
        }
        PgType::Int8 => {
            out.put_i32(8);
            out.put_i64(a.as_primitive::<Int64Type>().value(row));
        }
        PgType::Float4 => {
            out.put_i32(4);
            out.put_f32(a.as_primitive::<Float32Type>().value(row));
        }
        PgType::Float8 => {
            out.put_i32(8);
            out.put_f64(a.as_primitive::<Float64Type>().value(row));
        }
        PgType::Text | PgType::Json => text(out, a.as_string::<i32>().value(row).as_bytes(), None),
        PgType::Jsonb => text(out, a.as_string::<i32>().value(row).as_bytes(), Some(1)),
        PgType::Uuid => {
            let s = a.as_string::<i32>().value(row);
            let u = uuid::Uuid::parse_str(s)
                .map_err(|e| Error::new(ErrorKind::Quarantine, format!("`{s}` is not a UUID: {e}")))?;
            out.put_i32(16);
            out.put_slice(u.as_bytes());
        }
        PgType::Bytea => text(out, a.as_binary::<i32>().value(row), None),
        PgType::Date => {
            out.put_i32(4);
            out.put_i32(a.as_primitive::<Date32Type>().value(row) - PG_EPOCH_DAYS);
        }
        PgType::Timestamp | PgType::Timestamptz => {
            out.put_i32(8);
            out.put_i64(a.as_primitive::<TimestampMicrosecondType>().value(row) - PG_EPOCH_MICROS);
        }
        PgType::Numeric(_, scale) => numeric(out, a.as_primitive::<Decimal128Type>().value(row), *scale),
        PgType::Array(inner) => array(out, a.as_list::<i32>().value(row).as_ref(), inner)?,
    }
    Ok(())
}

fn text(out: &mut BytesMut, bytes: &[u8], version: Option<u8>) {
    out.put_i32((bytes.len() + usize::from(version.is_some())) as i32);
    if let Some(v) = version {
        out.put_u8(v);
    }
    out.put_slice(bytes);
}

/// A one-dimensional array: dimensions, a NULL flag, the element type, then the elements.
fn array(out: &mut BytesMut, items: &dyn Array, inner: &PgType) -> Result<()> {
    let mut body = BytesMut::new();
    let empty = items.is_empty();
    body.put_i32(i32::from(!empty));
    body.put_i32(i32::from(items.null_count() > 0));
    body.put_u32(inner.oid());
    if !empty {
        body.put_i32(items.len() as i32);
        body.put_i32(1);
    }
    for i in 0..items.len() {
        value(&mut body, items, inner, i)?;
    }
    out.put_i32(body.len() as i32);
    out.put_slice(&body);
    Ok(())
}

/// `numeric`: digit count, weight (of the first digit, in powers of 10000),
/// sign, display scale, then base-10000 digits.
fn numeric(out: &mut BytesMut, value: i128, scale: i8) {
    let scale = scale.max(0) as usize;
    let magnitude = value.unsigned_abs().to_string();
    let (int, frac) =
        if magnitude.len() > scale { magnitude.split_at(magnitude.len() - scale) } else { ("", magnitude.as_str()) };
    let frac = format!("{frac:0>scale$}");
    let group = |s: &str| s.parse::<i16>().unwrap_or(0);
    // integer digits grouped from the right, fraction digits from the left
    let lead = int.len() % 4;
    let mut digits: Vec<i16> = Vec::new();
    if lead > 0 {
        digits.push(group(&int[..lead]));
    }
    digits.extend(int.as_bytes()[lead..].chunks(4).map(|c| group(std::str::from_utf8(c).unwrap_or("0"))));
    let mut weight = digits.len() as i16 - 1;
    for chunk in frac.as_bytes().chunks(4) {
        let s = std::str::from_utf8(chunk).unwrap_or("0");
        digits.push(group(&format!("{s:0<4}")));
    }
    while digits.first() == Some(&0) {
        digits.remove(0);
        weight -= 1;
    }
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    out.put_i32(8 + 2 * digits.len() as i32);
    out.put_i16(digits.len() as i16);
    out.put_i16(weight);
    out.put_u16(if value < 0 { 0x4000 } else { 0 });
    out.put_u16(scale as u16);
    for d in digits {
        out.put_i16(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(v: i128, scale: i8) -> Vec<i16> {
        let mut out = BytesMut::new();
        numeric(&mut out, v, scale);
        out[4..].chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]])).collect()
    }

    #[test]
    fn numerics_are_base_10000_digits() {
        // 12345.6789: digits 1, 2345, 6789; weight 1
        assert_eq!(numeric_bytes(123_456_789, 4), vec![3, 1, 0, 4, 1, 2345, 6789]);
        // -0.05 at scale 2: one digit 500 (0.0500), weight -1, negative
        assert_eq!(numeric_bytes(-5, 2), vec![1, -1, 0x4000, 2, 500]);
        // 0 at scale 3
        assert_eq!(numeric_bytes(0, 3), vec![0, 0, 0, 3]);
        // 10000: one digit 1 at weight 1
        assert_eq!(numeric_bytes(10_000, 0), vec![1, 1, 0, 0, 1]);
        // 0.00001 at scale 5: 0.0000|1000 -> weight -2, digit 1000
        assert_eq!(numeric_bytes(1, 5), vec![1, -2, 0, 5, 1000]);
    }
}
