//! The lake honours the table contract: rows and positions land together,
//! positions survive reopening, a commit may carry only positions, and modes
//! the lake cannot do are refused rather than approximated.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ingesta_core::{ErrorKind, TableStore, WriteMode};
use ingesta_lake::{Lake, LakeTable};

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

async fn table(lake: &Lake) -> LakeTable {
    LakeTable::open_or_create(lake, "t", &lake.table_url("t"), &schema(), &[], "test").await.unwrap()
}

#[tokio::test]
async fn rows_and_positions_commit_together_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().join("lake").to_str().unwrap(), Default::default()).unwrap();
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
async fn modes_the_lake_cannot_do_yet_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
    let t = table(&lake).await;
    let mode = WriteMode::Upsert { key: vec!["id".into()], sequence: "n".into() };
    let e = t.begin(&mode).err().unwrap();
    assert_eq!(e.kind, ErrorKind::Stop);
    assert!(e.message.contains("not available on the lake yet"), "{}", e.message);
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
