//! What can go wrong reading a source, and so what the runtime does about it.

use ingesta_core::{Error, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source's settings cannot work (a bad glob, an unknown URL scheme,
    /// an object store that refuses the options): fix the pipeline.
    #[error("{0}")]
    Config(String),
    /// A file cannot be read as its format says (its footer, its columns).
    #[error("{0}")]
    Unreadable(String),
    /// A service the source needs (the Schema Registry) cannot be reached:
    /// nothing is quarantined for it, the batch is tried again.
    #[error("{0}")]
    Unavailable(String),
}

impl From<SourceError> for Error {
    fn from(e: SourceError) -> Self {
        let kind = match e {
            SourceError::Config(_) | SourceError::Unreadable(_) => ErrorKind::Stop,
            SourceError::Unavailable(_) => ErrorKind::Retry,
        };
        Error::new(kind, e.to_string()).caused_by(e)
    }
}
