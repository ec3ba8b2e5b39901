//! Silver and gold: gold equals an independent DuckDB computation from the raw
//! files after reruns, duplicated files, late data and SIGKILLs; each
//! expectation action; compaction; planning errors before anything runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ingesta_testkit::{Rng, Workspace, kill_after, python, read_delta, text};

use crate::{iot_pipeline, reading, workspace};

const FARM_IOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/farm-iot/ingesta.yaml");
const FARM_GOLD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/farm_gold.py");

/// DuckDB's gold from the landing files against the lake's; panics with the differences.
fn assert_gold(ws: &Workspace, checks: &[&str]) -> serde_json::Value {
    let out = Command::new(python())
        .arg(FARM_GOLD)
        .arg(ws.landing())
        .arg(ws.lake())
        .args(checks)
        .output()
        .expect("python runs");
    assert!(out.status.success(), "the DuckDB check failed: {}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["ok"], true, "gold differs from DuckDB: {report}");
    report
}

/// `ingesta ARGS` with the example's landing folder and lake set to the workspace's.
fn farm(ws: &Workspace, args: &[&str]) -> std::process::Output {
    ws.command(args).env("INGESTA_LANDING", ws.landing()).env("INGESTA_LAKE", ws.lake()).output().expect("ingesta runs")
}

fn run_farm(ws: &Workspace) -> serde_json::Value {
    let out = farm(ws, &["run", FARM_IOT, "--once", "--json"]);
    assert!(out.status.success(), "run failed: {}\n{}", text(&out.stderr), text(&out.stdout));
    serde_json::from_slice(&out.stdout).expect("summary")
}

/// A table's entry in `ingesta status --json`.
fn status_of(ws: &Workspace, name: &str) -> serde_json::Value {
    let out = ws.ingesta(&["status", ws.pipeline().to_str().unwrap(), "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["tables"].as_array().unwrap().iter().find(|t| t["name"] == name).expect("the table's status").clone()
}

/// `ingesta generate iot ARGS --out OUT`: the data files it wrote there, sorted.
fn generate_iot(ws: &Workspace, args: &[&str], out: &Path) -> Vec<PathBuf> {
    let res = ws.ingesta(&[&["generate", "iot"], args, &["--out", out.to_str().unwrap()]].concat());
    assert!(res.status.success(), "{}", text(&res.stderr));
    let mut files: Vec<PathBuf> = std::fs::read_dir(out).unwrap().flatten().map(|f| f.path()).collect();
    files.retain(|f| f.extension().is_some_and(|e| e == "ndjson"));
    files.sort();
    files
}

fn table<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["tables"].as_array().unwrap().iter().find(|t| t["table"] == name).unwrap_or_else(|| panic!("{name}"))
}

#[test]
fn gold_equals_duckdb_after_rerun_duplicated_files_and_late_data() {
    let ws = workspace();
    let out =
        ws.ingesta(&["generate", "farm", "--rows", "20000", "--files", "4", "--out", ws.landing().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = run_farm(&ws);
    assert!(table(&first, "readings")["rows"].as_u64().unwrap() > 19_000, "{first}");
    let before = assert_gold(&ws, &[]);

    let again = run_farm(&ws);
    for t in ["readings", "temperature_hourly", "sales_daily"] {
        assert_eq!(table(&again, t)["commits"], 0, "a rerun commits nothing to {t}: {again}");
    }

    // the same file landed again under a new name: bronze takes it, silver drops the duplicates
    let iot = ws.landing().join("iot");
    std::fs::copy(iot.join("readings-00000.ndjson"), iot.join("resent-readings-00000.ndjson")).unwrap();
    let dup = run_farm(&ws);
    assert!(table(&dup, "iot_bronze")["rows"].as_u64().unwrap() > 0);
    assert_eq!(table(&dup, "readings")["rows"], 0, "{dup}");
    let after_dup = assert_gold(&ws, &[]);
    assert_eq!(before["rows"], after_dup["rows"]);

    // late readings for hours already aggregated merge into their rows
    let out = farm(
        &ws,
        &["query", FARM_IOT, "SELECT farm_id, hour FROM temperature_hourly ORDER BY hour LIMIT 10", "--format", "csv"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hours: Vec<(String, String)> = text(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let (farm, hour) = l.split_once(',').unwrap();
            (farm.to_string(), hour[..13].to_string()) // 2026-11-01T00
        })
        .collect();
    assert_eq!(hours.len(), 10, "{}", text(&out.stdout));
    let late: String = (0..300)
        .map(|i| {
            let (farm, hour) = &hours[i % 10];
            format!(
                "{{\"device_id\":\"late-{i:03}\",\"farm_id\":\"{farm}\",\"ts\":\"{hour}:{:02}:00.000Z\",\"temperature\":{:.2},\"humidity\":40,\"soil_moisture\":0.2,\"battery\":50,\"status\":\"ok\"}}\n",
                i % 60,
                -5.0 + i as f64 * 0.1
            )
        })
        .collect();
    std::fs::write(iot.join("late.ndjson"), late).unwrap();
    let late_run = run_farm(&ws);
    assert_eq!(table(&late_run, "readings")["rows"], 300, "{late_run}");
    let after_late = assert_gold(&ws, &[]);
    let readings = |r: &serde_json::Value| r["rows"]["temperature_readings"].as_u64().unwrap();
    assert_eq!(readings(&after_late), readings(&after_dup) + 300);
    assert_eq!(after_late["rows"]["temperature_hourly"], before["rows"]["temperature_hourly"], "no new hours");

    // newer inventory snapshots update stock in place; gold follows inventory's change feed
    let late_stock = "snapshot_date,warehouse_id,product_id,quantity_on_hand,unit_cost\n\
                      2030-01-01,wh-00,p-0000,1000,1.00\n\
                      2030-01-01,wh-77,p-7777,5,1.00\n\
                      2000-01-01,wh-01,p-0000,99999,1.00\n";
    std::fs::write(ws.landing().join("inventory").join("late-inventory.csv"), late_stock).unwrap();
    let stock_run = run_farm(&ws);
    assert_eq!(table(&stock_run, "inventory_current")["rows"], 3, "{stock_run}");
    assert_eq!(table(&stock_run, "stock_by_warehouse")["commits"], 1, "{stock_run}");
    // (sales_daily's `stock_on_hand` is the stock when the sales came: it differs now)
    assert_gold(&ws, &["temperature", "stock"]);

    // status shows the expectation counts of the silver table
    let out = farm(&ws, &["status", FARM_IOT, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status");
    let readings = status["tables"].as_array().unwrap().iter().find(|t| t["name"] == "readings").unwrap();
    let passed = readings["expectations"]["known_status"]["passed"].as_u64().unwrap();
    assert!(passed > 19_000, "{readings}");
}

/// The example's readings → temperature_hourly with small batches: many
/// silver and gold commits for a kill to land between.
fn small_batch_pipeline() -> String {
    let mut yaml = iot_pipeline("", 700).replace("path: \"{landing}\"", "path: \"{landing}/iot\"");
    yaml.push_str(
        r#"
  readings:
    layer: silver
    input: iot_bronze
    transform:
      select: [device_id, farm_id, ts, {name: temperature_c, expr: temperature}, status,
               {name: ingested_at, expr: _ingested_at}]
      dedupe: {key: [device_id, ts], order_by: ingested_at}
    expect:
      - {name: temperature_plausible, check: "temperature_c BETWEEN -40 AND 70", action: quarantine}
      - {name: known_status, check: "status IN ('ok', 'warn', 'fail')", action: drop}
    write: {mode: insert_if_absent, key: [device_id, ts]}
    batch: {max_bytes: 1}
    compact_after: 8
  temperature_hourly:
    layer: gold
    input: readings
    transform:
      sql: |
        SELECT farm_id, date_bin(INTERVAL '1 hour', ts) AS hour, count(*) AS readings, sum(temperature_c) AS temp_sum,
               min(temperature_c) AS temp_min, max(temperature_c) AS temp_max
        FROM input GROUP BY farm_id, date_bin(INTERVAL '1 hour', ts)
    write:
      mode: aggregate
      key: [farm_id, hour]
      measures: {readings: sum, temp_sum: sum, temp_min: min, temp_max: max, temp_avg: "avg(temp_sum, readings)"}
    batch: {max_bytes: 1}
"#,
    );
    yaml
}

#[test]
fn sigkill_during_silver_and_gold_commits_changes_nothing() {
    let ws = workspace();
    let iot = ws.landing().join("iot");
    generate_iot(&ws, &["--rows", "8000", "--files", "4"], &iot);
    // bronze first, alone: the runs killed below spend their time in silver and gold
    ws.write_pipeline(&iot_pipeline("", 700).replace("path: \"{landing}\"", "path: \"{landing}/iot\""));
    ws.run_once();
    ws.write_pipeline(&small_batch_pipeline());
    let seed = Rng::clock_seed();
    let mut rng = Rng(seed);
    let log = ws.lake().join("readings").join("_delta_log");
    let log_files = || std::fs::read_dir(&log).map(|d| d.count()).unwrap_or(0);
    // how long a run goes on after its first silver commit: the last finished run's
    let mut span = Duration::from_millis(2000);
    let (mut killed, mut trials) = (0, 0);
    while killed < 10 {
        trials += 1;
        assert!(trials <= 40, "only {killed} of {trials} runs were killed mid-way (seed {seed})");
        let before = log_files();
        let mut child = ws.spawn_run();
        // past start-up: from this run's first silver commit on, a kill lands among silver's and gold's commits
        let committed = loop {
            if log_files() != before {
                break true;
            }
            if child.try_wait().unwrap().is_some() {
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let committing = std::time::Instant::now();
        let after = Duration::from_millis(rng.below(span.as_millis() as u64 + 1));
        let was_killed = kill_after(&mut child, after);
        killed += u64::from(was_killed);
        eprintln!(
            "trial {trials}: {} {after:?} after its first silver commit (seed {seed})",
            if was_killed { "killed" } else { "finished" }
        );
        if !was_killed {
            if committed {
                span = committing.elapsed().max(Duration::from_millis(50));
            }
            // everything was done: a late file gives the next runs work again
            let more = ws.landing().join("iot").join(format!("more-{trials}"));
            let s = (1000 + trials).to_string();
            for f in generate_iot(&ws, &["--seed", &s, "--rows", "1500", "--files", "2"], &more) {
                let name = f.file_name().unwrap().to_string_lossy().to_string();
                std::fs::rename(&f, iot.join(format!("more-{trials}-{name}"))).unwrap();
            }
            std::fs::remove_dir_all(&more).unwrap();
        }
    }
    ws.run_once();
    let silver = read_delta(&ws.lake().join("readings"), &["device_id", "ts"], None);
    assert_eq!(silver.rows, silver.distinct_keys, "silver keys are unique");
    assert_gold(&ws, &["temperature"]);
}

/// A running pipeline leaves each silver and gold commit's state update and
/// upkeep to the background and follows silver's log from gold (decision
/// 0017): files dropped one by one while it runs, with compactions between,
/// still give gold DuckDB's figures, each bronze version read once.
#[test]
fn a_watched_pipeline_reads_every_version_once_while_commits_settle_in_the_background() {
    let ws = workspace();
    let staged = ws.path().join("staged");
    let files = generate_iot(&ws, &["--rows", "6000", "--files", "6"], &staged);
    assert_eq!(files.len(), 6);
    let iot = ws.landing().join("iot");
    std::fs::create_dir_all(&iot).unwrap();
    ws.write_pipeline(&small_batch_pipeline().replace("    settle: 0ms\n", "    settle: 0ms\n    poll: 100ms\n"));
    let mut child = ingesta_testkit::spawn_watch(&ws);
    for f in &files {
        std::fs::rename(f, iot.join(f.file_name().unwrap())).unwrap();
        std::thread::sleep(Duration::from_millis(700));
    }
    // until gold has taken silver's rows (or a while: the run after the watch catches up)
    let query =
        |sql: &str| text(&ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), sql, "--format", "csv"]).stdout);
    let caught_up = || {
        query("SELECT (SELECT count(*) FROM readings) - (SELECT sum(readings) FROM temperature_hourly) AS behind")
            .lines()
            .nth(1)
            == Some("0")
    };
    ingesta_testkit::wait_until(Duration::from_secs(20), caught_up);
    ingesta_testkit::interrupt(&child);
    assert!(ingesta_testkit::wait_until(Duration::from_secs(60), || child.try_wait().unwrap().is_some()), "Ctrl-C");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    for name in ["readings", "temperature_hourly"] {
        assert!(
            table(&summary, name)["commits"].as_u64().unwrap() > 1,
            "{name} committed in several passes: {summary}"
        );
    }
    ws.run_once();
    let silver = read_delta(&ws.lake().join("readings"), &["device_id", "ts"], None);
    assert_eq!(silver.rows, silver.distinct_keys, "silver keys are unique");
    assert_gold(&ws, &["temperature"]);
}

#[test]
fn expectations_warn_drop_quarantine_and_fail() {
    let ws = workspace();
    let mut lines: Vec<String> = (0..20).map(reading).collect();
    lines[3] = lines[3].replace("21.5", "999.0"); // implausible: quarantined
    lines[4] = lines[4].replace("\"ok\"", "\"broken\""); // unknown status: dropped
    lines[5] = lines[5].replace("\"battery\":80", "\"battery\":null"); // warned, kept
    ws.drop_file("a.ndjson", lines.join("\n"));
    let mut yaml = iot_pipeline("", 1000);
    yaml.push_str(
        r#"
  checked:
    layer: silver
    input: iot_bronze
    expect:
      - {name: plausible, check: "temperature BETWEEN -40 AND 70", action: quarantine}
      - {name: known_status, check: "status IN ('ok', 'warn', 'fail')", action: drop}
      - {name: has_battery, check: "battery IS NOT NULL", action: warn}
  strict:
    layer: silver
    input: iot_bronze
    expect:
      - {name: no_hot_sensors, check: "temperature < 100", action: fail}
"#,
    );
    ws.write_pipeline(&yaml);
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once", "--json"]);
    assert_eq!(out.status.code(), Some(1), "a failed rule fails the run: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("`strict`") && stderr.contains("no_hot_sensors") && stderr.contains("1 row"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
    assert_eq!(table(&summary, "checked")["rows"], 18, "{summary}");
    assert_eq!(table(&summary, "checked")["quarantined"], 1);
    let strict = ws.lake().join("strict");
    assert!(!strict.exists() || read_delta(&strict, &[], None).rows == 0, "the failing table wrote nothing");

    let checked = read_delta(&ws.lake().join("checked"), &[], None);
    assert_eq!(checked.rows, 18);
    let q = read_delta(&ws.lake().join("_quarantine/checked"), &[], Some("reason,error"));
    assert_eq!(
        q.groups.keys().collect::<Vec<_>>(),
        vec!["expectation|expectation `plausible` failed: temperature BETWEEN -40 AND 70"]
    );
    let checked = status_of(&ws, "checked");
    let e = &checked["expectations"];
    assert_eq!((e["plausible"]["passed"].as_u64(), e["plausible"]["failed"].as_u64()), (Some(19), Some(1)));
    assert_eq!(e["known_status"]["failed"], 1);
    assert_eq!((e["has_battery"]["failed"].as_u64(), e["has_battery"]["action"].as_str()), (Some(1), Some("warn")));
    let text_status = text(&ws.ingesta(&["status", ws.pipeline().to_str().unwrap()]).stdout);
    assert!(text_status.contains("expect plausible (quarantine): 19 passed, 1 failed"), "{text_status}");
}

/// The iot pipeline (bronze committing every `batch_rows`) with `picked`, a
/// silver table that only selects (so it may copy bronze's files), plus `settings`.
fn picked_pipeline(batch_rows: usize, settings: &str) -> String {
    let picked = r#"
  picked:
    layer: silver
    input: iot_bronze
    transform:
      select: [device_id, ts, temperature, event_date]
"#;
    format!("{}{picked}{settings}", iot_pipeline("", batch_rows))
}

/// Readings `range` dated the day after `reading`'s, one per line.
fn next_day(range: std::ops::Range<usize>) -> String {
    range.map(|i| reading(i).replace("2026-11-01", "2026-11-02")).collect::<Vec<_>>().join("\n")
}

#[test]
fn a_silver_table_that_only_selects_copies_clean_files_and_reads_the_others() {
    let ws = workspace();
    // a small target file size: these small files count as large enough to copy
    let settings = r#"    expect:
      - {name: plausible, check: "temperature BETWEEN -40 AND 70", action: quarantine}
    target_file_size: 1KiB
"#;
    ws.write_pipeline(&picked_pipeline(1000, settings));
    // one range, two bronze files (one per day): the one with an implausible
    // row is read and the row quarantined, the clean one copied
    let mut lines: Vec<String> = (0..20).map(reading).collect();
    lines[3] = lines[3].replace("21.5", "999.0");
    ws.drop_file("a.ndjson", lines.join("\n"));
    ws.drop_file("b.ndjson", next_day(20..50));
    let summary = ws.run_once();
    let (rows, quarantined) = (&table(&summary, "picked")["rows"], &table(&summary, "picked")["quarantined"]);
    assert_eq!((rows.as_u64(), quarantined.as_u64()), (Some(49), Some(1)), "{summary}");

    let picked = read_delta(&ws.lake().join("picked"), &["device_id"], Some("event_date,temperature"));
    assert_eq!((picked.rows, picked.distinct_keys), (49, 49));
    assert_eq!(picked.columns, ["device_id", "ts", "temperature", "event_date"]);
    let days = [("2026-11-01|21.5".to_string(), 19), ("2026-11-02|21.5".to_string(), 30)];
    assert_eq!(picked.groups, days.into());
    assert_eq!(read_delta(&ws.lake().join("_quarantine/picked"), &[], None).rows, 1);
    let commit = std::fs::read_to_string(ws.lake().join("picked/_delta_log/00000000000000000001.json")).unwrap();
    assert!(commit.contains(r#""ingesta.copied_files":"1""#), "one of the two files copied: {commit}");
    let t = status_of(&ws, "picked");
    let e = &t["expectations"]["plausible"];
    assert_eq!((e["passed"].as_u64(), e["failed"].as_u64(), t["rows"].as_u64()), (Some(49), Some(1), Some(49)));
}

#[test]
fn a_small_file_alone_in_its_partition_is_copied_and_small_files_sharing_one_are_gathered() {
    let ws = workspace();
    ws.write_pipeline(&picked_pipeline(20, ""));
    let commit = |v: u32| {
        let log = ws.lake().join(format!("picked/_delta_log/{v:020}.json"));
        let text = std::fs::read_to_string(log).unwrap();
        (text.matches(r#"{"add":"#).count(), text.contains(r#""ingesta.copied_files":"1""#))
    };
    // bronze commits every 20 rows: day 1's 30 rows make two small files,
    // which silver reads into one
    let day1: Vec<String> = (0..30).map(reading).collect();
    ws.drop_file("a.ndjson", day1.join("\n"));
    ws.run_once();
    assert_eq!(commit(1), (1, false), "two small files of one partition: read and gathered");
    // day 2's 15 rows: one small file, alone in its partition, copied
    ws.drop_file("b.ndjson", next_day(30..45));
    ws.run_once();
    assert_eq!(commit(2), (1, true), "one small file alone in its partition: copied");

    let picked = read_delta(&ws.lake().join("picked"), &["device_id"], Some("event_date"));
    assert_eq!((picked.rows, picked.distinct_keys), (45, 45));
    assert_eq!(picked.groups, [("2026-11-01".to_string(), 30), ("2026-11-02".to_string(), 15)].into());
}

#[test]
fn validate_points_at_bad_sql_and_unknown_columns() {
    let ws = workspace();
    let mut yaml = iot_pipeline("", 100);
    yaml.push_str(
        r#"
  hourly:
    layer: gold
    input: iot_bronze
    transform:
      sql: SELECT farm_id, count(*) AS n FROM input WHERE temprature > 0 GROUP BY farm_id
    write: {mode: aggregate, key: [farm_id], measures: {n: sum}}
  typed:
    layer: silver
    input: iot_bronze
    transform:
      select: [device_id, {name: t, expr: "temperature * 2"}]
    expect:
      - {name: ok, check: "status = 'ok'", action: drop}
    write: {mode: insert_if_absent, key: [device]}
"#,
    );
    ws.write_pipeline(&yaml);
    let out = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let file = ws.pipeline().display().to_string();
    let line_of = |needle: &str| yaml.lines().position(|l| l.contains(needle)).unwrap() + 1;
    for (needle, key, column) in [
        ("sql: SELECT", "tables.hourly.transform.sql", "temprature"),
        ("check: \"status", "tables.typed.expect[0].check", "status"),
        ("key: [device]", "tables.typed.write.key[0]", "device"),
    ] {
        let at = format!("{file}:{}:", line_of(needle));
        assert!(
            err.lines().any(|l| l.starts_with(&at) && l.contains(key) && l.contains(column)),
            "expected {at} {key} … {column} in:\n{err}"
        );
    }
    // nothing ran
    assert!(!Path::new(&ws.lake()).join("iot_bronze").exists());
}

#[test]
fn new_columns_are_added_and_values_the_stored_type_cannot_hold_are_quarantined() {
    let ws = workspace();
    ws.drop_file("a.ndjson", (0..10).map(reading).collect::<Vec<_>>().join("\n"));
    let base = iot_pipeline("", 1000);
    ws.write_pipeline(&format!(
        "{base}\n  typed:\n    layer: silver\n    input: iot_bronze\n    transform:\n      select: [device_id, ts, temperature]\n"
    ));
    ws.run_once();
    // the transform changes: a new column, and temperature now sometimes text
    ws.write_pipeline(&format!(
        r#"{base}
  typed:
    layer: silver
    input: iot_bronze
    transform:
      select:
        - device_id
        - ts
        - {{name: temperature, expr: "CASE WHEN temperature > 30 THEN 'too hot' ELSE CAST(temperature AS VARCHAR) END"}}
        - {{name: hot, expr: "temperature > 25"}}
"#
    ));
    let b: Vec<String> = (10..20)
        .map(|i| if i < 13 { reading(i).replace("21.5", "35.0") } else { reading(i).replace("21.5", "26.0") })
        .collect();
    ws.drop_file("b.ndjson", b.join("\n"));
    let summary = ws.run_once();
    assert_eq!(table(&summary, "typed")["rows"], 7, "{summary}");
    assert_eq!(table(&summary, "typed")["quarantined"], 3, "{summary}");
    let typed = read_delta(&ws.lake().join("typed"), &[], Some("hot"));
    assert!(typed.columns.contains(&"hot".to_string()), "{:?}", typed.columns);
    assert_eq!(typed.rows, 17);
    assert_eq!(typed.groups.get("None"), Some(&10), "old rows read null in the new column: {:?}", typed.groups);
    assert_eq!(typed.groups.get("True"), Some(&7));
    let q = read_delta(&ws.lake().join("_quarantine/typed"), &[], Some("reason"));
    assert_eq!(q.groups.get("type_error"), Some(&3), "{:?}", q.groups);
}
