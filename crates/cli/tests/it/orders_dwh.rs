//! The orders DWH (seed 002, `examples/orders-dwh/`) on a real broker (three
//! partitions, messages without keys), PostgreSQL and Redis, with the data of
//! `ingesta generate orders` (redeliveries, an order's older status arriving
//! after its newer one, malformed messages): every table's row count, every
//! order's latest status, every CDM counter and the STG payloads equal the
//! generator's `expected.json`; hub, link and hashdiff keys equal
//! PostgreSQL's own `uuid_generate_v5`; the user tags follow the category
//! counters; still so after SIGKILLs.

use std::collections::BTreeMap;
use std::time::Duration;

use ingesta_testkit::{Broker, Postgres, Redis, Workspace, text};
use serde_json::Value;

use crate::workspace;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/orders-dwh/ingesta.yaml");
const SERVICES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/orders-dwh/services");
const DDL: &str = include_str!("../../../../examples/orders-dwh/ddl.sql");
const NS: &str = "7f288a2e-0ad0-4039-8e59-6c9838d87307";

struct Servers {
    broker: Broker,
    pg: Postgres,
    db: String,
    redis: Redis,
}

/// The servers, the example's tables created by its `ddl.sql` (adopted by
/// the pipeline), and `orders` orders in Redis and on the topic; returns
/// them and the expected end state.
fn start(orders: u64, seed: u64, scratch: &Workspace) -> (Servers, Value) {
    let broker = Broker::start();
    for topic in ["order-service_orders", "stg-service-orders", "dds-service-orders"] {
        broker.create_topic(topic, 3);
    }
    let redis = Redis::start();
    let pg = Postgres::start();
    let db = pg.fresh_database();
    pg.psql(&db, DDL);
    pg.psql(&db, "CREATE EXTENSION \"uuid-ossp\"");
    let dir = scratch.dir.path().join("gen");
    let to = format!("kafka://{}/order-service_orders", broker.address());
    let made = scratch
        .command(&["generate", "orders", "--rows", &orders.to_string(), "--seed", &seed.to_string()])
        .args(["--out", dir.to_str().unwrap(), "--redis", &redis.url(), "--to", &to])
        .output()
        .unwrap();
    assert!(made.status.success(), "generate: {}", text(&made.stderr));
    let expected = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    (Servers { broker, pg, db, redis }, expected)
}

fn env(ws: &Workspace, s: &Servers) -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BROKERS", s.broker.address()),
        ("INGESTA_LAKE", ws.lake().display().to_string()),
        ("INGESTA_WAREHOUSE", s.pg.url(&s.db)),
        ("INGESTA_REDIS", s.redis.url()),
    ]
}

fn run_once(ws: &Workspace, env: &[(&str, String)], what: &str) {
    run_file(ws, EXAMPLE, env, what);
}

fn run_file(ws: &Workspace, file: &str, env: &[(&str, String)], what: &str) {
    let run = ws.command(&["run", file, "--once", "--json"]).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
    assert!(run.status.success(), "{what}: {}{}", text(&run.stderr), text(&run.stdout));
}

/// `sql`'s rows as `a|b|…` lines.
fn rows(s: &Servers, sql: &str) -> Vec<String> {
    s.pg.psql(&s.db, sql).lines().map(str::to_string).collect()
}

