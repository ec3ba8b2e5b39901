//! Silver and gold tables kept in PostgreSQL (`store: warehouse`), on a
//! real server: exact after SIGKILLs at random moments, a wrong password
//! said without printing it, an existing table that does not fit refused.

use std::time::Duration;

use ingesta_testkit::{Postgres, Rng, Workspace, kill_after, manifest, text};

use crate::{iot_pipeline, workspace};

/// The IoT bronze table in the lake, a silver copy and per-farm counters in the warehouse.
fn pipeline(url: &str) -> String {
    format!(
        r#"{bronze}
  iot_silver:
    layer: silver
    input: iot_bronze
    store: warehouse
    schema: silver
    transform:
      select: [device_id, farm_id, ts, temperature, battery, _source, _position]
    write: {{mode: insert_if_absent, key: [_source, _position]}}
  farm_counts:
    layer: gold
    input: iot_bronze
    store: warehouse
    transform:
      sql: |
        SELECT farm_id, count(*) AS readings, max(temperature) AS max_temperature, max(ts) AS last_ts
        FROM input GROUP BY farm_id
    write:
      mode: aggregate
      key: [farm_id]
      measures: {{readings: sum, max_temperature: max, last_ts: max}}
warehouse:
  url: "{url}"
  pool: 4
"#,
        bronze = iot_pipeline("", 1500)
    )
}

/// [`pipeline`] and two tables reading the warehouse's silver table by its
/// appends: counters in the warehouse and a copy in the lake.
fn chained(url: &str) -> String {
    let more = r#"  farm_totals:
    layer: gold
    input: iot_silver
    store: warehouse
    schema: gold
    transform:
      sql: SELECT farm_id, count(*) AS readings FROM input GROUP BY farm_id
    write: {mode: aggregate, key: [farm_id], measures: {readings: sum}}
  silver_copy:
    layer: gold
    input: iot_silver
    transform:
      select: [device_id, _source, _position]
    write: {mode: insert_if_absent, key: [_source, _position]}
warehouse:
"#;
    pipeline(url).replace("warehouse:\n", more)
}

/// Generates IoT files into `landing/<sub>`; returns the valid rows.
fn generate(ws: &Workspace, sub: &str, seed: u64, rows: u64, files: u32) -> u64 {
    let out = ws.landing().join(sub);
    let (seed, rows, files) = (seed.to_string(), rows.to_string(), files.to_string());
    let args = ["generate", "iot", "--seed", &seed, "--rows", &rows, "--files", &files, "--malformed-rate", "0.01"];
    let res = ws.ingesta(&[&args[..], &["--out", out.to_str().unwrap()]].concat());
    assert!(res.status.success(), "{}", text(&res.stderr));
    manifest(&out)["valid_rows"].as_u64().unwrap()
}

fn count(pg: &Postgres, db: &str, sql: &str) -> u64 {
    pg.psql(db, sql).trim().parse().unwrap_or_else(|e| panic!("`{sql}`: {e}"))
}

