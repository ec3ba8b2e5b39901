//! The HTTP collector under load from concurrent clients on loopback, its
//! server killed with SIGKILL mid-load and restarted: every event that got a
//! 2xx is in bronze exactly once, and no event is there twice. Plus the
//! answers a client gets for bad requests.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ingesta_testkit::{Workspace, free_port, interrupt, python, text, wait_until};

use crate::workspace;

pub(crate) const TOKEN: &str = "it-secret";

fn pipeline(port: u16) -> String {
    pipeline_with(port, "", "{max_rows: 100000, max_wait: 1s}")
}

pub(crate) fn pipeline_with(port: u16, source_extra: &str, batch: &str) -> String {
    format!(
        r#"pipeline: collector_test
lake:
  root: "{{lake}}"
sources:
  clicks:
    type: http
    listen: 127.0.0.1:{port}
    token: {TOKEN}
{source_extra}
tables:
  clicks_raw:
    layer: bronze
    input: clicks
    columns:
      - {{name: client, type: int, required: true}}
      - {{name: n, type: bigint, required: true}}
      - {{name: url, type: string}}
    batch: {batch}
"#
    )
}

/// `run --watch` (killed when dropped), its log appended to `server.log`.
pub(crate) struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn server(ws: &Workspace, port: u16) -> Server {
    server_with(ws, port, "INGESTA_TEST_NOTHING", "")
}

/// [`server`] with one more environment variable (a fail point).
fn server_with(ws: &Workspace, port: u16, var: &str, value: &str) -> Server {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(ws.path().join("server.log")).unwrap();
    let child = ws
        .command(&["run", ws.pipeline().to_str().unwrap(), "--watch"])
        .env("INGESTA_LOG", "warn,ingesta_collector=info,ingesta_runtime=info")
        .env(var, value)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("ingesta starts");
    let http = reqwest::blocking::Client::new();
    let up = wait_until(Duration::from_secs(30), || {
        http.get(format!("http://127.0.0.1:{port}/health")).send().is_ok_and(|r| r.status().is_success())
    });
    assert!(up, "the collector did not come up: {}", server_log(ws));
    Server(child)
}

