//! Planning every transform before anything runs: each silver and gold query
//! is planned by DataFusion against the columns its inputs will have (bronze:
//! declared columns plus metadata; silver and gold: the planned output of the
//! table they read), so an unknown column or bad SQL is reported with the key
//! it sits under, and `ingesta validate` can point at the line.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use ingesta_config::{Layer, Pipeline, ReadMode, Table, WriteModeName};
use ingesta_lake::datafusion::datasource::MemTable;
use ingesta_lake::datafusion::prelude::SessionContext;
use ingesta_lake::{Lake, LakeTable};
use ingesta_sources::schema::RecordSchema;

use crate::bronze::enrich::bronze_schema;
use crate::transform::plan;

/// A mistake found by planning: the key path and the message.
pub type Finding = (String, String);

/// Plans every silver and gold table; `lake` (when reachable) supplies the
/// columns of bronze tables that infer theirs.
pub async fn check(p: &Pipeline, lake: Option<&Lake>) -> Vec<Finding> {
    let mut schemas: BTreeMap<String, Option<SchemaRef>> = BTreeMap::new();
    let mut out = Vec::new();
    for name in p.run_order() {
        let t = &p.tables[&name];
        let schema = match t.layer {
            Layer::Bronze => bronze_columns(p, &name, t, lake).await,
            Layer::Silver | Layer::Gold => plan_table(&name, t, &schemas, &mut out).await,
        };
        schemas.insert(name, schema);
    }
    out.extend(crate::serving::reports::check(p, &schemas).await);
    out.extend(warehouse_fits(p, &schemas).await);
    out
}

/// Tables kept in the warehouse that exist there already: whether their
/// columns take the planned rows. Skipped when the warehouse does not answer
/// within a few seconds (a run then waits for it and says so).
async fn warehouse_fits(p: &Pipeline, schemas: &BTreeMap<String, Option<SchemaRef>>) -> Vec<Finding> {
    let mut out = Vec::new();
    let Ok(Some(wh)) = crate::warehouse_of(p) else { return out };
    for (name, t) in p.tables.iter().filter(|(_, t)| t.store == ingesta_config::Store::Warehouse) {
        let Some(Some(schema)) = schemas.get(name) else { continue };
        let spec = crate::transform::warehouse_spec(name, t);
        let asked = ingesta_warehouse::WarehouseTable::misfits(&wh, &spec, schema);
        match tokio::time::timeout(std::time::Duration::from_secs(5), asked).await {
            Ok(Ok(diffs)) if !diffs.is_empty() => out.push((
                format!("tables.{name}.store"),
                format!("the existing warehouse table {} does not fit: {}", spec.qualified(), diffs.join("; ")),
            )),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the warehouse's tables are not checked before the run");
                break;
            }
            Err(_) => break,
        }
    }
    out
}

async fn bronze_columns(p: &Pipeline, name: &str, t: &Table, lake: Option<&Lake>) -> Option<SchemaRef> {
    let source = p.sources.get(&t.input);
    if let Some(ingesta_config::Source::PostgresCdc(_) | ingesta_config::Source::Sql(_)) = source {
        return Some(crate::bronze::postgres::change_schema());
    } else if let Some(ingesta_config::Source::Kafka(k)) = source {
        if let Some(r) = crate::bronze::kafka::declared_record(t.columns.as_deref(), k.format) {
            return Some(crate::bronze::kafka::stream_schema(&r, k.format, &t.partition_by));
        }
    } else if let (Some(ingesta_config::Source::Http(_)), Some(cols)) = (source, &t.columns) {
        return Some(crate::bronze::http::collect_schema(&RecordSchema::from_columns(cols), &t.partition_by));
    } else if let (Some(ingesta_config::Source::Rest(_)), Some(cols)) = (source, &t.columns) {
        return Some(crate::bronze::rest::rest_schema(&RecordSchema::from_columns(cols), &t.partition_by));
    } else if let (Some(ingesta_config::Source::Landing(l)), Some(cols)) = (source, &t.columns) {
        return Some(bronze_schema(&RecordSchema::from_columns(cols), &t.partition_by, l.format.rescues()));
    }
    let lake = lake?;
    let table = LakeTable::open(lake, name, &lake.table_url(name)).await.ok()??;
    table.arrow_schema().ok().map(Arc::new)
}

