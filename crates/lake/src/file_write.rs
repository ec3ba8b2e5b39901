//! A small commit's data files, each encoded in memory and put in one
//! request, their `add` actions (statistics included) made here. delta-rs's
//! `RecordBatchWriter` streams a file through an async Parquet writer into a
//! buffered upload task, which is right for large files; a watched gold
//! table's counter merge writes one file of a few thousand rows, and there
//! that machinery cost more than the encoding (decision 0021).
//!
//! The statistics are the ones delta-rs writes, taken from the Arrow
//! columns instead of the Parquet footer: `numRecords`, and for the first
//! 32 columns that are not partition columns `nullCount`, `minValues` and
//! `maxValues` (timestamps at millisecond precision, as delta-rs and Spark
//! write them; strings up to 64 bytes, as Parquet's statistics keep them;
//! no bounds for a float column holding NaN or an infinity). A batch with a
//! column of another type, or a table that names its statistics columns, is
//! written by delta-rs's writer instead.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{ArrowPrimitiveType, TimestampMicrosecondType};
use arrow_array::types::{Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use arrow_array::{Array, ArrayRef, PrimitiveArray, RecordBatch, UInt32Array};
use arrow_schema::{DataType, Schema, SchemaRef, TimeUnit};
use deltalake::DeltaTableError;
use deltalake::kernel::Add;
use deltalake::kernel::scalars::ScalarExt;
use deltalake::protocol::{ColumnCountStat, ColumnValueStat, Stats};
use deltalake::writer::DeltaWriter;
use indexmap::IndexMap;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use crate::LakeTable;
use crate::encoding::file_properties;

/// Columns with statistics, at most (Delta's `dataSkippingNumIndexedCols` default).
const STATS_COLUMNS: usize = 32;

/// Strings longer than this (bytes) get no bounds (Parquet's statistics
/// truncate at this length).
const MAX_STRING: usize = 64;

/// Writes `batch` (the table's columns) as the table's data files: one per
/// partition, encoded in memory, when its columns allow (see the module),
/// else by delta-rs's writer. Returns their `add` actions.
pub(crate) async fn write_small(t: &LakeTable, batch: RecordBatch) -> Result<Vec<Add>, DeltaTableError> {
    let parts = t.partition_columns();
    if !writes(t, batch.schema_ref(), &parts) {
        let mut writer = t.writer()?;
        writer.write(batch).await?;
        return writer.flush().await;
    }
    let store = t.table.log_store().object_store(None);
    let id = uuid::Uuid::new_v4();
    let mut adds = Vec::new();
    for (i, (part, rows)) in split(&batch, &parts)?.into_iter().enumerate() {
        let (bytes, stats) = encode(&rows, &parts)?;
        let prefix = Path::parse(&part.folder).map_err(|e| DeltaTableError::Generic(e.to_string()))?;
        let path = prefix.join(format!("part-{i:05}-{id}-c000.snappy.parquet"));
        let size = bytes.len() as i64;
        store.put(&path, bytes.into()).await?;
        adds.push(Add {
            path: path.to_string(),
            size,
            partition_values: part.values,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(serde_json::to_string(&stats)?),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        });
    }
    Ok(adds)
}

/// Whether this module writes `schema`'s columns for `t`: every column not a
/// partition column of a type it takes statistics of, the table's
/// statistics columns the default ones, and no column mapping.
fn writes(t: &LakeTable, schema: &SchemaRef, parts: &[String]) -> bool {
    let Ok(snapshot) = t.table.snapshot() else { return false };
    let config = snapshot.metadata().configuration();
    let default_stats = !config.contains_key("delta.dataSkippingStatsColumns")
        && config.get("delta.dataSkippingNumIndexedCols").is_none_or(|n| n == "32");
    let mapped = config.get("delta.columnMapping.mode").is_some_and(|m| m != "none");
    default_stats && !mapped && schema.fields().iter().all(|f| parts.contains(f.name()) || bounds_of(f.data_type()))
}

/// Whether a column of `ty` gets its bounds computed here.
fn bounds_of(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Float32
            | DataType::Float64
            | DataType::Date32
            | DataType::Utf8
            | DataType::Timestamp(TimeUnit::Microsecond, _)
    )
}

