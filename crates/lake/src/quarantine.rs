//! The quarantine table of a lake table: one row per record that could not be
//! read, with everything needed to understand and replay it.

use std::sync::Arc;

use arrow_array::builder::{BinaryBuilder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use ingesta_core::QuarantineRecord;

pub fn quarantine_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, true),
        Field::new("position", DataType::Int64, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
        // the record as text; `raw_bytes` holds the exact bytes when they are not UTF-8
        Field::new("raw", DataType::Utf8, true),
        Field::new("raw_bytes", DataType::Binary, true),
        Field::new("quarantined_at", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
        Field::new("batch_id", DataType::Utf8, true),
    ]))
}

pub fn quarantine_batch(records: &[QuarantineRecord], at_micros: i64, batch_id: &str) -> RecordBatch {
    let n = records.len();
    let mut source = StringBuilder::new();
    let mut position = Int64Builder::with_capacity(n);
    let mut reason = StringBuilder::new();
    let mut error = StringBuilder::new();
    let mut raw = StringBuilder::new();
    let mut raw_bytes = BinaryBuilder::new();
    let mut batch = StringBuilder::new();
    for r in records {
        source.append_value(&r.source);
        position.append_value(r.position);
        reason.append_value(r.reason.code());
        error.append_value(&r.error);
        match std::str::from_utf8(&r.raw) {
            Ok(text) => {
                raw.append_value(text);
                raw_bytes.append_null();
            }
            Err(_) => {
                raw.append_value(String::from_utf8_lossy(&r.raw));
                raw_bytes.append_value(&r.raw);
            }
        }
        batch.append_value(batch_id);
    }
    let at = TimestampMicrosecondArray::from(vec![at_micros; n]).with_timezone("UTC");
    let cols: Vec<ArrayRef> = vec![
        Arc::new(source.finish()),
        Arc::new(position.finish()),
        Arc::new(reason.finish()),
        Arc::new(error.finish()),
        Arc::new(raw.finish()),
        Arc::new(raw_bytes.finish()),
        Arc::new(at),
        Arc::new(batch.finish()),
    ];
    RecordBatch::try_new(quarantine_schema(), cols).expect("quarantine columns")
}
