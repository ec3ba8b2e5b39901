//! The warehouse store against a real PostgreSQL server (the test kit's).

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ingesta_core::{TableStore, WriteMode};
use ingesta_testkit::Postgres;
use ingesta_warehouse::{TableSpec, Warehouse, WarehouseTable};

mod contract;
mod types;

fn spec(name: &str) -> TableSpec {
    TableSpec { name: name.into(), schema: "public".into(), table: name.into(), key: Vec::new(), partition: None }
}

/// A fresh database of `pg` (its name) and the warehouse connection to it.
fn warehouse(pg: &Postgres) -> (String, Warehouse) {
    let db = pg.fresh_database();
    let wh = Warehouse::new(&pg.url(&db), 4).expect("a warehouse url");
    (db, wh)
}
