//! Operating a pipeline: retries as a table's `retry` says, every attempt in
//! the run history (`ingesta runs`, `GET /api/runs`), and an alert that
//! reaches a webhook once when a table fails and once when it recovers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingesta_testkit::{Workspace, interrupt, spawn_watch, text, wait_until};

use crate::{data_files, iot_pipeline, reading, workspace};

/// A webhook receiver on a free port: the JSON bodies POSTed to it.
fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook?token=s3cret-hook-token", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let bodies = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                // one request after another on a kept-alive connection
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    bodies.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                    stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").unwrap();
                }
            });
        }
    });
    (url, got)
}

fn runs(ws: &Workspace, table: &str) -> Vec<serde_json::Value> {
    let out = ws.ingesta(&["runs", ws.pipeline().to_str().unwrap(), table, "--json", "--last", "100"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_failing_table_is_retried_recorded_and_alerted_once_then_resolved_once() {
    let ws = workspace();
    let (hook, got) = receiver();
    let port = ingesta_testkit::free_port();
    let firing = || -> Option<serde_json::Value> {
        let url = format!("http://127.0.0.1:{port}/api/tables");
        let r = reqwest::blocking::Client::new().get(url).bearer_auth("read-token-0123456789").send().ok()?;
        Some(r.json::<serde_json::Value>().ok()?["alerts"].clone())
    };
    let lines = |r: std::ops::Range<usize>| r.map(|i| reading(i) + "\n").collect::<String>();
    ws.drop_file("a.ndjson", lines(0..10));
    ws.write_pipeline(&iot_pipeline("    poll: 200ms", 1000));
    ws.run_once();
    let ok = runs(&ws, "iot_bronze");
    assert_eq!((ok.len(), ok[0]["status"].as_str(), ok[0]["rows"].as_i64()), (1, Some("ok"), Some(10)), "{ok:?}");

    // the silver table's input is unreadable for a while
    let files = data_files(&ws.lake().join("iot_bronze"));
    for f in &files {
        std::fs::rename(f, f.with_extension("away")).unwrap();
    }
    let rest = format!(
        "    retry: {{attempts: 2, backoff: 100ms, max_backoff: 400ms}}\n\
         \n  doubled:\n    layer: silver\n    input: iot_bronze\n    retry: {{attempts: 3, backoff: 100ms, max_backoff: 400ms}}\n\
         \x20   transform:\n      select: [device_id, {{name: t2, expr: \"temperature * 2\"}}]\n\
         alerts:\n  failures:\n    on: table_failed\n    tables: [doubled]\n    webhook: {hook}\n\
         serve:\n  listen: 127.0.0.1:{port}\n  read_token: read-token-0123456789\n"
    );
    ws.write_pipeline(&(iot_pipeline("    poll: 200ms", 1000) + &rest));
    let mut child = spawn_watch(&ws);
    let fired = wait_until(Duration::from_secs(30), || !got.lock().unwrap().is_empty());
    // the dashboard's API shows it while it fires
    let shown = wait_until(Duration::from_secs(10), || firing().is_some_and(|a| a[0]["alert"] == "failures"));
    for f in &files {
        std::fs::rename(f.with_extension("away"), f).unwrap();
    }
    let resolved = wait_until(Duration::from_secs(30), || got.lock().unwrap().len() >= 2);
    let cleared =
        wait_until(Duration::from_secs(10), || firing().is_some_and(|a| a.as_array().is_some_and(Vec::is_empty)));
    interrupt(&child);
    assert!(wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some()), "Ctrl-C stops the watch");
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(fired && resolved, "the webhook heard {:?}: {stderr}", got.lock().unwrap());
    assert!(shown && cleared, "the firing alert is in /api/tables while it lasts");
    assert!(!stderr.contains("s3cret-hook-token"), "the webhook's URL is never printed: {stderr}");
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "once firing, once resolved: {bodies:?}");
    assert_eq!((bodies[0]["status"].as_str(), bodies[0]["table"].as_str()), (Some("firing"), Some("doubled")));
    assert!(bodies[0]["message"].as_str().unwrap().contains("iot_bronze"), "{bodies:?}");
    assert_eq!((bodies[1]["status"].as_str(), bodies[1]["alert"].as_str()), (Some("resolved"), Some("failures")));

    // each attempt is in the history, newest first: retried, failed (and
    // tried again less often), then a pass that went through
    let passes = runs(&ws, "doubled");
    let statuses: Vec<&str> = passes.iter().rev().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(&statuses[..3], ["retrying", "retrying", "failed"], "{passes:?}");
    assert_eq!(statuses.last(), Some(&"ok"), "{passes:?}");
    let attempts: Vec<i64> = passes.iter().rev().map(|r| r["attempt"].as_i64().unwrap()).collect();
    assert_eq!(&attempts[..3], [1, 2, 3], "{passes:?}");
    assert_eq!(passes[0]["rows"], 10);
    // it read bronze from its start (-1) to its version 1 (0 created it), 10 rows
    let read = |k: &str| passes[0][k].as_i64();
    assert_eq!((read("rows_in"), read("input_from"), read("input_to")), (Some(10), Some(-1), Some(1)), "{passes:?}");
    assert!(passes[1]["error"].as_str().is_some_and(|e| !e.is_empty()), "{passes:?}");
    // the same history through SQL
    let sql = "SELECT count(*) AS n FROM ingesta_runs WHERE \"table\" = 'doubled' AND status = 'ok'";
    let q = ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), sql, "--format", "csv"]);
    assert_eq!(text(&q.stdout).trim(), "n\n1", "{}", text(&q.stderr));
    // and through the API, with the read token only
    let addr = format!("127.0.0.1:{}", ingesta_testkit::free_port());
    let mut server = ws
        .command(&["serve", ws.pipeline().to_str().unwrap(), "--addr", &addr])
        .env("INGESTA_READ_TOKEN", "read-token-0123456789")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://{addr}/api/runs?table=doubled&limit=100");
    let http = reqwest::blocking::Client::new();
    let up = wait_until(Duration::from_secs(60), || http.get(&url).send().is_ok());
    let refused = http.get(&url).send().map(|r| r.status().as_u16());
    let api: serde_json::Value = http.get(&url).bearer_auth("read-token-0123456789").send().unwrap().json().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(up, "ingesta serve answers");
    assert_eq!(refused.ok(), Some(401), "the run history needs the read token");
    assert_eq!(api["runs"].as_array().map(Vec::len), Some(passes.len()), "{api}");
}

