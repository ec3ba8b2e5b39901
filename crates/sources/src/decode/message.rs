//! Message values (one partition's messages at a time) into typed rows, the
//! same way files are read: JSON text first, then `coerce`; what cannot be
//! read goes to quarantine with its offset. JSON fields that the columns do
//! not name are kept, as a JSON object, in `_rescued`. Avro values come in the
//! Confluent wire format (byte 0, a 4-byte big-endian schema id, the Avro
//! binary body) and are turned into JSON with timestamps as ISO-8601 text and
//! decimals as exact text, so they land typed.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::{ArrayRef, BinaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ingesta_config::MessageFormat;
use ingesta_core::{QuarantineRecord, Reason};
use serde_json::Value as Json;
use serde_json::value::RawValue;

use super::ndjson::JsonLines;
use super::{Chunk, Collector, ReadCtx, Stopped};
use crate::SourceError;
use crate::schema::RecordSchema;

/// One message value and its offset.
pub struct Raw<'a> {
    pub offset: i64,
    pub value: &'a [u8],
}

/// What a registry lookup can say about a schema id.
pub enum SchemaLookup {
    Found(Arc<apache_avro::Schema>),
    /// The registry does not know the id: the message is quarantined.
    Unknown(String),
    /// The registry cannot be asked now: the batch is retried later.
    Unavailable(String),
}

/// Decoded messages: typed rows with their offsets, `_rescued` per kept row,
/// and the quarantined messages.
pub struct Decoded {
    pub chunk: Chunk,
    pub rescued: Vec<Option<String>>,
}

/// The record columns of a `string` or `bytes` topic.
pub fn value_schema(format: MessageFormat) -> RecordSchema {
    let t = if format == MessageFormat::Bytes { DataType::Binary } else { DataType::Utf8 };
    RecordSchema { schema: Arc::new(Schema::new(vec![Field::new("value", t, true)])), required: vec![false] }
}

/// Decodes one partition's messages. `Err` only when the schema registry is
/// unavailable (nothing is quarantined for that; try again later).
pub fn decode_messages(
    format: MessageFormat,
    msgs: &[Raw],
    ctx: &ReadCtx,
    schemas: &dyn Fn(u32) -> SchemaLookup,
) -> Result<Decoded, SourceError> {
    match format {
        MessageFormat::String | MessageFormat::Bytes => Ok(plain(format, msgs, ctx)),
        MessageFormat::Json | MessageFormat::Avro => {
            structured(format, msgs, ctx, schemas).map_err(SourceError::Unavailable)
        }
    }
}

fn structured(
    format: MessageFormat,
    msgs: &[Raw],
    ctx: &ReadCtx,
    schemas: &dyn Fn(u32) -> SchemaLookup,
) -> Result<Decoded, String> {
    let known: HashSet<&str> = ctx.schema.schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut emit = |c: Chunk| -> Result<(), Stopped> {
        chunks.push(c);
        Ok(())
    };
    let mut col = Collector::new(ctx, &mut emit);
    let mut lines = JsonLines::new(ctx.schema.as_text());
    // `_rescued` of every message pushed, in offset order
    let mut rescued: Vec<(i64, Option<String>)> = Vec::with_capacity(msgs.len());
    for m in msgs {
        col.bytes += m.value.len() as u64;
        if m.value.len() > ctx.max_record_bytes {
            let e =
                format!("message is {} bytes, longer than max_record_bytes ({})", m.value.len(), ctx.max_record_bytes);
            col.bad(m.offset, Reason::TooLarge, e, m.value);
            continue;
        }
        let parsed = match format {
            MessageFormat::Avro => match avro_json(m.value, schemas) {
                Ok(j) => Ok(j),
                Err(AvroProblem::Retry(e)) => return Err(e),
                Err(AvroProblem::Bad(reason, e)) => Err((reason, e)),
            },
            _ => json_object(m.value).map_err(|e| (Reason::Parse, e)),
        };
        let (text, extra) = match parsed {
            Ok(v) => v,
            Err((reason, e)) => {
                col.bad(m.offset, reason, e, m.value);
                continue;
            }
        };
        let extra: Vec<_> = extra.into_iter().filter(|(k, _)| !known.contains(k.as_str())).collect();
        let extra = (!extra.is_empty()).then(|| {
            let fields: Vec<String> = extra.iter().map(|(k, v)| format!("{}:{v}", Json::String(k.clone()))).collect();
            format!("{{{}}}", fields.join(","))
        });
        lines.push(text.as_bytes(), m.offset);
        rescued.push((m.offset, extra));
    }
    lines.flush(&mut col, true).expect("collecting never stops");
    drop(col);
    let mut chunk = merge(chunks, ctx);
    // rescued values of the rows that survived typing (offsets ascend in both)
    let mut kept_rescued = Vec::with_capacity(chunk.positions.len());
    let mut it = rescued.into_iter();
    for &p in &chunk.positions {
        let r = it.by_ref().find(|(o, _)| *o == p).and_then(|(_, r)| r);
        kept_rescued.push(r);
    }
    chunk.done = true;
    Ok(Decoded { chunk, rescued: kept_rescued })
}

