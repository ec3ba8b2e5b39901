//! Checks of tables' `enrich:` lookups that need no server: the Redis
//! connection, key patterns, `within` with `match`, new column names. That
//! the key's columns are among the transform's is checked by planning it
//! (the runtime's `check`).

use std::collections::BTreeSet;

use crate::model::{Layer, Pipeline};

pub fn validate(p: &Pipeline, err: &mut dyn FnMut(&str, String)) {
    if let Some(r) = &p.redis {
        let url = r.url.expose().trim();
        if url.is_empty() {
            err("redis.url", "the URL is empty; set it from the environment: `url: ${INGESTA_REDIS}`".into());
        } else if url.starts_with("rediss://") {
            err(
                "redis.url",
                "TLS to Redis (`rediss://`) is not built in yet; reach it over `redis://` (a TLS tunnel)".into(),
            );
        } else if !["redis://", "redis+unix://", "unix://"].iter().any(|s| url.starts_with(s)) {
            // the URL is never quoted back: it may hold a password
            err("redis.url", "expected a Redis URL, redis://[USER:PASSWORD@]HOST:PORT[/DB]".into());
        }
    }
    for (name, t) in &p.tables {
        if t.transform.enrich.is_empty() {
            continue;
        }
        let at = format!("tables.{name}.transform.enrich");
        if t.layer == Layer::Bronze {
            err(
                &at,
                "`enrich` applies to silver and gold tables; enrich the rows of a table that reads this one".into(),
            );
        }
        if p.redis.is_none() {
            err(&at, "the pipeline has no `redis`; add `redis: {url: ${INGESTA_REDIS}}`".into());
        }
        let mut added = BTreeSet::new();
        for (i, e) in t.transform.enrich.iter().enumerate() {
            let at = format!("{at}[{i}]");
            if let Err(msg) = e.key_columns() {
                err(&format!("{at}.key"), msg);
            }
            match (&e.within, e.matching.is_empty()) {
                (Some(_), true) => {
                    err(&format!("{at}.match"), "`within` needs `match: {field: column}` to pick the element".into())
                }
                (None, false) => {
                    err(&format!("{at}.within"), "`match` picks an element of a list; name it with `within`".into())
                }
                _ => {}
            }
            if e.columns.is_empty() {
                err(&format!("{at}.columns"), "name at least one column, like `{user_name: name}`".into());
            }
            for (c, from) in &e.columns {
                if !c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') || c.is_empty() {
                    err(&format!("{at}.columns.{c}"), format!("column name `{c}` must be letters, digits and `_`"));
                }
                if !added.insert(c.as_str()) {
                    err(&format!("{at}.columns.{c}"), format!("column `{c}` is added by an earlier lookup"));
                }
                if from.path().trim().is_empty() {
                    err(&format!("{at}.columns.{c}"), "an empty path; name a field, or `.` for the whole value".into());
                }
            }
        }
    }
}
