//! The error type shared by the stores and the runtime. Every error carries a
//! kind that tells the caller what to do with it.

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A passing fault (I/O, a conflicting commit): try again with backoff.
    Retry,
    /// One record is bad: quarantine it with the reason and go on.
    Quarantine,
    /// Configuration or invariant broken: stop this table and say why.
    Stop,
}

/// An error with its kind and a message written for the person running the pipeline.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn retry(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Retry, message: message.into() }
    }
    pub fn stop(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Stop, message: message.into() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
