//! A change as a change row: the operation, the table, the key, and the old
//! and new rows as JSON objects, each value typed by its column (numbers and
//! booleans as JSON, timestamps in ISO 8601 with `Z` for UTC, numerics and
//! everything else as the text PostgreSQL prints, so nothing is rounded).

use crate::decode::{Change, Column, Op, Value};

/// One change row (before the stream's positions are added).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// `c` insert, `u` update, `d` delete, `t` truncate, `r` a snapshot row.
    pub op: &'static str,
    /// `schema.table`.
    pub table: String,
    /// The key columns' values (a JSON object); `{}` for a truncate.
    pub key: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// TOASTed columns the change did not touch and whose value the stream
    /// does not hold (no REPLICA IDENTITY FULL), as a JSON array: their
    /// values in `after` are read from the source row when the change is
    /// committed ([`crate::slot::fill_unchanged`]).
    pub unchanged: Option<String>,
}

impl Row {
    /// The bytes the row holds, to bound what is kept in memory.
    pub fn size(&self) -> usize {
        self.table.len()
            + self.key.len()
            + self.before.as_ref().map_or(0, String::len)
            + self.after.as_ref().map_or(0, String::len)
            + 64
    }
}

/// The change row of a streamed change.
pub fn change_row(c: &Change) -> Row {
    let cols = &c.relation.columns;
    let op = match c.op {
        Op::Insert => "c",
        Op::Update => "u",
        Op::Delete => "d",
        Op::Truncate => "t",
    };
    let table = c.relation.qualified();
    if c.op == Op::Truncate {
        return Row { op, table, key: "{}".into(), before: None, after: None, unchanged: None };
    }
    // an unchanged TOAST value is taken from the old row when it carries it
    let mut unchanged: Vec<&str> = Vec::new();
    let after = c.after.as_ref().map(|new| {
        let values: Vec<Option<&Value>> = new
            .iter()
            .enumerate()
            .map(|(i, v)| match (v, c.before.as_ref().map(|b| &b[i])) {
                (Value::Unchanged, Some(old @ Value::Text(_))) => Some(old),
                (Value::Unchanged, _) => {
                    unchanged.push(&cols[i].name);
                    None
                }
                _ => Some(v),
            })
            .collect();
        object(cols, values.into_iter())
    });
    // with the default identity the old row holds the key columns only
    let before = c
        .before
        .as_ref()
        .filter(|_| c.relation.full_identity)
        .map(|old| object(cols, old.iter().map(|v| (v != &Value::Unchanged).then_some(v))));
    let key_row = match c.op {
        Op::Delete => c.before.as_ref(),
        _ => c.after.as_ref(),
    };
    let key = key_row.map_or_else(|| "{}".to_string(), |r| key_object(cols, r));
    let unchanged = (!unchanged.is_empty()).then(|| serde_json::to_string(&unchanged).expect("strings"));
    Row { op, table, key, before, after, unchanged }
}

fn key_object(cols: &[Column], values: &[Value]) -> String {
    object_of(cols.iter().zip(values).filter(|(c, _)| c.key).map(|(c, v)| (c, Some(v))))
}

/// A JSON object of the columns whose value is `Some` (a `None` is left out).
fn object<'a>(cols: &'a [Column], values: impl Iterator<Item = Option<&'a Value>>) -> String {
    object_of(cols.iter().zip(values))
}

fn object_of<'a>(pairs: impl Iterator<Item = (&'a Column, Option<&'a Value>)>) -> String {
    let mut out = Object::with_capacity(128);
    for (c, v) in pairs {
        let Some(v) = v else { continue };
        let text = match v {
            Value::Text(t) => Some(t.as_str()),
            Value::Null | Value::Unchanged => None,
        };
        out.field(&c.name, c.type_oid, text);
    }
    out.finish()
}

/// A JSON object written field by field: each value's text typed by its
/// column's type ([`push_value`]), `None` as null.
pub(crate) struct Object(String);

impl Object {
    pub fn with_capacity(bytes: usize) -> Self {
        let mut out = String::with_capacity(bytes);
        out.push('{');
        Self(out)
    }

