//! A bronze table of a REST API's records, exactly once.
//!
//! Each pass GETs pages from where the table's state says (`state.rs`:
//! kept in the commit's info, counted by the `txn` of `app_id::rest`),
//! following the source's pagination, and commits the pages' records with
//! the state after the last of them, one commit per `batch.max_rows`
//! records or `batch.max_bytes` (whole pages). A SIGKILL between two
//! commits reads the uncommitted pages again and nothing twice. 429, 5xx
//! and connection errors are tried again (`client.rs`); a page that cannot
//! be read goes to quarantine with its URL and the state moves past it.

mod client;
mod columns;
mod commit;
mod page;
mod state;

use std::time::Instant;

use ingesta_config::{Pagination, Rest, Table};
use ingesta_core::{Error, TableStore, app_id};
use ingesta_lake::{Lake, LakeTable};
use ingesta_sources::schema::RecordSchema;
use reqwest::Url;
use serde_json::Value;

pub use columns::rest_schema;

use client::{Client, shown_keeping};
use commit::{Group, Target};
use page::{Page, at_path};
use state::State;

use crate::bronze::{Tables, open_tables, stored_record};
use crate::report::{Progress, TableReport};
use crate::upkeep::Upkeep;

/// Commits searched, newest first, for the state the `txn` names.
const INFOS: usize = 1000;
/// Bad pages in a row that stop the table (an API answering past its last
/// page with something other than an empty list would be read forever).
const BAD_IN_A_ROW: u32 = 3;
/// A state older than this is committed again (unchanged) when a pass finds
/// nothing new, so that it stays within the Delta log's retention.
const REFRESH_MS: i64 = 7 * 24 * 3600 * 1000;

pub struct RestTask {
    name: String,
    cfg: Table,
    source: String,
    src: Rest,
    client: Client,
    lake: Lake,
    tables: Option<Tables>,
    /// The state the table held after this process's last commit, and that commit's time.
    held: Option<(State, i64)>,
    /// When the API was last read (this process).
    polled: Option<Instant>,
    upkeep: Upkeep,
}

