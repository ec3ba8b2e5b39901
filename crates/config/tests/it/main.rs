//! Pipeline files as a user writes them, right and wrong.

use ingesta_config::{ColumnType, Format, load_str};

const GOOD: &str = r#"
pipeline: farm
lake:
  root: ${LAKE:-./lake}
  storage:
    aws_secret_access_key: ${SECRET:-none}
sources:
  iot:
    type: landing
    path: ./landing/iot
    format: ndjson
    settle: 500ms
tables:
  iot_bronze:
    layer: bronze
    input: iot
    columns:
      - {name: device_id, type: string, required: true}
      - {name: ts, type: timestamp, required: true}
      - {name: temperature, type: "decimal(6,2)"}
    partition_by:
      - {column: event_date, from: ts, transform: day}
    target_file_size: 64MiB
"#;

fn env(k: &str) -> Option<String> {
    match k {
        "LAKE" => Some("/data/lake".into()),
        "SECRET" => Some("hunter2".into()),
        "TOKEN" => Some("a-read-token-of-24-chars".into()),
        "PORT" => Some("not-a-number".into()),
        _ => None,
    }
}

#[test]
fn a_good_file_loads_with_defaults_and_env() {
    let p = load_str("p.yaml", GOOD, env).unwrap();
    assert_eq!(p.lake.root, "/data/lake");
    let t = &p.tables["iot_bronze"];
    assert_eq!(t.columns.as_ref().unwrap()[2].ty, ColumnType::Decimal(6, 2));
    assert_eq!(t.target_file_size.0, 64 << 20);
    let ingesta_config::Source::Landing(l) = &p.sources["iot"] else { panic!("a landing source") };
    assert_eq!(l.format, Format::Ndjson);
    assert_eq!(l.settle.0.as_millis(), 500);
    // secrets never show in debug output
    assert!(!format!("{p:?}").contains("hunter2"));
}

#[test]
fn every_mistake_is_reported_with_its_place() {
    let bad = GOOD
        .replace("format: ndjson", "format: xml")
        .replace("type: timestamp, required", "type: timestamp, requird")
        .replace("from: ts", "from: tss");
    let errs = load_str("p.yaml", &bad, env).unwrap_err();
    let text = errs.to_string();
    assert_eq!(errs.0.len(), 2, "{text}");
    // unknown format value, with the accepted ones
    assert!(text.contains("p.yaml:11:13: sources.iot.format: unknown value `xml`"), "{text}");
    assert!(text.contains("ndjson"), "{text}");
    // the table's unknown key
    assert!(text.contains("p.yaml:19:37: tables.iot_bronze.columns[1].requird: unknown key `requird`"), "{text}");
}

#[test]
fn an_unknown_key_is_an_error() {
    let bad = GOOD.replace("    settle: 500ms", "    settle: 500ms\n    colour: blue");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("p.yaml:13:5: sources.iot.colour: unknown key `colour`"), "{text}");
}

#[test]
fn a_wrong_type_names_the_value_and_what_is_accepted() {
    let bad = GOOD.replace("target_file_size: 64MiB", "target_file_size: lots");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("tables.iot_bronze.target_file_size"), "{text}");
    assert!(text.contains("`lots` is not a size; write e.g. 65536, 64KiB"), "{text}");
}

#[test]
fn a_missing_variable_is_reported_and_a_secret_is_never_echoed() {
    let bad = GOOD.replace("${LAKE:-./lake}", "${LAKE_ROOT}").replace("64MiB", "${SECRET}");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("p.yaml:4:9: environment variable `LAKE_ROOT` is not set"), "{text}");
    assert!(text.contains("comes from ${SECRET} and is not shown"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn semantic_mistakes_point_at_the_key() {
    let bad = GOOD.replace("input: iot", "input: iott\n    read: changes").replace("from: ts", "from: tss");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("tables.iot_bronze.read: bronze tables read a source"), "{text}");
    assert!(text.contains("tables.iot_bronze.input: unknown source `iott`; defined sources: iot"), "{text}");
    assert!(text.contains("partition_by[0].from: unknown column `tss`"), "{text}");
}

#[test]
fn a_csv_delimiter_is_one_ascii_character() {
    let bad = GOOD.replace("    format: ndjson", "    format: csv\n    csv: {delimiter: \"§\"}");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("sources.iot.csv.delimiter: `§` cannot be a CSV delimiter"), "{text}");
}

