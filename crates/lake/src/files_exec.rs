//! The scan of a few small data files read into memory (`read.rs`): a leaf
//! of a query's physical plan that reads its files when it runs, not when
//! the query is planned. A long-running pipeline plans a small append's
//! query once and runs that plan again over the next appends' files
//! ([`LakeTable::rebind`], decision 0020): planning it took about as long
//! as running it.

use std::fmt;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use deltalake::datafusion::common::stats::Precision;
use deltalake::datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use deltalake::datafusion::common::{DataFusionError, Result as DfResult, Statistics};
use deltalake::datafusion::execution::TaskContext;
use deltalake::datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use deltalake::datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use deltalake::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use deltalake::datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, SendableRecordBatchStream,
    StatisticsArgs,
};
use futures::TryStreamExt;

use crate::read::Reader;
use crate::{AddedFile, LakeTable};

/// Reads `files` (only the columns of `schema`) when executed, in one partition.
#[derive(Debug)]
pub(crate) struct FilesExec {
    schema: SchemaRef,
    reader: Reader,
    files: Vec<AddedFile>,
    props: Arc<PlanProperties>,
}

impl FilesExec {
    pub(crate) fn new(schema: SchemaRef, reader: Reader, files: Vec<AddedFile>) -> Self {
        let props = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self { schema, reader, files, props: Arc::new(props) }
    }
}

impl LakeTable {
    /// `plan`, a query planned over some of this table's files read into
    /// memory ([`Self::files_rows`]), to run over `files` instead: its
    /// scans read `files`, and every other step starts afresh (an
    /// aggregate's or a join's state is not carried over from a run before).
    pub fn rebind(&self, plan: &Arc<dyn ExecutionPlan>, files: &[AddedFile]) -> DfResult<Arc<dyn ExecutionPlan>> {
        let reader = self.reader();
        plan.clone()
            .transform_up(|node| {
                if let Some(scan) = node.downcast_ref::<FilesExec>() {
                    let exec = FilesExec::new(scan.schema.clone(), reader.clone(), files.to_vec());
                    return Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>));
                }
                Ok(Transformed::yes(node.reset_state()?))
            })
            .map(|t| t.data)
    }
}

impl DisplayAs for FilesExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "FilesExec: {} files of `{}`", self.files.len(), self.reader.table)
    }
}

impl ExecutionPlan for FilesExec {
    fn name(&self) -> &str {
        "FilesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _children: Vec<Arc<dyn ExecutionPlan>>) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, _context: Arc<TaskContext>) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("FilesExec has one partition, not {}", partition + 1)));
        }
        let (reader, files, schema) = (self.reader.clone(), self.files.clone(), self.schema.clone());
        let read = futures::stream::once(async move {
            reader.read_all(&files, &schema).await.map_err(|e| DataFusionError::External(Box::new(e)))
        });
        let rows = read.map_ok(|batches| futures::stream::iter(batches.into_iter().flatten().map(Ok))).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), rows)))
    }

    /// Estimates only (never exact: a `count(*)` is then counted, not
    /// answered from them into a plan that is run again over other files).
    fn statistics_from_inputs(&self, _inputs: &[Arc<Statistics>], _args: &StatisticsArgs) -> DfResult<Arc<Statistics>> {
        let bytes = self.files.iter().map(|f| f.size as usize).sum();
        let rows: Option<usize> = self.files.iter().map(|f| crate::shared::stats_records(f.stats.as_deref()?)).sum();
        let mut stats = Statistics::new_unknown(&self.schema).with_total_byte_size(Precision::Inexact(bytes));
        if let Some(rows) = rows {
            stats = stats.with_num_rows(Precision::Inexact(rows));
        }
        Ok(Arc::new(stats))
    }
}