#[test]
fn warehouse_tables_are_exact_after_sigkill_at_random_moments() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let ws = workspace();
    ws.write_pipeline(&chained(&pg.url(&db)));
    let mut valid = generate(&ws, "first", 1, 30_000, 12);
    let seed = Rng::clock_seed();
    let mut rng = Rng(seed);
    let (mut killed, mut trials) = (0, 0);
    while killed < 20 {
        trials += 1;
        assert!(trials <= 50, "only {killed} of {trials} runs were killed mid-way (seed {seed})");
        valid += generate(&ws, &format!("more-{trials}"), 100 + trials, 3_000, 2);
        let mut child = ws.spawn_run();
        let after = Duration::from_millis(50 + rng.below(700));
        let was_killed = kill_after(&mut child, after);
        killed += usize::from(was_killed);
        eprintln!("trial {trials}: {} after {after:?} (seed {seed})", if was_killed { "killed" } else { "finished" });
    }
    let last = ws.run_once();
    let rows = count(&pg, &db, "SELECT count(*) FROM silver.iot_silver");
    let distinct = count(&pg, &db, "SELECT count(DISTINCT (_source, _position)) FROM silver.iot_silver");
    assert_eq!(distinct, rows, "a row was written twice (seed {seed})");
    assert_eq!(rows, valid, "silver rows (seed {seed}); last run: {last}");
    let counted = count(&pg, &db, "SELECT sum(readings) FROM public.farm_counts");
    assert_eq!(counted, valid, "the counters saw every row once (seed {seed})");
    // read from the warehouse table by its appends, into either store
    let chained = count(&pg, &db, "SELECT sum(readings) FROM gold.farm_totals");
    assert_eq!(chained, valid, "counters over the warehouse's silver table (seed {seed})");
    let copy = ingesta_testkit::read_delta(&ws.lake().join("silver_copy"), &["_source", "_position"], None);
    assert_eq!((copy.rows, copy.distinct_keys), (valid, valid), "the lake's copy of it (seed {seed})");
    let again = ws.run_once();
    for t in again["tables"].as_array().unwrap() {
        assert_eq!(t["rows"], 0, "a run after recovery writes nothing: {again}");
    }
    // status and query see warehouse tables; one statement joins them with lake tables
    let out = ws.ingesta(&["status", ws.pipeline().to_str().unwrap(), "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let silver = status["tables"].as_array().unwrap().iter().find(|t| t["name"] == "iot_silver").expect("silver");
    assert_eq!(silver["rows"], valid, "{silver}");
    let location = silver["location"].as_str().unwrap();
    assert!(location.ends_with("silver.iot_silver") && !location.contains(ingesta_testkit::postgres::PASSWORD));
    let sql = "SELECT (SELECT sum(readings) FROM farm_counts) - (SELECT count(*) FROM iot_bronze) AS diff";
    let out = ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), sql, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("\"diff\":0"), "{}", text(&out.stdout));
    // the positions live beside the rows, in the same transaction's tables
    let inputs = count(&pg, &db, "SELECT count(*) FROM ingesta.positions WHERE table_name = 'silver.iot_silver'");
    assert_eq!(inputs, 1, "one input position for the silver table");
}

#[test]
fn a_wrong_password_stops_the_table_without_printing_it() {
    let pg = Postgres::start();
    let ws = workspace();
    let url = format!("postgresql://ingesta:Wr0ng-Secret-77@127.0.0.1:{}/postgres", pg.port);
    ws.write_pipeline(&pipeline("${INGESTA_WAREHOUSE}"));
    generate(&ws, "a", 1, 200, 1);
    let out = ws
        .command(&["run", ws.pipeline().to_str().unwrap(), "--once"])
        .env("INGESTA_WAREHOUSE", &url)
        .output()
        .expect("ingesta runs");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("password authentication failed"), "{stderr}");
    assert!(stderr.contains(&format!("ingesta@127.0.0.1:{}/postgres", pg.port)), "{stderr}");
    assert!(!stdout.contains("Wr0ng-Secret-77") && !stderr.contains("Wr0ng-Secret-77"), "{stdout}{stderr}");
}

#[test]
fn an_existing_table_that_does_not_fit_is_refused_naming_both() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    pg.psql(&db, "CREATE TABLE farm_counts (farm_id bigint, readings bigint)");
    let ws = workspace();
    ws.write_pipeline(&pipeline(&pg.url(&db)));
    generate(&ws, "a", 1, 200, 1);
    // validate asks the warehouse and points at the table's `store:` line
    let out = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let yaml = std::fs::read_to_string(ws.pipeline()).unwrap();
    let table = yaml.lines().position(|l| l.trim() == "farm_counts:").unwrap();
    let line = table + yaml.lines().skip(table).position(|l| l.contains("store: warehouse")).unwrap() + 1;
    assert!(stderr.contains(&format!("{}:{line}:", ws.pipeline().display())), "{stderr}");
    // and run refuses before reading anything
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("public.farm_counts"), "{stderr}");
    assert!(stderr.contains("column `farm_id` is `bigint` but the pipeline writes Utf8"), "{stderr}");
    assert!(!ws.lake().exists(), "nothing was read");
}

