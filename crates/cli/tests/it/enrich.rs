//! Rows enriched from a real Redis (`transform.enrich`): names and a menu
//! element's fields added by key, a missing key quarantined with the key
//! named, a field its type refuses quarantined, and a Redis outage waited
//! out (shown in health) with every row landing once afterwards.

use std::time::Duration;

use ingesta_testkit::{Redis, read_delta, text};

use crate::workspace;

const USERS: usize = 7;
/// The user with no key in Redis.
const GONE: usize = 5;

fn pipeline(url: &str, port: u16) -> String {
    format!(
        r#"pipeline: enrich
lake:
  root: "{{lake}}"
redis:
  url: "{url}"
serve:
  listen: 127.0.0.1:{port}
sources:
  orders:
    type: landing
    path: "{{landing}}"
    settle: 0ms
    poll: 200ms
tables:
  orders_bronze:
    layer: bronze
    input: orders
    columns:
      - {{name: order_id, type: string, required: true}}
      - {{name: user_id, type: string}}
      - {{name: restaurant_id, type: string}}
      - {{name: product_id, type: string}}
  orders_named:
    layer: silver
    input: orders_bronze
    transform:
      select: [order_id, user_id, restaurant_id, product_id]
      enrich:
        - key: "user:{{user_id}}"
          columns: {{user_name: name, login: login}}
        - key: "{{restaurant_id}}"
          columns: {{restaurant_name: name}}
        - key: "{{restaurant_id}}"
          within: menu
          match: {{_id: product_id}}
          columns: {{category: category, price: {{from: price, type: double}}}}
          missing: "null"
          cache: 0s
"#
    )
}

/// Order `i`: user `i % 7`, restaurant `i % 3`, product `i % 5`.
fn orders(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| {
            format!(
                "{{\"order_id\":\"o{i}\",\"user_id\":\"u{}\",\"restaurant_id\":\"r{}\",\"product_id\":\"p{}\"}}\n",
                i % USERS,
                i % 3,
                i % 5
            )
        })
        .collect()
}