    pub fn field(&mut self, name: &str, oid: u32, text: Option<&str>) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        push_string(&mut self.0, name);
        self.0.push(':');
        match text {
            Some(t) => push_value(&mut self.0, oid, t),
            None => self.0.push_str("null"),
        }
    }

    pub fn finish(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

const BOOL: u32 = 16;
const INT8: u32 = 20;
const INT2: u32 = 21;
const INT4: u32 = 23;
const OID: u32 = 26;
const FLOAT4: u32 = 700;
const FLOAT8: u32 = 701;
const TIMESTAMP: u32 = 1114;
const TIMESTAMPTZ: u32 = 1184;

/// A value's text form as JSON, typed by its column's type.
pub fn push_value(out: &mut String, oid: u32, text: &str) {
    match oid {
        BOOL => out.push_str(if text == "t" { "true" } else { "false" }),
        INT2 | INT4 | INT8 | OID if text.parse::<i64>().is_ok() => out.push_str(text),
        FLOAT4 | FLOAT8 if text.parse::<f64>().is_ok_and(f64::is_finite) => out.push_str(text),
        // the session's time zone is UTC: `2026-12-07 19:09:53.1+00`
        TIMESTAMPTZ => match text.strip_suffix("+00") {
            Some(t) => push_string(out, &format!("{}Z", t.replacen(' ', "T", 1))),
            None => push_string(out, text),
        },
        TIMESTAMP => push_string(out, &text.replacen(' ', "T", 1)),
        _ => push_string(out, text),
    }
}

/// A JSON string, escaped as RFC 8259 says. Written here rather than
/// through serde_json, which would allocate a string per value: the initial
/// copy writes one per column of every row.
fn push_string(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
    } else {
        for ch in s.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::decode::Relation;

    fn rel(full: bool) -> Arc<Relation> {
        let col = |name: &str, type_oid, key| Column { name: name.into(), type_oid, key };
        Arc::new(Relation {
            id: 1,
            schema: "shop".into(),
            name: "products".into(),
            full_identity: full,
            columns: vec![col("id", INT8, true), col("price", 1700, false), col("notes", 25, false)],
        })
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn strings_are_escaped_as_serde_json_does() {
        for s in ["plain", "quote \" and \\ back", "line\nfeed\ttab\u{1}\u{8}\u{c}", "ñ and 😀"] {
            let mut out = String::new();
            push_string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn types_values_and_keeps_numerics_exact() {
        let mut s = String::new();
        push_value(&mut s, BOOL, "t");
        push_value(&mut s, INT4, "42");
        push_value(&mut s, FLOAT8, "NaN");
        push_value(&mut s, 1700, "12.30");
        push_value(&mut s, TIMESTAMPTZ, "2026-12-07 19:09:53.25+00");
        push_value(&mut s, TIMESTAMP, "2026-12-07 19:09:53");
        assert_eq!(s, r#"true42"NaN""12.30""2026-12-07T19:09:53.25Z""2026-12-07T19:09:53""#);
    }

    #[test]
    fn an_unchanged_toast_value_comes_from_the_old_row_or_is_named() {
        let after = Some(vec![t("1"), t("9.50"), Value::Unchanged]);
        let full = Change {
            op: Op::Update,
            relation: rel(true),
            before: Some(vec![t("1"), t("9.00"), t("long text")]),
            after: after.clone(),
        };
        let r = change_row(&full);
        assert_eq!(r.after.as_deref(), Some(r#"{"id":1,"price":"9.50","notes":"long text"}"#));
        assert_eq!(r.before.as_deref(), Some(r#"{"id":1,"price":"9.00","notes":"long text"}"#));
        assert_eq!(r.unchanged, None);
        let default = Change { op: Op::Update, relation: rel(false), before: None, after };
        let r = change_row(&default);
        assert_eq!(r.after.as_deref(), Some(r#"{"id":1,"price":"9.50"}"#));
        assert_eq!(r.unchanged.as_deref(), Some(r#"["notes"]"#));
        assert_eq!((r.op, r.key.as_str(), r.before), ("u", r#"{"id":1}"#, None));
    }

    #[test]
    fn a_delete_is_keyed_by_its_old_row() {
        let c = Change {
            op: Op::Delete,
            relation: rel(false),
            before: Some(vec![t("3"), Value::Null, Value::Null]),
            after: None,
        };
        let r = change_row(&c);
        assert_eq!((r.op, r.key.as_str(), r.after), ("d", r#"{"id":3}"#, None));
    }
}
