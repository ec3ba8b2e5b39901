//! The lake: Delta tables under a root (a local folder, or an object-store URL).
//! A commit writes Parquet files and records, in the same Delta commit, the
//! input positions it covers as `txn` actions, so a replayed batch is skipped
//! and a restart resumes exactly where the last commit ended.

mod error;
mod ledger;
mod quarantine;
mod root;
mod table;

pub use error::LakeError;
pub use quarantine::{quarantine_batch, quarantine_schema};
pub use root::Lake;
pub use table::{LakeTable, Staged, TableStats};
