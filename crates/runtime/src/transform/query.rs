//! A table's transform over one range of its input: the SQL query, planned
//! (its physical plan made when its rows are first wanted). A long-running
//! pipeline keeps a small append's query and runs its plan again over the
//! next appends' files (`LakeTable::rebind`, decision 0020): parsing,
//! optimizing and planning the query is a large part of a small append's
//! cost (bench/README.md). A query is kept only when running it again gives
//! what planning it anew would: its input's columns are the same, it reads
//! no other table (a lookup changes between passes) and it calls no function
//! whose value is fixed when it is planned (`now()`, `random()`, ...).

use std::sync::Arc;

use arrow_schema::SchemaRef;
use ingesta_lake::datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use ingesta_lake::datafusion::common::{DataFusionError, Result as DfResult};
use ingesta_lake::datafusion::execution::TaskContext;
use ingesta_lake::datafusion::logical_expr::{Expr, LogicalPlan, Volatility};
use ingesta_lake::datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream, execute_stream};
use ingesta_lake::datafusion::prelude::DataFrame;
use ingesta_lake::{AddedFile, LakeTable};

use super::plan;

pub(super) struct Query {
    /// The input's columns it was planned for.
    pub input: SchemaRef,
    /// Its output columns, as stored.
    pub out: SchemaRef,
    /// Whether its plan may run again over other files.
    pub reruns: bool,
    frame: DataFrame,
    planned: Option<(Arc<dyn ExecutionPlan>, Arc<TaskContext>)>,
}

impl Query {
    pub fn new(frame: DataFrame, input: SchemaRef) -> Self {
        let out = plan::stored_schema(frame.schema().as_arrow());
        let reruns = fixed_when_planned(frame.logical_plan()).is_none();
        Self { input, out, reruns, frame, planned: None }
    }

    /// Makes its physical plan, unless it has one.
    pub async fn plan(&mut self) -> DfResult<()> {
        if self.planned.is_none() {
            let task = Arc::new(self.frame.task_ctx());
            self.planned = Some((self.frame.create_physical_plan().await?, task));
        }
        Ok(())
    }

    /// Its rows: over the files it was planned for, or over `files` of
    /// `table` instead when it reads files in memory (`LakeTable::rebind`).
    pub async fn rows(
        &mut self,
        table: &LakeTable,
        files: Option<&[AddedFile]>,
    ) -> DfResult<SendableRecordBatchStream> {
        self.plan().await?;
        let (plan, task) = self.planned.as_ref().expect("planned");
        let plan = match files {
            Some(files) => table.rebind(plan, files)?,
            None => plan.clone(),
        };
        execute_stream(plan, task.clone())
    }
}

/// The first function of `plan` (or of its subqueries) whose value is fixed
/// when the plan is made rather than computed per row when it runs.
fn fixed_when_planned(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let walk = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            found = fixed_in(e);
            Ok(if found.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
        })
    });
    match walk {
        Ok(_) => found,
        Err(e) => Some(DataFusionError::to_string(&e)),
    }
}

