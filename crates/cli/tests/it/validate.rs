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
