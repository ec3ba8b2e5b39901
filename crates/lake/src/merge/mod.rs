//! The key-based write modes, run by DataFusion in the same commit as the
//! input positions (the stored files holding a key of the batch are rewritten):
//! * insert-if-absent: one row per key, minus the keys the table holds, then
//!   appended (so the table stays append-only for its readers);
//! * upsert: the newest row per key by `sequence` replaces an older stored
//!   one, or deletes it when the row says so ([`DELETE_FLAG`]);
//! * delete: stored rows with a key of the batch are removed;
//! * counter merge: the batch is first aggregated per key, then its measures
//!   are combined with the stored ones (sum, min, max, last, avg of two sums,
//!   union of sets of distinct values and their exact count);
//! * history (scd2): the batch's new versions are added beside the stored
//!   ones, and the ends of every version of the batch's keys recomputed.
//!
//! On a table with a change feed, a merge also writes the rows it changed
//! as change files (`_change_data/`), and one that changes nothing rewrites
//! nothing (only its positions are committed).

use std::sync::Arc;

use arrow_array::{RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use deltalake::DeltaTableError;
use deltalake::datafusion::catalog::TableProvider;
use deltalake::datafusion::common::{Column, ScalarValue};
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::prelude::{DataFrame, Expr, SessionContext, lit};
use deltalake::kernel::transaction::CommitProperties;
use deltalake::kernel::{Action, AddCDCFile, Transaction};
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::TryStreamExt;
use ingesta_core::{DELETE_FLAG, Measure, WriteMode};

use crate::changes::CHANGE_TYPE;
use crate::encoding::writer_properties;
use crate::shared::{COMPACTION_APP, conform};
use crate::{AddedFile, LakeError, LakeTable};

mod sql;

use sql::*;
pub use sql::{one_per_key_sql, q};

pub(crate) enum Prepared {
    /// Rows to append as they are.
    Append(Vec<RecordBatch>),
    Merge(Box<Plan>),
}

pub(crate) struct Plan {
    mode: WriteMode,
    /// The join condition of stored (`t`) and batch (`s`) rows.
    on: String,
    /// The batch, one row per key: the columns of `schema`.
    schema: SchemaRef,
    rows: Vec<RecordBatch>,
}

/// Prepares `batches` for a merge in `mode`; `fresh`: as if the table held
/// nothing (a backfill, whose range is removed in the same commit).
pub(crate) async fn prepare(
    t: &LakeTable,
    mode: &WriteMode,
    batches: Vec<RecordBatch>,
    fresh: bool,
) -> Result<Prepared, LakeError> {
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
    // the batch's rows, one per key, to merge with the stored ones
    let merge = |schema, rows| {
        let on: Vec<String> = key_of(mode).iter().map(|k| eq("t", "s", k)).collect();
        Prepared::Merge(Box::new(Plan { mode: mode.clone(), on: on.join(" AND "), schema, rows }))
    };
    let empty = fresh || t.stats()?.files == 0;
    // most batches have one row per key already, and the (sorting) window
    // below is only needed when they do not
    let unique = unique_keys(&batches, key_of(mode)).map_err(|e| LakeError::delta(&t.name, e.into()))?;
    // one row per key, and measures whose value for one row is the row's:
    // the batch is its own aggregate (an aggregate table's transform
    // groups by the key already)
    if let WriteMode::CounterMerge { measures, .. } = mode
        && unique
        && !measures.iter().any(|(_, m)| matches!(m, Measure::Set | Measure::CountDistinct { .. }))
    {
        if empty {
            return Ok(Prepared::Append(batches)); // a first load: the batch is the table
        }
        return Ok(merge(schema, batches));
    }
    let ctx = source_context(&schema, &batches).map_err(err)?;
    let keys = |key: &[String]| key.iter().map(|k| q(k)).collect::<Vec<_>>().join(", ");
    let one_per_key = |key: &[String], order: Option<&str>, unique: bool| {
        if unique { "SELECT * FROM source".to_string() } else { one_per_key_sql("source", key, order) }
    };
    let collect = async |frame: DataFrame| {
        let schema = Arc::new(frame.schema().as_arrow().clone());
        Ok::<_, LakeError>((schema, frame.collect().await.map_err(err)?))
    };
    let (schema, rows) = match mode {
        WriteMode::Append => unreachable!("append is not keyed"),
        WriteMode::InsertIfAbsent { key } => {
            let sql = if empty {
                one_per_key(key, None, unique) // nothing stored yet: no keys to skip
            } else {
                t.table.update_datafusion_session(&ctx.state()).map_err(|e| LakeError::delta(&t.name, e))?;
                ctx.register_table("target", t.provider().await?).map_err(err)?;
                let on: Vec<String> = key.iter().map(|k| eq("t", "s", k)).collect();
                format!(
                    "SELECT s.* FROM ({}) s WHERE NOT EXISTS (SELECT 1 FROM target t WHERE {})",
                    one_per_key(key, None, unique),
                    on.join(" AND ")
                )
            };
            let rows = ctx.sql(&sql).await.map_err(err)?.collect().await.map_err(err)?;
            return Ok(Prepared::Append(rows));
        }
        WriteMode::Upsert { key, sequence, .. } => {
            collect(ctx.sql(&one_per_key(key, Some(sequence), unique)).await.map_err(err)?).await?
        }
        WriteMode::Delete { key } => collect(ctx.sql(&one_per_key(key, None, unique)).await.map_err(err)?).await?,
        // one row per version: key and sequence
        WriteMode::History { key, sequence } => {
            let version = [key.as_slice(), std::slice::from_ref(sequence)].concat();
            collect(ctx.sql(&one_per_key(&version, None, unique)).await.map_err(err)?).await?
        }
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
            (schema.clone(), conform(&schema, rows).map_err(|e| LakeError::delta(&t.name, e))?)
        }
    };
    if empty {
        // nothing stored to merge with (a first load): the prepared rows are the table
        return match mode {
            WriteMode::Delete { .. } => Ok(Prepared::Append(Vec::new())),
            // the versions' ends are computed by the merge, with nothing stored
            WriteMode::History { .. } => Ok(merge(schema, rows)),
            // deleting a key the table does not hold deletes nothing
            WriteMode::Upsert { deletes: true, .. } => {
                let flag = Column::new_unqualified(DELETE_FLAG);
                let source = ctx.read_table(Arc::new(MemTable::try_new(schema, vec![rows]).map_err(err)?));
                let kept = source.map_err(err)?.filter(Expr::Column(flag.clone()).is_not_true()).map_err(err)?;
                Ok(Prepared::Append(kept.drop_columns(&[DELETE_FLAG]).map_err(err)?.collect().await.map_err(err)?))
            }
            _ => Ok(Prepared::Append(rows)),
        };
    }
    Ok(merge(schema, rows))
}

