//! What the HTTP surface reads, over the lake and the warehouse: one
//! DataFusion session with every table registered, rebuilt when older than
//! a second (so an answer is at most a second behind the last commit), and
//! queries run with the server's row and time limits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use ingesta_config::Pipeline;
use ingesta_lake::datafusion::common::ParamValues;
use ingesta_lake::datafusion::common::tree_node::TreeNodeRecursion;
use ingesta_lake::datafusion::logical_expr::LogicalPlan;
use ingesta_lake::datafusion::prelude::SessionContext;
use ingesta_serve::{Answer, Data, Failure, Page};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::reports::{bind, read_only, short};
use crate::health::Board;

/// How long a session serves before it is opened again at the tables' newest versions.
const FRESH_FOR: Duration = Duration::from_secs(1);

pub struct PipelineData {
    pub(super) p: Arc<Pipeline>,
    pub(super) board: Option<Board>,
    max_rows: usize,
    timeout: Duration,
    current: std::sync::RwLock<Option<Session>>,
    /// Held while the first session opens.
    first: Mutex<()>,
    reopening: AtomicBool,
    generation: AtomicU64,
    /// Where queries and reopens run: threads of their own, so a heavy query
    /// never holds up the HTTP server's threads (answers from the cache,
    /// probes, other requests).
    queries: Option<tokio::runtime::Runtime>,
}

impl Drop for PipelineData {
    fn drop(&mut self) {
        if let Some(rt) = self.queries.take() {
            rt.shutdown_background(); // dropped from async code: do not wait for it
        }
    }
}

/// A session at the tables' versions when it was opened, with each
/// table's last commit then.
#[derive(Clone)]
struct Session {
    opened: Instant,
    ctx: SessionContext,
    commits: Arc<BTreeMap<String, DateTime<Utc>>>,
}

impl PipelineData {
    pub fn new(p: Arc<Pipeline>, board: Option<Board>) -> Result<Self, ingesta_core::Error> {
        let serve = p.serve.clone().unwrap_or_default();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let queries = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("ingesta-query")
            .enable_all()
            .build()
            .map_err(|e| ingesta_core::Error::stop(format!("cannot start the query threads: {e}")))?;
        Ok(PipelineData {
            p,
            board,
            max_rows: serve.max_rows,
            timeout: serve.query_timeout.0,
            current: Default::default(),
            first: Mutex::new(()),
            reopening: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            queries: Some(queries),
        })
    }

