//! Ingestion metadata and partition values added to a chunk's rows.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, TimestampMicrosecondType};
use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::{DateTime, Datelike};
use ingesta_config::{Partition, PartitionTransform};
use ingesta_sources::schema::{BATCH_ID, INGESTED_AT, POSITION, RESCUED, RecordSchema, SOURCE, utc_micros};

/// The columns of a bronze table fed by files: the record's, the metadata, the
/// partitions, and `_rescued` last when the format keeps other fields (so
/// that a table from before it had one, which gains it at the end, has the
/// same order).
pub fn bronze_schema(record: &RecordSchema, partitions: &[Partition], rescued: bool) -> SchemaRef {
    let mut fields: Vec<Field> = record.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(INGESTED_AT, utc_micros(), true));
    fields.push(Field::new(SOURCE, DataType::Utf8, true));
    fields.push(Field::new(POSITION, DataType::Int64, true));
    fields.push(Field::new(BATCH_ID, DataType::Utf8, true));
    fields.extend(partition_fields(record, partitions));
    if rescued {
        fields.push(Field::new(RESCUED, DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

/// The columns records are read into: the table's, then `_rescued` (which
/// the readers fill with the fields the others do not name).
pub fn read_schema(record: &RecordSchema) -> RecordSchema {
    let mut fields: Vec<Field> = record.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(RESCUED, DataType::Utf8, true));
    let mut required = record.required.clone();
    required.push(false);
    RecordSchema { schema: Arc::new(Schema::new(fields)), required }
}

/// The columns of a bronze table of JSON records that carry their source's
/// own metadata (the collector's events, a REST API's records): the record's,
/// `_rescued`, the source's `meta`, `_ingested_at`, `_batch_id`, the partitions.
pub fn message_schema(record: &RecordSchema, meta: Vec<Field>, partitions: &[Partition]) -> SchemaRef {
    let mut fields: Vec<Field> = record.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(RESCUED, DataType::Utf8, true));
    fields.extend(meta);
    fields.push(Field::new(INGESTED_AT, utc_micros(), true));
    fields.push(Field::new(BATCH_ID, DataType::Utf8, true));
    fields.extend(partition_fields(record, partitions));
    Arc::new(Schema::new(fields))
}

/// A batch of a [`message_schema`] table: `rows` with their `rescued` fields
/// and the source's `meta` columns.
pub fn message_batch(
    schema: &SchemaRef,
    partitions: &[Partition],
    rows: &RecordBatch,
    rescued: Vec<Option<String>>,
    meta: Vec<ArrayRef>,
    ingested_at: i64,
    batch_id: &str,
) -> RecordBatch {
    let n = rows.num_rows();
    let mut cols: Vec<ArrayRef> = rows.columns().to_vec();
    cols.push(Arc::new(StringArray::from(rescued)));
    cols.extend(meta);
    cols.push(Arc::new(TimestampMicrosecondArray::from(vec![ingested_at; n]).with_timezone("UTC")));
    cols.push(Arc::new(StringArray::new_repeated(batch_id, n)));
    cols.extend(partition_arrays(rows, partitions));
    RecordBatch::try_new(schema.clone(), cols).expect("columns follow the table's schema")
}

/// The partition columns' fields.
pub fn partition_fields(record: &RecordSchema, partitions: &[Partition]) -> Vec<Field> {
    let mut fields = Vec::new();
    for p in partitions {
        let from = record
            .schema
            .field_with_name(p.from.as_deref().unwrap_or(&p.column))
            .map(|f| f.data_type().clone())
            .unwrap_or(DataType::Utf8);
        fields.push(Field::new(&p.column, partition_type(p.transform, &from), true));
    }
    fields
}

fn partition_type(t: PartitionTransform, from: &DataType) -> DataType {
    match t {
        PartitionTransform::Identity => from.clone(),
        PartitionTransform::Day => DataType::Date32,
        PartitionTransform::Month => DataType::Utf8,
        PartitionTransform::Year => DataType::Int32,
    }
}

/// A chunk's rows with what the worker can add: source, positions, partitions.
pub struct Enriched {
    /// The record columns (without `_rescued`).
    pub rows: RecordBatch,
    pub rescued: Option<ArrayRef>,
    pub source: ArrayRef,
    pub positions: ArrayRef,
    pub partitions: Vec<ArrayRef>,
}

pub fn enrich(mut rows: RecordBatch, source: &str, positions: &[i64], partitions: &[Partition]) -> Enriched {
    let n = rows.num_rows();
    let rescued = rows.schema().index_of(RESCUED).ok().map(|i| rows.remove_column(i));
    let parts = partition_arrays(&rows, partitions);
    Enriched {
        source: Arc::new(StringArray::new_repeated(source, n)),
        positions: Arc::new(Int64Array::from(positions.to_vec())),
        partitions: parts,
        rows,
        rescued,
    }
}

/// The partition columns of `rows`, computed from their record columns.
pub fn partition_arrays(rows: &RecordBatch, partitions: &[Partition]) -> Vec<ArrayRef> {
    partitions
        .iter()
        .map(|p| {
            let col = rows
                .column_by_name(p.from.as_deref().unwrap_or(&p.column))
                .expect("partition source is a record column")
                .clone();
            partition_values(&col, p.transform)
        })
        .collect()
}

fn partition_values(col: &ArrayRef, t: PartitionTransform) -> ArrayRef {
    let micros = || col.as_primitive::<TimestampMicrosecondType>().iter();
    let at = |v: i64| DateTime::from_timestamp_micros(v).unwrap_or_default();
    match t {
        PartitionTransform::Identity => col.clone(),
        // the UTC day, by arithmetic (arrow's cast goes through time zone tables)
        PartitionTransform::Day => Arc::new(
            col.as_primitive::<TimestampMicrosecondType>()
                .unary::<_, Date32Type>(|v| v.div_euclid(86_400_000_000) as i32),
        ),
        PartitionTransform::Month => {
            Arc::new(micros().map(|v| v.map(|v| at(v).format("%Y-%m").to_string())).collect::<StringArray>())
        }
        PartitionTransform::Year => Arc::new(micros().map(|v| v.map(|v| at(v).year())).collect::<Int32Array>()),
    }
}

/// The final batch in the table's column order.
pub fn assemble(schema: &SchemaRef, e: &Enriched, ingested_at: i64, batch_id: &str) -> RecordBatch {
    let n = e.rows.num_rows();
    let mut cols: Vec<ArrayRef> = e.rows.columns().to_vec();
    cols.push(Arc::new(TimestampMicrosecondArray::from(vec![ingested_at; n]).with_timezone("UTC")));
    cols.push(e.source.clone());
    cols.push(e.positions.clone());
    cols.push(Arc::new(StringArray::new_repeated(batch_id, n)));
    cols.extend(e.partitions.iter().cloned());
    cols.extend(e.rescued.clone());
    RecordBatch::try_new(schema.clone(), cols).expect("columns follow the bronze schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_partitions_are_utc_dates_also_before_1970() {
        let ts: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![
                Some(1_793_491_200_000_000 - 1),
                Some(1_793_491_200_000_000),
                Some(-1),
                None,
            ])
            .with_timezone("UTC"),
        );
        let days = partition_values(&ts, PartitionTransform::Day);
        let expected = arrow_cast::cast(&ts, &DataType::Date32).unwrap();
        assert_eq!(days.as_ref(), expected.as_ref());
    }
}
