//! The REST source against a test API served from this process (a thread
//! on a std `TcpListener`): every pagination style, 429 and 500 answered at
//! random (seeded, the seed printed), a bad page quarantined with its URL,
//! incremental passes, and a run SIGKILLed mid-way then run again: every
//! record exactly once in bronze.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ingesta_testkit::{Rng, Workspace, kill_after, read_delta, text};

use crate::workspace;

const TOKEN: &str = "rest-secret";

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Cursor,
    NextLink,
    Page,
    Offset,
}

/// The API's records and how it misbehaves.
struct Api {
    style: Style,
    /// Records 1..=total exist.
    total: u64,
    size: u64,
    /// Percent of requests answered 429 or 500.
    failing: u64,
    rng: Rng,
    /// This page (its first record's index from 0 / page size) answers HTML.
    bad_page: Option<u64>,
    /// Requests, by their path and query.
    asked: Vec<String>,
    refused: u64,
}

/// `updated_at` of record `n`: text that sorts as `n` does.
fn stamp(n: u64) -> String {
    format!("2026-12-07T00:00:00.{n:06}Z")
}

fn record(n: u64) -> String {
    format!(r#"{{"id":{n},"name":"item-{n}","updated_at":"{}","extra":{{"n":{n}}}}}"#, stamp(n))
}

impl Api {
    /// The answer to `GET target`: status, extra headers, body.
    fn answer(&mut self, target: &str, auth: bool) -> (u16, String, String) {
        self.asked.push(target.to_string());
        if !auth {
            return (401, String::new(), "{\"error\":\"no token\"}".into());
        }
        if self.rng.below(100) < self.failing {
            self.refused += 1;
            return match self.rng.below(4) {
                0 => (429, "Retry-After: 1\r\n".into(), String::new()),
                1 => (429, "Retry-After: 0\r\n".into(), String::new()),
                _ => (500, String::new(), "oops".into()),
            };
        }
        let q = |k: &str| query(target, k);
        let num = |k: &str, d: u64| q(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
        // the records after `first` (0-based), above `since` when asked
        let since = q("since");
        let from = match self.style {
            Style::Cursor | Style::NextLink => num("after", 0),
            Style::Page => (num("page", 1) - 1) * num("per_page", self.size),
            Style::Offset => num("offset", 0),
        };
        let size = if self.style == Style::Page { num("per_page", self.size) } else { self.size };
        let ids: Vec<u64> = (from + 1..=self.total)
            .filter(|n| since.as_ref().is_none_or(|s| stamp(*n).as_str() > s.as_str()))
            .take(size as usize)
            .collect();
        if self.bad_page.is_some_and(|b| from == b * size && !ids.is_empty()) {
            return (200, String::new(), "<html>maintenance</html>".into());
        }
        let items = ids.iter().map(|n| record(*n)).collect::<Vec<_>>().join(",");
        let last = ids.last().copied();
        let since_q = since.map(|s| format!("&since={s}")).unwrap_or_default();
        match self.style {
            Style::Cursor => {
                let next = last.map_or("null".to_string(), |l| format!("\"{l}\""));
                (200, String::new(), format!(r#"{{"data":[{items}],"meta":{{"next":{next}}}}}"#))
            }
            Style::NextLink => {
                let link = last.map(|l| format!("Link: </items?after={l}{since_q}>; rel=\"next\"\r\n"));
                (200, link.unwrap_or_default(), format!("[{items}]"))
            }
            Style::Page | Style::Offset => (200, String::new(), format!(r#"{{"data":[{items}]}}"#)),
        }
    }
}

fn query(target: &str, key: &str) -> Option<String> {
    let q = target.split_once('?')?.1;
    q.split('&').find_map(|kv| kv.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.replace("%3A", ":")))
}

/// Serves the API on a free port until the test ends.
fn serve(api: Arc<Mutex<Api>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let api = api.clone();
            std::thread::spawn(move || connection(conn, &api));
        }
    });
    port
}

/// Answers requests on one keep-alive connection.
fn connection(conn: TcpStream, api: &Mutex<Api>) {
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut auth = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                break;
            }
            auth |= h.trim().eq_ignore_ascii_case(&format!("authorization: Bearer {TOKEN}"));
        }
        let (status, headers, body) = api.lock().unwrap().answer(&target, auth);
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{headers}\r\n",
            body.len()
        );
        if out.write_all(head.as_bytes()).and_then(|_| out.write_all(body.as_bytes())).is_err() {
            return;
        }
    }
}

fn api(style: Style, total: u64, size: u64, failing: u64) -> (Arc<Mutex<Api>>, u16) {
    let seed = Rng::clock_seed();
    eprintln!("the API answers 429/500 by seed {seed}");
    let api = Api { style, total, size, failing, rng: Rng(seed), bad_page: None, asked: Vec::new(), refused: 0 };
    let api = Arc::new(Mutex::new(api));
    let port = serve(api.clone());
    (api, port)
}

fn pipeline(ws: &Workspace, port: u16, pagination: &str, records: &str, extra: &str, batch: usize) {
    ws.write_pipeline(&format!(
        r#"pipeline: rest_test
lake:
  root: "{{lake}}"
sources:
  items:
    type: rest
    url: http://127.0.0.1:{port}/items
    headers: {{Authorization: "Bearer ${{REST_TOKEN}}"}}
    records: "{records}"
    pagination: {pagination}
    backoff: 10ms
    attempts: 12
{extra}
tables:
  items_raw:
    layer: bronze
    input: items
    columns:
      - {{name: id, type: bigint, required: true}}
      - {{name: name, type: string}}
    batch: {{max_rows: {batch}}}
"#
    ));
}

