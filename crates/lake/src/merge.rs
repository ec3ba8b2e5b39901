//! The key-based write modes, run by DataFusion and delta-rs's MERGE in the
//! same commit as the input positions:
//! * insert-if-absent: one row per key, minus the keys the table holds, then
//!   appended (so the table stays append-only for its readers);
//! * upsert: the newest row per key by `sequence` replaces an older stored one;
//! * delete: stored rows with a key of the batch are removed;
//! * counter merge: the batch is first aggregated per key, then its measures
//!   are combined with the stored ones (sum, min, max, last, avg of two sums,
//!   union of sets of distinct values and their exact count).

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, SchemaRef};
use deltalake::DeltaTableError;
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::prelude::{DataFrame, SessionContext};
use deltalake::kernel::transaction::CommitProperties;
use ingesta_core::{Measure, WriteMode};

use crate::{LakeError, LakeTable};

pub(crate) enum Prepared {
    /// Rows to append as they are.
    Append(Vec<RecordBatch>),
    Merge(Box<Plan>),
}

pub(crate) struct Plan {
    mode: WriteMode,
    /// The MERGE predicate.
    on: String,
    source: DataFrame,
    schema: SchemaRef,
}

/// Quotes an identifier for SQL.
pub fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(crate) async fn prepare(t: &LakeTable, mode: &WriteMode, batches: Vec<RecordBatch>) -> Result<Prepared, LakeError> {
    let err = |e: deltalake::datafusion::error::DataFusionError| {
        LakeError::delta(&t.name, DeltaTableError::Generic(format!("{mode:?}: {e}")))
    };
    let schema = batches[0].schema();
    let null_keys =
        key_of(mode).iter().any(|k| batches.iter().any(|b| b.column_by_name(k).is_some_and(|c| c.null_count() > 0)));
    // a null key is a key like any other; `=` says so only for non-null keys,
    // and is what lets joins and MERGE prune, so it is used when it can be
    let eq = |l: &str, r: &str, k: &str| {
        if null_keys {
            format!("({l}.{k} IS NOT DISTINCT FROM {r}.{k})", k = q(k))
        } else {
            format!("{l}.{k} = {r}.{k}", k = q(k))
        }
    };
    let empty = t.stats()?.files == 0;
    let ctx = SessionContext::new();
    let mem = MemTable::try_new(schema.clone(), vec![batches]).map_err(err)?;
    ctx.register_table("source", Arc::new(mem)).map_err(err)?;
    let keys = |key: &[String]| key.iter().map(|k| q(k)).collect::<Vec<_>>().join(", ");
    // most batches have one row per key already: a hash aggregate says so
    // cheaply, and the (sorting) window below is only needed when it does not
    let unique = |key: &[String]| {
        let sql = format!("SELECT 1 FROM source GROUP BY {} HAVING count(*) > 1 LIMIT 1", keys(key));
        let ctx = &ctx;
        async move { Ok::<bool, LakeError>(ctx.sql(&sql).await.map_err(err)?.count().await.map_err(err)? == 0) }
    };
    let one_per_key = |key: &[String], order: Option<&str>, unique: bool| {
        if unique { "SELECT * FROM source".to_string() } else { one_per_key_sql("source", key, order) }
    };
    let source = match mode {
        WriteMode::Append => unreachable!("append is not keyed"),
        WriteMode::InsertIfAbsent { key } => {
            let sql = if empty {
                one_per_key(key, None, unique(key).await?) // nothing stored yet: no keys to skip
            } else {
                t.table.update_datafusion_session(&ctx.state()).map_err(|e| LakeError::delta(&t.name, e))?;
                ctx.register_table("target", t.provider().await?).map_err(err)?;
                let on: Vec<String> = key.iter().map(|k| eq("t", "s", k)).collect();
                format!(
                    "SELECT s.* FROM ({}) s WHERE NOT EXISTS (SELECT 1 FROM target t WHERE {})",
                    one_per_key(key, None, unique(key).await?),
                    on.join(" AND ")
                )
            };
            let rows = ctx.sql(&sql).await.map_err(err)?.collect().await.map_err(err)?;
            return Ok(Prepared::Append(rows));
        }
        WriteMode::Upsert { key, sequence } => {
            ctx.sql(&one_per_key(key, Some(sequence), unique(key).await?)).await.map_err(err)?
        }
        WriteMode::Delete { key } => ctx.sql(&one_per_key(key, None, unique(key).await?)).await.map_err(err)?,
        WriteMode::CounterMerge { key, measures } => {
            let cols: Vec<String> = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = q(f.name());
                    if key.contains(f.name()) {
                        return c;
                    }
                    let agg = match measures.iter().find(|(m, _)| m == f.name()).map(|(_, k)| k) {
                        Some(Measure::Sum) => format!("sum({c})"),
                        Some(Measure::Min) => format!("min({c})"),
                        Some(Measure::Avg { sum, count }) => {
                            format!("CAST(sum({}) AS DOUBLE) / CAST(sum({}) AS DOUBLE)", q(sum), q(count))
                        }
                        Some(Measure::Set) => set_union_agg(&c),
                        Some(Measure::CountDistinct { set }) => {
                            format!("coalesce(cardinality({}), 0)", set_union_agg(&q(set)))
                        }
                        // last: within one batch, the highest value
                        Some(Measure::Max | Measure::Last) | None => format!("max({c})"),
                    };
                    format!("{agg} AS {c}")
                })
                .collect();
            let sql = format!("SELECT {} FROM source GROUP BY {}", cols.join(", "), keys(key));
            let rows = ctx.sql(&sql).await.map_err(err)?.collect().await.map_err(err)?;
            let rows = conform(&schema, rows).map_err(|e| LakeError::delta(&t.name, e))?;
            ctx.read_batches(rows).map_err(err)?
        }
    };
    if empty {
        // nothing stored to merge with (a first load): the prepared rows are the table
        return match mode {
            WriteMode::Delete { .. } => Ok(Prepared::Append(Vec::new())),
            _ => Ok(Prepared::Append(source.collect().await.map_err(err)?)),
        };
    }
    let on: Vec<String> = key_of(mode).iter().map(|k| eq("target", "source", k)).collect();
    Ok(Prepared::Merge(Box::new(Plan { mode: mode.clone(), on: on.join(" AND "), source, schema })))
}