    /// Runs `work` on the query threads; past `limit` it is stopped there.
    async fn on_query_threads<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
        limit: Duration,
    ) -> Result<T, Failure> {
        let rt = self.queries.as_ref().expect("until dropped");
        let task = rt.spawn(work);
        let abort = task.abort_handle();
        match tokio::time::timeout(limit, task).await {
            Ok(done) => done.map_err(|e| Failure::Unavailable(format!("the query failed: {e}"))),
            Err(_) => {
                abort.abort();
                Err(Failure::Timeout(format!("the query ran longer than {limit:?} and was stopped")))
            }
        }
    }

    /// The session. A stale one is reopened by the caller that finds it
    /// stale first, while the others keep answering from it; only the very
    /// first callers wait.
    async fn session(&self) -> Result<Session, Failure> {
        let current = self.current.read().expect("session").clone();
        match current {
            Some(s) if s.opened.elapsed() < FRESH_FOR => return Ok(s),
            Some(s) if self.reopening.swap(true, Ordering::AcqRel) => return Ok(s),
            Some(_) => {
                let reopened = self.open().await;
                self.reopening.store(false, Ordering::Release);
                return reopened;
            }
            None => {}
        }
        let _first = self.first.lock().await;
        if let Some(s) = self.current.read().expect("session").clone() {
            return Ok(s);
        }
        self.open().await
    }

    /// Opens every table at its newest version; a new generation when any committed.
    async fn open(&self) -> Result<Session, Failure> {
        let p = self.p.clone();
        let opened = self.on_query_threads(async move { crate::query::session_with_commits(&p).await }, self.timeout);
        let (ctx, commits) = opened.await?.map_err(|e| Failure::Unavailable(e.message))?;
        let s = Session { opened: Instant::now(), ctx, commits: Arc::new(commits) };
        let mut current = self.current.write().expect("session");
        if current.as_ref().is_none_or(|old| old.commits != s.commits) {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        *current = Some(s.clone());
        Ok(s)
    }

    /// Each table's columns (of the tables that exist), as queries see them.
    pub(super) async fn columns(&self) -> Result<BTreeMap<String, Vec<Value>>, Failure> {
        let s = self.session().await?;
        let mut out = BTreeMap::new();
        for name in self.p.tables.keys() {
            if let Ok(t) = s.ctx.table_provider(name.as_str()).await {
                let schema = t.schema();
                let cols = schema.fields().iter().map(|f| json!({"name": f.name(), "type": f.data_type().to_string()}));
                out.insert(name.clone(), cols.collect());
            }
        }
        Ok(out)
    }

    async fn answer(&self, sql: &str, params: Option<ParamValues>, page: Page) -> Result<Answer, Failure> {
        let session = self.session().await?;
        let mut df = session.ctx.sql_with_options(sql, read_only()).await.map_err(|e| refused(&e.to_string()))?;
        if let Some(params) = params {
            df = df.with_param_values(params).map_err(|e| Failure::Bad(short(&e.to_string())))?;
        }
        let tables = scanned(df.logical_plan());
        let limit = page.limit.unwrap_or(self.max_rows).min(self.max_rows);
        let df = df.limit(page.offset, Some(limit + 1)).map_err(|e| Failure::Bad(short(&e.to_string())))?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = match self.on_query_threads(df.collect(), self.timeout).await? {
            Err(e) => return Err(Failure::Bad(short(&e.to_string()))),
            Ok(b) => b,
        };
        let (batches, truncated) = cut(batches, limit);
        // the oldest last commit among the tables read
        let freshness = tables.iter().filter_map(|t| session.commits.get(t)).min().map(|at| at.to_rfc3339());
        Ok(Answer { schema, batches, truncated, freshness })
    }
}

/// A planning error, with a hint when the statement would write.
fn refused(e: &str) -> Failure {
    let writes = ["DML", "DDL", "Statement", "not supported"].iter().any(|w| e.contains(w));
    match writes {
        true => Failure::Bad(format!(
            "{}; only queries (SELECT, WITH, VALUES, EXPLAIN) run here — tables change through the pipeline",
            short(e)
        )),
        false => Failure::Bad(short(e)),
    }
}

/// The tables a plan reads.
fn scanned(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            names.insert(scan.table_name.table().to_string());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    names
}

/// At most `limit` rows, and whether there were more.
fn cut(batches: Vec<RecordBatch>, limit: usize) -> (Vec<RecordBatch>, bool) {
    let mut left = limit;
    let mut out = Vec::new();
    let mut truncated = false;
    for b in batches {
        if b.num_rows() <= left {
            left -= b.num_rows();
            out.push(b);
        } else {
            truncated = true;
            if left > 0 {
                out.push(b.slice(0, left));
                left = 0;
            }
        }
    }
    (out, truncated)
}

