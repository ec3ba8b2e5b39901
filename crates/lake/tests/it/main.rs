//! The lake honours the table contract: rows and positions land together,
//! positions survive reopening, a commit may carry only positions, and the
//! key-based modes (insert-if-absent, upsert, delete, counter merge) hold.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ingesta_core::{TableStore, WriteMode};
use ingesta_lake::{Lake, LakeTable};
use ingesta_testkit::Rng;

fn schema() -> Schema {
    Schema::new(vec![Field::new("id", DataType::Utf8, true), Field::new("n", DataType::Int64, true)])
}

fn batch(ids: &[&str]) -> RecordBatch {
    let n: Vec<i64> = (0..ids.len() as i64).collect();
    RecordBatch::try_new(
        Arc::new(schema()),
        vec![Arc::new(StringArray::from(ids.to_vec())), Arc::new(Int64Array::from(n))],
    )
    .unwrap()
}

/// A lake in a temporary folder (kept while the folder lives).
fn temp_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().join("lake").to_str().unwrap(), Default::default()).unwrap();
    (dir, lake)
}

async fn table(lake: &Lake) -> LakeTable {
    LakeTable::open_or_create(lake, "t", &lake.table_url("t"), &schema(), &[], "test").await.unwrap()
}

#[tokio::test]
async fn rows_and_positions_commit_together_and_survive_reopening() {
    let (_dir, lake) = temp_lake();
    let mut t = table(&lake).await;
    assert_eq!(t.position("file-a").await.unwrap(), None);

    let mut s = t.begin(&WriteMode::Append).unwrap();
    t.stage(&mut s, batch(&["a", "b"])).await.unwrap();
    t.stage(&mut s, batch(&["c"])).await.unwrap();
    // staged rows are not visible yet
    assert_eq!(t.stats().unwrap().rows, 0);
    let r = t.commit(s, vec![("file-a".into(), 7), ("file-b".into(), 3)], vec![]).await.unwrap();
    assert_eq!(r.rows, 3);

    // a commit with positions only (an empty file, a fully quarantined chunk)
    let s = t.begin(&WriteMode::Append).unwrap();
    t.commit(s, vec![("file-c".into(), 1)], vec![]).await.unwrap();

    let again = LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().expect("exists");
    assert_eq!(again.position("file-a").await.unwrap(), Some(7));
    assert_eq!(again.position("file-b").await.unwrap(), Some(3));
    assert_eq!(again.position("file-c").await.unwrap(), Some(1));
    let stats = again.stats().unwrap();
    assert_eq!((stats.rows, stats.version), (3, 2));
    assert_eq!(stats.files as usize, again.file_uris().unwrap().len());
}

async fn append(t: &mut LakeTable, ids: &[&str]) {
    let mut s = t.begin(&WriteMode::Append).unwrap();
    t.stage(&mut s, batch(ids)).await.unwrap();
    t.commit(s, vec![], vec![]).await.unwrap();
}

#[tokio::test]
async fn a_refresh_reads_new_commits_and_a_replaced_table_afresh() {
    let (_dir, lake) = temp_lake();
    let mut writer = table(&lake).await;
    append(&mut writer, &["a"]).await;
    let mut reader = LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().expect("exists");
    reader.refresh().await.unwrap();
    let first_id = reader.table_id().unwrap();

    append(&mut writer, &["b", "c"]).await;
    reader.refresh().await.unwrap();
    assert_eq!((reader.version(), reader.stats().unwrap().rows), (2, 3));

    // deleted and created again (a rebuild), with more commits than before:
    // replaying its versions 3.. over the old table would mix the two
    writer.destroy().await.unwrap();
    let mut writer = table(&lake).await;
    for id in ["x", "y", "z", "w"] {
        append(&mut writer, &[id]).await;
    }
    reader.refresh().await.unwrap();
    assert_ne!(reader.table_id().unwrap(), first_id);
    assert_eq!((reader.version(), reader.stats().unwrap().rows), (4, 4));
    assert_eq!(reader.file_uris().unwrap().len(), 4);
}

/// An open takes the state another handle of the process read or committed,
/// but not once another process has replaced the table (a rebuild): the
/// commit file it was read up to is another file then.
#[tokio::test]
async fn an_open_takes_the_process_state_unless_the_table_was_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let lake = Lake::new(root.to_str().unwrap(), Default::default()).unwrap();
    let mut writer = table(&lake).await;
    append(&mut writer, &["a"]).await;
    let reader = LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().expect("exists");
    assert_eq!((reader.version(), reader.stats().unwrap().rows), (1, 1));
    append(&mut writer, &["b"]).await;
    let reader = LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().expect("exists");
    assert_eq!((reader.version(), reader.stats().unwrap().rows), (2, 2), "the commit after the offered state");
    let first_id = reader.table_id().unwrap();

    // another process (its own lake) deletes and creates the table again
    let other = Lake::new(root.to_str().unwrap(), Default::default()).unwrap();
    table(&other).await.destroy().await.unwrap();
    let mut again = table(&other).await;
    for id in ["x", "y", "z"] {
        append(&mut again, &[id]).await;
    }
    let reader = LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().expect("exists");
    assert_ne!(reader.table_id().unwrap(), first_id, "the new table, not the state this process had");
    assert_eq!((reader.version(), reader.stats().unwrap().rows), (3, 3));
}

/// A deferred commit returns once its commit file is written: other readers
/// see its rows at once; the writer's state moves at `settle`, which its next
/// commit and refresh run first.
#[tokio::test]
async fn a_deferred_commit_is_in_the_table_before_the_writer_state_settles() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let lake = Lake::new(root.to_str().unwrap(), Default::default()).unwrap();
    let mut writer = table(&lake).await.with_deferred_state(true);
    append(&mut writer, &["a"]).await;
    append(&mut writer, &["b", "c"]).await; // settles the first one before it commits
    let other = Lake::new(root.to_str().unwrap(), Default::default()).unwrap();
    let reader = LakeTable::open(&other, "t", &other.table_url("t")).await.unwrap().expect("exists");
    assert_eq!((reader.version(), reader.stats().unwrap().rows), (2, 3), "both commits landed");
    writer.settle().await.unwrap();
    assert_eq!((writer.version(), writer.stats().unwrap().rows), (2, 3));
    append(&mut writer, &["d"]).await;
    writer.refresh().await.unwrap();
    assert_eq!((writer.version(), writer.stats().unwrap().rows), (3, 4));
    writer.settle().await.unwrap(); // nothing left to settle
    assert_eq!(writer.version(), 3);
}

