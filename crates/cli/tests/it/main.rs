//! End-to-end tests of the `ingesta` binary, run as a user runs it, with the
//! lake checked by an outside reader (Python's deltalake).

mod backfill;
mod bad_input;
mod cdc;
mod changes;
mod collector;
mod demo;
mod enrich;
mod exactly_once;
mod history;
mod kafka;
mod landing_changes;
mod landing_settled;
mod layers;
mod live;
mod maintain;
mod operate;
mod orders_dwh;
mod rest;
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

/// Runs `file` with `run --once` (settings from `env`) and SIGKILLs it at a
/// random moment (0.3 s to `max_ms` later), until 10 runs were killed
/// mid-way; returns the seed of the moments (printed with each trial).
pub fn kill_ten_runs(ws: &Workspace, file: &str, env: &[(&str, String)], max_ms: u64) -> u64 {
    let seed = ingesta_testkit::Rng::clock_seed();
    let mut rng = ingesta_testkit::Rng(seed);
    let (mut killed, mut trials) = (0, 0);
    while killed < 10 {
        trials += 1;
        assert!(trials <= 40, "only {killed} of {trials} runs were killed mid-way (seed {seed})");
        let mut child = ws
            .command(&["run", file, "--once"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let after = std::time::Duration::from_millis(300 + rng.below(max_ms));
        let was_killed = ingesta_testkit::kill_after(&mut child, after);
        killed += usize::from(was_killed);
        eprintln!("trial {trials}: {} after {after:?} (seed {seed})", if was_killed { "killed" } else { "finished" });
    }
    seed
}

/// Every data file of a table.
pub fn data_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() && !path.ends_with("_delta_log") {
            out.extend(data_files(&path));
        } else if path.extension().is_some_and(|x| x == "parquet") {
            out.push(path);
        }
    }
    out
}