/// Runs `run --watch` for `secs` seconds and stops it with Ctrl-C.
fn watch_for(ws: &Workspace, secs: u64) -> std::process::Child {
    let child = spawn_watch(ws);
    std::thread::sleep(Duration::from_secs(secs));
    interrupt(&child);
    child
}

fn finish(mut child: std::process::Child) {
    assert!(wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some()), "Ctrl-C stops the watch");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn a_scheduled_table_catches_up_once_and_no_time_runs_twice_across_processes() {
    let ws = workspace();
    let lines = |r: std::ops::Range<usize>| r.map(|i| reading(i) + "\n").collect::<String>();
    let pipeline = |schedule: &str| {
        iot_pipeline("    poll: 200ms", 1000)
            + "\n  doubled:\n    layer: silver\n    input: iot_bronze\n"
            + &format!("    schedule: {schedule}\n")
            + "    transform:\n      select: [device_id, {name: t2, expr: \"temperature * 2\"}]\n"
    };
    let scheduled = |ws: &Workspace| runs(ws, "doubled").into_iter().filter(|r| r["trigger"] == "schedule").count();
    ws.write_pipeline(&pipeline("{every: 1h}"));
    ws.drop_file("a.ndjson", lines(0..10));
    // the hour's time has passed and nobody ran it: a first watch runs it at once
    finish(watch_for(&ws, 3));
    assert_eq!(scheduled(&ws), 1, "{:?}", runs(&ws, "doubled"));
    assert_eq!(runs(&ws, "doubled")[0]["rows"], 10);
    // a second watch within the same hour finds that time claimed: no pass
    ws.drop_file("b.ndjson", lines(10..20));
    finish(watch_for(&ws, 3));
    assert_eq!(scheduled(&ws), 1, "{:?}", runs(&ws, "doubled"));
    let sql = "SELECT count(*) AS n FROM doubled";
    let count = || text(&ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), sql, "--format", "csv"]).stdout);
    assert_eq!(count().trim(), "n\n10", "the silver table waits for its time");

    // two processes, a time every 2 s: each time is claimed and run by one of them
    ws.write_pipeline(&pipeline("{every: 2s}"));
    let (a, b) = (spawn_watch(&ws), spawn_watch(&ws));
    std::thread::sleep(Duration::from_secs(7));
    interrupt(&a);
    interrupt(&b);
    finish(a);
    finish(b);
    let claims = std::fs::read_dir(ws.lake().join("_claims/schedules/doubled")).unwrap().count();
    assert!(claims >= 3, "{claims} times claimed");
    assert_eq!(scheduled(&ws), claims, "one pass per time: {:?}", runs(&ws, "doubled"));
    assert_eq!(count().trim(), "n\n20");
}

#[test]
fn repair_runs_the_failed_table_and_its_readers_only() {
    let ws = workspace();
    let lines = |r: std::ops::Range<usize>| r.map(|i| reading(i) + "\n").collect::<String>();
    let bronze_only = iot_pipeline("", 1000);
    let retry = "    retry: {attempts: 2, backoff: 100ms}\n";
    let full = bronze_only.clone()
        + "\n  doubled:\n    layer: silver\n    input: iot_bronze\n"
        + retry
        + "    transform:\n      select: [device_id, {name: t2, expr: \"temperature * 2\"}]\n"
        + "\n  tripled:\n    layer: gold\n    input: doubled\n"
        + retry
        + "    transform:\n      select: [device_id, {name: t3, expr: \"t2 * 1.5\"}]\n";
    ws.write_pipeline(&full);
    ws.drop_file("a.ndjson", lines(0..10));
    ws.run_once();
    // new rows reach bronze, then bronze's files are unreadable while the others run
    ws.drop_file("b.ndjson", lines(10..15));
    ws.write_pipeline(&bronze_only);
    ws.run_once();
    ws.write_pipeline(&full);
    let files = data_files(&ws.lake().join("iot_bronze"));
    for f in &files {
        std::fs::rename(f, f.with_extension("away")).unwrap();
    }
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once", "--json"]);
    assert!(!out.status.success(), "a failed table fails the run");
    for f in &files {
        std::fs::rename(f.with_extension("away"), f).unwrap();
    }
    let statuses = |t: &str| runs(&ws, t).iter().map(|r| r["status"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(statuses("doubled")[..2], ["failed", "retrying"]);

    let out = ws.ingesta(&["repair", ws.pipeline().to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ran: Vec<(&str, u64)> = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["table"].as_str().unwrap(), t["rows"].as_u64().unwrap()))
        .collect();
    assert_eq!(ran, [("doubled", 5), ("tripled", 5)], "only the failed table and its reader run");
    assert_eq!(runs(&ws, "doubled")[0]["trigger"], "repair");
    let again = ws.ingesta(&["repair", ws.pipeline().to_str().unwrap()]);
    assert!(text(&again.stdout).contains("nothing to repair"), "{}", text(&again.stdout));
}