/// A reader of appends follows the log: it reads the new commits' files
/// without moving its state, until a commit changes the table's metadata,
/// the table is replaced, or it has followed ten commits.
#[tokio::test]
async fn a_reader_of_appends_follows_the_log_until_the_metadata_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let lake = Lake::new(root.to_str().unwrap(), Default::default()).unwrap();
    let mut reader = {
        let mut t = table(&lake).await;
        append(&mut t, &["a"]).await;
        LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().expect("exists")
    };
    // another process writes: nothing published here, only the log
    let other = Lake::new(root.to_str().unwrap(), Default::default()).unwrap();
    let mut writer = LakeTable::open(&other, "t", &other.table_url("t")).await.unwrap().expect("exists");
    append(&mut writer, &["b"]).await;
    append(&mut writer, &["c", "d"]).await;
    reader.follow().await.unwrap();
    assert_eq!((reader.version(), reader.tip()), (1, 3), "followed, the state where it was");
    let range = reader.appended_since(1, None, u64::MAX).await.unwrap();
    assert_eq!((range.after, range.to, range.files.len()), (1, 3, 2));
    let rows: i64 = {
        use ingesta_lake::datafusion::prelude::SessionContext;
        let ctx = SessionContext::new();
        reader.delta().update_datafusion_session(&ctx.state()).unwrap();
        ctx.register_table("f", reader.files_rows(range.to, &range.files).await.unwrap()).unwrap();
        let b = ctx.sql("SELECT count(*) FROM f").await.unwrap().collect().await.unwrap();
        b[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
    };
    assert_eq!(rows, 3, "the followed commits' rows");

    // a new column: the state moves to it
    writer.add_columns(&[Field::new("extra", DataType::Utf8, true)]).await.unwrap();
    reader.follow().await.unwrap();
    assert_eq!((reader.version(), reader.tip()), (4, 4));
    assert!(reader.arrow_schema().unwrap().field_with_name("extra").is_ok());

    // ten commits followed: the state moves too
    for i in 0..12 {
        let s = writer.begin(&WriteMode::Append).unwrap();
        writer.commit(s, vec![(format!("p{i}"), i)], vec![]).await.unwrap();
    }
    reader.follow().await.unwrap();
    assert_eq!((reader.version(), reader.tip()), (16, 16), "the state moved after ten commits followed");

    // replaced by another process: read afresh
    let first_id = reader.table_id().unwrap();
    writer.destroy().await.unwrap();
    let mut again = table(&other).await;
    append(&mut again, &["x"]).await;
    reader.follow().await.unwrap();
    assert_ne!(reader.table_id().unwrap(), first_id);
    assert_eq!((reader.version(), reader.tip(), reader.stats().unwrap().rows), (1, 1, 1));
}

/// The vacuum leaves the time it ran beside the log, for upkeep in later processes.
#[tokio::test]
async fn a_vacuum_is_remembered_in_the_lake() {
    let (_dir, lake) = temp_lake();
    let mut t = table(&lake).await;
    append(&mut t, &["a"]).await;
    assert_eq!(t.vacuumed_at().await.unwrap(), None);
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    t.vacuum(std::time::Duration::from_secs(3600)).await.unwrap();
    let at = t.vacuumed_at().await.unwrap().expect("remembered");
    assert!(at >= before && at <= chrono::Utc::now(), "{at}");
    let again = LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().expect("exists");
    assert_eq!(again.vacuumed_at().await.unwrap(), Some(at));
    assert_eq!(again.stats().unwrap().rows, 1, "the marker is no data file");
}

#[tokio::test]
async fn a_large_append_is_encoded_by_several_writers_a_small_one_by_one() {
    let (_dir, lake) = temp_lake();
    let mut t = table(&lake).await.with_parallel_writers(2);
    write(&mut t, &WriteMode::Append, vec![batch(&["a", "b"])], 0).await;
    assert_eq!(t.stats().unwrap().files, 1, "a small commit makes one file");

    // 300,000 rows in batches of 30,000: the second writer starts at 256 Ki rows
    let ids: Vec<String> = (0..30_000).map(|i| format!("k{i:05}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    write(&mut t, &WriteMode::Append, (0..10).map(|_| batch(&ids)).collect(), 1).await;
    let stats = t.stats().unwrap();
    assert_eq!((stats.rows, stats.files), (300_002, 3));
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.provider().await.unwrap()).unwrap();
    let out = ctx.sql("SELECT count(*), sum(n), count(DISTINCT id) FROM t").await.unwrap().collect().await.unwrap();
    let col = |i: usize| out[0].column(i).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
    assert_eq!((col(0), col(1), col(2)), (300_002, 10 * (0..30_000i64).sum::<i64>() + 1, 30_002));
}

#[tokio::test]
async fn integers_are_delta_encoded_and_text_keeps_its_dictionary() {
    let (_dir, lake) = temp_lake();
    let mut t = table(&lake).await;
    let ids: Vec<String> = (0..5_000).map(|i| format!("k{}", i % 7)).collect();
    write(&mut t, &WriteMode::Append, vec![batch(&ids.iter().map(String::as_str).collect::<Vec<_>>())], 0).await;
    let uri = t.file_uris().unwrap().remove(0);
    let path = url::Url::parse(&uri).map(|u| u.to_file_path().unwrap()).unwrap_or_else(|_| uri.into());
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(std::fs::File::open(path).unwrap());
    let meta = parquet::file::reader::FileReader::metadata(&reader.unwrap()).clone();
    let encodings = |c: usize| meta.row_group(0).column(c).encodings().collect::<Vec<_>>();
    use parquet::basic::Encoding;
    assert!(encodings(0).contains(&Encoding::RLE_DICTIONARY), "text: {:?}", encodings(0));
    assert!(encodings(1).contains(&Encoding::DELTA_BINARY_PACKED), "n: {:?}", encodings(1));
    assert!(!encodings(1).contains(&Encoding::RLE_DICTIONARY), "n: {:?}", encodings(1));
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.provider().await.unwrap()).unwrap();
    let out = ctx.sql("SELECT sum(n), max(n), count(DISTINCT id) FROM t").await.unwrap().collect().await.unwrap();
    let col = |i: usize| out[0].column(i).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
    assert_eq!((col(0), col(1), col(2)), ((0..5_000i64).sum::<i64>(), 4_999, 7));
}

#[tokio::test]
async fn runs_of_a_partition_and_mixed_rows_land_in_their_partitions() {
    let (_dir, lake) = temp_lake();
    let by_id = ["id".to_string()];
    let mut t = LakeTable::open_or_create(&lake, "p", &lake.table_url("p"), &schema(), &by_id, "").await.unwrap();
    // two runs (sliced to their partitions), then rows alternating 40 times (grouped by delta-rs)
    write(&mut t, &WriteMode::Append, vec![batch(&["a", "a", "b", "b", "b"])], 0).await;
    let mixed: Vec<&str> = (0..40).map(|i| if i % 2 == 0 { "a" } else { "b" }).collect();
    write(&mut t, &WriteMode::Append, vec![batch(&mixed)], 1).await;
    assert_eq!(t.stats().unwrap().files, 4, "one file per partition per commit");
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("p", t.provider().await.unwrap()).unwrap();
    let out = ctx.sql("SELECT id, count(*), sum(n) FROM p GROUP BY id ORDER BY id").await.unwrap();
    let out = out.collect().await.unwrap();
    let ints = |i: usize| out[0].column(i).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec();
    let ids = arrow_cast::display::array_value_to_string(out[0].column(0), 1).unwrap();
    // a: rows 0,1 of the first batch and the even rows of the second; b: the rest
    let evens: i64 = (0..40).step_by(2).sum();
    assert_eq!((ids.as_str(), ints(1), ints(2)), ("b", vec![22, 23], vec![1 + evens, 2 + 3 + 4 + 780 - evens]));
}

