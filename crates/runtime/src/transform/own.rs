//! A silver or gold table's own tables: its target, in the lake or the
//! warehouse (`target.rs`), and its quarantine in the lake. Opening and
//! reloading them, the input position the target holds, creating the target
//! from the transform's columns, committing the quarantine.

use arrow_schema::SchemaRef;
use ingesta_config::WriteModeName;
use ingesta_core::{Error, QuarantineRecord, TableStore, WriteMode};
use ingesta_lake::{Lake, LakeTable, quarantine_batch, quarantine_schema};

use super::TransformTask;
use super::target::{self, Target};

impl TransformTask {
    /// The store's write mode of the table's `write:`.
    pub(super) fn write_mode(&self) -> WriteMode {
        let w = &self.cfg.write;
        match w.mode {
            WriteModeName::Append => WriteMode::Append,
            WriteModeName::InsertIfAbsent => WriteMode::InsertIfAbsent { key: w.key.clone() },
            // resolved to an upsert when the file is loaded
            WriteModeName::Upsert | WriteModeName::Replica => WriteMode::Upsert {
                key: w.key.clone(),
                sequence: w.sequence.clone().expect("validated: upsert has a sequence"),
                deletes: w.delete_when.is_some(),
            },
            WriteModeName::Scd2 => WriteMode::History {
                key: w.key.clone(),
                sequence: w.sequence.clone().expect("validated: scd2 has a sequence"),
            },
            WriteModeName::Aggregate => WriteMode::CounterMerge {
                key: w.key.clone(),
                measures: w.measures.iter().map(|(k, m)| (k.clone(), m.clone())).collect(),
            },
        }
    }

    /// Opens (or reloads) this table and its quarantine, concurrently.
    pub(super) async fn open_own(&mut self) -> Result<(), Error> {
        let qname = self.quarantine_name();
        let Self { lake, name, target, quarantine, warehouse, .. } = self;
        let lake = &*lake;
        let (url, qurl) = (lake.table_url(name), lake.quarantine_url(name));
        let own = async {
            match (warehouse.as_deref(), target.as_mut()) {
                (Some(_), Some(t)) => t.refresh().await,
                (Some((wh, spec)), None) => {
                    let found = ingesta_warehouse::WarehouseTable::open_existing(wh, spec).await?;
                    *target = found.map(|t| Target::Warehouse(Box::new(t)));
                    Ok(())
                }
                (None, _) => {
                    let mut slot = target.take().and_then(Target::into_lake);
                    let loaded = reload(&mut slot, lake, name, &url, false).await;
                    *target = slot.map(Target::Lake);
                    loaded
                }
            }
        };
        tokio::try_join!(own, reload(quarantine, lake, &qname, &qurl, false))?;
        let t = self.target.take();
        self.target = t.map(|t| match t {
            Target::Lake(t) => Target::Lake(self.own(t)),
            other => other,
        });
        Ok(())
    }

    /// This table's settings for its own writes: file size and writers.
    pub(super) fn own(&self, t: LakeTable) -> LakeTable {
        t.with_target_file_size(self.cfg.target_file_size.0)
            .with_parallel_writers(self.writers)
            .with_deferred_state(self.overlap)
    }

    pub(super) fn quarantine_name(&self) -> String {
        format!("{}__quarantine", self.name)
    }

    /// The last input version committed, or -1. A position recorded for an
    /// earlier table of the same input name means the input was rebuilt.
    pub(super) async fn position(&self, app: &str) -> Result<i64, Error> {
        let Some(t) = &self.target else { return Ok(-1) };
        if let Some(v) = t.position(app).await? {
            return Ok(v);
        }
        let prefix = ingesta_core::app_id::table_prefix(&self.cfg.input);
        if !t.app_ids(&prefix).await?.is_empty() {
            return Err(Error::stop(format!(
                "table `{}`: its input `{}` was rebuilt since this table last read it; \
                 run `ingesta rebuild PIPELINE {}` to recompute it from the new input",
                self.name, self.cfg.input, self.name
            )));
        }
        Ok(-1)
    }

