//! A small in-process server speaking the Confluent Schema Registry REST API
//! for the calls Ingesta makes (`POST /subjects/{subject}/versions`,
//! `GET /schemas/ids/{id}`), because no registry server can be installed from
//! this project's package sources. Ids start at 1 and never change; the same
//! schema under the same subject gets its old id back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Default)]
struct Store {
    schemas: Vec<String>,
    by_subject: HashMap<(String, String), u32>,
}

type Shared = Arc<Mutex<Store>>;

pub struct SchemaRegistry {
    pub url: String,
    _runtime: tokio::runtime::Runtime,
}

impl SchemaRegistry {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = Router::new()
            .route("/subjects/{subject}/versions", post(register))
            .route("/schemas/ids/{id}", get(by_id))
            .with_state(Shared::default());
        runtime.spawn(async move { axum::serve(listener, app).await.expect("registry serves") });
        Self { url, _runtime: runtime }
    }
}

async fn register(State(s): State<Shared>, Path(subject): Path<String>, body: String) -> (StatusCode, Json<Value>) {
    let Ok(v) = serde_json::from_str::<Value>(&body) else {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error_code": 42201, "message": "Invalid schema"})));
    };
    let Some(schema) = v["schema"].as_str() else {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error_code": 42201, "message": "Invalid schema"})));
    };
    let mut st = s.lock().expect("store");
    let key = (subject, schema.to_string());
    let id = match st.by_subject.get(&key) {
        Some(id) => *id,
        None => {
            st.schemas.push(schema.to_string());
            let id = st.schemas.len() as u32;
            st.by_subject.insert(key, id);
            id
        }
    };
    (StatusCode::OK, Json(json!({ "id": id })))
}

async fn by_id(State(s): State<Shared>, Path(id): Path<u32>) -> (StatusCode, Json<Value>) {
    let st = s.lock().expect("store");
    match id.checked_sub(1).and_then(|i| st.schemas.get(i as usize)) {
        Some(schema) => (StatusCode::OK, Json(json!({ "schema": schema }))),
        None => (StatusCode::NOT_FOUND, Json(json!({"error_code": 40403, "message": "Schema not found"}))),
    }
}
