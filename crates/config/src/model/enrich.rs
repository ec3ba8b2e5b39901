//! Enrichment from Redis: a key made from each row's columns, a JSON value
//! read back, some of its fields added to the row as columns.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ColumnType, Dur, Secret};

/// The Redis server lookups read (`url: ${INGESTA_REDIS}`, a `redis://` or
/// `rediss://` URL, the password in it never printed).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redis {
    pub url: Secret,
}

/// One lookup in Redis, applied to the transform's rows (after `sql` or the
/// steps and the expectations, before the write): for each row the key is
/// `key` with each `{column}` replaced by the row's value, its value is read
/// (`MGET`, many keys per round trip, kept for `cache`) and parsed as JSON,
/// and each of `columns` is taken from it by a dotted path.
///
/// ```yaml
/// enrich:
///   - key: "user:{user_id}"
///     columns: {user_name: name, user_login: login}
///   - key: "{restaurant_id}"           # the restaurant's menu: a list
///     within: menu                     # of objects; the one whose `_id`
///     match: {_id: product_id}         # is the row's product_id
///     columns: {category: category, price: {from: price, type: double}}
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrich {
    /// The Redis key: text with `{column}` placeholders.
    pub key: String,
    /// A list in the value (a dotted path) whose element matching `match` gives the columns.
    #[serde(default)]
    pub within: Option<String>,
    /// With `within`: element field → the row's column it must equal.
    #[serde(default, rename = "match")]
    pub matching: BTreeMap<String, String>,
    /// New column → where in the value (dotted path; `.` is the whole
    /// value), as text unless a `type` is given.
    pub columns: BTreeMap<String, EnrichColumn>,
    /// A key with no value (or no matching element): `quarantine` the row
    /// (reason `lookup_missing`, the key named) or give `null`s.
    #[serde(default)]
    pub missing: Missing,
    /// How long a value read is used before it is read again (`0s`: every batch).
    #[serde(default = "default_cache")]
    pub cache: Dur,
}

fn default_cache() -> Dur {
    Dur(Duration::from_secs(60))
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EnrichColumn {
    Path(String),
    Typed {
        from: String,
        #[serde(rename = "type")]
        ty: ColumnType,
    },
}

impl EnrichColumn {
    pub fn path(&self) -> &str {
        match self {
            EnrichColumn::Path(p) | EnrichColumn::Typed { from: p, .. } => p,
        }
    }

    pub fn ty(&self) -> ColumnType {
        match self {
            EnrichColumn::Path(_) => ColumnType::String,
            EnrichColumn::Typed { ty, .. } => *ty,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    #[default]
    Quarantine,
    Null,
}

impl Enrich {
    /// The columns `key` names, in order (`{col}`); an error for an unclosed
    /// or empty placeholder.
    pub fn key_columns(&self) -> Result<Vec<String>, String> {
        key_pieces(&self.key).map(|p| p.into_iter().filter_map(|p| p.column().map(str::to_string)).collect())
    }
}

/// A piece of a key pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPiece {
    Text(String),
    Column(String),
}

impl KeyPiece {
    pub fn column(&self) -> Option<&str> {
        match self {
            KeyPiece::Column(c) => Some(c),
            KeyPiece::Text(_) => None,
        }
    }
}

/// `user:{user_id}` → [Text("user:"), Column("user_id")].
pub fn key_pieces(pattern: &str) -> Result<Vec<KeyPiece>, String> {
    let mut out = Vec::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(KeyPiece::Text(rest[..open].to_string()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(format!("`{{` without `}}` in key `{pattern}`"));
        };
        let column = rest[open + 1..open + close].trim();
        if column.is_empty() {
            return Err(format!("an empty `{{}}` in key `{pattern}`; name a column, like `user:{{user_id}}`"));
        }
        out.push(KeyPiece::Column(column.to_string()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(KeyPiece::Text(rest.to_string()));
    }
    if !out.iter().any(|p| p.column().is_some()) {
        return Err(format!("key `{pattern}` names no column; write it like `user:{{user_id}}`"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_patterns_split_into_text_and_columns() {
        let p = key_pieces("user:{user_id}:{ day }").unwrap();
        assert_eq!(
            p,
            [
                KeyPiece::Text("user:".into()),
                KeyPiece::Column("user_id".into()),
                KeyPiece::Text(":".into()),
                KeyPiece::Column("day".into())
            ]
        );
        assert_eq!(key_pieces("{id}").unwrap(), [KeyPiece::Column("id".into())]);
        assert!(key_pieces("user:{id").unwrap_err().contains("without"));
        assert!(key_pieces("user:{}").unwrap_err().contains("empty"));
        assert!(key_pieces("users").unwrap_err().contains("names no column"));
    }
}
