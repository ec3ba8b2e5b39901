//! The dashboard and the read API as a user meets them: `ingesta demo` ends
//! by serving its lake; every report equals the same SQL run by DuckDB over
//! the same Delta tables, in every format; a real browser (headless
//! Chromium) sees the tables and a chart that follows its parameter; and
//! every surface refuses what it must without saying more than it should.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ingesta_testkit::{free_port, interrupt, python, text, wait_until};

use crate::workspace;

const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/report_oracle.py");
const FARM_IOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/farm-iot/ingesta.yaml");
const BROWSER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser");
const READ: &str = "read-token-for-the-serving-test";
const ADMIN: &str = "admin-token-for-the-serving-test";

/// Waits for `GET /health` at `addr`, or fails with what the child said.
fn wait_serving(child: &mut Child, addr: &str) {
    let up = wait_until(Duration::from_secs(180), || {
        reqwest::blocking::get(format!("http://{addr}/health")).is_ok_and(|r| r.status().is_success())
            || child.try_wait().unwrap().is_some()
    });
    if child.try_wait().unwrap().is_some() || !up {
        let _ = child.kill();
        let out = std::mem::replace(child, Command::new("true").spawn().unwrap()).wait_with_output().unwrap();
        panic!("not serving at {addr}: {}\n{}", text(&out.stdout), text(&out.stderr));
    }
}

fn stop(mut child: Child) -> String {
    interrupt(&child);
    assert!(wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some()), "Ctrl-C stops serving");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout) + &text(&out.stderr)
}

#[test]
fn the_demo_serves_reports_that_equal_duckdb_and_a_browser_draws_them() {
    let ws = workspace();
    let dir = ws.path().join("demo");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut demo = ws
        .command(&["demo", "--dir", dir.to_str().unwrap(), "--rows", "20000", "--files", "4", "--addr", &addr])
        .env("INGESTA_READ_TOKEN", READ)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_serving(&mut demo, &addr);

    let cases = [
        "farm_temperature:farm=farm-001",
        "farm_temperature:farm=farm-007,day=2026-11-03",
        "farm_temperature:",
        "daily_revenue:",
        "daily_revenue:from=2026-11-03,to=2026-11-05",
        "low_stock:max_units=20",
    ];
    let url = format!("http://{addr}");
    let lake = dir.join("lake");
    let out =
        Command::new(python()).arg(ORACLE).args([&url, READ, FARM_IOT, lake.to_str().unwrap()]).args(cases).output();
    let out = out.unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("the oracle failed: {}\n{}", text(&out.stdout), text(&out.stderr)));
    assert_eq!(report["ok"], true, "reports differ from DuckDB: {report}");
    assert_eq!(report["checked"], cases.len() * 4, "{report}");

    let shots = browser_shots();
    let out = Command::new("node")
        .current_dir(BROWSER)
        .args(["dashboard.mjs", "--url", &url, "--token", READ, "--out", shots.to_str().unwrap()])
        .args(["--report", "farm_temperature", "--param", "farm=farm-000", "--param2", "farm-001"])
        .output()
        .expect("node runs (Node.js is needed for the browser test)");
    assert!(out.status.success(), "the browser test failed:\n{}\n{}", text(&out.stdout), text(&out.stderr));
    for page in ["pipeline", "report", "report-changed", "quarantine", "sql", "docs"] {
        assert!(shots.join(format!("{page}.png")).is_file(), "a screenshot of {page}");
    }
    let said = stop(demo);
    assert!(said.contains(&format!("http://{addr}/#token={READ}")), "the demo prints the dashboard's URL: {said}");
}

/// Where the browser test saves its screenshots (kept after the run).
fn browser_shots() -> PathBuf {
    let dir = Path::new(BROWSER).join("shots");
    std::fs::create_dir_all(&dir).unwrap();
    assert!(
        Path::new(BROWSER).join("node_modules/playwright-core").is_dir(),
        "the browser test needs playwright-core: run `cd tests/browser && npm ci` (scripts/test.sh does)"
    );
    dir
}

