//! The publication and the slot, through an ordinary connection: created when
//! absent, adopted when present, and their health read from
//! `pg_replication_slots` before each session.

use ingesta_core::{Error, Result};
use ingesta_warehouse::classify;
use tokio_postgres::Client;

use crate::Lsn;
use crate::decode::{Column, Relation};

/// What a publication covers when it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every table of these schemas, including tables created later.
    Schemas(Vec<String>),
    /// These tables (`schema.table`).
    Tables(Vec<String>),
}

/// The slot as PostgreSQL reports it.
#[derive(Debug, Clone)]
pub struct SlotState {
    pub plugin: Option<String>,
    pub active: bool,
    pub confirmed_flush: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+).
    pub wal_status: Option<String>,
}

/// Creates the publication when it does not exist (an existing one is
/// adopted as it is).
pub async fn ensure_publication(c: &Client, name: &str, scope: &Scope) -> Result<()> {
    let exists = c
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&name])
        .await
        .map_err(|e| classify(e, "reading the source's publications"))?;
    if exists.is_some() {
        return Ok(());
    }
    let what = match scope {
        Scope::Schemas(s) => format!("TABLES IN SCHEMA {}", s.iter().map(|s| ident(s)).collect::<Vec<_>>().join(", ")),
        Scope::Tables(t) => format!("TABLE {}", t.iter().map(|t| qualified(t)).collect::<Vec<_>>().join(", ")),
    };
    let sql = format!("CREATE PUBLICATION {} FOR {what}", ident(name));
    c.batch_execute(&sql).await.map_err(|e| classify(e, &format!("creating the publication `{name}` ({sql})")))?;
    tracing::info!(publication = name, "created the publication: {sql}");
    Ok(())
}

/// The slot, if it exists.
pub async fn slot_state(c: &Client, slot: &str) -> Result<Option<SlotState>> {
    let row = c
        .query_opt(
            "SELECT plugin, active, confirmed_flush_lsn::text, wal_status FROM pg_replication_slots \
             WHERE slot_name = $1 AND slot_type = 'logical'",
            &[&slot],
        )
        .await
        .map_err(|e| classify(e, "reading the source's replication slots"))?;
    Ok(row.map(|r| SlotState {
        plugin: r.get(0),
        active: r.get(1),
        confirmed_flush: r.get::<_, Option<String>>(2).and_then(|s| Lsn::parse(&s).ok()),
        wal_status: r.get(3),
    }))
}