#[tokio::test]
async fn a_batch_a_writer_refuses_fails_the_commit_and_changes_nothing() {
    let (_dir, lake) = temp_lake();
    let mut t = table(&lake).await;
    write(&mut t, &WriteMode::Append, vec![batch(&["a"])], 0).await;
    let wrong = Schema::new(vec![Field::new("id", DataType::Utf8, true), Field::new("n", DataType::Utf8, true)]);
    let wrong = RecordBatch::try_new(
        Arc::new(wrong),
        vec![Arc::new(StringArray::from(vec!["b"])), Arc::new(StringArray::from(vec!["x"]))],
    )
    .unwrap();
    let mut s = t.begin(&WriteMode::Append).unwrap();
    t.stage(&mut s, batch(&["c"])).await.unwrap();
    // the writer encodes on its own thread: its refusal surfaces at the next
    // stage or at the commit
    let staged = t.stage(&mut s, wrong).await;
    let e = match staged {
        Err(e) => e,
        Ok(()) => t.commit(s, vec![("input".into(), 1)], vec![]).await.expect_err("a wrong schema must fail"),
    };
    assert!(e.to_string().to_lowercase().contains("schema"), "{e}");
    t.refresh().await.unwrap();
    assert_eq!((t.stats().unwrap().rows, t.position("input").await.unwrap()), (1, Some(0)));
}

/// Rows of (id, n) read back sorted, through DataFusion over the table.
async fn rows(t: &LakeTable) -> Vec<(String, i64)> {
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.provider().await.unwrap()).unwrap();
    let batches = ctx.sql("SELECT id, n FROM t ORDER BY id").await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        let ids = arrow_cast::cast(b.column(0), &DataType::Utf8).unwrap();
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        let ns = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        out.extend((0..b.num_rows()).map(|i| (ids.value(i).to_string(), ns.value(i))));
    }
    out
}

fn pairs(rows: &[(&str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(schema()),
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

async fn write(t: &mut LakeTable, mode: &WriteMode, batches: Vec<RecordBatch>, position: i64) {
    let mut s = t.begin(mode).unwrap();
    for b in batches {
        t.stage(&mut s, b).await.unwrap();
    }
    t.commit(s, vec![("input".into(), position)], vec![]).await.unwrap();
}

#[tokio::test]
async fn insert_if_absent_delete_and_counter_merge() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let mut t = table(&lake).await;
    let key = vec!["id".to_string()];
    let insert = WriteMode::InsertIfAbsent { key: key.clone() };
    write(&mut t, &insert, vec![pairs(&[("a", 1), ("b", 2), ("a", 1)])], 1).await;
    write(&mut t, &insert, vec![pairs(&[("b", 20), ("c", 3)])], 2).await;
    assert_eq!(rows(&t).await, vec![("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
    assert_eq!(t.position("input").await.unwrap(), Some(2));

    let merge = WriteMode::CounterMerge { key: key.clone(), measures: vec![("n".into(), ingesta_core::Measure::Sum)] };
    write(&mut t, &merge, vec![pairs(&[("a", 10), ("d", 4), ("a", 100)])], 3).await;
    assert_eq!(rows(&t).await, vec![("a".into(), 111), ("b".into(), 2), ("c".into(), 3), ("d".into(), 4)]);

    write(&mut t, &WriteMode::Delete { key: key.clone() }, vec![pairs(&[("b", 0), ("zz", 0)])], 4).await;
    assert_eq!(rows(&t).await, vec![("a".into(), 111), ("c".into(), 3), ("d".into(), 4)]);
    assert_eq!(t.position("input").await.unwrap(), Some(4));

    // an upsert where every row is older than the stored one changes no row, yet the position moves
    let upsert = WriteMode::Upsert { key: key.clone(), sequence: "n".into(), deletes: false };
    write(&mut t, &upsert, vec![pairs(&[("a", 5), ("c", 1)])], 5).await;
    assert_eq!(rows(&t).await, vec![("a".into(), 111), ("c".into(), 3), ("d".into(), 4)]);
    assert_eq!(t.position("input").await.unwrap(), Some(5));
}

#[tokio::test]
async fn a_null_key_is_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let mut t = table(&lake).await;
    let nulls = |n: i64| {
        RecordBatch::try_new(
            Arc::new(schema()),
            vec![Arc::new(StringArray::from(vec![None, Some("a")])), Arc::new(Int64Array::from(vec![n, n]))],
        )
        .unwrap()
    };
    let merge =
        WriteMode::CounterMerge { key: vec!["id".into()], measures: vec![("n".into(), ingesta_core::Measure::Sum)] };
    write(&mut t, &merge, vec![nulls(1)], 1).await;
    write(&mut t, &merge, vec![nulls(2)], 2).await;
    let insert = WriteMode::InsertIfAbsent { key: vec!["id".into()] };
    write(&mut t, &insert, vec![nulls(7)], 3).await;
    assert_eq!(t.stats().unwrap().rows, 2, "one row for the null key, one for `a`");
}

/// Property: upserts with sequence numbers give the same table whatever the
/// order and the batch cuts they arrive in.
#[tokio::test]
async fn upsert_is_out_of_order_safe() {
    let mode = WriteMode::Upsert { key: vec!["id".into()], sequence: "n".into(), deletes: false };
    for case in 0..6u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (case + 1));
        let keys = 1 + rng.below(12);
        // versions of each key: unique sequence numbers
        let mut updates: Vec<(String, i64)> =
            (0..30).map(|seq| (format!("k{}", rng.below(keys)), seq as i64 * 7 + case as i64)).collect();
        let mut results = Vec::new();
        for order in 0..2 {
            if order == 1 {
                for i in (1..updates.len()).rev() {
                    updates.swap(i, rng.below(i as u64 + 1) as usize);
                }
            } else {
                updates.sort_by_key(|u| u.1);
            }
            let dir = tempfile::tempdir().unwrap();
            let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
            let mut t = table(&lake).await;
            let mut at = 0;
            let mut position = 0;
            while at < updates.len() {
                let take = (1 + rng.below(10) as usize).min(updates.len() - at);
                let chunk: Vec<(&str, i64)> = updates[at..at + take].iter().map(|(k, n)| (k.as_str(), *n)).collect();
                position += 1;
                write(&mut t, &mode, vec![pairs(&chunk)], position).await;
                at += take;
            }
            results.push(rows(&t).await);
        }
        let mut latest: std::collections::BTreeMap<String, i64> = Default::default();
        for (k, n) in &updates {
            let e = latest.entry(k.clone()).or_insert(*n);
            *e = (*e).max(*n);
        }
        let expected: Vec<(String, i64)> = latest.into_iter().collect();
        assert_eq!(results[0], expected, "case {case}: sorted arrival");
        assert_eq!(results[1], expected, "case {case}: shuffled arrival");
    }
}

#[test]
fn object_store_roots_say_how_to_enable_them() {
    let e = Lake::new("s3://bucket/lake", Default::default()).expect_err("not in a default build");
    assert!(e.to_string().contains("--features cloud"), "{e}");
    let e = Lake::new("ftp://host/lake", Default::default()).expect_err("unsupported");
    assert!(e.to_string().contains("unsupported scheme"), "{e}");
}

#[tokio::test]
async fn all_positions_in_one_pass_agree_with_delta_rs_before_and_after_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let mut t = table(&lake).await;
    let ids: Vec<String> = (0..30).map(|i| format!("ingesta/landing/src/f{i}.ndjson@1:2")).collect();
    for round in 1..4 {
        commit_round(&mut t, &ids, round).await;
    }
    check_positions(&t, &ids).await;
    // a checkpoint, then more commits on top of it
    deltalake::checkpoints::create_checkpoint(t.delta(), None).await.unwrap();
    for round in 4..7 {
        commit_round(&mut t, &ids, round).await;
    }
    check_positions(&t, &ids).await;
    let reopened = LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().unwrap();
    check_positions(&reopened, &ids).await;
}

/// Commits positions (round * 10) for every (round + 1)-th input.
async fn commit_round(t: &mut LakeTable, ids: &[String], round: i64) {
    let positions: Vec<(String, i64)> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| (*i as i64) % (round + 1) == 0)
        .map(|(_, id)| (id.clone(), round * 10))
        .collect();
    let s = t.begin(&WriteMode::Append).unwrap();
    t.commit(s, positions, vec![]).await.unwrap();
}