/// `ingesta serve` over a small demo lake, with both tokens and a short query time.
fn serve_small(ws: &ingesta_testkit::Workspace) -> (Child, String) {
    let dir = ws.path().join("demo");
    let out = ws.ingesta(&["demo", "--dir", dir.to_str().unwrap(), "--rows", "2000", "--files", "1", "--no-serve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let addr = format!("127.0.0.1:{}", free_port());
    let yaml = std::fs::read_to_string(FARM_IOT).unwrap() + "\nserve:\n  query_timeout: 1s\n  max_rows: 50\n";
    std::fs::write(ws.pipeline(), yaml).unwrap();
    let mut child = ws
        .command(&["serve", ws.pipeline().to_str().unwrap(), "--addr", &addr])
        .env("INGESTA_LAKE", dir.join("lake"))
        .env("INGESTA_LANDING", dir.join("landing"))
        .env("INGESTA_READ_TOKEN", READ)
        .env("INGESTA_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_serving(&mut child, &addr);
    (child, addr)
}

#[test]
fn every_surface_refuses_what_it_must_and_says_no_more() {
    let ws = workspace();
    let (child, addr) = serve_small(&ws);
    let http = reqwest::blocking::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");
    let get = |path: &str, token: Option<&str>| {
        let r = http.get(url(path));
        let r = match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        };
        let r = r.send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    let sql = |body: String, token: &str| {
        let r = http.post(url("/api/sql")).bearer_auth(token).header("content-type", "application/json").body(body);
        let r = r.send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };

    // probes: liveness open and silent; readiness detail only with a token
    assert_eq!(get("/health", None), (200, r#"{"status":"ok"}"#.to_string()));
    assert!(!get("/ready", None).1.contains("tables"), "no detail for anonymous callers");
    // the dashboard's files are open (they hold no data); everything else asks for a token
    assert_eq!(get("/", None).0, 200);
    for path in ["/api/tables", "/api/reports", "/api/reports/low_stock", "/api/openapi.json", "/metrics", "/status"] {
        let (code, body) = get(path, None);
        assert_eq!(code, 401, "{path} without a token: {body}");
        assert!(!body.contains("inventory"), "{path}: nothing leaks: {body}");
        assert_eq!(get(path, Some("wrong-token-of-the-same-length!")).0, 401, "{path} with a wrong token");
        assert_eq!(get(path, Some(READ)).0, 200, "{path} with the read token");
    }
    // an admin route: the read token is not enough
    let compact = |token: &str| http.post(url("/api/tables/readings/compact")).bearer_auth(token).send().unwrap();
    assert_eq!(compact(READ).status(), 403);
    assert_eq!(compact(ADMIN).status(), 200, "the admin token may");
    // SQL that writes is refused; a query runs
    for write in
        ["INSERT INTO readings SELECT * FROM readings", "COPY readings TO '/tmp/x.csv'", "CREATE TABLE x AS SELECT 1"]
    {
        let (code, body) = sql(serde_json::json!({ "sql": write }).to_string(), READ);
        assert_eq!(code, 400, "{write}: {body}");
        assert!(body.contains("only queries"), "{write}: {body}");
    }
    let (code, body) = sql(r#"{"sql": "SELECT count(*) AS n FROM readings"}"#.into(), READ);
    assert_eq!(code, 200, "{body}");
    // the row limit cuts and says so
    let (_, body) = sql(r#"{"sql": "SELECT * FROM readings"}"#.into(), READ);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["row_count"].as_u64(), v["truncated"].as_bool()), (Some(50), Some(true)), "{}", v["row_count"]);
    // parameters are values, never SQL
    let (code, body) = get("/api/reports/farm_temperature?farm=farm-000'%20OR%20'1'='1", Some(READ));
    assert_eq!(code, 200, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["row_count"], 0, "no farm has that id");
    let (code, body) = get("/api/reports/low_stock?max_units=1;DROP%20TABLE%20readings", Some(READ));
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("max_units") && body.contains("integer"), "{body}");
    assert_eq!(get("/api/reports/low_stock?nope=1", Some(READ)).0, 400, "an unknown parameter");
    assert_eq!(get("/api/reports/no_such_report", Some(READ)).0, 404);
    // a body past the limit; a request that never finishes
    let (code, _) = sql(format!(r#"{{"sql": "SELECT '{}'"}}"#, "x".repeat(2 << 20)), READ);
    assert_eq!(code, 413, "an oversized body");
    assert_eq!(slow_request(&addr), Some(408), "a request whose body never comes");

    let said = stop(child);
    for secret in [READ, ADMIN] {
        assert!(!said.contains(secret), "tokens are never printed: {said}");
    }
}

/// Sends headers announcing a body and then nothing: the status line of the
/// answer, once the server gives up waiting.
fn slow_request(addr: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /api/sql HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {READ}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"sql\""
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut answer = [0u8; 64];
    let n = s.read(&mut answer).ok()?;
    let line = String::from_utf8_lossy(&answer[..n]).to_string();
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_api_document_has_each_report_with_its_typed_parameters() {
    let ws = workspace();
    let (child, addr) = serve_small(&ws);
    let doc: serde_json::Value = reqwest::blocking::Client::new()
        .get(format!("http://{addr}/api/openapi.json"))
        .bearer_auth(READ)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let op = &doc["paths"]["/api/reports/farm_temperature"]["get"];
    let params = op["parameters"].as_array().unwrap();
    let param = |n: &str| params.iter().find(|p| p["name"] == n).unwrap_or_else(|| panic!("{n} in {op}"));
    assert_eq!(param("farm")["schema"]["default"], "farm-000");
    assert_eq!(param("day")["schema"]["format"], "date");
    assert_eq!(doc["paths"]["/api/reports/low_stock"]["get"]["parameters"][0]["schema"]["type"], "integer");
    assert!(doc["paths"]["/api/sql"]["post"].is_object());
    let docs = reqwest::blocking::get(format!("http://{addr}/api/docs")).unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    stop(child);
}
