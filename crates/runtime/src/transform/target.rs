//! Where a silver or gold table's rows go: a Delta table in the lake or a
//! PostgreSQL table in the warehouse (`store: warehouse`). Both honour the
//! table contract; this enum passes each call to the store the table lives
//! in, and gives the lake's table to what only the lake has (column-chunk
//! copies, upkeep, schema evolution).

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use ingesta_core::{CommitReceipt, Error, Moved, Result, TableStore, WriteMode};
use ingesta_lake::LakeTable;
use ingesta_warehouse::{TableSpec, Warehouse, WarehouseTable};

pub enum Target {
    Lake(LakeTable),
    Warehouse(Box<WarehouseTable>),
}

pub enum Staged {
    Lake(ingesta_lake::Staged),
    Warehouse(ingesta_warehouse::Staged),
}

impl Target {
    /// The lake's table, when the table lives there.
    pub fn lake_mut(&mut self) -> Option<&mut LakeTable> {
        match self {
            Self::Lake(t) => Some(t),
            Self::Warehouse(_) => None,
        }
    }

    pub fn into_lake(self) -> Option<LakeTable> {
        match self {
            Self::Lake(t) => Some(t),
            Self::Warehouse(_) => None,
        }
    }

    /// The table's columns.
    pub fn arrow_schema(&self) -> Result<Schema> {
        match self {
            Self::Lake(t) => Ok(t.arrow_schema()?),
            Self::Warehouse(t) => Ok(t.arrow_schema().as_ref().clone()),
        }
    }

    /// The table's columns as rows of `produced`'s columns written to it must
    /// be (a warehouse table's `NOT NULL` columns are not nullable, and its
    /// columns with a default are left to it when the rows do not have them).
    pub fn write_schema(&self, produced: &Schema) -> Result<Schema> {
        match self {
            Self::Lake(t) => Ok(t.arrow_schema()?),
            Self::Warehouse(t) => Ok(t.write_schema(produced)),
        }
    }

    /// The ids of the inputs recorded with a position, starting with `prefix`.
    pub async fn app_ids(&self, prefix: &str) -> Result<Vec<String>> {
        match self {
            Self::Lake(t) => {
                let all = t.positions().await?.unwrap_or_default();
                Ok(all.into_keys().filter(|k| k.starts_with(prefix)).collect())
            }
            Self::Warehouse(t) => t.app_ids(prefix).await,
        }
    }
}

/// Where a warehouse table of the pipeline lives.
pub fn spec(name: &str, cfg: &ingesta_config::Table) -> TableSpec {
    let partition = cfg.partition_by.first().map(|p| ingesta_warehouse::TimePartition {
        column: p.column.clone(),
        grain: match p.transform {
            ingesta_config::PartitionTransform::Month => ingesta_warehouse::Grain::Month,
            _ => ingesta_warehouse::Grain::Day,
        },
        retention: p.retention.map(|d| d.0),
    });
    TableSpec {
        name: name.to_string(),
        schema: cfg.schema.clone().unwrap_or_else(|| "public".into()),
        table: name.to_string(),
        // a history holds a row per version: its key is the version's
        key: match cfg.write.mode {
            ingesta_config::WriteModeName::Scd2 => {
                [cfg.write.key.clone(), vec![ingesta_core::VALID_FROM.into()]].concat()
            }
            _ => cfg.write.key.clone(),
        },
        partition,
    }
}

/// Opens a warehouse table, creating or adopting it for the columns `out`.
pub async fn open_warehouse(wh: &Warehouse, spec: &TableSpec, out: &SchemaRef) -> Result<Target> {
    Ok(Target::Warehouse(Box::new(WarehouseTable::open(wh, spec, out).await?)))
}

impl TableStore for Target {
    type Staged = Staged;

    fn name(&self) -> &str {
        match self {
            Self::Lake(t) => TableStore::name(t),
            Self::Warehouse(t) => t.name(),
        }
    }

    fn version(&self) -> i64 {
        match self {
            Self::Lake(t) => TableStore::version(t),
            Self::Warehouse(t) => t.version(),
        }
    }

    async fn refresh(&mut self) -> Result<()> {
        match self {
            Self::Lake(t) => TableStore::refresh(t).await,
            Self::Warehouse(t) => t.refresh().await,
        }
    }

    async fn position(&self, app_id: &str) -> Result<Option<i64>> {
        match self {
            Self::Lake(t) => TableStore::position(t, app_id).await,
            Self::Warehouse(t) => t.position(app_id).await,
        }
    }

    fn begin(&self, mode: &WriteMode) -> Result<Staged> {
        Ok(match self {
            Self::Lake(t) => Staged::Lake(t.begin(mode)?),
            Self::Warehouse(t) => Staged::Warehouse(t.begin(mode)?),
        })
    }

    async fn stage(&self, staged: &mut Staged, batch: RecordBatch) -> Result<()> {
        match (self, staged) {
            (Self::Lake(t), Staged::Lake(s)) => t.stage(s, batch).await,
            (Self::Warehouse(t), Staged::Warehouse(s)) => t.stage(s, batch).await,
            _ => Err(mixed()),
        }
    }

    async fn commit(
        &mut self,
        staged: Staged,
        positions: Vec<(String, i64)>,
        info: Vec<(String, String)>,
    ) -> Result<CommitReceipt> {
        match (self, staged) {
            (Self::Lake(t), Staged::Lake(s)) => t.commit(s, positions, info).await,
            (Self::Warehouse(t), Staged::Warehouse(s)) => t.commit(s, positions, info).await,
            _ => Err(mixed()),
        }
    }

    async fn commit_checked(
        &mut self,
        staged: Staged,
        positions: Vec<(String, i64)>,
        expected: &[(String, Option<i64>)],
        info: Vec<(String, String)>,
    ) -> Result<std::result::Result<CommitReceipt, Moved>> {
        match (self, staged) {
            (Self::Lake(t), Staged::Lake(s)) => t.commit_checked(s, positions, expected, info).await,
            (Self::Warehouse(t), Staged::Warehouse(s)) => t.commit_checked(s, positions, expected, info).await,
            _ => Err(mixed()),
        }
    }

    async fn rows_since(&self, after: i64) -> Result<(i64, Vec<RecordBatch>)> {
        match self {
            Self::Lake(t) => t.rows_since(after).await,
            Self::Warehouse(t) => t.rows_since(after).await,
        }
    }

    async fn scan(&self) -> Result<Vec<RecordBatch>> {
        match self {
            Self::Lake(t) => t.scan().await,
            Self::Warehouse(t) => t.scan().await,
        }
    }
}

fn mixed() -> Error {
    Error::stop("a write staged for one store was committed to another")
}