/// A query keeping one row of `from` per `key`: the one with the highest
/// `order` (any one without). A `row_number()` window: DataFusion's
/// `DISTINCT ON` keeps a `first_value` per column and is ~15x slower.
pub fn one_per_key_sql(from: &str, key: &[String], order: Option<&str>) -> String {
    let keys: Vec<String> = key.iter().map(|k| q(k)).collect();
    // ordering by a key column again adds nothing (and trips DataFusion)
    let order = match order {
        Some(o) if !key.iter().any(|k| k == o) => format!(" ORDER BY {} DESC NULLS LAST", q(o)),
        _ => String::new(),
    };
    format!(
        "SELECT * EXCLUDE (__ingesta_rn) FROM (SELECT *, row_number() OVER (PARTITION BY {}{order}) \
         AS __ingesta_rn FROM {from} AS t) AS t WHERE __ingesta_rn = 1",
        keys.join(", ")
    )
}

/// The key columns of a keyed mode.
fn key_of(mode: &WriteMode) -> &[String] {
    match mode {
        WriteMode::Append => &[],
        WriteMode::InsertIfAbsent { key }
        | WriteMode::Upsert { key, .. }
        | WriteMode::Delete { key }
        | WriteMode::CounterMerge { key, .. } => key,
    }
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

/// Runs the MERGE; returns the new version.
pub(crate) async fn run(t: &mut LakeTable, plan: Box<Plan>, props: CommitProperties) -> Result<i64, LakeError> {
    let Plan { mode, on, source, schema } = *plan;
    let name = t.name.clone();
    let err = |e: DeltaTableError| LakeError::delta(&name, e);
    let key = key_of(&mode).to_vec();
    let columns: Vec<(String, DataType)> =
        schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
    let builder = t
        .table
        .clone()
        .merge(source, on)
        .with_source_alias("source")
        .with_target_alias("target")
        .with_commit_properties(props);
    let insert_all = |mut i: deltalake::operations::merge::InsertBuilder| {
        for (c, _) in &columns {
            i = i.set(q(c), format!("source.{}", q(c)));
        }
        i
    };
    let builder = match &mode {
        WriteMode::Upsert { sequence, .. } => {
            let seq = q(sequence);
            builder
                .when_matched_update(|mut u| {
                    u = u.predicate(format!("target.{seq} IS NULL OR source.{seq} > target.{seq}"));
                    for (c, _) in columns.iter().filter(|(c, _)| !key.contains(c)) {
                        u = u.update(q(c), format!("source.{}", q(c)));
                    }
                    u
                })
                .map_err(err)?
                .when_not_matched_insert(insert_all)
                .map_err(err)?
        }
        WriteMode::Delete { .. } => builder.when_matched_delete(|d| d).map_err(err)?,
        WriteMode::CounterMerge { measures, .. } => {
            let merged = |c: &str| -> String {
                let (t, s) = (format!("target.{}", q(c)), format!("source.{}", q(c)));
                match measures.iter().find(|(m, _)| m == c).map(|(_, k)| k) {
                    Some(Measure::Sum) => {
                        format!("CASE WHEN {t} IS NULL THEN {s} WHEN {s} IS NULL THEN {t} ELSE {t} + {s} END")
                    }
                    Some(Measure::Min) => format!("CASE WHEN {t} IS NULL OR {s} < {t} THEN {s} ELSE {t} END"),
                    Some(Measure::Max) => format!("CASE WHEN {t} IS NULL OR {s} > {t} THEN {s} ELSE {t} END"),
                    Some(Measure::Avg { sum, count }) => {
                        let part = |x: &str| {
                            let (t, s) = (format!("target.{}", q(x)), format!("source.{}", q(x)));
                            format!("CAST(coalesce({t}, 0) AS DOUBLE) + CAST(coalesce({s}, 0) AS DOUBLE)")
                        };
                        format!("({}) / ({})", part(sum), part(count))
                    }
                    Some(Measure::Set) => set_union(c),
                    Some(Measure::CountDistinct { set }) => format!("coalesce(cardinality({}), 0)", set_union(set)),
                    Some(Measure::Last) | None => s,
                }
            };
            builder
                .when_matched_update(|mut u| {
                    for (c, ty) in columns.iter().filter(|(c, _)| !key.contains(c)) {
                        u = u.update(q(c), cast_to(&merged(c), ty));
                    }
                    u
                })
                .map_err(err)?
                .when_not_matched_insert(insert_all)
                .map_err(err)?
        }
        WriteMode::Append | WriteMode::InsertIfAbsent { .. } => unreachable!("appended"),
    };
    let (table, _metrics) = builder.await.map_err(err)?;
    t.table = table;
    Ok(t.version())
}

/// The distinct values of a list column over a group's rows (null: none).
fn set_union_agg(c: &str) -> String {
    format!("array_distinct(flatten(array_agg({c}) FILTER (WHERE {c} IS NOT NULL)))")
}

/// The stored and the new set of one key, merged (a null side is empty).
fn set_union(c: &str) -> String {
    let (t, s) = (format!("target.{}", q(c)), format!("source.{}", q(c)));
    format!("CASE WHEN {t} IS NULL THEN {s} WHEN {s} IS NULL THEN {t} ELSE array_union({t}, {s}) END")
}

/// `expr` cast to a numeric column type (sums widen decimals and integers).
fn cast_to(expr: &str, ty: &DataType) -> String {
    match ty {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _) => format!("arrow_cast({expr}, '{ty}')"),
        _ => expr.to_string(),
    }
}
