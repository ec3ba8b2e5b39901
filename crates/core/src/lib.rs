//! Ingesta's core vocabulary, free of heavy dependencies: what travels through a
//! pipeline (Arrow record batches with their input positions), the table contract
//! every store honours, quarantined records, and error kinds that say what to do.

pub mod error;
pub mod position;
pub mod quarantine;
pub mod table;

pub use error::{Error, ErrorKind, Result};
pub use position::{FileKey, Progress, app_id};
pub use quarantine::{QuarantineRecord, Reason};
pub use table::{CommitReceipt, DELETE_FLAG, IS_CURRENT, Measure, Moved, TableStore, VALID_FROM, VALID_TO, WriteMode};
