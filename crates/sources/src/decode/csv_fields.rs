//! Where one table column's CSV fields go while a part is read: as bytes
//! (text, and the types only arrow's cast converts), or parsed straight into
//! the table's type (doubles, ints, UTC timestamps) with no copy of their text.
//! Either way `coerce` then names every value that did not read.

use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::types::{ArrowPrimitiveType, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, BinaryArray, PrimitiveArray, StringArray, new_null_array};
use arrow_buffer::{BooleanBufferBuilder, NullBuffer};
use arrow_schema::DataType;

use super::coerce::Input;
use super::number;
use super::timestamp::LastDate;

pub(crate) enum Fields {
    /// The file has no such column: every row is null.
    Absent,
    Bytes(BinaryBuilder),
    Double(Parsed<f64>),
    Int(Parsed<i32>),
    Bigint(Parsed<i64>),
    Timestamp(Parsed<i64>, LastDate),
}

impl Fields {
    /// The sink for a column of type `to`, sized for `rows` rows.
    pub fn new(to: &DataType, present: bool, rows: usize) -> Self {
        match to {
            _ if !present => Fields::Absent,
            DataType::Float64 => Fields::Double(Parsed::new(rows)),
            DataType::Int32 => Fields::Int(Parsed::new(rows)),
            DataType::Int64 => Fields::Bigint(Parsed::new(rows)),
            to if *to == crate::schema::utc_micros() => Fields::Timestamp(Parsed::new(rows), LastDate::default()),
            _ => Fields::Bytes(BinaryBuilder::with_capacity(rows, rows * 16)),
        }
    }

    /// Adds one record's field (unescaped; empty is no value).
    pub fn push(&mut self, field: &[u8]) {
        match self {
            Fields::Absent => {}
            Fields::Bytes(b) if field.is_empty() => b.append_null(),
            Fields::Bytes(b) => b.append_value(field),
            Fields::Double(p) => p.push(field, number::parse_bytes),
            Fields::Int(p) => p.push(field, number::parse_int::<Int32Type>),
            Fields::Bigint(p) => p.push(field, number::parse_int::<Int64Type>),
            Fields::Timestamp(p, last) => p.push(field, |v| last.parse_bytes(v)),
        }
    }

    /// The part's `rows` values as a column for `coerce`; the sink starts
    /// the next part sized as this one.
    pub fn finish(&mut self, rows: usize) -> Input {
        match self {
            Fields::Absent => Input::Raw(new_null_array(&DataType::Utf8, rows)),
            Fields::Bytes(b) => {
                let bytes = b.values_slice().len();
                let column = text(b.finish());
                *b = BinaryBuilder::with_capacity(rows, bytes.max(rows * 16));
                Input::Raw(Arc::new(column))
            }
            Fields::Double(p) => p.finish::<Float64Type>(DataType::Float64),
            Fields::Int(p) => p.finish::<Int32Type>(DataType::Int32),
            Fields::Bigint(p) => p.finish::<Int64Type>(DataType::Int64),
            Fields::Timestamp(p, _) => p.finish::<TimestampMicrosecondType>(crate::schema::utc_micros()),
        }
    }
}

/// A column's fields cut from UTF-8 records at the (ASCII) delimiters and
/// quotes, as text: one check of the whole buffer.
pub(crate) fn text(fields: BinaryArray) -> StringArray {
    StringArray::try_from_binary(fields.clone())
        .unwrap_or_else(|_| fields.iter().map(|f| f.map(String::from_utf8_lossy)).collect())
}

/// Values parsed as they are read: a null for an empty or blank field, and
/// for a field that does not parse (its text kept in `failed`).
pub(crate) struct Parsed<T> {
    values: Vec<T>,
    nulls: Vec<usize>,
    failed: Vec<(usize, String)>,
}

impl<T: arrow_buffer::ArrowNativeType> Parsed<T> {
    fn new(rows: usize) -> Self {
        Self { values: Vec::with_capacity(rows), nulls: Vec::new(), failed: Vec::new() }
    }

    fn push(&mut self, field: &[u8], parse: impl FnOnce(&[u8]) -> Option<T>) {
        if !field.is_empty()
            && let Some(v) = parse(field)
        {
            self.values.push(v);
            return;
        }
        let row = self.values.len();
        if !field.iter().all(u8::is_ascii_whitespace) {
            self.failed.push((row, String::from_utf8_lossy(field).into_owned()));
        }
        self.nulls.push(row);
        self.values.push(T::default());
    }

    fn finish<A: ArrowPrimitiveType<Native = T>>(&mut self, data_type: DataType) -> Input {
        let rows = self.values.len();
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(rows));
        let nulls = (!self.nulls.is_empty()).then(|| {
            let mut valid = BooleanBufferBuilder::new(rows);
            valid.append_n(rows, true);
            for &row in &self.nulls {
                valid.set_bit(row, false);
            }
            NullBuffer::new(valid.finish())
        });
        self.nulls.clear();
        let values: ArrayRef = Arc::new(PrimitiveArray::<A>::new(values.into(), nulls).with_data_type(data_type));
        Input::Parsed { values, failed: std::mem::take(&mut self.failed) }
    }
}
