//! The warehouse store: pipeline tables in PostgreSQL under the same table
//! contract as the lake (`ingesta_core::TableStore`). Rows are bulk-loaded
//! with binary `COPY` into a staging table and applied in their write mode by
//! set-based statements; rows and input positions commit in one PostgreSQL
//! transaction, fenced by a lock on the table's row of `ingesta.tables`.
//!
//! * `connect.rs`: the URL, TLS, the connection limit, error classification;
//! * `types.rs`: the Arrow ↔ PostgreSQL type map;
//! * `ddl.rs`: creating, adopting or refusing a table; the store's catalog;
//! * `copy.rs`: Arrow arrays to binary `COPY`;
//! * `modes.rs`: each write mode as SQL;
//! * `table.rs`: `WarehouseTable`, the contract;
//! * `read.rs`: rows back to Arrow.

mod connect;
mod copy;
mod ddl;
mod modes;
mod partitions;
mod read;
mod table;
mod types;

pub use connect::{Conn, Warehouse, classify};
pub use ddl::{TableSpec, differences, existing};
pub use partitions::{Grain, TimePartition};
pub use table::{Staged, WarehouseTable};
pub use types::PgType;
