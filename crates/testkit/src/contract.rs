//! The table contract's test suite, written once against
//! `ingesta_core::TableStore` and run against every store (the lake's
//! `tests/it/contract.rs` today). A store passes when, for tables of
//! [`schema`] that `open` creates (or opens again, as a second handle):
//!
//! * an append commits its rows and positions together, and both survive
//!   reopening; a commit may carry positions only;
//! * staged rows dropped without their commit (a crash between stage and
//!   commit) leave the table as it was;
//! * a compare-and-set commit fails, writing nothing, once another handle
//!   moved a position it expects;
//! * insert-if-absent, upsert (out of order, by sequence), delete, a
//!   counter merge and a history (scd2, out of order, replayed) give the
//!   rows their modes define;
//! * `rows_since` gives exactly the rows appended after a version.

use std::future::Future;
use std::sync::Arc;

use arrow_array::{Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ingesta_core::{Measure, TableStore, WriteMode};

/// The columns of every table the suite writes: a key, a measure, a sequence.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("n", DataType::Int64, true),
        Field::new("seq", DataType::Int64, true),
    ]))
}

/// The columns of table `name`: [`schema`], and for a history (a name
/// starting with `history`) its `valid_from`, `valid_to` and `is_current`.
pub fn schema_of(name: &str) -> SchemaRef {
    if !name.starts_with("history") {
        return schema();
    }
    let mut fields: Vec<Field> = schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend([
        Field::new(ingesta_core::VALID_FROM, DataType::Int64, true),
        Field::new(ingesta_core::VALID_TO, DataType::Int64, true),
        Field::new(ingesta_core::IS_CURRENT, DataType::Boolean, true),
    ]);
    Arc::new(Schema::new(fields))
}

/// Rows of (id, n, seq).
pub fn rows(rows: &[(&str, i64, i64)]) -> RecordBatch {
    let ids: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let n: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let seq: Vec<i64> = rows.iter().map(|r| r.2).collect();
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(StringArray::from(ids)), Arc::new(Int64Array::from(n)), Arc::new(Int64Array::from(seq))],
    )
    .expect("rows")
}

/// (id, n, seq) of `batches`, sorted.
fn sorted(batches: &[RecordBatch]) -> Vec<(String, i64, i64)> {
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| b.column_by_name(name).unwrap_or_else(|| panic!("a column `{name}`")).clone();
        let ids = texts(&col("id"));
        let (n, seq) = (col("n"), col("seq"));
        let (n, seq) = (ints(&n), ints(&seq));
        for i in 0..b.num_rows() {
            out.push((ids[i].clone(), n[i], seq[i]));
        }
    }
    out.sort();
    out
}

/// A text column's values (DataFusion may read text as views).
fn texts(a: &Arc<dyn Array>) -> Vec<String> {
    if let Some(s) = a.as_any().downcast_ref::<StringArray>() {
        return s.iter().map(|v| v.unwrap_or_default().to_string()).collect();
    }
    let v = a.as_any().downcast_ref::<arrow_array::StringViewArray>().expect("id is text");
    v.iter().map(|v| v.unwrap_or_default().to_string()).collect()
}

fn ints(a: &Arc<dyn Array>) -> Vec<i64> {
    let v = a.as_any().downcast_ref::<Int64Array>().expect("an Int64 column");
    (0..v.len()).map(|i| if v.is_null(i) { 0 } else { v.value(i) }).collect()
}

fn owned(rows: &[(&str, i64, i64)]) -> Vec<(String, i64, i64)> {
    let mut v: Vec<_> = rows.iter().map(|(a, b, c)| (a.to_string(), *b, *c)).collect();
    v.sort();
    v
}

async fn write<S: TableStore>(t: &mut S, mode: &WriteMode, batch: RecordBatch, positions: Vec<(String, i64)>) {
    let mut staged = t.begin(mode).expect("begin");
    t.stage(&mut staged, batch).await.expect("stage");
    t.commit(staged, positions, vec![("ingesta.test".into(), "contract".into())]).await.expect("commit");
}

async fn all<S: TableStore>(t: &S) -> Vec<(String, i64, i64)> {
    sorted(&t.scan().await.expect("scan"))
}

/// Runs the whole suite; `open(name)` opens (creating with [`schema`]) the
/// table `name`, a new handle each call. Each check uses tables of its own.
pub async fn run<S, F, Fut>(open: F)
where
    S: TableStore,
    F: Fn(String) -> Fut,
    Fut: Future<Output = S>,
{
    rows_and_positions_commit_together(&open).await;
    staged_rows_without_their_commit_change_nothing(&open).await;
    compare_and_set_refuses_a_moved_position(&open).await;
    keyed_modes_hold(&open).await;
    rows_since_gives_what_was_appended_after_a_version(&open).await;
}

