//! Rollups current to their input's last commit, for readers (`ingesta
//! query`, reports): an aggregate table whose measures are all sums, minima
//! or maxima is read as its stored rows plus its own query over the rows
//! its input appended since the version the table last recorded (the tail
//! it has not rolled up yet), merged by key with the same measures. Under
//! `--watch` the tail is empty or one pass long, so this costs one look at
//! the input's log per session.

use std::sync::Arc;

use arrow_schema::SchemaRef;
use ingesta_config::{Layer, Measure, Pipeline, ReadMode, Table, WriteModeName};
use ingesta_core::{Error, TableStore};
use ingesta_lake::LakeTable;
use ingesta_lake::datafusion::catalog::TableProvider;
use ingesta_lake::datafusion::datasource::MemTable;
use ingesta_lake::datafusion::prelude::SessionContext;
use ingesta_warehouse::WarehouseTable;

use super::rows::conform;
use super::{df, plan};

/// A table a session opened already, in its store.
pub enum OpenedTable {
    Lake(LakeTable),
    Warehouse(WarehouseTable),
}

/// The tables a session opened, by name: read again here, not opened again.
pub type Opened = std::collections::BTreeMap<String, OpenedTable>;

/// Replaces each eligible rollup registered in `ctx` by its stored rows
/// plus its tail (see the module's note); a rollup with no tail stays as it
/// is. `opened`: the tables the session opened.
pub async fn register(ctx: &SessionContext, p: &Pipeline, opened: &Opened) -> Result<(), Error> {
    for (name, t) in p.tables.iter().filter(|(_, t)| eligible(t)) {
        if !ctx.table_exist(name.as_str()).map_err(df)? {
            continue;
        }
        let Some(tail) = tail(name, t, opened).await? else { continue };
        let rollup = ctx.deregister_table(name.as_str()).map_err(df)?.expect("registered");
        let schema = rollup.schema();
        let tail = conform(tail, &schema, name, Vec::new())?.keep;
        let (stored, pending) = (format!("__rollup_{name}"), format!("__tail_{name}"));
        ctx.register_table(stored.as_str(), rollup).map_err(df)?;
        let mem = MemTable::try_new(schema.clone(), vec![vec![tail]]).map_err(df)?;
        ctx.register_table(pending.as_str(), Arc::new(mem)).map_err(df)?;
        let view = ctx.sql(&merged_sql(t, &schema, &stored, &pending)).await.map_err(df)?;
        ctx.register_table(name.as_str(), view.into_view()).map_err(df)?;
    }
    Ok(())
}

/// An aggregate over its input's appends, merged by sums, minima and maxima only.
fn eligible(t: &Table) -> bool {
    t.layer != Layer::Bronze
        && t.write.mode == WriteModeName::Aggregate
        && t.read == ReadMode::Appends
        && t.transform.lookups.is_empty()
        && t.transform.enrich.is_empty()
        && t.write.measures.values().all(|m| matches!(m, Measure::Sum | Measure::Min | Measure::Max))
}

/// The table's query over the rows its input appended after the version it
/// recorded, as one batch; `None` when there are none.
async fn tail(name: &str, t: &Table, opened: &Opened) -> Result<Option<arrow_array::RecordBatch>, Error> {
    let ctx = plan::session();
    let provider: Arc<dyn TableProvider> = match opened.get(&t.input) {
        None => return Ok(None),
        Some(OpenedTable::Warehouse(input)) => {
            let app = ingesta_core::app_id::table(&t.input, &input.identity().await?);
            let Some(after) = position(name, opened, &app).await? else { return Ok(None) };
            let (to, rows) = input.rows_between(after, input.version()).await?;
            if to <= after {
                return Ok(None);
            }
            Arc::new(MemTable::try_new(input.arrow_schema(), vec![rows]).map_err(df)?)
        }
        Some(OpenedTable::Lake(input)) => {
            let app = ingesta_core::app_id::table(&t.input, &input.table_id()?);
            let Some(after) = position(name, opened, &app).await? else { return Ok(None) };
            let range = input.appended_since(after, None, u64::MAX).await?;
            if range.to <= after || range.files.is_empty() {
                return Ok(None);
            }
            input.delta().update_datafusion_session(&ctx.state()).map_err(|e| Error::stop(e.to_string()))?;
            input.files_rows(range.to, &range.files).await?
        }
    };
    let input_schema: SchemaRef = provider.schema();
    ctx.register_table(plan::INPUT, provider).map_err(df)?;
    let sql = format!("SELECT * FROM {} AS t", plan::table_sql(t, &input_schema));
    let frame = ctx.sql(&sql).await.map_err(df)?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(df)?;
    let batch = arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| Error::stop(e.to_string()))?;
    Ok((batch.num_rows() > 0).then_some(batch))
}

/// The input version the table `name` recorded under `app`; none when it
/// recorded none for this input (it never committed, or its input was
/// rebuilt since: it waits for `ingesta rebuild`, and is read as it is).
async fn position(name: &str, opened: &Opened, app: &str) -> Result<Option<i64>, Error> {
    match opened.get(name) {
        Some(OpenedTable::Lake(t)) => TableStore::position(t, app).await,
        Some(OpenedTable::Warehouse(t)) => t.position(app).await,
        None => Ok(None),
    }
}

/// The stored rows and the tail's, one row per key: measures combined by
/// their kind, other columns the largest.
fn merged_sql(t: &Table, schema: &SchemaRef, stored: &str, pending: &str) -> String {
    let q = |c: &str| plan::q(c);
    let cols: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let c = q(f.name());
            if t.write.key.contains(f.name()) {
                return c;
            }
            match t.write.measures.get(f.name()) {
                // a sum widens its type: cast back to the stored one
                Some(Measure::Sum) => format!("CAST(sum({c}) AS {}) AS {c}", sum_type(f.data_type())),
                Some(Measure::Min) => format!("min({c}) AS {c}"),
                _ => format!("max({c}) AS {c}"),
            }
        })
        .collect();
    let keys: Vec<String> = t.write.key.iter().map(|k| q(k)).collect();
    format!(
        "SELECT {} FROM (SELECT * FROM {stored} UNION ALL SELECT * FROM {pending}) AS u GROUP BY {}",
        cols.join(", "),
        keys.join(", ")
    )
}

/// The SQL name of a summed column's stored type, so the merged column keeps it.
fn sum_type(t: &arrow_schema::DataType) -> String {
    use arrow_schema::DataType as D;
    match t {
        D::Int8 | D::Int16 | D::Int32 => "INT".into(),
        D::Float32 => "FLOAT".into(),
        D::Float64 => "DOUBLE".into(),
        D::Decimal128(p, s) => format!("DECIMAL({p}, {s})"),
        _ => "BIGINT".into(),
    }
}
