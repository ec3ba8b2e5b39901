//! Where a REST source's table is in its API (decision 0034). A `txn`
//! holds one integer, and a cursor or a next link is text, so the `txn` of
//! `app_id::rest` counts the commits of the source's pages and the commit's
//! info holds the state after them (`ingesta.rest.state`, JSON), written in
//! the same atomic commit as the pages' records. On start the state is the
//! info of the commit whose count the `txn` holds.
//!
//! A pass starts where the last one stopped (`next`); when the last pass
//! ended, an incremental source starts again at the first page with the
//! highest value held, and any other source reads its last page again and
//! skips the records it holds (new records at the end of a list are read,
//! none twice).

use serde::{Deserialize, Serialize};

/// The commit info key holding the state.
pub(crate) const INFO: &str = "ingesta.rest.state";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct State {
    /// Commits of pages the table holds: the `txn` version of `app_id::rest`.
    pub commits: i64,
    /// Pages held (each page with records, or bad), numbering `_page`.
    pub pages: i64,
    /// The request position of the last page held: a cursor, a link, a
    /// page number or an offset; none: the first page.
    pub at: Option<String>,
    /// Records of that page held (kept, quarantined or skipped as older).
    pub taken: u64,
    /// Where the pass goes on; none: it ended at `at`.
    pub next: Option<String>,
    /// Page `at` could not be read: it is in the quarantine once.
    pub bad: bool,
    /// Incremental: the value this pass sends.
    pub since: Option<String>,
    /// Incremental: the highest value of the field held.
    pub high: Option<String>,
}

/// The first request of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    pub at: Option<String>,
    /// Records of that page the table holds already.
    pub skip: u64,
    pub since: Option<String>,
}

impl State {
    /// A table that holds nothing of the source yet.
    pub fn initial(start: Option<&str>) -> Self {
        Self { since: start.map(str::to_string), ..Self::default() }
    }

    /// Where the next pass starts.
    pub fn start(&self, incremental: bool) -> Start {
        match (&self.next, incremental) {
            (Some(n), _) => Start { at: Some(n.clone()), skip: 0, since: self.since.clone() },
            (None, true) => Start { at: None, skip: 0, since: self.high.clone().or_else(|| self.since.clone()) },
            (None, false) => Start { at: self.at.clone(), skip: self.taken, since: None },
        }
    }

    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a state is plain data")
    }

    pub fn decode(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    /// The state among commit infos (newest first) whose count is `commits`,
    /// with its commit's time in milliseconds.
    pub fn find(infos: &[serde_json::Map<String, serde_json::Value>], commits: i64) -> Option<(Self, i64)> {
        infos.iter().find_map(|i| {
            let s = Self::decode(i.get(INFO)?.as_str()?).filter(|s| s.commits == commits)?;
            Some((s, i.get("timestamp").and_then(|t| t.as_i64()).unwrap_or(0)))
        })
    }

    /// Raises `high` to `value` (a field's JSON text) when it is higher.
    pub fn raise(&mut self, value: &serde_json::Value) {
        if self.high.as_deref().is_none_or(|h| above(value, h)) {
            self.high = Some(text_of(value));
        }
    }
}

/// A value as a query parameter: text without quotes, numbers as written.
pub(crate) fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether a record's `value` is above `held` (a value's text): numbers by
/// number, anything else by its text (RFC 3339 times of one format sort so).
pub(crate) fn above(value: &serde_json::Value, held: &str) -> bool {
    match (value.as_f64(), held.parse::<f64>()) {
        (Some(v), Ok(h)) => v > h,
        _ => text_of(value).as_str() > held,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pass_goes_on_then_tails_or_starts_again_from_the_high_value() {
        let s = State {
            at: Some("4".into()),
            taken: 7,
            next: Some("5".into()),
            since: Some("a".into()),
            ..State::default()
        };
        assert_eq!(s.start(false), Start { at: Some("5".into()), skip: 0, since: Some("a".into()) });
        let ended = State { next: None, high: Some("b".into()), ..s.clone() };
        assert_eq!(ended.start(false), Start { at: Some("4".into()), skip: 7, since: None });
        assert_eq!(ended.start(true), Start { at: None, skip: 0, since: Some("b".into()) });
        assert_eq!(State::initial(Some("0")).start(true).since.as_deref(), Some("0"));
    }

    #[test]
    fn the_state_round_trips_and_is_found_by_its_commit_count() {
        let s = State { commits: 3, pages: 9, at: Some("c?x=1".into()), high: Some("2026".into()), ..State::default() };
        assert_eq!(State::decode(&s.encode()), Some(s.clone()));
        let info = |s: &State, at: i64| {
            let mut m = serde_json::Map::new();
            m.insert(INFO.into(), s.encode().into());
            m.insert("timestamp".into(), at.into());
            m
        };
        let older = State { commits: 2, ..s.clone() };
        let infos = vec![serde_json::Map::new(), info(&s, 20), info(&older, 10)];
        assert_eq!(State::find(&infos, 2), Some((older, 10)));
        assert_eq!(State::find(&infos, 4), None);
    }

    #[test]
    fn values_compare_as_numbers_or_as_text() {
        assert!(above(&json!(10), "9"));
        assert!(!above(&json!(9.0), "9"));
        assert!(above(&json!("2026-12-07T10:00:00Z"), "2026-12-07T09:59:59Z"));
        let mut s = State::default();
        for v in [json!(3), json!(12), json!(5)] {
            s.raise(&v);
        }
        assert_eq!(s.high.as_deref(), Some("12"));
    }
}