/// Whether no two rows of `batches` have the same values in the `key` columns.
fn unique_keys(batches: &[RecordBatch], key: &[String]) -> Result<bool, arrow_schema::ArrowError> {
    let Some(first) = batches.first() else { return Ok(true) };
    let columns = |b: &RecordBatch| -> Result<Vec<arrow_array::ArrayRef>, arrow_schema::ArrowError> {
        key.iter()
            .map(|k| b.column_by_name(k).cloned())
            .collect::<Option<_>>()
            .ok_or_else(|| arrow_schema::ArrowError::SchemaError(format!("no key column of {key:?} in the rows")))
    };
    let fields = columns(first)?.iter().map(|c| arrow_row::SortField::new(c.data_type().clone())).collect();
    let converter = arrow_row::RowConverter::new(fields)?;
    let mut rows = converter.empty_rows(0, 0);
    for b in batches {
        converter.append(&mut rows, &columns(b)?)?;
    }
    let mut seen = std::collections::HashSet::with_capacity(rows.num_rows());
    Ok(rows.iter().all(|r| seen.insert(r)))
}

/// The file each stored row comes from, while finding the files to rewrite.
const FILE: &str = "__ingesta_file";

/// Runs the merge: finds the stored files holding a key of the batch, rewrites
/// them with the batch merged in (keys not stored are added to the rewrite),
/// and commits removes, adds and `positions` on the snapshot it read. Returns
/// the new version.
///
/// Not delta-rs's MERGE, whose general plan (an operation column per row,
/// metrics, a second scan for the touched files) cost a small gold table more
/// than its rows (decision 0009). The commit carries [`crate::shared::COMPACTION_APP`]'s `txn`
/// too, so a compaction racing it fails instead of keeping rows twice
/// (decisions 0008, 0009).
pub(crate) async fn run(t: &mut LakeTable, plan: Box<Plan>, props: CommitProperties) -> Result<i64, LakeError> {
    let Plan { mode, on, schema, rows } = *plan;
    let name = t.name.clone();
    let err = |e: DeltaTableError| LakeError::delta(&name, e);
    let df = |e: DataFusionError| LakeError::delta(&name, DeltaTableError::Generic(format!("{mode:?}: {e}")));
    let key = key_of(&mode).to_vec();
    let snapshot = t.table.snapshot().map_err(err)?.clone();
    let table_schema = Arc::new(t.arrow_schema()?);
    if matches!(mode, WriteMode::History { .. }) && t.change_feed() {
        return Err(err(DeltaTableError::Generic("an scd2 table keeps no change feed yet".into())));
    }

    let (files, removes) = touched_files(t, &schema, &key, &on, &snapshot, &rows).await.map_err(|e| match e {
        Touched::Delta(e) => err(e),
        Touched::Query(e) => df(e),
    })?;

    // a counter merge of a few small files: in Arrow, no query to plan
    if let WriteMode::CounterMerge { key, measures } = &mode
        && crate::counter::takes(measures)
        && !t.change_feed()
        && t.reads_in_memory(&files)
    {
        let stored = match files.is_empty() {
            true => Vec::new(),
            false => t.read_files(&files, None).await?.1.into_iter().flatten().collect(),
        };
        let batch = conform(&table_schema, rows).map_err(err)?;
        let merged = crate::counter::merge(&table_schema, key, measures, &stored, &batch).map_err(|e| err(e.into()))?;
        let adds = crate::file_write::write_small(t, merged.clone()).await.map_err(err)?;
        t.recent.remember(t.table.table_url(), &t.partition_columns(), &adds, &[merged]);
        let mut actions = removes;
        actions.extend(adds.into_iter().map(Action::Add));
        return commit(t, &snapshot, actions, on, props).await;
    }

    let ctx = source_context(&schema, &rows).map_err(df)?;
    // the touched files with the batch merged in, plus the batch's new keys
    let provider: Arc<dyn TableProvider> = if files.is_empty() {
        // no stored row has a key of the batch: nothing to read or remove
        Arc::new(MemTable::try_new(table_schema.clone(), vec![vec![]]).map_err(df)?)
    } else {
        t.files_rows(t.version(), &files).await?
    };
    ctx.register_table("stored", provider).map_err(df)?;
    let mut actions = Vec::new();
    // the rows changed, kept as the table's change feed; none changed (an
    // upsert of older versions only): the files stay as they are
    let changed = if t.change_feed() {
        let changes = change_files(t, &ctx, &mode, &table_schema, &on).await?;
        let any = !changes.is_empty();
        actions.extend(changes);
        any
    } else {
        true
    };
    if changed {
        let sql = rewrite_sql(&mode, &table_schema, &on);
        let frame = ctx.sql(&sql).await.map_err(df)?;
        let mut out = frame.execute_stream().await.map_err(df)?;
        let mut writer = t.writer().map_err(err)?;
        // the rows of its files, kept in memory (`recent.rs`)
        let mut written = crate::recent::Written::new();
        while let Some(batch) = out.try_next().await.map_err(df)? {
            for batch in conform(&table_schema, vec![batch]).map_err(err)? {
                written.push(&batch);
                writer.write(batch).await.map_err(err)?;
            }
        }
        let adds = writer.flush().await.map_err(err)?;
        written.remember(&t.recent, t.table.table_url(), &t.partition_columns(), &adds);
        actions.extend(removes);
        actions.extend(adds.into_iter().map(Action::Add));
    }
    commit(t, &snapshot, actions, on, props).await
}