    /// Creates the table from the transform's columns, or adds the columns
    /// the transform gained since (schema evolution; old rows read null).
    pub(super) async fn ensure_target(&mut self, out: &SchemaRef) -> Result<(), Error> {
        let new: Vec<arrow_schema::Field> = match &self.target {
            Some(t) => {
                let stored = t.arrow_schema()?;
                let fields = out.fields().iter().filter(|f| stored.field_with_name(f.name()).is_err());
                fields.map(|f| f.as_ref().clone()).collect()
            }
            None => Vec::new(),
        };
        let names: Vec<&str> = new.iter().map(|f| f.name().as_str()).collect();
        if let Some((wh, spec)) = self.warehouse.as_deref() {
            if self.target.is_none() {
                self.target = Some(target::open_warehouse(wh, spec, out).await?);
            } else if let (false, Some(Target::Warehouse(t))) = (new.is_empty(), self.target.as_mut()) {
                tracing::info!(table = %self.name, columns = ?names, "adding new columns");
                t.add_columns(&new).await?;
            }
            return Ok(());
        }
        if let Some(t) = self.target.as_mut().and_then(Target::lake_mut) {
            if !new.is_empty() {
                tracing::info!(table = %self.name, columns = ?names, "adding new columns");
                t.add_columns(&new).await?;
            }
            return Ok(());
        }
        let parts: Vec<String> = self.cfg.partition_by.iter().map(|p| p.column.clone()).collect();
        for p in &parts {
            if out.field_with_name(p).is_err() {
                return Err(Error::stop(format!(
                    "table `{}`: partition column `{p}` is not an output column of the transform",
                    self.name
                )));
            }
        }
        let url = self.lake.table_url(&self.name);
        let desc = format!("{} table fed by `{}`", self.cfg.layer.as_str(), self.cfg.input);
        let t = LakeTable::open_or_create(&self.lake, &self.name, &url, out, &parts, &desc).await?;
        self.target = Some(Target::Lake(self.own(t)));
        Ok(())
    }

    pub(super) async fn commit_quarantine(
        &mut self,
        records: &[QuarantineRecord],
        positions: Vec<(String, i64)>,
    ) -> Result<(), Error> {
        if self.quarantine.is_none() {
            let url = self.lake.quarantine_url(&self.name);
            let desc = format!("rows of `{}` that failed its rules or types", self.name);
            let t =
                LakeTable::open_or_create(&self.lake, &self.quarantine_name(), &url, &quarantine_schema(), &[], &desc)
                    .await?;
            self.quarantine = Some(t);
        }
        let q = self.quarantine.as_mut().expect("opened");
        let batch = quarantine_batch(records, chrono::Utc::now().timestamp_micros(), &uuid::Uuid::new_v4().to_string());
        let mut staged = q.begin(&WriteMode::Append)?;
        q.stage(&mut staged, batch).await?;
        q.commit(staged, positions, Vec::new()).await?;
        Ok(())
    }
}

/// Brings `slot` to the latest version of the lake's table `name` at `url`:
/// refreshed when it is open (or, for a reader of its appends, its log
/// followed: `LakeTable::follow`), else opened (`None` while there is no table).
pub(super) async fn reload(
    slot: &mut Option<LakeTable>,
    lake: &Lake,
    name: &str,
    url: &ingesta_lake::Url,
    follow: bool,
) -> Result<(), Error> {
    if let Some(t) = slot {
        let caught_up = if follow { t.follow().await } else { t.refresh().await };
        match caught_up {
            Ok(()) => return Ok(()),
            // gone since (a rebuild in progress), or a passing fault: open it anew
            Err(e) => tracing::debug!(table = name, error = %e, "catching up failed; opening the table anew"),
        }
    }
    *slot = LakeTable::open(lake, name, url).await?;
    Ok(())
}
