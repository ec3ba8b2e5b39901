//! A `type: rest` source as written in YAML: the API, its pagination and
//! incremental reads.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, Dur, Secret};

/// A REST API read with GET, page by page, exactly once: the records of
/// each page and where the next request goes are committed together.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rest {
    /// The first page's URL. Never printed (it may carry a token); pages are
    /// named by it with every query value masked.
    pub url: Secret,
    /// Query parameters sent with every request (`${ENV}` for keys). Never printed.
    #[serde(default)]
    pub params: BTreeMap<String, Secret>,
    /// Headers sent with every request (`Authorization: Bearer ${API_TOKEN}`). Never printed.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Where a page's records are: a dotted path to an array (`data.items`);
    /// empty when the page itself is the array.
    #[serde(default)]
    pub records: String,
    #[serde(default)]
    pub pagination: Pagination,
    /// Ask only for records changed after the highest value held.
    #[serde(default)]
    pub incremental: Option<Incremental>,
    /// How often `--watch` polls the API.
    #[serde(default = "default_rest_poll")]
    pub poll: Dur,
    /// Pages read in one pass at most (the next pass goes on from there); none: to the end.
    #[serde(default)]
    pub max_pages: Option<u64>,
    /// Tries per request on 429, 5xx or a connection error, with backoff
    /// honouring `Retry-After`; then the pass fails and is tried again later.
    #[serde(default = "default_rest_attempts")]
    pub attempts: u32,
    /// The first wait between tries (doubled each time, at most 30 s).
    #[serde(default = "default_rest_backoff")]
    pub backoff: Dur,
    /// How long one request may take.
    #[serde(default = "default_rest_timeout")]
    pub timeout: Dur,
    /// A record longer than this is quarantined instead of read.
    #[serde(default = "super::sources::default_max_event_bytes")]
    pub max_record_bytes: ByteSize,
}

/// How a REST API hands out its pages, written as one key
/// (`pagination: {cursor: {param: after, field: meta.next}}`); absent: one
/// request per pass. A page with no records ends a pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PaginationKeys")]
pub enum Pagination {
    /// One request per pass.
    #[default]
    None,
    /// The page names the next page's cursor at `field` (a dotted path),
    /// sent back as the query parameter `param`; no cursor: the last page.
    Cursor { param: String, field: String },
    /// The page holds the next page's URL at `field`, or, without `field`,
    /// in the `Link` header (`rel="next"`); none: the last page.
    NextLink { field: Option<String> },
    /// Numbered pages: `param` is the page number (from `start`), `size_param`
    /// the page size when given.
    Page { param: String, size_param: Option<String>, size: Option<u64>, start: u64 },
    /// `param` is the number of records to skip, `limit_param` the page size when given.
    Offset { param: String, limit_param: Option<String>, limit: Option<u64> },
}

/// `pagination` as written: one of its keys (serde_yaml reads an enum
/// only from a YAML tag, which users do not write).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaginationKeys {
    #[serde(default)]
    cursor: Option<CursorKeys>,
    #[serde(default)]
    next_link: Option<NextLinkKeys>,
    #[serde(default)]
    page: Option<PageKeys>,
    #[serde(default)]
    offset: Option<OffsetKeys>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CursorKeys {
    param: String,
    field: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NextLinkKeys {
    #[serde(default)]
    field: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageKeys {
    param: String,
    #[serde(default)]
    size_param: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default = "one")]
    start: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OffsetKeys {
    param: String,
    #[serde(default)]
    limit_param: Option<String>,
    #[serde(default)]
    limit: Option<u64>,
}

impl TryFrom<PaginationKeys> for Pagination {
    type Error = String;
    fn try_from(k: PaginationKeys) -> Result<Self, String> {
        let mut styles = Vec::new();
        if let Some(c) = k.cursor {
            styles.push(Pagination::Cursor { param: c.param, field: c.field });
        }
        if let Some(n) = k.next_link {
            styles.push(Pagination::NextLink { field: n.field });
        }
        if let Some(p) = k.page {
            styles.push(Pagination::Page { param: p.param, size_param: p.size_param, size: p.size, start: p.start });
        }
        if let Some(o) = k.offset {
            styles.push(Pagination::Offset { param: o.param, limit_param: o.limit_param, limit: o.limit });
        }
        match styles.len() {
            0 | 1 => Ok(styles.pop().unwrap_or_default()),
            _ => Err("give one of cursor, next_link, page or offset".into()),
        }
    }
}

/// Incremental reads: each pass sends the highest value of `field` the
/// table holds as the query parameter `param` (`updated_since`), and records
/// at or below it are skipped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    pub param: String,
    /// A dotted path in each record: a number, or text that sorts in time
    /// order (an RFC 3339 timestamp).
    pub field: String,
    /// The value the first pass sends (none: the parameter is left out).
    #[serde(default)]
    pub start: Option<String>,
}

fn one() -> u64 {
    1
}
fn default_rest_poll() -> Dur {
    Dur(Duration::from_secs(60))
}
fn default_rest_attempts() -> u32 {
    8
}
fn default_rest_backoff() -> Dur {
    Dur(Duration::from_millis(500))
}
fn default_rest_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