/// The database against `expected`; `what` names the case in failures.
fn check(s: &Servers, expected: &Value, what: &str) {
    for (table, n) in expected["counts"].as_object().unwrap() {
        let name = if table.contains('.') { table.clone() } else { format!("dds.{table}") };
        assert_eq!(rows(s, &format!("SELECT count(*) FROM {name}")), [n.to_string()], "{what}: rows of {name}");
    }
    // keys as PostgreSQL's uuid-ossp makes them
    let v5 = |x: &str| format!("uuid_generate_v5('{NS}', {x})");
    for (table, key, sql) in [
        ("h_user", "h_user_pk", v5("user_id")),
        ("h_order", "h_order_pk", v5("order_id::text")),
        ("h_category", "h_category_pk", v5("category_name")),
        (
            "l_order_product l JOIN dds.h_order o USING (h_order_pk) JOIN dds.h_product p USING (h_product_pk)",
            "hk_order_product_pk",
            v5("o.order_id || '#$#' || p.product_id"),
        ),
        (
            "s_order_status s JOIN dds.h_order o USING (h_order_pk)",
            "hk_order_status_hashdiff",
            v5("o.order_id || '#$#' || s.status"),
        ),
        (
            "s_user_names s JOIN dds.h_user u USING (h_user_pk)",
            "hk_user_names_hashdiff",
            v5("u.user_id || '#$#' || s.username || '#$#' || s.userlogin"),
        ),
    ] {
        let wrong = rows(s, &format!("SELECT count(*) FROM dds.{table} WHERE {key} <> {sql}"));
        assert_eq!(wrong, ["0"], "{what}: {key} is not uuid5 of its values");
    }
    // every order's latest status by load_dt, and STG's payload
    let want: BTreeMap<String, String> = expected["final_status"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().into()))
        .collect();
    let pairs = |sql: &str| -> BTreeMap<String, String> {
        rows(s, sql).iter().map(|l| l.split_once('|').map(|(a, b)| (a.into(), b.into())).unwrap()).collect()
    };
    let latest = pairs(
        "SELECT DISTINCT ON (s.h_order_pk) o.order_id, s.status FROM dds.s_order_status s \
         JOIN dds.h_order o USING (h_order_pk) ORDER BY s.h_order_pk, s.load_dt DESC",
    );
    assert!(latest == want, "{what}: {} orders' latest status differs", diff(&latest, &want));
    let stg = pairs("SELECT object_id, payload->>'final_status' FROM stg.order_events");
    assert!(stg == want, "{what}: {} orders' STG payload is not their latest", diff(&stg, &want));
    // every counter
    for (table, id, hub, natural, key) in [
        ("user_product_counters", "product_id", "h_product", "product_id", "user_product_counters"),
        ("user_category_counters", "category_id", "h_category", "category_name", "user_category_counters"),
    ] {
        let got: BTreeMap<String, String> = rows(
            s,
            &format!(
                "SELECT u.user_id || ' ' || x.{natural}, c.order_cnt FROM cdm.{table} c \
                 JOIN dds.h_user u ON u.h_user_pk = c.user_id JOIN dds.{hub} x ON x.{hub}_pk = c.{id} \
                 WHERE c.order_cnt <> 0"
            ),
        )
        .iter()
        .map(|l| l.split_once('|').map(|(a, b)| (a.into(), b.into())).unwrap())
        .collect();
        let want: BTreeMap<String, String> = expected[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (format!("{} {}", r[0].as_str().unwrap(), r[1].as_str().unwrap()), r[2].to_string()))
            .collect();
        assert!(got == want, "{what}: {} of {} {table} differ", diff(&got, &want), want.len());
    }
    // the example's tags: users with at least N CLOSED orders in a category
    for (tag, category, min) in [("Любитель пиццы", "Пицца", 10), ("Сладкоежка", "Десерты", 5)]
    {
        let want = expected["user_category_counters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r[1] == category && r[2].as_u64().unwrap() >= min)
            .count();
        let got = rows(s, &format!("SELECT count(*) FROM cdm.user_tags WHERE tag = '{tag}' AND assigned"));
        assert_eq!(got, [want.to_string()], "{what}: users tagged {tag}");
    }
    let stale = rows(
        s,
        "SELECT count(*) FROM cdm.user_tags t JOIN cdm.user_category_counters c \
         ON c.user_id = t.user_id AND c.category_name = t.category_name WHERE t.order_cnt <> c.order_cnt",
    );
    assert_eq!(stale, ["0"], "{what}: a tag's count is its category counter");
}

/// How many keys two maps disagree on.
fn diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> usize {
    a.keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .count()
}

