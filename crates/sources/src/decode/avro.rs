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

/// Like `to_json`, with the writer schema at hand, so decimals get their scale.
pub(crate) fn to_json_typed(v: Value, schema: &apache_avro::Schema) -> Result<Json, String> {
    use apache_avro::Schema as S;
    Ok(match (v, schema) {
        (Value::Decimal(d), S::Decimal(ds)) => {
            let bytes = Vec::<u8>::try_from(&d).map_err(|e| e.to_string())?;
            Json::String(decimal_text(&bytes, ds.scale)?)
        }
        (Value::Record(fields), S::Record(rs)) => {
            let mut out = Map::with_capacity(fields.len());
            for (k, v) in fields {
                let json = match rs.fields.iter().find(|f| f.name == k) {
                    Some(f) => to_json_typed(v, &f.schema)?,
                    None => to_json(v)?,
                };
                out.insert(k, json);
            }
            Json::Object(out)
        }
        (Value::Union(i, inner), S::Union(u)) => match u.variants().get(i as usize) {
            Some(s) => to_json_typed(*inner, s)?,
            None => to_json(*inner)?,
        },
        (Value::Array(items), S::Array(a)) => {
            Json::Array(items.into_iter().map(|v| to_json_typed(v, &a.items)).collect::<Result<_, _>>()?)
        }
        (Value::Map(m), S::Map(ms)) => Json::Object(
            m.into_iter().map(|(k, v)| Ok((k, to_json_typed(v, &ms.types)?))).collect::<Result<Map<_, _>, String>>()?,
        ),
        (v, _) => to_json(v)?,
    })
}

/// Big-endian two's complement bytes and a scale as exact decimal text.
fn decimal_text(bytes: &[u8], scale: usize) -> Result<String, String> {
    if bytes.len() > 16 {
        return Err(format!("Avro decimal of {} bytes does not fit 38 digits", bytes.len()));
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut v: i128 = if negative { -1 } else { 0 };
    for b in bytes {
        v = (v << 8) | i128::from(*b);
    }
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    if scale == 0 {
        return Ok(format!("{sign}{digits}"));
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    Ok(format!("{sign}{int}.{frac}"))
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
    fn decimals_keep_their_scale() {
        assert_eq!(super::decimal_text(&[0x04, 0xd2], 2).unwrap(), "12.34");
        assert_eq!(super::decimal_text(&[0xfb, 0x2e], 2).unwrap(), "-12.34");
        assert_eq!(super::decimal_text(&[0x05], 3).unwrap(), "0.005");
        assert_eq!(super::decimal_text(&[], 0).unwrap(), "0");
    }

    #[test]
    fn timestamps_become_iso_text() {
        assert_eq!(super::ts_text(1_762_000_000_123_000), "2025-11-01T12:26:40.123000Z");
        assert_eq!(super::date_text(0), "1970-01-01");
    }
}