/// A JSON message as one line of text, and its top-level fields (to find
/// those the columns do not name).
/// A record as one line of JSON text, and its top-level fields.
type Fields = (String, Vec<(String, Box<RawValue>)>);

fn json_object(value: &[u8]) -> Result<Fields, String> {
    let text = std::str::from_utf8(value).map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
    let fields: std::collections::BTreeMap<String, Box<RawValue>> = serde_json::from_str(text).map_err(|e| {
        if text.trim_start().starts_with('{') { format!("invalid JSON: {e}") } else { "expected a JSON object".into() }
    })?;
    // a record spread over several lines is still one record
    let line = if text.contains(['\n', '\r']) { text.replace(['\n', '\r'], " ") } else { text.to_string() };
    Ok((line, fields.into_iter().collect()))
}

enum AvroProblem {
    Bad(Reason, String),
    Retry(String),
}

fn avro_json(value: &[u8], schemas: &dyn Fn(u32) -> SchemaLookup) -> Result<Fields, AvroProblem> {
    let bad = |e: String| AvroProblem::Bad(Reason::Parse, e);
    if value.len() < 5 || value[0] != 0 {
        let first = value.first().map_or("nothing".to_string(), |b| format!("byte {b}"));
        return Err(bad(format!(
            "not the Confluent wire format: starts with {first}, expected byte 0 and a schema id"
        )));
    }
    let id = u32::from_be_bytes([value[1], value[2], value[3], value[4]]);
    let schema = match schemas(id) {
        SchemaLookup::Found(s) => s,
        SchemaLookup::Unknown(e) => return Err(AvroProblem::Bad(Reason::Schema, e)),
        SchemaLookup::Unavailable(e) => return Err(AvroProblem::Retry(e)),
    };
    let mut body = &value[5..];
    let v = apache_avro::from_avro_datum(&schema, &mut body, None)
        .map_err(|e| bad(format!("Avro body does not match schema {id}: {e}")))?;
    if !body.is_empty() {
        return Err(bad(format!("{} bytes left after the Avro body of schema {id}", body.len())));
    }
    let json = super::avro::to_json_typed(v, &schema).map_err(bad)?;
    let Json::Object(fields) = &json else {
        return Err(bad(format!("schema {id} is not a record")));
    };
    let mut out = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        out.push((k.clone(), RawValue::from_string(v.to_string()).map_err(|e| bad(e.to_string()))?));
    }
    Ok((json.to_string(), out))
}

/// Several chunks of one decode (there is one unless it was cut) as one.
fn merge(mut chunks: Vec<Chunk>, ctx: &ReadCtx) -> Chunk {
    if chunks.len() == 1 {
        return chunks.pop().expect("one");
    }
    let schema = ctx.schema.schema.clone();
    let rows: Vec<&RecordBatch> = chunks.iter().map(|c| &c.rows).collect();
    let batch = arrow_select::concat::concat_batches(&schema, rows).expect("same schema");
    Chunk {
        rows: batch,
        positions: chunks.iter().flat_map(|c| c.positions.iter().copied()).collect(),
        quarantine: chunks.iter_mut().flat_map(|c| std::mem::take(&mut c.quarantine)).collect(),
        last: chunks.iter().map(|c| c.last).max().unwrap_or(ctx.skip_until),
        done: true,
        bytes: chunks.iter().map(|c| c.bytes).sum(),
    }
}

/// `string` and `bytes` topics: the value as it is.
fn plain(format: MessageFormat, msgs: &[Raw], ctx: &ReadCtx) -> Decoded {
    let mut quarantine = Vec::new();
    let mut positions = Vec::with_capacity(msgs.len());
    let mut kept: Vec<&[u8]> = Vec::with_capacity(msgs.len());
    let mut bad = |m: &Raw, reason: Reason, error: String| {
        if m.offset > ctx.quarantined_until {
            let keep = m.value.len().min(ctx.max_record_bytes);
            let raw = m.value[..keep].to_vec();
            quarantine.push(QuarantineRecord {
                source: ctx.source.to_string(),
                position: m.offset,
                reason,
                error,
                raw,
            });
        }
    };
    for m in msgs {
        if m.value.len() > ctx.max_record_bytes {
            let e =
                format!("message is {} bytes, longer than max_record_bytes ({})", m.value.len(), ctx.max_record_bytes);
            bad(m, Reason::TooLarge, e);
        } else if format == MessageFormat::String
            && let Err(e) = std::str::from_utf8(m.value)
        {
            bad(m, Reason::Parse, format!("invalid UTF-8 at byte {}", e.valid_up_to()));
        } else {
            positions.push(m.offset);
            kept.push(m.value);
        }
    }
    let col: ArrayRef = match format {
        MessageFormat::Bytes => Arc::new(BinaryArray::from_iter_values(kept.iter())),
        _ => Arc::new(StringArray::from_iter_values(kept.iter().map(|v| std::str::from_utf8(v).expect("checked")))),
    };
    let rows = RecordBatch::try_new(ctx.schema.schema.clone(), vec![col]).expect("value column");
    let n = positions.len();
    let chunk = Chunk {
        rows,
        positions,
        quarantine,
        last: msgs.last().map_or(ctx.skip_until, |m| m.offset),
        done: true,
        bytes: msgs.iter().map(|m| m.value.len() as u64).sum(),
    };
    Decoded { chunk, rescued: vec![None; n] }
}