/// The first function of `expr` whose value is fixed when it is planned
/// (see [`fixed_when_planned`]); subqueries are not searched.
pub(super) fn fixed_in(expr: &Expr) -> Option<String> {
    let mut found = None;
    let _ = expr.apply(|e| {
        if let Expr::ScalarFunction(f) = e
            && f.func.signature().volatility != Volatility::Immutable
        {
            found = Some(f.func.name().to_string());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Progress;
    use crate::transform::TransformTask;
    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use ingesta_core::{TableStore, WriteMode};
    use ingesta_lake::Lake;

    const PIPELINE: &str = r#"
pipeline: kept
lake: {root: "ROOT"}
sources:
  files: {type: landing, path: "ROOT/landing"}
tables:
  src:
    layer: bronze
    input: files
    columns: [{name: id, type: string}, {name: n, type: long}]
  counts:
    layer: gold
    input: src
    transform:
      sql: "SELECT count(*) AS c, sum(n) AS s, max(id) AS last_id FROM input"
  all:
    layer: silver
    input: src
    transform:
      sql: "SELECT *, n * 2 AS twice FROM input"
"#;

    async fn append(t: &mut LakeTable, ids: &[&str], extra: bool) {
        let n: Vec<i64> = (0..ids.len() as i64).collect();
        let mut fields = vec![Field::new("id", DataType::Utf8, true), Field::new("n", DataType::Int64, true)];
        let mut cols: Vec<arrow_array::ArrayRef> =
            vec![Arc::new(StringArray::from(ids.to_vec())), Arc::new(Int64Array::from(n))];
        if extra {
            fields.push(Field::new("extra", DataType::Utf8, true));
            cols.push(Arc::new(StringArray::from(vec!["x"; ids.len()])));
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
        let mut staged = t.begin(&WriteMode::Append).unwrap();
        t.stage(&mut staged, batch).await.unwrap();
        t.commit(staged, vec![], vec![]).await.unwrap();
    }

    /// `sql` over the lake's table `name`, as sorted lines of text.
    async fn lines(lake: &Lake, name: &str, sql: &str) -> Vec<String> {
        let t = LakeTable::open(lake, name, &lake.table_url(name)).await.unwrap().expect("the table");
        let ctx = plan::session();
        t.delta().update_datafusion_session(&ctx.state()).unwrap();
        ctx.register_table(name, t.provider().await.unwrap()).unwrap();
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let cell = |c: &arrow_array::ArrayRef, r| arrow_cast::display::array_value_to_string(c, r).unwrap();
        let row = |b: &RecordBatch, r| b.columns().iter().map(|c| cell(c, r)).collect::<Vec<_>>().join(",");
        let mut out: Vec<String> = batches.iter().flat_map(|b| (0..b.num_rows()).map(move |r| row(b, r))).collect();
        out.sort();
        out
    }

    /// A pass of each table, as `run --watch` makes them.
    async fn pass(tasks: &mut [TransformTask]) {
        for t in tasks.iter_mut() {
            t.overlap_upkeep();
            t.run_once(&Progress::new(false)).await.unwrap();
        }
        for t in tasks.iter_mut() {
            t.settle_in_background();
            t.settle().await;
        }
    }

    /// A watched table plans a small append's query once and runs it over
    /// each next append's files: a `count(*)` counts each append's rows (it
    /// is not answered from the first files' statistics), a query prepared
    /// while nothing was new runs over the next append, and a column the
    /// input gains is read, by a query planned anew.
    #[tokio::test]
    async fn a_watched_table_runs_its_kept_query_over_each_append_until_the_input_gains_a_column() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let pipeline = ingesta_config::load_str("kept.yaml", &PIPELINE.replace("ROOT", root), |_| None).unwrap();
        let lake = Lake::new(&pipeline.lake.root, Default::default()).unwrap();
        let schema = Schema::new(vec![Field::new("id", DataType::Utf8, true), Field::new("n", DataType::Int64, true)]);
        let mut src =
            LakeTable::open_or_create(&lake, "src", &lake.table_url("src"), &schema, &[], "test").await.unwrap();
        let tasks_of = || -> Vec<TransformTask> {
            ["counts", "all"].iter().map(|n| TransformTask::new(lake.clone(), n, &pipeline.tables[*n])).collect()
        };
        let planned = |t: &TransformTask| t.kept.as_ref()?.planned.as_ref().map(|p| Arc::as_ptr(&p.0) as *const u8);
        let mut tasks = tasks_of();
        append(&mut src, &["a", "b"], false).await;
        pass(&mut tasks).await;
        let first = planned(&tasks[0]);
        assert!(first.is_some(), "the query is kept, planned");
        append(&mut src, &["c", "d", "e"], false).await;
        pass(&mut tasks).await;
        assert_eq!(planned(&tasks[0]), first, "the second append ran the kept plan");
        assert_eq!(lines(&lake, "counts", "SELECT c, s, last_id FROM counts").await, ["2,1,b", "3,3,e"]);

        // started again: a pass with nothing new prepares the query (planned
        // over no files), and the next append runs that plan
        let mut tasks = tasks_of();
        pass(&mut tasks).await;
        let prepared = planned(&tasks[0]);
        assert!(prepared.is_some() && planned(&tasks[1]).is_some(), "prepared while nothing is new");
        assert_eq!(lines(&lake, "counts", "SELECT c, s, last_id FROM counts").await, ["2,1,b", "3,3,e"]);
        append(&mut src, &["g", "h"], false).await;
        pass(&mut tasks).await;
        assert_eq!(planned(&tasks[0]), prepared, "the append ran the prepared plan");
        assert_eq!(lines(&lake, "counts", "SELECT c, s, last_id FROM counts").await, ["2,1,b", "2,1,h", "3,3,e"]);

        src.add_columns(&[Field::new("extra", DataType::Utf8, true)]).await.unwrap();
        append(&mut src, &["f"], true).await;
        pass(&mut tasks).await;
        let input = &tasks[1].kept.as_ref().expect("kept").input;
        assert!(input.field_with_name("extra").is_ok(), "planned anew over the input's new column");
        assert_eq!(
            lines(&lake, "counts", "SELECT c, s, last_id FROM counts").await,
            ["1,0,f", "2,1,b", "2,1,h", "3,3,e"]
        );
        let all = lines(&lake, "all", "SELECT id, twice, coalesce(extra, '-') FROM \"all\"").await;
        assert_eq!(all, ["a,0,-", "b,2,-", "c,0,-", "d,2,-", "e,4,-", "f,0,x", "g,0,-", "h,2,-"]);
    }

    async fn fixed(sql: &str) -> Option<String> {
        let ctx = plan::session_of(1);
        ctx.sql("CREATE TABLE input (ts TIMESTAMP, v DOUBLE)").await.unwrap();
        fixed_when_planned(ctx.sql(sql).await.unwrap().logical_plan())
    }

    #[tokio::test]
    async fn a_query_reading_the_clock_or_chance_is_planned_each_time() {
        assert_eq!(fixed("SELECT date_bin(INTERVAL '1 hour', ts) AS h, v * 2 FROM input").await, None);
        assert_eq!(fixed("SELECT ts FROM input WHERE ts < now()").await.as_deref(), Some("now"));
        assert_eq!(fixed("SELECT v, random() AS r FROM input").await.as_deref(), Some("random"));
        let sub = "SELECT v FROM input WHERE v IN (SELECT v FROM input WHERE ts > current_date())";
        assert_eq!(fixed(sub).await.as_deref(), Some("current_date"));
    }
}
