//! Fields the columns do not name, kept in `_rescued` rather than dropped.
//! A table whose read schema has a `_rescued` column decodes JSON records
//! strictly; only a block that fails is looked at again, line by line: a line
//! naming other fields is rewritten with the named ones as they are and the
//! others as one JSON object (text) in `_rescued`. Blocks whose records name
//! no new field cost nothing more.

use std::collections::{BTreeMap, HashSet};

use arrow_schema::SchemaRef;
use serde_json::value::RawValue;

use crate::schema::RESCUED;

/// Lines of JSON in a buffer of their own: the buffer, and each line's span.
pub(crate) type Rewritten = (Vec<u8>, Vec<(usize, usize)>);

/// True when records read with `schema` keep their other fields in `_rescued`.
pub(crate) fn rescues(schema: &SchemaRef) -> bool {
    schema.index_of(RESCUED).is_ok()
}

/// The lines at `spans` of `data` with their other fields moved to
/// `_rescued`, in a buffer of their own (one line each, at the returned
/// spans); `None` when the schema keeps none or no line names another field.
pub(crate) fn rewrite(schema: &SchemaRef, data: &[u8], spans: &[(usize, usize)]) -> Option<Rewritten> {
    if !rescues(schema) {
        return None;
    }
    // a record's own `_rescued` is one of its other fields
    let named: HashSet<&str> = schema.fields().iter().map(|f| f.name().as_str()).filter(|n| *n != RESCUED).collect();
    let mut any = false;
    let mut buf = Vec::with_capacity(data.len() + spans.len() * 16);
    let mut out = Vec::with_capacity(spans.len());
    for &(s, e) in spans {
        let start = buf.len();
        match rescue_line(&data[s..e], &named) {
            Some(line) => {
                any = true;
                buf.extend_from_slice(line.as_bytes());
            }
            None => buf.extend_from_slice(&data[s..e]),
        }
        out.push((start, buf.len()));
        buf.push(b'\n');
    }
    any.then_some((buf, out))
}

/// A JSON object naming fields outside `named`, rewritten; `None` for
/// anything else (the line is decoded as it is, and fails as it would).
fn rescue_line(line: &[u8], named: &HashSet<&str>) -> Option<String> {
    let fields: BTreeMap<String, &RawValue> = serde_json::from_slice(line).ok()?;
    if fields.keys().all(|k| named.contains(k.as_str())) {
        return None;
    }
    let pair = |(k, v): (&String, &&RawValue)| format!("{}:{}", serde_json::Value::String(k.clone()), v.get());
    let (kept, other): (Vec<_>, Vec<_>) = fields.iter().partition(|(k, _)| named.contains(k.as_str()));
    let other = format!("{{{}}}", other.into_iter().map(pair).collect::<Vec<_>>().join(","));
    let mut kept: Vec<String> = kept.into_iter().map(pair).collect();
    kept.push(format!("\"{RESCUED}\":{}", serde_json::Value::String(other)));
    Some(format!("{{{}}}", kept.join(",")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn schema(names: &[&str]) -> SchemaRef {
        Arc::new(Schema::new(names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect::<Vec<_>>()))
    }

    #[test]
    fn other_fields_move_to_rescued_and_the_rest_stays_as_written() {
        let s = schema(&["id", "price", RESCUED]);
        let data = br#"{"id":"a","price":12345678901234567890.125}
{"id":"b","new":{"x":[1,2]},"price":1,"_rescued":"mine"}
not json"#;
        let mut spans = Vec::new();
        let mut at = 0;
        for line in data.split(|b| *b == b'\n') {
            spans.push((at, at + line.len()));
            at += line.len() + 1;
        }
        let (buf, out) = rewrite(&s, data, &spans).expect("a line names another field");
        let line = |i: usize| std::str::from_utf8(&buf[out[i].0..out[i].1]).unwrap();
        assert_eq!(line(0), r#"{"id":"a","price":12345678901234567890.125}"#);
        assert_eq!(line(1), r#"{"id":"b","price":1,"_rescued":"{\"_rescued\":\"mine\",\"new\":{\"x\":[1,2]}}"}"#);
        assert_eq!(line(2), "not json");
    }

    #[test]
    fn nothing_is_rewritten_without_a_rescued_column_or_other_fields() {
        let data = br#"{"id":"a","new":1}"#;
        assert!(rewrite(&schema(&["id"]), data, &[(0, data.len())]).is_none());
        assert!(rewrite(&schema(&["id", "new", RESCUED]), data, &[(0, data.len())]).is_none());
    }
}