/// Users (but `GONE`) and restaurants whose menus hold p0..p3 (p4 on none);
/// restaurant r2's p3 has a price that is not a number.
fn load(redis: &Redis) {
    let mut pairs: Vec<(String, String)> = (0..USERS)
        .filter(|&u| u != GONE)
        .map(|u| (format!("user:u{u}"), format!(r#"{{"_id":"u{u}","name":"Имя {u}","login":"login{u}"}}"#)))
        .collect();
    for r in 0..3 {
        let menu: Vec<String> = (0..4)
            .map(|p| {
                let price = if r == 2 && p == 3 { "\"n/a\"".to_string() } else { format!("{}", 100 * (p + 1)) };
                format!(r#"{{"_id":"p{p}","name":"P{p}","price":{price},"category":"Cat{}"}}"#, p % 2)
            })
            .collect();
        pairs.push((format!("r{r}"), format!(r#"{{"name":"R{r}","menu":[{}]}}"#, menu.join(","))));
    }
    redis.set(&pairs);
}

/// (landed, missing user, bad price) among orders `0..n`.
fn expected(n: usize) -> (u64, u64, u64) {
    let (mut landed, mut gone, mut price) = (0, 0, 0);
    for i in 0..n {
        if i % USERS == GONE {
            gone += 1;
        } else if i % 3 == 2 && i % 5 == 3 {
            price += 1;
        } else {
            landed += 1;
        }
    }
    (landed, gone, price)
}

#[test]
fn rows_are_enriched_from_redis_missing_keys_quarantined_and_an_outage_waited_out() {
    let mut redis = Redis::start();
    load(&redis);
    let ws = workspace();
    let port = ingesta_testkit::free_port();
    ws.write_pipeline(&pipeline(&redis.url(), port));
    let check = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert!(check.status.success(), "{}{}", text(&check.stdout), text(&check.stderr));

    ws.drop_file("a.ndjson", orders(0..700));
    let report = ws.run_once();
    let silver = ws.lake().join("orders_named");
    let (landed, gone, price) = expected(700);
    let view = read_delta(&silver, &["order_id"], Some("user_name,category"));
    assert_eq!((view.rows, view.distinct_keys), (landed, landed), "{report}");
    for c in ["user_name", "login", "restaurant_name", "category", "price"] {
        assert!(view.columns.iter().any(|x| x == c), "column {c} in {:?}", view.columns);
    }
    // o0: user u0, restaurant r0, product p0 (category Cat0); p4 is on no menu
    assert!(view.groups.contains_key("Имя 0|Cat0"), "{:?}", view.groups);
    let no_category: u64 = view.groups.iter().filter(|(k, _)| k.ends_with("|None")).map(|(_, n)| n).sum();
    let p4 = (0..700).filter(|i| i % 5 == 4 && i % USERS != GONE).count() as u64;
    assert_eq!(no_category, p4, "a product on no menu gets a null category: {:?}", view.groups);
    let q = read_delta(&ws.lake().join("_quarantine/orders_named"), &["source", "position"], Some("reason"));
    assert_eq!(q.groups.get("lookup_missing"), Some(&gone), "{:?}", q.groups);
    assert_eq!(q.groups.get("type_error"), Some(&price), "{:?}", q.groups);
    assert_eq!(q.distinct_keys, q.rows, "each row quarantined once");

    // Redis down: the table waits, says so, and lands every row once it is back
    redis.kill();
    ws.drop_file("b.ndjson", orders(700..1500));
    let mut child = ingesta_testkit::spawn_watch(&ws);
    let ready = || -> serde_json::Value {
        reqwest::blocking::get(format!("http://127.0.0.1:{port}/ready"))
            .ok()
            .and_then(|r| r.json().ok())
            .unwrap_or_default()
    };
    let retrying = |h: &serde_json::Value| {
        h["tables"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["table"] == "orders_named" && t["state"] == "retrying"))
    };
    let shown = ingesta_testkit::wait_until(Duration::from_secs(60), || retrying(&ready()));
    let during = ready();
    redis.start_again();
    load(&redis);
    let (landed, gone, price) = expected(1500);
    let caught_up =
        ingesta_testkit::wait_until(Duration::from_secs(60), || read_delta(&silver, &[], None).rows == landed);
    let back = ingesta_testkit::wait_until(Duration::from_secs(30), || ready()["status"] == "ok");
    ingesta_testkit::interrupt(&child);
    assert!(ingesta_testkit::wait_until(Duration::from_secs(30), || child.try_wait().unwrap().is_some()));
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(shown, "health shows the outage: {during}; {stderr}");
    assert!(caught_up, "every row landed once Redis was back; {stderr}");
    assert!(back, "health is ok again: {}", ready());
    assert!(!stderr.contains(&redis.url()), "the Redis URL is not printed");
    let view = read_delta(&silver, &["order_id"], None);
    assert_eq!((view.rows, view.distinct_keys), (landed, landed), "no row twice");
    let q = read_delta(&ws.lake().join("_quarantine/orders_named"), &["source", "position"], Some("reason"));
    assert_eq!(q.groups.get("lookup_missing"), Some(&gone), "{:?}", q.groups);
    assert_eq!(q.groups.get("type_error"), Some(&price), "{:?}", q.groups);
    assert_eq!(q.distinct_keys, q.rows, "each row quarantined once");
    assert!(out.status.success(), "{stderr}");
}

#[test]
fn enrich_mistakes_are_reported_at_their_line() {
    let ws = workspace();
    let validate = |yaml: &str| {
        ws.write_pipeline(yaml);
        let out = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
        assert!(!out.status.success());
        text(&out.stderr)
    };
    let yaml = pipeline("redis://127.0.0.1:1", 1);
    let stderr = validate(&yaml.replace("          match: {_id: product_id}\n", ""));
    assert!(stderr.contains("enrich[2].match") && stderr.contains("`within` needs"), "{stderr}");
    let stderr = validate(&yaml.replace("redis:\n  url: \"redis://127.0.0.1:1\"\n", ""));
    assert!(stderr.contains("enrich") && stderr.contains("has no `redis`"), "{stderr}");
    // found by planning the transform
    let stderr = validate(
        &yaml
            .replace("key: \"user:{user_id}\"", "key: \"user:{customer}\"")
            .replace("columns: {restaurant_name: name}", "columns: {user_id: name}"),
    );
    assert!(
        stderr.contains("tables.orders_named.transform.enrich[0].key") && stderr.contains("`customer`"),
        "{stderr}"
    );
    assert!(stderr.contains("enrich[1].columns.user_id") && stderr.contains("already gives"), "{stderr}");
}
