//! Reading a table's changes downstream (`read: changes`): a silver table
//! upserted with deletes (`delete_when`), mirrored by a gold upsert of its
//! change feed and summed by a gold aggregate of it, both checked against
//! the silver table read by Python's deltalake, over several runs. The
//! readers come in the second run: the silver table keeps no feed until
//! then, and they start from a snapshot of its rows.

use ingesta_testkit::{Workspace, read_delta, text};

use crate::workspace;

const PIPELINE: &str = r#"pipeline: changes
lake: {root: "{lake}"}
sources:
  item_files: {type: landing, path: "{landing}", format: csv, settle: 0ms}
tables:
  items_bronze:
    layer: bronze
    input: item_files
    columns:
      - {name: id, type: string, required: true}
      - {name: qty, type: bigint, required: true}
      - {name: seq, type: bigint, required: true}
      - {name: gone, type: boolean}
  items:
    layer: silver
    input: items_bronze
    transform: {select: [id, qty, seq, gone]}
    write: {mode: upsert, key: [id], sequence: seq, delete_when: "gone"}
  items_mirror:
    layer: gold
    input: items
    read: changes
    transform:
      filter: "change <> 'update_preimage'"   # filter comes after select
      select: [id, qty, {name: change, expr: _change_type}, {name: version, expr: _commit_version}]
    # a delete carries the deleted row's values: the change's version orders it, not `seq`
    write: {mode: upsert, key: [id], sequence: version, delete_when: "change = 'delete'"}
  items_total:
    layer: gold
    input: items
    read: changes
    transform:
      sql: |
        SELECT 'all' AS scope,
               sum(CASE WHEN _change_type IN ('insert', 'update_postimage') THEN qty ELSE -qty END) AS qty,
               sum(CASE _change_type WHEN 'insert' THEN 1 WHEN 'delete' THEN -1 ELSE 0 END) AS items
        FROM input GROUP BY 1
    write: {mode: aggregate, key: [scope], measures: {qty: sum, items: sum}}
"#;

/// (id, qty) rows of a table, read by Python's deltalake, sorted.
fn items(ws: &Workspace, table: &str) -> Vec<(String, i64)> {
    let view = read_delta(&ws.lake().join(table), &["id"], Some("id,qty"));
    assert_eq!(view.rows, view.distinct_keys, "{table}: one row per id");
    let mut rows: Vec<(String, i64)> = view
        .groups
        .keys()
        .map(|k| {
            let (id, qty) = k.split_once('|').unwrap();
            (id.to_string(), qty.parse().unwrap())
        })
        .collect();
    rows.sort();
    rows
}

/// Whether a table's latest metadata turns its change feed on.
fn keeps_feed(ws: &Workspace, table: &str) -> bool {
    let log = ws.lake().join(table).join("_delta_log");
    let mut commits: Vec<_> = std::fs::read_dir(&log).unwrap().map(|e| e.unwrap().path()).collect();
    commits.retain(|p| p.extension().is_some_and(|e| e == "json"));
    commits.sort();
    let mut lines = commits
        .iter()
        .rev()
        .flat_map(|p| std::fs::read_to_string(p).unwrap().lines().map(String::from).collect::<Vec<_>>());
    let last = lines.find(|l| l.contains("\"metaData\"")).unwrap();
    last.contains("\"delta.enableChangeDataFeed\":\"true\"")
}

#[test]
fn a_mirror_and_a_total_follow_an_upserted_tables_changes_with_deletes() {
    let ws = workspace();
    // the first run has no reader of the silver table's changes
    let (first, _) = PIPELINE.split_once("  items_mirror:").unwrap();
    ws.write_pipeline(first);
    let out = ws.ingesta(&["validate", ws.pipeline().to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let rounds = [
        "id,qty,seq,gone\na,10,1,false\nb,20,1,false\nc,30,1,false\nz,1,1,true\n",
        // a: updated; b: deleted; c: an older version (ignored); d: new and updated in the same file
        "id,qty,seq,gone\na,11,2,false\nb,0,2,true\nc,99,0,false\nd,40,1,false\nd,41,2,false\n",
        // b comes back (newer than its delete); d: deleted by an older row (ignored); e: new
        "id,qty,seq,gone\nb,25,3,false\nd,0,1,true\ne,50,1,false\n",
    ];
    let rows = |r: &[(&str, i64)]| r.iter().map(|(id, q)| (id.to_string(), *q)).collect::<Vec<_>>();
    let want = [
        rows(&[("a", 10), ("b", 20), ("c", 30)]),
        rows(&[("a", 11), ("c", 30), ("d", 41)]),
        rows(&[("a", 11), ("b", 25), ("c", 30), ("d", 41), ("e", 50)]),
    ];
    for (i, (file, want)) in rounds.iter().zip(&want).enumerate() {
        ws.drop_file(&format!("items-{i}.csv"), file);
        ws.run_once();
        assert_eq!(&items(&ws, "items"), want, "round {i}: silver");
        if i == 0 {
            assert!(!keeps_feed(&ws, "items"), "no table reads its changes: no feed");
            ws.write_pipeline(PIPELINE);
            continue;
        }
        assert!(keeps_feed(&ws, "items"), "its readers turned its feed on");
        assert_eq!(&items(&ws, "items_mirror"), want, "round {i}: the mirror of its changes");
        let total = read_delta(&ws.lake().join("items_total"), &[], Some("qty,items"));
        let sum = format!("{}|{}", want.iter().map(|w| w.1).sum::<i64>(), want.len());
        assert_eq!(total.groups.keys().collect::<Vec<_>>(), vec![&sum], "round {i}: the total of its changes");
    }
    // a rerun reads no change twice
    let again = ws.run_once();
    let commits: u64 = again["tables"].as_array().unwrap().iter().map(|t| t["commits"].as_u64().unwrap()).sum();
    assert_eq!(commits, 0, "{again}");
}
