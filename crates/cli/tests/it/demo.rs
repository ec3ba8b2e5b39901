//! The README's first command: the demo leaves a lake an outside reader opens,
//! with the counts of the generator's manifest; `status` agrees.

use ingesta_testkit::{manifest, read_delta, text};

use crate::workspace;

#[test]
fn demo_lake_opens_in_python_deltalake_with_the_manifest_counts() {
    let ws = workspace();
    let dir = ws.path().join("demo");
    let out = ws.ingesta(&["demo", "--dir", dir.to_str().unwrap(), "--rows", "20000", "--files", "4", "--no-serve"]);
    assert!(out.status.success(), "demo failed: {}\n{}", text(&out.stderr), text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("The lake is at"), "{stdout}");
    assert!(!stdout.contains("MISMATCH"), "{stdout}");

    let lake = dir.join("lake");
    for (table, dataset) in [
        ("iot_bronze", "iot"),
        ("inventory_bronze", "inventory"),
        ("sales_bronze", "sales"),
        ("weather_bronze", "weather"),
    ] {
        let m = manifest(&dir.join("landing").join(dataset));
        let bronze = read_delta(&lake.join(table), &["_source", "_position"], None);
        let quarantine = read_delta(&lake.join("_quarantine").join(table), &["source", "position"], None);
        assert_eq!(bronze.rows, m["valid_rows"].as_u64().unwrap(), "{table} rows");
        assert_eq!(quarantine.rows, m["malformed"].as_u64().unwrap(), "{table} quarantined");
        assert_eq!(bronze.distinct_keys, bronze.rows, "{table}: (_source, _position) is unique");
        for c in ["_ingested_at", "_source", "_position", "_batch_id"] {
            assert!(bronze.columns.iter().any(|x| x == c), "{table} has {c}: {:?}", bronze.columns);
        }
    }

    // silver and gold are there too, and readable from outside
    for table in ["readings", "inventory_current", "sales", "weather_observations", "temperature_hourly", "sales_daily"]
    {
        assert!(read_delta(&lake.join(table), &[], None).rows > 0, "{table} has rows");
    }
    assert!(stdout.contains("temp_avg") && stdout.contains("revenue"), "the demo shows gold: {stdout}");

    // `status --json` reports the same numbers
    let yaml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/farm-iot/ingesta.yaml")).unwrap();
    std::fs::write(ws.pipeline(), yaml).unwrap();
    let out = ws
        .command(&["status", ws.pipeline().to_str().unwrap(), "--json"])
        .env("INGESTA_LAKE", &lake)
        .env("INGESTA_LANDING", dir.join("landing"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let iot = status["tables"].as_array().unwrap().iter().find(|t| t["name"] == "iot_bronze").unwrap();
    let m = manifest(&dir.join("landing/iot"));
    assert_eq!(iot["rows"], m["valid_rows"]);
    assert_eq!(iot["quarantined_rows"], m["malformed"]);
    assert_eq!(iot["layer"], "bronze");
    assert!(iot["version"].as_u64().unwrap() >= 1);
    assert!(iot["files"].as_u64().unwrap() >= 1);
}
