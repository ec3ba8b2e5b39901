//! Maintenance: compaction keeps results; bronze's upkeep policy; `ingesta
//! rebuild` recomputes a table, and refuses to when its input no longer
//! holds what the table does (a collector's log without an archive).

use std::collections::BTreeSet;
use std::time::Duration;

use ingesta_testkit::{Workspace, free_port, interrupt, read_delta, text, wait_until};

use crate::collector::{TOKEN, bronze_rows, pipeline_with, server, server_log};
use crate::{iot_pipeline, reading, workspace};

/// Events of about 4 KB: enough of them fill more than one 64 MiB log segment.
const EVENTS: u64 = 20_000;
const PER_POST: u64 = 1_000;

/// Posts every event, waits until the table holds them all, stops the server.
fn fill(ws: &Workspace, port: u16) {
    let srv = server(ws, port);
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let url = format!("http://127.0.0.1:{port}/ingest/clicks");
    let pad = "x".repeat(4000);
    for first in (0..EVENTS).step_by(PER_POST as usize) {
        let body: String =
            (first..first + PER_POST).map(|n| format!("{{\"client\":1,\"n\":{n},\"url\":\"/{pad}\"}}\n")).collect();
        loop {
            let r = http.post(&url).bearer_auth(TOKEN).body(body.clone()).send().unwrap();
            if r.status().is_success() {
                break;
            }
            assert!(r.status() == 429 || r.status() == 503, "unexpected answer {}", r.status());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let mut srv = srv;
    interrupt(&srv.0);
    let stopped = wait_until(Duration::from_secs(60), || srv.0.try_wait().is_ok_and(|s| s.is_some()));
    assert!(stopped, "the collector did not stop on Ctrl-C: {}", server_log(ws));
    assert_eq!(bronze_rows(ws).len() as u64, EVENTS, "every acknowledged event is in the table");
}

fn distinct(ws: &Workspace) -> usize {
    bronze_rows(ws).into_iter().map(|(_, n, _)| n).collect::<BTreeSet<u64>>().len()
}

#[test]
fn rebuild_refuses_to_lose_events_the_log_no_longer_holds() {
    let port = free_port();
    let ws = workspace();
    ws.write_pipeline(&pipeline_with(port, "", "{max_rows: 5000, max_wait: 1s}"));
    fill(&ws, port);
    let wal = ws.lake().join("_wal").join("clicks");
    let segments = std::fs::read_dir(&wal)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "wal"))
        .count();
    assert_eq!(segments, 1, "the segments the table held were deleted");

    let out = ws.ingesta(&["rebuild", ws.pipeline().to_str().unwrap(), "clicks_raw"]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused: {err}");
    assert!(err.contains("not rebuilt") && err.contains("events 0 to") && err.contains("archive"), "{err}");
    assert_eq!(bronze_rows(&ws).len() as u64, EVENTS, "nothing was deleted");
    assert_eq!(distinct(&ws) as u64, EVENTS);
}

#[test]
fn rebuild_reads_an_archived_log_again() {
    let port = free_port();
    let ws = workspace();
    ws.write_pipeline(&pipeline_with(port, "    archive: 7d", "{max_rows: 5000, max_wait: 1s}"));
    fill(&ws, port);

    let out = ws.ingesta(&["rebuild", ws.pipeline().to_str().unwrap(), "clicks_raw"]);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    let rows = bronze_rows(&ws);
    assert_eq!(rows.len() as u64, EVENTS, "rebuilt from the archived log");
    assert_eq!(distinct(&ws) as u64, EVENTS, "each event once");
}

#[test]
fn compaction_keeps_results_and_drops_the_file_count() {
    let ws = workspace();
    for f in 0..6 {
        let lines: Vec<String> = (0..50).map(|i| reading(f * 100 + i)).collect();
        ws.drop_file(&format!("f{f}.ndjson"), lines.join("\n"));
    }
    let mut yaml = iot_pipeline("", 20);
    yaml.push_str(
        "  copy:\n    layer: silver\n    input: iot_bronze\n    batch: {max_bytes: 1}\n    compact_after: 0\n",
    );
    ws.write_pipeline(&yaml);
    ws.run_once();
    let pipeline = ws.pipeline();
    let query = |sql: &str| {
        let out = ws.ingesta(&["query", pipeline.to_str().unwrap(), sql, "--format", "csv"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let files = || {
        let out = ws.ingesta(&["status", pipeline.to_str().unwrap(), "--json"]);
        let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        s["tables"].as_array().unwrap().iter().find(|t| t["name"] == "copy").unwrap()["files"].as_u64().unwrap()
    };
    // query reads, never writes
    let out = ws.ingesta(&["query", pipeline.to_str().unwrap(), "INSERT INTO copy SELECT * FROM copy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("only queries"), "{}", text(&out.stderr));
    let sql = "SELECT device_id, ts, temperature, _position FROM copy ORDER BY device_id, ts, _position";
    let (before, files_before) = (query(sql), files());
    assert!(files_before >= 10, "{files_before} files");
    let out = ws.ingesta(&["compact", pipeline.to_str().unwrap(), "copy", "--vacuum", "0h"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(query(sql), before, "same rows after compaction");
    assert!(files() < files_before, "{} files after, {files_before} before", files());
    assert_eq!(read_delta(&ws.lake().join("copy"), &[], None).rows, 300);
    // the compacted table is read on: new rows after compaction still arrive once
    ws.drop_file("f9.ndjson", (900..910).map(reading).collect::<Vec<_>>().join("\n"));
    ws.run_once();
    assert_eq!(read_delta(&ws.lake().join("copy"), &["_source", "_position"], None).distinct_keys, 310);
}

/// The upkeep policy on a bronze table: small files compacted after a run,
/// the files they replaced deleted once older than `vacuum_after`.
#[test]
fn bronze_compacts_and_vacuums_itself_by_policy() {
    let ws = workspace();
    ws.drop_file("a.ndjson", (0..400).map(|i| reading(i) + "\n").collect::<String>());
    let mut yaml = iot_pipeline("", 50);
    yaml.push_str("    compact_after: 4\n    vacuum_after: 1s\n");
    ws.write_pipeline(&yaml);
    let bronze = ws.lake().join("iot_bronze");
    let on_disk = || {
        let mut n = 0;
        let mut dirs = vec![bronze.clone()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() && !p.ends_with("_delta_log") {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "parquet") {
                    n += 1;
                }
            }
        }
        n
    };
    ws.run_once();
    let view = read_delta(&bronze, &["_source", "_position"], None);
    assert_eq!((view.rows, view.distinct_keys), (400, 400));
    let pipeline = ws.pipeline();
    let status = ws.ingesta(&["status", pipeline.to_str().unwrap(), "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["tables"][0]["files"], 1, "8 micro-batch files compacted into one: {s}");
    assert_eq!(on_disk(), 9, "the replaced files stay until they are older than vacuum_after");
    std::thread::sleep(Duration::from_millis(1500));
    ws.run_once();
    assert_eq!(on_disk(), 1, "vacuumed by the next run");
    // the lake remembers the vacuum, so runs of other processes keep its pace
    assert!(bronze.join("_ingesta_vacuumed").is_file(), "the vacuum's marker");
    assert_eq!(read_delta(&bronze, &["_source", "_position"], None).distinct_keys, 400);
}

#[test]
fn rebuild_recomputes_one_table_and_its_readers_ask_to_be_rebuilt() {
    let ws = workspace();
    ws.drop_file("a.ndjson", (0..30).map(reading).collect::<Vec<_>>().join("\n"));
    let mut yaml = iot_pipeline("", 1000);
    yaml.push_str(
        r#"
  clean:
    layer: silver
    input: iot_bronze
    transform: {select: [device_id, farm_id, ts, temperature]}
  per_farm:
    layer: gold
    input: clean
    transform:
      sql: SELECT farm_id, count(*) AS n FROM input GROUP BY farm_id
    write: {mode: aggregate, key: [farm_id], measures: {n: sum}}
"#,
    );
    ws.write_pipeline(&yaml);
    ws.run_once();
    let p = ws.pipeline();
    let n = || {
        let out = ws.ingesta(&["query", p.to_str().unwrap(), "SELECT n FROM per_farm", "--format", "csv"]);
        text(&out.stdout)
    };
    assert_eq!(n(), "n\n30\n");
    let out = ws.ingesta(&["rebuild", p.to_str().unwrap(), "clean"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("must be rebuilt too, in this order: per_farm"), "{}", text(&out.stdout));
    assert_eq!(read_delta(&ws.lake().join("clean"), &[], None).rows, 30);

    // the reader of the rebuilt table does not read it twice: it stops and says what to do
    let out = ws.ingesta(&["run", p.to_str().unwrap(), "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("`clean` was rebuilt") && text(&out.stderr).contains("ingesta rebuild"));
    assert_eq!(n(), "n\n30\n");
    let out = ws.ingesta(&["rebuild", p.to_str().unwrap(), "per_farm"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(n(), "n\n30\n");
    ws.run_once();
    assert_eq!(n(), "n\n30\n");
}