/// The table's planned columns, or None (reported, or an input of unknown columns).
async fn plan_table(
    name: &str,
    t: &Table,
    schemas: &BTreeMap<String, Option<SchemaRef>>,
    out: &mut Vec<Finding>,
) -> Option<SchemaRef> {
    let at = format!("tables.{name}");
    let input = schemas.get(&t.input)?.clone()?;
    let input = match t.read {
        ReadMode::Appends => input,
        ReadMode::Changes => Arc::new(ingesta_lake::change_schema(&input)),
    };
    let ctx = plan::session();
    let register = |ctx: &SessionContext, table: &str, schema: &SchemaRef| {
        let mem = MemTable::try_new(schema.clone(), vec![vec![]]).expect("an empty table");
        ctx.register_table(table, Arc::new(mem)).expect("a fresh name");
    };
    register(&ctx, plan::INPUT, &input);
    for l in &t.transform.lookups {
        register(&ctx, l, schemas.get(l)?.as_ref()?);
    }
    let sql = plan::table_sql(t, &input);
    let key = if t.transform.sql.is_some() { format!("{at}.transform.sql") } else { format!("{at}.transform") };
    let planned = match ctx.sql(&format!("SELECT * FROM {sql} AS t")).await {
        Ok(df) => plan::stored_schema(df.schema().as_arrow()),
        Err(e) => {
            out.push((key, format!("the transform does not plan: {}", first_line(&e.to_string()))));
            return None;
        }
    };
    register(&ctx, "__planned", &planned);
    for (i, e) in t.expect.iter().enumerate() {
        if let Err(err) = ctx.sql(&format!("SELECT coalesce(({}), false) FROM __planned", e.check)).await {
            out.push((format!("{at}.expect[{i}].check"), format!("does not plan: {}", first_line(&err.to_string()))));
        }
    }
    for (key, cond) in [("delete_when", &t.write.delete_when), ("truncate_when", &t.write.truncate_when)] {
        if let Some(cond) = cond
            && let Err(e) = ctx.sql(&format!("SELECT coalesce(({cond}), false) FROM __planned")).await
        {
            out.push((format!("{at}.write.{key}"), format!("does not plan: {}", first_line(&e.to_string()))));
        }
    }
    for (i, e) in t.transform.enrich.iter().enumerate() {
        let columns =
            e.key_columns().unwrap_or_default().into_iter().map(|c| (format!("{at}.transform.enrich[{i}].key"), c));
        let matched = e.matching.iter().map(|(f, c)| (format!("{at}.transform.enrich[{i}].match.{f}"), c.clone()));
        for (key, c) in columns.chain(matched) {
            if planned.field_with_name(&c).is_err() {
                let names: Vec<&str> = planned.fields().iter().map(|f| f.name().as_str()).collect();
                out.push((key, format!("unknown column `{c}`; the transform gives: {}", names.join(", "))));
            }
        }
        for c in e.columns.keys().filter(|c| planned.field_with_name(c).is_ok()) {
            let msg = format!("the transform already gives a column `{c}`; name the looked-up one otherwise");
            out.push((format!("{at}.transform.enrich[{i}].columns.{c}"), msg));
        }
    }
    let planned = crate::transform::enriched_schema(&t.transform.enrich, &planned);
    if t.write.mode == WriteModeName::Scd2 {
        for c in [ingesta_core::VALID_FROM, ingesta_core::VALID_TO, ingesta_core::IS_CURRENT] {
            if planned.field_with_name(c).is_ok() {
                let msg = format!("the transform gives a column `{c}`, which scd2 adds itself; name it otherwise");
                out.push((format!("{at}.write.mode"), msg));
            }
        }
    }
    let planned = plan::with_history(t, &planned);
    let has = |c: &str| planned.field_with_name(c).is_ok();
    let names = || planned.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
    for (i, k) in t.write.key.iter().enumerate() {
        if !has(k) {
            out.push((
                format!("{at}.write.key[{i}]"),
                format!("unknown column `{k}`; the transform gives: {}", names()),
            ));
        }
    }
    if let Some(s) = &t.write.sequence
        && !has(s)
    {
        out.push((format!("{at}.write.sequence"), format!("unknown column `{s}`; the transform gives: {}", names())));
    }
    if t.write.mode == WriteModeName::Aggregate {
        for m in t.write.measures.keys().filter(|m| !has(m)) {
            out.push((
                format!("{at}.write.measures.{m}"),
                format!("unknown column `{m}`; the transform gives: {}", names()),
            ));
        }
    }
    for (i, part) in t.partition_by.iter().enumerate() {
        if !has(&part.column) {
            out.push((
                format!("{at}.partition_by[{i}].column"),
                format!("unknown column `{}`; the transform gives: {}", part.column, names()),
            ));
        }
    }
    Some(planned)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
