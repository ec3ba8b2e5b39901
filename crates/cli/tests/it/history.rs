//! `write: {mode: scd2}` through the binary, the same history kept in the
//! lake and in PostgreSQL: versions arriving late or twice, a row without
//! a sequence quarantined.

use ingesta_testkit::{Postgres, text};

use crate::workspace;

fn pipeline(url: &str) -> String {
    let table = |name: &str, store: &str| {
        format!(
            r#"  {name}:
    layer: silver
    input: customers_bronze{store}
    transform:
      select: [id, name, city, version]
    write: {{mode: scd2, key: [id], sequence: version}}
"#
        )
    };
    format!(
        r#"pipeline: history
lake:
  root: "{{lake}}"
warehouse:
  url: "{url}"
sources:
  customers:
    type: landing
    path: "{{landing}}"
    settle: 0ms
tables:
  customers_bronze:
    layer: bronze
    input: customers
    columns:
      - {{name: id, type: string, required: true}}
      - {{name: name, type: string}}
      - {{name: city, type: string}}
      - {{name: version, type: bigint}}
{}{}"#,
        table("customers_lake", ""),
        table("customers_pg", "\n    store: warehouse\n    schema: dim")
    )
}

#[test]
fn a_history_is_the_same_in_both_stores_whatever_order_versions_arrive_in() {
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let ws = workspace();
    ws.write_pipeline(&pipeline(&pg.url(&db)));
    let check = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let line = |id: &str, city: &str, v: &str| {
        format!("{{\"id\":\"{id}\",\"name\":\"N{id}\",\"city\":\"{city}\",\"version\":{v}}}\n")
    };
    ws.drop_file("1.ndjson", [line("a", "Lima", "1"), line("a", "Quito", "3"), line("b", "Oslo", "1")].concat());
    ws.run_once();
    // a version between two stored ones, one replayed, one without a sequence
    ws.drop_file("2.ndjson", [line("a", "Cusco", "2"), line("a", "Quito", "3"), line("b", "Bergen", "null")].concat());
    let report = ws.run_once();
    let query = |table: &str| {
        let sql = format!("SELECT id, city, valid_from, valid_to, is_current FROM {table} ORDER BY id, valid_from");
        let out = ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), &sql, "--format", "csv"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let expected = "id,city,valid_from,valid_to,is_current\n\
                    a,Lima,1,2,false\n\
                    a,Cusco,2,3,false\n\
                    a,Quito,3,,true\n\
                    b,Oslo,1,,true\n";
    assert_eq!(query("customers_lake"), expected, "{report}");
    assert_eq!(query("customers_pg"), expected, "{report}");
    for table in ["customers_lake", "customers_pg"] {
        let sql = format!("SELECT reason, count(*) AS n FROM {table}__quarantine GROUP BY reason");
        let q = ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), &sql, "--format", "csv"]);
        assert_eq!(text(&q.stdout), "reason,n\nmissing_required,1\n", "{table}: {}", text(&q.stderr));
    }
}