#[test]
fn silver_and_gold_mistakes_point_at_the_key() {
    let bad = format!(
        "{GOOD}{}",
        r#"
  latest:
    layer: silver
    input: iot
    write: {mode: upsert, key: [device_id]}
  latest_by_key:
    layer: silver
    input: iot_bronze
    write: {mode: upsert, key: [device_id, ts], sequence: ts}
  stats:
    layer: gold
    input: latest
    transform: {sql: "SELECT 1", select: [a]}
    write: {mode: aggregate, key: [k], measures: {n: sum, avg_t: "avg(t, n)", users: "count_distinct(n)"},
            delete_when: "k = 1"}
  loop_a:
    layer: silver
    input: loop_b
  loop_b:
    layer: gold
    input: loop_a
"#
    );
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    for want in [
        "tables.latest.input: unknown table `iot`",
        "sources feed bronze tables",
        "tables.latest.write.sequence: upsert needs `sequence`",
        "tables.stats.input: `latest` changes rows in place (write mode upsert)",
        "Read its changes (`read: changes`",
        "tables.stats.write.delete_when: `delete_when` applies to upsert only",
        "tables.stats.transform.sql: `sql` replaces the other steps",
        "tables.stats.write.measures.avg_t: `t` must be a `sum` measure",
        "tables.stats.write.measures.users: `n` must be a `set` measure",
        "tables.loop_a.input: tables read each other in a cycle",
        "tables.latest_by_key.write.sequence: `ts` is a key column",
    ] {
        assert!(text.contains(want), "missing `{want}` in:\n{text}");
    }
}

const KAFKA: &str = r#"
pipeline: shop
lake: {root: ./lake}
sources:
  orders:
    type: kafka
    brokers: ${BROKERS:-localhost:9092}
    topics: [orders]
    start: 2026-11-01T00:00:00Z
    properties:
      security.protocol: SASL_SSL
      sasl.password: ${SECRET:-none}
  sales:
    type: kafka
    brokers: localhost:9092
    pattern: "sales.*"
    format: avro
    properties: {group.id: mine}
tables:
  orders_raw: {layer: bronze, input: orders}
  sales_raw: {layer: bronze, input: sales}
"#;

#[test]
fn kafka_sources_load_and_their_mistakes_are_named() {
    let errs = load_str("p.yaml", KAFKA, env).unwrap_err();
    let text = errs.to_string();
    assert!(text.contains("sources.sales.pattern: pattern `sales.*` must start with `^`"), "{text}");
    assert!(text.contains("sources.sales.schema_registry: `format: avro` needs"), "{text}");
    assert!(text.contains("sources.sales.properties.group.id: `group.id` is set by Ingesta"), "{text}");
    assert!(text.contains("tables.sales_raw.columns: declare `columns` for Avro topics"), "{text}");
    assert!(!text.contains("hunter2"), "a secret was printed: {text}");
    let good = KAFKA
        .replace("sales.*", "^sales.*")
        .replace("format: avro\n    properties: {group.id: mine}", "format: string\n    start: latest");
    let p = load_str("p.yaml", &good, env).unwrap();
    let ingesta_config::Source::Kafka(k) = &p.sources["orders"] else { panic!("a kafka source") };
    assert_eq!(k.start, ingesta_config::Start::At(1_793_491_200_000));
    assert_eq!(k.properties["sasl.password"].expose(), "hunter2");
    assert!(!format!("{k:?}").contains("hunter2"));
    let bad = KAFKA.replace("2026-11-01T00:00:00Z", "yesterday");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("p.yaml:9:12: sources.orders.start: `yesterday` is not a start"), "{text}");
}

