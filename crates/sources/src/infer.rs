//! Inferring a table's columns from a sample of its first input, for tables
//! that declare none. Numbers written as text stay text here: a declared
//! schema is the way to coerce them. The inferred schema is fixed when the
//! table is created; later runs read the table's own schema.

use std::collections::BTreeMap;
use std::io::{BufRead, Read};

use arrow_schema::{DataType, Field, Schema};
use ingesta_config::Format;
use serde_json::Value;

use crate::SourceError;
use crate::landing::{FileInfo, Landing};
use crate::schema::{RecordSchema, utc_micros};

/// Records looked at.
const SAMPLE: usize = 1000;

impl Landing {
    /// Infers the record columns from the first records of `file`.
    pub fn infer(&self, file: &FileInfo) -> Result<RecordSchema, SourceError> {
        let err = |e: &dyn std::fmt::Display| {
            SourceError::Unreadable(format!("cannot infer columns from `{}`: {e}", file.key.path))
        };
        if file.format == Format::Parquet {
            return self.parquet_schema(file).map(|s| RecordSchema::from_arrow(&s)).map_err(|e| err(&e));
        }
        let mut reader = self.open_text(file).map_err(|e| err(&e))?;
        let records: Vec<Value> = match file.format {
            Format::Csv => {
                let mut r = csv::ReaderBuilder::new()
                    .has_headers(self.config.csv.header)
                    .delimiter(self.config.csv.delimiter as u8)
                    .quote(self.config.csv.quote as u8)
                    .flexible(true)
                    .from_reader(reader);
                let names: Vec<String> = r.headers().map_err(|e| err(&e))?.iter().map(str::to_string).collect();
                r.records()
                    .take(SAMPLE)
                    .filter_map(Result::ok)
                    .map(|rec| {
                        let obj = names.iter().zip(rec.iter()).filter(|(_, v)| !v.is_empty());
                        Value::Object(obj.map(|(k, v)| (k.clone(), typed_text(v))).collect())
                    })
                    .collect()
            }
            Format::Json => {
                let mut text = Vec::new();
                reader.read_to_end(&mut text).map_err(|e| err(&e))?;
                let doc: Value = serde_json::from_slice(&text).map_err(|e| err(&e))?;
                crate::decode::json_records(doc, self.config.explode.as_deref()).map_err(|e| err(&e))?
            }
            Format::Avro => return Err(err(&"declare `columns` for Avro tables (the writer schema is not read yet)")),
            _ => reader
                .lines()
                .map_while(Result::ok)
                .filter(|l| !l.trim().is_empty())
                .take(SAMPLE)
                .filter_map(|l| serde_json::from_str(&l).ok())
                .collect(),
        };
        if records.is_empty() {
            return Err(err(&"no readable records in the sample; declare `columns`"));
        }
        Ok(from_records(&records))
    }
}

/// CSV cells are text; give numbers and booleans their JSON type for inference.
fn typed_text(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = v.parse::<f64>() {
        return Value::from(f);
    }
    match v {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(v.to_string()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Bool,
    Int,
    Double,
    Timestamp,
    Text,
    Nested,
}

fn kind(v: &Value) -> Option<Kind> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if n.is_i64() || n.is_u64() => Kind::Int,
        Value::Number(_) => Kind::Double,
        Value::String(s) if looks_like_timestamp(s) => Kind::Timestamp,
        Value::String(_) => Kind::Text,
        Value::Array(_) | Value::Object(_) => Kind::Nested,
    })
}

fn looks_like_timestamp(s: &str) -> bool {
    s.len() >= 19 && arrow_cast::parse::string_to_timestamp_nanos(s).is_ok()
}

/// Columns from JSON records (messages of a topic that declares none).
pub fn from_records(records: &[Value]) -> RecordSchema {
    let mut order: Vec<String> = Vec::new();
    let mut kinds: BTreeMap<String, Option<Kind>> = BTreeMap::new();
    for r in records {
        let Value::Object(o) = r else { continue };
        for (k, v) in o {
            let entry = kinds.entry(k.clone()).or_insert_with(|| {
                order.push(k.clone());
                None
            });
            if let Some(new) = kind(v) {
                *entry = Some(match *entry {
                    None => new,
                    Some(old) if old == new => old,
                    Some(Kind::Int) if new == Kind::Double => Kind::Double,
                    Some(Kind::Double) if new == Kind::Int => Kind::Double,
                    Some(old) => old.max(new).max(Kind::Text),
                });
            }
        }
    }
    let fields: Vec<Field> = order
        .iter()
        .filter(|name| !name.starts_with('_'))
        .filter_map(|name| {
            let t = match kinds[name] {
                Some(Kind::Bool) => DataType::Boolean,
                Some(Kind::Int) => DataType::Int64,
                Some(Kind::Double) => DataType::Float64,
                Some(Kind::Timestamp) => utc_micros(),
                Some(Kind::Text) | None => DataType::Utf8,
                Some(Kind::Nested) => {
                    tracing::warn!(column = %name, "nested values are not kept by inference; declare the column");
                    return None;
                }
            };
            Some(Field::new(name, t, true))
        })
        .collect();
    RecordSchema::from_arrow(&Schema::new(fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_types_and_widens_ints_to_doubles() {
        let recs: Vec<Value> = [
            r#"{"id": "a", "n": 1, "t": "2026-11-01T00:00:00Z", "x": 1}"#,
            r#"{"id": "b", "n": 2, "t": "2026-11-01T00:00:01Z", "x": 1.5, "ok": true}"#,
        ]
        .iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect();
        let s = from_records(&recs).schema;
        let types: Vec<String> = s.fields().iter().map(|f| format!("{}:{}", f.name(), f.data_type())).collect();
        assert_eq!(types, ["id:Utf8", "n:Int64", "t:Timestamp(µs, \"UTC\")", "x:Float64", "ok:Boolean"]);
    }
}