impl Data for PipelineData {
    fn tables(&self) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(super::tables::tables(self))
    }

    fn quarantine(&self, table: String, limit: usize) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(async move {
            if !self.p.tables.contains_key(&table) {
                return Err(Failure::NotFound(format!("no table `{table}` in this pipeline")));
            }
            let q = format!("{table}__quarantine");
            let ctx = self.session().await?.ctx;
            if !ctx.table_exist(q.as_str()).unwrap_or(false) {
                return Ok(serde_json::json!({"table": table, "total": 0, "reasons": [], "samples": []}));
            }
            let counts = format!("SELECT reason, count(*) AS count FROM \"{q}\" GROUP BY reason ORDER BY count DESC");
            let samples = format!(
                "SELECT source, position, reason, error, raw, quarantined_at FROM \"{q}\" \
                 ORDER BY quarantined_at DESC, source, position LIMIT {limit}"
            );
            let page = Page::default();
            let reasons = super::tables::objects(self.answer(&counts, None, page).await?)?;
            let samples = super::tables::objects(self.answer(&samples, None, page).await?)?;
            let total: u64 = reasons.iter().filter_map(|r| r["count"].as_u64()).sum();
            Ok(serde_json::json!({"table": table, "total": total, "reasons": reasons, "samples": samples}))
        })
    }

    fn runs(&self, table: Option<String>, limit: usize) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(async move {
            if let Some(t) = &table
                && !self.p.tables.contains_key(t)
                && !self.p.sinks.contains_key(t)
            {
                return Err(Failure::NotFound(format!("no table `{t}` in this pipeline")));
            }
            let lake = crate::lake_of(&self.p).map_err(|e| Failure::Unavailable(e.message))?;
            let batches = crate::runs::recent(&lake, table.as_deref(), limit)
                .await
                .map_err(|e| Failure::Unavailable(e.message))?;
            let rows = ingesta_serve::json_objects(&batches).map_err(Failure::Unavailable)?;
            Ok(serde_json::json!({"runs": rows}))
        })
    }

    fn report(
        &self,
        name: String,
        params: BTreeMap<String, String>,
        page: Page,
    ) -> BoxFuture<'_, Result<Answer, Failure>> {
        Box::pin(async move {
            let r = self.p.reports.get(&name).ok_or_else(|| Failure::NotFound(format!("no report `{name}`")))?;
            let values = bind(r, &params).map_err(Failure::Bad)?;
            self.answer(&r.sql, Some(values), page).await
        })
    }

    fn sql(&self, sql: String, page: Page) -> BoxFuture<'_, Result<Answer, Failure>> {
        Box::pin(async move { self.answer(&sql, None, page).await })
    }

    fn compact(&self, table: String) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(async move {
            if !self.p.tables.contains_key(&table) {
                return Err(Failure::NotFound(format!("no table `{table}` in this pipeline")));
            }
            let done = crate::compact(&self.p, std::slice::from_ref(&table), None)
                .await
                .map_err(|e| Failure::Unavailable(e.message))?;
            let files: Vec<Value> = done
                .iter()
                .map(|m| json!({"table": m.table, "files_before": m.files_before, "files_after": m.files_after}))
                .collect();
            tracing::info!(table, "compacted on request");
            Ok(json!({"compacted": files}))
        })
    }

    fn replay(
        &self,
        table: String,
        reason: Option<String>,
        since: Option<String>,
    ) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(async move {
            if !self.p.tables.contains_key(&table) {
                return Err(Failure::NotFound(format!("no table `{table}` in this pipeline")));
            }
            let since = match since.as_deref().map(chrono::DateTime::parse_from_rfc3339) {
                None => None,
                Some(Ok(t)) => Some(t.to_utc()),
                Some(Err(_)) => return Err(Failure::Bad("`since` must be a time like 2026-12-01T00:00:00Z".into())),
            };
            let reason = reason.filter(|r| !r.is_empty());
            let done = crate::replay(&self.p, &table, reason.as_deref(), since).await.map_err(|e| match e.kind {
                ingesta_core::ErrorKind::Retry => Failure::Unavailable(e.message),
                _ => Failure::Bad(e.message),
            })?;
            tracing::info!(table, replayed = done.replayed, "replayed on request");
            serde_json::to_value(&done).map_err(|e| Failure::Unavailable(e.to_string()))
        })
    }

    fn generation(&self) -> BoxFuture<'_, Result<u64, Failure>> {
        Box::pin(async move {
            self.session().await?; // reopens a stale one, which moves the generation when a table committed
            Ok(self.generation.load(Ordering::Acquire))
        })
    }

    fn status(&self) -> BoxFuture<'_, Result<Value, Failure>> {
        Box::pin(async move {
            let s = crate::status(&self.p).await.map_err(|e| Failure::Unavailable(e.message))?;
            serde_json::to_value(s).map_err(|e| Failure::Unavailable(e.to_string()))
        })
    }
}
