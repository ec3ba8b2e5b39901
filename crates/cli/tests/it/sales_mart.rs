//! The sales-mart example (`examples/sales-mart/ingesta.yaml`) on a real
//! broker: `order_upd` events delivered out of order over three partitions,
//! some twice, with cancellations before and after confirmations and
//! malformed ones, give the net sales per store and day and the units per
//! product and day that `sales_mart_events.py` computes on its own, in the
//! lake and, with `SALES_MART_STORE=warehouse`, in PostgreSQL; and tracker
//! events posted to its collector give the sessions, the funnel and the
//! conversion report it computes.

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

/// Generates the events (`sales_mart_events.py`), puts them on the topic
/// `order_upd` of a new broker; returns the broker and what the mart must hold.
fn events(orders: &str, seed: &str, scratch: &Workspace) -> (Broker, serde_json::Value) {
    let broker = Broker::start();
    broker.create_topic("order_upd", 3);
    let dir = scratch.dir.path();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/sales_mart_events.py");
    let made =
        std::process::Command::new("python3").args([script, orders, seed, dir.to_str().unwrap()]).output().unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));
    produce(&broker, &std::fs::read_to_string(dir.join("events.ndjson")).unwrap());
    (broker, serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap())
}

const TOKEN: &str = "sales-mart-test-token-0123";

/// The example's settings for `store`.
fn env(ws: &Workspace, broker: &Broker, store: &str, warehouse: String) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BROKERS", broker.address()),
        ("INGESTA_LAKE", ws.lake().display().to_string()),
        ("SALES_MART_STORE", store.to_string()),
        ("INGESTA_WAREHOUSE", warehouse),
        ("INGESTA_COLLECTOR_TOKEN", TOKEN.to_string()),
        ("INGESTA_COLLECTOR_LISTEN", format!("127.0.0.1:{}", ingesta_testkit::free_port())),
    ]
}

