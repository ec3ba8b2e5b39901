//! The columns of a bronze table fed by the HTTP collector: the record's,
//! `_rescued`, the event's place in the collector's log and its request, then
//! the partitions.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ingesta_config::Partition;
use ingesta_sources::schema::{BATCH_ID, INGESTED_AT, RESCUED, RecordSchema, utc_micros};

use crate::bronze::enrich::{partition_arrays, partition_fields};

/// The event's number in the source's log: unique per source, in arrival order.
pub const SEQ: &str = "_seq";
pub const REQUEST_ID: &str = "_request_id";
pub const RECEIVED_AT: &str = "_received_at";

pub fn collect_schema(record: &RecordSchema, partitions: &[Partition]) -> SchemaRef {
    let mut fields: Vec<Field> = record.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(RESCUED, DataType::Utf8, true));
    fields.push(Field::new(SEQ, DataType::Int64, true));
    fields.push(Field::new(REQUEST_ID, DataType::Utf8, true));
    fields.push(Field::new(RECEIVED_AT, utc_micros(), true));
    fields.push(Field::new(INGESTED_AT, utc_micros(), true));
    fields.push(Field::new(BATCH_ID, DataType::Utf8, true));
    fields.extend(partition_fields(record, partitions));
    Arc::new(Schema::new(fields))
}

/// Where a kept event came from.
pub struct Meta<'a> {
    pub seq: i64,
    pub request: &'a str,
    pub received_at_us: i64,
}

pub struct Parts<'a> {
    pub rows: &'a RecordBatch,
    pub meta: &'a [&'a Meta<'a>],
    pub rescued: Vec<Option<String>>,
    pub ingested_at: i64,
    pub batch_id: &'a str,
}

pub fn assemble(schema: &SchemaRef, partitions: &[Partition], p: Parts) -> RecordBatch {
    let n = p.meta.len();
    let mut cols: Vec<ArrayRef> = p.rows.columns().to_vec();
    cols.push(Arc::new(StringArray::from(p.rescued)));
    cols.push(Arc::new(Int64Array::from_iter_values(p.meta.iter().map(|m| m.seq))));
    cols.push(Arc::new(StringArray::from_iter_values(p.meta.iter().map(|m| m.request))));
    let received = p.meta.iter().map(|m| m.received_at_us);
    cols.push(Arc::new(TimestampMicrosecondArray::from_iter_values(received).with_timezone("UTC")));
    cols.push(Arc::new(TimestampMicrosecondArray::from(vec![p.ingested_at; n]).with_timezone("UTC")));
    cols.push(Arc::new(StringArray::new_repeated(p.batch_id, n)));
    cols.extend(partition_arrays(p.rows, partitions));
    RecordBatch::try_new(schema.clone(), cols).expect("columns follow the collector schema")
}
