//! `enrich:` lookups in Redis, applied to the rows a transform gives after
//! its expectations: each row's key is made from its columns, the keys of
//! a batch are read at once (`redis.rs`) unless a value read less than
//! `cache` ago is kept, and the values' fields become new columns, typed as
//! declared. A row whose key has no value (or whose list has no matching
//! element) goes to quarantine as `lookup_missing` with the key named, or
//! gets nulls (`missing: null`); a field its type cannot take, `type_error`.
//! Redis down is a passing fault: the batch is not committed, and the table
//! reads it again once Redis answers.

mod redis;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray};
use arrow_cast::display::ArrayFormatter;
use arrow_schema::{Field, Schema, SchemaRef};
use ingesta_config::{Enrich, KeyPiece, Missing, key_pieces};
use ingesta_core::{Error, QuarantineRecord, Reason};
use ingesta_sources::schema::{RecordSchema, arrow_type};
use serde_json::Value;

use super::rows::{Split, row_json};
use redis::RedisClient;

/// Values kept per lookup at most; the cache starts again when full.
const CACHE_KEYS: usize = 1_000_000;
/// Quick retries of a failed read before the batch gives up (the table then
/// tries again at its next pass).
const TRIES: u32 = 3;

pub struct Enricher {
    table: String,
    redis: RedisClient,
    lookups: Vec<Lookup>,
}

struct Lookup {
    cfg: Enrich,
    pieces: Vec<KeyPiece>,
    /// The new columns and their types.
    typed: RecordSchema,
    cache: HashMap<String, (Instant, Arc<Value>)>,
}

/// `out` with the columns `lookups` add, in order.
pub fn schema(lookups: &[Enrich], out: &Schema) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = out.fields().iter().cloned().collect();
    fields.extend(lookups.iter().flat_map(|l| added(l).fields().iter().cloned().collect::<Vec<_>>()));
    Arc::new(Schema::new(fields))
}

fn added(l: &Enrich) -> SchemaRef {
    let fields: Vec<Field> = l.columns.iter().map(|(n, c)| Field::new(n, arrow_type(c.ty()), true)).collect();
    Arc::new(Schema::new(fields))
}

impl Enricher {
    pub fn new(table: &str, url: &str, lookups: &[Enrich]) -> Result<Self, Error> {
        let lookups = lookups
            .iter()
            .map(|cfg| {
                let pieces = key_pieces(&cfg.key).map_err(|e| Error::stop(format!("table `{table}`: {e}")))?;
                let schema = added(cfg);
                let typed = RecordSchema { required: vec![false; schema.fields().len()], schema };
                Ok(Lookup { cfg: cfg.clone(), pieces, typed, cache: HashMap::new() })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self { table: table.to_string(), redis: RedisClient::new(url)?, lookups })
    }

    /// Adds the lookups' columns to `batch`; `positions` are its rows'
    /// places among the new rows, `source` their input (for the quarantine).
    pub async fn apply(&mut self, batch: RecordBatch, positions: Vec<i64>, source: &str) -> Result<Split, Error> {
        let n = batch.num_rows();
        let mut bad: Vec<Option<(Reason, String)>> = vec![None; n];
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
        for (i, l) in self.lookups.iter_mut().enumerate() {
            let at = format!("table `{}`: enrich[{i}]", self.table);
            let keys = l.keys(&batch, &at)?;
            l.fetch(&mut self.redis, &keys, &at).await?;
            let typed = l.columns(&batch, &keys, &mut bad, &at)?;
            for (r, (reason, msg)) in typed.problems {
                bad[r].get_or_insert((reason, format!("{at} ({}): {msg}", l.cfg.key)));
            }
            columns.extend(typed.all.columns().iter().cloned());
            fields.extend(typed.all.schema().fields().iter().cloned());
        }
        let all = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
            .map_err(|e| Error::stop(format!("table `{}`: enrich: {e}", self.table)))?;
        if bad.iter().all(Option::is_none) {
            return Ok(Split { keep: all, positions, quarantine: Vec::new() });
        }
        let mut quarantine = Vec::new();
        for (r, problem) in bad.iter().enumerate() {
            if let Some((reason, error)) = problem {
                let raw = row_json(&batch, r).into_bytes();
                let (source, position) = (source.to_string(), positions[r]);
                quarantine.push(QuarantineRecord { source, position, reason: *reason, error: error.clone(), raw });
            }
        }
        let keep = BooleanArray::from(bad.iter().map(Option::is_none).collect::<Vec<_>>());
        let positions = positions.into_iter().zip(&bad).filter(|(_, b)| b.is_none()).map(|(p, _)| p).collect();
        let keep = arrow_select::filter::filter_record_batch(&all, &keep)
            .map_err(|e| Error::stop(format!("table `{}`: enrich: {e}", self.table)))?;
        Ok(Split { keep, positions, quarantine })
    }
}

impl Lookup {
    /// Each row's key; `None` where one of its columns is null.
    fn keys(&self, batch: &RecordBatch, at: &str) -> Result<Vec<Option<String>>, Error> {
        let n = batch.num_rows();
        let mut keys: Vec<Option<String>> = vec![Some(String::new()); n];
        for piece in &self.pieces {
            match piece {
                KeyPiece::Text(t) => keys.iter_mut().flatten().for_each(|k| k.push_str(t)),
                KeyPiece::Column(c) => {
                    let values = texts(column(batch, c, at)?.as_ref(), at)?;
                    for (k, v) in keys.iter_mut().zip(values) {
                        match (k.as_mut(), v) {
                            (Some(k), Some(v)) => k.push_str(&v),
                            _ => *k = None,
                        }
                    }
                }
            }
        }
        Ok(keys)
    }