/// Commits a merge's actions on the snapshot it read, with a compaction
/// guard (see [`run`]); returns the new version.
async fn commit(
    t: &mut LakeTable,
    snapshot: &deltalake::table::state::DeltaTableState,
    actions: Vec<Action>,
    on: String,
    props: CommitProperties,
) -> Result<i64, LakeError> {
    let guard = Transaction::new(COMPACTION_APP, chrono::Utc::now().timestamp_millis());
    let operation = DeltaOperation::Merge {
        predicate: None,
        merge_predicate: Some(on),
        matched_predicates: Vec::new(),
        not_matched_predicates: Vec::new(),
        not_matched_by_source_predicates: Vec::new(),
    };
    t.write_commit(snapshot, actions, operation, props.with_application_transaction(guard)).await
}

/// A session whose table `source` is a merge's batch.
fn source_context(schema: &SchemaRef, rows: &[RecordBatch]) -> Result<SessionContext, DataFusionError> {
    let ctx = SessionContext::new();
    ctx.register_table("source", Arc::new(MemTable::try_new(schema.clone(), vec![rows.to_vec()])?))?;
    Ok(ctx)
}

/// Why the touched files could not be found.
enum Touched {
    Delta(DeltaTableError),
    Query(DataFusionError),
}

/// The stored files a merge rewrites, and the actions removing them.
type Rewrite = (Vec<AddedFile>, Vec<Action>);

