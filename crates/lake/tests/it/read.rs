//! Reading files: copies by the store or by column chunks, recently written rows in memory, plans run again over other files.

use super::*;

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
