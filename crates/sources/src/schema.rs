//! The Arrow schema of a table's record columns, from declared columns or
//! inferred from a sample, and the metadata columns every bronze row carries.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use ingesta_config::{Column, ColumnType};

/// Column names added to every bronze row.
pub const INGESTED_AT: &str = "_ingested_at";
pub const SOURCE: &str = "_source";
pub const POSITION: &str = "_position";
pub const BATCH_ID: &str = "_batch_id";
/// Fields of a message that the columns do not name, as a JSON object.
pub const RESCUED: &str = "_rescued";

pub fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::String => DataType::Utf8,
        ColumnType::Int => DataType::Int32,
        ColumnType::Bigint => DataType::Int64,
        ColumnType::Float => DataType::Float32,
        ColumnType::Double => DataType::Float64,
        ColumnType::Boolean => DataType::Boolean,
        ColumnType::Timestamp => utc_micros(),
        ColumnType::Date => DataType::Date32,
        ColumnType::Decimal(p, s) => DataType::Decimal128(p, s),
    }
}

/// The record columns of a table with the `required` flag kept as
/// non-nullability (the stored table itself keeps every column nullable).
#[derive(Debug, Clone)]
pub struct RecordSchema {
    pub schema: SchemaRef,
    pub required: Vec<bool>,
}

impl RecordSchema {
    pub fn from_columns(cols: &[Column]) -> Self {
        let fields: Vec<Field> = cols.iter().map(|c| Field::new(&c.name, arrow_type(c.ty), true)).collect();
        Self { schema: Arc::new(Schema::new(fields)), required: cols.iter().map(|c| c.required).collect() }
    }

    /// An inferred or stored schema, normalised to the types a table can hold
    /// (nested values are left out with a warning by the caller).
    pub fn from_arrow(schema: &Schema) -> Self {
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .filter(|f| !f.name().starts_with('_'))
            .filter_map(|f| normalise(f.data_type()).map(|t| Field::new(f.name(), t, true)))
            .collect();
        let n = fields.len();
        Self { schema: Arc::new(Schema::new(fields)), required: vec![false; n] }
    }

    /// The same columns, every one read as text (the shape parsers produce).
    pub fn as_text(&self) -> SchemaRef {
        let fields: Vec<Field> =
            self.schema.fields().iter().map(|f| Field::new(f.name(), DataType::Utf8, true)).collect();
        Arc::new(Schema::new(fields))
    }
}

fn normalise(t: &DataType) -> Option<DataType> {
    Some(match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Int8 | DataType::Int16 | DataType::Int32 => DataType::Int32,
        DataType::Int64 | DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 | DataType::Float32 => DataType::Float32,
        DataType::Float64 => DataType::Float64,
        DataType::Boolean => DataType::Boolean,
        DataType::Timestamp(_, _) => utc_micros(),
        DataType::Date32 | DataType::Date64 => DataType::Date32,
        DataType::Decimal128(p, s) => DataType::Decimal128(*p, *s),
        DataType::Null => DataType::Utf8,
        _ => return None,
    })
}
