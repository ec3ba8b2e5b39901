//! A landing table's settled watermark (decision 0035): a poll passes over
//! the files that appeared before it without looking them up, and still takes
//! every file that arrives — written in place, moved in with an old
//! modification time, inside a folder moved in — and every append, once.

use std::io::Write;
use std::time::{Duration, SystemTime};

use ingesta_testkit::{Workspace, read_delta};

use crate::{iot_pipeline, reading, workspace};

fn lines(r: std::ops::Range<usize>) -> String {
    r.map(|i| reading(i) + "\n").collect()
}

fn rows(ws: &Workspace) -> u64 {
    ws.run_once()["tables"][0]["rows"].as_u64().unwrap()
}

fn watermark(ws: &Workspace) -> i64 {
    let note = std::fs::read_to_string(ws.lake().join("iot_bronze/_ingesta_landing")).expect("a watermark");
    serde_json::from_str::<serde_json::Value>(&note).unwrap()["settled_ms"].as_i64().unwrap()
}

/// Writes a file outside the landing folder, its modification time an hour back.
fn staged(ws: &Workspace, rel: &str, body: String) -> std::path::PathBuf {
    let path = ws.path().join("staging").join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, body).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
    path
}

#[test]
fn the_watermark_passes_over_taken_files_and_misses_no_new_one() {
    let ws = workspace();
    ws.write_pipeline(&iot_pipeline("    clock_skew: 0ms", 1000));
    ws.drop_file("2026/11/01/a.ndjson", lines(0..100));
    ws.drop_file("b.ndjson", lines(100..150));
    assert_eq!(rows(&ws), 150);
    let first = watermark(&ws);
    // files staged now are older than the next poll's watermark once a second has passed
    let moved_file = staged(&ws, "c.ndjson", lines(150..170));
    staged(&ws, "batch/d/e.ndjson", lines(170..200));
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(rows(&ws), 0);
    let second = watermark(&ws);
    assert!(second > first, "a quiet poll moves the watermark on: {first} then {second}");

    // a file moved in keeps its old modification time; a moved folder keeps its files' own times
    std::fs::rename(&moved_file, ws.landing().join("c.ndjson")).unwrap();
    std::fs::rename(ws.path().join("staging/batch"), ws.landing().join("batch")).unwrap();
    assert_eq!(rows(&ws), 50, "both are taken");
    // an old file appended to: its appended lines only (on_change: tail)
    std::thread::sleep(Duration::from_millis(1100));
    let mut f = std::fs::OpenOptions::new().append(true).open(ws.landing().join("2026/11/01/a.ndjson")).unwrap();
    f.write_all(lines(200..210).as_bytes()).unwrap();
    drop(f);
    assert_eq!(rows(&ws), 10);
    assert_eq!(rows(&ws), 0);

    let view = read_delta(&ws.lake().join("iot_bronze"), &["_source", "_position"], Some("device_id"));
    assert_eq!((view.rows, view.distinct_keys, view.groups.len()), (210, 210, 210), "every reading once");

    // a watermark that is lost or not this table's: every file is looked up again, nothing read twice
    std::fs::write(
        ws.lake().join("iot_bronze/_ingesta_landing"),
        "{\"table_id\":\"other\",\"source\":\"iot\",\"settled_ms\":1}",
    )
    .unwrap();
    assert_eq!(rows(&ws), 0);
    std::fs::remove_file(ws.lake().join("iot_bronze/_ingesta_landing")).unwrap();
    assert_eq!(rows(&ws), 0);
}
