//! The Kafka sink on a real broker: a table's rows published to a topic,
//! keyed, each exactly once through a crash between the flush and the
//! ledger's commit, then read back from the topic by a stream table; and in
//! Avro through a Schema Registry, read back typed.

use ingesta_testkit::{Broker, SchemaRegistry, read_delta, text};

use crate::{iot_pipeline, reading, workspace};

/// `iot_bronze` published to `readings_out` (in Avro when a registry is
/// given) and read back into `readings_back`.
fn pipeline(brokers: &str, registry: Option<&str>) -> String {
    let avro =
        registry.map(|url| format!("\n    format: avro\n    schema_registry: {{url: \"{url}\"}}")).unwrap_or_default();
    let back = format!(
        r#"  back:
    type: kafka
    brokers: {brokers}
    topics: [readings_out]
    group: it-back{avro}"#
    );
    let mut p = iot_pipeline(&back, 10_000);
    p.push_str(&format!(
        r#"  readings_back:
    layer: bronze
    input: back
    columns:
      - {{name: device_id, type: string, required: true}}
      - {{name: temperature, type: double}}
      - {{name: ts, type: timestamp}}
sinks:
  readings_out:
    type: kafka
    input: iot_bronze
    brokers: {brokers}
    topic: readings_out
    key: [device_id]{avro}
"#
    ));
    p
}

fn ndjson(from: usize, to: usize) -> String {
    (from..to).map(|i| reading(i) + "\n").collect()
}

#[test]
fn a_table_is_published_once_through_a_crash_and_read_back() {
    let broker = Broker::start();
    broker.create_topic("readings_out", 3);
    let ws = workspace();
    ws.write_pipeline(&pipeline(&broker.address(), None));
    let file = ws.pipeline();
    let file = file.to_str().unwrap();

    ws.drop_file("a.ndjson", ndjson(0, 1500));
    let crashed = ws.command(&["run", file, "--once"]).env("INGESTA_FAILPOINT", "sink-after-flush").output().unwrap();
    let said = ingesta_testkit::text(&crashed.stderr);
    assert!(
        said.contains("fail point `sink-after-flush` reached"),
        "the run stops after the flush, before the ledger: {said}"
    );

    ws.drop_file("b.ndjson", ndjson(1500, 2500));
    let out = ws.ingesta(&["run", file, "--once"]);
    assert!(out.status.success(), "{}", ingesta_testkit::text(&out.stderr));
    // the stream table ran before the sink in that run: one more reads the rest back
    let out = ws.ingesta(&["run", file, "--once"]);
    assert!(out.status.success(), "{}", ingesta_testkit::text(&out.stderr));

    let back = read_delta(&ws.lake().join("readings_back"), &["device_id"], Some("_partition"));
    assert_eq!(back.rows, 2500, "every row once: {back:?}");
    assert_eq!(back.distinct_keys, 2500);
    assert_eq!(back.groups.len(), 3, "keys spread over the partitions: {:?}", back.groups);
    let keyed = read_delta(&ws.lake().join("readings_back"), &["_key", "device_id"], None);
    assert_eq!(keyed.distinct_keys, 2500, "the key is the device id");
}

#[test]
fn a_table_is_published_in_avro_and_read_back_typed() {
    let broker = Broker::start();
    broker.create_topic("readings_out", 2);
    let registry = SchemaRegistry::start();
    let ws = workspace();
    ws.write_pipeline(&pipeline(&broker.address(), Some(&registry.url)));
    let file = ws.pipeline();
    let file = file.to_str().unwrap();
    ws.drop_file("a.ndjson", ndjson(0, 700));
    for _ in 0..2 {
        let out = ws.ingesta(&["run", file, "--once"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // the columns and their types came through the registry, not a schema of ours
    let script = r#"
import json, os, sys, deltalake
t = deltalake.DeltaTable(sys.argv[1]).to_pyarrow_table()
q = deltalake.DeltaTable(sys.argv[2]).to_pyarrow_table() if os.path.exists(sys.argv[2]) else t.slice(0, 0)
ts = t.sort_by("device_id")["ts"]
print(json.dumps({"rows": t.num_rows, "quarantined": q.num_rows, "ts": str(t.schema.field("ts").type),
                  "first": ts[0].as_py().isoformat(), "rescued": json.loads(t["_rescued"][0].as_py())}), flush=True)
os._exit(0)
"#;
    let (back, quarantine) = (ws.lake().join("readings_back"), ws.lake().join("_quarantine/readings_back"));
    let out = std::process::Command::new(ingesta_testkit::python())
        .args(["-c", script])
        .arg(&back)
        .arg(&quarantine)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["rows"].as_u64(), v["quarantined"].as_u64()), (Some(700), Some(0)), "{v}");
    assert!(v["ts"].as_str().unwrap().starts_with("timestamp[us"), "{v}");
    assert_eq!(v["first"], "2026-11-01T00:00:00+00:00", "{v}");
    assert_eq!(v["rescued"]["farm_id"], "farm-001", "the columns the back table does not name: {v}");
    assert_eq!(v["rescued"]["battery"], 80, "{v}");
}