const HTTP: &str = r#"pipeline: web
lake: {root: s3://bucket/lake}
sources:
  traffic:
    type: http
    listen: "localhost:80"
    token: ""
  "bad name":
    type: http
    token: ${SECRET}
    wal: /var/lib/ingesta/wal
tables:
  traffic_raw: {layer: bronze, input: traffic}
"#;

#[test]
fn http_sources_load_and_their_mistakes_are_named() {
    let text = load_str("p.yaml", HTTP, env).unwrap_err().to_string();
    assert!(text.contains("sources.traffic.listen: `localhost:80` is not an address"), "{text}");
    assert!(text.contains("sources.traffic.token: the token is empty"), "{text}");
    assert!(text.contains("sources.traffic.wal: the lake is an object store"), "{text}");
    assert!(text.contains("source `bad name` is a URL path"), "{text}");
    let good = HTTP
        .replace("\"localhost:80\"", "0.0.0.0:8088")
        .replace("token: \"\"", "token: ${SECRET}\n    wal: w")
        .replace("\"bad name\"", "other");
    let p = load_str("p.yaml", &good, env).unwrap();
    let ingesta_config::Source::Http(h) = &p.sources["traffic"] else { panic!("an http source") };
    assert_eq!((h.token.expose(), h.max_body_bytes.0), ("hunter2", 16 << 20));
    assert!(!format!("{h:?}").contains("hunter2"));
}

const REST: &str = r#"
pipeline: p
lake: {root: ./lake}
sources:
  orders:
    type: rest
    url: "ftp://api.example.com/v1/orders?key=${SECRET}"
    headers: {Authorization: "Bearer ${SECRET}"}
    records: data.items
    pagination: {cursor: {param: after, field: ""}}
    incremental: {param: updated_since, field: updated_at}
    attempts: 0
tables:
  orders_raw: {layer: bronze, input: orders}
"#;

#[test]
fn rest_sources_load_and_their_mistakes_are_named() {
    let text = load_str("p.yaml", REST, env).unwrap_err().to_string();
    assert!(text.contains("sources.orders.url: expected an http:// or https:// URL"), "{text}");
    assert!(text.contains("sources.orders.attempts: must be at least 1"), "{text}");
    assert!(text.contains("sources.orders.pagination.cursor.field: must name"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let good = REST.replace("ftp:", "https:").replace("field: \"\"", "field: next").replace("attempts: 0", "poll: 5m");
    let p = load_str("p.yaml", &good, env).unwrap();
    let ingesta_config::Source::Rest(r) = &p.sources["orders"] else { panic!("a rest source") };
    let cursor = ingesta_config::Pagination::Cursor { param: "after".into(), field: "next".into() };
    assert_eq!((&r.pagination, r.records.as_str(), r.poll.0.as_secs(), r.attempts), (&cursor, "data.items", 300, 8));
    assert_eq!(r.headers["Authorization"].expose(), "Bearer hunter2");
    assert!(!format!("{r:?}").contains("hunter2"), "secrets are never printed");
    let paged = good.replace("{cursor: {param: after, field: next}}", "{page: {param: p, size_param: n, size: 50}}");
    let p = load_str("p.yaml", &paged, env).unwrap();
    let ingesta_config::Source::Rest(r) = &p.sources["orders"] else { panic!("a rest source") };
    let page =
        ingesta_config::Pagination::Page { param: "p".into(), size_param: Some("n".into()), size: Some(50), start: 1 };
    assert_eq!(r.pagination, page);
}

#[test]
fn sinks_load_and_their_mistakes_are_named() {
    let base = "pipeline: p\nlake: {root: ./lake}\nsources:\n  s: {type: landing, path: ./in}\ntables:\n  t: {layer: bronze, input: s}\n";
    let unknown = format!("{base}sinks:\n  u: {{type: pigeon}}\n");
    let text = load_str("p.yaml", &unknown, env).unwrap_err().to_string();
    assert!(text.contains("sinks.u.type: unknown sink type `pigeon`"), "{text}");
    let bad = format!("{base}sinks:\n  t: {{type: kafka, input: nope, brokers: '', topic: out}}\n");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("sinks.t.input: unknown table `nope`"), "{text}");
    assert!(text.contains("sinks.t.brokers: no brokers"), "{text}");
    assert!(text.contains("`t` is also a table's name"), "{text}");
    let avro = format!("{base}sinks:\n  a: {{type: kafka, input: t, brokers: 'k:9092', topic: a, format: avro}}\n");
    let text = load_str("p.yaml", &avro, env).unwrap_err().to_string();
    assert!(text.contains("sinks.a.schema_registry: `format: avro` needs"), "{text}");
    let good = format!("{base}sinks:\n  out: {{type: kafka, input: t, brokers: 'k:9092', topic: t.out, key: [id]}}\n");
    let p = load_str("p.yaml", &good, env).unwrap();
    let ingesta_config::Sink::Kafka(k) = &p.sinks["out"];
    assert_eq!((k.topic.as_str(), k.key.clone()), ("t.out", vec!["id".to_string()]));
    assert_eq!(k.format, ingesta_config::SinkFormat::Json, "JSON unless told");
}

#[test]
fn a_serve_block_loads_and_its_mistakes_are_named() {
    let base = "pipeline: p\nlake: {root: ./lake}\n";
    let good = format!("{base}serve:\n  listen: 127.0.0.1:9464\n  read_token: ${{TOKEN}}\n  max_rows: 500\n");
    let p = load_str("p.yaml", &good, env).unwrap();
    let serve = p.serve.expect("a serve block");
    assert_eq!((serve.listen.as_str(), serve.max_rows), ("127.0.0.1:9464", 500));
    assert_eq!(serve.cache.0, 64 << 20, "the answer cache's default");
    assert!(!format!("{serve:?}").contains(&env("TOKEN").unwrap()), "the token is never shown");
    assert!(load_str("p.yaml", base, env).unwrap().serve.is_none(), "optional");
    let bad = format!("{base}serve:\n  listen: nowhere\n  read_token: x\n  tokn: x\n");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("serve") && text.contains("tokn"), "unknown keys are named: {text}");
    let bad = format!("{base}serve:\n  listen: nowhere\n  admin_token: ${{SECRET}}\n  max_rows: 0\n");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("serve.listen: `nowhere` is not an address"), "{text}");
    assert!(text.contains("serve.admin_token: a token must have at least 16 characters"), "{text}");
    assert!(!text.contains(&env("SECRET").unwrap()), "{text}");
    assert!(text.contains("serve.max_rows: must be at least 1"), "{text}");
}

