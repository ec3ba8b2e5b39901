//! Kafka into bronze on a real broker (tansu, from the test kit): exactly once
//! across two group members and a SIGKILL, Avro through a Schema Registry,
//! and clear errors for an unreachable broker, an unknown topic or refused
//! credentials.

use std::process::{Child, Stdio};
use std::time::Duration;

use ingesta_testkit::{Broker, Rng, SchemaRegistry, Workspace, interrupt, python, read_delta, text, wait_until};

use crate::workspace;

fn orders_pipeline(brokers: &str, topic: &str) -> String {
    format!(
        r#"pipeline: kafka_test
lake:
  root: "{{lake}}"
sources:
  orders_topic:
    type: kafka
    brokers: {brokers}
    topics: [{topic}]
    group: it-orders
    properties:
      session.timeout.ms: "6000"
      heartbeat.interval.ms: "500"
tables:
  orders_raw:
    layer: bronze
    input: orders_topic
    columns:
      - {{name: object_id, type: bigint, required: true}}
      - {{name: object_type, type: string}}
      - {{name: sent_dttm, type: timestamp}}
    batch: {{max_rows: 20000, max_wait: 1s}}
"#
    )
}

/// A group member running `run --watch` (killed when dropped, so a failing
/// test leaves no process behind), its log appended to `members.log`.
struct Member(Child);

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn member(ws: &Workspace) -> Member {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(ws.path().join("members.log")).unwrap();
    ws.command(&["run", ws.pipeline().to_str().unwrap(), "--watch"])
        .env("INGESTA_LOG", "warn,ingesta_kafka=info,ingesta_runtime=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Member)
        .expect("ingesta starts")
}

/// The members' log, for a failure message.
fn members_log(ws: &Workspace) -> String {
    let log = std::fs::read_to_string(ws.path().join("members.log")).unwrap_or_default();
    let _ = std::fs::write(std::env::temp_dir().join("ingesta-kafka-members.log"), &log);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Rows in bronze + quarantine, as `ingesta status` sees them.
fn landed(ws: &Workspace) -> u64 {
    let out = ws.ingesta(&["status", ws.pipeline().to_str().unwrap(), "--json"]);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else { return 0 };
    let t = &v["tables"][0];
    t["rows"].as_u64().unwrap_or(0) + t["quarantined_rows"].as_u64().unwrap_or(0)
}

/// Every (partition, offset) of the topic exactly once across bronze and
/// quarantine, read by Python's deltalake: (total, distinct, bronze, quarantined).
fn offsets_seen(ws: &Workspace) -> (u64, u64, u64, u64) {
    let script = r#"
import json, sys, deltalake, pyarrow.compute as pc
b = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table(columns=["_topic", "_partition", "_offset"])
q = deltalake.DeltaTable(sys.argv[2]).to_pyarrow_table(columns=["source", "position"])
keys = [f"{t}/{p}@{o}" for t, p, o in zip(b["_topic"].to_pylist(), b["_partition"].to_pylist(), b["_offset"].to_pylist())]
keys += [f"{s}@{p}" for s, p in zip(q["source"].to_pylist(), q["position"].to_pylist())]
parts = {}
for k in set(keys):
    tp, o = k.rsplit("@", 1)
    c, m = parts.get(tp, (0, -1))
    parts[tp] = (c + 1, max(m, int(o)))
print(json.dumps([len(keys), len(set(keys)), b.num_rows, q.num_rows]), flush=True)
print(json.dumps({tp: f"{c} offsets, highest {m}" for tp, (c, m) in sorted(parts.items())}), file=sys.stderr, flush=True)
import os; os._exit(0)
"#;
    let lake = ws.lake();
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(lake.join("orders_raw"))
        .arg(lake.join("_quarantine/orders_raw"))
        .output()
        .unwrap();
    assert!(out.status.success(), "outside reader: {}", text(&out.stderr));
    let v: Vec<u64> = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("per partition: {}", text(&out.stderr));
    (v[0], v[1], v[2], v[3])
}

#[test]
fn two_members_share_a_topic_exactly_once_through_a_sigkill() {
    let broker = Broker::start();
    broker.create_topic("orders", 3);
    let ws = workspace();
    ws.write_pipeline(&orders_pipeline(&broker.address(), "orders"));
    let seed = std::env::var("INGESTA_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_4b41);
    let mut rng = Rng(seed);
    let gen_dir = ws.path().join("gen");
    let to = format!("kafka://{}/orders", broker.address());
    let mut first = member(&ws);
    let producer = ws
        .command(&["generate", "orders", "--rows", "200000", "--malformed-rate", "0.005", "--to", &to])
        .args(["--out", gen_dir.to_str().unwrap()])
        // tansu 0.6 answers a fetch from inside a record batch with the next
        // batch (Kafka returns the batch holding the offset): one message per
        // batch, so resuming mid-batch cannot skip messages on this broker
        .args(["--property", "batch.num.messages=1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // the second member joins while messages flow: the first gives up
    // partitions with uncommitted messages
    std::thread::sleep(Duration::from_millis(1000 + rng.below(1000)));
    let mut second = member(&ws);
    // one of them is killed mid-run and started again once its session has
    // expired (tansu keeps a dead member in the group until someone joins
    // after its session timeout; Kafka expires it on its own)
    std::thread::sleep(Duration::from_millis(2000 + rng.below(3000)));
    let victim = if rng.below(2) == 0 { &mut first } else { &mut second };
    victim.0.kill().unwrap();
    victim.0.wait().unwrap();
    std::thread::sleep(Duration::from_millis(7000 + rng.below(2000)));
    *victim = member(&ws);
    let sent = producer.wait_with_output().unwrap();
    assert!(sent.status.success(), "generator: {}", text(&sent.stderr));
    let m = ingesta_testkit::manifest(&gen_dir);
    let total = m["rows"].as_u64().unwrap();
    let landed_all = wait_until(Duration::from_secs(300), || landed(&ws) >= total);
    for c in [&first, &second] {
        interrupt(&c.0);
    }
    for c in [&mut first, &mut second] {
        let _ = c.0.wait();
    }
    let (all, distinct, bronze, quarantined) = offsets_seen(&ws);
    assert!(landed_all, "only {all} of {total} messages landed (seed {seed}); members:\n{}", members_log(&ws));
    assert_eq!(distinct, all, "a message landed twice (seed {seed})");
    assert_eq!(all, total, "seed {seed}");
    assert_eq!(bronze, m["valid_rows"].as_u64().unwrap(), "seed {seed}");
    assert_eq!(quarantined, m["malformed"].as_u64().unwrap(), "seed {seed}");
}

#[test]
fn avro_lands_typed_and_unknown_schema_ids_are_quarantined() {
    let broker = Broker::start();
    broker.create_topic("online_sales", 2);
    let registry = SchemaRegistry::start();
    let ws = workspace();
    ws.write_pipeline(&format!(
        r#"pipeline: avro_test
lake:
  root: "{{lake}}"
sources:
  sales_topic:
    type: kafka
    brokers: {}
    topics: [online_sales]
    format: avro
    schema_registry: {{url: "{}"}}
tables:
  online_sales:
    layer: bronze
    input: sales_topic
    columns:
      - {{name: order_id, type: string, required: true}}
      - {{name: ts, type: timestamp, required: true}}
      - {{name: customer_id, type: string}}
      - {{name: product_id, type: string}}
      - {{name: quantity, type: int}}
      - {{name: unit_price, type: "decimal(10,2)"}}
      - {{name: channel, type: string}}
"#,
        broker.address(),
        registry.url
    ));
    let to = format!("kafka://{}/online_sales", broker.address());
    let gen_dir = ws.path().join("gen");
    let out = ws.ingesta(&[
        "generate",
        "online_sales",
        "--rows",
        "3000",
        "--malformed-rate",
        "0.01",
        "--to",
        &to,
        "--schema-registry",
        &registry.url,
        "--out",
        gen_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // one message that names a schema id the registry does not have
    let unknown = ws.ingesta(&[
        "generate",
        "online_sales",
        "--rows",
        "1",
        "--to",
        &to,
        "--schema-registry",
        "http://127.0.0.1:9",
    ]);
    assert!(!unknown.status.success(), "the generator needs its registry");
    produce_raw(&broker, "online_sales", &[0, 0, 0, 0x30, 0x39, 2, 4]);

    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let m = ingesta_testkit::manifest(&gen_dir);
    let view = read_delta(&ws.lake().join("online_sales"), &["_partition", "_offset"], None);
    assert_eq!(view.rows, m["valid_rows"].as_u64().unwrap());
    assert_eq!(view.distinct_keys, view.rows);
    let q = read_delta(&ws.lake().join("_quarantine/online_sales"), &[], Some("reason"));
    assert_eq!(q.rows, m["malformed"].as_u64().unwrap() + 1);
    assert_eq!(q.groups.get("unknown_schema"), Some(&1), "{:?}", q.groups);

    // typed: a timestamp and a decimal, as an outside reader sees them
    let script = r#"
import json, sys, deltalake
t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table()
print(json.dumps({"ts": str(t.schema.field("ts").type), "price": str(t.schema.field("unit_price").type),
                  "first": str(t.sort_by("order_id")["unit_price"][0])}), flush=True)
import os; os._exit(0)
"#;
    let out =
        std::process::Command::new(python()).args(["-c", script]).arg(ws.lake().join("online_sales")).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["ts"].as_str().unwrap().starts_with("timestamp[us"), "{v}");
    assert_eq!(v["price"], "decimal128(10, 2)", "{v}");
    assert!(v["first"].as_str().unwrap().contains('.'), "{v}");
}

/// Sends one message with these exact bytes.
fn produce_raw(broker: &Broker, topic: &str, bytes: &[u8]) {
    use ingesta_kafka::{Health, Producer, Record};
    let p = Producer::new(&broker.address(), &Default::default(), Health::default()).unwrap();
    p.send(&Record { topic, key: None, payload: bytes, headers: &[], partition: Some(0) }).unwrap();
    p.flush(Duration::from_secs(30)).unwrap();
}

/// `run --watch --serve ADDR` on the workspace's pipeline (killed when dropped).
fn watch_with_health(ws: &Workspace) -> (Member, String) {
    let addr = format!("127.0.0.1:{}", ingesta_testkit::free_port());
    let member = ws
        .command(&["run", ws.pipeline().to_str().unwrap(), "--watch", "--serve", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Member)
        .unwrap();
    (member, addr)
}

/// The readiness endpoint's status code and its first table, once it answers.
fn first_table_health(addr: &str) -> Option<(u16, serde_json::Value)> {
    let r = reqwest::blocking::get(format!("http://{addr}/ready")).ok()?;
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().ok()?;
    Some((status, v["tables"][0].clone()))
}

/// Ctrl-C ends a watching process within `secs`.
fn interrupt_and_wait(member: &mut Member, secs: u64) {
    interrupt(&member.0);
    assert!(wait_until(Duration::from_secs(secs), || member.0.try_wait().is_ok_and(|s| s.is_some())));
}

#[test]
fn an_unreachable_broker_and_an_unknown_topic_are_reported_not_hidden() {
    let ws = workspace();
    let port = ingesta_testkit::free_port();
    ws.write_pipeline(&orders_pipeline(&format!("127.0.0.1:{port}"), "orders"));
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once"]);
    let err = text(&out.stderr) + &text(&out.stdout);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("onnect"), "{err}");

    // while watching, the health endpoint says so (and the process keeps trying)
    let (mut watching, addr) = watch_with_health(&ws);
    let retrying = || first_table_health(&addr).filter(|(code, t)| *code == 503 && t["state"] == "retrying");
    assert!(wait_until(Duration::from_secs(30), || retrying().is_some()), "{:?}", first_table_health(&addr));
    let (_, seen) = retrying().unwrap_or_default();
    assert!(seen["problem"].as_str().is_some_and(|p| p.contains(&port.to_string())), "{seen}");
    interrupt_and_wait(&mut watching, 30);

    let broker = Broker::start();
    ws.write_pipeline(&orders_pipeline(&broker.address(), "no_such_topic"));
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once"]);
    let err = text(&out.stderr) + &text(&out.stdout);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("no_such_topic") || err.to_lowercase().contains("unknown topic"), "{err}");

    // while watching, the health says so until the topic is created, then ok
    let quick = "properties:\n      topic.metadata.refresh.interval.ms: \"1000\"\n";
    ws.write_pipeline(&orders_pipeline(&broker.address(), "no_such_topic").replace("properties:\n", quick));
    let (watching, addr) = watch_with_health(&ws);
    let state = || first_table_health(&addr).map(|(_, t)| t);
    assert!(
        wait_until(Duration::from_secs(30), || state().is_some_and(
            |t| t["state"] == "retrying" && t["problem"].as_str().is_some_and(|p| p.contains("no_such_topic"))
        )),
        "{:?}",
        state()
    );
    broker.create_topic("no_such_topic", 1);
    assert!(wait_until(Duration::from_secs(30), || state().is_some_and(|t| t["state"] == "ok")), "{:?}", state());
    // once it commits, how far the table is behind its topic is measured (alerts' kafka_lag)
    produce_raw(&broker, "no_such_topic", br#"{"order_id": 1}"#);
    assert!(wait_until(Duration::from_secs(30), || state().is_some_and(|t| t["lag_messages"] == 0)), "{:?}", state());
    drop(watching);
}

#[test]
fn refused_credentials_are_reported_and_retried_until_stopped() {
    let broker = Broker::start_authenticating();
    let ws = workspace();
    let sasl = "properties:\n      security.protocol: SASL_PLAINTEXT\n      sasl.mechanism: SCRAM-SHA-512\n      \
                sasl.username: nobody\n      sasl.password: not-the-password\n";
    ws.write_pipeline(&orders_pipeline(&broker.address(), "orders").replace("properties:\n", sasl));
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once"]);
    let err = text(&out.stderr) + &text(&out.stdout);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("Authentication") && err.contains("check sasl.username"), "{err}");
    assert!(!err.contains("not-the-password"), "the password is never printed: {err}");

    // while watching: retried with backoff, the health says why, Ctrl-C ends it
    let (mut watching, addr) = watch_with_health(&ws);
    let retrying = || first_table_health(&addr).filter(|(code, t)| *code == 503 && t["state"] == "retrying");
    assert!(wait_until(Duration::from_secs(30), || retrying().is_some()), "health never said retrying");
    let (_, seen) = retrying().unwrap_or_default();
    assert!(seen["problem"].as_str().is_some_and(|p| p.contains("Authentication")), "{seen}");
    std::thread::sleep(Duration::from_secs(4));
    assert!(retrying().is_some(), "still retrying after a few backoffs, not stopped");
    assert!(watching.0.try_wait().unwrap().is_none(), "the process keeps running");
    interrupt_and_wait(&mut watching, 10);
}

#[test]
fn a_topic_into_a_postgresql_table_is_exact_after_sigkill_at_random_moments() {
    let broker = Broker::start();
    broker.create_topic("orders_pg", 2);
    let pg = ingesta_testkit::Postgres::start();
    let db = pg.fresh_database();
    let ws = workspace();
    let silver = format!(
        r#"  orders_pg:
    layer: silver
    input: orders_raw
    store: warehouse
    transform:
      select: [object_id, object_type, _partition, _offset]
    write: {{mode: insert_if_absent, key: [_partition, _offset]}}
warehouse:
  url: "{}"
"#,
        pg.url(&db)
    );
    ws.write_pipeline(&(orders_pipeline(&broker.address(), "orders_pg") + &silver));
    let gen_dir = ws.path().join("gen");
    let to = format!("kafka://{}/orders_pg", broker.address());
    let sent = ws
        .command(&["generate", "orders", "--rows", "20000", "--malformed-rate", "0.005", "--to", &to])
        .args(["--out", gen_dir.to_str().unwrap(), "--property", "batch.num.messages=1"])
        .output()
        .unwrap();
    assert!(sent.status.success(), "generator: {}", text(&sent.stderr));
    let valid = ingesta_testkit::manifest(&gen_dir)["valid_rows"].as_u64().unwrap();
    let seed = Rng::clock_seed();
    let mut rng = Rng(seed);
    let (mut killed, mut trials) = (0, 0);
    while killed < 20 {
        trials += 1;
        assert!(trials <= 60, "only {killed} of {trials} runs were killed mid-way (seed {seed})");
        let mut child = ws.spawn_run();
        let after = Duration::from_millis(200 + rng.below(2500));
        let was_killed = ingesta_testkit::kill_after(&mut child, after);
        killed += usize::from(was_killed);
        eprintln!("trial {trials}: {} after {after:?} (seed {seed})", if was_killed { "killed" } else { "finished" });
    }
    // a killed member holds its partitions until the group's session times
    // out (6 s), and `--once` reads only the partitions it is given
    std::thread::sleep(Duration::from_secs(7));
    let last = ws.run_once();
    let count = |sql: &str| pg.psql(&db, sql).trim().parse::<u64>().unwrap();
    let rows = count("SELECT count(*) FROM public.orders_pg");
    let distinct = count("SELECT count(DISTINCT (_partition, _offset)) FROM public.orders_pg");
    assert_eq!(distinct, rows, "a message was written twice (seed {seed})");
    assert_eq!(rows, valid, "every valid message once (seed {seed}); last run: {last}");
}
