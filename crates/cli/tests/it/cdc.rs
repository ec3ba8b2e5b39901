//! PostgreSQL change data capture (seed 003), end to end against a real
//! server: `ingesta generate oltp` writes the `shop` schema and a steady
//! load, `examples/cdc-replica` is run, killed at random moments and cut off
//! by a restart of PostgreSQL itself, and afterwards `cdc_check.py` (DuckDB
//! and deltalake only) compares every replica with its source table, every
//! history with the change rows, and the change rows with an independent
//! `test_decoding` slot.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use ingesta_testkit::{Postgres, Workspace, interrupt, python, text, wait_until};

use crate::{kill_ten_runs, workspace};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/cdc-replica/ingesta.yaml");

/// PostgreSQL's text of a timestamp, as DuckDB's `strftime` prints it.
const PG_TS: &str = "'YYYY-MM-DD\"T\"HH24:MI:SS.US'";
const DUCK_TS: &str = "'%Y-%m-%dT%H:%M:%S.%f'";

/// Each table: its key, the columns as text in PostgreSQL and in DuckDB.
fn spec() -> Vec<(&'static str, &'static str, String, String)> {
    let ts = |c: &str| (format!("to_char({c} AT TIME ZONE 'UTC', {PG_TS})"), format!("strftime({c}, {DUCK_TS})"));
    let txt = |c: &str| (format!("{c}::text"), format!("CAST({c} AS VARCHAR)"));
    let table = |name, key, cols: Vec<(String, String)>| {
        let (pg, duck): (Vec<_>, Vec<_>) = cols.into_iter().unzip();
        (name, key, pg.join(", "), duck.join(", "))
    };
    vec![
        table(
            "customers",
            "id",
            vec![txt("id"), txt("name"), txt("email"), txt("city"), txt("notes"), ts("created_at"), ts("updated_at")],
        ),
        table(
            "products",
            "id",
            vec![
                txt("id"),
                txt("name"),
                txt("category"),
                txt("price"),
                txt("active"),
                txt("description"),
                ts("updated_at"),
            ],
        ),
        table(
            "orders",
            "id",
            vec![txt("id"), txt("customer_id"), txt("status"), txt("total"), ts("ordered_at"), ts("updated_at")],
        ),
        table(
            "order_lines",
            "order_id, line_no",
            vec![txt("order_id"), txt("line_no"), txt("product_id"), txt("quantity"), txt("unit_price")],
        ),
    ]
}

fn generate(ws: &Workspace, url: &str, args: &[&str]) {
    let mut all = vec!["generate", "oltp", "--to", url];
    all.extend_from_slice(args);
    let out = ws.ingesta(&all);
    assert!(out.status.success(), "generate oltp failed: {}", text(&out.stderr));
}

