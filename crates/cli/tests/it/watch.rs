//! `run --watch`: files dropped while it runs are ingested; Ctrl-C ends it
//! cleanly with a summary of everything it did.

use std::time::Duration;

use ingesta_testkit::{interrupt, spawn_watch, text, wait_until};

use crate::{iot_pipeline, reading, workspace};

fn bronze_rows(ws: &ingesta_testkit::Workspace) -> u64 {
    let out = ws.ingesta(&["status", ws.pipeline().to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    v["tables"][0]["rows"].as_u64().unwrap_or(0)
}

#[test]
fn watch_ingests_files_as_they_arrive_and_stops_on_ctrl_c() {
    let ws = workspace();
    ws.write_pipeline(
        &iot_pipeline("    poll: 200ms", 1000)
            .replace("batch: {max_rows: 1000}", "batch: {max_rows: 1000, max_wait: 200ms}"),
    );
    let lines = |r: std::ops::Range<usize>| r.map(|i| reading(i) + "\n").collect::<String>();
    ws.drop_file("a.ndjson", lines(0..10));
    let mut child = spawn_watch(&ws);
    assert!(wait_until(Duration::from_secs(30), || bronze_rows(&ws) == 10), "the first file is ingested");
    ws.drop_file("later/b.ndjson", lines(10..35));
    assert!(wait_until(Duration::from_secs(30), || bronze_rows(&ws) == 35), "a file dropped later is ingested");
    interrupt(&child);
    assert!(wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some()), "Ctrl-C stops the watch");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    assert_eq!(summary["tables"][0]["rows"], 35);
    assert_eq!(summary["tables"][0]["files"], 2);
}

fn silver_rows(ws: &ingesta_testkit::Workspace) -> Option<u64> {
    let out = ws.ingesta(&["status", ws.pipeline().to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v["tables"].as_array()?.iter().find(|t| t["name"] == "doubled")?["rows"].as_u64()
}

/// Every Parquet file under `dir`.
fn data_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() && !path.ends_with("_delta_log") {
            data_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "parquet") {
            out.push(path);
        }
    }
}

#[test]
fn a_transform_retries_a_passing_read_error_and_goes_on() {
    let ws = workspace();
    let lines = |r: std::ops::Range<usize>| r.map(|i| reading(i) + "\n").collect::<String>();
    ws.drop_file("a.ndjson", lines(0..10));
    ws.write_pipeline(&iot_pipeline("    poll: 200ms", 1000));
    assert_eq!(ws.run_once()["tables"][0]["rows"], 10, "bronze first, alone");
    // bronze's data file is briefly unreadable while the silver table first reads it
    let mut files = Vec::new();
    data_files(&ws.lake().join("iot_bronze"), &mut files);
    assert!(!files.is_empty());
    for f in &files {
        std::fs::rename(f, f.with_extension("away")).unwrap();
    }
    let silver = "\n  doubled:\n    layer: silver\n    input: iot_bronze\n    transform:\n      select: [device_id, ts, {name: t2, expr: \"temperature * 2\"}]\n";
    ws.write_pipeline(&(iot_pipeline("    poll: 200ms", 1000) + silver));
    let mut child = spawn_watch(&ws);
    std::thread::sleep(Duration::from_secs(3));
    assert!(child.try_wait().unwrap().is_none(), "still running");
    assert_eq!(silver_rows(&ws).unwrap_or(0), 0, "nothing to read yet");
    for f in &files {
        std::fs::rename(f.with_extension("away"), f).unwrap();
    }
    let caught_up = wait_until(Duration::from_secs(30), || silver_rows(&ws) == Some(10));
    interrupt(&child);
    assert!(wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some()), "Ctrl-C stops the watch");
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(caught_up, "the silver table went on once the file was back: {stderr}");
    assert!(stderr.contains("will try again"), "the failed read was retried: {stderr}");
    assert!(out.status.success(), "{stderr}");
}

