//! Creating, adopting or refusing a table, and the store's own catalog
//! (schema `ingesta`). Run inside the caller's transaction, under a lock
//! that keeps two processes from creating the same things at once.

use arrow_schema::Schema;
use ingesta_core::{Error, Result};

use crate::connect::classify;
use crate::modes::VERSION;
use crate::types::{PgType, quote};

/// Where a pipeline table lives in the warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The table's name in the pipeline.
    pub name: String,
    /// The PostgreSQL schema (`public` unless the pipeline says otherwise).
    pub schema: String,
    pub table: String,
    /// The key, when the table has one: a unique constraint on creation.
    pub key: Vec<String>,
    /// Range partitions by time (a hypertable where TimescaleDB is installed).
    pub partition: Option<crate::partitions::TimePartition>,
}

impl TableSpec {
    /// `schema.table`, unquoted: the table's id in the store's catalog.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }
}

/// Creates the store's catalog when absent.
pub async fn ensure_catalog(c: &tokio_postgres::Client) -> Result<()> {
    c.batch_execute(
        "SELECT pg_advisory_xact_lock(4242001);
         CREATE SCHEMA IF NOT EXISTS ingesta;
         CREATE TABLE IF NOT EXISTS ingesta.tables (
             name text PRIMARY KEY, version bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE IF NOT EXISTS ingesta.positions (
             table_name text NOT NULL, app_id text NOT NULL, version bigint NOT NULL,
             PRIMARY KEY (table_name, app_id));
         CREATE TABLE IF NOT EXISTS ingesta.commits (
             table_name text NOT NULL, version bigint NOT NULL, mode text NOT NULL, rows bigint NOT NULL,
             info jsonb, committed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (table_name, version));",
    )
    .await
    .map_err(|e| classify(e, "creating the warehouse catalog (schema `ingesta`)"))
}

/// The columns of an existing table (without `_ingesta_version`), with
/// whether it has that column; `None` when the table does not exist.
/// Columns of types the store does not handle come back as `None` types.
pub async fn existing(
    c: &tokio_postgres::Client,
    spec: &TableSpec,
) -> Result<Option<(Vec<(String, Option<PgType>, String)>, bool)>> {
    let doing = format!("reading the columns of {}", spec.qualified());
    let rows = c
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
             JOIN pg_class r ON r.oid = a.attrelid JOIN pg_namespace n ON n.oid = r.relnamespace \
             WHERE n.nspname = $1 AND r.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            &[&spec.schema, &spec.table],
        )
        .await
        .map_err(|e| classify(e, &doing))?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut versioned = false;
    let mut columns = Vec::new();
    for r in rows {
        let (name, formatted): (String, String) = (r.get(0), r.get(1));
        if name == VERSION {
            versioned = true;
        } else {
            columns.push((name, PgType::parse(&formatted), formatted));
        }
    }
    Ok(Some((columns, versioned)))
}

/// The column sets of the table's unique indexes (no expressions, no
/// predicates), each sorted: the keys `ON CONFLICT` can use.
pub async fn unique_keys(c: &tokio_postgres::Client, spec: &TableSpec) -> Result<Vec<Vec<String>>> {
    let rows = c
        .query(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i \
             JOIN pg_class r ON r.oid = i.indrelid JOIN pg_namespace n ON n.oid = r.relnamespace \
             JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum = ANY(i.indkey) \
             WHERE n.nspname = $1 AND r.relname = $2 AND i.indisunique AND i.indpred IS NULL \
             AND i.indexprs IS NULL GROUP BY i.indexrelid",
            &[&spec.schema, &spec.table],
        )
        .await
        .map_err(|e| classify(e, &format!("reading the unique keys of {}", spec.qualified())))?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}

/// (`NOT NULL` columns without a default, columns with a default).
pub type NotNull = (Vec<String>, Vec<String>);

/// The table's `NOT NULL` columns without a default (besides
/// `_ingesta_version`): a row with a null there is quarantined before it is
/// written; and the columns with a default (serial, identity, generated,
/// `DEFAULT …`), which rows that do not have them leave to PostgreSQL.
pub async fn not_null(c: &tokio_postgres::Client, spec: &TableSpec) -> Result<NotNull> {
    let rows = c
        .query(
            "SELECT a.attname::text, a.attnotnull, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') \
             FROM pg_attribute a JOIN pg_class r ON r.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = r.relnamespace \
             WHERE n.nspname = $1 AND r.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             AND a.attname <> $3",
            &[&spec.schema, &spec.table, &VERSION],
        )
        .await
        .map_err(|e| classify(e, &format!("reading the NOT NULL columns of {}", spec.qualified())))?;
    let (mut required, mut defaulted) = (Vec::new(), Vec::new());
    for r in rows {
        let (name, not_null, default): (String, bool, bool) = (r.get(0), r.get(1), r.get(2));
        if default {
            defaulted.push(name);
        } else if not_null {
            required.push(name);
        }
    }
    Ok((required, defaulted))
}

/// The columns of [`existing`] the store reads and writes (others are left alone).
pub fn handled(columns: Vec<(String, Option<PgType>, String)>) -> Vec<(String, PgType)> {
    columns.into_iter().filter_map(|(n, t, _)| Some((n, t?))).collect()
}

