//! The Kafka sink on a real broker: a table's rows published to a topic,
//! keyed, each exactly once through a crash between the flush and the
//! ledger's commit, then read back from the topic by a stream table.

use ingesta_testkit::{Broker, read_delta};

use crate::{iot_pipeline, reading, workspace};

fn pipeline(brokers: &str) -> String {
    let back = format!(
        r#"  back:
    type: kafka
    brokers: {brokers}
    topics: [readings_out]
    group: it-back"#
    );
    let mut p = iot_pipeline(&back, 10_000);
    p.push_str(&format!(
        r#"  readings_back:
    layer: bronze
    input: back
    columns:
      - {{name: device_id, type: string, required: true}}
      - {{name: temperature, type: double}}
sinks:
  readings_out:
    type: kafka
    input: iot_bronze
    brokers: {brokers}
    topic: readings_out
    key: [device_id]
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
    ws.write_pipeline(&pipeline(&broker.address()));
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
