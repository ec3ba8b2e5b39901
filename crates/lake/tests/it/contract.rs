//! The table contract's suite (`ingesta_testkit::contract`) on the lake.

use super::*;

#[tokio::test]
async fn the_lake_honours_the_table_contract() {
    let (_dir, lake) = temp_lake();
    ingesta_testkit::contract::run(|name: String| {
        let (lake, schema) = (lake.clone(), ingesta_testkit::contract::schema_of(&name));
        async move {
            let url = lake.table_url(&name);
            LakeTable::open_or_create(&lake, &name, &url, &schema, &[], "contract").await.expect("a table")
        }
    })
    .await;
}
