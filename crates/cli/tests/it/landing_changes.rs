//! Landing files that change after they were ingested follow the source's
//! `on_change` policy; the default (`tail`) never duplicates a row.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ingesta_testkit::{Workspace, read_delta, text};

use crate::{iot_pipeline, reading, workspace};

fn lines(r: std::ops::Range<usize>) -> String {
    r.map(|i| reading(i) + "\n").collect()
}

/// Appends to a landing file and moves its modification time on, as a writer would.
fn append(ws: &Workspace, rel: &str, more: &str) {
    let path = ws.landing().join(rel);
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(more.as_bytes()).unwrap();
    f.set_modified(SystemTime::now() + Duration::from_secs(5)).unwrap();
}

fn bronze(ws: &Workspace) -> ingesta_testkit::TableView {
    read_delta(&ws.lake().join("iot_bronze"), &["_source", "_position"], Some("device_id"))
}

#[test]
fn a_file_appended_to_after_ingest_adds_only_the_appended_rows() {
    let ws = workspace();
    ws.write_pipeline(&iot_pipeline("", 400));
    ws.drop_file("a.ndjson", lines(0..1000));
    assert_eq!(ws.run_once()["tables"][0]["rows"], 1000);
    append(&ws, "a.ndjson", &(lines(1000..1499) + "{not json\n"));
    let second = ws.run_once();
    assert_eq!(second["tables"][0]["rows"], 499, "only the appended lines are read");
    assert_eq!(second["tables"][0]["quarantined"], 1);
    append(&ws, "a.ndjson", &lines(1499..1500));
    assert_eq!(ws.run_once()["tables"][0]["rows"], 1);
    let view = bronze(&ws);
    assert_eq!((view.rows, view.distinct_keys), (1500, 1500), "every line once");
    assert_eq!(view.groups.len(), 1500, "every reading once, none twice");
    assert_eq!(ws.run_once()["tables"][0]["rows"], 0, "and nothing more afterwards");
}

#[test]
fn a_rewritten_file_follows_the_declared_policy() {
    // reingest: the changed file is a new input
    let ws = workspace();
    ws.write_pipeline(&iot_pipeline("    on_change: reingest", 400));
    ws.drop_file("a.ndjson", lines(0..100));
    ws.run_once();
    append(&ws, "a.ndjson", &lines(100..150));
    assert_eq!(ws.run_once()["tables"][0]["rows"], 150);

    // tail: a file that became smaller was rewritten; it is quarantined, unread
    let ws = workspace();
    ws.write_pipeline(&iot_pipeline("", 400));
    let path = ws.drop_file("a.ndjson", lines(0..100));
    ws.run_once();
    std::fs::write(&path, lines(500..510)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    let run = ws.run_once();
    assert_eq!((run["tables"][0]["rows"].as_u64(), run["tables"][0]["quarantined"].as_u64()), (Some(0), Some(1)));
    let q = read_delta(&ws.lake().join("_quarantine/iot_bronze"), &["source"], Some("reason"));
    assert_eq!(q.groups.get("file_error"), Some(&1), "{:?}", q.groups);

    // error: the table stops, naming the file and the way out
    let ws = workspace();
    ws.write_pipeline(&iot_pipeline("    on_change: error", 400));
    ws.drop_file("a.ndjson", lines(0..10));
    ws.run_once();
    append(&ws, "a.ndjson", &lines(10..20));
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once"]);
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("`a.ndjson` changed after it was ingested"), "{err}");

    // ignore: the change is left alone
    let ws = workspace();
    ws.write_pipeline(&iot_pipeline("    on_change: ignore", 400));
    ws.drop_file("a.ndjson", lines(0..10));
    ws.run_once();
    append(&ws, "a.ndjson", &lines(10..20));
    assert_eq!(ws.run_once()["tables"][0]["rows"], 0);
    assert_eq!(bronze(&ws).rows, 10);
}