/// A file of the log as an [`AddedFile`] (its path URL-encoded again, as the log has it).
fn added(f: &deltalake::kernel::LogicalFileView) -> AddedFile {
    const ENCODED: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');
    AddedFile {
        path: percent_encoding::utf8_percent_encode(&f.path(), ENCODED).to_string(),
        size: f.size() as u64,
        partition_values: f.partition_values_map().into_iter().collect(),
        stats: None,
        deletion_vector: f.deletion_vector_descriptor().is_some(),
    }
}

/// On a table partitioned by columns of the key, a stored row with a key of
/// the batch is in a partition of the batch: the files of those partitions
/// are the ones to rewrite, found from the log alone (no scan, no join; a
/// gold table partitioned by day takes an append's day or two, not the
/// whole table). `None` when the partition columns are not all in the key,
/// or a file's partition value does not parse as its column's type.
fn partitions_in_key(
    t: &LakeTable,
    key: &[String],
    snapshot: &deltalake::table::state::DeltaTableState,
    rows: &[RecordBatch],
) -> Result<Option<Rewrite>, DataFusionError> {
    let parts = snapshot.metadata().partition_columns().to_vec();
    if parts.is_empty() || !parts.iter().all(|p| key.contains(p)) {
        return Ok(None);
    }
    let schema = t.arrow_schema().map_err(|e| DataFusionError::External(Box::new(e)))?;
    let types = parts.iter().map(|p| Ok(schema.field_with_name(p)?.data_type().clone()));
    let types: Vec<DataType> = types.collect::<Result<_, arrow_schema::ArrowError>>()?;
    // the batch's partitions, each a tuple of values of the columns' types
    let mut wanted = std::collections::HashSet::new();
    for b in rows {
        let columns = parts.iter().zip(&types).map(|(p, ty)| {
            let c =
                b.column_by_name(p).ok_or_else(|| DataFusionError::Plan(format!("no column `{p}` in the batch")))?;
            Ok(arrow_cast::cast(c, ty)?)
        });
        let columns: Vec<arrow_array::ArrayRef> = columns.collect::<Result<_, DataFusionError>>()?;
        for r in 0..b.num_rows() {
            let tuple = columns.iter().map(|c| ScalarValue::try_from_array(c, r));
            wanted.insert(tuple.collect::<Result<Vec<_>, _>>()?);
        }
    }
    let (mut paths, mut removes) = (Vec::new(), Vec::new());
    for f in snapshot.log_data().iter() {
        let values = f.partition_values_map();
        let tuple = parts.iter().zip(&types).map(|(p, ty)| match values.get(p).cloned().flatten() {
            Some(v) => ScalarValue::try_from_string(v, ty),
            None => ScalarValue::try_new_null(ty),
        });
        let Ok(tuple) = tuple.collect::<Result<Vec<_>, _>>() else {
            tracing::debug!(table = %t.name, file = %f.path(), "a partition value does not parse; merging by scan");
            return Ok(None);
        };
        if wanted.contains(&tuple) {
            paths.push(added(&f));
            removes.push(Action::Remove(f.remove_action(true)));
        }
    }
    Ok(Some((paths, removes)))
}