async fn rows_and_positions_commit_together<S: TableStore, Fut: Future<Output = S>>(open: &impl Fn(String) -> Fut) {
    let mut t = open("appends".into()).await;
    write(&mut t, &WriteMode::Append, rows(&[("a", 1, 1), ("b", 2, 1)]), vec![("src/1".into(), 7)]).await;
    let mut staged = t.begin(&WriteMode::Append).expect("begin");
    t.stage(&mut staged, rows(&[("c", 3, 1)])).await.expect("stage");
    t.stage(&mut staged, rows(&[("d", 4, 1)])).await.expect("stage");
    t.commit(staged, vec![("src/2".into(), 3)], Vec::new()).await.expect("commit");
    // positions only
    let staged = t.begin(&WriteMode::Append).expect("begin");
    t.commit(staged, vec![("src/1".into(), 9)], Vec::new()).await.expect("a commit of positions only");
    let again = open("appends".into()).await;
    assert_eq!(all(&again).await, owned(&[("a", 1, 1), ("b", 2, 1), ("c", 3, 1), ("d", 4, 1)]), "rows survive");
    assert_eq!(again.position("src/1").await.expect("position"), Some(9), "positions survive");
    assert_eq!(again.position("src/2").await.expect("position"), Some(3));
    assert_eq!(again.position("src/3").await.expect("position"), None, "an input never committed");
    assert_eq!(again.version(), t.version(), "both handles read the same version");
}

async fn staged_rows_without_their_commit_change_nothing<S: TableStore, Fut: Future<Output = S>>(
    open: &impl Fn(String) -> Fut,
) {
    let mut t = open("crash".into()).await;
    write(&mut t, &WriteMode::Append, rows(&[("a", 1, 1)]), vec![("src".into(), 1)]).await;
    for mode in
        [WriteMode::Append, WriteMode::Upsert { key: vec!["id".into()], sequence: "seq".into(), deletes: false }]
    {
        let mut staged = t.begin(&mode).expect("begin");
        t.stage(&mut staged, rows(&[("a", 5, 2), ("z", 9, 1)])).await.expect("stage");
        drop(staged); // the process died before the commit
    }
    let again = open("crash".into()).await;
    assert_eq!(all(&again).await, owned(&[("a", 1, 1)]), "staged rows are not in the table");
    assert_eq!(again.position("src").await.expect("position"), Some(1), "the position did not move");
}

async fn compare_and_set_refuses_a_moved_position<S: TableStore, Fut: Future<Output = S>>(
    open: &impl Fn(String) -> Fut,
) {
    let mut first = open("cas".into()).await;
    write(&mut first, &WriteMode::Append, rows(&[("a", 1, 1)]), vec![("p0".into(), 10)]).await;
    let mut second = open("cas".into()).await;
    let expected = vec![("p0".to_string(), Some(10))];
    let mut staged = first.begin(&WriteMode::Append).expect("begin");
    first.stage(&mut staged, rows(&[("b", 2, 1)])).await.expect("stage");
    let won = first.commit_checked(staged, vec![("p0".into(), 20)], &expected, Vec::new()).await.expect("commit");
    assert!(won.is_ok(), "the first writer's position was still 10");
    let mut staged = second.begin(&WriteMode::Append).expect("begin");
    second.stage(&mut staged, rows(&[("b", 2, 1)])).await.expect("stage");
    let lost = second.commit_checked(staged, vec![("p0".into(), 20)], &expected, Vec::new()).await.expect("commit");
    let moved = lost.expect_err("the position moved to 20");
    assert_eq!((moved.app_id.as_str(), moved.expected, moved.stored), ("p0", Some(10), Some(20)));
    second.refresh().await.expect("refresh");
    assert_eq!(all(&second).await, owned(&[("a", 1, 1), ("b", 2, 1)]), "the loser wrote nothing");
}

