//! The lake: Delta tables under a root (a local folder, or an object-store URL).
//! A commit writes Parquet files and records, in the same Delta commit, the
//! input positions it covers as `txn` actions, so a replayed batch is skipped
//! and a restart resumes exactly where the last commit ended.

mod changes;
mod claims;
mod copy;
mod counter;
mod encoding;
mod error;
mod file_write;
mod files_exec;
mod ledger;
mod maintain;
mod merge;
mod notes;
mod quarantine;
mod read;
mod recent;
mod replace;
mod root;
mod shared;
mod store;
mod table;
mod writers;

pub use changes::{AddedFile, Appended, CHANGE_COLUMNS, change_schema};
pub use deltalake::datafusion;
pub use error::{LakeError, datafusion_kind};
pub use maintain::Compacted;
pub use merge::{one_per_key_sql, q as quote_ident};
pub use quarantine::{quarantine_batch, quarantine_schema};
pub use read::IN_MEMORY;
pub use replace::{PartitionRange, Replaced};
pub use root::Lake;
pub use table::{LakeTable, Staged, TableStats};
pub use url::Url;