/// What keeps an existing table's columns from taking `schema`'s rows, one
/// line each (a column it lacks is not in the way: it is added, nullable).
pub fn differences(columns: &[(String, Option<PgType>, String)], schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    for field in schema.fields() {
        match columns.iter().find(|(n, _, _)| n == field.name()) {
            None => {}
            Some((_, None, formatted)) => {
                out.push(format!("column `{}` is `{formatted}`, a type the warehouse store cannot write", field.name()))
            }
            Some((_, Some(t), formatted)) if !t.accepts(field.data_type()) => out.push(format!(
                "column `{}` is `{formatted}` but the pipeline writes {}",
                field.name(),
                field.data_type()
            )),
            Some(_) => {}
        }
    }
    out
}

/// Creates the table when absent or checks it when present; returns its
/// columns (those the store handles) in table order.
pub async fn create_or_adopt(
    c: &tokio_postgres::Client,
    spec: &TableSpec,
    schema: &Schema,
) -> Result<Vec<(String, PgType)>> {
    let target = format!("{}.{}", quote(&spec.schema), quote(&spec.table));
    let doing = format!("creating warehouse table {}", spec.qualified());
    match existing(c, spec).await? {
        Some((columns, versioned)) => {
            let diffs = differences(&columns, schema);
            if !diffs.is_empty() {
                return Err(Error::stop(format!(
                    "table `{}`: the existing warehouse table {} does not fit: {}",
                    spec.name,
                    spec.qualified(),
                    diffs.join("; ")
                )));
            }
            if !versioned {
                let sql = format!("ALTER TABLE {target} ADD COLUMN {VERSION} bigint NOT NULL DEFAULT 0");
                c.batch_execute(&sql).await.map_err(|e| classify(e, &doing))?;
            }
            let lacking: Vec<arrow_schema::Field> = schema
                .fields()
                .iter()
                .filter(|f| !columns.iter().any(|(n, _, _)| n == f.name()))
                .map(|f| f.as_ref().clone())
                .collect();
            let mut columns = handled(columns);
            if !lacking.is_empty() {
                columns.extend(add_columns(c, &target, &lacking).await?);
                tracing::info!(table = %spec.name, added = lacking.len(), "added the columns the existing table lacked");
            }
            Ok(columns)
        }
        None => {
            let mut defs = Vec::new();
            let mut columns = Vec::new();
            for field in schema.fields() {
                let t = PgType::for_arrow(field.data_type())
                    .map_err(|e| e.context(&format!("table `{}`, column `{}`", spec.name, field.name())))?;
                let not_null = if field.is_nullable() { "" } else { " NOT NULL" };
                defs.push(format!("{} {}{not_null}", quote(field.name()), t.sql()));
                columns.push((field.name().clone(), t));
            }
            defs.push(format!("{VERSION} bigint NOT NULL DEFAULT 0"));
            if !spec.key.is_empty() {
                let key: Vec<String> = spec.key.iter().map(|k| quote(k)).collect();
                defs.push(format!("UNIQUE ({})", key.join(", ")));
            }
            let timescale = match &spec.partition {
                Some(_) => crate::partitions::timescale(c).await?,
                None => false,
            };
            let partitioned = match &spec.partition {
                Some(p) if !timescale => crate::partitions::clause(p),
                _ => String::new(),
            };
            let sql = format!(
                "CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE {target} ({}){partitioned}; CREATE INDEX ON {target} ({VERSION})",
                quote(&spec.schema),
                defs.join(", ")
            );
            c.batch_execute(&sql).await.map_err(|e| classify(e, &doing))?;
            if let (Some(p), true) = (&spec.partition, timescale) {
                crate::partitions::hypertable(c, &spec.schema, &spec.table, p).await?;
            }
            Ok(columns)
        }
    }
}

/// Whether the table is natively partitioned (`PARTITION BY`).
pub async fn partitioned(c: &tokio_postgres::Client, spec: &TableSpec) -> Result<bool> {
    let row = c
        .query_opt(
            "SELECT 1 FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace \
             WHERE n.nspname = $1 AND r.relname = $2 AND r.relkind = 'p'",
            &[&spec.schema, &spec.table],
        )
        .await
        .map_err(|e| classify(e, &format!("reading how {} is partitioned", spec.qualified())))?;
    Ok(row.is_some())
}

/// Adds nullable columns to `target`; their names and types. One statement
/// string: its own transaction, or part of the caller's when one is open.
pub async fn add_columns(
    c: &tokio_postgres::Client,
    target: &str,
    fields: &[arrow_schema::Field],
) -> Result<Vec<(String, PgType)>> {
    let mut added = Vec::with_capacity(fields.len());
    let mut sql = Vec::with_capacity(fields.len());
    for f in fields {
        let ty = PgType::for_arrow(f.data_type())?;
        sql.push(format!("ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {} {}", quote(f.name()), ty.sql()));
        added.push((f.name().clone(), ty));
    }
    c.batch_execute(&sql.join(";\n")).await.map_err(|e| classify(e, &format!("adding columns to {target}")))?;
    Ok(added)
}
