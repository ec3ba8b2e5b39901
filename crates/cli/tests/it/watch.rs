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
