//! The read API's handlers: every one asks for the `read` scope first.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use std::sync::Arc;

use crate::answer::{Format, encode};
use crate::{Page, Scope, Shared, fail, failure};

/// The read scope and the data, or the refusal.
macro_rules! guard {
    ($s:expr, $headers:expr) => {{
        if let Some(refused) = $s.tokens.refuse(&$headers, Scope::Read) {
            return refused;
        }
        match &$s.data {
            Some(d) => d.clone(),
            None => return fail(StatusCode::NOT_FOUND, "no data is served here".into()),
        }
    }};
}

pub async fn tables(State(s): Shared, headers: HeaderMap) -> Response {
    let data = guard!(s, headers);
    match data.tables().await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => failure(e),
    }
}

pub async fn table(State(s): Shared, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let data = guard!(s, headers);
    let all = match data.tables().await {
        Ok(v) => v,
        Err(e) => return failure(e),
    };
    let found = all["tables"].as_array().and_then(|ts| ts.iter().find(|t| t["name"] == name.as_str()));
    match found {
        Some(t) => axum::Json(t.clone()).into_response(),
        None => fail(StatusCode::NOT_FOUND, format!("no table `{name}` in this pipeline")),
    }
}

pub async fn quarantine(
    State(s): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let data = guard!(s, headers);
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(l)) => l.min(1000),
        Some(Err(_)) => return fail(StatusCode::BAD_REQUEST, "`limit` must be a whole number".into()),
    };
    match data.quarantine(name, limit).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => failure(e),
    }
}

/// The run history: `?table=` one table's passes, `?limit=` how many (20).
pub async fn runs(State(s): Shared, headers: HeaderMap, Query(q): Query<BTreeMap<String, String>>) -> Response {
    let data = guard!(s, headers);
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 20,
        Some(Ok(l)) => l.min(1000),
        Some(Err(_)) => return fail(StatusCode::BAD_REQUEST, "`limit` must be a whole number".into()),
    };
    match data.runs(q.get("table").cloned(), limit).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => failure(e),
    }
}

/// Admin: compacts one table (its rows do not change).
pub async fn compact(State(s): Shared, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if let Some(refused) = s.tokens.refuse(&headers, Scope::Admin) {
        return refused;
    }
    let Some(data) = s.data.clone() else { return fail(StatusCode::NOT_FOUND, "no data is served here".into()) };
    match data.compact(name).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => failure(e),
    }
}

/// Admin: reads a table's quarantined records again (`?reason=`, `?since=`).
pub async fn replay(
    State(s): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Some(refused) = s.tokens.refuse(&headers, Scope::Admin) {
        return refused;
    }
    let Some(data) = s.data.clone() else { return fail(StatusCode::NOT_FOUND, "no data is served here".into()) };
    match data.replay(name, q.get("reason").cloned(), q.get("since").cloned()).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => failure(e),
    }
}

pub async fn reports(State(s): Shared, headers: HeaderMap) -> Response {
    let _ = guard!(s, headers);
    let list: Vec<Value> = s
        .reports
        .iter()
        .map(|(name, r)| {
            let params: Vec<Value> = r
                .params
                .iter()
                .map(|p| {
                    json!({"name": p.name, "type": p.kind.as_str(), "required": p.required && p.default.is_none(),
                           "default": p.default_text(), "values": p.values, "description": p.description})
                })
                .collect();
            let chart = r.chart.as_ref().map(|c| json!({"type": c.kind.as_str(), "x": c.x, "y": c.y}));
            json!({"name": name, "description": r.description, "params": params, "chart": chart})
        })
        .collect();
    axum::Json(json!({"reports": list})).into_response()
}

pub async fn report(
    State(s): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(mut q): Query<BTreeMap<String, String>>,
) -> Response {
    let data = guard!(s, headers);
    let Some(declared) = s.reports.get(&name) else {
        return fail(StatusCode::NOT_FOUND, format!("no report `{name}`; GET /api/reports lists them"));
    };
    let (format, page) = match answer_options(&mut q, &headers) {
        Ok(o) => o,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    if let Some(unknown) = q.keys().find(|k| !declared.params.iter().any(|p| &p.name == *k)) {
        let known: Vec<&str> = declared.params.iter().map(|p| p.name.as_str()).collect();
        let msg = format!("report `{name}` has no parameter `{unknown}`; it takes: {}", known.join(", "));
        return fail(StatusCode::BAD_REQUEST, msg);
    }
    let generation = match data.generation().await {
        Ok(g) => g,
        Err(e) => return failure(e),
    };
    let key = format!("report\u{0}{name}\u{0}{q:?}\u{0}{page:?}\u{0}{format:?}");
    if let Some(hit) = s.cache.get(generation, &key) {
        return hit.response();
    }
    let answer = match data.report(name.clone(), q, page).await {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    match encode(answer, format, Some(&name)) {
        Ok(e) => {
            let e = Arc::new(e);
            s.cache.put(generation, key, e.clone());
            e.response()
        }
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlBody {
    sql: String,
}

pub async fn sql(
    State(s): Shared,
    headers: HeaderMap,
    Query(mut q): Query<BTreeMap<String, String>>,
    body: axum::body::Bytes,
) -> Response {
    let data = guard!(s, headers);
    let body: SqlBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return fail(StatusCode::BAD_REQUEST, format!("the body must be {{\"sql\": \"SELECT ...\"}}: {e}")),
    };
    let (format, page) = match answer_options(&mut q, &headers) {
        Ok(o) => o,
        Err(e) => return fail(StatusCode::BAD_REQUEST, e),
    };
    let answer = match data.sql(body.sql, page).await {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    match encode(answer, format, None) {
        Ok(e) => e.response(),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

pub async fn openapi(State(s): Shared, headers: HeaderMap) -> Response {
    if let Some(refused) = s.tokens.refuse(&headers, Scope::Read) {
        return refused;
    }
    axum::Json(crate::openapi::document(&s.pipeline, &s.reports)).into_response()
}

/// Takes `format`, `limit` and `offset` out of the query string.
fn answer_options(q: &mut BTreeMap<String, String>, headers: &HeaderMap) -> Result<(Format, Page), String> {
    let format = Format::pick(q.remove("format").as_deref(), headers)?;
    let number = |v: Option<String>, key: &str| -> Result<Option<usize>, String> {
        v.map(|v| v.parse::<usize>().map_err(|_| format!("`{key}` must be a whole number"))).transpose()
    };
    let limit = number(q.remove("limit"), "limit")?;
    let offset = number(q.remove("offset"), "offset")?.unwrap_or(0);
    Ok((format, Page { offset, limit }))
}
