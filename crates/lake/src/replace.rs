//! A range of a table's partitions replaced in one commit (a backfill): the
//! files of every partition whose value lies in the range are removed and
//! the recomputed rows added, prepared as a first load of those partitions
//! (an aggregate's rows combined per key, an upsert's newest kept). Files of
//! other partitions are left as they are, byte for byte.

use std::sync::Arc;

use arrow_schema::DataType;
use deltalake::DeltaTableError;
use deltalake::datafusion::catalog::TableProvider;
use deltalake::datafusion::common::ScalarValue;
use deltalake::kernel::{Action, Transaction};
use deltalake::protocol::{DeltaOperation, SaveMode};

use crate::merge::Prepared;
use crate::shared::COMPACTION_APP;
use crate::{LakeError, LakeTable, Staged};

/// What a replace did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replaced {
    pub version: i64,
    /// Data files removed (the range's old partitions).
    pub removed: usize,
    /// Data files written.
    pub added: usize,
    /// Rows written.
    pub rows: u64,
}

/// A closed range of one partition column's values, typed as the column is.
#[derive(Debug, Clone)]
pub struct PartitionRange {
    pub column: String,
    from: ScalarValue,
    to: ScalarValue,
}

impl PartitionRange {
    /// The values of `column` (of type `ty`) from `from` to `to`, both
    /// included, as text the column's type reads (`2026-01-05` for a date).
    pub fn new(column: &str, ty: &DataType, from: &str, to: &str) -> Result<Self, String> {
        let parse = |v: &str| {
            ScalarValue::try_from_string(v.to_string(), ty)
                .map_err(|e| format!("`{v}` is not a value of `{column}` ({ty}): {e}"))
        };
        let (from, to) = (parse(from)?, parse(to)?);
        if from > to {
            return Err(format!("the range of `{column}` is empty: {from} is after {to}"));
        }
        Ok(Self { column: column.to_string(), from, to })
    }

    /// The range as a DataFusion condition.
    pub fn expr(&self) -> deltalake::datafusion::prelude::Expr {
        use deltalake::datafusion::prelude::{col, lit};
        col(deltalake::datafusion::common::Column::new_unqualified(&self.column))
            .between(lit(self.from.clone()), lit(self.to.clone()))
    }

    /// The range as SQL (as the commit's predicate names it).
    pub fn sql(&self) -> String {
        let text = |v: &ScalarValue| format!("'{}'", v.to_string().replace('\'', "''"));
        format!("{} BETWEEN {} AND {}", crate::merge::q(&self.column), text(&self.from), text(&self.to))
    }

    /// Whether a partition's value, as the log writes it, lies in the range.
    fn holds(&self, raw: Option<&str>) -> Result<bool, String> {
        let Some(raw) = raw else { return Ok(false) }; // a null partition is in no range
        let v = ScalarValue::try_from_string(raw.to_string(), &self.from.data_type())
            .map_err(|e| format!("partition value `{raw}` of `{}`: {e}", self.column))?;
        Ok(v >= self.from && v <= self.to)
    }
}

impl std::fmt::Display for PartitionRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}..={}", self.column, self.from, self.to)
    }
}

impl LakeTable {
    /// Replaces the partitions in `range` by the rows `staged` (begun in the
    /// table's write mode; each row's value of the range's column in the
    /// range), with `positions` and `info`, in one commit. `range.column`
    /// must be a partition column. A commit recording one of the same
    /// positions meanwhile makes this one fail, as does a compaction.
    pub async fn replace_partitions(
        &mut self,
        mut staged: Staged,
        range: &PartitionRange,
        positions: Vec<(String, i64)>,
        info: Vec<(String, String)>,
    ) -> Result<Replaced, LakeError> {
        self.settle().await?;
        let name = self.name.clone();
        let err = |e| LakeError::delta(&name, e);
        let generic = |m: String| LakeError::delta(&name, DeltaTableError::Generic(m));
        let partitions = self.partition_columns();
        if !partitions.contains(&range.column) {
            return Err(generic(format!(
                "a backfill replaces whole partitions, and `{}` is not a partition column of the table (it has {}); \
                 add `partition_by: [{{column: {}}}]` and rebuild the table",
                range.column,
                if partitions.is_empty() { "none".to_string() } else { partitions.join(", ") },
                range.column
            )));
        }
        if let Some((mode, batches)) = staged.keyed.take() {
            staged.rows = 0;
            if batches.iter().any(|b| b.num_rows() > 0) {
                let Prepared::Append(rows) = crate::merge::prepare(self, &mode, batches, true).await? else {
                    return Err(generic(format!("{mode:?} cannot be backfilled")));
                };
                for b in rows.into_iter().filter(|b| b.num_rows() > 0) {
                    staged.rows += b.num_rows() as u64;
                    let open = || Ok((self.writer()?, self.partition_columns()));
                    staged.files.write(b, open).await.map_err(err)?;
                }
            }
        }
        let adds = staged.files.finish().await.map_err(err)?;
        let snapshot = self.table.snapshot().map_err(err)?.clone();
        let mut actions: Vec<Action> = Vec::new();
        for f in snapshot.log_data().iter() {
            let values = f.partition_values_map();
            if range.holds(values.get(&range.column).and_then(|v| v.as_deref())).map_err(generic)? {
                actions.push(Action::Remove(f.remove_action(true)));
            }
        }
        let replaced = Replaced { version: -1, removed: actions.len(), added: adds.len(), rows: staged.rows };
        actions.extend(adds.into_iter().map(Action::Add));
        let operation = DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: Some(partitions),
            predicate: Some(range.sql()),
        };
        // a compaction racing it would keep the removed rows
        let guard = Transaction::new(COMPACTION_APP, chrono::Utc::now().timestamp_millis());
        let props = Self::props(positions, info).with_application_transaction(guard);
        let version = self.write_commit(&snapshot, actions, operation, props).await?;
        Ok(Replaced { version, ..replaced })
    }

    /// A DataFusion table of the rows at `version` (every row then).
    pub async fn provider_at(&self, version: i64) -> Result<Arc<dyn TableProvider>, LakeError> {
        let table = self.at_version(version).await?;
        let provider = table.table_provider().build().await;
        let provider = provider.map_err(|e| LakeError::delta(&self.name, DeltaTableError::Generic(e.to_string())))?;
        Ok(Arc::new(provider))
    }
}