/// Runs the example under `--watch --serve`, posts the tracker's events to
/// its collector, waits until they and the topic are in, asks the
/// `conversion` report, and stops it; returns the report's rows
/// (store_id, hour, sessions, orders, conversion).
fn watch_with_traffic(
    ws: &Workspace,
    env: &[(&str, String)],
    dir: &std::path::Path,
    expected: &serde_json::Value,
) -> Vec<Vec<String>> {
    let serve = format!("127.0.0.1:{}", ingesta_testkit::free_port());
    let mut child = ws
        .command(&["run", EXAMPLE, "--watch", "--serve", &serve])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let collector = &env.iter().find(|(k, _)| *k == "INGESTA_COLLECTOR_LISTEN").unwrap().1;
    let http = reqwest::blocking::Client::new();
    let traffic = std::fs::read_to_string(dir.join("traffic.ndjson")).unwrap();
    let lines: Vec<&str> = traffic.lines().collect();
    let up = ingesta_testkit::wait_until(Duration::from_secs(60), || std::net::TcpStream::connect(collector).is_ok());
    assert!(up, "the collector listens on {collector}");
    for chunk in lines.chunks(500) {
        let body = chunk.join("\n");
        let res = http
            .post(format!("http://{collector}/ingest/traffic"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/x-ndjson")
            .body(body)
            .send()
            .unwrap();
        assert!(res.status().is_success(), "{}", res.status());
    }
    // the first line of a query's answer; nothing while its tables do not exist yet
    let first = |sql: &str| {
        let out =
            ws.command(&["query", EXAMPLE, sql, "--format", "csv"]).envs(env.iter().map(|(k, v)| (k, v))).output();
        out.ok().filter(|o| o.status.success()).and_then(|o| text(&o.stdout).lines().nth(1).map(str::to_string))
    };
    let traffic_in = expected["traffic"].to_string();
    let facts = expected["facts"].to_string();
    let total =
        |key: &str| expected[key].as_object().unwrap().values().map(|v| v.as_i64().unwrap()).sum::<i64>().to_string();
    let (sessions, orders) = (total("sessions_hour"), total("orders_hour"));
    let caught_up = ingesta_testkit::wait_until(Duration::from_secs(120), || {
        first("SELECT count(*) FROM traffic_bronze").as_ref() == Some(&traffic_in)
            && first("SELECT count(*) FROM fact_order_variation_sold").as_ref() == Some(&facts)
            && first("SELECT count(*) FROM traffic_product_day").is_some()
            && first("SELECT sum(sessions) FROM traffic_store_hour").as_ref() == Some(&sessions)
            && first("SELECT sum(orders) FROM sales_store_hour").as_ref() == Some(&orders)
    });
    let report = http.get(format!("http://{serve}/api/reports/conversion?format=csv")).send().unwrap().text().unwrap();
    ingesta_testkit::interrupt(&child);
    assert!(ingesta_testkit::wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some()));
    let out = child.wait_with_output().unwrap();
    assert!(caught_up, "traffic and facts landed under --watch: {}", text(&out.stderr));
    report.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

/// Sessions and orders per store x hour, the funnel per product, and the
/// conversion report's rows equal `expected`.
fn check_traffic(
    ws: &Workspace,
    env: &[(&str, String)],
    expected: &serde_json::Value,
    report: &[Vec<String>],
    what: &str,
) {
    let rows = |sql: &str| query(ws, env, sql);
    let hour = "to_char(hour, '%Y-%m-%dT%H')";
    let pairs = |sql: &str| -> BTreeMap<String, i64> {
        rows(sql)
            .into_iter()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (format!("{}|{}", f[0], f[1]), f[2].parse().unwrap())
            })
            .collect()
    };
    let want = |key: &str| -> BTreeMap<String, i64> {
        expected[key]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
            .filter(|(_, n)| *n != 0)
            .collect()
    };
    let sessions = pairs(&format!("SELECT store_id, {hour}, sessions FROM traffic_store_hour"));
    assert_eq!(sessions, want("sessions_hour"), "{what}: distinct sessions per store and hour");
    let orders = pairs(&format!(
        "SELECT store_id, {hour}, sum(orders) FROM sales_store_hour GROUP BY 1, 2 HAVING sum(orders) <> 0"
    ));
    assert_eq!(orders, want("orders_hour"), "{what}: orders per store and hour");
    let funnel: BTreeMap<String, i64> = rows(
        "SELECT product_id, sum(product_views), sum(add_to_cart), sum(checkout_start) FROM traffic_product_day GROUP BY 1",
    )
    .into_iter()
    .flat_map(|l| {
        let f: Vec<String> = l.split(',').map(str::to_string).collect();
        ["product_view", "add_to_cart", "checkout_start"]
            .into_iter()
            .enumerate()
            .map(move |(i, step)| (format!("{}|{step}", f[0]), f[i + 1].parse().unwrap()))
            .collect::<Vec<_>>()
    })
    .collect();
    let want_funnel: BTreeMap<String, i64> = expected["funnel"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, steps)| {
            steps.as_object().unwrap().iter().map(move |(s, n)| (format!("{p}|{s}"), n.as_i64().unwrap()))
        })
        .collect();
    assert_eq!(funnel, want_funnel, "{what}: the funnel's steps per product");
    let bad_clock = rows("SELECT reason, count(*) FROM traffic_bronze__quarantine GROUP BY 1");
    assert_eq!(bad_clock.len(), 1, "{what}: {bad_clock:?}");
    // the report: one row per store and hour with traffic, orders / sessions
    assert_eq!(report.len(), want("sessions_hour").len(), "{what}: conversion rows");
    let (mut sessions_sum, mut orders_sum) = (0i64, 0i64);
    for r in report {
        let (s, o, c): (i64, i64, f64) = (r[2].parse().unwrap(), r[3].parse().unwrap(), r[4].parse().unwrap());
        assert!((c - o as f64 / s as f64).abs() < 1e-4, "{what}: conversion {r:?}");
        sessions_sum += s;
        orders_sum += o;
    }
    assert_eq!(sessions_sum, want("sessions_hour").values().sum::<i64>(), "{what}");
    let traffic_hours: std::collections::BTreeSet<&String> =
        expected["sessions_hour"].as_object().unwrap().keys().collect();
    let orders_in_traffic_hours: i64 =
        want("orders_hour").iter().filter(|(k, _)| traffic_hours.contains(k)).map(|(_, n)| n).sum();
    assert_eq!(orders_sum, orders_in_traffic_hours, "{what}: orders in the report's hours");
}