const VAULT: &str = r#"
pipeline: dwh
lake: {root: ./lake}
sources:
  orders: {type: landing, path: ./landing}
tables:
  lines:
    layer: bronze
    input: orders
    columns:
      - {name: order_id, type: string}
      - {name: user_id, type: string}
      - {name: status, type: string}
      - {name: sent, type: timestamp}
vaults:
  dds:
    input: lines
    load_dt: sent
    load_src: shop
    hubs:
      h_order: {key: order_id}
      h_user: {key: user_id, as: user}
    links:
      l_order_user: [h_order, h_user]
    satellites:
      s_order_status: {hub: h_order, columns: {status: status}}
"#;

#[test]
fn a_vault_expands_into_hubs_links_and_satellites() {
    let p = load_str("p.yaml", VAULT, env).unwrap();
    let names: Vec<&str> = p.tables.keys().map(String::as_str).collect();
    assert_eq!(names, ["h_order", "h_user", "l_order_user", "lines", "s_order_status"]);
    let hub = &p.tables["h_user"];
    let sql = hub.transform.sql.as_deref().unwrap();
    assert!(sql.contains("dv_hash('uuid5', user_id) AS h_user_pk, user_id AS user"), "{sql}");
    assert_eq!(hub.write.key, ["h_user_pk"]);
    let link = p.tables["l_order_user"].transform.sql.as_deref().unwrap();
    assert!(link.contains("dv_hash('uuid5', order_id, user_id) AS hk_order_user_pk"), "{link}");
    let sat = &p.tables["s_order_status"];
    let sql = sat.transform.sql.as_deref().unwrap();
    assert!(sql.contains("dv_hashdiff('uuid5', order_id, status) AS hk_order_status_hashdiff"), "{sql}");
    assert_eq!(sat.write.key, ["hk_order_status_hashdiff"]);
    assert!(sql.contains("min(sent) AS load_dt, 'shop' AS load_src"), "{sql}");
}

#[test]
fn a_wrong_hub_in_a_vault_is_shown_at_its_line() {
    let bad = VAULT.replace("[h_order, h_user]", "[h_order, h_customer]").replace("hub: h_order,", "hub: h_orders,");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(
        text.contains("p.yaml:24:") && text.contains("unknown hub `h_customer`; this vault's hubs: h_order, h_user"),
        "{text}"
    );
    assert!(text.contains("p.yaml:26:") && text.contains("unknown hub `h_orders`"), "{text}");
    let clash = VAULT.replace("  lines:\n", "  h_user:\n    layer: bronze\n    input: orders\n  lines:\n");
    let text = load_str("p.yaml", &clash, env).unwrap_err().to_string();
    assert!(text.contains("`h_user` is also a table of `tables`"), "{text}");
}

#[test]
fn alerts_and_retries_load_and_their_mistakes_are_named() {
    let good = GOOD.to_string()
        + "    retry: {attempts: 5, backoff: 2s}\nalerts:\n  stale:\n    on: freshness\n    tables: [iot_bronze]\n    over: 2h\n\
           \x20   webhook: https://hooks.example.com/T0/B0/${TOKEN}\n    format: slack\n    repeat: 1h\n";
    let p = load_str("p.yaml", &good, env).unwrap();
    let t = &p.tables["iot_bronze"];
    assert_eq!((t.retry.attempts, t.retry.backoff.0.as_secs(), t.retry.max_backoff.0.as_secs()), (5, 2, 10));
    let a = &p.alerts["stale"];
    assert_eq!(a.threshold(), Ok(ingesta_config::Threshold::Duration(std::time::Duration::from_secs(7200))));
    assert!(!format!("{a:?}").contains("a-read-token"), "the webhook is a secret");
    let bad = good
        .replace("over: 2h", "over: 5%")
        .replace("tables: [iot_bronze]", "tables: [nope]")
        .replace("https://hooks.example.com/T0/B0/", "hooks.example.com/")
        .replace("attempts: 5", "attempts: 0");
    let text = load_str("p.yaml", &bad, env).unwrap_err().to_string();
    assert!(text.contains("alerts.stale.over: `5%` is not a duration"), "{text}");
    assert!(text.contains("alerts.stale.tables[0]: no table `nope`"), "{text}");
    assert!(text.contains("alerts.stale.webhook: the webhook must be an http:// or https:// URL"), "{text}");
    assert!(text.contains("tables.iot_bronze.retry.attempts: at least 1"), "{text}");
    assert!(!text.contains("a-read-token"), "{text}");
}