async fn check_positions(t: &LakeTable, ids: &[String]) {
    let all = t.positions().await.unwrap().expect("the classic layout is read");
    let mut known = 0;
    for id in ids {
        let one = t.position(id).await.unwrap();
        known += usize::from(one.is_some());
        assert_eq!(all.get(id).copied(), one, "{id}");
    }
    assert_eq!(all.len(), known, "no other ids");
}

/// Rows of (id, a set of values): the set as a list column, the count as
/// `count_distinct(seen)`; an empty set is null.
fn sets(rows: &[(&str, &[&str])]) -> RecordBatch {
    use arrow_array::builder::{ListBuilder, StringBuilder};
    let mut seen = ListBuilder::new(StringBuilder::new());
    for (_, values) in rows {
        for v in *values {
            seen.values().append_value(v);
        }
        seen.append(!values.is_empty());
    }
    RecordBatch::try_new(
        Arc::new(set_schema()),
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(seen.finish()),
            Arc::new(Int64Array::from(vec![0; rows.len()])),
        ],
    )
    .unwrap()
}

fn set_schema() -> Schema {
    let item = Arc::new(Field::new("item", DataType::Utf8, true));
    Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("seen", DataType::List(item), true),
        Field::new("n", DataType::Int64, true),
    ])
}

/// Property: a count of distinct values merged over batches equals the
/// count over all the values at once, however they are cut into batches.
#[tokio::test]
async fn count_distinct_stays_exact_across_merges() {
    use ingesta_core::Measure;
    let mode = WriteMode::CounterMerge {
        key: vec!["id".into()],
        measures: vec![("seen".into(), Measure::Set), ("n".into(), Measure::CountDistinct { set: "seen".into() })],
    };
    let values = ["u1", "u2", "u3", "u4", "u5", "u6", "u7"];
    for case in 0..4u64 {
        let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (case + 1));
        let input: Vec<(String, Vec<&str>)> = (0..24)
            .map(|_| {
                let k = format!("k{}", rng.below(4));
                (k, (0..rng.below(4)).map(|_| values[rng.below(7) as usize]).collect())
            })
            .collect();
        let mut want: std::collections::BTreeMap<String, std::collections::BTreeSet<&str>> = Default::default();
        for (k, vs) in &input {
            want.entry(k.clone()).or_default().extend(vs.iter().copied());
        }
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
        let mut t =
            LakeTable::open_or_create(&lake, "t", &lake.table_url("t"), &set_schema(), &[], "test").await.unwrap();
        let mut start = 0;
        let mut position = 0;
        while start < input.len() {
            let end = (start + 1 + rng.below(9) as usize).min(input.len());
            let cut: Vec<(&str, &[&str])> = input[start..end].iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            position += 1;
            write(&mut t, &mode, vec![sets(&cut)], position).await;
            start = end;
        }
        let got = rows(&t).await;
        let want: Vec<(String, i64)> = want.into_iter().map(|(k, s)| (k, s.len() as i64)).collect();
        assert_eq!(got, want, "case {case}: {position} batches");
    }
}

/// Two compactions from the same snapshot (two group members, or
/// `ingesta compact` next to a running pipeline): one wins, the other fails
/// with a conflict, and no row is kept twice.
#[tokio::test]
async fn racing_compactions_never_keep_rows_twice() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let mut t = table(&lake).await;
    for i in 0..6 {
        write(&mut t, &WriteMode::Append, vec![batch(&["a", "b", "c"])], i).await;
    }
    let mut other = LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().expect("exists");
    assert_eq!(t.compact().await.unwrap().files_removed, 6);
    let lost = other.compact().await;
    assert!(lost.is_err(), "the second compaction must not commit: {lost:?}");
    t.refresh().await.unwrap();
    let stats = t.stats().unwrap();
    assert_eq!((stats.rows, stats.files), (18, 1));
    assert_eq!(t.position("input").await.unwrap(), Some(5), "positions are untouched");
}

#[tokio::test]
async fn a_merge_rewrites_only_the_files_holding_its_keys_and_stops_a_racing_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let mut t = table(&lake).await;
    // three files with disjoint keys
    for (i, rows) in [[("a", 1), ("b", 1)], [("m", 1), ("n", 1)], [("x", 1), ("y", 1)]].iter().enumerate() {
        write(&mut t, &WriteMode::Append, vec![pairs(rows)], i as i64).await;
    }
    let before = t.file_uris().unwrap();
    let mut compactor = LakeTable::open(&lake, "t", &lake.table_url("t")).await.unwrap().expect("exists");
    let merge = WriteMode::CounterMerge {
        key: vec!["id".to_string()],
        measures: vec![("n".into(), ingesta_core::Measure::Sum)],
    };
    // "n" is stored (second file), "o" is new
    write(&mut t, &merge, vec![pairs(&[("n", 10), ("o", 5)])], 3).await;
    let after = t.file_uris().unwrap();
    let kept: Vec<_> = before.iter().filter(|f| after.contains(f)).collect();
    assert_eq!(kept.len(), 2, "only the file holding `n` is rewritten: {before:?} -> {after:?}");
    assert_eq!(after.len(), 3);
    assert_eq!(
        rows(&t).await,
        [("a", 1), ("b", 1), ("m", 1), ("n", 11), ("o", 5), ("x", 1), ("y", 1)]
            .iter()
            .map(|(k, n)| (k.to_string(), *n))
            .collect::<Vec<_>>()
    );
    // a compaction planned before the merge would bring the replaced rows back
    let lost = compactor.compact().await;
    assert!(lost.is_err(), "a compaction racing a merge must not commit: {lost:?}");
    t.refresh().await.unwrap();
    assert_eq!(t.stats().unwrap().rows, 7);
}

#[tokio::test]
async fn a_merge_of_only_new_keys_adds_them_and_rewrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let mut t = table(&lake).await;
    write(&mut t, &WriteMode::Append, vec![pairs(&[("a", 1), ("c", 1)])], 0).await;
    let upsert = WriteMode::Upsert { key: vec!["id".to_string()], sequence: "n".into(), deletes: false };
    // a table of one small file is rewritten whole, whatever the keys
    let before = t.file_uris().unwrap();
    write(&mut t, &upsert, vec![pairs(&[("d", 2)])], 1).await;
    assert!(!t.file_uris().unwrap().contains(&before[0]), "one small file: rewritten");
    write(&mut t, &WriteMode::Append, vec![pairs(&[("x", 1), ("y", 1)])], 2).await;
    let before = t.file_uris().unwrap();
    // "b" lies in the first file's key range but is not in it
    write(&mut t, &upsert, vec![pairs(&[("b", 2)])], 3).await;
    let after = t.file_uris().unwrap();
    assert!(before.iter().all(|f| after.contains(f)), "the stored files are kept: {before:?} -> {after:?}");
    let want = [("a", 1), ("b", 2), ("c", 1), ("d", 2), ("x", 1), ("y", 1)];
    assert_eq!(rows(&t).await, want.iter().map(|(k, n)| (k.to_string(), *n)).collect::<Vec<_>>());
}

