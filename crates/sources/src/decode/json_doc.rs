//! Whole JSON documents (an external API's responses). With `explode`, each
//! element of the array at that dotted path is a record and the document's
//! other top-level values are copied into it (`station` into each
//! observation). Without it, a top-level array's elements or the document
//! itself are the records. Positions are element numbers from 1.

use std::io::{BufRead, Read};

use ingesta_core::Reason;
use serde_json::Value;

use super::ndjson::JsonLines;
use super::{Chunk, Collector, ReadCtx, Stopped};

/// The largest document read whole.
const MAX_DOCUMENT: u64 = 512 << 20;

pub fn read_json_doc(
    reader: &mut dyn BufRead,
    explode: Option<&str>,
    ctx: &ReadCtx,
    emit: &mut dyn FnMut(Chunk) -> Result<(), Stopped>,
) -> Result<(), Stopped> {
    let mut col = Collector::new(ctx, emit);
    let mut text = Vec::new();
    if let Err(e) = reader.take(MAX_DOCUMENT + 1).read_to_end(&mut text) {
        return col.finish(Some(format!("cannot read the document: {e}")));
    }
    col.bytes = text.len() as u64;
    if text.len() as u64 > MAX_DOCUMENT {
        return col.finish(Some(format!("document is larger than {MAX_DOCUMENT} bytes")));
    }
    if text.iter().all(u8::is_ascii_whitespace) {
        return col.finish(None);
    }
    let doc: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            if !col.skipped(1) {
                col.bad(1, Reason::Parse, format!("invalid JSON document: {e}"), &text);
            }
            return col.finish(None);
        }
    };
    let records = match records(doc, explode) {
        Ok(r) => r,
        Err(e) => {
            if !col.skipped(1) {
                col.bad(1, Reason::Parse, e, &text);
            }
            return col.finish(None);
        }
    };
    let mut lines = JsonLines::new(ctx.schema.as_text());
    for (i, r) in records.into_iter().enumerate() {
        let position = i as i64 + 1;
        if col.skipped(position) {
            continue;
        }
        lines.push(r.to_string().as_bytes(), position);
        if lines.len() >= ctx.chunk_rows {
            lines.flush(&mut col, false)?;
        }
    }
    lines.flush(&mut col, true)
}

pub fn records(doc: Value, explode: Option<&str>) -> Result<Vec<Value>, String> {
    let Some(path) = explode else {
        return Ok(match doc {
            Value::Array(items) => items,
            other => vec![other],
        });
    };
    let Value::Object(mut top) = doc else {
        return Err(format!("expected a JSON object holding `{path}`, found another value"));
    };
    let mut parts = path.split('.');
    let first = parts.next().unwrap_or_default();
    let mut node = top.remove(first).ok_or_else(|| format!("the document has no `{path}`"))?;
    for p in parts {
        node = node.get_mut(p).map(Value::take).ok_or_else(|| format!("the document has no `{path}`"))?;
    }
    let Value::Array(items) = node else {
        return Err(format!("`{path}` is not an array"));
    };
    let parent: Vec<(String, Value)> = top.into_iter().filter(|(_, v)| !v.is_array() && !v.is_object()).collect();
    Ok(items
        .into_iter()
        .map(|item| match item {
            Value::Object(mut o) => {
                for (k, v) in &parent {
                    o.entry(k.clone()).or_insert_with(|| v.clone());
                }
                Value::Object(o)
            }
            other => other,
        })
        .collect())
}