/// Drops a slot nothing holds.
pub async fn drop_slot(c: &Client, slot: &str) -> Result<()> {
    c.execute("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .map_err(|e| classify(e, &format!("dropping the replication slot `{slot}`")))?;
    Ok(())
}

/// The tables the publication covers now.
pub async fn published_tables(c: &Client, publication: &str) -> Result<Vec<String>> {
    let rows = c
        .query(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1",
            &[&publication],
        )
        .await
        .map_err(|e| classify(e, &format!("reading the tables of the publication `{publication}`")))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// A table's columns as a Relation message would describe them (the
/// primary key's columns are its key).
pub async fn relation(c: &Client, table: &str) -> Result<Relation> {
    let rows = catalog(c, table).await?;
    let first = rows.first().ok_or_else(|| Error::stop(format!("the source table `{table}` has no columns")))?;
    let columns =
        rows.iter().map(|r| Column { name: r.get(0), type_oid: r.get::<_, i64>(1) as u32, key: r.get(2) }).collect();
    Ok(Relation {
        id: 0,
        schema: first.get(4),
        name: first.get(5),
        full_identity: first.get::<_, String>(3) == "f",
        columns,
    })
}

/// A table's columns as SQL types (`format_type`: `numeric(12,2)`,
/// `timestamp with time zone`) and whether each is in its primary key.
pub async fn column_types(c: &Client, table: &str) -> Result<Vec<(String, String, bool)>> {
    Ok(catalog(c, table).await?.iter().map(|r| (r.get(0), r.get(6), r.get(2))).collect())
}

/// One row per column of `table`, in order: name, type oid, in the primary
/// key, the table's replica identity, schema and name, the formatted type.
async fn catalog(c: &Client, table: &str) -> Result<Vec<tokio_postgres::Row>> {
    c.query(
        "SELECT a.attname::text, a.atttypid::int8, coalesce(a.attnum = ANY(i.indkey), false), \
                cl.relreplident::text, n.nspname::text, cl.relname::text, format_type(a.atttypid, a.atttypmod)
         FROM pg_attribute a
         JOIN pg_class cl ON cl.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = cl.relnamespace
         LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
         WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attnum",
        &[&qualified(table)],
    )
    .await
    .map_err(|e| classify(e, &format!("reading the columns of `{table}`")))
}

/// How far the source's WAL is flushed now.
pub async fn current_lsn(c: &Client) -> Result<Lsn> {
    let row = c
        .query_one("SELECT pg_current_wal_flush_lsn()::text", &[])
        .await
        .map_err(|e| classify(e, "reading the source's WAL position"))?;
    let text: String = row.get(0);
    Lsn::parse(&text).map_err(|_| Error::stop(format!("`{text}` is not an LSN")))
}

/// A quoted identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `schema.table`, each part quoted (`public` when no schema is named).
pub fn qualified(t: &str) -> String {
    match t.split_once('.') {
        Some((s, n)) => format!("{}.{}", ident(s), ident(n)),
        None => format!("\"public\".{}", ident(t)),
    }
}

/// Fills the TOASTed values an update did not carry (no REPLICA IDENTITY
/// FULL, so the stream has no old row to take them from) with the source
/// row's values now, so a replica never stores them as NULL. The value is
/// the row's current one: exact for the replica (a later change carries any
/// newer value); a history may show a version with a value the row took
/// later. A row since deleted keeps the columns out (its delete follows).
pub async fn fill_unchanged(c: &Client, rows: impl Iterator<Item = &mut crate::Row>) -> Result<usize> {
    let mut filled = 0;
    for row in rows.filter(|r| r.unchanged.is_some()) {
        let names: Vec<String> = serde_json::from_str(row.unchanged.as_deref().unwrap_or("[]")).unwrap_or_default();
        let key: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.key).unwrap_or_default();
        let Some(serde_json::Value::Object(mut after)) =
            row.after.as_deref().and_then(|a| serde_json::from_str(a).ok())
        else {
            continue;
        };
        let texts: Vec<Option<String>> =
            key.values().map(|v| v.as_str().map(str::to_string).or(Some(v.to_string()))).collect();
        let conds: Vec<String> =
            key.keys().enumerate().map(|(i, k)| format!("{}::text = ${}", ident(k), i + 1)).collect();
        let cols: Vec<String> = names.iter().map(|n| format!("{}::text", ident(n))).collect();
        let sql = format!("SELECT {} FROM {} WHERE {}", cols.join(", "), qualified(&row.table), conds.join(" AND "));
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            texts.iter().map(|t| t as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
        let found = c
            .query_opt(&sql, &params)
            .await
            .map_err(|e| classify(e, &format!("reading unchanged TOAST values of `{}`", row.table)))?;
        let Some(found) = found else { continue };
        for (i, n) in names.iter().enumerate() {
            let v: Option<String> = found.get(i);
            after.insert(n.clone(), v.map_or(serde_json::Value::Null, serde_json::Value::String));
        }
        row.after = Some(serde_json::Value::Object(after).to_string());
        filled += 1;
    }
    Ok(filled)
}

/// The tables a source captures: the publication's when it exists, else
/// those of `scope` now (the publication is made at the first run).
pub async fn captured_tables(c: &Client, publication: &str, scope: &Scope) -> Result<Vec<String>> {
    let exists = c
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication])
        .await
        .map_err(|e| classify(e, "reading the source's publications"))?;
    if exists.is_some() {
        return published_tables(c, publication).await;
    }
    match scope {
        Scope::Tables(t) => Ok(t.clone()),
        Scope::Schemas(s) => {
            let rows = c
                .query(
                    "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname = ANY($1) ORDER BY 1",
                    &[s],
                )
                .await
                .map_err(|e| classify(e, "listing the source's tables"))?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        }
    }
}
