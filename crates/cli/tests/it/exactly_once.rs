//! Exactly once: a rerun ingests nothing; SIGKILL at random moments and a
//! rerun leave every record exactly once in bronze or quarantine.

use std::time::Duration;

use ingesta_testkit::{Rng, kill_after, manifest, read_delta, text};

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

/// Generates IoT files into `landing/<sub>` and returns (valid, malformed).
fn generate(ws: &ingesta_testkit::Workspace, sub: &str, seed: u64, rows: u64, files: u32) -> (u64, u64) {
    let out = ws.landing().join(sub);
    let (seed, rows, files) = (seed.to_string(), rows.to_string(), files.to_string());
    let args = ["generate", "iot", "--seed", &seed, "--rows", &rows, "--files", &files, "--malformed-rate", "0.01"];
    let res = ws.ingesta(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(res.status.success(), "{}", text(&res.stderr));
    let m = manifest(&out);
    (m["valid_rows"].as_u64().unwrap(), m["malformed"].as_u64().unwrap())
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let ws = workspace();
    // small micro-batches: many commits for a kill to land between; with
    // `clock_skew: 0ms` the settled watermark (decision 0035) passes over the
    // files of the earlier trials, so a kill lands beside its note too
    ws.write_pipeline(&iot_pipeline("    clock_skew: 0ms", 1500));
    let (mut valid, mut malformed) = generate(&ws, "first", 1, 60_000, 24);
    let seed = Rng::clock_seed();
    let mut rng = Rng(seed);
    let (mut killed, mut trials) = (0, 0);
    while killed < 10 {
        trials += 1;
        assert!(trials <= 30, "only {killed} of {trials} runs were killed mid-way (seed {seed})");
        // new files arrive between runs, as in a landing folder
        let (v, m) = generate(&ws, &format!("more-{trials}"), 100 + trials, 4_000, 2);
        valid += v;
        malformed += m;
        let mut child = ws.spawn_run();
        let after = Duration::from_millis(30 + rng.below(400));
        let was_killed = kill_after(&mut child, after);
        killed += usize::from(was_killed);
        eprintln!("trial {trials}: {} after {after:?} (seed {seed})", if was_killed { "killed" } else { "finished" });
    }
    let last = ws.run_once();
    let bronze = read_delta(&ws.lake().join("iot_bronze"), &["_source", "_position"], None);
    let quarantine = read_delta(&ws.lake().join("_quarantine/iot_bronze"), &["source", "position"], None);
    assert_eq!(bronze.distinct_keys, bronze.rows, "a row was written twice (seed {seed})");
    assert_eq!(quarantine.distinct_keys, quarantine.rows, "a bad record was quarantined twice (seed {seed})");
    assert_eq!(bronze.rows, valid, "bronze rows (seed {seed}); last run: {last}");
    assert_eq!(quarantine.rows, malformed, "quarantined rows (seed {seed})");
    assert_eq!(ws.run_once()["tables"][0]["rows"], 0, "a run after recovery ingests nothing");
}

#[test]
fn an_object_store_prefix_is_ingested_exactly_once() {
    let ws = workspace();
    generate(&ws, "day1", 5, 3000, 3);
    // the landing folder as a file:// URL goes through object_store, like s3://
    ws.write_pipeline(&iot_pipeline("", 1000).replace("path: \"{landing}\"", "path: \"file://{landing}\""));
    let first = ws.run_once();
    let m = manifest(&ws.landing().join("day1"));
    assert_eq!(first["tables"][0]["rows"], m["valid_rows"], "{first}");
    assert_eq!(first["tables"][0]["quarantined"], m["malformed"]);
    assert_eq!(ws.run_once()["tables"][0]["rows"], 0);
    let bronze = read_delta(&ws.lake().join("iot_bronze"), &["_source", "_position"], Some("_source"));
    assert_eq!(bronze.distinct_keys, bronze.rows);
    assert!(bronze.groups.keys().all(|k| k.starts_with("day1/readings-")), "{:?}", bronze.groups);
}

/// A crash between the quarantine commit and the table commit, twice, with
/// micro-batches cut differently the second time and a new file's bad records
/// in the same batch: nothing is quarantined twice. (Without the floor of
/// decision 0001 the quarantine position of the first file moved back here.)
#[test]
fn a_crash_between_the_quarantine_and_the_table_commit_duplicates_nothing() {
    let ws = workspace();
    let crash = |max_rows: usize| {
        ws.write_pipeline(&iot_pipeline("", max_rows));
        let out = ws
            .command(&["run", ws.pipeline().to_str().unwrap(), "--once"])
            .env("INGESTA_FAILPOINT", "after-quarantine-commit")
            .output()
            .unwrap();
        assert!(!out.status.success(), "the fail point stops the run");
        assert!(text(&out.stderr).contains("fail point `after-quarantine-commit` reached"), "{}", text(&out.stderr));
    };
    let (v1, m1) = generate_bad(&ws, "d1", 3);
    crash(100_000); // one batch: d1 fully quarantined, the table not committed
    let (v2, m2) = generate_bad(&ws, "d2", 4);
    crash(500); // d1 again from the start in small batches, with d2's bad records beside it
    ws.write_pipeline(&iot_pipeline("", 500));
    ws.run_once();
    let bronze = read_delta(&ws.lake().join("iot_bronze"), &["_source", "_position"], None);
    let quarantine = read_delta(&ws.lake().join("_quarantine/iot_bronze"), &["source", "position"], None);
    assert_eq!((quarantine.rows, quarantine.distinct_keys), (m1 + m2, m1 + m2), "quarantined once each");
    assert_eq!((bronze.rows, bronze.distinct_keys), (v1 + v2, v1 + v2));
}

/// One file of 3,000 readings with 5% malformed.
fn generate_bad(ws: &ingesta_testkit::Workspace, sub: &str, seed: u64) -> (u64, u64) {
    let out = ws.landing().join(sub);
    let seed = seed.to_string();
    let args = ["generate", "iot", "--seed", &seed, "--rows", "3000", "--files", "1", "--malformed-rate", "0.05"];
    let res = ws.ingesta(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(res.status.success(), "{}", text(&res.stderr));
    let m = manifest(&out);
    (m["valid_rows"].as_u64().unwrap(), m["malformed"].as_u64().unwrap())
}
