//! Avro object container files. Each record becomes a JSON object (timestamps
//! as ISO-8601 text, decimals as exact text) and is read like NDJSON, so typing
//! and quarantine behave the same. Positions are record numbers from 1.

use std::io::BufRead;

use apache_avro::types::Value;
use ingesta_core::Reason;
use serde_json::{Map, Number, Value as Json};

use super::ndjson::JsonLines;
use super::{Chunk, Collector, ReadCtx, Stopped};

pub fn read_avro(
    reader: &mut dyn BufRead,
    ctx: &ReadCtx,
    emit: &mut dyn FnMut(Chunk) -> Result<(), Stopped>,
) -> Result<(), Stopped> {
    let mut col = Collector::new(ctx, emit);
    let records = match apache_avro::Reader::new(reader) {
        Ok(r) => r,
        Err(e) => return col.finish(Some(format!("not a readable Avro container file: {e}"))),
    };
    let mut lines = JsonLines::new(ctx.schema.as_text());
    let mut position: i64 = 0;
    for value in records {
        position += 1;
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                lines.flush(&mut col, false)?;
                return col.finish(Some(format!("cannot read past record {}: {e}", position - 1)));
            }
        };
        if col.skipped(position) {
            continue;
        }
        match to_json(value) {
            Ok(json) => {
                let text = json.to_string();
                col.bytes += text.len() as u64;
                lines.push(text.as_bytes(), position);
            }
            Err(e) => col.bad(position, Reason::Parse, e, b""),
        }
        if lines.len() >= ctx.chunk_rows {
            lines.flush(&mut col, false)?;
        }
    }
    lines.flush(&mut col, true)
}

fn to_json(v: Value) -> Result<Json, String> {
    Ok(match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::Int(i) => Json::from(i),
        Value::Long(i) => Json::from(i),
        Value::Float(f) => Number::from_f64(f64::from(f)).map_or(Json::Null, Json::Number),
        Value::Double(f) => Number::from_f64(f).map_or(Json::Null, Json::Number),
        Value::String(s) | Value::Enum(_, s) => Json::String(s),
        Value::Uuid(u) => Json::String(u.to_string()),
        Value::Bytes(b) | Value::Fixed(_, b) => Json::String(String::from_utf8_lossy(&b).into_owned()),
        Value::Date(d) => Json::String(date_text(d)),
        Value::TimestampMillis(ms) | Value::LocalTimestampMillis(ms) => Json::String(ts_text(ms * 1000)),
        Value::TimestampMicros(us) | Value::LocalTimestampMicros(us) => Json::String(ts_text(us)),
        Value::TimestampNanos(ns) | Value::LocalTimestampNanos(ns) => Json::String(ts_text(ns / 1000)),
        Value::TimeMillis(ms) => Json::from(ms),
        Value::TimeMicros(us) => Json::from(us),
        Value::Decimal(d) => {
            return Err(format!("Avro decimal without a readable scale is not supported ({d:?})"));
        }
        Value::BigDecimal(d) => Json::String(d.to_string()),
        Value::Union(_, inner) => to_json(*inner)?,
        Value::Array(items) => Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(m) => {
            Json::Object(m.into_iter().map(|(k, v)| Ok((k, to_json(v)?))).collect::<Result<Map<_, _>, String>>()?)
        }
        Value::Record(fields) => {
            Json::Object(fields.into_iter().map(|(k, v)| Ok((k, to_json(v)?))).collect::<Result<Map<_, _>, String>>()?)
        }
        other => return Err(format!("unsupported Avro value {other:?}")),
    })
}

fn ts_text(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let sub = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    format!("{}T{:02}:{:02}:{:02}.{sub:06}Z", date_text(days as i32), rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (civil-from-days, proleptic Gregorian).
fn date_text(days: i32) -> String {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_become_iso_text() {
        assert_eq!(super::ts_text(1_762_000_000_123_000), "2025-11-01T12:26:40.123000Z");
        assert_eq!(super::date_text(0), "1970-01-01");
    }
}
