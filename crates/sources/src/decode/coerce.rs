//! Converting parsed columns (text, or a format's own types) to the table's
//! declared types, row by row: a value that does not convert, or a required
//! value that is missing, sends only its row to quarantine.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, BooleanArray, PrimitiveArray, RecordBatch, new_null_array};
use arrow_buffer::NullBuffer;
use arrow_cast::display::ArrayFormatter;
use arrow_cast::{CastOptions, cast_with_options};
use arrow_schema::{DataType, Field};
use ingesta_core::Reason;

use super::{excerpt, number};
use crate::schema::RecordSchema;

pub struct Typed {
    /// Every input row, typed as the table's columns (a dropped row's
    /// values are null or partly converted): see `keep`.
    pub all: RecordBatch,
    /// Per input row: kept or not.
    pub keep: Vec<bool>,
    /// The first problem of every dropped row.
    pub problems: Vec<(usize, (Reason, String))>,
}

/// Converts the columns of `input`, matched to `target`'s by name.
pub fn coerce(input: &RecordBatch, target: &RecordSchema) -> Typed {
    let n = input.num_rows();
    let columns = target
        .schema
        .fields()
        .iter()
        .map(|field| match input.schema().index_of(field.name()) {
            Ok(idx) => input.column(idx).clone(),
            Err(_) => new_null_array(&DataType::Utf8, n),
        })
        .collect();
    coerce_columns(n, columns, target)
}

/// Converts `n` rows given as one column per column of `target`: text, a
/// format's own type, or already the target's type (a reader's own parse).
pub fn coerce_columns(n: usize, input: Vec<ArrayRef>, target: &RecordSchema) -> Typed {
    let mut problem: Vec<Option<(Reason, String)>> = vec![None; n];
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.schema.fields().len());
    for ((i, field), input) in target.schema.fields().iter().enumerate().zip(input) {
        let required = target.required[i];
        let src = blank_to_null(input, field.data_type());
        let out = convert(&src, field.data_type(), &mut problem, field.name());
        if out.null_count() > src.null_count() || (required && out.null_count() > 0) {
            let mut fmt = None;
            for row in null_rows(out.as_ref()) {
                if problem[row].is_some() {
                    continue;
                }
                if src.is_valid(row) {
                    let f = fmt.get_or_insert_with(|| ArrayFormatter::try_new(src.as_ref(), &Default::default()).ok());
                    let value = f.as_ref().map(|f| f.value(row).to_string()).unwrap_or_default();
                    problem[row] = Some(cannot_read(field, &value));
                } else if required {
                    problem[row] = Some(missing(field));
                }
            }
        }
        columns.push(out);
    }
    let keep: Vec<bool> = problem.iter().map(Option::is_none).collect();
    let all = RecordBatch::try_new(target.schema.clone(), columns).expect("columns follow the target schema");
    let problems = problem.into_iter().enumerate().filter_map(|(i, p)| p.map(|p| (i, p))).collect();
    Typed { all, keep, problems }
}

/// `src` as `to`: by our parsers, or arrow's cast. A cast that is not
/// supported at all fails every row (named in `problem`) and gives nulls.
fn convert(src: &ArrayRef, to: &DataType, problem: &mut [Option<(Reason, String)>], name: &str) -> ArrayRef {
    if src.data_type() == to {
        return src.clone();
    }
    if let Some(out) = parse(src, to) {
        return out;
    }
    let opts = CastOptions { safe: true, ..Default::default() };
    cast_with_options(src, to, &opts).unwrap_or_else(|e| {
        for p in problem.iter_mut().filter(|p| p.is_none()) {
            *p = Some((Reason::Type, format!("column `{name}`: {e}")));
        }
        new_null_array(to, src.len())
    })
}

/// The problem of a row without a value for the required `field`.
pub(crate) fn missing(field: &Field) -> (Reason, String) {
    (Reason::Missing, format!("required column `{}` is missing or null", field.name()))
}

/// The problem of a value of `field` that does not read as its type.
pub(crate) fn cannot_read(field: &Field, value: &str) -> (Reason, String) {
    let msg =
        format!("column `{}`: cannot read `{}` as {}", field.name(), excerpt(value), type_name(field.data_type()));
    (Reason::Type, msg)
}

#[cfg(test)]
impl Typed {
    /// The rows that converted (a copy when some did not).
    pub fn rows(&self) -> RecordBatch {
        if self.keep.iter().all(|k| *k) {
            return self.all.clone();
        }
        arrow_select::filter::filter_record_batch(&self.all, &BooleanArray::from(self.keep.clone()))
            .expect("same length")
    }
}

