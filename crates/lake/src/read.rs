//! A few small data files of a table read straight into memory, as the
//! table's columns: what the queries of a small append read (its new rows,
//! the stored files a merge rewrites). A query over rows in memory plans
//! quickly; delta-rs's scan of the same files was planned anew each time,
//! most of a small append's cost (decision 0016).

use std::sync::Arc;

use arrow_array::{RecordBatch, new_null_array};
use arrow_schema::{Schema, SchemaRef};
use bytes::Bytes;
use deltalake::DeltaTableError;
use deltalake::datafusion::catalog::{Session, TableProvider};
use deltalake::datafusion::common::Result as DfResult;
use deltalake::datafusion::logical_expr::{Expr, TableType};
use deltalake::datafusion::physical_plan::ExecutionPlan;
use deltalake::logstore::ObjectStoreRef;
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::schema::types::SchemaDescriptor;
use std::ops::Range;

use crate::files_exec::FilesExec;
use crate::{AddedFile, LakeError, LakeTable};

/// Files of at most this many bytes in all are read into memory by a query
/// of a small append; larger ones are scanned.
pub const IN_MEMORY: u64 = 32 << 20;

/// Rows per batch read.
const BATCH_ROWS: usize = 8192;

impl LakeTable {
    /// The rows of `files`, data files of version `version`, as a table for
    /// a query: read into memory when they are small (only the columns the
    /// query reads, when it runs: `files_exec.rs`), else scanned by delta-rs.
    pub async fn files_rows(&self, version: i64, files: &[AddedFile]) -> Result<Arc<dyn TableProvider>, LakeError> {
        if !self.reads_in_memory(files) {
            let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
            return self.files_provider(version, &paths).await;
        }
        Ok(Arc::new(FilesTable {
            schema: Arc::new(self.arrow_schema()?),
            reader: self.reader(),
            files: files.to_vec(),
        }))
    }

    /// Whether `files` are few and small enough to read into memory
    /// ([`Self::read_files`]): at most [`IN_MEMORY`] bytes, every row live
    /// (no deletion vector), columns named as the files name them.
    pub fn reads_in_memory(&self, files: &[AddedFile]) -> bool {
        let mapped = self.table.snapshot().map_or(true, |s| {
            s.metadata().configuration().get("delta.columnMapping.mode").is_some_and(|m| m != "none")
        });
        !mapped && files.iter().map(|f| f.size).sum::<u64>() <= IN_MEMORY && files.iter().all(|f| !f.deletion_vector)
    }

    /// The rows of `files` as the table's columns (only `columns`, in the
    /// table's order, when given), read two files at a time. One list of
    /// batches per file.
    pub async fn read_files(
        &self,
        files: &[AddedFile],
        columns: Option<&[String]>,
    ) -> Result<(SchemaRef, Vec<Vec<RecordBatch>>), LakeError> {
        let table = self.arrow_schema()?;
        let fields = table.fields().iter().filter(|f| columns.is_none_or(|c| c.contains(f.name())));
        let schema = Arc::new(Schema::new(fields.cloned().collect::<Vec<_>>()));
        let batches = self.reader().read_all(files, &schema).await?;
        Ok((schema, batches))
    }

    pub(crate) fn reader(&self) -> Reader {
        Reader {
            table: self.name.clone(),
            root: self.table.table_url().clone(),
            recent: self.recent.clone(),
            store: self.table.object_store(),
            parts: self.partition_columns(),
        }
    }
}

/// Reads a table's data files.
#[derive(Debug, Clone)]
pub(crate) struct Reader {
    pub(crate) table: String,
    /// The table's root: files this process wrote lately are read from memory (`recent.rs`).
    root: url::Url,
    recent: crate::recent::RecentFiles,
    store: ObjectStoreRef,
    parts: Vec<String>,
}

impl Reader {
    /// The rows of each of `files`, two files at a time.
    pub(crate) async fn read_all(
        &self,
        files: &[AddedFile],
        schema: &SchemaRef,
    ) -> Result<Vec<Vec<RecordBatch>>, LakeError> {
        let reads: Vec<_> = files.iter().map(|f| self.read(f, schema)).collect();
        futures::stream::iter(reads).buffered(2).try_collect().await
    }

