//! Tables created, adopted and refused; values of every mapped type round trip.

use super::*;

#[tokio::test]
async fn an_incompatible_table_is_refused_naming_both_sides() {
    let pg = Postgres::start();
    let (db, wh) = warehouse(&pg);
    pg.psql(&db, "CREATE TABLE orders (id bigint, amount text)");
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("amount", DataType::Int64, true),
        Field::new("note", DataType::Utf8, true),
    ]);
    let err = WarehouseTable::open(&wh, &spec("orders"), &schema).await.err().expect("refused");
    let m = err.message;
    assert!(m.contains("public.orders"), "{m}");
    assert!(m.contains("column `id` is `bigint` but the pipeline writes Utf8"), "{m}");
    assert!(m.contains("column `amount` is `text` but the pipeline writes Int64"), "{m}");
    assert!(!m.contains("note"), "a column the table lacks is added, not refused: {m}");
}

#[tokio::test]
async fn a_table_lacking_a_column_gains_it_nullable() {
    let pg = Postgres::start();
    let (db, wh) = warehouse(&pg);
    pg.psql(&db, "CREATE TABLE notes (id bigint); INSERT INTO notes VALUES (1)");
    let schema = Schema::new(vec![Field::new("id", DataType::Int64, true), Field::new("note", DataType::Utf8, true)]);
    let t = WarehouseTable::open(&wh, &spec("notes"), &schema).await.expect("adopted");
    assert!(t.columns().iter().any(|(n, _)| n == "note"));
    assert_eq!(pg.psql(&db, "SELECT count(*) FROM notes WHERE note IS NULL"), "1");
}

#[tokio::test]
async fn a_wrong_password_is_clear_and_not_printed() {
    let pg = Postgres::start();
    let url = format!("postgresql://ingesta:not-the-password-42@127.0.0.1:{}/postgres", pg.port);
    let wh = Warehouse::new(&url, 1).expect("a url");
    let err = WarehouseTable::open(&wh, &spec("t"), &Schema::empty()).await.err().expect("refused");
    assert!(err.message.contains("password authentication failed"), "{}", err.message);
    assert!(!err.message.contains("not-the-password-42"), "{}", err.message);
    assert_eq!(err.kind, ingesta_core::ErrorKind::Stop);
}

#[tokio::test]
async fn an_existing_compatible_table_is_adopted() {
    let pg = Postgres::start();
    let (db, wh) = warehouse(&pg);
    pg.psql(&db, "CREATE TABLE t (id text PRIMARY KEY, n numeric(12,2), extra jsonb)");
    pg.psql(&db, "INSERT INTO t VALUES ('old', 1.50, '{\"a\": 1}')");
    let schema =
        Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false), Field::new("n", DataType::Int64, true)]));
    let mut t = WarehouseTable::open(&wh, &spec("t"), &schema).await.expect("adopted");
    let batch = RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(vec!["new"])), Arc::new(Int64Array::from(vec![7]))],
    )
    .expect("a batch");
    let mut staged = t.begin(&WriteMode::Append).expect("begin");
    t.stage(&mut staged, batch).await.expect("stage");
    t.commit(staged, vec![("in".into(), 1)], Vec::new()).await.expect("commit");
    assert_eq!(pg.psql(&db, "SELECT id, n, extra FROM t ORDER BY id"), "new|7.00|\nold|1.50|{\"a\": 1}");
}
