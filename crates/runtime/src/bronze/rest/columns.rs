//! The columns of a bronze table fed by a REST API: the record's,
//! `_rescued`, the page it came from (its URL with query values masked but
//! the page's position, its number among the pages the table holds, the
//! record's place in it), then the partitions.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ingesta_config::Partition;
use ingesta_sources::schema::{BATCH_ID, INGESTED_AT, RESCUED, RecordSchema, utc_micros};

use crate::bronze::enrich::{partition_arrays, partition_fields};

pub const URL: &str = "_url";
/// The page's number among the pages the table holds (from 1).
pub const PAGE: &str = "_page";
/// The record's place in its page's array (from 1).
pub const INDEX: &str = "_index";

pub fn rest_schema(record: &RecordSchema, partitions: &[Partition]) -> SchemaRef {
    let mut fields: Vec<Field> = record.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(RESCUED, DataType::Utf8, true));
    fields.push(Field::new(URL, DataType::Utf8, true));
    fields.push(Field::new(PAGE, DataType::Int64, true));
    fields.push(Field::new(INDEX, DataType::Int64, true));
    fields.push(Field::new(INGESTED_AT, utc_micros(), true));
    fields.push(Field::new(BATCH_ID, DataType::Utf8, true));
    fields.extend(partition_fields(record, partitions));
    Arc::new(Schema::new(fields))
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
    let n = p.meta.len();
    let mut cols: Vec<ArrayRef> = p.rows.columns().to_vec();
    cols.push(Arc::new(StringArray::from(p.rescued)));
    cols.push(Arc::new(StringArray::from_iter_values(p.meta.iter().map(|m| p.urls[m.url].as_str()))));
    cols.push(Arc::new(Int64Array::from_iter_values(p.meta.iter().map(|m| m.page))));
    cols.push(Arc::new(Int64Array::from_iter_values(p.meta.iter().map(|m| m.index))));
    cols.push(Arc::new(TimestampMicrosecondArray::from(vec![p.ingested_at; n]).with_timezone("UTC")));
    cols.push(Arc::new(StringArray::new_repeated(p.batch_id, n)));
    cols.extend(partition_arrays(p.rows, partitions));
    RecordBatch::try_new(schema.clone(), cols).expect("columns follow the REST schema")
}