/// Text cells that are empty or blank mean "no value" for non-text columns.
fn blank_to_null(src: ArrayRef, target: &DataType) -> ArrayRef {
    if *target == DataType::Utf8 || *src.data_type() != DataType::Utf8 {
        return src;
    }
    let s = src.as_string::<i32>();
    let is_blank = |v: Option<&str>| v.is_some_and(|v| v.bytes().all(|b| b.is_ascii_whitespace()));
    if !s.iter().any(is_blank) {
        return src;
    }
    let blank = BooleanArray::from_iter(s.iter().map(|v| Some(is_blank(v))));
    arrow_select::nullif::nullif(&src, &blank).unwrap_or(src)
}

/// Text to doubles, ints and timestamps by our parsers (a cast does the other types).
fn parse(src: &ArrayRef, to: &DataType) -> Option<ArrayRef> {
    if *src.data_type() != DataType::Utf8 {
        return None;
    }
    Some(match to {
        DataType::Float64 => Arc::new(parse_text::<Float64Type>(src, number::parse)),
        DataType::Int32 => Arc::new(parse_text::<Int32Type>(src, |v| number::parse_int::<Int32Type>(v.as_bytes()))),
        DataType::Int64 => Arc::new(parse_text::<Int64Type>(src, |v| number::parse_int::<Int64Type>(v.as_bytes()))),
        to if *to == crate::schema::utc_micros() => {
            let mut last = super::timestamp::LastDate::default();
            Arc::new(parse_text::<TimestampMicrosecondType>(src, |v| last.parse(v)).with_timezone("UTC"))
        }
        _ => return None,
    })
}

/// The rows where `a` is null, found a word of its validity at a time.
fn null_rows(a: &dyn Array) -> Vec<usize> {
    a.nulls().map(|n| (!n.inner()).set_indices().collect()).unwrap_or_default()
}

/// A text column parsed value by value into a primitive column: a null stays
/// null, and a value `parse` rejects becomes null. The values are written
/// straight into their buffer; the validity is built only when a value fails.
fn parse_text<T: ArrowPrimitiveType>(
    text: &ArrayRef,
    mut parse: impl FnMut(&str) -> Option<T::Native>,
) -> PrimitiveArray<T> {
    let s = text.as_string::<i32>();
    let mut failed = Vec::new();
    let values: Vec<T::Native> = (0..s.len())
        .map(|i| {
            if s.is_null(i) {
                return T::Native::default();
            }
            parse(s.value(i)).unwrap_or_else(|| {
                failed.push(i);
                T::Native::default()
            })
        })
        .collect();
    let nulls = NullBuffer::union(s.nulls(), super::nulls_at(s.len(), &failed).as_ref());
    PrimitiveArray::new(values.into(), nulls)
}

fn type_name(t: &DataType) -> String {
    match t {
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean (true/false)".into(),
        DataType::Timestamp(..) => "timestamp (ISO-8601, e.g. 2026-11-01T08:30:00Z)".into(),
        DataType::Date32 => "date (YYYY-MM-DD)".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;
    use arrow_schema::{Field, Schema};
    use ingesta_config::{Column, ColumnType};

    fn col(name: &str, ty: ColumnType, required: bool) -> Column {
        Column { name: name.into(), ty, required }
    }

    #[test]
    fn bad_values_and_missing_required_values_drop_only_their_rows() {
        let target = RecordSchema::from_columns(&[
            col("ts", ColumnType::Timestamp, true),
            col("temperature", ColumnType::Double, false),
        ]);
        let text = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("ts", DataType::Utf8, true),
                Field::new("temperature", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("2026-11-01T00:00:01.5Z"),
                    None,
                    Some("2026-11-01 02:00:00"),
                    Some("2026-11-01T03:00:00Z"),
                ])),
                Arc::new(StringArray::from(vec![Some("12.5"), Some("1"), Some("N/A"), Some("")])),
            ],
        )
        .unwrap();
        let t = coerce(&text, &target);
        assert_eq!(t.keep, vec![true, false, false, true]);
        let rows = t.rows();
        assert_eq!(rows.num_rows(), 2);
        assert_eq!(t.problems[0].1.0, Reason::Missing);
        assert_eq!(t.problems[1].1.0, Reason::Type);
        assert!(t.problems[1].1.1.contains("cannot read `N/A` as double"), "{}", t.problems[1].1.1);
        // a blank number is a null, not an error
        assert!(rows.column(1).is_null(1));
    }
}
