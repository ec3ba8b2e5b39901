//! Reports' parameters as typed values bound to `$name` placeholders (never
//! spliced into the SQL), and planning every report for `validate`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_schema::{DataType, SchemaRef, TimeUnit};
use ingesta_config::{ParamType, ParamValue, Pipeline, Report};
use ingesta_lake::datafusion::common::{ParamValues, ScalarValue};
use ingesta_lake::datafusion::datasource::MemTable;
use ingesta_lake::datafusion::execution::context::SQLOptions;

use crate::check::Finding;

/// Queries only: no DDL, DML or session statements anywhere in the plan.
pub fn read_only() -> SQLOptions {
    SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false)
}

/// The values of `report`'s parameters from the caller's text (defaults
/// filled in, optional ones NULL), or what is wrong with them.
pub fn bind(report: &Report, given: &BTreeMap<String, String>) -> Result<ParamValues, String> {
    let mut values = Vec::new();
    for p in &report.params {
        let v = p.value(given.get(&p.name).map(String::as_str))?;
        values.push((p.name.clone(), scalar(p.kind, v)));
    }
    Ok(ParamValues::from(values))
}

fn scalar(kind: ParamType, v: ParamValue) -> ScalarValue {
    let utc = || Some(Arc::from("UTC"));
    match v {
        ParamValue::Text(s) => ScalarValue::Utf8(Some(s)),
        ParamValue::Int(i) => ScalarValue::Int64(Some(i)),
        ParamValue::Float(f) => ScalarValue::Float64(Some(f)),
        ParamValue::Bool(b) => ScalarValue::Boolean(Some(b)),
        ParamValue::Date(d) => ScalarValue::Date32(Some((d - chrono::NaiveDate::default()).num_days() as i32)),
        ParamValue::Timestamp(us) => ScalarValue::TimestampMicrosecond(Some(us), utc()),
        ParamValue::Null => {
            let ty = match kind {
                ParamType::String | ParamType::Enum => DataType::Utf8,
                ParamType::Int => DataType::Int64,
                ParamType::Float => DataType::Float64,
                ParamType::Bool => DataType::Boolean,
                ParamType::Date => DataType::Date32,
                ParamType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, utc()),
            };
            ScalarValue::try_from(&ty).unwrap_or(ScalarValue::Null)
        }
    }
}

/// A value of each parameter to plan with: its default, else a sample of its type.
fn sample(report: &Report) -> ParamValues {
    let values = report.params.iter().map(|p| {
        let v = match p.default_text() {
            Some(d) => p.parse(&d).unwrap_or(ParamValue::Null),
            None if p.kind == ParamType::Enum => ParamValue::Text(p.values.first().cloned().unwrap_or_default()),
            None => ParamValue::Null,
        };
        (p.name.clone(), scalar(p.kind, v))
    });
    ParamValues::from(values.collect::<Vec<_>>())
}

/// Plans every report against the tables' planned columns (`schemas`; a
/// table whose columns are unknown yet leaves its reports unchecked).
pub async fn check(p: &Pipeline, schemas: &BTreeMap<String, Option<SchemaRef>>) -> Vec<Finding> {
    let mut out = Vec::new();
    if p.reports.is_empty() {
        return out;
    }
    let ctx = crate::transform::plan::session();
    let mut unknown = Vec::new();
    for (name, schema) in schemas {
        let quarantine = format!("{name}__quarantine");
        let q = ingesta_lake::quarantine_schema();
        for (table, schema) in [(name.as_str(), schema.as_ref()), (quarantine.as_str(), Some(&q))] {
            match schema {
                Some(s) => {
                    let mem = MemTable::try_new(s.clone(), vec![vec![]]).expect("an empty table");
                    ctx.register_table(table, Arc::new(mem)).expect("a fresh name");
                }
                None => unknown.push(table.to_string()),
            }
        }
    }
    for (name, r) in &p.reports {
        let at = format!("reports.{name}");
        if unknown.iter().any(|t| r.sql.contains(t.as_str())) {
            continue; // its columns come from data not read yet
        }
        let planned = match ctx.sql_with_options(&r.sql, read_only()).await {
            Ok(df) => df.with_param_values(sample(r)),
            Err(e) => Err(e),
        };
        let schema = match planned {
            Ok(df) => df.schema().as_arrow().clone(),
            Err(e) => {
                out.push((format!("{at}.sql"), format!("the query does not plan: {}", short(&e.to_string()))));
                continue;
            }
        };
        let has = |c: &String| schema.field_with_name(c).is_ok();
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        for c in r.columns.iter().filter(|c| !has(c)) {
            out.push((
                format!("{at}.columns"),
                format!("the query gives no column `{c}`; it gives: {}", columns.join(", ")),
            ));
        }
        if let Some(chart) = &r.chart {
            for c in std::iter::once(&chart.x).chain(&chart.y).filter(|c| !has(c)) {
                let msg =
                    format!("the chart draws `{c}`, which the query does not give; it gives: {}", columns.join(", "));
                out.push((format!("{at}.chart"), msg));
            }
        }
    }
    out
}

/// DataFusion's message without its backtrace-like prefixes.
pub fn short(e: &str) -> String {
    e.replace("Error during planning: ", "").replace("Schema error: ", "")
}
