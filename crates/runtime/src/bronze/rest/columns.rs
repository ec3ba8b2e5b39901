//! The columns of a bronze table fed by a REST API: the record's,
//! `_rescued`, the page it came from (its URL with query values masked but
//! the page's position, its number among the pages the table holds, the
//! record's place in it), then the partitions.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, SchemaRef};
use ingesta_config::Partition;
use ingesta_sources::schema::RecordSchema;

use crate::bronze::enrich::{message_batch, message_schema};

pub const URL: &str = "_url";
/// The page's number among the pages the table holds (from 1).
pub const PAGE: &str = "_page";
/// The record's place in its page's array (from 1).
pub const INDEX: &str = "_index";

pub fn rest_schema(record: &RecordSchema, partitions: &[Partition]) -> SchemaRef {
    let meta = vec![
        Field::new(URL, DataType::Utf8, true),
        Field::new(PAGE, DataType::Int64, true),
        Field::new(INDEX, DataType::Int64, true),
    ];
    message_schema(record, meta, partitions)
}

/// Where a record came from.
pub struct Meta {
    /// Its page's URL, an index into the batch's URLs.
    pub url: usize,
    pub page: i64,
    pub index: i64,
}

pub struct Parts<'a> {
    pub rows: &'a RecordBatch,
    pub meta: &'a [&'a Meta],
    pub urls: &'a [String],
    pub rescued: Vec<Option<String>>,
    pub ingested_at: i64,
    pub batch_id: &'a str,
}

pub fn assemble(schema: &SchemaRef, partitions: &[Partition], p: Parts) -> RecordBatch {
    let meta: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(p.meta.iter().map(|m| p.urls[m.url].as_str()))),
        Arc::new(Int64Array::from_iter_values(p.meta.iter().map(|m| m.page))),
        Arc::new(Int64Array::from_iter_values(p.meta.iter().map(|m| m.index))),
    ];
    message_batch(schema, partitions, p.rows, p.rescued, meta, p.ingested_at, p.batch_id)
}
