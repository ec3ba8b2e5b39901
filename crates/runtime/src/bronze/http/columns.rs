//! The columns of a bronze table fed by the HTTP collector: the record's,
//! `_rescued`, the event's place in the collector's log and its request, then
//! the partitions.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, SchemaRef};
use ingesta_config::Partition;
use ingesta_sources::schema::{RecordSchema, utc_micros};

use crate::bronze::enrich::{message_batch, message_schema};

/// The event's number in the source's log: unique per source, in arrival order.
pub const SEQ: &str = "_seq";
pub const REQUEST_ID: &str = "_request_id";
pub const RECEIVED_AT: &str = "_received_at";

pub fn collect_schema(record: &RecordSchema, partitions: &[Partition]) -> SchemaRef {
    let meta = vec![
        Field::new(SEQ, DataType::Int64, true),
        Field::new(REQUEST_ID, DataType::Utf8, true),
        Field::new(RECEIVED_AT, utc_micros(), true),
    ];
    message_schema(record, meta, partitions)
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
    let received = p.meta.iter().map(|m| m.received_at_us);
    let meta: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(p.meta.iter().map(|m| m.seq))),
        Arc::new(StringArray::from_iter_values(p.meta.iter().map(|m| m.request))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(received).with_timezone("UTC")),
    ];
    message_batch(schema, partitions, p.rows, p.rescued, meta, p.ingested_at, p.batch_id)
}
