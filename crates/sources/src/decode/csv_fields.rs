//! Where one table column's CSV fields go while a chunk is read: as bytes
//! (text, and the types only arrow's cast converts), or parsed straight into
//! the table's type (doubles, ints, UTC timestamps) with no copy of their text.
//! A push says whether the field was a value, no value, or did not parse, so
//! the reader can quarantine a record at once and take its fields back out.

use std::sync::Arc;

use arrow_array::types::{ArrowPrimitiveType, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, BinaryArray, PrimitiveArray, StringArray, new_null_array};
use arrow_buffer::{ArrowNativeType, Buffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::DataType;

use super::timestamp::LastDate;
use super::{nulls_at, number};

pub(crate) enum Fields {
    /// The file has no such column: every row is null.
    Absent,
    Bytes(Bytes),
    Double(Parsed<f64>),
    Int(Parsed<i32>),
    Bigint(Parsed<i64>),
    Timestamp(Parsed<i64>, LastDate),
}

/// What one field turned out to be.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Pushed {
    Value,
    /// Empty, blank for a parsed type, or not in the file.
    Null,
    /// Not of the column's type.
    Failed,
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
            _ => Fields::Bytes(Bytes::new(rows)),
        }
    }

    /// True when the column's values are only typed later, by `coerce`.
    pub fn typed_later(&self, to: &DataType) -> bool {
        matches!(self, Fields::Bytes(_)) && *to != DataType::Utf8
    }

    /// Adds one record's field (unescaped; empty is no value).
    pub fn push(&mut self, field: &[u8]) -> Pushed {
        match self {
            Fields::Absent => Pushed::Null,
            Fields::Bytes(b) => b.push(field),
            Fields::Double(p) => p.push(field, number::parse_bytes),
            Fields::Int(p) => p.push(field, number::parse_int::<Int32Type>),
            Fields::Bigint(p) => p.push(field, number::parse_int::<Int64Type>),
            Fields::Timestamp(p, last) => p.push(field, |v| last.parse_bytes(v)),
        }
    }

    /// Takes back the fields of every row from `rows` on.
    pub fn truncate(&mut self, rows: usize) {
        match self {
            Fields::Absent => {}
            Fields::Bytes(b) => b.truncate(rows),
            Fields::Double(p) => p.truncate(rows),
            Fields::Int(p) => p.truncate(rows),
            Fields::Bigint(p) => p.truncate(rows),
            Fields::Timestamp(p, _) => p.truncate(rows),
        }
    }

    /// The `rows` values pushed so far as a column for `coerce` (of the
    /// table's type when parsed here); the sink starts again, sized as before.
    pub fn finish(&mut self, rows: usize) -> ArrayRef {
        match self {
            Fields::Absent => new_null_array(&DataType::Utf8, rows),
            Fields::Bytes(b) => Arc::new(text(b.finish())),
            Fields::Double(p) => p.finish::<Float64Type>(DataType::Float64),
            Fields::Int(p) => p.finish::<Int32Type>(DataType::Int32),
            Fields::Bigint(p) => p.finish::<Int64Type>(DataType::Int64),
            Fields::Timestamp(p, _) => p.finish::<TimestampMicrosecondType>(crate::schema::utc_micros()),
        }
    }
}

/// A column's fields cut from UTF-8 records at the (ASCII) delimiters and
/// quotes, as text: one check of the whole buffer.
fn text(fields: BinaryArray) -> StringArray {
    StringArray::try_from_binary(fields.clone())
        .unwrap_or_else(|_| fields.iter().map(|f| f.map(String::from_utf8_lossy)).collect())
}

/// Fields as bytes, one after another; empty ones are null.
pub(crate) struct Bytes {
    values: Vec<u8>,
    offsets: Vec<i32>,
    nulls: Vec<usize>,
}

impl Bytes {
    fn new(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self { values: Vec::with_capacity(rows * 16), offsets, nulls: Vec::new() }
    }

