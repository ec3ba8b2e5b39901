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

/// An error with its kind and a message written for the person running the
/// pipeline. The error it came from, when there is one, is kept (`cause`)
/// for code that asks what happened; the message already says it, so it is
/// not repeated as a `source` in printed chains.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), cause: None }
    }
    pub fn retry(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Retry, message)
    }
    pub fn stop(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Stop, message)
    }

    /// Keeps `cause`, the error this one reports.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Box::new(cause));
        self
    }

    /// The error this one reports, if it came from one (downcast it to ask
    /// what exactly failed).
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }

    /// The same error with its message prefixed (`table `x`: ...`).
    pub fn context(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_is_kept_and_not_printed_twice() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "the disk was slow");
        let e = Error::retry(format!("reading a.parquet: {io}")).caused_by(io).context("table `t`");
        assert_eq!(e.to_string(), "table `t`: reading a.parquet: the disk was slow");
        let cause = e.cause().and_then(|c| c.downcast_ref::<std::io::Error>()).expect("an I/O error");
        assert_eq!(cause.kind(), std::io::ErrorKind::TimedOut);
        assert!(std::error::Error::source(&e).is_none(), "the message already says it");
    }
}