#[test]
fn a_watched_pipeline_serves_health_and_with_its_token_status_and_metrics() {
    let ws = workspace();
    let port = ingesta_testkit::free_port();
    let serve = format!(
        "serve:\n  listen: 127.0.0.1:{port}\n  read_token: s3cret-read-token-0123\n\
         reports:\n  readings:\n    sql: SELECT count(*) AS n FROM iot_bronze\n"
    );
    ws.write_pipeline(&(iot_pipeline("    poll: 200ms", 1000) + &serve));
    let lines = |r: std::ops::Range<usize>| r.map(|i| reading(i) + "\n").collect::<String>();
    ws.drop_file("a.ndjson", lines(0..10));
    let mut child = spawn_watch(&ws);
    assert!(wait_until(Duration::from_secs(30), || bronze_rows(&ws) == 10), "the file is ingested");
    let http = reqwest::blocking::Client::new();
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let health = http.get(url("/health")).send().unwrap();
    assert_eq!(health.status(), 200, "health is open to probes");
    assert_eq!(health.json::<serde_json::Value>().unwrap(), serde_json::json!({"status": "ok"}), "and tells nothing");
    let ready: serde_json::Value = http.get(url("/ready")).send().unwrap().json().unwrap();
    assert!(ready.get("tables").is_none(), "no detail without a token: {ready}");
    for path in ["/metrics", "/status"] {
        let r = http.get(url(path)).send().unwrap();
        assert_eq!(r.status(), 401, "{path} without the token");
        let r = http.get(url(path)).bearer_auth("wrong").send().unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
    }
    let metrics = http.get(url("/metrics")).bearer_auth("s3cret-read-token-0123").send().unwrap();
    assert_eq!(metrics.status(), 200);
    let body = metrics.text().unwrap();
    assert!(body.contains("ingesta_rows_committed_total{table=\"iot_bronze\"} 10"), "{body}");
    assert!(body.contains("ingesta_commit_seconds"), "{body}");
    let status: serde_json::Value =
        http.get(url("/status")).bearer_auth("s3cret-read-token-0123").send().unwrap().json().unwrap();
    assert_eq!(status["tables"][0]["rows"], 10, "{status}");
    // Prometheus's own parser reads the page, and its counters agree with status
    let samples = prometheus_samples(&body);
    assert_eq!(samples.get(r#"ingesta_rows_committed_total{"table": "iot_bronze"}"#), Some(&10.0), "{samples:?}");
    let version = status["tables"][0]["version"].as_f64().unwrap();
    assert_eq!(samples.get(r#"ingesta_commits_total{"table": "iot_bronze"}"#), Some(&version), "{samples:?}");
    // a report's answer is kept only until a table commits
    let count = || -> serde_json::Value {
        let r = http.get(url("/api/reports/readings")).bearer_auth("s3cret-read-token-0123").send().unwrap();
        r.json::<serde_json::Value>().unwrap()["rows"][0][0].clone()
    };
    assert_eq!(count(), 10);
    ws.drop_file("b.ndjson", lines(10..25));
    assert!(wait_until(Duration::from_secs(30), || count() == 25), "the report sees new rows: {}", count());
    interrupt(&child);
    assert!(wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some()), "Ctrl-C stops the watch");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!ingesta_testkit::text(&out.stderr).contains("s3cret-read-token"), "the token is never printed");
}

/// Every sample of a Prometheus text page, parsed by `prometheus_client`
/// (Python): `name{labels as JSON}` -> value.
fn prometheus_samples(page: &str) -> std::collections::BTreeMap<String, f64> {
    use std::io::Write;
    let script = "import sys, json\n\
                  from prometheus_client.parser import text_string_to_metric_families as parse\n\
                  print(json.dumps({s.name + json.dumps(s.labels, sort_keys=True): s.value \
                  for f in parse(sys.stdin.read()) for s in f.samples}))";
    let mut child = std::process::Command::new(ingesta_testkit::python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the page does not parse as Prometheus text: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