/// The rows of `batch` per partition (all of them when the table has none),
/// with that partition's values, in the order the partitions first appear.
fn split(batch: &RecordBatch, parts: &[String]) -> Result<Vec<(Partition, RecordBatch)>, DeltaTableError> {
    if parts.is_empty() || batch.num_rows() == 0 {
        return Ok(vec![(Partition::default(), batch.clone())]);
    }
    let columns: Vec<ArrayRef> = parts
        .iter()
        .map(|p| Ok(batch.column(batch.schema().index_of(p)?).clone()))
        .collect::<Result<_, DeltaTableError>>()?;
    // most batches hold one partition (a day): one comparison pass says so
    if arrow_ord::partition::partition(&columns)?.len() == 1 {
        let values = partition_of(parts, &columns, 0)?;
        return Ok(vec![(values, batch.clone())]);
    }
    let converter = arrow_row::RowConverter::new(
        columns.iter().map(|c| arrow_row::SortField::new(c.data_type().clone())).collect(),
    )?;
    let keys = converter.convert_columns(&columns)?;
    // row indices per distinct partition, in first-seen order
    let mut groups: IndexMap<arrow_row::Row<'_>, Vec<u32>> = IndexMap::new();
    for (i, key) in keys.iter().enumerate() {
        groups.entry(key).or_default().push(i as u32);
    }
    let mut out = Vec::with_capacity(groups.len());
    for rows in groups.into_values() {
        let values = partition_of(parts, &columns, rows[0] as usize)?;
        out.push((values, arrow_select::take::take_record_batch(batch, &UInt32Array::from(rows))?));
    }
    Ok(out)
}

/// The partition of row `row`, given the partition `columns` (named `parts`).
fn partition_of(parts: &[String], columns: &[ArrayRef], row: usize) -> Result<Partition, DeltaTableError> {
    let values = crate::writers::partition_values(parts, columns, row)?;
    let folders: Vec<String> = values.iter().map(|(k, v)| format!("{k}={}", v.serialize_encoded())).collect();
    Ok(Partition {
        values: values.iter().map(|(k, v)| (k.clone(), (!v.is_null()).then(|| v.serialize()))).collect(),
        folder: folders.join("/"),
    })
}

/// One partition's values, as an `add` action gives them, and its folder
/// as delta-rs names it (`day=2024-01-01`; empty for a table without).
#[derive(Default)]
struct Partition {
    values: HashMap<String, Option<String>>,
    folder: String,
}

/// `rows` without its partition columns as one Parquet file, and its statistics.
fn encode(rows: &RecordBatch, parts: &[String]) -> Result<(Vec<u8>, Stats), DeltaTableError> {
    let keep: Vec<usize> =
        (0..rows.num_columns()).filter(|&i| !parts.contains(rows.schema_ref().field(i).name())).collect();
    let file = rows.project(&keep)?;
    let schema = file.schema();
    for (field, column) in schema.fields().iter().zip(file.columns()) {
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(DeltaTableError::Generic(format!(
                "column `{}` holds {} nulls but is not nullable",
                field.name(),
                column.null_count()
            )));
        }
    }
    let mut out = Vec::with_capacity(file.get_array_memory_size() / 2);
    let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), Some(file_properties(&file)))?;
    writer.write(&file)?;
    writer.close()?;
    Ok((out, stats(&schema, &file)))
}

/// Delta's statistics of `file` (a data file's columns).
fn stats(schema: &Schema, file: &RecordBatch) -> Stats {
    let mut s = Stats { num_records: file.num_rows() as i64, ..Default::default() };
    for (field, column) in schema.fields().iter().zip(file.columns()).take(STATS_COLUMNS) {
        let name = field.name().clone();
        s.null_count.insert(name.clone(), ColumnCountStat::Value(column.null_count() as i64));
        if let Some((min, max)) = bounds(column.as_ref()) {
            s.min_values.insert(name.clone(), ColumnValueStat::Value(min));
            s.max_values.insert(name, ColumnValueStat::Value(max));
        }
    }
    s
}

