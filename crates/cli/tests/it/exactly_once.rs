//! Exactly once: a rerun ingests nothing; SIGKILL at random moments and a
//! rerun leave every record exactly once in bronze or quarantine.

use std::time::Duration;

use ingesta_testkit::{kill_after, manifest, read_delta, text};

use crate::{iot_pipeline, workspace};

#[test]
fn a_second_run_ingests_nothing() {
    let ws = workspace();
    let out = ws.ingesta(&[
        "generate",
        "iot",
        "--rows",
        "3000",
        "--files",
        "3",
        "--out",
        ws.landing().to_str().unwrap(),
        "--malformed-rate",
        "0.02",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    ws.write_pipeline(&iot_pipeline("", 1000));
    let first = ws.run_once();
    let m = manifest(&ws.landing());
    assert_eq!(first["tables"][0]["rows"], m["valid_rows"]);
    assert_eq!(first["tables"][0]["quarantined"], m["malformed"]);
    assert_eq!(first["tables"][0]["files"], 3);
    let second = ws.run_once();
    assert_eq!(second["tables"][0]["rows"], 0);
    assert_eq!(second["tables"][0]["quarantined"], 0);
    assert_eq!(second["tables"][0]["commits"], 0);
}

/// A small deterministic random stream (xorshift), seeded per run and printed.
struct Rng(u64);
impl Rng {
    fn next(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let ws = workspace();
    let out = ws.ingesta(&[
        "generate",
        "iot",
        "--rows",
        "60000",
        "--files",
        "24",
        "--out",
        ws.landing().to_str().unwrap(),
        "--malformed-rate",
        "0.01",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // small micro-batches: many commits to land a kill between
    ws.write_pipeline(&iot_pipeline("", 1500));
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rng = Rng(seed);
    let mut killed = 0;
    for trial in 0..12 {
        let mut child = ws.spawn_run();
        let after = Duration::from_millis(30 + rng.next(700));
        if kill_after(&mut child, after) {
            killed += 1;
        }
        eprintln!("trial {trial}: killed after {after:?} (seed {seed})");
    }
    assert!(killed >= 10, "only {killed} runs were killed mid-way; the kill window is too late (seed {seed})");
    let last = ws.run_once();
    let m = manifest(&ws.landing());
    let bronze = read_delta(&ws.lake().join("iot_bronze"), &["_source", "_position"], None);
    let quarantine = read_delta(&ws.lake().join("_quarantine/iot_bronze"), &["source", "position"], None);
    assert_eq!(bronze.distinct_keys, bronze.rows, "a row was written twice (seed {seed})");
    assert_eq!(quarantine.distinct_keys, quarantine.rows, "a bad record was quarantined twice (seed {seed})");
    assert_eq!(bronze.rows, m["valid_rows"].as_u64().unwrap(), "bronze rows (seed {seed}); last run: {last}");
    assert_eq!(quarantine.rows, m["malformed"].as_u64().unwrap(), "quarantined rows (seed {seed})");
    assert_eq!(ws.run_once()["tables"][0]["rows"], 0, "a run after recovery ingests nothing");
}