fn run(ws: &Workspace) -> serde_json::Value {
    let out = ws
        .command(&["run", ws.pipeline().to_str().unwrap(), "--once", "--json"])
        .env("REST_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success(), "run failed: {}\n{}", text(&out.stderr), text(&out.stdout));
    assert!(!text(&out.stderr).contains(TOKEN), "the token is never printed");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn bronze(ws: &Workspace) -> ingesta_testkit::TableView {
    read_delta(&ws.lake().join("items_raw"), &["id"], None)
}

#[test]
fn rest_pages_sigkilled_mid_run_land_exactly_once() {
    let ws = workspace();
    let total = 100_000;
    let (api, port) = api(Style::Cursor, total, 500, 8);
    let cursor = "{cursor: {param: after, field: meta.next}}";
    pipeline(&ws, port, cursor, "data", "", 5_000);
    let mut child = ws
        .command(&["run", ws.pipeline().to_str().unwrap(), "--once"])
        .env("REST_TOKEN", TOKEN)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // killed once some commits are in, before the last page
    let table = ws.lake().join("items_raw/_delta_log");
    let committed = ingesta_testkit::wait_until(Duration::from_secs(60), || {
        std::fs::read_dir(&table).map(|d| d.count() >= 4).unwrap_or(false)
    });
    assert!(committed, "no commits within a minute");
    assert!(kill_after(&mut child, Duration::from_millis(100)), "the run ended before it was killed");
    let partial = bronze(&ws);
    assert!(partial.rows > 0 && partial.rows < total, "killed mid-run: {} rows", partial.rows);
    assert_eq!(partial.distinct_keys, partial.rows);
    let again = run(&ws);
    assert_eq!(again["tables"][0]["error"], serde_json::Value::Null, "{again}");
    let v = bronze(&ws);
    assert_eq!((v.rows, v.distinct_keys), (total, total), "every record exactly once");
    assert!(v.columns.iter().any(|c| c == "_rescued"), "{:?}", v.columns);
    let refused = api.lock().unwrap().refused;
    assert!(refused > 0, "the API refused no request");
    // a run after the end asks for the last page again and takes nothing
    let idle = run(&ws);
    assert_eq!(idle["tables"][0]["rows"], 0, "{idle}");
    assert_eq!(bronze(&ws).rows, total);
}

#[test]
fn rest_next_link_page_and_offset_read_everything_and_a_bad_page_is_quarantined() {
    for (style, pagination, records) in [
        (Style::NextLink, "{next_link: {}}", ""),
        (Style::Page, "{page: {param: page, size_param: per_page, size: 40}}", "data"),
        (Style::Offset, "{offset: {param: offset, limit_param: limit, limit: 40}}", "data"),
    ] {
        let ws = workspace();
        let (api, port) = api(style, 1_000, 40, 5);
        api.lock().unwrap().bad_page = (style == Style::Page).then_some(2);
        pipeline(&ws, port, pagination, records, "", 300);
        let first = run(&ws);
        let bad = if style == Style::Page { 40 } else { 0 };
        assert_eq!(first["tables"][0]["rows"], 1_000 - bad, "{pagination}: {first}");
        let v = bronze(&ws);
        assert_eq!((v.rows, v.distinct_keys), (1_000 - bad, 1_000 - bad), "{pagination}");
        // records appended to the list are read from the last page on, none twice
        api.lock().unwrap().total = 1_070;
        let second = run(&ws);
        assert_eq!(second["tables"][0]["rows"], 70, "{pagination}: {second}");
        let v = bronze(&ws);
        assert_eq!((v.rows, v.distinct_keys), (1_070 - bad, 1_070 - bad), "{pagination}");
        if style == Style::Page {
            let q = read_delta(&ws.lake().join("_quarantine/items_raw"), &[], Some("source,reason"));
            let url = format!("http://127.0.0.1:{port}/items?page=3&per_page=40|parse_error");
            assert_eq!(q.groups, [(url, 1)].into_iter().collect(), "the bad page once, with its URL");
        }
    }
}

#[test]
fn rest_incremental_runs_fetch_only_records_above_the_kept_value() {
    let ws = workspace();
    let (api, port) = api(Style::Cursor, 700, 100, 5);
    let cursor = "{cursor: {param: after, field: meta.next}}";
    let inc = "    incremental: {param: since, field: updated_at}";
    pipeline(&ws, port, cursor, "data", inc, 250);
    assert_eq!(run(&ws)["tables"][0]["rows"], 700);
    api.lock().unwrap().total = 760;
    api.lock().unwrap().asked.clear();
    assert_eq!(run(&ws)["tables"][0]["rows"], 60);
    let asked = api.lock().unwrap().asked.clone();
    let since = format!("since={}", stamp(700).replace(':', "%3A"));
    assert!(asked.iter().all(|a| a.contains(&since)), "the second run sends the kept value: {asked:?}");
    let v = bronze(&ws);
    assert_eq!((v.rows, v.distinct_keys), (760, 760));
    // a refused token stops the table, saying so, without printing the token
    let out = ws
        .command(&["run", ws.pipeline().to_str().unwrap(), "--once", "--json"])
        .env("REST_TOKEN", "wrong-token")
        .output()
        .unwrap();
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("answered 401 Unauthorized") && said.contains("check the source's url"), "{said}");
    assert!(!said.contains("wrong-token"), "{said}");
}
