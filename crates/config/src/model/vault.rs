//! `vaults:` — a Data Vault declared by its hubs, links and satellites over
//! one input, expanded into ordinary tables when the file is loaded:
//!
//! ```yaml
//! vaults:
//!   dds:
//!     input: order_lines          # a table with the business keys and attributes
//!     store: warehouse
//!     schema: dds
//!     load_dt: sent_dttm          # the event time column
//!     load_src: orders-system-kafka
//!     hubs:
//!       h_user: {key: user_id}
//!       h_order: {key: object_id, as: order_id, attributes: {order_dt: order_dt}}
//!     links:
//!       l_order_user: [h_order, h_user]
//!     satellites:
//!       s_user_names: {hub: h_user, columns: {username: user_name, userlogin: user_login}}
//! ```
//!
//! A hub `h_x` has `h_x_pk` (the key by `profile`), the business key (named
//! `as`), its `attributes` (the earliest value), `load_dt` and `load_src`; a
//! link `l_x` has `hk_x_pk` and each hub's `_pk`; a satellite `s_x` has its
//! hub's `_pk`, its columns and `hk_x_hashdiff` (of the hub's key and the
//! columns, in the order written). One row per key or hashdiff; `load_dt` is
//! the smallest `load_dt` among the rows that carried it (docs/vault.md).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::{Mapping, Value};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vault {
    /// The table whose rows carry the keys and attributes (append-only).
    pub input: String,
    /// `lake` (the default) or `warehouse`, for every table of the vault.
    #[serde(default)]
    pub store: Option<String>,
    /// The warehouse schema of the vault's tables.
    #[serde(default)]
    pub schema: Option<String>,
    /// The key profile (docs/vault.md); `uuid5` by default.
    #[serde(default = "default_profile")]
    pub profile: String,
    /// The input's event-time column: a row's `load_dt`.
    pub load_dt: String,
    /// The record source written to `load_src`.
    pub load_src: String,
    #[serde(default)]
    pub hubs: BTreeMap<String, Hub>,
    /// Each link's hubs, in key order.
    #[serde(default)]
    pub links: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub satellites: BTreeMap<String, Satellite>,
}