#[test]
fn a_postgresql_outage_is_waited_out_shown_in_health_and_ends_exact() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let ws = workspace();
    let port = ingesta_testkit::free_port();
    let serve = format!("serve:\n  listen: 127.0.0.1:{port}\n");
    let watched = pipeline(&pg.url(&db)).replace("    settle: 0ms\n", "    settle: 0ms\n    poll: 200ms\n");
    ws.write_pipeline(&(watched + &serve));
    let mut valid = generate(&ws, "a", 1, 2_000, 1);
    let mut child = ingesta_testkit::spawn_watch(&ws);
    let silver = |pg: &Postgres| {
        let n = pg.try_psql(&db, "SELECT count(*) FROM silver.iot_silver");
        n.ok().and_then(|n| n.trim().parse::<u64>().ok()).unwrap_or(0)
    };
    let first = valid;
    assert!(ingesta_testkit::wait_until(Duration::from_secs(60), || silver(&pg) == first), "the first file lands");

    pg.stop_immediate();
    valid += generate(&ws, "b", 2, 3_000, 1);
    let health = || -> serde_json::Value {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/ready")).unwrap().json().unwrap()
    };
    let shown = ingesta_testkit::wait_until(Duration::from_secs(60), || {
        let h = health();
        h["tables"].as_array().unwrap().iter().any(|t| t["table"] == "iot_silver" && t["state"] == "retrying")
    });
    let during = health();
    assert!(shown, "health shows the outage: {during}");
    assert_eq!(during["status"], "degraded", "{during}");
    std::thread::sleep(Duration::from_secs(2));
    assert!(child.try_wait().unwrap().is_none(), "the pipeline waits for the warehouse");

    pg.start_again();
    let caught_up = ingesta_testkit::wait_until(Duration::from_secs(90), || silver(&pg) == valid);
    let back = ingesta_testkit::wait_until(Duration::from_secs(30), || health()["status"] == "ok");
    ingesta_testkit::interrupt(&child);
    assert!(ingesta_testkit::wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some()));
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(caught_up, "every row landed once the warehouse was back: {} of {valid}; {stderr}", silver(&pg));
    assert!(back, "health is ok again: {}", health());
    assert_eq!(count(&pg, &db, "SELECT sum(readings) FROM public.farm_counts"), valid, "counters exact");
    let distinct = count(&pg, &db, "SELECT count(DISTINCT (_source, _position)) FROM silver.iot_silver");
    assert_eq!(distinct, valid, "no row twice");
    assert!(out.status.success(), "{stderr}");
}