/// The rows of a table's change feed after `after`: (id, n, change type, version), sorted.
async fn changes(t: &LakeTable, after: i64) -> Vec<(String, i64, String, u64)> {
    let range = t.changed_since(after, None, u64::MAX).await.unwrap();
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("c", t.changes_provider(&range).await.unwrap()).unwrap();
    let sql = "SELECT id, n, _change_type, _commit_version FROM c ORDER BY id";
    let mut out = Vec::new();
    for b in ctx.sql(sql).await.unwrap().collect().await.unwrap() {
        let text = |i: usize| arrow_cast::cast(b.column(i), &DataType::Utf8).unwrap();
        let (ids, kinds) = (text(0), text(2));
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        let kinds = kinds.as_any().downcast_ref::<StringArray>().unwrap();
        let ns = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        let vs = b.column(3).as_any().downcast_ref::<arrow_array::UInt64Array>().unwrap();
        out.extend(
            (0..b.num_rows()).map(|i| (ids.value(i).to_string(), ns.value(i), kinds.value(i).to_string(), vs.value(i))),
        );
    }
    out.sort_by(|a, b| (a.3, &a.0, &a.2).cmp(&(b.3, &b.0, &b.2)));
    out
}

#[tokio::test]
async fn merges_record_what_they_changed_in_the_change_feed() {
    let dir = tempfile::tempdir().unwrap();
    let feeds = ["t".to_string(), "odd".to_string()];
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap().with_change_feeds(feeds);
    let mut t = table(&lake).await;
    assert!(t.change_feed(), "a table whose changes are read keeps a change feed");
    let key = vec!["id".to_string()];
    let upsert = WriteMode::Upsert { key: key.clone(), sequence: "n".into(), deletes: false };
    write(&mut t, &upsert, vec![pairs(&[("a", 1), ("b", 2)])], 1).await; // version 1: the first load, appended
    write(&mut t, &upsert, vec![pairs(&[("a", 5), ("c", 3), ("b", 1)])], 2).await; // b is older: unchanged
    write(&mut t, &WriteMode::Delete { key: key.clone() }, vec![pairs(&[("c", 0)])], 3).await;
    let files = t.file_uris().unwrap();
    write(&mut t, &upsert, vec![pairs(&[("a", 2)])], 4).await; // only older versions: nothing changes
    assert_eq!(t.file_uris().unwrap(), files, "a merge changing nothing rewrites no file");
    assert_eq!(t.position("input").await.unwrap(), Some(4), "yet its position moves");
    assert_eq!(rows(&t).await, vec![("a".into(), 5), ("b".into(), 2)]);

    let c = |id: &str, n: i64, kind: &str, v: u64| (id.to_string(), n, kind.to_string(), v);
    let all = vec![
        c("a", 1, "insert", 1),
        c("b", 2, "insert", 1),
        c("a", 5, "update_postimage", 2),
        c("a", 1, "update_preimage", 2),
        c("c", 3, "insert", 2),
        c("c", 3, "delete", 3),
    ];
    assert_eq!(changes(&t, 0).await, all);
    assert_eq!(changes(&t, 2).await, all[5..].to_vec(), "a range starts after the version read");
    let snapshot = vec![c("a", 5, "insert", 4), c("b", 2, "insert", 4)];
    assert_eq!(changes(&t, -1).await, snapshot, "a new reader starts from the rows, as inserts");

    // a range is cut at a version boundary once enough bytes are collected
    let first = t.changed_since(0, None, 1).await.unwrap();
    assert_eq!((first.after, first.to), (0, 1));

    // a merge on a table created with a change column keeps no feed, and says so when its changes are asked for
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("_change_type", DataType::Utf8, true),
    ]);
    let odd = LakeTable::open_or_create(&lake, "odd", &lake.table_url("odd"), &schema, &[], "test").await.unwrap();
    assert!(!odd.change_feed());
    let e = odd.changed_since(-1, None, u64::MAX).await.unwrap_err().to_string();
    assert!(e.contains("keeps no change feed"), "{e}");
    let mut odd = odd;
    let e = odd.enable_change_feed().await.unwrap_err().to_string();
    assert!(e.contains("cannot keep one"), "{e}");
}

#[tokio::test]
async fn a_feed_turned_on_late_serves_new_readers_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let mut t = table(&lake).await;
    assert!(!t.change_feed(), "a table whose changes nobody reads keeps no feed");
    let key = vec!["id".to_string()];
    let upsert = WriteMode::Upsert { key: key.clone(), sequence: "n".into(), deletes: false };
    write(&mut t, &upsert, vec![pairs(&[("a", 1), ("b", 2)])], 1).await;
    write(&mut t, &upsert, vec![pairs(&[("a", 5)])], 2).await;
    assert!(!dir.path().join("t/_change_data").exists(), "its merges write no change files");
    let e = t.changed_since(-1, None, u64::MAX).await.unwrap_err().to_string();
    assert!(e.contains("keeps no change feed") && e.contains("read: changes"), "{e}");

    assert!(t.enable_change_feed().await.unwrap(), "turned on");
    assert!(!t.enable_change_feed().await.unwrap(), "already on");
    let on = t.version();
    let c = |id: &str, n: i64, kind: &str, v: u64| (id.to_string(), n, kind.to_string(), v);
    assert_eq!(changes(&t, -1).await, vec![c("a", 5, "insert", on as u64), c("b", 2, "insert", on as u64)]);
    write(&mut t, &upsert, vec![pairs(&[("b", 7)])], 3).await;
    let next = on as u64 + 1;
    assert_eq!(changes(&t, on).await, vec![c("b", 7, "update_postimage", next), c("b", 2, "update_preimage", next)]);
    let e = t.changed_since(0, None, u64::MAX).await.unwrap_err().to_string();
    assert!(e.contains(&format!("before version {on}")) && e.contains("rebuild"), "a range from before the feed: {e}");
}

