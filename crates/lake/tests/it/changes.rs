//! The change feed: what merges record, and a feed turned on late.

use super::*;

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
