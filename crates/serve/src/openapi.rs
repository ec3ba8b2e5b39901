//! The OpenAPI 3.1 document of a pipeline's API, generated from its
//! declared reports: each report is a `GET` operation with its typed
//! parameters, beside the fixed routes (SQL, tables, quarantine).

use std::collections::BTreeMap;

use ingesta_config::{ParamType, Report};
use serde_json::{Map, Value, json};

pub fn document(pipeline: &str, reports: &BTreeMap<String, Report>) -> Value {
    let mut paths = Map::new();
    for (name, r) in reports {
        let mut params: Vec<Value> = r.params.iter().map(param).collect();
        params.extend(paging());
        let summary = if r.description.is_empty() { format!("Report {name}") } else { r.description.clone() };
        paths.insert(
            format!("/api/reports/{name}"),
            json!({"get": {
                "operationId": format!("report_{}", name.replace('-', "_")),
                "tags": ["reports"],
                "summary": summary,
                "description": format!("```sql\n{}\n```", r.sql.trim()),
                "parameters": params,
                "responses": answers(),
                "security": [{"bearer": []}],
            }}),
        );
    }
    paths.insert(
        "/api/sql".into(),
        json!({"post": {
            "operationId": "sql",
            "tags": ["sql"],
            "summary": "Read-only SQL over the pipeline's tables",
            "description": "DataFusion SQL. Tables go by their pipeline names, quarantines as `<table>__quarantine`. \
                            Statements that write are refused.",
            "parameters": [format_param()],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["sql"], "properties": {"sql": {"type": "string"}}}}}},
            "responses": answers(),
            "security": [{"bearer": []}],
        }}),
    );
    paths.insert("/api/tables".into(), simple("tables", "Every table: layer, store, rows, version, freshness, state"));
    paths.insert(
        "/api/tables/{name}".into(),
        json!({"get": {"operationId": "table", "tags": ["tables"], "summary": "One table",
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "The table"}, "404": {"description": "No such table"}},
            "security": [{"bearer": []}]}}),
    );
    paths.insert(
        "/api/tables/{name}/quarantine".into(),
        json!({"get": {"operationId": "quarantine", "tags": ["tables"],
            "summary": "A table's quarantined records: counts by reason and samples",
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 20}}],
            "responses": {"200": {"description": "Counts and samples"}},
            "security": [{"bearer": []}]}}),
    );
    paths.insert(
        "/api/tables/{name}/compact".into(),
        json!({"post": {"operationId": "compact", "tags": ["admin"],
            "summary": "Rewrite a table's small files into large ones (admin token)",
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": {"description": "Files before and after"}, "403": {"description": "Not an admin token"}},
            "security": [{"bearer": []}]}}),
    );
    paths.insert(
        "/api/tables/{name}/replay".into(),
        json!({"post": {"operationId": "replay", "tags": ["admin"],
            "summary": "Read a landing table's quarantined records again, exactly once (admin token)",
            "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}},
                           {"name": "reason", "in": "query", "schema": {"type": "string"}},
                           {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}}],
            "responses": {"200": {"description": "What was replayed"}, "400": {"description": "Not a landing table"},
                          "403": {"description": "Not an admin token"}},
            "security": [{"bearer": []}]}}),
    );
    paths.insert(
        "/api/runs".into(),
        json!({"get": {"operationId": "runs", "tags": ["tables"],
            "summary": "The run history: each table pass that committed or failed, newest first",
            "parameters": [{"name": "table", "in": "query", "schema": {"type": "string"}},
                           {"name": "limit", "in": "query", "schema": {"type": "integer", "default": 20}}],
            "responses": {"200": {"description": "The passes"}, "404": {"description": "No such table"}},
            "security": [{"bearer": []}]}}),
    );
    paths.insert("/api/reports".into(), simple("reports", "The declared reports and their parameters"));
    json!({
        "openapi": "3.1.0",
        "info": {"title": format!("{pipeline} — Ingesta API"), "version": env!("CARGO_PKG_VERSION")},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    })
}

fn param(p: &ingesta_config::Param) -> Value {
    let mut schema = match p.kind {
        ParamType::String => json!({"type": "string"}),
        ParamType::Enum => json!({"type": "string", "enum": p.values}),
        ParamType::Int => json!({"type": "integer", "format": "int64"}),
        ParamType::Float => json!({"type": "number"}),
        ParamType::Bool => json!({"type": "boolean"}),
        ParamType::Date => json!({"type": "string", "format": "date"}),
        ParamType::Timestamp => json!({"type": "string", "format": "date-time"}),
    };
    if let Some(d) = p.default_text() {
        schema["default"] = Value::String(d);
    }
    json!({
        "name": p.name, "in": "query", "required": p.required && p.default.is_none(),
        "description": p.description, "schema": schema,
    })
}

fn paging() -> Vec<Value> {
    vec![
        json!({"name": "limit", "in": "query", "description": "At most this many rows",
               "schema": {"type": "integer", "minimum": 0}}),
        json!({"name": "offset", "in": "query", "description": "Skip this many rows first",
               "schema": {"type": "integer", "minimum": 0}}),
        format_param(),
    ]
}

fn format_param() -> Value {
    json!({"name": "format", "in": "query", "description": "The answer's format (or use Accept)",
           "schema": {"type": "string", "enum": ["json", "csv", "arrow", "parquet"], "default": "json"}})
}

fn answers() -> Value {
    json!({
        "200": {"description": "The rows", "content": {
            "application/json": {"schema": {"type": "object", "properties": {
                "columns": {"type": "array"}, "rows": {"type": "array"},
                "row_count": {"type": "integer"}, "truncated": {"type": "boolean"}}}},
            "text/csv": {}, "application/vnd.apache.arrow.stream": {}, "application/vnd.apache.parquet": {}}},
        "400": {"description": "A bad parameter or query"},
        "401": {"description": "No or a wrong token"},
        "504": {"description": "The query took too long"},
    })
}

fn simple(id: &str, summary: &str) -> Value {
    json!({"get": {"operationId": id, "tags": ["tables"], "summary": summary,
        "responses": {"200": {"description": summary}}, "security": [{"bearer": []}]}})
}
