//! Every `txn` action of a table in one pass: the latest checkpoint's `txn`
//! column, then the JSON commits after it (newest wins). delta-rs answers one
//! application id per call, each call replaying the log; a landing folder
//! with thousands of files needs them all at once.
//!
//! Only the classic checkpoint layout (one file, or numbered parts) is read;
//! for anything else this returns `None` and callers ask per input.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, StructArray};
use deltalake::{DeltaTable, DeltaTableError, ObjectStoreError, Path};
use object_store::ObjectStoreExt;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// `app_id -> version` for every `txn` up to `version`, or `None` when the log
/// has a shape this reader does not handle.
pub async fn transactions(table: &DeltaTable, version: i64) -> Result<Option<HashMap<String, i64>>, DeltaTableError> {
    transactions_where(table, version, &|_| true).await
}

/// Like [`transactions`], keeping only the ids `keep` keeps (the others are
/// read and dropped, never held).
pub async fn transactions_where(
    table: &DeltaTable,
    version: i64,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Option<HashMap<String, i64>>, DeltaTableError> {
    let store = table.log_store().object_store(None);
    let mut txns = HashMap::new();
    let checkpoint = match store.get(&Path::from("_delta_log/_last_checkpoint")).await {
        Ok(r) => {
            let hint: serde_json::Value = serde_json::from_slice(&r.bytes().await?).unwrap_or_default();
            if hint.get("v2Checkpoint").is_some() {
                return Ok(None);
            }
            match (hint["version"].as_i64(), hint["parts"].as_u64()) {
                (Some(v), _) if v > version => return Ok(None),
                (Some(v), parts) => Some((v, parts)),
                (None, _) => return Ok(None),
            }
        }
        Err(ObjectStoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let first_commit = match checkpoint {
        None => 0,
        Some((v, parts)) => {
            let files: Vec<String> = match parts {
                None | Some(1) => vec![format!("_delta_log/{v:020}.checkpoint.parquet")],
                Some(n) => (1..=n).map(|i| format!("_delta_log/{v:020}.checkpoint.{i:010}.{n:010}.parquet")).collect(),
            };
            for f in files {
                let bytes = store.get(&Path::from(f)).await?.bytes().await?;
                if !read_checkpoint(bytes, keep, &mut txns)? {
                    return Ok(None);
                }
            }
            v + 1
        }
    };
    for v in first_commit..=version {
        let Some(bytes) = table.log_store().read_commit_entry(v as u64).await? else {
            return Ok(None); // a commit is gone (log cleanup without a checkpoint we know)
        };
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else { return Ok(None) };
            if let Some(t) = action.get("txn") {
                match (t["appId"].as_str(), t["version"].as_i64()) {
                    (Some(id), Some(ver)) if keep(id) => txns.insert(id.to_string(), ver),
                    (Some(_), Some(_)) => None,
                    _ => return Ok(None),
                };
            }
        }
    }
    Ok(Some(txns))
}

/// Adds the `txn` rows of one checkpoint file; false when it has no such column.
fn read_checkpoint(
    bytes: bytes::Bytes,
    keep: &dyn Fn(&str) -> bool,
    txns: &mut HashMap<String, i64>,
) -> Result<bool, DeltaTableError> {
    let err = |e: parquet::errors::ParquetError| DeltaTableError::Generic(format!("reading a checkpoint: {e}"));
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(err)?;
    let Some(root) = builder.parquet_schema().root_schema().get_fields().iter().position(|f| f.name() == "txn") else {
        return Ok(false);
    };
    let mask = ProjectionMask::roots(builder.parquet_schema(), [root]);
    for batch in builder.with_projection(mask).build().map_err(err)? {
        let batch = batch.map_err(|e| DeltaTableError::Generic(format!("reading a checkpoint: {e}")))?;
        let txn: &StructArray = batch.column(0).as_struct();
        let (Some(ids), Some(versions)) = (txn.column_by_name("appId"), txn.column_by_name("version")) else {
            return Ok(false);
        };
        let (ids, versions) = (ids.as_string::<i32>(), versions.as_primitive::<Int64Type>());
        for i in (0..txn.len()).filter(|&i| txn.is_valid(i) && ids.is_valid(i) && keep(ids.value(i))) {
            txns.insert(ids.value(i).to_string(), versions.value(i));
        }
    }
    Ok(true)
}
