//! Lake errors, mapped to the core's kinds (retry, stop).

use deltalake::DeltaTableError;
use ingesta_core::{Error, ErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake root `{root}`: {reason}")]
    Root { root: String, reason: String },
    #[error("table `{table}`: {source}")]
    Delta { table: String, source: DeltaTableError },
    #[error("table `{table}`: {reason}")]
    Unsupported { table: String, reason: String },
}

impl LakeError {
    pub fn delta(table: &str, source: DeltaTableError) -> Self {
        Self::Delta { table: table.to_string(), source }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            LakeError::Delta { source, .. } => match source {
                DeltaTableError::ObjectStore { .. }
                | DeltaTableError::Io { .. }
                | DeltaTableError::VersionAlreadyExists(_)
                | DeltaTableError::Transaction { .. } => ErrorKind::Retry,
                _ => ErrorKind::Stop,
            },
            LakeError::Root { .. } | LakeError::Unsupported { .. } => ErrorKind::Stop,
        }
    }
}

impl From<LakeError> for Error {
    fn from(e: LakeError) -> Self {
        Error { kind: e.kind(), message: e.to_string() }
    }
}
