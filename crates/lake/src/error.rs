//! Lake errors, mapped to the core's kinds (retry, stop).

use arrow_schema::ArrowError;
use deltalake::DeltaTableError;
use deltalake::datafusion::error::DataFusionError;
use ingesta_core::{Error, ErrorKind};
use parquet::errors::ParquetError;

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("lake root `{root}`: {reason}")]
    Root { root: String, reason: String },
    #[error("table `{table}`: {source}")]
    Delta { table: String, source: DeltaTableError },
    #[error("table `{table}`: {reason}")]
    Unsupported { table: String, reason: String },
    /// Reading one of the table's data files failed.
    #[error("table `{table}`: reading {file}: {source}")]
    Read { table: String, file: String, source: Box<DeltaTableError> },
}

impl LakeError {
    pub fn delta(table: &str, source: DeltaTableError) -> Self {
        Self::Delta { table: table.to_string(), source }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            LakeError::Delta { source, .. } => delta_kind(source),
            LakeError::Read { source, .. } => delta_kind(source),
            LakeError::Root { .. } | LakeError::Unsupported { .. } => ErrorKind::Stop,
        }
    }
}

/// I/O, the object store and a conflicting commit are passing faults.
fn delta_kind(e: &DeltaTableError) -> ErrorKind {
    match e {
        DeltaTableError::ObjectStore { .. }
        | DeltaTableError::Io { .. }
        | DeltaTableError::VersionAlreadyExists(_)
        | DeltaTableError::Transaction { .. } => ErrorKind::Retry,
        DeltaTableError::Parquet { source } => parquet_kind(source),
        _ => ErrorKind::Stop,
    }
}

impl From<LakeError> for Error {
    fn from(e: LakeError) -> Self {
        Error::new(e.kind(), e.to_string()).caused_by(e)
    }
}

/// What to do about a DataFusion error met while planning or reading a
/// table: a read that failed on the way (I/O, the object store, a file cut
/// short, a Delta I/O error inside a scan) is a passing fault to retry;
/// plans, schemas, SQL and everything else stop the table.
pub fn datafusion_kind(e: &DataFusionError) -> ErrorKind {
    match e {
        DataFusionError::IoError(_) | DataFusionError::ObjectStore(_) => ErrorKind::Retry,
        DataFusionError::ParquetError(p) => parquet_kind(p),
        DataFusionError::ArrowError(a, _) => arrow_kind(a),
        DataFusionError::External(inner) => external_kind(inner.as_ref()),
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => datafusion_kind(inner),
        DataFusionError::Shared(inner) => datafusion_kind(inner),
        DataFusionError::Collection(all) => match all.first() {
            Some(first) => datafusion_kind(first),
            None => ErrorKind::Stop,
        },
        _ => ErrorKind::Stop,
    }
}

fn parquet_kind(e: &ParquetError) -> ErrorKind {
    match e {
        ParquetError::EOF(_) | ParquetError::NeedMoreData(_) => ErrorKind::Retry,
        ParquetError::External(inner) => external_kind(inner.as_ref()),
        _ => ErrorKind::Stop,
    }
}

fn arrow_kind(e: &ArrowError) -> ErrorKind {
    match e {
        ArrowError::IoError(..) => ErrorKind::Retry,
        ArrowError::ExternalError(inner) => external_kind(inner.as_ref()),
        _ => ErrorKind::Stop,
    }
}

fn external_kind(e: &(dyn std::error::Error + Send + Sync + 'static)) -> ErrorKind {
    if let Some(e) = e.downcast_ref::<LakeError>() {
        e.kind()
    } else if let Some(e) = e.downcast_ref::<DataFusionError>() {
        datafusion_kind(e)
    } else if let Some(e) = e.downcast_ref::<DeltaTableError>() {
        delta_kind(e)
    } else if let Some(e) = e.downcast_ref::<ParquetError>() {
        parquet_kind(e)
    } else if let Some(e) = e.downcast_ref::<ArrowError>() {
        arrow_kind(e)
    } else if e.is::<std::io::Error>() || e.is::<object_store::Error>() {
        ErrorKind::Retry
    } else {
        ErrorKind::Stop
    }
}
