//! How the lake's writers encode columns. Parquet's default dictionary-encodes
//! every column: each value is hashed into a dictionary until the dictionary
//! passes 1 MiB, then the chunk falls back to plain values. For 64-bit
//! integers and timestamps that is the worst of both: event times, positions
//! and ids are nearly all distinct (the dictionary is abandoned after 128k
//! values, having cost a hash per value), and a time or counter that is
//! constant or grows in small steps packs to a few bits per value with
//! `DELTA_BINARY_PACKED`. Every reader of Delta tables reads that encoding
//! (it is Parquet 1.0). Other columns keep dictionaries: text, small integers
//! and measurements repeat, and there a dictionary is both small and fast.
//!
//! When the whole file's rows are at hand (`file_write.rs`), a float column
//! whose values are mostly distinct (a gold table's sums and averages) is
//! written plain: its dictionary would hold every value, larger and slower
//! than the values themselves.

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

/// The encoded bytes after which a row group is flushed (or a million rows).
const ROW_GROUP_BYTES: usize = 32 << 20;

/// The properties of a data file with `schema`'s columns.
pub(crate) fn writer_properties(schema: &Schema) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_created_by(format!("ingesta {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        // a row group is held in memory until it is flushed: wide rows (a
        // change row's JSON) end one before a million of them would pass
        // what a writer may hold (Java's parquet.block.size does the same at 128 MiB)
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES));
    for field in schema.fields() {
        if matches!(field.data_type(), DataType::Int64 | DataType::Timestamp(_, _)) {
            let column = ColumnPath::from(field.name().as_str());
            props = props
                .set_column_dictionary_enabled(column.clone(), false)
                .set_column_encoding(column, Encoding::DELTA_BINARY_PACKED);
        }
    }
    props.build()
}

/// Rows [`file_properties`] looks at to tell whether a column repeats.
const SAMPLE: usize = 1024;

/// The properties of a data file holding just `rows`: as
/// [`writer_properties`], with no dictionary for a float column of which
/// more than half the first [`SAMPLE`] values are distinct.
pub(crate) fn file_properties(rows: &RecordBatch) -> WriterProperties {
    let schema = rows.schema();
    let plain: Vec<&str> = schema
        .fields()
        .iter()
        .zip(rows.columns())
        .filter(|(f, c)| matches!(f.data_type(), DataType::Float64 | DataType::Float32) && mostly_distinct(c.as_ref()))
        .map(|(f, _)| f.name().as_str())
        .collect();
    if plain.is_empty() {
        return writer_properties(&schema);
    }
    let mut props = writer_properties(&schema).into_builder();
    for name in plain {
        props = props.set_column_dictionary_enabled(ColumnPath::from(name), false);
    }
    props.build()
}

/// Whether more than half the first [`SAMPLE`] values of a float column differ.
fn mostly_distinct(column: &dyn Array) -> bool {
    let bits: Vec<u64> = match column.data_type() {
        DataType::Float64 => {
            let c = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Float64Type>(column);
            c.iter().flatten().take(SAMPLE).map(f64::to_bits).collect()
        }
        DataType::Float32 => {
            let c = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Float32Type>(column);
            c.iter().flatten().take(SAMPLE).map(|v| u64::from(v.to_bits())).collect()
        }
        _ => return false,
    };
    let distinct: std::collections::HashSet<u64> = bits.iter().copied().collect();
    distinct.len() * 2 > bits.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Float64Array;
    use arrow_schema::Field;
    use std::sync::Arc;

    #[test]
    fn a_float_column_of_distinct_values_has_no_dictionary() {
        let schema =
            Schema::new(vec![Field::new("sum", DataType::Float64, true), Field::new("min", DataType::Float64, true)]);
        let sums = Float64Array::from_iter_values((0..2000).map(|i| i as f64 * 1.37));
        let mins = Float64Array::from_iter_values((0..2000).map(|i| (i % 40) as f64 / 2.0));
        let rows = RecordBatch::try_new(Arc::new(schema), vec![Arc::new(sums), Arc::new(mins)]).unwrap();
        let props = file_properties(&rows);
        assert!(!props.dictionary_enabled(&ColumnPath::from("sum")), "distinct sums: plain");
        assert!(props.dictionary_enabled(&ColumnPath::from("min")), "repeated readings keep the dictionary");
    }
}
