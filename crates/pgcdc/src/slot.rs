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
    let rows = c
        .query(
            "SELECT a.attname::text, a.atttypid::int8, coalesce(a.attnum = ANY(i.indkey), false), \
                    cl.relreplident::text, n.nspname::text, cl.relname::text
             FROM pg_attribute a
             JOIN pg_class cl ON cl.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = cl.relnamespace
             LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
             WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&qualified(table)],
        )
        .await
        .map_err(|e| classify(e, &format!("reading the columns of `{table}`")))?;
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