pub(crate) fn server_log(ws: &Workspace) -> String {
    let log = std::fs::read_to_string(ws.path().join("server.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A client posting NDJSON batches of its own numbered events as fast as it
/// is answered; it keeps the numbers that got a 2xx. A batch refused with 429
/// or 503 is sent again (nothing of it was kept); a batch whose answer was
/// lost (the server died) is not: it may or may not be in the table.
fn client(id: u32, port: u16, stop: Arc<AtomicBool>, acked: Arc<Mutex<BTreeSet<(u32, u64)>>>) -> (u64, u64) {
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let url = format!("http://127.0.0.1:{port}/ingest/clicks");
    let (mut next, mut lost, mut refused) = (0u64, 0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        let size = 1 + (next % 40);
        let body: String =
            (next..next + size).map(|n| format!("{{\"client\":{id},\"n\":{n},\"url\":\"/p/{}\"}}\n", n % 97)).collect();
        match http.post(&url).bearer_auth(TOKEN).body(body).send() {
            Ok(r) if r.status().is_success() => {
                acked.lock().unwrap().extend((next..next + size).map(|n| (id, n)));
                next += size;
            }
            Ok(r) if r.status() == 429 || r.status() == 503 => {
                refused += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(r) => panic!("client {id}: unexpected answer {}: {}", r.status(), r.text().unwrap_or_default()),
            Err(_) => {
                lost += size;
                next += size;
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    (lost, refused)
}

/// (client, n, _seq) of every bronze row, read by Python's deltalake.
pub(crate) fn bronze_rows(ws: &Workspace) -> Vec<(u32, u64, i64)> {
    let script = r#"
import json, sys, deltalake
t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table(columns=["client", "n", "_seq"])
print(json.dumps(list(zip(t["client"].to_pylist(), t["n"].to_pylist(), t["_seq"].to_pylist()))), flush=True)
import os; os._exit(0)
"#;
    let out =
        std::process::Command::new(python()).args(["-c", script]).arg(ws.lake().join("clicks_raw")).output().unwrap();
    assert!(out.status.success(), "outside reader: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_acknowledged_event_lands_once_through_a_sigkill() {
    let port = free_port();
    let ws = workspace();
    ws.write_pipeline(&pipeline(port));
    let mut first = server(&ws, port);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let clients: Vec<_> = (0..6)
        .map(|id| {
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || client(id, port, stop, acked))
        })
        .collect();
    let started = Instant::now();
    let loaded = wait_until(Duration::from_secs(60), || acked.lock().unwrap().len() >= 20_000);
    assert!(loaded, "the clients got {} events acknowledged in 60 s", acked.lock().unwrap().len());
    first.0.kill().unwrap(); // SIGKILL, mid-load
    let _ = first.0.wait();
    let at_kill = acked.lock().unwrap().len();
    let in_table = if ws.lake().join("clicks_raw").exists() { bronze_rows(&ws).len() } else { 0 };
    eprintln!("killed after {:?} with {at_kill} events acknowledged, {in_table} in the table", started.elapsed());
    assert!(in_table < at_kill, "the kill should leave acknowledged events only in the log");
    let mut second = server(&ws, port);
    let more = wait_until(Duration::from_secs(60), || acked.lock().unwrap().len() >= at_kill + 10_000);
    assert!(more, "after the restart the clients got {} events acknowledged", acked.lock().unwrap().len() - at_kill);
    stop.store(true, Ordering::Relaxed);
    let (mut lost, mut refused) = (0, 0);
    for c in clients {
        let (l, r) = c.join().expect("client");
        lost += l;
        refused += r;
    }
    interrupt(&second.0);
    let done = wait_until(Duration::from_secs(60), || second.0.try_wait().is_ok_and(|s| s.is_some()));
    assert!(done, "the collector did not stop on Ctrl-C: {}", server_log(&ws));

    let acked = acked.lock().unwrap();
    let rows = bronze_rows(&ws);
    let mut count: BTreeMap<(u32, u64), u32> = BTreeMap::new();
    for (c, n, _) in &rows {
        *count.entry((*c, *n)).or_default() += 1;
    }
    let seqs: BTreeSet<i64> = rows.iter().map(|r| r.2).collect();
    let twice: Vec<_> = count.iter().filter(|(_, k)| **k > 1).take(5).collect();
    let missing: Vec<_> = acked.iter().filter(|e| !count.contains_key(e)).take(5).collect();
    eprintln!(
        "{} acknowledged, {lost} unanswered (died with the server), {refused} batches refused and resent, {} rows in bronze",
        acked.len(),
        rows.len()
    );
    assert!(twice.is_empty(), "events in bronze more than once: {twice:?}");
    assert!(missing.is_empty(), "acknowledged events missing from bronze: {missing:?}\n{}", server_log(&ws));
    assert_eq!(seqs.len(), rows.len(), "_seq is unique");
    assert!(rows.len() as u64 <= acked.len() as u64 + lost, "nothing but what the clients sent");
}

#[test]
fn clients_are_told_what_is_wrong() {
    let port = free_port();
    let ws = workspace();
    ws.write_pipeline(&pipeline(port));
    let _server = server(&ws, port);
    let http = reqwest::blocking::Client::new();
    let url = format!("http://127.0.0.1:{port}/ingest/clicks");
    let post = |body: &str, token: &str| {
        let r = http.post(&url).bearer_auth(token).body(body.to_string()).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let (status, body) = post("{\"client\":1,\"n\":1}", "wrong");
    assert_eq!(status, 401, "{body}");
    let (status, body) = post("{\"client\":1,\"n\":1}\n{\"client\":", TOKEN);
    assert_eq!(status, 400);
    assert!(body.contains("line 2"), "{body}");
    let (status, body) = post("[1, 2]", TOKEN);
    assert_eq!((status, body.contains("event 1: expected a JSON object")), (400, true), "{body}");
    // without a token nothing is said about the sources; with one, an unknown source is 404, unnamed
    let nope = format!("http://127.0.0.1:{port}/ingest/nope");
    assert_eq!(http.post(&nope).body("{}").send().unwrap().status(), 401);
    assert_eq!(http.post(&nope).bearer_auth("wrong").body("{}").send().unwrap().status(), 401);
    let r = http.post(&nope).bearer_auth(TOKEN).body("{}").send().unwrap();
    assert_eq!(r.status(), 404);
    assert!(!r.text().unwrap().contains("clicks"), "other sources are not listed");
    let (status, body) = post("{\"client\":1,\"n\":1}\n{\"client\":\"x\",\"n\":2}", TOKEN);
    assert_eq!(status, 200, "{body}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"[{\"client\":2,\"n\":1}]").unwrap();
    let r = http
        .post(&url)
        .bearer_auth(TOKEN)
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let big = format!("{{\"client\":1,\"n\":3,\"url\":\"{}\"}}", "x".repeat(2 << 20));
    let (status, body) = post(&big, TOKEN);
    assert_eq!(status, 413, "{body}");
    // the good events land; the mistyped one is quarantined with its number
    let landed = wait_until(Duration::from_secs(20), || {
        let out = ws.ingesta(&["status", ws.pipeline().to_str().unwrap(), "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        v["tables"][0]["rows"] == 2 && v["tables"][0]["quarantined_rows"] == 1
    });
    assert!(landed, "{}", text(&ws.ingesta(&["status", ws.pipeline().to_str().unwrap()]).stdout));
}

#[test]
fn a_table_behind_the_collector_gets_429_with_retry_after() {
    let port = free_port();
    let ws = workspace();
    ws.write_pipeline(&pipeline_with(port, "    max_pending_bytes: 1KiB", "{max_rows: 1000000, max_wait: 1h}"));
    let mut srv = server(&ws, port);
    let http = reqwest::blocking::Client::new();
    let url = format!("http://127.0.0.1:{port}/ingest/clicks");
    let body: String = (0..100).map(|n| format!("{{\"client\":1,\"n\":{n}}}\n")).collect();
    let first = http.post(&url).bearer_auth(TOKEN).body(body.clone()).send().unwrap();
    assert_eq!(first.status(), 200);
    let second = http.post(&url).bearer_auth(TOKEN).body(body).send().unwrap();
    assert_eq!(second.status(), 429);
    assert_eq!(second.headers()["retry-after"], "1");
    // Ctrl-C commits what the log holds
    interrupt(&srv.0);
    assert!(wait_until(Duration::from_secs(30), || srv.0.try_wait().is_ok_and(|s| s.is_some())));
    assert_eq!(bronze_rows(&ws).len(), 100, "the first post, not the refused one");
}

#[test]
fn a_request_resent_with_its_idempotency_key_after_a_sigkill_lands_once() {
    let port = free_port();
    let ws = workspace();
    let cors = "    cors: [\"https://shop.example\"]";
    ws.write_pipeline(&pipeline_with(port, cors, "{max_rows: 100000, max_wait: 200ms}"));
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let url = format!("http://127.0.0.1:{port}/ingest/clicks");
    let body: String = (0..3).map(|n| format!("{{\"client\":7,\"n\":{n}}}\n")).collect();
    let post = |key: &str, body: &str| {
        http.post(&url).bearer_auth(TOKEN).header("Idempotency-Key", key).body(body.to_string()).send()
    };

    // the server dies after its fsync and before its answer: the client hears nothing
    let mut dying = server_with(&ws, port, "INGESTA_FAILPOINT", "collector-after-fsync");
    assert!(post("order-1", &body).is_err(), "the answer was lost");
    assert!(wait_until(Duration::from_secs(20), || dying.0.try_wait().unwrap().is_some()), "the server died");
    drop(dying);

    // so it sends again, with the same key: the first answer, nothing twice
    let _server = server(&ws, port);
    let again = post("order-1", &body).unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let answer: serde_json::Value = again.json().unwrap();
    assert_eq!((answer["first"].as_i64(), answer["last"].as_i64()), (Some(0), Some(2)), "{answer}");
    let other = post("order-2", "{\"client\":7,\"n\":3}").unwrap();
    assert!(other.status().is_success() && !other.headers().contains_key("idempotent-replayed"));
    let table = ws.lake().join("clicks_raw/_delta_log");
    let landed = wait_until(Duration::from_secs(30), || table.exists() && bronze_rows(&ws).len() >= 4);
    let rows = bronze_rows(&ws);
    assert!(landed, "{rows:?}\n{}", server_log(&ws));
    let distinct: BTreeSet<(u32, u64)> = rows.iter().map(|(c, n, _)| (*c, *n)).collect();
    assert_eq!((rows.len(), distinct.len()), (4, 4), "every event once: {rows:?}");

    // a browser page of a listed origin may post; another may not
    let preflight = |origin: &str| {
        let r = http.request(reqwest::Method::OPTIONS, &url).header("Origin", origin).send().unwrap();
        (r.status().as_u16(), r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string()))
    };
    assert_eq!(preflight("https://shop.example"), (204, Some("https://shop.example".into())));
    assert_eq!(preflight("https://elsewhere.example"), (204, None));
}