/// The least and greatest non-null value of `column`, as Delta's statistics
/// write them; `None` when it has none or they are not written.
fn bounds(column: &dyn Array) -> Option<(Value, Value)> {
    fn ints<T: ArrowPrimitiveType>(c: &dyn Array) -> Option<(Value, Value)>
    where
        T::Native: Into<Value>,
    {
        let c: &PrimitiveArray<T> = c.as_primitive();
        Some((arrow_arith::aggregate::min(c)?.into(), arrow_arith::aggregate::max(c)?.into()))
    }
    fn floats<T: ArrowPrimitiveType>(c: &dyn Array) -> Option<(Value, Value)>
    where
        T::Native: Into<f64>,
    {
        let c: &PrimitiveArray<T> = c.as_primitive();
        if c.iter().flatten().any(|v| !v.into().is_finite()) {
            return None;
        }
        let (min, max) = (arrow_arith::aggregate::min(c)?.into(), arrow_arith::aggregate::max(c)?.into());
        Some((Value::from(min), Value::from(max)))
    }
    match column.data_type() {
        DataType::Boolean => {
            let c = column.as_boolean();
            Some((arrow_arith::aggregate::min_boolean(c)?.into(), arrow_arith::aggregate::max_boolean(c)?.into()))
        }
        DataType::Int8 => ints::<Int8Type>(column),
        DataType::Int16 => ints::<Int16Type>(column),
        DataType::Int32 => ints::<Int32Type>(column),
        DataType::Int64 => ints::<Int64Type>(column),
        DataType::Float32 => floats::<Float32Type>(column),
        DataType::Float64 => floats::<Float64Type>(column),
        DataType::Date32 => {
            let c: &PrimitiveArray<Date32Type> = column.as_primitive();
            let day = |d: i32| Some(Value::from(Date32Type::to_naive_date_opt(d)?.format("%Y-%m-%d").to_string()));
            Some((day(arrow_arith::aggregate::min(c)?)?, day(arrow_arith::aggregate::max(c)?)?))
        }
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            let c: &PrimitiveArray<TimestampMicrosecondType> = column.as_primitive();
            let (min, max) = (arrow_arith::aggregate::min(c)?, arrow_arith::aggregate::max(c)?);
            Some((timestamp(min, tz.is_some())?, timestamp(max, tz.is_some())?))
        }
        DataType::Utf8 => {
            let c = column.as_string::<i32>();
            let (min, max) = (arrow_arith::aggregate::min_string(c)?, arrow_arith::aggregate::max_string(c)?);
            (min.len() <= MAX_STRING && max.len() <= MAX_STRING).then(|| (min.into(), max.into()))
        }
        _ => None,
    }
}