/// (id, n) rows with the upsert's delete flag.
fn flagged(rows: &[(&str, i64, bool)]) -> RecordBatch {
    let mut fields = schema().fields().to_vec();
    fields.push(Arc::new(Field::new(ingesta_core::DELETE_FLAG, DataType::Boolean, true)));
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(arrow_array::BooleanArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn an_upsert_row_flagged_as_a_delete_deletes_its_key_when_it_is_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap().with_change_feeds(["t".into()]);
    let mut t = table(&lake).await;
    let upsert = WriteMode::Upsert { key: vec!["id".into()], sequence: "n".into(), deletes: true };
    // the first load: a delete of a key not held deletes nothing, and the flag is not stored
    write(&mut t, &upsert, vec![flagged(&[("a", 1, false), ("b", 2, false), ("c", 3, true)])], 1).await;
    assert_eq!(rows(&t).await, vec![("a".into(), 1), ("b".into(), 2)]);
    assert_eq!(t.arrow_schema().unwrap(), schema());
    // within a batch the newest version of a key wins, delete or not; an older delete deletes nothing
    let batch = flagged(&[("a", 5, true), ("a", 4, false), ("b", 1, true), ("d", 4, false), ("d", 6, true)]);
    write(&mut t, &upsert, vec![batch], 2).await;
    assert_eq!(rows(&t).await, vec![("b".into(), 2)]);
    let c = |id: &str, n: i64, kind: &str, v: u64| (id.to_string(), n, kind.to_string(), v);
    assert_eq!(changes(&t, 1).await, vec![c("a", 1, "delete", 2)]);
}

/// (id, n, x, day) rows of a table partitioned by `day`.
fn daily(rows: &[(&str, i64, &str)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        Field::new("day", DataType::Date32, true),
    ]);
    let days = StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>());
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(arrow_array::Float64Array::from(rows.iter().map(|r| r.1 as f64 / 2.0).collect::<Vec<_>>())),
            arrow_cast::cast(&days, &DataType::Date32).unwrap(),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn a_merge_on_a_table_partitioned_by_a_key_column_rewrites_only_the_batch_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let days = ["day".to_string()];
    let mut t =
        LakeTable::open_or_create(&lake, "g", &lake.table_url("g"), &daily(&[]).schema(), &days, "").await.unwrap();
    let first = [("a", 1, "2026-11-01"), ("b", 2, "2026-11-01"), ("a", 3, "2026-11-02"), ("a", 4, "2026-11-03")];
    write(&mut t, &WriteMode::Append, vec![daily(&first)], 0).await;
    let before = t.file_uris().unwrap();
    assert_eq!(before.len(), 3, "one file per day");
    let merge = WriteMode::CounterMerge {
        key: vec!["id".to_string(), "day".to_string()],
        measures: vec![("n".into(), ingesta_core::Measure::Sum), ("x".into(), ingesta_core::Measure::Max)],
    };
    // day 2: a stored key and a new one; day 4: not stored yet
    write(&mut t, &merge, vec![daily(&[("a", 10, "2026-11-02"), ("c", 5, "2026-11-02"), ("a", 7, "2026-11-04")])], 1)
        .await;
    let after = t.file_uris().unwrap();
    let kept: Vec<_> = before.iter().filter(|f| after.contains(f)).collect();
    assert_eq!(kept.len(), 2, "days 1 and 3 are kept as they are: {before:?} -> {after:?}");
    assert_eq!(after.len(), 4, "day 2 rewritten, day 4 added");
    // only a new key of day 3: found from the log, day 3's file takes it (still one file per day)
    write(&mut t, &merge, vec![daily(&[("d", 1, "2026-11-03")])], 2).await;
    assert_eq!(t.file_uris().unwrap().len(), 4, "a day's file is rewritten with its new keys");
    let want = [
        "2026-11-01,a,1,0.5",
        "2026-11-01,b,2,1.0",
        "2026-11-02,a,13,5.0",
        "2026-11-02,c,5,2.5",
        "2026-11-03,a,4,2.0",
        "2026-11-03,d,1,0.5",
        "2026-11-04,a,7,3.5",
    ];
    assert_eq!(lines(&t, "SELECT day, id, n, x FROM t").await, want);
}

/// The rows of `t` as sorted text lines, through DataFusion.
async fn lines(t: &LakeTable, sql: &str) -> Vec<String> {
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.provider().await.unwrap()).unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out: Vec<String> = arrow_cast::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect::<Vec<_>>().join(","))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn a_file_copied_by_its_column_chunks_holds_the_same_rows_and_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let days = ["day".to_string()];
    let input =
        LakeTable::open_or_create(&lake, "in", &lake.table_url("in"), &daily(&[]).schema(), &days, "").await.unwrap();
    let mut input = input;
    let rows: Vec<(String, i64, &str)> =
        (0..3000).map(|i| (format!("k{i}"), i, if i % 3 == 0 { "2026-11-01" } else { "2026-11-02" })).collect();
    let rows: Vec<(&str, i64, &str)> = rows.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    write(&mut input, &WriteMode::Append, vec![daily(&rows)], 0).await;
    let files = input.appended_since(-1, None, u64::MAX).await.unwrap().files;
    assert_eq!(files.len(), 2, "one file per day");

    // the day (a partition value of the input) becomes a column; x is left out
    let kept = Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("id", DataType::Utf8, true),
        Field::new("day", DataType::Date32, true),
    ]);
    for (name, parts) in [("flat", &[][..]), ("daily", &days[..])] {
        let mut t = LakeTable::open_or_create(&lake, name, &lake.table_url(name), &kept, parts, "").await.unwrap();
        let mut s = t.begin(&WriteMode::Append).unwrap();
        let copied = t.stage_copies(&mut s, &input, &files).await.unwrap();
        assert_eq!(copied.iter().flatten().sum::<u64>(), 3000, "{name}: {copied:?}");
        assert_eq!(t.commit(s, vec![("in".into(), 1)], vec![]).await.unwrap().rows, 3000);
        let all = "SELECT n, id, day FROM t";
        assert_eq!(lines(&t, all).await, lines(&input, all).await, "{name}");
        assert_eq!(t.stats().unwrap().rows, 3000);
        let one = "SELECT count(*), min(n), max(n) FROM t WHERE day = DATE '2026-11-01'";
        assert_eq!(lines(&t, one).await, vec!["1000,0,2997"], "{name}");
        // the day: a column with statistics, or the partition the file is in
        let log = std::fs::read_to_string(dir.path().join(name).join("_delta_log/00000000000000000001.json")).unwrap();
        let adds: Vec<&str> = log.lines().filter(|l| l.starts_with("{\"add\"")).collect();
        let day = if parts.is_empty() { r#"\"day\":\"2026-11-0"# } else { r#""path":"day=2026-11-0"# };
        assert!(adds.len() == 2 && adds.iter().all(|a| a.contains(day)), "{name}: {adds:?}");
    }

    // a column of another type is not copied: the caller reads the rows instead
    let other = Schema::new(vec![Field::new("n", DataType::Utf8, true)]);
    let t = LakeTable::open_or_create(&lake, "other", &lake.table_url("other"), &other, &[], "").await.unwrap();
    let mut s = t.begin(&WriteMode::Append).unwrap();
    assert_eq!(t.stage_copies(&mut s, &input, &files).await.unwrap(), vec![None, None]);
}

#[tokio::test]
async fn a_file_with_all_the_columns_of_the_table_is_copied_by_the_store_as_it_is() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let days = ["day".to_string()];
    let schema = daily(&[]).schema();
    let mut input = LakeTable::open_or_create(&lake, "in", &lake.table_url("in"), &schema, &days, "").await.unwrap();
    let rows: Vec<(String, i64, &str)> =
        (0..2000).map(|i| (format!("k{i}"), i, if i % 2 == 0 { "2026-11-01" } else { "2026-11-02" })).collect();
    let rows: Vec<(&str, i64, &str)> = rows.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    write(&mut input, &WriteMode::Append, vec![daily(&rows)], 0).await;
    let files = input.appended_since(-1, None, u64::MAX).await.unwrap().files;

    // the same columns, partitioned the same way: each file is a hard link of the input's
    let mut t = LakeTable::open_or_create(&lake, "same", &lake.table_url("same"), &schema, &days, "").await.unwrap();
    let mut s = t.begin(&WriteMode::Append).unwrap();
    assert_eq!(t.stage_copies(&mut s, &input, &files).await.unwrap(), vec![Some(1000), Some(1000)]);
    assert_eq!(t.commit(s, vec![("in".into(), 1)], vec![]).await.unwrap().rows, 2000);
    let copies = t.appended_since(-1, None, u64::MAX).await.unwrap().files;
    let inode = |table: &str, path: &str| {
        let path = percent_encoding::percent_decode_str(path).decode_utf8().unwrap().to_string();
        std::fs::metadata(dir.path().join(table).join(path)).unwrap()
    };
    for (from, to) in files.iter().zip(&copies) {
        let (a, b) = (inode("in", &from.path), inode("same", &to.path));
        assert_eq!((a.ino(), b.nlink(), a.len()), (b.ino(), 2, b.len()), "{} -> {}", from.path, to.path);
        assert_eq!(from.path.rsplit_once('/').unwrap().0, to.path.rsplit_once('/').unwrap().0, "the same day");
    }
    let all = "SELECT id, n, x, day FROM t";
    assert_eq!(lines(&t, all).await, lines(&input, all).await);
    // the input's statistics: a day's range of n skips the other day's file
    let one = "SELECT count(*), min(n), max(n) FROM t WHERE day = DATE '2026-11-02'";
    assert_eq!(lines(&t, one).await, vec!["1000,1,1999"]);

    // the input's file gone (vacuumed): the copy keeps its rows
    for f in &files {
        let path = percent_encoding::percent_decode_str(&f.path).decode_utf8().unwrap().to_string();
        std::fs::remove_file(dir.path().join("in").join(path)).unwrap();
    }
    let fresh = elsewhere(dir.path(), "same", &dir.path().join("far")).await;
    assert_eq!(lines(&fresh, "SELECT count(*), sum(n) FROM t").await, vec!["2000,1999000"]);
}

