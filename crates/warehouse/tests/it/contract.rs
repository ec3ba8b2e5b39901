//! The table contract's suite (`ingesta_testkit::contract`), unchanged, on PostgreSQL.

use super::*;

#[tokio::test]
async fn postgresql_honours_the_table_contract() {
    let pg = Postgres::start();
    let (_, wh) = warehouse(&pg);
    ingesta_testkit::contract::run(|name: String| {
        let (wh, schema) = (wh.clone(), ingesta_testkit::contract::schema_of(&name));
        async move { WarehouseTable::open(&wh, &spec(&name), &schema).await.expect("a table") }
    })
    .await;
}

/// The suite's keyed modes on tables whose key is declared: keyed writes
/// then go through `ON CONFLICT` on the unique index instead of anti-joins.
#[tokio::test]
async fn keyed_modes_hold_on_a_declared_key() {
    let pg = Postgres::start();
    let (db, wh) = warehouse(&pg);
    ingesta_testkit::contract::keyed_modes_hold(&|name: String| {
        let (wh, schema) = (wh.clone(), ingesta_testkit::contract::schema_of(&name));
        async move {
            // a history's rows are versions: its key holds when each starts
            let key = match name.starts_with("history") {
                true => vec!["id".into(), ingesta_core::VALID_FROM.into()],
                false => vec!["id".into()],
            };
            let spec = TableSpec { key, ..spec(&name) };
            WarehouseTable::open(&wh, &spec, &schema).await.expect("a table")
        }
    })
    .await;
    let unique = pg.psql(&db, "SELECT count(*) FROM pg_index i JOIN pg_class r ON r.oid = i.indrelid WHERE r.relname = 'upsert' AND i.indisunique");
    assert_eq!(unique, "1", "the key is a unique index");
}
