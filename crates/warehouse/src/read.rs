//! PostgreSQL rows to Arrow batches, streamed a chunk at a time. `numeric`,
//! `json`, `jsonb`, `uuid` and arrays are read as text and cast by Arrow to
//! the column's Arrow type ([`PgType::arrow`]).

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int16Array, Int32Array, Int64Array,
    ListArray, RecordBatch, StringArray, TimestampMicrosecondArray, builder::ListBuilder, builder::StringBuilder,
};
use arrow_schema::{Field, Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use ingesta_core::{Error, Result};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::connect::classify;
use crate::types::{PgType, quote};

const CHUNK: usize = 8192;

/// The Arrow schema of `columns`.
pub fn schema(columns: &[(String, PgType)]) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(|(n, t)| Field::new(n, t.arrow(), true)).collect::<Vec<_>>()))
}

/// `SELECT` list items reading `columns` in the form [`batch`] decodes.
pub fn select_list(columns: &[(String, PgType)]) -> String {
    let items: Vec<String> = columns
        .iter()
        .map(|(n, t)| match t {
            PgType::Numeric(..) | PgType::Jsonb | PgType::Json | PgType::Uuid => format!("{}::text", quote(n)),
            PgType::Array(_) => format!("{}::text[]", quote(n)),
            _ => quote(n),
        })
        .collect();
    if items.is_empty() { "NULL".into() } else { items.join(", ") }
}

/// Runs `sql` (selecting [`select_list`] of `columns`) and returns its rows as batches.
pub async fn query(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    columns: &[(String, PgType)],
    doing: &str,
) -> Result<Vec<RecordBatch>> {
    let stream = client.query_raw(sql, params.iter().copied()).await.map_err(|e| classify(e, doing))?;
    let mut chunks = stream.map_err(|e| classify(e, doing)).chunks(CHUNK).boxed();
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let rows = chunk.into_iter().collect::<Result<Vec<Row>>>()?;
        out.push(batch(&rows, columns)?);
    }
    Ok(out)
}

/// Decodes `rows` (selected with [`select_list`]) into a batch.
pub fn batch(rows: &[Row], columns: &[(String, PgType)]) -> Result<RecordBatch> {
    let arrays = columns.iter().enumerate().map(|(i, (name, t))| column(rows, i, name, t)).collect::<Result<_>>()?;
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema(columns), arrays, &options)
        .map_err(|e| Error::stop(format!("building a batch from warehouse rows: {e}")))
}

fn column(rows: &[Row], i: usize, name: &str, t: &PgType) -> Result<ArrayRef> {
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(rows: &'a [Row], i: usize, name: &str) -> Result<Vec<T>> {
        rows.iter()
            .map(|r| r.try_get::<_, T>(i).map_err(|e| Error::stop(format!("reading column `{name}`: {e}"))))
            .collect()
    }
    const EPOCH: chrono::NaiveDate = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("a date");
    Ok(match t {
        PgType::Bool => Arc::new(BooleanArray::from(get::<Option<bool>>(rows, i, name)?)),
        PgType::Int2 => Arc::new(Int16Array::from(get::<Option<i16>>(rows, i, name)?)),
        PgType::Int4 => Arc::new(Int32Array::from(get::<Option<i32>>(rows, i, name)?)),
        PgType::Int8 => Arc::new(Int64Array::from(get::<Option<i64>>(rows, i, name)?)),
        PgType::Float4 => Arc::new(Float32Array::from(get::<Option<f32>>(rows, i, name)?)),
        PgType::Float8 => Arc::new(Float64Array::from(get::<Option<f64>>(rows, i, name)?)),
        PgType::Text | PgType::Jsonb | PgType::Json | PgType::Uuid => {
            Arc::new(StringArray::from(get::<Option<&str>>(rows, i, name)?))
        }
        PgType::Bytea => {
            let v = get::<Option<&[u8]>>(rows, i, name)?;
            Arc::new(BinaryArray::from_iter(v))
        }
        PgType::Date => {
            let v = get::<Option<chrono::NaiveDate>>(rows, i, name)?;
            Arc::new(Date32Array::from_iter(v.into_iter().map(|d| d.map(|d| (d - EPOCH).num_days() as i32))))
        }
        PgType::Timestamp => {
            let v = get::<Option<chrono::NaiveDateTime>>(rows, i, name)?;
            Arc::new(TimestampMicrosecondArray::from_iter(
                v.into_iter().map(|d| d.map(|d| d.and_utc().timestamp_micros())),
            ))
        }
        PgType::Timestamptz => {
            let v = get::<Option<chrono::DateTime<chrono::Utc>>>(rows, i, name)?;
            let a = TimestampMicrosecondArray::from_iter(v.into_iter().map(|d| d.map(|d| d.timestamp_micros())));
            Arc::new(a.with_timezone("UTC"))
        }
        PgType::Numeric(..) => {
            let text: ArrayRef = Arc::new(StringArray::from(get::<Option<&str>>(rows, i, name)?));
            cast(&text, t, name)?
        }
        PgType::Array(_) => {
            let v = get::<Option<Vec<Option<&str>>>>(rows, i, name)?;
            let mut b = ListBuilder::new(StringBuilder::new());
            for items in v {
                match items {
                    Some(items) => {
                        for item in items {
                            b.values().append_option(item);
                        }
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            let text: ArrayRef = Arc::new(b.finish()) as Arc<ListArray>;
            cast(&text, t, name)?
        }
    })
}

fn cast(text: &ArrayRef, t: &PgType, name: &str) -> Result<ArrayRef> {
    arrow_cast::cast(text, &t.arrow())
        .map_err(|e| Error::stop(format!("reading column `{name}` as {}: {e}", t.sql())).caused_by(e))
}