#[test]
fn values_the_table_does_not_take_are_quarantined_and_the_rest_lands() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    pg.psql(
        &db,
        "CREATE SCHEMA silver; CREATE TABLE silver.iot_silver (device_id text, temperature numeric(3,1), \
         battery smallint NOT NULL, _source text, _position bigint, UNIQUE (_source, _position))",
    );
    let ws = workspace();
    let yaml = format!(
        r#"{bronze}
  iot_silver:
    layer: silver
    input: iot_bronze
    store: warehouse
    schema: silver
    transform:
      sql: |
        SELECT device_id, CAST(temperature AS DECIMAL(10, 2)) AS temperature,
               CASE WHEN battery < 20 THEN NULL ELSE battery END AS battery, _source, _position
        FROM input
    write: {{mode: insert_if_absent, key: [_source, _position]}}
warehouse:
  url: "{url}"
"#,
        bronze = iot_pipeline("", 1500),
        url = pg.url(&db)
    );
    ws.write_pipeline(&yaml);
    let valid = generate(&ws, "a", 3, 2_000, 2);
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let landed = count(&pg, &db, "SELECT count(*) FROM silver.iot_silver");
    let status = ws.ingesta(&["status", ws.pipeline().to_str().unwrap(), "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let silver = status["tables"].as_array().unwrap().iter().find(|t| t["name"] == "iot_silver").unwrap();
    let quarantined = silver["quarantined_rows"].as_u64().unwrap();
    assert_eq!(landed + quarantined, valid, "every bronze row landed or is quarantined: {silver}");
    let reasons = |r: &str| {
        let q = ws.ingesta(&[
            "query",
            ws.pipeline().to_str().unwrap(),
            &format!("SELECT count(*) AS n FROM iot_silver__quarantine WHERE reason = '{r}'"),
            "--format",
            "csv",
        ]);
        text(&q.stdout).lines().nth(1).unwrap_or("0").trim().parse::<u64>().unwrap()
    };
    let (too_large, null) = (reasons("type_error"), reasons("missing_required"));
    assert!(
        too_large > 0 && null > 0,
        "999.9 does not fit numeric(3,1); a null battery is refused: {too_large} {null}"
    );
    assert_eq!(too_large + null, quarantined);
    assert_eq!(count(&pg, &db, "SELECT count(*) FROM silver.iot_silver WHERE battery IS NULL"), 0);
}

#[test]
fn a_time_partitioned_table_gets_a_partition_per_day_and_drops_those_past_retention() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let ws = workspace();
    // keep the partitions from 2026-11-04 on, whatever today is
    let today = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 86_400;
    let keep_days = today - 20_761; // 2026-11-04, in days since 1970-01-01
    let yaml = format!(
        r#"{bronze}
  readings_by_day:
    layer: silver
    input: iot_bronze
    store: warehouse
    transform:
      select: [device_id, ts, temperature, _source, _position]
    write: {{mode: insert_if_absent, key: [_source, _position, ts]}}
    partition_by:
      - {{column: ts, transform: day, retention: {keep_days}d}}
warehouse:
  url: "{url}"
"#,
        bronze = iot_pipeline("", 1500),
        url = pg.url(&db)
    );
    ws.write_pipeline(&yaml);
    generate(&ws, "a", 5, 3_000, 2);
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let parts = pg.psql(
        &db,
        "SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'public.readings_by_day'::regclass",
    );
    let parts: Vec<&str> = parts.trim().split(',').collect();
    assert!(parts.contains(&"readings_by_day_p20261104") && parts.contains(&"readings_by_day_p20261107"), "{parts:?}");
    assert!(!parts.iter().any(|p| *p < "readings_by_day_p20261104"), "older days are dropped: {parts:?}");
    let kept = count(&pg, &db, "SELECT count(*) FROM readings_by_day");
    let lake_since = ws.ingesta(&[
        "query",
        ws.pipeline().to_str().unwrap(),
        "SELECT count(*) AS n FROM iot_bronze WHERE ts >= TIMESTAMP '2026-11-04T00:00:00Z'",
        "--format",
        "csv",
    ]);
    let expected: u64 = text(&lake_since.stdout).lines().nth(1).unwrap().trim().parse().unwrap();
    assert_eq!(kept, expected, "the rows of the kept days, all in partitions");
    assert_eq!(count(&pg, &db, "SELECT count(*) FROM ONLY readings_by_day"), 0);
    // status says how the warehouse partitions it
    let out = ws.ingesta(&["status", ws.pipeline().to_str().unwrap(), "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    let t = status["tables"].as_array().unwrap().iter().find(|t| t["name"] == "readings_by_day").expect("the table");
    assert_eq!(t["partitioning"], "range", "{t}");
    // a key without the partition column is refused at its line
    ws.write_pipeline(&yaml.replace("key: [_source, _position, ts]", "key: [_source, _position]"));
    let out = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert!(text(&out.stderr).contains("the key must hold the partition column `ts`"), "{}", text(&out.stderr));
}

#[test]
fn a_lake_table_reads_a_warehouse_table_whole_as_its_lookup() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let ws = workspace();
    let lookup = r#"  farm_seen:
    layer: gold
    input: iot_bronze
    transform:
      sql: |
        SELECT i.farm_id, count(*) AS readings, max(c.readings) AS counted
        FROM input i JOIN farm_counts c ON i.farm_id = c.farm_id GROUP BY i.farm_id
      lookups: [farm_counts]
warehouse:
"#;
    ws.write_pipeline(&pipeline(&pg.url(&db)).replace("warehouse:\n", lookup));
    let check = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let valid = generate(&ws, "a", 3, 5_000, 2);
    let report = ws.run_once();
    let query = |sql: &str| {
        let out = ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), sql, "--format", "csv"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).lines().nth(1).unwrap_or_default().to_string()
    };
    // the warehouse counters ran first (the lookup is upstream), so they hold every row
    assert_eq!(query("SELECT sum(readings) FROM farm_seen"), valid.to_string(), "{report}");
    assert_eq!(query("SELECT count(*) FROM farm_seen WHERE counted <> readings"), "0", "{report}");
}
