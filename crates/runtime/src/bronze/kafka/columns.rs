//! The columns of a bronze table fed by a topic: the record's, `_rescued`
//! (JSON and Avro), the message's metadata, then the partitions.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ingesta_config::{MessageFormat, Partition};
use ingesta_kafka::Message;
use ingesta_sources::schema::{BATCH_ID, INGESTED_AT, RESCUED, RecordSchema, utc_micros};

use crate::bronze::enrich::{partition_arrays, partition_fields};

pub const TOPIC: &str = "_topic";
pub const PARTITION: &str = "_partition";
pub const OFFSET: &str = "_offset";
pub const TIMESTAMP: &str = "_timestamp";
pub const KEY: &str = "_key";
pub const HEADERS: &str = "_headers";

/// The record columns a topic table has before any message is read: the
/// declared ones, or the `value` column of `string` / `bytes` topics; `None`
/// when they are inferred from the first messages.
pub fn declared_record(columns: Option<&[ingesta_config::Column]>, format: MessageFormat) -> Option<RecordSchema> {
    match (columns, format) {
        (Some(cols), _) => Some(RecordSchema::from_columns(cols)),
        (None, MessageFormat::String | MessageFormat::Bytes) => Some(ingesta_sources::decode::value_schema(format)),
        (None, _) => None,
    }
}

pub fn stream_schema(record: &RecordSchema, format: MessageFormat, partitions: &[Partition]) -> SchemaRef {
    let mut fields: Vec<Field> = record.schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    if rescues(format) {
        fields.push(Field::new(RESCUED, DataType::Utf8, true));
    }
    fields.push(Field::new(TOPIC, DataType::Utf8, true));
    fields.push(Field::new(PARTITION, DataType::Int32, true));
    fields.push(Field::new(OFFSET, DataType::Int64, true));
    fields.push(Field::new(TIMESTAMP, utc_micros(), true));
    fields.push(Field::new(KEY, DataType::Utf8, true));
    fields.push(Field::new(HEADERS, DataType::Utf8, true));
    fields.push(Field::new(INGESTED_AT, utc_micros(), true));
    fields.push(Field::new(BATCH_ID, DataType::Utf8, true));
    fields.extend(partition_fields(record, partitions));
    Arc::new(Schema::new(fields))
}

fn rescues(format: MessageFormat) -> bool {
    matches!(format, MessageFormat::Json | MessageFormat::Avro)
}

/// The final batch: `rows` (typed record columns) of the messages `kept`
/// (in order), with their rescued fields and metadata.
pub struct Parts<'a> {
    pub rows: &'a RecordBatch,
    pub kept: &'a [&'a Message],
    pub rescued: Vec<Option<String>>,
    pub ingested_at: i64,
    pub batch_id: &'a str,
}

pub fn assemble(schema: &SchemaRef, format: MessageFormat, partitions: &[Partition], p: Parts) -> RecordBatch {
    let n = p.kept.len();
    let mut cols: Vec<ArrayRef> = p.rows.columns().to_vec();
    if rescues(format) {
        cols.push(Arc::new(StringArray::from(p.rescued)));
    }
    cols.push(Arc::new(StringArray::from_iter_values(p.kept.iter().map(|m| m.tp.topic.as_str()))));
    cols.push(Arc::new(Int32Array::from_iter_values(p.kept.iter().map(|m| m.tp.partition))));
    cols.push(Arc::new(Int64Array::from_iter_values(p.kept.iter().map(|m| m.offset))));
    let ts = p.kept.iter().map(|m| m.timestamp_ms.map(|t| t * 1000));
    cols.push(Arc::new(TimestampMicrosecondArray::from_iter(ts).with_timezone("UTC")));
    let keys = p.kept.iter().map(|m| m.key.as_deref().map(|k| String::from_utf8_lossy(k).into_owned()));
    cols.push(Arc::new(StringArray::from_iter(keys)));
    cols.push(Arc::new(StringArray::from_iter(p.kept.iter().map(|m| headers_json(m)))));
    cols.push(Arc::new(TimestampMicrosecondArray::from(vec![p.ingested_at; n]).with_timezone("UTC")));
    cols.push(Arc::new(StringArray::new_repeated(p.batch_id, n)));
    cols.extend(partition_arrays(p.rows, partitions));
    RecordBatch::try_new(schema.clone(), cols).expect("columns follow the stream schema")
}

/// Headers as a JSON object (values as text; a repeated name keeps the last).
fn headers_json(m: &Message) -> Option<String> {
    if m.headers.is_empty() {
        return None;
    }
    let obj: serde_json::Map<String, serde_json::Value> = m
        .headers
        .iter()
        .map(|(k, v)| {
            let v = v.as_ref().map_or(serde_json::Value::Null, |b| String::from_utf8_lossy(b).into_owned().into());
            (k.clone(), v)
        })
        .collect();
    Some(serde_json::Value::Object(obj).to_string())
}
