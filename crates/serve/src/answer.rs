//! A query's answer in the format the caller asked for: JSON (the default),
//! CSV, an Arrow IPC stream or Parquet, chosen by `format=` or `Accept`.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

/// What a report or a SQL query gave.
pub struct Answer {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    /// More rows matched than the answer holds (the row limit).
    pub truncated: bool,
    /// The oldest last-commit time (RFC 3339) of the tables read.
    pub freshness: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Arrow,
    Parquet,
}

impl Format {
    /// `format=` wins; then the first known type in `Accept`; then JSON.
    pub fn pick(asked: Option<&str>, headers: &HeaderMap) -> Result<Format, String> {
        if let Some(f) = asked {
            return match f {
                "json" => Ok(Format::Json),
                "csv" => Ok(Format::Csv),
                "arrow" => Ok(Format::Arrow),
                "parquet" => Ok(Format::Parquet),
                other => Err(format!("unknown format `{other}`; expected json, csv, arrow or parquet")),
            };
        }
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        for t in accept.split(',').map(|t| t.split(';').next().unwrap_or("").trim()) {
            match t {
                "text/csv" => return Ok(Format::Csv),
                "application/vnd.apache.arrow.stream" => return Ok(Format::Arrow),
                "application/vnd.apache.parquet" | "application/x-parquet" => return Ok(Format::Parquet),
                "application/json" => return Ok(Format::Json),
                _ => {}
            }
        }
        Ok(Format::Json)
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }
}

/// An answer encoded once, served as often as asked (see `cache`).
pub struct Encoded {
    body: axum::body::Bytes,
    format: Format,
    freshness: Option<String>,
    truncated: bool,
    /// The download's name: the report's, or `query`.
    name: String,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.body.len()
    }

    pub fn response(&self) -> Response {
        let mut resp = self.body.clone().into_response();
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.format.content_type()));
        if let Some(at) = self.freshness.as_deref().and_then(|f| HeaderValue::from_str(f).ok()) {
            h.insert("x-ingesta-freshness", at);
        }
        h.insert("x-ingesta-truncated", HeaderValue::from_static(if self.truncated { "true" } else { "false" }));
        let ext = match self.format {
            Format::Csv => Some("csv"),
            Format::Parquet => Some("parquet"),
            Format::Arrow => Some("arrows"),
            Format::Json => None,
        };
        let disposition = |ext| HeaderValue::from_str(&format!("attachment; filename=\"{}.{ext}\"", self.name)).ok();
        if let Some(v) = ext.and_then(disposition) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        resp
    }
}

/// Encodes `answer` in `format`; `report` names it.
pub fn encode(answer: Answer, format: Format, report: Option<&str>) -> Result<Encoded, String> {
    let body = match format {
        Format::Json => json_body(&answer, report).map(|v| v.to_string().into_bytes()),
        Format::Csv => csv_body(&answer),
        Format::Arrow => arrow_body(&answer),
        Format::Parquet => parquet_body(&answer),
    };
    let body = body.map_err(|e| format!("cannot encode the answer: {e}"))?;
    Ok(Encoded {
        body: body.into(),
        format,
        freshness: answer.freshness,
        truncated: answer.truncated,
        name: report.unwrap_or("query").to_string(),
    })
}

/// `{"report", "columns": [{name, type}], "rows": [[...]], "row_count", "truncated"}`.
fn json_body(a: &Answer, report: Option<&str>) -> Result<Value, String> {
    let names: Vec<&str> = a.schema.fields().iter().map(|f| f.name().as_str()).collect();
    let columns: Vec<Value> =
        a.schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string()})).collect();
    let rows: Vec<Value> = json_objects(&a.batches)?
        .into_iter()
        .map(|mut o| Value::Array(names.iter().map(|n| o.remove(*n).unwrap_or(Value::Null)).collect()))
        .collect();
    Ok(json!({
        "report": report,
        "columns": columns,
        "row_count": rows.len(),
        "truncated": a.truncated,
        "rows": rows,
    }))
}

fn csv_body(a: &Answer) -> Result<Vec<u8>, String> {
    let mut w = arrow_csv::WriterBuilder::new().with_header(true).build(Vec::new());
    if a.batches.is_empty() {
        w.write(&RecordBatch::new_empty(a.schema.clone())).map_err(|e| e.to_string())?;
    }
    for b in &a.batches {
        w.write(b).map_err(|e| e.to_string())?;
    }
    Ok(w.into_inner())
}

fn arrow_body(a: &Answer) -> Result<Vec<u8>, String> {
    let mut w = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &a.schema).map_err(|e| e.to_string())?;
    for b in &a.batches {
        w.write(b).map_err(|e| e.to_string())?;
    }
    w.finish().map_err(|e| e.to_string())?;
    w.into_inner().map_err(|e| e.to_string())
}

fn parquet_body(a: &Answer) -> Result<Vec<u8>, String> {
    let mut w =
        parquet::arrow::ArrowWriter::try_new(Vec::new(), Arc::clone(&a.schema), None).map_err(|e| e.to_string())?;
    for b in &a.batches {
        w.write(b).map_err(|e| e.to_string())?;
    }
    w.into_inner().map_err(|e| e.to_string())
}

/// Every row of `batches` as a JSON object (nulls kept), in Arrow's JSON forms.
pub fn json_objects(batches: &[RecordBatch]) -> Result<Vec<Map<String, Value>>, String> {
    let mut out = Vec::new();
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        let mut w = arrow_json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow_json::writer::JsonArray>(Vec::new());
        w.write(batch).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
        out.extend(serde_json::from_slice::<Vec<Map<String, Value>>>(&w.into_inner()).map_err(|e| e.to_string())?);
    }
    Ok(out)
}