#[cfg(test)]
mod tests {
    use ingesta_config::{Column, ColumnType};

    use super::*;

    fn ctx(schema: &RecordSchema) -> ReadCtx<'_> {
        ReadCtx {
            source: "orders/0",
            schema,
            skip_until: -1,
            quarantined_until: 2,
            chunk_rows: 100,
            max_record_bytes: 1 << 20,
        }
    }

    fn columns() -> RecordSchema {
        let col = |name: &str, ty| Column { name: name.into(), ty, required: true };
        RecordSchema::from_columns(&[col("id", ColumnType::Bigint), col("at", ColumnType::Timestamp)])
    }

    fn no_registry(_: u32) -> SchemaLookup {
        SchemaLookup::Unknown("none".into())
    }

    #[test]
    fn json_keeps_unknown_fields_in_rescued_and_quarantines_with_offsets() {
        let schema = columns();
        let values: [&[u8]; 5] = [
            br#"{"id": 1, "at": "2026-11-01T00:00:00Z", "payload": {"x": [1, 2]}, "note": "a"}"#,
            br#"{"id": "one", "at": "2026-11-01T00:00:00Z"}"#,
            b"{\"id\": 3,\n \"at\": \"2026-11-01 00:00:01\"}",
            br#"{"id": 4, "at": "2026-11-0"#,
            br#"{"id": "x"}"#,
        ];
        let msgs: Vec<Raw> = values.iter().enumerate().map(|(i, v)| Raw { offset: i as i64, value: v }).collect();
        let d = decode_messages(MessageFormat::Json, &msgs, &ctx(&schema), &no_registry).unwrap();
        assert_eq!(d.chunk.positions, [0, 2]);
        assert_eq!(d.rescued[0].as_deref(), Some(r#"{"note":"a","payload":{"x": [1, 2]}}"#));
        assert_eq!(d.rescued[1], None);
        // offsets 1 and 2 are at or before quarantined_until: already quarantined
        let bad: Vec<(i64, &str)> = d.chunk.quarantine.iter().map(|q| (q.position, q.reason.code())).collect();
        assert_eq!(bad, [(3, "parse_error"), (4, "type_error")]);
        assert!(d.chunk.quarantine.iter().all(|q| q.source == "orders/0"));
    }

    #[test]
    fn avro_needs_the_wire_format_and_a_known_schema() {
        let schema = columns();
        let avro = apache_avro::Schema::parse_str(
            r#"{"type": "record", "name": "r", "fields": [{"name": "id", "type": "long"},
                {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}"#,
        )
        .unwrap();
        let body = apache_avro::to_avro_datum(
            &avro,
            apache_avro::types::Value::Record(vec![
                ("id".into(), apache_avro::types::Value::Long(7)),
                ("at".into(), apache_avro::types::Value::TimestampMillis(1_793_491_200_000)),
            ]),
        )
        .unwrap();
        let mut good = vec![0, 0, 0, 0, 1];
        good.extend(&body);
        let mut unknown = vec![0, 0, 0, 0, 9];
        unknown.extend(&body);
        let values: [&[u8]; 3] = [&good, &unknown, b"{\"id\": 1}"];
        let msgs: Vec<Raw> = values.iter().enumerate().map(|(i, v)| Raw { offset: 10 + i as i64, value: v }).collect();
        let avro = Arc::new(avro);
        let lookup = |id: u32| {
            if id == 1 { SchemaLookup::Found(avro.clone()) } else { SchemaLookup::Unknown(format!("no schema {id}")) }
        };
        let d = decode_messages(MessageFormat::Avro, &msgs, &ctx(&schema), &lookup).unwrap();
        assert_eq!(d.chunk.positions, [10]);
        let bad: Vec<(i64, &str)> = d.chunk.quarantine.iter().map(|q| (q.position, q.reason.code())).collect();
        assert_eq!(bad, [(11, "unknown_schema"), (12, "parse_error")]);
        let down = |_: u32| SchemaLookup::Unavailable("registry down".into());
        assert!(decode_messages(MessageFormat::Avro, &msgs, &ctx(&schema), &down).is_err());
    }
}