/// A table of one file of at most this size is rewritten whole by a merge:
/// finding whether the file holds a key of the batch (a scan and a
/// semi-join) costs about as much as rewriting it, and it mostly does
/// (decision 0009).
const SMALL_FILE: u64 = 4 << 20;

/// The stored files holding a key of the batch (`rows`, registered as
/// `source`): their paths, and the actions removing them. A table of one
/// small file is rewritten whole; a table partitioned by key columns, the
/// files of the batch's partitions. Otherwise the batch's key ranges skip
/// files by their statistics, and a semi-join finds the ones really holding one.
async fn touched_files(
    t: &LakeTable,
    schema: &SchemaRef,
    key: &[String],
    on: &str,
    snapshot: &deltalake::table::state::DeltaTableState,
    rows: &[RecordBatch],
) -> Result<Rewrite, Touched> {
    let files = snapshot.log_data();
    if files.num_files() == 1 && files.iter().all(|f| f.size() as u64 <= SMALL_FILE) {
        let paths = files.iter().map(|f| added(&f)).collect();
        let removes = files.iter().map(|f| Action::Remove(f.remove_action(true))).collect();
        return Ok((paths, removes));
    }
    if let Some(found) = partitions_in_key(t, key, snapshot, rows).map_err(Touched::Query)? {
        return Ok(found);
    }
    let ctx = source_context(schema, rows).map_err(Touched::Query)?;
    let parts: Vec<String> =
        key.iter().map(|k| format!("min({c}), max({c}), count(*) - count({c})", c = q(k))).collect();
    let ranges = ctx.sql(&format!("SELECT {} FROM source", parts.join(", "))).await.map_err(Touched::Query)?;
    let ranges = ranges.collect().await.map_err(Touched::Query)?;
    let mut skip = Vec::new();
    for (i, k) in key.iter().enumerate() {
        let value = |c: usize| ScalarValue::try_from_array(ranges[0].column(3 * i + c), 0).map_err(Touched::Query);
        let (min, max, nulls) = (value(0)?, value(1)?, value(2)?);
        // a null key is in no range: the column cannot skip files then
        if !min.is_null() && nulls == ScalarValue::Int64(Some(0)) {
            skip.push(Expr::Column(Column::new_unqualified(k)).between(lit(min), lit(max)));
        }
    }
    let provider = t.table.table_provider().with_file_column(FILE).build().await.map_err(Touched::Query)?;
    let mut stored = ctx.read_table(Arc::new(provider)).map_err(Touched::Query)?;
    if let Some(f) = skip.into_iter().reduce(Expr::and) {
        stored = stored.filter(f).map_err(Touched::Query)?;
    }
    ctx.register_table("stored", stored.into_view()).map_err(Touched::Query)?;
    let sql = format!("SELECT DISTINCT t.{FILE} FROM stored t WHERE EXISTS (SELECT 1 FROM source s WHERE {on})");
    let found = ctx.sql(&sql).await.map_err(Touched::Query)?.collect().await.map_err(Touched::Query)?;
    // the file column names a file by its URL; the log by its path under the table
    let root = t.table.table_url().as_str().trim_end_matches('/').to_string();
    let mut touched = std::collections::HashSet::new();
    for b in &found {
        let ids = arrow_cast::cast(b.column(0), &DataType::Utf8).map_err(|e| Touched::Query(e.into()))?;
        let ids = ids.as_any().downcast_ref::<StringArray>().expect("cast to Utf8");
        touched.extend(
            ids.iter().flatten().map(|id| id.strip_prefix(&root).unwrap_or(id).trim_start_matches('/').to_string()),
        );
    }
    let mut removes = Vec::new();
    let mut paths = Vec::new();
    for f in snapshot.log_data().iter() {
        let path = f.path();
        let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
        if touched.contains(path.as_ref()) || touched.contains(decoded.as_ref()) {
            paths.push(added(&f));
            removes.push(Action::Remove(f.remove_action(true)));
        }
    }
    if removes.len() < touched.len() {
        return Err(Touched::Delta(DeltaTableError::Generic(format!(
            "{} of the files to rewrite are not in the log: {touched:?}",
            touched.len() - removes.len()
        ))));
    }

    ctx.deregister_table("stored").map_err(Touched::Query)?;
    Ok((paths, removes))
}