    /// Reads the keys not read within `cache` into the cache; a key with no
    /// value leaves it.
    async fn fetch(&mut self, redis: &mut RedisClient, keys: &[Option<String>], at: &str) -> Result<(), Error> {
        let ttl = self.cfg.cache.0;
        let fresh =
            |k: &String| self.cache.get(k).is_some_and(|(when, _)| ttl > Duration::ZERO && when.elapsed() < ttl);
        let mut seen = HashSet::new();
        let wanted: Vec<String> = keys.iter().flatten().filter(|k| !fresh(k) && seen.insert(*k)).cloned().collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut tries = 0;
        let values = loop {
            match redis.mget(&wanted).await {
                Ok(v) => break v,
                Err(e) if e.kind == ingesta_core::ErrorKind::Retry && tries + 1 < TRIES => {
                    tries += 1;
                    tracing::debug!(error = %e, tries, "{at}: reading Redis again");
                    tokio::time::sleep(Duration::from_millis(250 << tries)).await;
                }
                Err(e) => return Err(Error::new(e.kind, format!("{at}: {}", e.message))),
            }
        };
        if self.cache.len() + wanted.len() > CACHE_KEYS {
            self.cache.clear();
        }
        let now = Instant::now();
        for (key, value) in wanted.into_iter().zip(values) {
            match value {
                Some(bytes) => {
                    // a value that is not JSON is taken as a string
                    let v = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
                    self.cache.insert(key, (now, Arc::new(v)));
                }
                None => {
                    self.cache.remove(&key);
                }
            }
        }
        Ok(())
    }

