//! Sources: where records come from. Each source finds its inputs, reads them
//! into Arrow record batches typed to the table's columns, and sends the records
//! it cannot read to quarantine with their position and reason. Reading is
//! synchronous and resumable from a position; committing is the runtime's job.

pub mod decode;
mod error;
pub mod infer;
pub mod landing;
pub mod schema;

pub use decode::Chunk;
pub use error::SourceError;
pub use landing::{FileInfo, Landing};