fn run_once(ws: &Workspace, env: &[(&str, String)], what: &str) {
    let run = ws.command(&["run", EXAMPLE, "--once", "--json"]).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
    assert!(run.status.success(), "{what}: {}{}", text(&run.stderr), text(&run.stdout));
}

/// Net sales per store x day, units per product x day, facts and quarantines
/// equal `expected`; `what` names the case in failures.
fn check(ws: &Workspace, env: &[(&str, String)], expected: &serde_json::Value, what: &str) {
    let rows = |sql: &str| query(ws, env, sql);
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
    assert_eq!(store_day, want, "{what}: net sales per store and day");
    let product_day: BTreeMap<String, i64> =
        rows("SELECT product_id, day, sum(net_units) FROM sales_product_day GROUP BY 1, 2 HAVING sum(net_units) <> 0")
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
    assert_eq!(product_day, want, "{what}: units per product and day");
    let facts = rows("SELECT count(*) FROM fact_order_variation_sold");
    assert_eq!(facts, [expected["facts"].to_string()], "{what}: one fact per line, each once");
    // every line of every distinct valid event is in order_lines; the facts are some of them
    let lines = rows("SELECT count(*) FROM order_lines");
    assert_eq!(lines, [expected["lines"].to_string()], "{what}: the lines of the distinct valid events");
    // the rollups are what a full recomputation from the facts gives
    let diff = rows(
        "SELECT count(*) FROM (SELECT store_id, date_bin(INTERVAL '1 hour', time) AS hour, \
           sum(sign * quantity) AS u, sum(sign * net_amount) AS a FROM fact_order_variation_sold GROUP BY 1, 2) f \
         FULL JOIN sales_store_hour r ON f.store_id = r.store_id AND f.hour = r.hour \
         WHERE (f.u IS DISTINCT FROM r.net_units) OR (f.a IS DISTINCT FROM r.net_amount)",
    );
    assert_eq!(diff, ["0"], "{what}: store x hour rollup = the facts recomputed");
    // the malformed messages, each with its reason
    let bronze_q = rows("SELECT reason, count(*) FROM order_upd_bronze__quarantine GROUP BY 1");
    assert_eq!(bronze_q, ["parse_error,1"], "{what}");
    let lines_q = rows("SELECT error, count(*) FROM order_lines__quarantine GROUP BY 1 ORDER BY 1");
    assert_eq!(lines_q.len(), 3, "{what}: {lines_q:?}");
    for rule in ["has_order_and_lines", "known_event", "positive_quantity"] {
        assert!(lines_q.iter().any(|l| l.contains(rule) && l.ends_with(",1")), "{what}: {rule} in {lines_q:?}");
    }
    let messages = expected["messages"].as_u64().unwrap();
    let distinct = rows("SELECT count(*) FROM order_upd_bronze");
    assert_eq!(distinct, [(messages - 1).to_string()], "{what}: every message but the broken one in bronze");
}

#[test]
fn the_sales_mart_equals_an_independent_computation_in_the_lake_and_in_postgresql() {
    let scratch = workspace();
    let (broker, expected) = events("1500", "11", &scratch);
    let pg = Postgres::start();
    let db = pg.fresh_database();
    for store in ["lake", "warehouse"] {
        let ws = workspace();
        let env = env(&ws, &broker, store, pg.url(&db));
        let check_cmd = ws.command(&["validate", EXAMPLE]).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
        assert!(check_cmd.status.success(), "{store}: {}", text(&check_cmd.stderr));
        let report = watch_with_traffic(&ws, &env, scratch.dir.path(), &expected);
        // then twice more: nothing new, nothing changes
        run_once(&ws, &env, store);
        run_once(&ws, &env, store);
        check(&ws, &env, &expected, store);
        check_traffic(&ws, &env, &expected, &report, store);
    }
}

#[test]
fn the_sales_mart_stays_exact_through_sigkills_at_random_moments() {
    let scratch = workspace();
    let (broker, expected) = events("3000", "12", &scratch);
    let ws = workspace();
    let env = env(&ws, &broker, "lake", String::new());
    let seed = crate::kill_ten_runs(&ws, EXAMPLE, &env, 3000);
    // a killed member holds its partitions until the group's session times out
    std::thread::sleep(Duration::from_secs(11));
    run_once(&ws, &env, "the final run");
    check(&ws, &env, &expected, &format!("after 10 SIGKILLs (seed {seed})"));
}