/// Where a table's change files go, under its root (as Spark puts them).
const CHANGE_DATA: &str = "_change_data";

/// Writes the rows the merge changes as change files (the table's columns
/// and `_change_type`: `insert`, `update_preimage`, `update_postimage`,
/// `delete`) and returns their `cdc` actions; none when nothing changes.
async fn change_files(
    t: &LakeTable,
    ctx: &SessionContext,
    mode: &WriteMode,
    schema: &SchemaRef,
    on: &str,
) -> Result<Vec<Action>, LakeError> {
    let err = |e: DeltaTableError| LakeError::delta(&t.name, e);
    let df = |e: DataFusionError| err(DeltaTableError::Generic(format!("{mode:?}, change feed: {e}")));
    let mut fields = schema.fields().to_vec();
    fields.push(Arc::new(Field::new(CHANGE_TYPE, DataType::Utf8, true)));
    let feed_schema = Arc::new(Schema::new(fields));
    let mut out = ctx.sql(&changes_sql(mode, schema, on)).await.map_err(df)?.execute_stream().await.map_err(df)?;
    let mut writer: Option<RecordBatchWriter> = None;
    while let Some(batch) = out.try_next().await.map_err(df)? {
        if batch.num_rows() == 0 {
            continue;
        }
        let writer = match &mut writer {
            Some(w) => w,
            None => {
                let root = t.table.table_url().as_str().trim_end_matches('/').to_string();
                let url = format!("{root}/{CHANGE_DATA}");
                let parts = Some(t.partition_columns());
                writer.insert(
                    RecordBatchWriter::try_new(url, feed_schema.clone(), parts, Some(t.storage.clone()))
                        .map_err(err)?
                        .with_writer_properties(writer_properties(&feed_schema)),
                )
            }
        };
        for batch in conform(&feed_schema, vec![batch]).map_err(err)? {
            writer.write(batch).await.map_err(err)?;
        }
    }
    let Some(mut writer) = writer else { return Ok(Vec::new()) };
    let files = writer.flush().await.map_err(err)?;
    Ok(files
        .into_iter()
        .map(|a| {
            Action::Cdc(AddCDCFile {
                path: format!("{CHANGE_DATA}/{}", a.path),
                size: a.size,
                partition_values: a.partition_values,
                data_change: false,
                tags: None,
            })
        })
        .collect())
}
