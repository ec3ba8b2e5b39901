//! `replicas:` — the tables of a change-row table (a `postgres_cdc` source's
//! bronze) kept as current-state replicas and as histories, expanded into
//! ordinary silver tables when the file is loaded:
//!
//! ```yaml
//! replicas:
//!   shop:
//!     input: shop_changes          # the change rows
//!     source_schema: shop          # rows of table `shop.<name>`
//!     history: true                # also `<name>_history`
//!     tables:
//!       customers:
//!         key: [id]
//!         columns: {id: bigint, name: string, updated_at: timestamp, balance: "decimal(12,2)"}
//! ```
//!
//! A replica `<name>` keeps each key's newest change by `seq` (out-of-order
//! safe), drops the key at a delete and every key at a truncate (`write:
//! {mode: replica}`); a history
//! `<name>_history` keeps every version (`mode: scd2`: `valid_from`,
//! `valid_to`, `is_current`) with the `op` that made it. Both carry `seq`,
//! `changed_at` (the commit time) and `op`. Columns are read from the change
//! row's `after` (the key from `key`, so deletes keep it) and cast to their
//! declared type.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::ColumnType;
use super::vault::{Columns, Expansion, Generated, silver_table};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replicas {
    /// The change-row table (bronze of a `postgres_cdc` source).
    pub input: String,
    /// The source schema of the tables (`table: <source_schema>.<name>`).
    #[serde(default = "default_schema")]
    pub source_schema: String,
    /// Keep a history beside each replica.
    #[serde(default = "yes")]
    pub history: bool,
    /// `lake` (the default) or `warehouse`, for every table.
    #[serde(default)]
    pub store: Option<String>,
    /// The warehouse schema of the tables.
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub tables: BTreeMap<String, ReplicaTable>,
    /// Also keep every other table the source publishes in `source_schema`,
    /// its columns read from the source database when the pipeline starts
    /// (a table created later gets its replica at the next start, from the
    /// change rows kept meanwhile).
    #[serde(default)]
    pub discover: bool,
}

fn default_schema() -> String {
    "public".into()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaTable {
    /// The source table, when not `<source_schema>.<name>`.
    #[serde(default)]
    pub table: Option<String>,
    /// The key columns (default with discovered columns: the source's primary key).
    #[serde(default)]
    pub key: Vec<String>,
    /// `name: type`, in the order the replica stores them; none: read from
    /// the source database when the pipeline starts.
    #[serde(default)]
    pub columns: Option<Columns>,
}

impl Replicas {
    /// Whether the runtime reads columns or tables from the source.
    pub fn discovers(&self) -> bool {
        self.discover || self.tables.values().any(|t| t.columns.is_none())
    }
}

impl Replicas {
    /// The replicas and histories, or each mistake as (key path, message).
    pub fn expand(&self, at: &str) -> Expansion {
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        for (name, t) in &self.tables {
            let at = format!("{at}.tables.{name}");
            // discovered when the pipeline starts (`ingesta_runtime::discover`)
            let Some(columns) = &t.columns else { continue };
            let mut select = Vec::with_capacity(columns.0.len());
            for (col, ty) in &columns.0 {
                match ColumnType::try_from(ty.clone()) {
                    Ok(ty) => select.push(extract(col, ty, t.key.contains(col))),
                    Err(e) => errors.push((format!("{at}.columns.{col}"), e)),
                }
            }
            for k in t.key.iter().filter(|k| !columns.0.iter().any(|(c, _)| c == *k)) {
                errors.push((format!("{at}.key"), format!("`{k}` is not one of the columns")));
            }
            if t.key.is_empty() {
                errors.push((format!("{at}.key"), "name the key columns (the source's primary key)".into()));
            }
            let source = t.table.clone().unwrap_or_else(|| format!("{}.{name}", self.source_schema));
            // a truncate reaches the replica (it deletes every key before it), not the history
            let sql = format!(
                "SELECT {}, seq, commit_ts AS changed_at, op FROM input WHERE \"table\" = '{}'",
                select.join(", "),
                source.replace('\'', "''")
            );
            out.push(self.table(name, &sql, &t.key, "replica", &at));
            if self.history {
                let versions = format!("{sql} AND op <> 't'");
                out.push(self.table(&format!("{name}_history"), &versions, &t.key, "scd2", &at));
            }
        }
        if errors.is_empty() { Ok(out) } else { Err(errors) }
    }

    fn table(&self, name: &str, sql: &str, key: &[String], mode: &str, origin: &str) -> Generated {
        let s = |v: &str| Value::String(v.to_string());
        let mut t = silver_table(&self.input, self.store.as_deref(), self.schema.as_deref(), sql);
        let mut write = Mapping::new();
        write.insert(s("mode"), s(mode));
        write.insert(s("key"), Value::Sequence(key.iter().map(|k| s(k)).collect()));
        if mode == "scd2" {
            write.insert(s("sequence"), s("seq"));
        }
        t.insert(s("write"), Value::Mapping(write));
        Generated { name: name.to_string(), table: Value::Mapping(t), origin: origin.to_string() }
    }
}

/// A column of the change row's JSON (`key` for key columns, so a delete
/// keeps them; `after` otherwise) as its declared type.
fn extract(col: &str, ty: ColumnType, key: bool) -> String {
    let from = if key { "key" } else { "after" };
    let c = col.replace('\'', "''");
    let text = format!("json_as_text({from}, '{c}')");
    let value = match ty {
        ColumnType::String => text,
        ColumnType::Bigint => format!("json_get_int({from}, '{c}')"),
        ColumnType::Boolean => format!("json_get_bool({from}, '{c}')"),
        ColumnType::Timestamp => format!("to_timestamp_micros({text})"),
        ColumnType::Int => format!("CAST({text} AS INT)"),
        ColumnType::Float => format!("CAST({text} AS REAL)"),
        ColumnType::Double => format!("CAST({text} AS DOUBLE)"),
        ColumnType::Date => format!("CAST({text} AS DATE)"),
        ColumnType::Decimal(p, s) => format!("CAST({text} AS DECIMAL({p},{s}))"),
    };
    format!("{value} AS \"{}\"", col.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_and_its_history_read_the_source_table_s_change_rows() {
        let r: Replicas = serde_yaml::from_str(
            "input: changes\nsource_schema: shop\ntables:\n  orders:\n    key: [id]\n    columns: {id: bigint, total: 'decimal(14,2)', placed: timestamp}\n",
        )
        .unwrap();
        let g = r.expand("replicas.shop").unwrap();
        assert_eq!(g.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["orders", "orders_history"]);
        let yaml = serde_yaml::to_string(&g[0].table).unwrap();
        assert!(yaml.contains(r#"json_get_int(key, 'id') AS "id""#), "{yaml}");
        assert!(yaml.contains("CAST(json_as_text(after, 'total') AS DECIMAL(14,2))"), "{yaml}");
        assert!(yaml.contains(r#""table" = 'shop.orders'"#) && yaml.contains("mode: replica"), "{yaml}");
        assert!(!yaml.contains("op <> 't'"), "a truncate reaches the replica: {yaml}");
        let bad: Replicas =
            serde_yaml::from_str("input: c\ntables:\n  t:\n    key: [x]\n    columns: {id: numberish}\n").unwrap();
        let errors = bad.expand("replicas.r").unwrap_err();
        assert!(errors.iter().any(|(p, m)| p == "replicas.r.tables.t.columns.id" && m.contains("unknown column type")));
        assert!(errors.iter().any(|(p, m)| p == "replicas.r.tables.t.key" && m.contains("`x`")));
    }
}
