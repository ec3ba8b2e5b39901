//! Replicas discovered when a pipeline starts: a `replicas:` entry without
//! `columns`, and with `discover: true` every other table the source
//! captures in `source_schema`, get their columns, types and key from the
//! source database's catalog, then become tables as declared ones do.

use ingesta_config::{Columns, Pipeline, PostgresCdc, ReplicaTable, Replicas, Source, generated_table};
use ingesta_core::Error;
use ingesta_pgcdc::{Scope, slot};
use ingesta_warehouse::Warehouse;

/// Adds the discovered replicas (and histories) to `p.tables`; tables
/// already there are kept as they are.
pub async fn discover(p: &mut Pipeline) -> Result<usize, Error> {
    let mut added = 0;
    for (name, r) in p.replicas.clone().iter().filter(|(_, r)| r.discovers()) {
        let at = format!("replicas.{name}");
        let source = p.tables.get(&r.input).and_then(|t| p.sources.get(&t.input));
        let Some(Source::PostgresCdc(cdc)) = source else {
            return Err(Error::stop(format!(
                "{at}: columns are read from a `postgres_cdc` source's database; `{}` has none, so declare `columns`",
                r.input
            )));
        };
        let source_name = &p.tables[&r.input].input;
        let found = catalog(cdc, source_name, r).await.map_err(|e| e.context(&at))?;
        let wanted = Replicas { tables: found, discover: false, ..r.clone() };
        let generated = wanted.expand(&at).map_err(|errors| {
            let said: Vec<String> = errors.into_iter().map(|(path, m)| format!("{path}: {m}")).collect();
            Error::stop(said.join("; "))
        })?;
        for g in generated {
            if p.tables.contains_key(&g.name) {
                continue;
            }
            let t = generated_table(&g).map_err(Error::stop)?;
            tracing::info!(table = %g.name, "replica discovered in the source database");
            p.tables.insert(g.name, t);
            added += 1;
        }
    }
    Ok(added)
}

/// The entries whose columns are read from the database, with them.
async fn catalog(
    cdc: &PostgresCdc,
    source: &str,
    r: &Replicas,
) -> Result<std::collections::BTreeMap<String, ReplicaTable>, Error> {
    let db = Warehouse::database(cdc.url.expose(), 1, "the source database")?;
    let conn = db.connect().await?;
    let publication = cdc.publication.clone().unwrap_or_else(|| format!("ingesta_{source}"));
    let scope = match cdc.tables.is_empty() {
        true => Scope::Schemas(cdc.schemas.clone()),
        false => Scope::Tables(cdc.tables.clone()),
    };
    let captured = slot::captured_tables(&conn.client, &publication, &scope).await?;
    let declared = |table: &str| {
        r.tables.iter().find(|(n, t)| t.table.clone().unwrap_or_else(|| format!("{}.{n}", r.source_schema)) == table)
    };
    let mut out = std::collections::BTreeMap::new();
    for table in captured {
        let Some((schema, name)) = table.split_once('.') else { continue };
        let entry = match declared(&table) {
            Some((_, t)) if t.columns.is_some() => continue,
            Some((n, t)) => (n.clone(), t.key.clone()),
            None if r.discover && schema == r.source_schema => (name.to_string(), Vec::new()),
            None => continue,
        };
        let columns = slot::column_types(&conn.client, &table).await?;
        let key = match entry.1.is_empty() {
            true => columns.iter().filter(|(_, _, k)| *k).map(|(c, _, _)| c.clone()).collect(),
            false => entry.1,
        };
        if key.is_empty() {
            tracing::warn!(table = %table, "no primary key: no replica (declare `key` to keep one)");
            continue;
        }
        let typed = columns.into_iter().map(|(c, ty, _)| (c, column_type(&ty))).collect();
        out.insert(entry.0, ReplicaTable { table: Some(table.clone()), key, columns: Some(Columns(typed)) });
    }
    conn.release();
    Ok(out)
}

/// A PostgreSQL type (`format_type`) as a column type of the pipeline.
fn column_type(pg: &str) -> String {
    let t = match pg {
        "bigint" => "bigint",
        "integer" | "smallint" => "int",
        "real" => "float",
        "double precision" => "double",
        "boolean" => "boolean",
        "date" => "date",
        t if t.starts_with("timestamp") => "timestamp",
        t if t.starts_with("numeric(") => {
            let inner = t.trim_start_matches("numeric(").trim_end_matches(')');
            let fits = inner.split(',').next().and_then(|p| p.trim().parse::<u8>().ok()).is_some_and(|p| p <= 38);
            return if fits { format!("decimal({inner})") } else { "string".into() };
        }
        // exact as text: numeric without a scale, text, json, uuid, arrays…
        _ => "string",
    };
    t.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_types_map_to_column_types() {
        let m = super::column_type;
        assert_eq!(m("timestamp with time zone"), "timestamp");
        assert_eq!(m("numeric(12,2)"), "decimal(12,2)");
        assert_eq!(m("numeric(40,2)"), "string");
        assert_eq!(m("numeric"), "string");
        assert_eq!((m("integer"), m("jsonb")), ("int".to_string(), "string".to_string()));
    }
}
