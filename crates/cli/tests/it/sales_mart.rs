//! The sales-mart example (`examples/sales-mart/ingesta.yaml`) on a real
//! broker: `order_upd` events delivered out of order over three partitions,
//! some twice, with cancellations before and after confirmations and
//! malformed ones, give the net sales per store and day and the units per
//! product and day that `sales_mart_events.py` computes on its own, in the
//! lake and, with `SALES_MART_STORE=warehouse`, in PostgreSQL.

use std::collections::BTreeMap;
use std::time::Duration;

use ingesta_testkit::{Broker, Postgres, Workspace, text};

use crate::workspace;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/sales-mart/ingesta.yaml");

/// Every line of `events` as a message, spread over the partitions.
fn produce(broker: &Broker, events: &str) {
    use ingesta_kafka::{Health, Producer, Record};
    let p = Producer::new(&broker.address(), &Default::default(), Health::default()).unwrap();
    for (i, line) in events.lines().enumerate() {
        let record = Record {
            topic: "order_upd",
            key: None,
            payload: line.as_bytes(),
            headers: &[],
            partition: Some((i % 3) as i32),
        };
        p.send(&record).unwrap();
    }
    p.flush(Duration::from_secs(60)).unwrap();
}

/// Rows of `sql` (CSV) through `ingesta query`, header left out.
fn query(ws: &Workspace, env: &[(&str, String)], sql: &str) -> Vec<String> {
    let out =
        ws.command(&["query", EXAMPLE, sql, "--format", "csv"]).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
    assert!(out.status.success(), "{sql}: {}", text(&out.stderr));
    text(&out.stdout).lines().skip(1).map(str::to_string).collect()
}

#[test]
fn the_sales_mart_equals_an_independent_computation_in_the_lake_and_in_postgresql() {
    let broker = Broker::start();
    broker.create_topic("order_upd", 3);
    let pg = Postgres::start();
    let db = pg.fresh_database();
    let scratch = workspace();
    let gen_dir = scratch.dir.path();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/sales_mart_events.py");
    let made =
        std::process::Command::new("python3").args([script, "1500", "11", gen_dir.to_str().unwrap()]).output().unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    produce(&broker, &std::fs::read_to_string(gen_dir.join("events.ndjson")).unwrap());
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(gen_dir.join("expected.json")).unwrap()).unwrap();

    for store in ["lake", "warehouse"] {
        let ws = workspace();
        let env = vec![
            ("KAFKA_BROKERS", broker.address()),
            ("INGESTA_LAKE", ws.lake().display().to_string()),
            ("SALES_MART_STORE", store.to_string()),
            ("INGESTA_WAREHOUSE", pg.url(&db)),
        ];
        let check = ws.command(&["validate", EXAMPLE]).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
        assert!(check.status.success(), "{store}: {}", text(&check.stderr));
        // twice: the second run finds nothing new and changes nothing
        for _ in 0..2 {
            let run = ws
                .command(&["run", EXAMPLE, "--once", "--json"])
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
                .unwrap();
            assert!(run.status.success(), "{store}: {}{}", text(&run.stderr), text(&run.stdout));
        }
        let rows = |sql: &str| query(&ws, &env, sql);
        let store_day: BTreeMap<String, String> = rows(
            "SELECT store_id, CAST(hour AS DATE) AS day, sum(net_amount) AS net, sum(net_units) AS units \
             FROM sales_store_hour GROUP BY 1, 2 HAVING sum(net_units) <> 0 OR sum(net_amount) <> 0 ORDER BY 1, 2",
        )
        .into_iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (format!("{}|{}", f[0], f[1]), format!("{:.2}|{}", f[2].parse::<f64>().unwrap(), f[3]))
        })
        .collect();
        let want: BTreeMap<String, String> = expected["store_day"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| v["net_units"] != 0 || v["net_amount"] != "0.00")
            .map(|(k, v)| (k.clone(), format!("{}|{}", v["net_amount"].as_str().unwrap(), v["net_units"])))
            .collect();
        assert_eq!(store_day, want, "{store}: net sales per store and day");
        let product_day: BTreeMap<String, i64> = rows(
            "SELECT product_id, day, sum(net_units) FROM sales_product_day GROUP BY 1, 2 \
             HAVING sum(net_units) <> 0 ORDER BY 1, 2",
        )
        .into_iter()
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (format!("{}|{}", f[0], f[1]), f[2].parse().unwrap())
        })
        .collect();
        let want: BTreeMap<String, i64> = expected["product_day"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v["net_units"].as_i64().unwrap()))
            .filter(|(_, n)| *n != 0)
            .collect();
        assert_eq!(product_day, want, "{store}: units per product and day");
        let facts = rows("SELECT count(*) FROM fact_order_variation_sold");
        assert_eq!(facts, [expected["facts"].to_string()], "{store}: one fact per line, each once");
        // the malformed messages, each with its reason
        let bronze_q = rows("SELECT reason, count(*) FROM order_upd_bronze__quarantine GROUP BY 1");
        assert_eq!(bronze_q, ["parse_error,1"], "{store}");
        let lines_q = rows("SELECT error, count(*) FROM order_lines__quarantine GROUP BY 1 ORDER BY 1");
        assert_eq!(lines_q.len(), 3, "{store}: {lines_q:?}");
        for rule in ["has_order_and_lines", "known_event", "positive_quantity"] {
            assert!(lines_q.iter().any(|l| l.contains(rule) && l.ends_with(",1")), "{store}: {rule} in {lines_q:?}");
        }
        let bronze = rows("SELECT count(*) FROM order_upd_bronze");
        let messages = expected["messages"].as_u64().unwrap();
        assert_eq!(bronze, [(messages - 1).to_string()], "{store}: every message but the broken one in bronze");
    }
}