/// Insert-if-absent, upsert, delete and counter merge give the rows their
/// modes define (also run alone, on tables whose key is declared).
pub async fn keyed_modes_hold<S: TableStore, Fut: Future<Output = S>>(open: &impl Fn(String) -> Fut) {
    let key = vec!["id".to_string()];
    let mut t = open("insert_if_absent".into()).await;
    let mode = WriteMode::InsertIfAbsent { key: key.clone() };
    write(&mut t, &mode, rows(&[("a", 1, 1), ("b", 2, 1)]), Vec::new()).await;
    write(&mut t, &mode, rows(&[("b", 20, 2), ("c", 3, 1)]), Vec::new()).await;
    assert_eq!(all(&t).await, owned(&[("a", 1, 1), ("b", 2, 1), ("c", 3, 1)]), "insert-if-absent keeps the first");

    let mut t = open("upsert".into()).await;
    let mode = WriteMode::Upsert { key: key.clone(), sequence: "seq".into(), deletes: false };
    write(&mut t, &mode, rows(&[("a", 1, 5), ("b", 2, 1)]), Vec::new()).await;
    write(&mut t, &mode, rows(&[("a", 10, 4), ("b", 20, 2), ("b", 30, 3)]), Vec::new()).await;
    assert_eq!(all(&t).await, owned(&[("a", 1, 5), ("b", 30, 3)]), "upsert keeps the highest sequence");

    let mut t = open("delete".into()).await;
    write(&mut t, &WriteMode::Append, rows(&[("a", 1, 1), ("b", 2, 1), ("c", 3, 1)]), Vec::new()).await;
    write(&mut t, &WriteMode::Delete { key: key.clone() }, rows(&[("b", 0, 0), ("x", 0, 0)]), Vec::new()).await;
    assert_eq!(all(&t).await, owned(&[("a", 1, 1), ("c", 3, 1)]), "delete removes the batch's keys");

    let mut t = open("counter".into()).await;
    let measures = vec![("n".to_string(), Measure::Sum), ("seq".to_string(), Measure::Max)];
    let mode = WriteMode::CounterMerge { key: key.clone(), measures };
    write(&mut t, &mode, rows(&[("a", 1, 1), ("a", 2, 3), ("b", 5, 1)]), Vec::new()).await;
    write(&mut t, &mode, rows(&[("a", 10, 2), ("c", 7, 1)]), Vec::new()).await;
    assert_eq!(all(&t).await, owned(&[("a", 13, 3), ("b", 5, 1), ("c", 7, 1)]), "counters sum, maxima hold");

    let mut t = open("history".into()).await;
    let mode = WriteMode::History { key, sequence: "seq".into() };
    write(&mut t, &mode, rows(&[("a", 1, 5), ("b", 2, 1)]), Vec::new()).await;
    // a version older than the stored one, a newer one, a replayed one, a new key twice in one batch
    write(&mut t, &mode, rows(&[("a", 10, 3), ("b", 20, 2), ("a", 1, 5), ("c", 7, 1), ("c", 7, 1)]), Vec::new()).await;
    write(&mut t, &mode, rows(&[("a", 100, 9)]), Vec::new()).await;
    let expected = [
        ("a", 10, 3, Some(5), false),
        ("a", 1, 5, Some(9), false),
        ("a", 100, 9, None, true),
        ("b", 2, 1, Some(2), false),
        ("b", 20, 2, None, true),
        ("c", 7, 1, None, true),
    ];
    let mut expected: Vec<_> = expected.iter().map(|(k, n, s, to, cur)| (k.to_string(), *n, *s, *to, *cur)).collect();
    expected.sort();
    assert_eq!(history(&t.scan().await.expect("scan")), expected, "every version, ends in sequence order");
}

/// (id, n, seq, valid_to, is_current) of a history's rows, sorted; each
/// row's `valid_from` is checked to be its `seq`.
fn history(batches: &[RecordBatch]) -> Vec<(String, i64, i64, Option<i64>, bool)> {
    use arrow_array::cast::AsArray;
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| b.column_by_name(name).unwrap_or_else(|| panic!("a column `{name}`")).clone();
        let (ids, n, seq) = (texts(&col("id")), ints(&col("n")), ints(&col("seq")));
        let from = ints(&col(ingesta_core::VALID_FROM));
        let to = col(ingesta_core::VALID_TO);
        let current = col(ingesta_core::IS_CURRENT);
        let current = current.as_boolean();
        for i in 0..b.num_rows() {
            assert_eq!(from[i], seq[i], "valid_from is the version's sequence");
            let to = (!to.is_null(i)).then(|| ints(&to)[i]);
            out.push((ids[i].clone(), n[i], seq[i], to, current.value(i)));
        }
    }
    out.sort();
    out
}

async fn rows_since_gives_what_was_appended_after_a_version<S: TableStore, Fut: Future<Output = S>>(
    open: &impl Fn(String) -> Fut,
) {
    let mut t = open("since".into()).await;
    let empty = t.version();
    write(&mut t, &WriteMode::Append, rows(&[("a", 1, 1)]), Vec::new()).await;
    let first = t.version();
    write(&mut t, &WriteMode::Append, rows(&[("b", 2, 1), ("c", 3, 1)]), Vec::new()).await;
    let (to, all_rows) = t.rows_since(empty).await.expect("rows since");
    assert_eq!((to, sorted(&all_rows)), (t.version(), owned(&[("a", 1, 1), ("b", 2, 1), ("c", 3, 1)])));
    let (_, later) = t.rows_since(first).await.expect("rows since");
    assert_eq!(sorted(&later), owned(&[("b", 2, 1), ("c", 3, 1)]), "only what came after");
    let (to, none) = t.rows_since(t.version()).await.expect("rows since");
    assert_eq!((to, none.iter().map(RecordBatch::num_rows).sum::<usize>()), (t.version(), 0));
}
