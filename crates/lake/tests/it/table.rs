//! Appends, positions, refresh and follow, deferred state, vacuum, writers and encodings.

use super::*;

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
