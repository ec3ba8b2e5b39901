//! The table contract (`ingesta_core::TableStore`) on Delta: positions as
//! `txn` actions in the same commit as the rows; appends commit the staged
//! files, the keyed modes run a merge (`merge/`).

use arrow_array::RecordBatch;
use deltalake::DeltaTableError;
use deltalake::datafusion::error::DataFusionError;
use deltalake::datafusion::prelude::SessionContext;
use deltalake::kernel::Action;
use deltalake::protocol::{DeltaOperation, SaveMode};
use ingesta_core::{CommitReceipt, Moved, TableStore, WriteMode};

use crate::writers::Writers;
use crate::{LakeError, LakeTable, Staged};

impl TableStore for LakeTable {
    type Staged = Staged;

    fn name(&self) -> &str {
        &self.name
    }

    fn version(&self) -> i64 {
        LakeTable::version(self)
    }

    async fn refresh(&mut self) -> ingesta_core::Result<()> {
        Ok(LakeTable::refresh(self).await?)
    }

    /// Reloads the table, checks the positions and commits on that version,
    /// so a concurrent commit recording any of the same inputs makes this
    /// one fail (delta-rs's check of `txn` ids).
    async fn commit_checked(
        &mut self,
        staged: Staged,
        positions: Vec<(String, i64)>,
        expected: &[(String, Option<i64>)],
        info: Vec<(String, String)>,
    ) -> ingesta_core::Result<Result<CommitReceipt, Moved>> {
        LakeTable::refresh(self).await?;
        for (id, want) in expected {
            let stored = self.position(id).await?;
            if stored != *want {
                return Ok(Err(Moved { app_id: id.clone(), expected: *want, stored }));
            }
        }
        self.commit(staged, positions, info).await.map(Ok)
    }

    async fn rows_since(&self, after: i64) -> ingesta_core::Result<(i64, Vec<RecordBatch>)> {
        let range = self.appended_since(after, None, u64::MAX).await?;
        let (_, files) = self.read_files(&range.files, None).await?;
        Ok((range.to, files.into_iter().flatten().collect()))
    }

    async fn scan(&self) -> ingesta_core::Result<Vec<RecordBatch>> {
        let ctx = SessionContext::new();
        let fail = |e: DataFusionError| LakeError::delta(&self.name, DeltaTableError::Generic(e.to_string()));
        ctx.register_table("t", self.provider().await?).map_err(fail)?;
        Ok(ctx.sql("SELECT * FROM t").await.map_err(fail)?.collect().await.map_err(fail)?)
    }

    async fn position(&self, app_id: &str) -> ingesta_core::Result<Option<i64>> {
        debug_assert!(self.is_settled(), "a position of `{}` before its last commit settled", self.name);
        let snapshot = self.table.snapshot().map_err(|e| LakeError::delta(&self.name, e))?;
        let v = snapshot
            .transaction_version(self.table.log_store().as_ref(), app_id)
            .await
            .map_err(|e| LakeError::delta(&self.name, e))?;
        Ok(v)
    }

    fn begin(&self, mode: &WriteMode) -> ingesta_core::Result<Staged> {
        let keyed = (*mode != WriteMode::Append).then(|| (mode.clone(), Vec::new()));
        Ok(Staged {
            files: Writers::new(self.writers, self.table.table_url().clone(), self.recent.clone()),
            keyed,
            rows: 0,
            copied: Vec::new(),
        })
    }

    async fn stage(&self, staged: &mut Staged, batch: RecordBatch) -> ingesta_core::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        staged.rows += batch.num_rows() as u64;
        if let Some((_, batches)) = &mut staged.keyed {
            batches.push(batch);
            return Ok(());
        }
        let open = || Ok((self.writer()?, self.partition_columns()));
        staged.files.write(batch, open).await.map_err(|e| LakeError::delta(&self.name, e))?;
        Ok(())
    }

    async fn commit(
        &mut self,
        staged: Staged,
        positions: Vec<(String, i64)>,
        info: Vec<(String, String)>,
    ) -> ingesta_core::Result<CommitReceipt> {
        self.settle().await?;
        let name = self.name.clone();
        let err = |e| LakeError::delta(&name, e);
        let mut staged = staged;
        if let Some((mode, batches)) = staged.keyed.take() {
            let rows = batches.iter().map(|b| b.num_rows()).sum::<usize>();
            if rows > 0 {
                match crate::merge::prepare(self, &mode, batches, false).await? {
                    crate::merge::Prepared::Append(batches) => {
                        staged.rows = 0;
                        for b in batches {
                            self.stage(&mut staged, b).await?;
                        }
                    }
                    crate::merge::Prepared::Merge(plan) => {
                        let version = crate::merge::run(self, plan, Self::props(positions, info)).await?;
                        return Ok(CommitReceipt { version, rows: staged.rows });
                    }
                }
            }
        }
        let mut adds = staged.files.finish().await.map_err(err)?;
        adds.append(&mut staged.copied);
        let actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
        let snapshot = self.table.snapshot().map_err(err)?.clone(); // one Arc
        let partitions = snapshot.metadata().partition_columns().to_vec();
        let operation = DeltaOperation::Write {
            mode: SaveMode::Append,
            partition_by: (!partitions.is_empty()).then_some(partitions),
            predicate: None,
        };
        let version = self.write_commit(&snapshot, actions, operation, Self::props(positions, info)).await?;
        Ok(CommitReceipt { version, rows: staged.rows })
    }
}
