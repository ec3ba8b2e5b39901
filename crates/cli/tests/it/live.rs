//! A rollup is read current to its input's last commit: its stored rows
//! plus its own query over the input rows it has not rolled up yet.

use ingesta_testkit::{manifest, text};

use crate::{iot_pipeline, workspace};

const ROLLUP: &str = r#"  farm_counts:
    layer: gold
    input: iot_bronze
    transform:
      sql: SELECT farm_id, count(*) AS readings, max(temperature) AS t_max FROM input GROUP BY farm_id
    write: {mode: aggregate, key: [farm_id], measures: {readings: sum, t_max: max}}
"#;

#[test]
fn a_rollup_is_read_with_the_input_rows_it_has_not_rolled_up_yet() {
    let ws = workspace();
    let with_rollup = iot_pipeline("", 100_000) + ROLLUP;
    let generate = |sub: &str, seed: &str| {
        let out = ws.landing().join(sub);
        let args =
            ["generate", "iot", "--seed", seed, "--rows", "3000", "--files", "1", "--out", out.to_str().unwrap()];
        let res = ws.ingesta(&args);
        assert!(res.status.success(), "{}", text(&res.stderr));
        manifest(&out)["valid_rows"].as_u64().unwrap()
    };
    let query = |sql: &str| {
        let out = ws.ingesta(&["query", ws.pipeline().to_str().unwrap(), sql, "--format", "csv"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).lines().nth(1).unwrap_or_default().to_string()
    };
    ws.write_pipeline(&with_rollup);
    let first = generate("a", "1");
    ws.run_once();
    // more readings reach bronze by a pipeline without the rollup: it falls behind
    let second = generate("b", "2");
    ws.write_pipeline(&iot_pipeline("", 100_000));
    ws.run_once();
    ws.write_pipeline(&with_rollup);
    let stored = query("SELECT sum(readings) FROM __rollup_farm_counts");
    assert_eq!(stored, first.to_string(), "the stored rollup holds the first file only");
    let total = (first + second).to_string();
    assert_eq!(query("SELECT sum(readings) FROM farm_counts"), total, "stored rows + the tail");
    let max = query("SELECT max(temperature) FROM iot_bronze");
    assert_eq!(query("SELECT max(t_max) FROM farm_counts"), max);
    assert_eq!(query("SELECT count(*) - count(DISTINCT farm_id) FROM farm_counts"), "0", "one row per key");
    // rolled up for real, the same answer
    ws.run_once();
    assert_eq!(query("SELECT sum(readings) FROM farm_counts"), total);
}