    /// The new columns for each row (nulls where it has no value, which is
    /// marked in `bad` unless `missing: null`), typed.
    fn columns(
        &self,
        batch: &RecordBatch,
        keys: &[Option<String>],
        bad: &mut [Option<(Reason, String)>],
        at: &str,
    ) -> Result<ingesta_sources::decode::Typed, Error> {
        let n = batch.num_rows();
        let matching: Vec<(&String, Vec<Option<String>>)> = self
            .cfg
            .matching
            .iter()
            .map(|(field, col)| Ok((field, texts(column(batch, col, at)?.as_ref(), at)?)))
            .collect::<Result<_, Error>>()?;
        let mut text: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(n); self.cfg.columns.len()];
        for r in 0..n {
            let found = match &keys[r] {
                None => Err(format!("{at}: the key `{}` has a null column", self.cfg.key)),
                Some(key) => match self.cache.get(key) {
                    None => Err(format!("{at}: no value in Redis for key `{key}`")),
                    Some((_, v)) => self.element(v, &matching, r).ok_or_else(|| {
                        let want: Vec<String> = matching
                            .iter()
                            .map(|(f, vals)| format!("{f} = {}", vals[r].as_deref().unwrap_or("null")))
                            .collect();
                        let within = self.cfg.within.as_deref().unwrap_or(".");
                        format!("{at}: no element of `{within}` in Redis key `{key}` has {}", want.join(", "))
                    }),
                },
            };
            match found {
                Ok(v) => {
                    for (out, c) in text.iter_mut().zip(self.cfg.columns.values()) {
                        out.push(path(v, c.path()).and_then(as_text));
                    }
                }
                Err(why) => {
                    if self.cfg.missing == Missing::Quarantine && bad[r].is_none() {
                        bad[r] = Some((Reason::Lookup, why));
                    }
                    text.iter_mut().for_each(|out| out.push(None));
                }
            }
        }
        let arrays: Vec<ArrayRef> = text.into_iter().map(|t| Arc::new(StringArray::from(t)) as ArrayRef).collect();
        Ok(ingesta_sources::decode::coerce_columns(n, arrays, &self.typed))
    }

    /// The value, or with `within` its list's element whose fields equal the row's columns.
    fn element<'a>(&self, v: &'a Value, matching: &[(&String, Vec<Option<String>>)], r: usize) -> Option<&'a Value> {
        let Some(within) = &self.cfg.within else { return Some(v) };
        let list = path(v, within)?.as_array()?;
        list.iter().find(|item| {
            matching.iter().all(|(field, vals)| {
                let want = vals[r].as_deref();
                want.is_some() && path(item, field).and_then(as_text).as_deref() == want
            })
        })
    }
}

fn column<'a>(batch: &'a RecordBatch, name: &str, at: &str) -> Result<&'a ArrayRef, Error> {
    batch.column_by_name(name).ok_or_else(|| {
        let names: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        Error::stop(format!("{at}: the transform gives no column `{name}`; it gives: {}", names.join(", ")))
    })
}

/// Each value of `array` as text (what a key or a match compares), `None` for null.
fn texts(array: &dyn Array, at: &str) -> Result<Vec<Option<String>>, Error> {
    let f = ArrayFormatter::try_new(array, &Default::default())
        .map_err(|e| Error::stop(format!("{at}: a key column cannot be shown as text: {e}")))?;
    Ok((0..array.len()).map(|i| array.is_valid(i).then(|| f.value(i).to_string())).collect())
}

/// The value at a dotted path (`.` or empty: the whole value); a number
/// segment indexes a list.
fn path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim();
    if path.is_empty() || path == "." {
        return Some(v);
    }
    path.split('.').try_fold(v, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => None,
    })
}

/// A JSON value as a column's text: strings as they are, null as null,
/// anything else as its JSON.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_into_objects_and_lists() {
        let v: Value = serde_json::json!({"name": "Кубдари", "menu": [{"_id": "p1", "price": 200}], "n": null});
        assert_eq!(path(&v, "name").and_then(as_text).as_deref(), Some("Кубдари"));
        assert_eq!(path(&v, "menu.0.price").and_then(as_text).as_deref(), Some("200"));
        assert_eq!(path(&v, "menu.0").and_then(as_text).as_deref(), Some(r#"{"_id":"p1","price":200}"#));
        assert_eq!(path(&v, "n").and_then(as_text), None);
        assert!(path(&v, "missing.deeper").is_none());
        assert!(std::ptr::eq(path(&v, ".").unwrap(), &v));
    }
}
