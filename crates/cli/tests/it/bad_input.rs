//! Bad input: each case gets a clear message, nothing is lost and the other
//! files are still ingested.

use std::io::Write;
use std::time::Duration;

use ingesta_testkit::read_delta;

use crate::{iot_pipeline, reading, workspace};

fn lines(range: std::ops::Range<usize>) -> String {
    range.map(|i| reading(i) + "\n").collect()
}

#[test]
fn every_kind_of_bad_file_is_quarantined_or_reported_and_the_rest_is_ingested() {
    let ws = workspace();
    ws.drop_file("good.ndjson", lines(0..3));
    // a CSV file where NDJSON is expected: every line is quarantined
    ws.drop_file("wrong_format.ndjson", "device_id,farm_id,ts\ndev-1,farm-1,2026-11-01T00:00:00Z\n");
    // a gzip file cut in the middle: what decodes is kept, the rest is a file error
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(lines(0..2000).as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    ws.drop_file("corrupt.ndjson.gz", &gz[..gz.len() / 2]);
    ws.drop_file("empty.ndjson", "");
    ws.drop_file("header_only.csv", "device_id,farm_id,ts,temperature,humidity,soil_moisture,battery,status\n");
    // one line longer than max_record_bytes (4KiB here)
    let long = format!(r#"{{"device_id":"{}"}}"#, "x".repeat(10_000));
    ws.drop_file("long.ndjson", format!("{}\n{long}\n{}\n", reading(1), reading(2)));
    // invalid UTF-8 on one line
    let mut bad = reading(3).into_bytes();
    bad.extend_from_slice(b"\n{\"device_id\":\"\xff\xfe\"}\n");
    bad.extend_from_slice(reading(4).as_bytes());
    ws.drop_file("bad_utf8.ndjson", bad);
    // a file whose format cannot be told from its name
    ws.drop_file("notes.txt.bak", "hello");
    // an unreadable entry: a link to a file that does not exist
    std::os::unix::fs::symlink(ws.path().join("nowhere.ndjson"), ws.landing().join("link.ndjson")).unwrap();

    ws.write_pipeline(&iot_pipeline("    max_record_bytes: 4KiB\n    glob: \"*\"", 100_000));
    let summary = ws.run_once();
    let t = &summary["tables"][0];
    let failed = t["failed"].to_string();
    assert!(failed.contains("link.ndjson") && failed.contains("missing file"), "{failed}");

    let q = read_delta(&ws.lake().join("_quarantine/iot_bronze"), &["source", "position"], Some("source,reason"));
    let g = |k: &str| q.groups.get(k).copied().unwrap_or(0);
    assert_eq!(g("wrong_format.ndjson|parse_error"), 2, "{:?}", q.groups);
    assert_eq!(g("corrupt.ndjson.gz|file_error"), 1, "{:?}", q.groups);
    assert_eq!(g("long.ndjson|record_too_large"), 1, "{:?}", q.groups);
    assert_eq!(g("bad_utf8.ndjson|parse_error"), 1, "{:?}", q.groups);
    assert_eq!(g("notes.txt.bak|file_error"), 1, "{:?}", q.groups);
    assert_eq!(q.rows, 6, "nothing else is quarantined: {:?}", q.groups);

    let b = read_delta(&ws.lake().join("iot_bronze"), &["_source", "_position"], Some("_source"));
    assert_eq!(b.groups.get("good.ndjson"), Some(&3));
    assert_eq!(b.groups.get("long.ndjson"), Some(&2));
    assert_eq!(b.groups.get("bad_utf8.ndjson"), Some(&2));
    let from_gz = b.groups.get("corrupt.ndjson.gz").copied().unwrap_or(0);
    assert!(from_gz > 0 && from_gz < 2000, "the readable part of the cut gzip is kept: {from_gz}");
    assert_eq!(b.distinct_keys, b.rows);

    // nothing is read twice; the unreadable link is reported again
    let again = ws.run_once();
    assert_eq!(again["tables"][0]["rows"], 0);
    assert_eq!(again["tables"][0]["quarantined"], 0);
    assert!(again["tables"][0]["failed"].to_string().contains("link.ndjson"));
}

#[test]
fn a_file_still_being_written_waits_for_a_later_run() {
    let ws = workspace();
    ws.drop_file("done.ndjson", lines(0..5));
    let slow = ws.landing().join("slow.ndjson");
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::File::create(&slow).unwrap();
        for i in 0..40 {
            f.write_all((reading(i) + "\n").as_bytes()).unwrap();
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    ws.write_pipeline(&iot_pipeline("    settle: 500ms", 100_000).replace("    settle: 0ms\n", ""));
    let first = ws.run_once();
    assert_eq!(first["tables"][0]["rows"], 5, "{first}");
    assert!(first["tables"][0]["unsettled"].to_string().contains("slow.ndjson"), "{first}");
    writer.join().unwrap();
    let second = ws.run_once();
    assert_eq!(second["tables"][0]["rows"], 40, "{second}");
}

#[test]
fn a_missing_landing_folder_stops_only_its_table() {
    let ws = workspace();
    ws.drop_file("good.ndjson", lines(0..4));
    let yaml = iot_pipeline("", 1000) + "  other_bronze:\n    layer: bronze\n    input: other\n" + "";
    let yaml =
        yaml.replace("sources:\n", "sources:\n  other:\n    type: landing\n    path: \"{landing}/../not-there\"\n");
    ws.write_pipeline(&yaml);
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once", "--json"]);
    assert_eq!(out.status.code(), Some(1), "a failed table fails the run");
    let err = ingesta_testkit::text(&out.stderr);
    assert!(err.contains("landing folder") && err.contains("not-there") && err.contains("does not exist"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let iot = summary["tables"].as_array().unwrap().iter().find(|t| t["table"] == "iot_bronze").unwrap();
    assert_eq!(iot["rows"], 4, "the other table still ran: {summary}");
}