/// A timestamp as delta-rs writes it in statistics: at millisecond
/// precision, the fraction left out when it is zero; `utc` with a `T` and a
/// `Z`, else (`TIMESTAMP_NTZ`) with a space.
fn timestamp(micros: i64, utc: bool) -> Option<Value> {
    let t = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
    let whole = t.and_utc().timestamp_subsec_nanos() == 0;
    let format = match (utc, whole) {
        (true, true) => "%Y-%m-%dT%H:%M:%SZ",
        (true, false) => "%Y-%m-%dT%H:%M:%S%.3fZ",
        (false, true) => "%Y-%m-%d %H:%M:%S",
        (false, false) => "%Y-%m-%d %H:%M:%S%.3f",
    };
    Some(Value::from(t.format(format).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{BooleanArray, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow_schema::Field;
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("farm", DataType::Utf8, true),
            Field::new("hour", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("day", DataType::Date32, true),
            Field::new("n", DataType::Int64, true),
            Field::new("t", DataType::Float64, true),
            Field::new("ok", DataType::Boolean, true),
        ]);
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("b"), None, Some("a"), Some("c")])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![3_600_000_000, 7_200_000_123, 0, 1_500]).with_timezone("UTC"),
            ),
            Arc::new(Date32Array::from(vec![0, 1, 0, 1])),
            Arc::new(Int64Array::from(vec![Some(5), Some(-2), None, Some(9)])),
            Arc::new(Float64Array::from(vec![1.5, f64::NAN, -0.5, 2.0])),
            Arc::new(BooleanArray::from(vec![true, true, false, true])),
        ];
        RecordBatch::try_new(Arc::new(schema), cols).unwrap()
    }

    #[test]
    fn a_batch_splits_by_partition_in_the_order_they_first_appear() {
        let parts = split(&batch(), &["day".to_string()]).unwrap();
        let days: Vec<&str> = parts.iter().map(|(p, _)| p.folder.as_str()).collect();
        assert_eq!(days, ["day=1970-01-01", "day=1970-01-02"]);
        let n = |b: &RecordBatch| b.column(3).as_primitive::<Int64Type>().iter().collect::<Vec<_>>();
        assert_eq!(n(&parts[0].1), [Some(5), None]);
        assert_eq!(n(&parts[1].1), [Some(-2), Some(9)]);
        let one_day = parts[1].1.clone();
        let whole = split(&one_day, &["day".to_string()]).unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!((whole[0].0.folder.as_str(), n(&whole[0].1)), ("day=1970-01-02", vec![Some(-2), Some(9)]));
        assert_eq!(whole[0].0.values["day"].as_deref(), Some("1970-01-02"));
    }

    /// The same files as delta-rs's writer makes of the same rows: the same
    /// partitions, row counts and statistics, and rows that read back.
    #[tokio::test]
    async fn files_are_those_delta_rs_writes() {
        let dir = tempfile::tempdir().unwrap();
        let lake = crate::Lake::new(dir.path().to_str().unwrap(), Default::default()).unwrap();
        let rows = batch();
        // delta-rs's bounds ignore NaN; here a column with one has none (below)
        let t = Arc::new(Float64Array::from(vec![1.5, 3.25, -0.5, 2.0])) as ArrayRef;
        let rows =
            RecordBatch::try_new(rows.schema(), [&rows.columns()[..4], &[t], &rows.columns()[5..]].concat()).unwrap();
        let days = vec!["day".to_string()];
        let url = lake.table_url("t");
        let table = LakeTable::open_or_create(&lake, "t", &url, &rows.schema(), &days, "test").await.unwrap();
        let ours = write_small(&table, rows.clone()).await.unwrap();
        let mut writer = table.writer().unwrap();
        writer.write(rows.clone()).await.unwrap();
        let theirs = writer.flush().await.unwrap();
        let by_day = |adds: &[Add]| {
            let mut v: Vec<_> = adds
                .iter()
                .map(|a| {
                    let stats: Value = serde_json::from_str(a.stats.as_deref().unwrap()).unwrap();
                    let folder = a.path.rsplit_once('/').unwrap().0.to_string();
                    (a.partition_values.clone().into_iter().collect::<Vec<_>>(), folder, stats)
                })
                .collect();
            v.sort_by(|a, b| a.1.cmp(&b.1));
            v
        };
        assert_eq!(by_day(&ours), by_day(&theirs));
        assert_eq!(ours.len(), 2);
        let files: Vec<crate::AddedFile> = ours
            .iter()
            .map(|a| crate::AddedFile {
                path: a.path.clone(),
                size: a.size as u64,
                partition_values: a.partition_values.clone().into_iter().collect(),
                stats: a.stats.clone(),
                deletion_vector: false,
            })
            .collect();
        let (_, read) = table.read_files(&files, None).await.unwrap();
        let n: usize = read.iter().flatten().map(RecordBatch::num_rows).sum();
        assert_eq!(n, 4);
    }

    /// The statistics delta-rs would write for the same files: bounds of
    /// the non-null values, a timestamp at milliseconds, none for a float
    /// column with a NaN, none of the partition column.
    #[test]
    fn statistics_are_delta_rs_s() {
        let parts = split(&batch(), &["day".to_string()]).unwrap();
        let json = |b: &RecordBatch| {
            let (_, s) = encode(b, &["day".to_string()]).unwrap();
            serde_json::to_value(&s).unwrap()
        };
        let first = json(&parts[0].1);
        assert_eq!(
            first,
            serde_json::json!({
                "numRecords": 2,
                "minValues": {"farm": "a", "hour": "1970-01-01T00:00:00Z", "n": 5, "t": -0.5, "ok": false},
                "maxValues": {"farm": "b", "hour": "1970-01-01T01:00:00Z", "n": 5, "t": 1.5, "ok": true},
                "nullCount": {"farm": 0, "hour": 0, "n": 1, "t": 0, "ok": 0}
            })
        );
        let second = json(&parts[1].1);
        assert_eq!(second["minValues"]["hour"], "1970-01-01T00:00:00.001Z");
        assert_eq!(second["maxValues"]["hour"], "1970-01-01T02:00:00.000Z");
        assert_eq!(second["nullCount"]["farm"], 1);
        assert!(second["minValues"].get("t").is_none() && second["nullCount"]["t"] == 0, "NaN: no bounds");
    }
}
