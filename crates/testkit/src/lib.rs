//! The test kit: temporary workspaces (a landing folder, a lake, a pipeline
//! file), the `ingesta` binary run as a user runs it, SIGKILL at a chosen
//! moment, and an outside reader (Python's `deltalake` + `pyarrow`) to check
//! what landed without trusting our own code.
//!
//! Servers: a Kafka-protocol broker (`kafka.rs`, tansu) and a Schema
//! Registry speaking its REST API (`registry.rs`), PostgreSQL
//! (`postgres.rs`, initdb/pg_ctl) and Redis (`redis.rs`, redis-server). A
//! missing binary fails the test with how to install it, never skips it.

pub mod contract;
mod kafka;
pub mod postgres;
mod redis;
mod registry;

pub use kafka::{Broker, free_port};
pub use postgres::Postgres;
pub use redis::Redis;
pub use registry::SchemaRegistry;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

pub use tempfile::TempDir;

/// A landing folder, a lake and a pipeline file in a temporary folder.
pub struct Workspace {
    pub dir: TempDir,
    bin: PathBuf,
}

impl Workspace {
    /// `bin` is the `ingesta` binary under test (`env!("CARGO_BIN_EXE_ingesta")`).
    pub fn new(bin: &str) -> Self {
        let dir = tempfile::Builder::new().prefix("ingesta-test-").tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("landing")).expect("landing");
        Self { dir, bin: PathBuf::from(bin) }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn landing(&self) -> PathBuf {
        self.path().join("landing")
    }
    pub fn lake(&self) -> PathBuf {
        self.path().join("lake")
    }
    pub fn pipeline(&self) -> PathBuf {
        self.path().join("pipeline.yaml")
    }

    /// Writes the pipeline file; `{landing}` and `{lake}` are replaced.
    pub fn write_pipeline(&self, yaml: &str) {
        let text = yaml
            .replace("{landing}", &self.landing().display().to_string())
            .replace("{lake}", &self.lake().display().to_string());
        std::fs::write(self.pipeline(), text).expect("pipeline file");
    }

    /// Writes a file under the landing folder, creating folders.
    pub fn drop_file(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.landing().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("folder");
        std::fs::write(&p, bytes).expect("landing file");
        p
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args).current_dir(self.path()).env("INGESTA_LOG", "warn");
        c
    }

    /// Runs `ingesta ARGS` to completion.
    pub fn ingesta(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("ingesta runs")
    }

    /// `ingesta run PIPELINE --once --json`, which must succeed; returns the summary.
    pub fn run_once(&self) -> serde_json::Value {
        let out = self.ingesta(&["run", self.pipeline().to_str().expect("utf-8 path"), "--once", "--json"]);
        assert!(out.status.success(), "run failed: {}\n{}", text(&out.stderr), text(&out.stdout));
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("summary is JSON ({e}): {}", text(&out.stdout)))
    }

    /// Starts `ingesta run PIPELINE --once` in the background.
    pub fn spawn_run(&self) -> Child {
        self.command(&["run", self.pipeline().to_str().expect("utf-8 path"), "--once", "--json"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ingesta starts")
    }
}

/// Starts `ingesta run PIPELINE --watch --json`, its summary on a pipe.
pub fn spawn_watch(ws: &Workspace) -> Child {
    ws.command(&["run", ws.pipeline().to_str().expect("utf-8 path"), "--watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ingesta starts")
}

/// Sends SIGINT (Ctrl-C) to a child.
pub fn interrupt(child: &Child) {
    let ok = Command::new("kill").args(["-INT", &child.id().to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "cannot send SIGINT to {}", child.id());
}

/// Waits until `check` holds, at most `limit`.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Sends SIGKILL to a child after `after` (unless it ended before); true when killed.
pub fn kill_after(child: &mut Child, after: Duration) -> bool {
    let deadline = std::time::Instant::now() + after;
    while std::time::Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let killed = child.kill().is_ok(); // SIGKILL on Unix
    let _ = child.wait();
    killed
}

/// A small deterministic random stream (xorshift): tests print their seed so
/// a failing run can be replayed.
pub struct Rng(pub u64);

impl Rng {
    /// A seed from the clock (odd, so never xorshift's stuck zero), for
    /// tests that print it so a failing run can be replayed.
    pub fn clock_seed() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64 | 1
    }

    /// A value in `0..below`.
    pub fn below(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The Python interpreter with `deltalake` and `pyarrow`, used as the outside
/// reader. `scripts/test.sh` sets `INGESTA_TEST_PYTHON`; without it the test
/// fails and says how to get one.
pub fn python() -> PathBuf {
    let py = std::env::var_os("INGESTA_TEST_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&py).args(["-c", "import deltalake, pyarrow"]).output().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "this test reads the lake with Python's `deltalake` and `pyarrow`, which {} cannot import.\n\
         Run the tests with `scripts/test.sh` (it makes a virtualenv with them), or:\n  \
         python3 -m venv .venv && .venv/bin/pip install -r scripts/requirements-test.txt && \
         export INGESTA_TEST_PYTHON=$PWD/.venv/bin/python",
        py.display()
    );
    py
}

/// What an outside reader sees in a Delta table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableView {
    pub rows: u64,
    /// Distinct values of the key columns asked for (rows when they are unique).
    pub distinct_keys: u64,
    /// Rows per value of `group_by`.
    pub groups: std::collections::BTreeMap<String, u64>,
    pub columns: Vec<String>,
}

/// Reads the Delta table at `path` with Python's `deltalake`: row count,
/// distinct `keys` and counts per `group_by` (comma-separated columns, the
/// group's key joined with `|`).
pub fn read_delta(path: &Path, keys: &[&str], group_by: Option<&str>) -> TableView {
    let script = r#"
import json, sys
import deltalake, pyarrow.compute as pc
path, keys, group = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
t = deltalake.DeltaTable(path).to_pyarrow_table()
out = {"rows": t.num_rows, "columns": t.column_names, "groups": {}}
out["distinct_keys"] = t.group_by(keys).aggregate([]).num_rows if keys and t.num_rows else t.num_rows
if group and t.num_rows:
    cols = group.split(",")
    for row in t.group_by(cols).aggregate([([], "count_all")]).to_pylist():
        out["groups"]["|".join(str(row[c]) for c in cols)] = row["count_all"]
print(json.dumps(out), flush=True)
import os; os._exit(0)  # some pyarrow builds abort in interpreter teardown
"#;
    let keys_json = serde_json::to_string(keys).expect("keys");
    let out = Command::new(python())
        .args(["-c", script, path.to_str().expect("utf-8"), &keys_json, group_by.unwrap_or("")])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "the outside reader failed on {}: {}", path.display(), text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("reader output");
    TableView {
        rows: v["rows"].as_u64().unwrap_or_default(),
        distinct_keys: v["distinct_keys"].as_u64().unwrap_or_default(),
        groups: v["groups"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or_default())).collect())
            .unwrap_or_default(),
        columns: v["columns"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
    }
}

/// The generator's manifest in `dir`.
pub fn manifest(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("_manifest.json")).expect("manifest");
    serde_json::from_str(&text).expect("manifest JSON")
}
