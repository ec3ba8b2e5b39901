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

use arrow_schema::{DataType, Schema};
use parquet::basic::{Compression, Encoding};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

/// The properties of a data file with `schema`'s columns.
pub(crate) fn writer_properties(schema: &Schema) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_created_by(format!("ingesta {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY);
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