#[test]
fn the_orders_dwh_in_one_process_equals_the_expected_end_state() {
    let scratch = workspace();
    let (servers, expected) = start(3000, 41, &scratch);
    let ws = workspace();
    let env = env(&ws, &servers);
    let valid = ws.command(&["validate", EXAMPLE]).envs(env.iter().map(|(k, v)| (k, v))).output().unwrap();
    assert!(valid.status.success(), "{}", text(&valid.stderr));
    run_once(&ws, &env, "the first run");
    run_once(&ws, &env, "a run with nothing new");
    check(&servers, &expected, "one process");
}

#[test]
fn the_orders_dwh_stays_exact_through_sigkills_at_random_moments() {
    let scratch = workspace();
    let (servers, expected) = start(4000, 42, &scratch);
    let ws = workspace();
    let env = env(&ws, &servers);
    let seed = crate::kill_ten_runs(&ws, EXAMPLE, &env, 4000);
    // a killed member holds its partitions until the group's session times out
    std::thread::sleep(Duration::from_secs(11));
    run_once(&ws, &env, "the final run");
    check(&servers, &expected, &format!("after 10 SIGKILLs (seed {seed})"));
}

#[test]
fn the_three_services_chained_by_topics_stay_exact_through_sigkills() {
    let scratch = workspace();
    let (servers, expected) = start(3000, 43, &scratch);
    let names = ["stg", "dds", "cdm"];
    let files: Vec<String> = names.iter().map(|n| format!("{SERVICES}/{n}.yaml")).collect();
    let spaces: Vec<Workspace> = names.iter().map(|_| workspace()).collect();
    let envs: Vec<_> = spaces.iter().map(|ws| env(ws, &servers)).collect();
    let watch = |i: usize| {
        spaces[i]
            .command(&["run", &files[i], "--watch"])
            .envs(envs[i].iter().map(|(k, v)| (k, v)))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut running: Vec<std::process::Child> = (0..3).map(watch).collect();
    let seed = ingesta_testkit::Rng::clock_seed();
    let mut rng = ingesta_testkit::Rng(seed);
    for trial in 1..=10 {
        std::thread::sleep(Duration::from_millis(300 + rng.below(2500)));
        let i = rng.below(3) as usize;
        running[i].kill().unwrap();
        running[i].wait().unwrap();
        eprintln!("trial {trial}: killed {} (seed {seed})", names[i]);
        running[i] = watch(i);
    }
    for c in &mut running {
        let _ = c.kill();
        let _ = c.wait();
    }
    // killed members hold their partitions until their sessions time out;
    // then each service drains what the one before it published
    std::thread::sleep(Duration::from_secs(11));
    for i in 0..3 {
        run_file(&spaces[i], &files[i], &envs[i], names[i]);
    }
    check(&servers, &expected, &format!("three services after 10 SIGKILLs (seed {seed})"));
}

#[test]
fn the_kubernetes_manifests_are_valid_and_run_the_three_pipelines() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/orders-dwh");
    let files: Vec<String> = ["stg", "dds", "cdm"].iter().map(|n| format!("{dir}/k8s/{n}.yaml")).collect();
    // offline, against the API's published schemas, rejecting unknown fields
    let out = std::process::Command::new(ingesta_testkit::python())
        .args(["-m", "kubernetes_validate", "--strict", "--kubernetes-version", "1.30.0", "--quiet"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubernetes-validate (in scripts/requirements-test.txt): {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let kustomization = std::fs::read_to_string(format!("{dir}/kustomization.yaml")).unwrap();
    for (name, file) in ["stg", "dds", "cdm"].iter().zip(&files) {
        let manifest = std::fs::read_to_string(file).unwrap();
        assert!(kustomization.contains(&format!("services/{name}.yaml")), "{name}'s pipeline is in the ConfigMap");
        assert!(manifest.contains(&format!("/etc/ingesta/pipelines/{name}.yaml")), "{name} runs its own pipeline");
        assert!(manifest.contains("path: /health") && manifest.contains("path: /ready"), "{name}'s probes");
        assert!(!manifest.contains("password"), "{name}: secrets by reference only");
    }
}