#[tokio::test]
async fn a_large_file_is_read_by_the_column_chunks_a_query_wants() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let days = ["day".to_string()];
    let mut t =
        LakeTable::open_or_create(&lake, "big", &lake.table_url("big"), &daily(&[]).schema(), &days, "").await.unwrap();
    let mut rng = Rng(7);
    let rows: Vec<(String, i64)> =
        (0..200_000).map(|_| (format!("id-{:016x}", rng.below(u64::MAX)), rng.below(1000) as i64)).collect();
    let rows: Vec<(&str, i64, &str)> = rows.iter().map(|(a, b)| (a.as_str(), *b, "2026-11-01")).collect();
    write(&mut t, &WriteMode::Append, vec![daily(&rows)], 0).await;
    let files = t.appended_since(-1, None, u64::MAX).await.unwrap().files;
    assert!(files.len() == 1 && files[0].size > 1 << 20, "one file of over 1 MiB, read in ranges: {files:?}");

    // read from the disk (a copy this process did not write)
    let t = elsewhere(dir.path(), "big", &dir.path().join("far")).await;
    let columns = ["n".to_string(), "day".to_string()];
    let (schema, read) = t.read_files(&files, Some(&columns)).await.unwrap();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["n", "day"], "the wanted columns, in the table's order");
    let batches: Vec<RecordBatch> = read.into_iter().flatten().collect();
    let n: i64 = batches
        .iter()
        .map(|b| arrow_arith::aggregate::sum(b.column(0).as_any().downcast_ref::<Int64Array>().unwrap()).unwrap())
        .sum();
    assert_eq!(n, rows.iter().map(|r| r.1).sum::<i64>());
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 200_000);
    let day = arrow_cast::display::array_value_to_string(batches[0].column(1), 0).unwrap();
    assert_eq!(day, "2026-11-01", "the partition value as a column");
}

fn measures_schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("total", DataType::Float64, true),
        Field::new("lo", DataType::Float64, true),
        Field::new("hi", DataType::Float64, true),
        Field::new("mean", DataType::Float64, true),
        Field::new("last", DataType::Utf8, true),
    ])
}

/// Random rows of [`measures_schema`]: keys from a few (and null), some values null.
fn measure_rows(rng: &mut Rng, rows: usize) -> RecordBatch {
    use arrow_array::Float64Array;
    let maybe = |v: f64, rng: &mut Rng| (rng.below(5) > 0).then_some(v);
    let ids: Vec<Option<String>> =
        (0..rows).map(|_| Some(rng.below(7)).filter(|k| *k < 6).map(|k| format!("k{k}"))).collect();
    let n: Vec<Option<i64>> = (0..rows).map(|_| Some(1 + rng.below(5) as i64)).collect();
    let float = |rng: &mut Rng| rng.below(2001) as f64 / 8.0 - 125.0;
    let total: Vec<Option<f64>> = (0..rows).map(|_| maybe(float(rng), rng)).collect();
    let lo: Vec<Option<f64>> = (0..rows).map(|_| maybe(float(rng), rng)).collect();
    let hi: Vec<Option<f64>> = (0..rows).map(|_| maybe(float(rng), rng)).collect();
    let mean: Vec<Option<f64>> =
        total.iter().zip(&n).map(|(t, n)| Some(t.unwrap_or(0.0) / n.unwrap() as f64)).collect();
    let last: Vec<Option<String>> = (0..rows).map(|_| Some(format!("v{}", rng.below(100)))).collect();
    RecordBatch::try_new(
        Arc::new(measures_schema()),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(Int64Array::from(n)),
            Arc::new(Float64Array::from(total)),
            Arc::new(Float64Array::from(lo)),
            Arc::new(Float64Array::from(hi)),
            Arc::new(Float64Array::from(mean)),
            Arc::new(StringArray::from(last)),
        ],
    )
    .unwrap()
}

/// A table's rows sorted by key (null first).
async fn all_rows(t: &LakeTable) -> RecordBatch {
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.provider().await.unwrap()).unwrap();
    let batches = ctx.sql("SELECT * FROM t ORDER BY id NULLS FIRST").await.unwrap().collect().await.unwrap();
    let schema = Arc::new(measures_schema());
    let batches: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let columns = schema
                .fields()
                .iter()
                .map(|f| arrow_cast::cast(b.column_by_name(f.name()).unwrap(), f.data_type()).unwrap());
            RecordBatch::try_new(schema.clone(), columns.collect()).unwrap()
        })
        .collect();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

/// Property: a counter merge gives the same table merged in Arrow (a table
/// of few small files, `counter.rs`) as merged by the SQL join (the same
/// table keeping a change feed), for sums, min, max, averages of two sums
/// and last values, with null keys and null values, over random batches.
#[tokio::test]
async fn a_counter_merge_in_arrow_equals_the_sql_merge() {
    use ingesta_core::Measure;
    let mode = WriteMode::CounterMerge {
        key: vec!["id".into()],
        measures: vec![
            ("n".into(), Measure::Sum),
            ("total".into(), Measure::Sum),
            ("lo".into(), Measure::Min),
            ("hi".into(), Measure::Max),
            ("mean".into(), Measure::Avg { sum: "total".into(), count: "n".into() }),
            ("last".into(), Measure::Last),
        ],
    };
    for case in 0..6u64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (case + 1));
        let dir = tempfile::tempdir().unwrap();
        let lake =
            Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap().with_change_feeds(["sql".to_string()]);
        let open = |name: &'static str| {
            let lake = lake.clone();
            async move {
                LakeTable::open_or_create(&lake, name, &lake.table_url(name), &measures_schema(), &[], "test")
                    .await
                    .unwrap()
            }
        };
        let (mut arrow, mut sql) = (open("arrow").await, open("sql").await);
        assert!(sql.change_feed() && !arrow.change_feed());
        for position in 0..5 {
            let rows = 1 + rng.below(12) as usize;
            let batch = measure_rows(&mut rng, rows);
            write(&mut arrow, &mode, vec![batch.clone()], position).await;
            write(&mut sql, &mode, vec![batch], position).await;
            assert_eq!(all_rows(&arrow).await, all_rows(&sql).await, "case {case}, batch {position}");
        }
    }
}