/// A steady write load until killed.
fn load(ws: &Workspace, url: &str, seed: u64) -> Child {
    let seed = seed.to_string();
    ws.command(&["generate", "oltp", "--to", url, "--rows", "0", "--transactions", "100000000", "--rate", "150"])
        .args(["--seed", &seed])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `ingesta ARGS` with `env`, run to its end.
fn ingesta(ws: &Workspace, env: &[(&str, String)], args: &[&str]) -> std::process::Output {
    ws.command(args).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap()
}

/// The first value `ingesta query` answers to `sql` (one row, one column).
fn query_value(ws: &Workspace, env: &[(&str, String)], sql: &str) -> String {
    let out = ingesta(ws, env, &["query", EXAMPLE, sql, "--format", "csv"]);
    assert!(out.status.success(), "query failed: {}", text(&out.stderr));
    text(&out.stdout).lines().nth(1).unwrap_or_default().to_string()
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Dumps each source table (and the source's own sums for the gold
/// tables) and the independent slot's changes, then runs the outside check;
/// its report.
fn check(pg: &Postgres, db: &str, lake: &Path, dumps: &Path) -> serde_json::Value {
    std::fs::create_dir_all(dumps).unwrap();
    let (mut compare, mut histories) = (serde_json::Map::new(), serde_json::Map::new());
    let mut dump = |name: &str, pg_sql: String, duck: String, tables: Vec<&str>| {
        let csv = pg.psql(db, &format!("COPY ({pg_sql}) TO STDOUT WITH (FORMAT csv)"));
        std::fs::write(dumps.join(format!("{name}.csv")), csv + "\n").unwrap();
        compare.insert(name.into(), serde_json::json!({"duck": duck, "tables": tables}));
    };
    for (name, key, pg_cols, duck_cols) in spec() {
        dump(name, format!("SELECT {pg_cols} FROM shop.{name}"), format!("SELECT {duck_cols} FROM {name}"), vec![name]);
        histories.insert(name.into(), key.into());
    }
    dump(
        "orders_by_status",
        "SELECT status, count(*)::text, sum(total)::text FROM shop.orders GROUP BY status".into(),
        "SELECT status, CAST(orders AS VARCHAR), CAST(revenue AS VARCHAR) FROM orders_by_status WHERE orders <> 0"
            .into(),
        vec!["orders_by_status"],
    );
    let changes = pg.psql(db, "SELECT lsn, xid, data FROM pg_logical_slot_peek_changes('check', NULL, NULL)");
    std::fs::write(dumps.join("test_decoding.txt"), changes + "\n").unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/cdc_check.py");
    let spec = serde_json::json!({ "compare": compare, "histories": histories }).to_string();
    let out = std::process::Command::new(python())
        .args([script, lake.to_str().unwrap(), dumps.to_str().unwrap(), &spec])
        .output()
        .unwrap();
    assert!(out.status.success(), "cdc_check.py failed: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the check's report")
}

#[test]
fn replicas_equal_their_sources_after_kills_and_a_postgres_restart() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let url = pg.url(&db);
    let ws = workspace();
    generate(&ws, &url, &["--rows", "300", "--users", "100", "--products", "50"]);
    // an independent record of every change from here on
    pg.psql(&db, "SELECT pg_create_logical_replication_slot('check', 'test_decoding')");
    let lake = ws.lake();
    let env = [("INGESTA_SOURCE", url.clone()), ("INGESTA_LAKE", lake.display().to_string())];

    let writes = load(&ws, &url, 1);
    let first = kill_ten_runs(&ws, EXAMPLE, &env, 2500);
    let second = kill_ten_runs(&ws, EXAMPLE, &env, 2500);
    eprintln!("20 runs killed (seeds {first}, {second})");

    // PostgreSQL itself stops as a crash would, under a running pipeline
    let log = ws.path().join("watch.log");
    let mut watch = ws
        .command(&["run", EXAMPLE, "--watch"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    stop(writes);
    pg.stop_immediate();
    std::thread::sleep(Duration::from_secs(1));
    pg.start_again();
    let writes = load(&ws, &url, 2);
    std::thread::sleep(Duration::from_secs(6));
    stop(writes);
    std::thread::sleep(Duration::from_secs(3));
    interrupt(&watch);
    assert!(wait_until(Duration::from_secs(60), || watch.try_wait().unwrap().is_some()), "the pipeline did not stop");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains("starting again"), "the stream did not reconnect after the restart:\n{stderr}");

    let out = ingesta(&ws, &env, &["run", EXAMPLE, "--once"]);
    assert!(out.status.success(), "the last run failed: {}", text(&out.stderr));
    let report = check(&pg, &db, &lake, &ws.path().join("dumps"));
    eprintln!("{report:#}");
    for (name, r) in report["replicas"].as_object().unwrap() {
        assert!(r["rows"].as_u64().unwrap() > 0, "{name}: the source is empty");
        assert_eq!((r["missing"].as_u64(), r["extra"].as_u64()), (Some(0), Some(0)), "replica {name}: {r}");
    }
    for (name, h) in report["histories"].as_object().unwrap() {
        assert_eq!(h["versions"], h["changes"], "{name}_history: one version per change row: {h}");
        assert_eq!(h["versions"], h["distinct_versions"], "{name}_history: a version twice: {h}");
        assert_eq!(h["current"], h["keys"], "{name}_history: one current version per key: {h}");
    }
    let c = &report["changes"];
    assert_eq!(c["rows"], c["distinct_places"], "a change row twice: {c}");
    assert_eq!(c["ordinal_gaps"], 0, "{c}");
    assert!(c["independent"].as_u64().unwrap() > 1000, "too little load to prove anything: {c}");
    assert_eq!((c["missing"].as_u64(), c["doubled_or_extra"].as_u64()), (Some(0), Some(0)), "{c}");
}

/// Rows of `a` not in `b`, then of `b` not in `a` (PostgreSQL's EXCEPT ALL).
fn except_both_ways(pg: &Postgres, db: &str, a: &str, b: &str) -> (u64, u64) {
    let count = |x: &str, y: &str| -> u64 {
        pg.psql(db, &format!("SELECT count(*) FROM (({x}) EXCEPT ALL ({y})) d")).parse().unwrap()
    };
    (count(a, b), count(b, a))
}

#[test]
fn replicas_in_the_warehouse_equal_their_sources_by_except() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let url = pg.url(&db);
    let ws = workspace();
    generate(&ws, &url, &["--rows", "200", "--users", "80", "--products", "40"]);
    // the warehouse is the source database itself (schema `replica`), so
    // EXCEPT compares them in one query; its writes are unpublished changes
    let env = [
        ("INGESTA_SOURCE", url.clone()),
        ("INGESTA_LAKE", ws.lake().display().to_string()),
        ("INGESTA_WAREHOUSE", url.clone()),
        ("CDC_REPLICA_STORE", "warehouse".to_string()),
    ];
    let run = || {
        let out = ingesta(&ws, &env, &["run", EXAMPLE, "--once"]);
        assert!(out.status.success(), "run failed: {}", text(&out.stderr));
    };
    run();
    let writes = load(&ws, &url, 3);
    std::thread::sleep(Duration::from_secs(2));
    run();
    std::thread::sleep(Duration::from_secs(2));
    stop(writes);
    // a wide value updated without touching it (no REPLICA IDENTITY FULL
    // here: the change carries no old row), an added column, a truncate
    pg.psql(&db, "ALTER TABLE shop.products REPLICA IDENTITY DEFAULT");
    pg.psql(&db, "UPDATE shop.products SET price = price + 1 WHERE id <= 5");
    pg.psql(&db, "ALTER TABLE shop.customers ADD COLUMN tier text");
    pg.psql(&db, "UPDATE shop.customers SET tier = 'gold' WHERE id <= 3");
    // a table created while the pipeline runs: its replica is discovered at the next start
    pg.psql(&db, "CREATE TABLE shop.coupons (code text PRIMARY KEY, pct numeric(5,2), until date)");
    pg.psql(&db, "INSERT INTO shop.coupons VALUES ('A', 10, '2026-12-31'), ('B', 12.5, NULL)");
    run();
    // a column added to it appears in its replica (the warehouse table gains it)
    pg.psql(&db, "ALTER TABLE shop.coupons ADD COLUMN note text");
    pg.psql(&db, "UPDATE shop.coupons SET pct = 15, note = 'winter' WHERE code = 'A'");
    run();
    let replica_lines = pg.psql(&db, "SELECT count(*) FROM replica.order_lines");
    assert_ne!(replica_lines, "0");
    // a truncate, then new rows in the same run: the replica holds the new rows only
    pg.psql(&db, "TRUNCATE shop.order_lines");
    pg.psql(&db, "INSERT INTO shop.order_lines SELECT id, 1, 1, 2, 9.99 FROM shop.orders WHERE id <= 3");
    run();
    let ts = |c: &str| format!("{c} AT TIME ZONE 'UTC'");
    for (name, cols) in [
        ("customers", format!("id, name, email, city, notes, {}, {}", ts("created_at"), ts("updated_at"))),
        ("products", format!("id, name, category, price, active, description, {}", ts("updated_at"))),
        ("orders", format!("id, customer_id, status, total, {}, {}", ts("ordered_at"), ts("updated_at"))),
        ("order_lines", "order_id, line_no, product_id, quantity, unit_price".to_string()),
    ] {
        let source = format!("SELECT {cols} FROM shop.{name}");
        let replica = format!("SELECT {} FROM replica.{name}", cols.replace(" AT TIME ZONE 'UTC'", ""));
        assert_eq!(except_both_ways(&pg, &db, &source, &replica), (0, 0), "replica.{name} differs from shop.{name}");
        let current = pg.psql(&db, &format!("SELECT count(*) FROM replica.{name}_history WHERE is_current"));
        let keys = pg.psql(&db, &format!("SELECT count(*) FROM replica.{name}"));
        assert!(current.parse::<u64>().unwrap() >= keys.parse::<u64>().unwrap(), "{name}_history: {current} current");
    }
    let (coupons, replica) =
        ("SELECT code, pct, until, note FROM shop.coupons", "SELECT code, pct, until, note FROM replica.coupons");
    assert_eq!(except_both_ways(&pg, &db, coupons, replica), (0, 0), "the discovered replica differs");
    let sums = "SELECT status, count(*)::bigint, sum(total) FROM shop.orders GROUP BY status";
    let gold = "SELECT status, orders, revenue FROM replica.orders_by_status WHERE orders <> 0";
    assert_eq!(except_both_ways(&pg, &db, sums, gold), (0, 0), "orders_by_status differs from the source's sums");
    // the added column is in the change rows; the untouched wide values were flagged (and filled)
    let query = |sql: &str| query_value(&ws, &env, sql);
    let tier =
        "SELECT count(*) FROM shop_changes WHERE \"table\" = 'shop.customers' AND json_as_text(after, 'tier') = 'gold'";
    assert_eq!(query(tier), "3");
    let flagged = "SELECT count(*) FROM shop_changes WHERE unchanged = '[\"description\"]'";
    assert_eq!(query(flagged), "5");
    // (the load may have deleted some of orders 1-3 before)
    let kept = pg.psql(&db, "SELECT count(*) FILTER (WHERE unit_price <> 9.99), count(*) FROM replica.order_lines");
    assert!(kept.starts_with("0|") && kept != "0|0", "the truncate did not empty the replica: {kept}");
}

#[test]
fn the_slot_holds_no_wal_while_only_unpublished_tables_change() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let url = pg.url(&db);
    let ws = workspace();
    generate(&ws, &url, &["--rows", "50", "--users", "20", "--products", "10"]);
    pg.psql(&db, "CREATE TABLE public.noise (id bigserial PRIMARY KEY, pad text)");
    let env = [("INGESTA_SOURCE", url.clone()), ("INGESTA_LAKE", ws.lake().display().to_string())];
    let mut watch = ws
        .command(&["run", EXAMPLE, "--watch"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let active = "SELECT count(*) FROM pg_replication_slots WHERE active AND slot_name LIKE 'ingesta_%'";
    assert!(wait_until(Duration::from_secs(60), || pg.try_psql(&db, active).as_deref() == Ok("1")), "no slot");
    let lsn = |sql: &str| -> i64 { pg.psql(&db, sql).parse().unwrap() };
    let start = lsn("SELECT pg_current_wal_lsn() - '0/0'");
    // an "idle hour": a load on an unpublished table only, ~60 MiB of WAL
    let noise = "INSERT INTO public.noise (pad) SELECT string_agg(md5(random()::text), '') \
                 FROM generate_series(1, 2000) g, generate_series(1, 60) h GROUP BY g";
    for _ in 0..25 {
        pg.psql(&db, noise);
        pg.psql(&db, "CHECKPOINT");
    }
    let written = lsn("SELECT pg_current_wal_lsn() - '0/0'") - start;
    std::thread::sleep(Duration::from_secs(3));
    pg.psql(&db, "CHECKPOINT");
    std::thread::sleep(Duration::from_secs(2));
    let held = "SELECT pg_current_wal_lsn() - restart_lsn FROM pg_replication_slots WHERE slot_name LIKE 'ingesta_%'";
    let unconfirmed =
        "SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name LIKE 'ingesta_%'";
    let (held, unconfirmed) = (lsn(held), lsn(unconfirmed));
    eprintln!("WAL written {written} B; the slot holds {held} B, {unconfirmed} B unconfirmed");
    interrupt(&watch);
    assert!(wait_until(Duration::from_secs(30), || watch.try_wait().unwrap().is_some()), "the pipeline did not stop");
    assert!(written > 50 << 20, "the load wrote too little WAL to tell: {written}");
    assert!(held < 16 << 20, "the slot holds {held} B of the {written} B written");
    assert!(unconfirmed < 1 << 20, "{unconfirmed} B unconfirmed");
}

#[test]
fn a_sql_source_extracts_by_watermark_once_with_late_rows_and_swept_deletes() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let url = pg.url(&db);
    pg.psql(
        &db,
        "CREATE SCHEMA crm; CREATE TABLE crm.accounts (id int PRIMARY KEY, name text, tier text, updated_at timestamptz NOT NULL); \
         INSERT INTO crm.accounts SELECT g, 'account ' || g, 'basic', timestamp '2026-12-01' + g * interval '1 second' \
         FROM generate_series(1, 1000) g",
    );
    let ws = workspace();
    ws.write_pipeline(&format!(
        r#"pipeline: crm
lake:
  root: "{{lake}}"
warehouse:
  url: "{url}"
sources:
  crm:
    type: sql
    url: "{url}"
    query: SELECT id, name, tier, updated_at FROM crm.accounts
    watermark: updated_at
    key: [id]
    look_back: 1h
    sweep: 0s
tables:
  crm_changes:
    layer: bronze
    input: crm
replicas:
  crm:
    input: crm_changes
    store: warehouse
    schema: replica
    tables:
      accounts:
        table: crm
        key: [id]
        columns: {{id: int, name: string, tier: string, updated_at: timestamp}}
"#
    ));
    let run = || {
        let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once"]);
        assert!(out.status.success(), "run failed: {}", text(&out.stderr));
    };
    run();
    // a row committed late (its watermark below the highest held, within
    // look_back), updated rows, deleted rows
    pg.psql(
        &db,
        "INSERT INTO crm.accounts VALUES (5000, 'late', 'basic', timestamp '2026-12-01 00:10:00'); \
         UPDATE crm.accounts SET tier = 'gold', updated_at = timestamp '2026-12-01 01:00:00' WHERE id <= 3; \
         DELETE FROM crm.accounts WHERE id BETWEEN 10 AND 11",
    );
    run();
    run();
    let source = "SELECT id, name, tier, updated_at AT TIME ZONE 'UTC' FROM crm.accounts";
    let replica = "SELECT id, name, tier, updated_at FROM replica.accounts";
    assert_eq!(except_both_ways(&pg, &db, source, replica), (0, 0), "the replica differs from crm.accounts");
    let versions = pg.psql(&db, "SELECT count(*) FROM replica.accounts_history");
    assert_eq!(versions, (1000 + 1 + 3 + 2).to_string(), "one version per row read and per delete, none twice");
}

#[test]
fn a_dropped_slot_stops_the_table_until_a_rebuild_copies_again() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let url = pg.url(&db);
    let ws = workspace();
    generate(&ws, &url, &["--rows", "30", "--users", "10", "--products", "5"]);
    let env = [("INGESTA_SOURCE", url.clone()), ("INGESTA_LAKE", ws.lake().display().to_string())];
    let ingesta = |args: &[&str]| ingesta(&ws, &env, args);
    assert!(ingesta(&["run", EXAMPLE, "--once"]).status.success());
    pg.psql(&db, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots");
    pg.psql(&db, "UPDATE shop.orders SET status = 'paid' WHERE id <= 5");
    let out = ingesta(&["run", EXAMPLE, "--once"]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "a run without its slot succeeded");
    assert!(
        err.contains("no longer exists") && err.contains("ingesta rebuild PIPELINE shop_changes --accept-loss"),
        "{err}"
    );
    let refused = ingesta(&["rebuild", EXAMPLE, "shop_changes"]);
    assert!(!refused.status.success() && text(&refused.stderr).contains("--accept-loss"));
    let readers = ["customers", "customers_history", "products", "products_history", "orders", "orders_history"];
    let more = ["order_lines", "order_lines_history", "orders_by_status", "product_sales"];
    for table in ["shop_changes"].iter().chain(&readers).chain(&more) {
        let out = ingesta(&["rebuild", EXAMPLE, table, "--accept-loss"]);
        assert!(out.status.success(), "rebuild {table} failed: {}", text(&out.stderr));
    }
    let out = ingesta(&["run", EXAMPLE, "--once"]);
    assert!(out.status.success(), "the run after the rebuild failed: {}", text(&out.stderr));
    let copied: u64 = query_value(&ws, &env, "SELECT count(*) FROM shop_changes WHERE op = 'r'").parse().unwrap();
    let source: u64 = pg
        .psql(
            &db,
            "SELECT (SELECT count(*) FROM shop.customers) + (SELECT count(*) FROM shop.products) \
             + (SELECT count(*) FROM shop.orders) + (SELECT count(*) FROM shop.order_lines)",
        )
        .parse()
        .unwrap();
    assert_eq!(copied, source, "the new copy holds every source row once");
}