#[test]
fn fields_the_columns_do_not_name_are_kept_in_rescued() {
    let ws = workspace();
    ws.write_pipeline(&iot_pipeline("    glob: \"*\"", 400));
    let with_firmware = |i: usize| reading(i).replacen('{', r#"{"firmware":"1.2","#, 1) + "\n";
    let ndjson = lines(0..3) + &with_firmware(3) + &lines(4..6);
    ws.drop_file("a.ndjson", ndjson);
    let header = "device_id,farm_id,ts,temperature,site\n";
    ws.drop_file(
        "b.csv",
        format!("{header}dev-9,farm-001,2026-11-01T00:00:00Z,20.5,north\ndev-8,farm-001,2026-11-01T00:00:01Z,20.5,\n"),
    );
    let run = ws.run_once();
    assert_eq!((run["tables"][0]["rows"].as_u64(), run["tables"][0]["quarantined"].as_u64()), (Some(8), Some(0)));
    let view = read_delta(&ws.lake().join("iot_bronze"), &["_source", "_position"], Some("_source,_rescued"));
    assert_eq!(view.groups.get(r#"a.ndjson|{"firmware":"1.2"}"#), Some(&1), "{:?}", view.groups);
    assert_eq!(view.groups.get("a.ndjson|None"), Some(&5), "{:?}", view.groups);
    assert_eq!(view.groups.get(r#"b.csv|{"site":"north"}"#), Some(&1), "{:?}", view.groups);
    assert_eq!(view.groups.get("b.csv|None"), Some(&1), "{:?}", view.groups);
}

#[test]
fn quarantined_records_replay_once_after_the_fix_even_through_a_crash() {
    let ws = workspace();
    // humidity is required at first: readings without it are quarantined
    let required = iot_pipeline("", 400)
        .replace("{name: humidity, type: double}", "{name: humidity, type: double, required: true}");
    ws.write_pipeline(&required);
    let without = |i: usize| reading(i).replace(r#""humidity":50.0,"#, "") + "\n";
    let file: String = (0..30).map(|i| if i % 3 == 0 { without(i) } else { reading(i) + "\n" }).collect();
    ws.drop_file("a.ndjson", file + "{broken\n");
    let first = ws.run_once();
    assert_eq!((first["tables"][0]["rows"].as_u64(), first["tables"][0]["quarantined"].as_u64()), (Some(20), Some(11)));
    let pipeline = ws.pipeline();
    let replay = |extra: &[&str]| {
        let mut args = vec!["replay", pipeline.to_str().unwrap(), "iot_bronze", "--json"];
        args.extend_from_slice(extra);
        ws.command(&args)
    };
    // before the fix nothing reads
    let out = replay(&["--reason", "missing_required"]).output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("counts");
    assert_eq!(
        (r["candidates"].as_u64(), r["replayed"].as_u64(), r["still_bad"].as_u64()),
        (Some(10), Some(0), Some(10))
    );
    // the fix; a replay killed after its table commit, then run again
    ws.write_pipeline(&iot_pipeline("", 400));
    let crashed = replay(&["--reason", "missing_required"])
        .env("INGESTA_FAILPOINT", "replay-after-table-commit")
        .output()
        .unwrap();
    assert!(!crashed.status.success(), "the fail point stops the replay");
    let out = replay(&["--reason", "missing_required"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (r["candidates"].as_u64(), r["replayed"].as_u64(), r["marked"].as_u64()),
        (Some(10), Some(0), Some(10)),
        "{r}"
    );
    let again: serde_json::Value = serde_json::from_slice(&replay(&[]).output().unwrap().stdout).unwrap();
    assert_eq!(
        (again["candidates"].as_u64(), again["still_bad"].as_u64()),
        (Some(1), Some(1)),
        "the broken line stays: {again}"
    );
    let view = bronze(&ws);
    assert_eq!((view.rows, view.distinct_keys), (30, 30), "every reading once");
    let sql = "SELECT count(*) AS n FROM iot_bronze__quarantine q JOIN iot_bronze__replayed r \
               ON q.source = r.source AND q.position = r.position AND q.batch_id = r.batch_id";
    let q = ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), sql, "--format", "csv"]);
    assert_eq!(text(&q.stdout).trim(), "n\n10", "{}", text(&q.stderr));

    // the same from the API (the dashboard's quarantine page): the admin token only
    let addr = format!("127.0.0.1:{}", ingesta_testkit::free_port());
    let mut server = ws
        .command(&["serve", pipeline.to_str().unwrap(), "--addr", &addr])
        .env("INGESTA_READ_TOKEN", "read-token-0123456789")
        .env("INGESTA_ADMIN_TOKEN", "admin-token-0123456789")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::blocking::Client::new();
    let url = format!("http://{addr}/api/tables/iot_bronze/replay?reason=parse_error");
    let up = ingesta_testkit::wait_until(Duration::from_secs(60), || {
        http.get(format!("http://{addr}/health")).send().is_ok()
    });
    let as_reader = http.post(&url).bearer_auth("read-token-0123456789").send().map(|r| r.status().as_u16());
    let as_admin: serde_json::Value =
        http.post(&url).bearer_auth("admin-token-0123456789").send().unwrap().json().unwrap_or_default();
    let _ = server.kill();
    let _ = server.wait();
    assert!(up, "ingesta serve answers");
    assert_eq!(as_reader.ok(), Some(403), "a read token cannot replay");
    assert_eq!((as_admin["candidates"].as_u64(), as_admin["still_bad"].as_u64()), (Some(1), Some(1)), "{as_admin}");
}
