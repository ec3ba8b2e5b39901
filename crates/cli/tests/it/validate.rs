//! `ingesta validate` and `run` on broken pipeline files: the file, line,
//! column and key of every mistake, exit code 1, nothing run.

use ingesta_testkit::text;

use crate::{iot_pipeline, workspace};

#[test]
fn validate_accepts_the_examples() {
    let ws = workspace();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/farm-iot/ingesta.yaml");
    let out = ws.ingesta(&["validate", example]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok: pipeline `farm-iot`: 4 sources, 11 tables"), "{}", text(&out.stdout));
}

#[test]
fn validate_points_at_every_mistake() {
    let ws = workspace();
    let yaml = iot_pipeline("    colour: blue", 1000)
        .replace("type: double, required: true", "type: dubble, required: true")
        .replace("root: \"{lake}\"", "root: ${LAKE_ROOT_NOT_SET}");
    ws.write_pipeline(&yaml);
    let out = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let file = ws.pipeline().display().to_string();
    assert!(err.contains(&format!("{file}:3:9: environment variable `LAKE_ROOT_NOT_SET` is not set")), "{err}");
    assert!(err.contains(&format!("{file}:9:5: sources.iot.colour: unknown key `colour`")), "{err}");
    assert!(err.contains("tables.iot_bronze.columns[3].type: unknown column type `dubble`"), "{err}");
    assert!(err.contains("3 mistakes in"), "{err}");
    // run refuses too, with the same report, and creates nothing
    let out = ws.ingesta(&["run", ws.pipeline().to_str().unwrap(), "--once"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown key `colour`"));
    assert!(!ws.lake().exists());
}

#[test]
fn a_wrong_type_names_the_value_and_what_is_accepted() {
    let ws = workspace();
    ws.write_pipeline(&iot_pipeline("", 1000).replace("max_rows: 1000", "max_rows: lots"));
    let out = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("tables.iot_bronze.batch.max_rows: invalid type: string \"lots\", expected usize"), "{err}");
}

#[test]
fn report_mistakes_are_reported_at_their_line() {
    let ws = workspace();
    let reports = "reports:
  by_farm:
    sql: SELECT farm_id, count(*) AS n FROM iot_bronze WHERE farm_id = $farm AND ts > $since GROUP BY farm_id
    params:
      - {name: farm, type: string, default: farm-001}
      - {name: limit, type: int, default: ten}
    chart: {type: bar, x: farm_id, y: [n]}
";
    ws.write_pipeline(&(iot_pipeline("", 1000) + reports));
    let out = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let at = |key: &str, what: &str| said_at(&ws, &err, key, what);
    at("- {name: limit", "`ten` is not an integer");
    at("- {name: limit", "`limit` is not used in the query");
    at("sql: SELECT farm_id", "`$since`, which is not a declared parameter");

    // a well-formed report is planned against the tables' columns
    let planned = "reports:
  unknown_column:
    sql: SELECT colour FROM iot_bronze WHERE farm_id = $farm
    params:
      - {name: farm, type: enum, values: [a, b]}
    chart: {type: line, x: ts, y: [colour]}
";
    ws.write_pipeline(&(iot_pipeline("", 1000) + planned));
    let out = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    said_at(&ws, &err, "sql: SELECT colour", "colour");
}

/// `err` has a line at the pipeline line starting with `key` that says `what`.
fn said_at(ws: &ingesta_testkit::Workspace, err: &str, key: &str, what: &str) {
    let file = ws.pipeline().display().to_string();
    let text = std::fs::read_to_string(ws.pipeline()).unwrap();
    let line = 1 + text.lines().position(|l| l.trim_start().starts_with(key)).unwrap();
    let expected = format!("{file}:{line}:");
    assert!(err.lines().any(|l| l.starts_with(&expected) && l.contains(what)), "{what} at {expected}\n{err}");
}