fn default_profile() -> String {
    "uuid5".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hub {
    /// The input column with the business key.
    pub key: String,
    /// The business key's column in the hub (default: `key`).
    #[serde(default, rename = "as")]
    pub name: Option<String>,
    /// More columns of the hub: name → input column (the earliest value kept).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Satellite {
    /// The hub it describes.
    pub hub: String,
    /// Its columns: name → input column, hashed in this order.
    pub columns: Columns,
    /// SQL types the stored columns are cast to (`cost: DECIMAL(19, 5)`);
    /// the hashdiff is of the input's values as they are.
    #[serde(default)]
    pub types: BTreeMap<String, String>,
}

/// `name: input_column` pairs in the order written (a satellite's columns
/// are hashed in that order, which a `BTreeMap` would lose).
#[derive(Debug, Clone, Default)]
pub struct Columns(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Columns {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs = Mapping::deserialize(d)?.into_iter().map(|pair| match pair {
            (Value::String(k), Value::String(v)) => Ok((k, v)),
            _ => Err(serde::de::Error::custom("expected `name: input_column` pairs")),
        });
        pairs.collect::<Result<_, _>>().map(Columns)
    }
}

/// A generated table: its name, its YAML (read as any table), and the key
/// path of the vault entry it comes from (where its mistakes are shown).
#[derive(Debug)]
pub struct Generated {
    pub name: String,
    pub table: Value,
    pub origin: String,
}

/// A declaration's tables, or each of its mistakes as (key path, message).
pub type Expansion = Result<Vec<Generated>, Vec<(String, String)>>;

impl Vault {
    /// The vault's tables, or each wrong reference as (key path, message).
    pub fn expand(&self, at: &str) -> Expansion {
        let mut errors = Vec::new();
        let p = quote(&self.profile);
        let load = format!("min({}) AS load_dt, {} AS load_src", self.load_dt, quote(&self.load_src));
        let mut out = Vec::new();
        for (name, h) in &self.hubs {
            let bk = h.name.as_deref().unwrap_or(&h.key);
            let attrs: String = h.attributes.iter().map(|(n, c)| format!("min({c}) AS {n}, ")).collect();
            let sql = format!(
                "SELECT dv_hash({p}, {k}) AS {name}_pk, {k} AS {bk}, {attrs}{} FROM input WHERE {k} IS NOT NULL GROUP BY {k}",
                load,
                k = h.key
            );
            let earliest: Vec<&str> = h.attributes.keys().map(String::as_str).chain(["load_dt"]).collect();
            out.push(self.table(name, &sql, &format!("{name}_pk"), &earliest, &format!("{at}.hubs.{name}")));
        }
        for (name, hubs) in &self.links {
            let keys: Vec<&str> = hubs
                .iter()
                .enumerate()
                .filter_map(|(i, h)| match self.hubs.get(h) {
                    Some(hub) => Some(hub.key.as_str()),
                    None => {
                        errors.push((format!("{at}.links.{name}[{i}]"), self.unknown_hub(h)));
                        None
                    }
                })
                .collect();
            if hubs.len() < 2 {
                errors.push((format!("{at}.links.{name}"), "a link joins at least two hubs".into()));
            }
            if keys.len() != hubs.len() || hubs.len() < 2 {
                continue;
            }
            let pk = format!("hk_{}_pk", name.strip_prefix("l_").unwrap_or(name));
            let parts: String = hubs.iter().zip(&keys).map(|(h, k)| format!("dv_hash({p}, {k}) AS {h}_pk, ")).collect();
            let sql = format!(
                "SELECT dv_hash({p}, {ks}) AS {pk}, {parts}{} FROM input GROUP BY {ks}",
                load,
                ks = keys.join(", ")
            );
            out.push(self.table(name, &sql, &pk, &["load_dt"], &format!("{at}.links.{name}")));
        }
        for (name, s) in &self.satellites {
            let Some(hub) = self.hubs.get(&s.hub) else {
                errors.push((format!("{at}.satellites.{name}.hub"), self.unknown_hub(&s.hub)));
                continue;
            };
            for t in s.types.keys().filter(|t| !s.columns.0.iter().any(|(n, _)| n == *t)) {
                errors.push((format!("{at}.satellites.{name}.types.{t}"), format!("`{t}` is not one of the columns")));
            }
            let hd = format!("hk_{}_hashdiff", name.strip_prefix("s_").unwrap_or(name));
            let cols: String = s
                .columns
                .0
                .iter()
                .map(|(n, c)| match s.types.get(n) {
                    Some(t) => format!("CAST({c} AS {t}) AS {n}, "),
                    None => format!("{c} AS {n}, "),
                })
                .collect();
            let inputs: Vec<&str> = s.columns.0.iter().map(|(_, c)| c.as_str()).collect();
            let sql = format!(
                "SELECT dv_hash({p}, {k}) AS {h}_pk, {cols}dv_hashdiff({p}, {k}, {ins}) AS {hd}, {} \
                 FROM input GROUP BY {k}, {ins}",
                load,
                k = hub.key,
                h = s.hub,
                ins = inputs.join(", ")
            );
            out.push(self.table(name, &sql, &hd, &["load_dt"], &format!("{at}.satellites.{name}")));
        }
        if errors.is_empty() { Ok(out) } else { Err(errors) }
    }

    fn unknown_hub(&self, h: &str) -> String {
        let hubs: Vec<&str> = self.hubs.keys().map(String::as_str).collect();
        format!("unknown hub `{h}`; this vault's hubs: {}", hubs.join(", "))
    }

    /// A table as its YAML would be written: an aggregate keyed by `key`
    /// keeping the smallest value of the `earliest` columns.
    fn table(&self, name: &str, sql: &str, key: &str, earliest: &[&str], origin: &str) -> Generated {
        let s = |v: &str| Value::String(v.to_string());
        let mut t = silver_table(&self.input, self.store.as_deref(), self.schema.as_deref(), sql);
        let mut write = Mapping::new();
        write.insert(s("mode"), s("aggregate"));
        write.insert(s("key"), Value::Sequence(vec![s(key)]));
        let m: Mapping = earliest.iter().map(|n| (s(n), s("min"))).collect();
        write.insert(s("measures"), Value::Mapping(m));
        t.insert(s("write"), Value::Mapping(write));
        Generated { name: name.to_string(), table: Value::Mapping(t), origin: origin.to_string() }
    }
}

/// A generated silver table's YAML reading `input` with `sql` (its `write`
/// is the caller's to add).
pub(super) fn silver_table(input: &str, store: Option<&str>, schema: Option<&str>, sql: &str) -> Mapping {
    let s = |v: &str| Value::String(v.to_string());
    let mut t = Mapping::new();
    t.insert(s("layer"), s("silver"));
    t.insert(s("input"), s(input));
    if let Some(store) = store {
        t.insert(s("store"), s(store));
    }
    if let Some(schema) = schema {
        t.insert(s("schema"), s(schema));
    }
    let mut transform = Mapping::new();
    transform.insert(s("sql"), s(sql));
    t.insert(s("transform"), Value::Mapping(transform));
    t
}

/// A SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