/// The table folder `table` of the lake at `dir` copied under `to` and opened
/// there: its files were not written by this process at that place, so they
/// are read from the disk.
async fn elsewhere(dir: &std::path::Path, table: &str, to: &std::path::Path) -> LakeTable {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            match e.file_type().unwrap().is_dir() {
                true => copy(&e.path(), &to.join(e.file_name())),
                false => drop(std::fs::copy(e.path(), to.join(e.file_name())).unwrap()),
            }
        }
    }
    copy(&dir.join(table), &to.join(table));
    let lake = Lake::new(to.to_str().unwrap(), Default::default()).unwrap();
    LakeTable::open(&lake, table, &lake.table_url(table)).await.unwrap().unwrap()
}

/// Overwrites every data file of `table` with zeros of the same length.
fn spoil(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.ends_with("_delta_log") {
            spoil(&p);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            let n = std::fs::metadata(&p).unwrap().len() as usize;
            std::fs::write(&p, vec![0u8; n]).unwrap();
        }
    }
}

/// `files` of `t` read back, as sorted text lines of (file's day, id, n, x, day).
async fn file_lines(t: &LakeTable, files: &[ingesta_lake::AddedFile]) -> Result<Vec<String>, ingesta_lake::LakeError> {
    let (_, read) = t.read_files(files, None).await?;
    let mut out = Vec::new();
    for (f, batches) in files.iter().zip(read) {
        let day = f.partition_values["day"].clone().unwrap();
        for b in batches {
            for r in 0..b.num_rows() {
                let cols: Vec<String> =
                    b.columns().iter().map(|c| arrow_cast::display::array_value_to_string(c, r).unwrap()).collect();
                out.push(format!("{day}:{}", cols.join(",")));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[tokio::test]
async fn files_this_process_wrote_lately_are_read_from_memory_and_others_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let lake = Lake::new(root.to_str().unwrap(), Default::default()).unwrap();
    let days = ["day".to_string()];
    let mut t =
        LakeTable::open_or_create(&lake, "t", &lake.table_url("t"), &daily(&[]).schema(), &days, "").await.unwrap();
    // three days, their rows mixed (more runs than the writers slice: delta-rs splits them)
    let ids: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let day = |i: usize| ["2026-11-01", "2026-11-02", "2026-11-03"][i % 3];
    let rows: Vec<(&str, i64, &str)> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i as i64, day(i))).collect();
    write(&mut t, &WriteMode::Append, vec![daily(&rows)], 0).await;
    let files = t.appended_since(-1, None, u64::MAX).await.unwrap().files;
    assert_eq!(files.len(), 3, "one file per day");
    let far = elsewhere(&root, "t", &dir.path().join("far")).await;
    let want = file_lines(&far, &files).await.unwrap();
    assert_eq!(want.len(), 40);
    assert!(want.iter().all(|l| l[..10] == l[l.len() - 10..]), "each file holds its day's rows: {want:?}");

    // the files spoilt on disk: this process still reads the rows it wrote, the copy cannot
    spoil(&root.join("t"));
    assert_eq!(file_lines(&t, &files).await.unwrap(), want);
    spoil(&dir.path().join("far").join("t"));
    assert!(file_lines(&far, &files).await.is_err(), "a file this process did not write is read from the store");

    // a counter merge reads the day's stored file from memory, and its new file is kept too
    let before = t.file_uris().unwrap();
    let merge = WriteMode::CounterMerge {
        key: vec!["id".to_string(), "day".to_string()],
        measures: vec![("n".into(), ingesta_core::Measure::Sum), ("x".into(), ingesta_core::Measure::Max)],
    };
    write(&mut t, &merge, vec![daily(&[("k1", 100, "2026-11-02"), ("new", 5, "2026-11-02")])], 1).await;
    let uri = t.file_uris().unwrap().into_iter().find(|u| !before.contains(u)).expect("the day's new file");
    let path = uri.rsplit_once("/t/").unwrap().1.to_string();
    let local = root.join("t").join(percent_encoding::percent_decode_str(&path).decode_utf8().unwrap().as_ref());
    let size = std::fs::metadata(&local).unwrap().len();
    let day2 = [("day".to_string(), Some("2026-11-02".to_string()))].into_iter().collect();
    let merged = [ingesta_lake::AddedFile { path, size, partition_values: day2, stats: None, deletion_vector: false }];
    let got = file_lines(&t, &merged).await.unwrap();
    assert_eq!(got.len(), 14, "day 2's 13 rows and the new key: {got:?}");
    assert!(got.contains(&"2026-11-02:k1,101,50.0,2026-11-02".to_string()), "{got:?}");
    let from_disk = elsewhere(&root, "t", &dir.path().join("far2")).await;
    assert_eq!(file_lines(&from_disk, &merged).await.unwrap(), got, "memory and disk agree");
}

/// A query planned over a commit's files, run again over another's
/// (`LakeTable::rebind`): the other's rows, each run counted afresh.
#[tokio::test]
async fn a_plan_over_files_in_memory_runs_again_over_other_files() {
    use ingesta_lake::datafusion::physical_plan::collect;
    use ingesta_lake::datafusion::prelude::SessionContext;
    let (_dir, lake) = temp_lake();
    let mut t = table(&lake).await;
    append(&mut t, &["a", "b"]).await;
    append(&mut t, &["a", "c", "c"]).await;
    let first = t.appended_since(0, Some(1), u64::MAX).await.unwrap().files;
    let second = t.appended_since(1, None, u64::MAX).await.unwrap().files;
    assert_eq!((first.len(), second.len()), (1, 1));
    let ctx = SessionContext::new();
    ctx.register_table("f", t.files_rows(1, &first).await.unwrap()).unwrap();
    let show = |batches: &[RecordBatch]| -> Vec<String> {
        let cell = |c: &arrow_array::ArrayRef, r| arrow_cast::display::array_value_to_string(c, r).unwrap();
        let row = |b: &RecordBatch, r| b.columns().iter().map(|c| cell(c, r)).collect::<Vec<_>>().join(",");
        batches.iter().flat_map(|b| (0..b.num_rows()).map(move |r| row(b, r))).collect()
    };
    for sql in ["SELECT id, count(*) AS c, sum(n) AS s FROM f GROUP BY id ORDER BY id", "SELECT count(*) FROM f"] {
        let frame = ctx.sql(sql).await.unwrap();
        let task = Arc::new(frame.task_ctx());
        let plan = frame.create_physical_plan().await.unwrap();
        let once = collect(t.rebind(&plan, &first).unwrap(), task.clone()).await.unwrap();
        let other = collect(t.rebind(&plan, &second).unwrap(), task.clone()).await.unwrap();
        let again = collect(t.rebind(&plan, &second).unwrap(), task.clone()).await.unwrap();
        // the same query planned over the second commit's files
        let fresh = SessionContext::new();
        fresh.register_table("f", t.files_rows(2, &second).await.unwrap()).unwrap();
        let expected = fresh.sql(sql).await.unwrap().collect().await.unwrap();
        assert_eq!(show(&other), show(&expected), "{sql}");
        assert_eq!(show(&again), show(&expected), "{sql}: a second run counts afresh");
        assert_ne!(show(&once), show(&expected), "{sql}: the first commit's rows differ");
    }
}