impl RestTask {
    pub fn new(lake: Lake, name: &str, cfg: &Table, source: &str, src: &Rest) -> Result<Self, Error> {
        let client = Client::new(source, src)?;
        Ok(Self {
            name: name.into(),
            cfg: cfg.clone(),
            source: source.into(),
            src: src.clone(),
            client,
            lake,
            tables: None,
            held: None,
            polled: None,
            upkeep: Upkeep::new(cfg),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// One pass over the API's new pages (nothing when the last pass is more
    /// recent than `poll`).
    pub async fn run_once(&mut self, progress: &Progress) -> Result<TableReport, Error> {
        let started = Instant::now();
        let mut report = TableReport { table: self.name.clone(), ..Default::default() };
        if !crate::bronze::poll_due(&mut self.polled, self.src.poll.0, started) {
            return Ok(report);
        }
        let r = self.pass(&mut report, progress, started).await;
        if r.is_err() {
            // the next try reads the state again from the table, at once
            (self.held, self.polled) = (None, None);
        }
        progress.done();
        report.elapsed = started.elapsed();
        r.map(|()| report).map_err(|e| e.context(&format!("table `{}`", self.name)))
    }

    async fn pass(&mut self, report: &mut TableReport, progress: &Progress, started: Instant) -> Result<(), Error> {
        let id = app_id::rest(&self.source);
        let (held, held_at, quarantined) = self.held_state(&id).await?;
        let start = held.start(self.src.incremental.is_some());
        let mut pending = State { since: start.since.clone(), ..held.clone() };
        let mut group = Group::default();
        let (mut at, mut skip, mut read, mut bad_in_a_row) = (start.at, start.skip, 0u64, 0u32);
        let mut committed = held.clone();
        let (max, max_bytes) = (self.cfg.batch.max_rows, self.cfg.batch.max_bytes.0);
        let visible = self.visible();
        while self.src.max_pages.is_none_or(|m| read < m) {
            let url = self.request(at.as_deref(), start.since.as_deref())?;
            let fetched = self.client.get(&url).await?;
            read += 1;
            report.bytes += fetched.body.len() as u64;
            let shown = shown_keeping(&url, &visible);
            let next_field = match &self.src.pagination {
                Pagination::Cursor { field, .. } => Some(field.as_str()),
                Pagination::NextLink { field } => field.as_deref(),
                _ => None,
            };
            let next = match page::parse(&fetched.body, &self.src.records, next_field) {
                Err(why) => {
                    bad_in_a_row += 1;
                    if bad_in_a_row >= BAD_IN_A_ROW {
                        return Err(Error::stop(format!(
                            "{bad_in_a_row} pages in a row cannot be read, the last {shown}: {why}; is `records` \
                             right, and does the API answer past its last page with an empty list?"
                        )));
                    }
                    tracing::warn!(table = %self.name, url = %shown, why, "a page cannot be read; it is quarantined once");
                    // a page still bad at the place the state holds it bad is in the quarantine already
                    if !(pending.bad && pending.at == at) {
                        pending.pages += 1;
                        let cut = self.src.max_record_bytes.0 as usize;
                        group.bad_page(shown, pending.pages, why, &fetched.body, cut);
                    }
                    (pending.taken, pending.bad) = (0, true);
                    self.after_bad(at.as_deref())
                }
                Ok(p) if p.records.is_empty() => {
                    pending.next = None;
                    break;
                }
                Ok(p) => {
                    bad_in_a_row = 0;
                    let next = self.next(at.as_deref(), &p, fetched.link)?;
                    let n = p.records.len() as u64;
                    let fresh = self.fresh(p.records, skip, start.since.as_deref(), &mut pending);
                    if !fresh.is_empty() {
                        pending.pages += 1;
                        group.page(shown, pending.pages, fresh);
                    }
                    (pending.taken, pending.bad) = (n, false);
                    next
                }
            };
            pending.at = at.clone();
            pending.next = next.filter(|n| Some(n) != at.as_ref());
            if group.records.len() >= max || group.bytes >= max_bytes {
                committed = self.commit(std::mem::take(&mut group), &pending, &id, quarantined, report).await?;
                pending.commits = committed.commits;
                progress.committed();
                progress.show(&self.name, report.rows, report.quarantined, report.bytes, started);
            }
            match &pending.next {
                Some(n) => (at, skip) = (Some(n.clone()), 0),
                None => break,
            }
        }
        let stale = chrono::Utc::now().timestamp_millis() - held_at > REFRESH_MS && held.commits > 0;
        if !group.is_empty() || pending.pages != committed.pages || pending.next != committed.next {
            committed = self.commit(group, &pending, &id, quarantined, report).await?;
            progress.committed();
        } else if stale && committed == held {
            committed = self.commit(group, &committed, &id, quarantined, report).await?;
        }
        let at = if committed == held { held_at } else { chrono::Utc::now().timestamp_millis() };
        self.held = Some((committed, at));
        Ok(())
    }

    /// Commits `g` with `pending` as the state (the commit count moved on).
    async fn commit(
        &mut self,
        g: Group,
        pending: &State,
        id: &str,
        quarantined: i64,
        report: &mut TableReport,
    ) -> Result<State, Error> {
        let committed = State { commits: pending.commits + 1, ..pending.clone() };
        if self.tables.is_none() {
            self.create(&g).await?;
        }
        let tables = self.tables.as_mut().expect("created");
        let max_record_bytes = self.src.max_record_bytes.0 as usize;
        let t = Target { tables, cfg: &self.cfg, id, quarantined, max_record_bytes };
        let (rows, bad) = commit::commit(t, g, &committed).await?;
        self.upkeep.run(&mut self.tables.as_mut().expect("created").bronze).await;
        report.rows += rows;
        report.quarantined += bad;
        report.commits += 1;
        self.held = Some((committed.clone(), chrono::Utc::now().timestamp_millis()));
        Ok(committed)
    }

    /// The state the table holds, its commit's time, and the commit count the
    /// quarantine holds. Read from the table when this process has not
    /// committed or its last pass failed.
    async fn held_state(&mut self, id: &str) -> Result<(State, i64, i64), Error> {
        if self.tables.is_none() {
            self.open().await?;
        }
        let Some(t) = self.tables.as_mut() else {
            return Ok((self.initial(), 0, -1));
        };
        t.bronze.refresh().await?;
        t.quarantine.refresh().await?;
        let quarantined = t.quarantine.position(id).await?.unwrap_or(-1);
        let Some(commits) = t.bronze.position(id).await? else {
            return Ok((self.initial(), 0, quarantined));
        };
        if let Some((s, at)) = self.held.as_ref().filter(|(s, _)| s.commits == commits) {
            return Ok((s.clone(), *at, quarantined));
        }
        // the state is nearly always in the newest commits: those are read first
        let mut found = State::find(&t.bronze.commit_infos(10).await?, commits);
        if found.is_none() {
            found = State::find(&t.bronze.commit_infos(INFOS).await?, commits);
        }
        let Some((s, at)) = found else {
            return Err(Error::stop(format!(
                "the table holds {commits} commits of source `{}` but none of its last {INFOS} commits has the \
                 source's state (`{}`); the log was cleaned up or rewritten. Rebuild the table (`ingesta rebuild`)",
                self.source,
                state::INFO
            )));
        };
        self.held = Some((s.clone(), at));
        Ok((s, at, quarantined))
    }

    fn initial(&self) -> State {
        State::initial(self.src.incremental.as_ref().and_then(|i| i.start.as_deref()))
    }

    /// Opens the table and its quarantine when the table exists.
    async fn open(&mut self) -> Result<(), Error> {
        let url = self.lake.table_url(&self.name);
        let Some(bronze) = LakeTable::open(&self.lake, &self.name, &url).await? else {
            return Ok(());
        };
        let record = match &self.cfg.columns {
            Some(cols) => RecordSchema::from_columns(cols),
            None => stored_record(&bronze)?,
        };
        let schema = rest_schema(&record, &self.cfg.partition_by);
        let size = self.cfg.target_file_size.0;
        self.tables = Some(open_tables(&self.lake, &self.name, bronze, record, schema, size).await?);
        Ok(())
    }

    /// Creates the table (columns inferred from the first records when none are declared).
    async fn create(&mut self, g: &Group) -> Result<(), Error> {
        let record = match &self.cfg.columns {
            Some(cols) => RecordSchema::from_columns(cols),
            None => {
                let values: Vec<Value> =
                    g.records.iter().take(1000).filter_map(|r| serde_json::from_slice(r).ok()).collect();
                ingesta_sources::infer::from_records(&values)
            }
        };
        let schema = rest_schema(&record, &self.cfg.partition_by);
        let parts: Vec<String> = self.cfg.partition_by.iter().map(|p| p.column.clone()).collect();
        let url = self.lake.table_url(&self.name);
        let desc = format!("bronze table fed by the REST source `{}`", self.source);
        let bronze = LakeTable::open_or_create(&self.lake, &self.name, &url, &schema, &parts, &desc).await?;
        let size = self.cfg.target_file_size.0;
        self.tables = Some(open_tables(&self.lake, &self.name, bronze, record, schema, size).await?);
        Ok(())
    }

    /// The URL of the page at `at` (none: the first).
    fn request(&self, at: Option<&str>, since: Option<&str>) -> Result<Url, Error> {
        let mut extra: Vec<(&str, String)> = Vec::new();
        if let (Some(i), Some(s)) = (&self.src.incremental, since) {
            extra.push((&i.param, s.to_string()));
        }
        match &self.src.pagination {
            Pagination::None => {}
            Pagination::Cursor { param, .. } => extra.extend(at.map(|c| (param.as_str(), c.to_string()))),
            Pagination::NextLink { .. } => {
                if let Some(link) = at {
                    return self
                        .client
                        .link(link, &extra)
                        .map_err(|e| Error::stop(format!("source `{}`: {e}", self.source)));
                }
            }
            Pagination::Page { param, size_param, size, start } => {
                extra.push((param, at.map_or(start.to_string(), str::to_string)));
                if let (Some(p), Some(n)) = (size_param, size) {
                    extra.push((p, n.to_string()));
                }
            }
            Pagination::Offset { param, limit_param, limit } => {
                extra.push((param, at.unwrap_or("0").to_string()));
                if let (Some(p), Some(n)) = (limit_param, limit) {
                    extra.push((p, n.to_string()));
                }
            }
        }
        Ok(self.client.first(&extra))
    }

    /// The query parameters a page's URL shows as they are (its position).
    fn visible(&self) -> Vec<String> {
        let names = match &self.src.pagination {
            Pagination::Cursor { param, .. } => vec![Some(param)],
            Pagination::Page { param, size_param, .. } => vec![Some(param), size_param.as_ref()],
            Pagination::Offset { param, limit_param, .. } => vec![Some(param), limit_param.as_ref()],
            Pagination::None | Pagination::NextLink { .. } => Vec::new(),
        };
        names.into_iter().flatten().cloned().collect()
    }

    /// Where the page after `p` (read at `at`) is; none: `p` is the last.
    fn next(&self, at: Option<&str>, p: &Page, link: Option<String>) -> Result<Option<String>, Error> {
        let number = |default: u64| at.and_then(|a| a.parse::<u64>().ok()).unwrap_or(default);
        Ok(match &self.src.pagination {
            Pagination::None => None,
            Pagination::Cursor { .. } => p.next.clone(),
            Pagination::NextLink { field } => {
                let link = if field.is_some() { p.next.clone() } else { link };
                let kept = link.map(|l| self.client.keep(&l)).transpose();
                kept.map_err(|e| Error::stop(format!("source `{}`: {e}", self.source)))?
            }
            Pagination::Page { start, .. } => Some((number(*start) + 1).to_string()),
            Pagination::Offset { .. } => Some((number(0) + p.records.len() as u64).to_string()),
        })
    }

    /// Where a pass goes after a bad page read at `at`: the next numbered
    /// page, or the end of the pass when the bad page held the way on.
    fn after_bad(&self, at: Option<&str>) -> Option<String> {
        let number = |default: u64| at.and_then(|a| a.parse::<u64>().ok()).unwrap_or(default);
        match &self.src.pagination {
            Pagination::Page { start, .. } => Some((number(*start) + 1).to_string()),
            Pagination::Offset { limit: Some(l), .. } => Some((number(0) + l).to_string()),
            _ => None,
        }
    }

    /// The records of a page after the `skip` first, and, for an incremental
    /// source, above `since`, as JSON text with their place in the page;
    /// raises the state's high value.
    fn fresh(&self, records: Vec<Value>, skip: u64, since: Option<&str>, pending: &mut State) -> Vec<(i64, Vec<u8>)> {
        let field = self.src.incremental.as_ref().map(|i| i.field.as_str());
        let mut out = Vec::with_capacity(records.len());
        for (i, r) in records.into_iter().enumerate().skip(skip as usize) {
            if let Some(v) = field.and_then(|f| at_path(&r, f)).filter(|v| !v.is_null()) {
                if since.is_some_and(|s| !state::above(v, s)) {
                    continue;
                }
                pending.raise(v);
            }
            out.push((i as i64 + 1, serde_json::to_vec(&r).expect("a JSON value")));
        }
        out
    }
}
