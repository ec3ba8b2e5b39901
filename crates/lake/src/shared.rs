//! Small helpers more than one part of the lake uses: the compaction
//! guard's application id, partition values as columns, rows cast to a
//! table's types, the row count in a file's statistics.

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, SchemaRef};
use deltalake::DeltaTableError;
use deltalake::datafusion::common::ScalarValue;
use parquet::errors::ParquetError;

/// The `txn` application id every compaction commits (`LakeTable::compact`);
/// a merge commits it too, so a compaction racing a merge fails.
pub const COMPACTION_APP: &str = ingesta_core::app_id::COMPACTION;

/// `n` copies of a partition value, as the column's type.
pub(crate) fn constant(value: Option<&str>, ty: &DataType, n: usize) -> Result<ArrayRef, ParquetError> {
    let general = |e: deltalake::datafusion::error::DataFusionError| ParquetError::General(e.to_string());
    let scalar = match value {
        Some(v) => ScalarValue::try_from_string(v.to_string(), ty).map_err(general)?,
        None => ScalarValue::try_new_null(ty).map_err(general)?,
    };
    scalar.to_array_of_size(n).map_err(general)
}

/// Rows cast back to the table's types, column by name (aggregate sums
/// widen; DataFusion reads strings as views).
pub(crate) fn conform(schema: &SchemaRef, rows: Vec<RecordBatch>) -> Result<Vec<RecordBatch>, DeltaTableError> {
    rows.into_iter()
        .map(|b| {
            let cols = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = b
                        .column_by_name(f.name())
                        .ok_or_else(|| DeltaTableError::Generic(format!("no column `{}` in the rows", f.name())))?;
                    // not `safe`: a sum too large for the column is an error, not a null
                    let opts = arrow_cast::CastOptions { safe: false, ..Default::default() };
                    Ok(arrow_cast::cast_with_options(c, f.data_type(), &opts)?)
                })
                .collect::<Result<Vec<_>, DeltaTableError>>()?;
            Ok(RecordBatch::try_new(schema.clone(), cols)?)
        })
        .collect()
}

/// The rows Delta's statistics of a file (JSON) give.
pub(crate) fn stats_records(stats: &str) -> Option<usize> {
    let stats: serde_json::Value = serde_json::from_str(stats).ok()?;
    stats.get("numRecords")?.as_u64().map(|n| n as usize)
}
