//! The key-based write modes: insert-if-absent, upsert, delete, counter merges, and compaction racing them.

use super::*;

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

/// The automatic compaction rewrites only files far below the target size,
/// the smallest first and at most the target size of them per pass; files
/// readers do not suffer from are left as they are.
#[tokio::test]
async fn the_automatic_compaction_takes_the_smallest_files_within_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    // a target of 64 KiB: files under 2 KiB are small (a file of two rows
    // is under 1 KiB), and one pass rewrites at most 64 KiB of them
    let mut t = table(&lake).await.with_target_file_size(64 << 10);
    let ids: Vec<String> = (0..20_000).map(|i| format!("id-{i:06}-{}", i * 7919 % 10_007)).collect();
    let large: Vec<&str> = ids.iter().map(String::as_str).collect();
    write(&mut t, &WriteMode::Append, vec![batch(&large)], 0).await;
    let large_files = t.file_uris().unwrap();
    for i in 1..=200 {
        write(&mut t, &WriteMode::Append, vec![batch(&["a", "b"])], i).await;
    }
    let before = t.stats().unwrap();
    assert_eq!((before.files as usize, t.small_files().unwrap()), (large_files.len() + 200, 200));
    let mut passes = 0;
    while t.small_files().unwrap() > 1 {
        let c = t.compact_small().await.unwrap();
        assert!(c.files_removed > 1 && c.files_removed < 200, "bounded by the budget: {c:?}");
        passes += 1;
        assert!(passes < 10, "converges");
    }
    let after = t.stats().unwrap();
    assert_eq!(after.rows, before.rows, "compaction keeps every row");
    assert!(passes > 1, "200 small files exceed one pass's 64 KiB");
    let now = t.file_uris().unwrap();
    assert!(large_files.iter().all(|f| now.contains(f)), "the large files are untouched");
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