    /// The rows of `file` as the columns of `schema`: a partition column
    /// from the file's partition value, a column the file lacks (added to
    /// the table since) null.
    async fn read(&self, file: &AddedFile, schema: &SchemaRef) -> Result<Vec<RecordBatch>, LakeError> {
        let err = |e: String| LakeError::delta(&self.table, DeltaTableError::Generic(format!("{}: {e}", file.path)));
        if file.deletion_vector {
            return Err(err("some of its rows are deleted (a deletion vector); it is scanned instead".into()));
        }
        let failed =
            |source| LakeError::Read { table: self.table.clone(), file: file.path.clone(), source: Box::new(source) };
        let path = Path::from_url_path(&file.path).map_err(|e| err(e.to_string()))?;
        let read = if let Some(rows) = self.recent.get(&crate::recent::key(&self.root, &file.path)) {
            Ok(rows.to_vec())
        } else if file.size > WHOLE {
            self.read_ranges(path, file.size, schema).await
        } else {
            let bytes =
                self.store.get(&path).await.map_err(|source| failed(DeltaTableError::ObjectStore { source }))?;
            let bytes = bytes.bytes().await.map_err(|source| failed(DeltaTableError::ObjectStore { source }))?;
            let wanted = schema.clone();
            let decode = move || -> Result<Vec<RecordBatch>, ParquetError> {
                let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
                let mask = projection(builder.schema(), builder.parquet_schema(), &wanted);
                builder.with_projection(mask).with_batch_size(BATCH_ROWS).build()?.map(|b| Ok(b?)).collect()
            };
            tokio::task::spawn_blocking(decode).await.map_err(|e| err(e.to_string()))?
        };
        let read = read.map_err(|source| failed(DeltaTableError::Parquet { source }))?;
        read.into_iter()
            .map(|b| {
                let columns = schema.fields().iter().map(|f| {
                    if self.parts.contains(f.name()) {
                        let value = file.partition_values.get(f.name()).cloned().flatten();
                        return crate::shared::constant(value.as_deref(), f.data_type(), b.num_rows())
                            .map_err(|e| err(e.to_string()));
                    }
                    match b.column_by_name(f.name()) {
                        Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
                        Some(c) => arrow_cast::cast(c, f.data_type()).map_err(|e| err(format!("`{}`: {e}", f.name()))),
                        None => Ok(new_null_array(f.data_type(), b.num_rows())),
                    }
                });
                let columns = columns.collect::<Result<Vec<_>, _>>()?;
                let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
                RecordBatch::try_new_with_options(schema.clone(), columns, &opts).map_err(|e| err(e.to_string()))
            })
            .collect()
    }

    /// The columns of `schema` that the file at `path` holds, read from its
    /// footer and their column chunks only (one range each, coalesced), on
    /// a task of its own: files read side by side decode on threads of their own.
    async fn read_ranges(&self, path: Path, size: u64, schema: &SchemaRef) -> Result<Vec<RecordBatch>, ParquetError> {
        let (store, wanted) = (self.store.clone(), schema.clone());
        let read = tokio::spawn(async move {
            let builder = ParquetRecordBatchStreamBuilder::new(Ranges::new(store, path, size)).await?;
            let mask = projection(builder.schema(), builder.parquet_schema(), &wanted);
            builder.with_projection(mask).with_batch_size(BATCH_ROWS).build()?.try_collect().await
        });
        read.await.map_err(|e| ParquetError::External(Box::new(e)))?
    }
}

/// The file's top-level columns that `wanted` names.
fn projection(have: &Schema, parquet: &SchemaDescriptor, wanted: &Schema) -> ProjectionMask {
    let roots = have.fields().iter().enumerate();
    ProjectionMask::roots(parquet, roots.filter(|(_, f)| wanted.field_with_name(f.name()).is_ok()).map(|(i, _)| i))
}

/// Files larger than this are read in ranges (footer, then the column
/// chunks wanted): a query of a few columns of a wide file reads a few of
/// its bytes. Smaller ones are read whole, in one request.
const WHOLE: u64 = 1 << 20;

/// Bytes read from a file's end at once for its footer (most footers fit).
const FOOTER_HINT: usize = 64 << 10;

/// A data file read in ranges of bytes.
pub(crate) struct Ranges {
    store: ObjectStoreRef,
    path: Path,
    size: u64,
}

impl Ranges {
    pub(crate) fn new(store: ObjectStoreRef, path: Path, size: u64) -> Self {
        Self { store, path, size }
    }

    /// The file's footer.
    pub(crate) async fn metadata(&mut self) -> Result<ParquetMetaData, ParquetError> {
        let size = self.size;
        ParquetMetaDataReader::new().with_prefetch_hint(Some(FOOTER_HINT)).load_and_finish(self, size).await
    }
}

impl AsyncFileReader for Ranges {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move { self.store.get_range(&self.path, range).await.map_err(external) })
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        Box::pin(async move { self.store.get_ranges(&self.path, &ranges).await.map_err(external) })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move { Ok(Arc::new(self.metadata().await?)) })
    }
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

/// Small data files of a table, read into memory when a query runs (only
/// the columns it reads: `files_exec.rs`).
#[derive(Debug)]
struct FilesTable {
    schema: SchemaRef,
    reader: Reader,
    files: Vec<AddedFile>,
}

#[async_trait::async_trait]
impl TableProvider for FilesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        Ok(Arc::new(FilesExec::new(schema, self.reader.clone(), self.files.clone())))
    }
}