    fn push(&mut self, field: &[u8]) -> Pushed {
        if field.is_empty() {
            self.nulls.push(self.offsets.len() - 1);
        }
        self.values.extend_from_slice(field);
        // i32 offsets, as arrow's `BinaryBuilder` (which panics the same way past 2 GiB)
        self.offsets.push(i32::try_from(self.values.len()).expect("a column's text in one chunk fits i32 offsets"));
        if field.is_empty() { Pushed::Null } else { Pushed::Value }
    }

    fn truncate(&mut self, rows: usize) {
        self.offsets.truncate(rows + 1);
        self.values.truncate(self.offsets[rows].as_usize());
        while self.nulls.last().is_some_and(|&r| r >= rows) {
            self.nulls.pop();
        }
    }

    fn finish(&mut self) -> BinaryArray {
        let rows = self.offsets.len() - 1;
        let capacity = self.values.capacity();
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(capacity));
        let offsets = std::mem::replace(&mut self.offsets, Vec::with_capacity(rows + 1));
        self.offsets.push(0);
        let nulls = nulls_at(rows, &std::mem::take(&mut self.nulls));
        BinaryArray::new(OffsetBuffer::new(ScalarBuffer::from(offsets)), Buffer::from(values), nulls)
    }
}

/// Values parsed as they are read: a null for an empty or blank field, and
/// for a field that does not parse (its record is taken back out).
pub(crate) struct Parsed<T> {
    values: Vec<T>,
    nulls: Vec<usize>,
}

impl<T: ArrowNativeType> Parsed<T> {
    fn new(rows: usize) -> Self {
        Self { values: Vec::with_capacity(rows), nulls: Vec::new() }
    }

    fn push(&mut self, field: &[u8], parse: impl FnOnce(&[u8]) -> Option<T>) -> Pushed {
        if !field.is_empty()
            && let Some(v) = parse(field)
        {
            self.values.push(v);
            return Pushed::Value;
        }
        let row = self.values.len();
        self.nulls.push(row);
        self.values.push(T::default());
        if field.iter().all(u8::is_ascii_whitespace) { Pushed::Null } else { Pushed::Failed }
    }

    fn truncate(&mut self, rows: usize) {
        self.values.truncate(rows);
        while self.nulls.last().is_some_and(|&r| r >= rows) {
            self.nulls.pop();
        }
    }

    fn finish<A: ArrowPrimitiveType<Native = T>>(&mut self, data_type: DataType) -> ArrayRef {
        let rows = self.values.len();
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(rows));
        let nulls = nulls_at(rows, &std::mem::take(&mut self.nulls));
        Arc::new(PrimitiveArray::<A>::new(values.into(), nulls).with_data_type(data_type))
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;

    use super::*;

    /// A record taken back out leaves no value, null or offset behind.
    #[test]
    fn truncate_takes_back_values_nulls_and_offsets() {
        let mut text = Fields::new(&DataType::Utf8, true, 2);
        let mut num = Fields::new(&DataType::Float64, true, 2);
        let mut none = Fields::new(&DataType::Int32, false, 2);
        for (t, n) in [("a", "1.5"), ("", "x"), ("b", " "), ("", "2")] {
            let pushed = [text.push(t.as_bytes()), num.push(n.as_bytes()), none.push(b"")];
            if pushed[1] == Pushed::Failed {
                assert_eq!(pushed[0], Pushed::Null);
                for f in [&mut text, &mut num, &mut none] {
                    f.truncate(1);
                }
            }
        }
        let text = text.finish(3);
        let text = text.as_string::<i32>();
        assert_eq!(text.iter().collect::<Vec<_>>(), [Some("a"), Some("b"), None]);
        let values = num.finish(3);
        let values = values.as_primitive::<Float64Type>();
        assert_eq!(values.iter().collect::<Vec<_>>(), [Some(1.5), None, Some(2.0)], "a blank field is no value");
        assert_eq!(none.finish(3).len(), 3);
        assert_eq!(num.push(b"7"), Pushed::Value);
        assert_eq!(
            num.finish(1).as_primitive::<Float64Type>().values().to_vec(),
            [7.0],
            "a finished sink starts again"
        );
    }
}
