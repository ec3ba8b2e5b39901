//! End-to-end tests of the `ingesta` binary, run as a user runs it, with the
//! lake checked by an outside reader (Python's deltalake).

mod bad_input;
mod changes;
mod collector;
mod demo;
mod enrich;
mod exactly_once;
mod history;
mod kafka;
mod layers;
mod live;
mod maintain;
mod orders_dwh;
mod sales_mart;
mod serving;
mod sink;
mod validate;
mod warehouse;
mod watch;

use ingesta_testkit::Workspace;

pub fn workspace() -> Workspace {
    Workspace::new(env!("CARGO_BIN_EXE_ingesta"))
}

/// A pipeline with one bronze table of IoT readings from the landing folder.
pub fn iot_pipeline(extra_source: &str, batch_rows: usize) -> String {
    format!(
        r#"pipeline: test
lake:
  root: "{{lake}}"
sources:
  iot:
    type: landing
    path: "{{landing}}"
    settle: 0ms
{extra_source}
tables:
  iot_bronze:
    layer: bronze
    input: iot
    columns:
      - {{name: device_id, type: string, required: true}}
      - {{name: farm_id, type: string, required: true}}
      - {{name: ts, type: timestamp, required: true}}
      - {{name: temperature, type: double, required: true}}
      - {{name: humidity, type: double}}
      - {{name: soil_moisture, type: double}}
      - {{name: battery, type: int}}
      - {{name: status, type: string}}
    partition_by:
      - {{column: event_date, from: ts, transform: day}}
    batch: {{max_rows: {batch_rows}}}
"#
    )
}

/// A valid reading as an NDJSON line.
pub fn reading(i: usize) -> String {
    format!(
        r#"{{"device_id":"dev-{i:05}","farm_id":"farm-001","ts":"2026-11-01T00:00:{:02}.000Z","temperature":21.5,"humidity":50.0,"soil_moisture":0.3,"battery":80,"status":"ok"}}"#,
        i % 60
    )
}
