//! A Confluent Schema Registry client, limited to the documented REST calls
//! we need: `GET /schemas/ids/{id}` (reading; cached, ids never change) and
//! `POST /subjects/{subject}/versions` (producing; returns the id). Basic
//! auth when a username is given. Blocking: it is called from the consumer
//! and producer threads, never from async code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingesta_config::SchemaRegistry;
use serde::Deserialize;

use crate::KafkaError;

/// What the registry said about a schema id.
#[derive(Clone)]
pub enum Lookup {
    Found(Arc<apache_avro::Schema>),
    /// The registry answered that it does not know the id.
    Unknown(String),
}

pub struct Registry {
    base: String,
    auth: Option<(String, String)>,
    http: reqwest::blocking::Client,
    by_id: Mutex<HashMap<u32, Lookup>>,
}

#[derive(Deserialize)]
struct SchemaBody {
    schema: String,
    #[serde(default, rename = "schemaType")]
    schema_type: Option<String>,
}

#[derive(Deserialize)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error_code: i64,
    #[serde(default)]
    message: String,
}

impl Registry {
    pub fn new(cfg: &SchemaRegistry) -> Result<Self, KafkaError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| KafkaError::Registry(e.to_string()))?;
        let auth = cfg
            .username
            .as_ref()
            .map(|u| (u.clone(), cfg.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default()));
        Ok(Self { base: cfg.url.trim_end_matches('/').to_string(), auth, http, by_id: Mutex::new(HashMap::new()) })
    }

    fn request(&self, b: reqwest::blocking::RequestBuilder) -> reqwest::blocking::RequestBuilder {
        let b = b.header("Accept", "application/vnd.schemaregistry.v1+json");
        match &self.auth {
            Some((u, p)) => b.basic_auth(u, Some(p)),
            None => b,
        }
    }

    /// The schema with `id`; `Err` when the registry cannot be reached (retry).
    pub fn schema(&self, id: u32) -> Result<Lookup, KafkaError> {
        if let Some(l) = self.by_id.lock().expect("cache").get(&id) {
            return Ok(l.clone());
        }
        let url = format!("{}/schemas/ids/{id}", self.base);
        let resp = self.request(self.http.get(&url)).send().map_err(|e| KafkaError::Registry(format!("{url}: {e}")))?;
        let status = resp.status();
        let lookup = if status.is_success() {
            let body: SchemaBody = resp.json().map_err(|e| KafkaError::Registry(format!("{url}: {e}")))?;
            match body.schema_type.as_deref() {
                None | Some("AVRO") => match apache_avro::Schema::parse_str(&body.schema) {
                    Ok(s) => Lookup::Found(Arc::new(s)),
                    Err(e) => Lookup::Unknown(format!("schema {id} from the registry is not valid Avro: {e}")),
                },
                Some(other) => Lookup::Unknown(format!("schema {id} is {other}, not AVRO")),
            }
        } else if status == reqwest::StatusCode::NOT_FOUND {
            let body: Option<ErrorBody> = resp.json().ok();
            let detail = body.map(|b| format!(" ({} {})", b.error_code, b.message)).unwrap_or_default();
            Lookup::Unknown(format!("schema id {id} is not in the registry{detail}"))
        } else if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(KafkaError::Registry(format!("{url}: {status}; check schema_registry.username / password")));
        } else {
            return Err(KafkaError::Registry(format!("{url}: {status}")));
        };
        self.by_id.lock().expect("cache").insert(id, lookup.clone());
        Ok(lookup)
    }

    /// Registers `schema` under `subject` (or finds it there); returns its id.
    pub fn register(&self, subject: &str, schema: &str) -> Result<u32, KafkaError> {
        let url = format!("{}/subjects/{subject}/versions", self.base);
        let body = serde_json::json!({ "schema": schema });
        let resp = self
            .request(self.http.post(&url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .body(body.to_string())
            .send()
            .map_err(|e| KafkaError::Registry(format!("{url}: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().unwrap_or_default();
            return Err(KafkaError::Registry(format!("registering under `{subject}`: {status} {text}")));
        }
        let id: IdBody = resp.json().map_err(|e| KafkaError::Registry(format!("{url}: {e}")))?;
        Ok(id.id)
    }
}

/// The Confluent wire format: byte 0, the schema id (4 bytes, big-endian), the body.
pub fn wire(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(0);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
    out
}
