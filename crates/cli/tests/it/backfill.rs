//! `ingesta backfill`: one day of a gold aggregate computed again equals a
//! full recomputation, the other days' files stay as they were, and later
//! passes count nothing twice.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ingesta_testkit::{Workspace, text};

use crate::{data_files, workspace};

fn pipeline(total: &str) -> String {
    bronze()
        + &format!(
            r#"  store_day:
    layer: gold
    input: sales_bronze
    transform:
      sql: SELECT store, day, {total} AS total, count(*) AS sales FROM input GROUP BY store, day
    write: {{mode: aggregate, key: [store, day], measures: {{total: sum, sales: sum}}}}
    partition_by: [{{column: day}}]
"#
        )
}

fn bronze() -> String {
    r#"pipeline: backfill
lake:
  root: "{lake}"
sources:
  sales:
    type: landing
    path: "{landing}"
    settle: 0ms
tables:
  sales_bronze:
    layer: bronze
    input: sales
    columns:
      - {name: store, type: string, required: true}
      - {name: day, type: date, required: true}
      - {name: amount, type: long, required: true}
    batch: {max_rows: 4}
"#
    .to_string()
}

fn sale(store: &str, day: u32, amount: i64) -> String {
    format!("{{\"store\":\"{store}\",\"day\":\"2026-11-0{day}\",\"amount\":{amount}}}\n")
}

fn query(ws: &Workspace, sql: &str) -> String {
    let out = ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), sql, "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// Each data file of a table, with its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    data_files(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

fn backfill(ws: &Workspace, args: &[&str]) -> std::process::Output {
    let file = ws.pipeline();
    let mut all = vec!["backfill", file.to_str().unwrap()];
    all.extend_from_slice(args);
    ws.ingesta(&all)
}

#[test]
fn a_backfilled_day_equals_a_full_recomputation_and_leaves_other_days_alone() {
    let ws = workspace();
    // a transform with a mistake: every total doubled
    ws.write_pipeline(&pipeline("sum(amount) * 2"));
    let day = |d: u32, n: i64| (0..n).map(|i| sale(["a", "b"][i as usize % 2], d, 10 + i)).collect::<String>();
    ws.drop_file("1.ndjson", day(1, 6) + &day(2, 5));
    ws.drop_file("2.ndjson", day(2, 7) + &day(3, 3));
    ws.run_once();
    let part = |d: u32| ws.lake().join(format!("store_day/day=2026-11-0{d}"));
    let before: Vec<_> = [1, 3].map(|d| files(&part(d))).into();

    // the mistake fixed; new sales reach bronze only, after the gold table's last pass
    ws.write_pipeline(&bronze());
    ws.drop_file("3.ndjson", day(2, 4) + &day(3, 2));
    ws.run_once();
    ws.write_pipeline(&pipeline("sum(amount)"));

    let out = backfill(&ws, &["store_day", "--from", "2026-11-02", "--to", "2026-11-02", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["rows"], 2, "{done}");
    assert!(done["files_removed"].as_u64().unwrap() >= 1, "{done}");
    assert_eq!([1, 3].map(|d| files(&part(d))).to_vec(), before, "the other days' files are untouched");

    // day 2 equals its recomputation: the stored rows from what bronze held
    // at the gold table's position, read (live) with the sales after it
    let gold = "SELECT store, total, sales FROM store_day WHERE day = DATE '2026-11-02' ORDER BY store";
    let full = "SELECT store, sum(amount) AS total, count(*) AS sales FROM sales_bronze \
                WHERE day = DATE '2026-11-02' GROUP BY store ORDER BY store";
    assert_eq!(query(&ws, gold), query(&ws, full));
    let doubled = query(&ws, "SELECT total FROM store_day WHERE day = DATE '2026-11-01' ORDER BY store");
    assert_eq!(doubled, "total\n72\n78\n", "day 1 keeps its (doubled) totals");

    // the next pass adds what came after, once
    ws.run_once();
    assert_eq!(query(&ws, gold), query(&ws, full));
    let history = ws.ingesta(&["runs", ws.pipeline().to_str().unwrap(), "store_day", "--json"]);
    assert!(text(&history.stdout).contains("\"trigger\":\"backfill\""), "{}", text(&history.stdout));

    // what cannot be backfilled says why
    let refused = backfill(&ws, &["sales_bronze", "--from", "2026-11-01", "--to", "2026-11-01"]);
    assert!(text(&refused.stderr).contains("bronze table"), "{}", text(&refused.stderr));
    let refused = backfill(&ws, &["store_day", "--from", "2026-11-03", "--to", "2026-11-01"]);
    assert!(text(&refused.stderr).contains("is empty"), "{}", text(&refused.stderr));
    let refused = backfill(&ws, &["store_day", "--from", "yesterday", "--to", "2026-11-01"]);
    assert!(text(&refused.stderr).contains("is not a value of `day`"), "{}", text(&refused.stderr));
}

/// The same in the warehouse, on a real PostgreSQL and on a column that is
/// not a partition: the day's rows are deleted and written again in one
/// transaction, the other days' rows keep their versions.
#[test]
fn a_warehouse_table_is_backfilled_in_one_transaction() {
    let pg = ingesta_testkit::Postgres::start();
    let db = pg.fresh_database();
    let ws = workspace();
    let in_warehouse = |total: &str| {
        pipeline(total).replace("    partition_by: [{column: day}]\n", "    store: warehouse\n")
            + &format!("warehouse:\n  url: \"{}\"\n", pg.url(&db))
    };
    ws.write_pipeline(&in_warehouse("sum(amount) * 2"));
    let day = |d: u32, n: i64| (0..n).map(|i| sale(["a", "b"][i as usize % 2], d, 10 + i)).collect::<String>();
    ws.drop_file("1.ndjson", day(1, 6) + &day(2, 5));
    ws.run_once();
    let versions =
        "SELECT string_agg(_ingesta_version::text, ',' ORDER BY store) FROM store_day WHERE day = '2026-11-01'";
    let day1 = pg.psql(&db, versions);

    ws.write_pipeline(&in_warehouse("sum(amount)"));
    let refused = backfill(&ws, &["store_day", "--from", "2026-11-02", "--to", "2026-11-02"]);
    assert!(text(&refused.stderr).contains("--column"), "{}", text(&refused.stderr));
    let out = backfill(&ws, &["store_day", "--column", "day", "--from", "2026-11-02", "--to", "2026-11-02"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let totals = "SELECT string_agg(store || '=' || total || '/' || sales, ',' ORDER BY store) FROM store_day WHERE day = '2026-11-02'";
    assert_eq!(pg.psql(&db, totals).trim(), "a=36/3,b=24/2", "day 2 recomputed");
    let day1_totals = "SELECT string_agg(total::text, ',' ORDER BY store) FROM store_day WHERE day = '2026-11-01'";
    assert_eq!(pg.psql(&db, day1_totals).trim(), "72,78", "day 1 keeps its totals");
    assert_eq!(pg.psql(&db, versions), day1, "and its rows");
    // later rows add to the recomputed day once
    ws.drop_file("2.ndjson", day(2, 2));
    ws.run_once();
    assert_eq!(pg.psql(&db, totals).trim(), "a=46/4,b=35/3");
}
