//! The table contract's suite (`ingesta_testkit::contract`), unchanged, on PostgreSQL.

use super::*;

#[tokio::test]
async fn postgresql_honours_the_table_contract() {
    let pg = Postgres::start();
    let (_, wh) = warehouse(&pg);
    let schema = ingesta_testkit::contract::schema();
    ingesta_testkit::contract::run(|name: String| {
        let (wh, schema) = (wh.clone(), schema.clone());
        async move { WarehouseTable::open(&wh, &spec(&name), &schema).await.expect("a table") }
    })
    .await;
}
