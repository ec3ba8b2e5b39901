//! A data file of one table made into a data file of another by copying its
//! encoded column chunks (decision 0013). A table whose rows are its input's
//! rows with fewer columns (a silver table that selects and checks) need not
//! decode and re-encode them: Parquet encoding was most of its work. Each
//! column the new file holds is either a column chunk of the input file of
//! the same Parquet type, copied byte for byte with its statistics and page
//! index, or one of the input's partition columns, encoded from the file's
//! partition value. The file keeps the input file's row groups; its Delta
//! statistics are the input file's, for the columns it keeps.

use std::sync::Arc;

use arrow_schema::{DataType, Schema};
use bytes::Bytes;
use deltalake::DeltaTableError;
use deltalake::kernel::Add;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::Compression;
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value};

use crate::read::Ranges;
use crate::table::Staged;
use crate::{AddedFile, LakeError, LakeTable};

/// What every copied file of one call shares.
struct Layout {
    /// The columns a data file of the table holds (its partition columns are in the path).
    schema: Arc<Schema>,
    parts: Vec<String>,
    input_parts: Vec<String>,
}

/// Where a column of the new file comes from.
enum Source {
    /// The input file's leaf column with this index.
    Chunk(usize),
    /// The input file's partition value (a partition column of the input).
    Constant(Option<String>),
}

impl LakeTable {
    /// Stages `files`, data files of `input`, as data files of this table by
    /// copying their column chunks (an append only), as many at a time as
    /// the table has writers. Returns each file's rows, or `None` when a
    /// column of this table is neither in the file with the same Parquet
    /// type nor a partition column of the input, or when the file's rows are
    /// not all live (a deletion vector): the caller then reads its rows.
    pub async fn stage_copies(
        &self,
        staged: &mut Staged,
        input: &LakeTable,
        files: &[AddedFile],
    ) -> Result<Vec<Option<u64>>, LakeError> {
        let (parts, input_parts) = (self.partition_columns(), input.partition_columns());
        // a partitioned table takes the input's files as its partitions
        if !staged.appends() || (!parts.is_empty() && parts != input_parts) {
            return Ok(vec![None; files.len()]);
        }
        // the columns each file holds: the table's, less its partition columns
        let schema = self.arrow_schema()?;
        let fields: Vec<_> = schema.fields().iter().filter(|f| !parts.contains(f.name())).cloned().collect();
        let layout = Layout { schema: Arc::new(Schema::new(fields)), parts, input_parts };
        let copies: Vec<Option<(Add, u64)>> = futures::stream::iter(files.iter().map(|f| self.copy(input, f, &layout)))
            .buffered(self.writers)
            .try_collect()
            .await?;
        Ok(copies
            .into_iter()
            .map(|c| {
                c.map(|(add, rows)| {
                    staged.add_copy(add, rows);
                    rows
                })
            })
            .collect())
    }

    /// One file of [`Self::stage_copies`]: written, not yet committed.
    async fn copy(
        &self,
        input: &LakeTable,
        file: &AddedFile,
        layout: &Layout,
    ) -> Result<Option<(Add, u64)>, LakeError> {
        if file.deletion_vector {
            return Ok(None);
        }
        let err = |e: DeltaTableError| LakeError::delta(&self.name, e);
        // beside the input file's partition folder, or at the root
        let parts = &layout.parts;
        let folder = if parts.is_empty() { "" } else { file.path.rsplit_once('/').map_or("", |(dir, _)| dir) };
        let name = format!("part-00000-{}-c000.snappy.parquet", uuid::Uuid::new_v4());
        let path = if folder.is_empty() { name } else { format!("{folder}/{name}") };
        let to = Path::from_url_path(&path).map_err(|e| err(DeltaTableError::Generic(e.to_string())))?;
        let from = Path::from_url_path(&file.path).map_err(|e| err(DeltaTableError::Generic(e.to_string())))?;
        let (rows, stats, size) = match self.copy_whole(input, file, layout, &from, (&to, &path)).await? {
            Some(rows) => (rows, stats(file, &layout.schema, &chunks(&layout.schema), rows), file.size as i64),
            None => {
                let bytes = input.table.object_store().get(&from).await.map_err(|e| err(e.into()))?.bytes().await;
                let bytes = bytes.map_err(|e| err(e.into()))?;
                let (schema, input_parts, one) = (layout.schema.clone(), layout.input_parts.clone(), file.clone());
                let made = tokio::task::spawn_blocking(move || assemble(bytes, &schema, &one, &input_parts))
                    .await
                    .map_err(|e| err(DeltaTableError::Generic(e.to_string())))?;
                let Some((data, rows, stats)) = made.map_err(|e| err(e.into()))? else {
                    return Ok(None);
                };
                let size = data.len() as i64;
                self.table.object_store().put(&to, data.into()).await.map_err(|e| err(e.into()))?;
                (rows, stats, size)
            }
        };
        let partition_values =
            if parts.is_empty() { Default::default() } else { file.partition_values.clone().into_iter().collect() };
        let add = Add {
            path,
            partition_values,
            size,
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(stats.to_string()),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        };
        Ok(Some((add, rows)))
    }

    /// Copies `file` of `input` (at `from`, under the input's root) to `to`
    /// (under this table's root; `to_path` as the log gives it) as it is,
    /// when its columns are the new file's columns, in order, of the same
    /// Parquet types: a table with all of its input's columns, partitioned
    /// the same way. The store copies it (a hard link on a local disk, a copy
    /// within the bucket in a cloud): no bytes are read but the footer, none
    /// written; the rows this process keeps of the input file are kept for
    /// the copy too (`recent.rs`). Returns the file's
    /// rows; `None` when the file is not such a file or the store cannot copy
    /// it (another disk, another bucket): the caller then assembles it.
    async fn copy_whole(
        &self,
        input: &LakeTable,
        file: &AddedFile,
        layout: &Layout,
        from: &Path,
        (to, to_path): (&Path, &str),
    ) -> Result<Option<u64>, LakeError> {
        let (here, there) = (self.table.table_url(), input.table.table_url());
        let same_store = (here.scheme(), here.host_str(), here.username(), here.port())
            == (there.scheme(), there.host_str(), there.username(), there.port());
        if layout.parts != layout.input_parts || !same_store {
            return Ok(None);
        }
        let err = |e: String| LakeError::delta(&self.name, DeltaTableError::Generic(format!("{}: {e}", file.path)));
        let mut footer = Ranges::new(input.table.object_store(), from.clone(), file.size);
        let failed =
            |source| LakeError::Read { table: self.name.clone(), file: file.path.clone(), source: Box::new(source) };
        let meta = footer.metadata().await.map_err(|source| failed(DeltaTableError::Parquet { source }))?;
        let target = ArrowSchemaConverter::new().convert(&layout.schema).map_err(|e| err(e.to_string()))?;
        let Some(sources) = sources(&meta, &target, &layout.schema, file, &layout.input_parts) else {
            return Ok(None);
        };
        let in_order = sources.iter().enumerate().all(|(i, s)| matches!(s, Source::Chunk(c) if *c == i));
        if !in_order || meta.file_metadata().schema_descr().num_columns() != sources.len() {
            return Ok(None);
        }
        // both tables' roots under the one root of their store
        let under = |url: &url::Url, p: &Path| Path::from_url_path(format!("{}/{p}", url.path().trim_end_matches('/')));
        let (from, to) = (under(there, from), under(here, to));
        let (Ok(from_root), Ok(to_root)) = (from, to) else { return Ok(None) };
        match self.table.log_store().root_object_store(None).copy(&from_root, &to_root).await {
            Ok(()) => {
                self.recent.alias(&crate::recent::key(there, &file.path), &crate::recent::key(here, to_path));
                Ok(Some(meta.file_metadata().num_rows() as u64))
            }
            Err(e) => {
                tracing::debug!(table = %self.name, file = %file.path, error = %e, "the store cannot copy the file; assembling it");
                Ok(None)
            }
        }
    }
}

/// Each column of `schema` copied from the same column of the input file.
fn chunks(schema: &Schema) -> Vec<Source> {
    (0..schema.fields().len()).map(Source::Chunk).collect()
}

/// The new file's bytes, rows and Delta statistics; `None` when a column
/// cannot be copied or made.
fn assemble(
    bytes: Bytes,
    schema: &Arc<Schema>,
    file: &AddedFile,
    input_parts: &[String],
) -> Result<Option<(Vec<u8>, u64, Value)>, ParquetError> {
    let meta =
        ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Optional).parse_and_finish(&bytes)?;
    let props = WriterProperties::builder()
        .set_created_by(format!("ingesta {} (column chunks copied)", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY)
        // only constant columns are encoded here: interning each value cost
        // more than Snappy takes to squeeze the plain values
        .set_dictionary_enabled(false)
        .build();
    // the copied chunks, a footer, and the encoded columns (small: constants)
    let writer = ArrowWriter::try_new(Vec::with_capacity(bytes.len() + (1 << 20)), schema.clone(), Some(props))?;
    let (mut out, columns) = writer.into_serialized_writer()?;
    let Some(sources) = sources(&meta, out.schema_descr(), schema, file, input_parts) else {
        return Ok(None);
    };
    for (g, group) in meta.row_groups().iter().enumerate() {
        let n = group.num_rows() as usize;
        let constants = sources.iter().any(|s| matches!(s, Source::Constant(_)));
        let mut encoders: Vec<_> =
            if constants { columns.create_column_writers(g)?.into_iter().map(Some).collect() } else { Vec::new() };
        let mut rg = out.next_row_group()?;
        for (i, source) in sources.iter().enumerate() {
            match source {
                Source::Chunk(c) => {
                    let chunk = group.column(*c);
                    let close = ColumnCloseResult {
                        bytes_written: chunk.compressed_size() as u64,
                        rows_written: n as u64,
                        metadata: chunk.clone(),
                        bloom_filter: None,
                        column_index: meta.column_index().map(|ci| ci[g][*c].clone()),
                        offset_index: meta.offset_index().map(|oi| oi[g][*c].clone()),
                    };
                    rg.append_column(&bytes, close)?;
                }
                Source::Constant(value) => {
                    let field = schema.field(i);
                    let array = crate::shared::constant(value.as_deref(), field.data_type(), n)?;
                    let mut encoder = encoders[i].take().expect("a writer per column");
                    for leaf in compute_leaves(field, &array)? {
                        encoder.write(&leaf)?;
                    }
                    encoder.close()?.append_to_row_group(&mut rg)?;
                }
            }
        }
        rg.close()?;
    }
    let rows = meta.file_metadata().num_rows() as u64;
    let stats = stats(file, schema, &sources, rows);
    Ok(Some((out.into_inner()?, rows, stats)))
}

/// Where each column of `schema` comes from, if every one can.
fn sources(
    meta: &ParquetMetaData,
    target: &parquet::schema::types::SchemaDescriptor,
    schema: &Schema,
    file: &AddedFile,
    input_parts: &[String],
) -> Option<Vec<Source>> {
    // one leaf per column: nested columns are read, not copied
    if target.num_columns() != schema.fields().len() {
        return None;
    }
    let have = meta.file_metadata().schema_descr();
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let found = (0..have.num_columns()).find(|&c| have.column(c).path().parts() == [f.name().as_str()]);
            match found {
                Some(c) if *have.column(c) == *target.column(i) => Some(Source::Chunk(c)),
                Some(_) => None,
                None if input_parts.contains(f.name()) => {
                    let value = file.partition_values.get(f.name()).cloned().flatten();
                    // a value that does not parse as the column's type: read, not copied
                    crate::shared::constant(value.as_deref(), f.data_type(), 1).ok().map(|_| Source::Constant(value))
                }
                None => None,
            }
        })
        .collect()
}

/// The new file's Delta statistics: the input file's for the copied
/// columns, the partition value for the others (where Delta keeps it as is).
fn stats(file: &AddedFile, schema: &Schema, sources: &[Source], rows: u64) -> Value {
    let old: Map<String, Value> = file.stats.as_deref().and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    let section = |name: &str| old.get(name).and_then(Value::as_object).cloned().unwrap_or_default();
    let (old_min, old_max, old_nulls) = (section("minValues"), section("maxValues"), section("nullCount"));
    let (mut min, mut max, mut nulls) = (Map::new(), Map::new(), Map::new());
    for (f, source) in schema.fields().iter().zip(sources) {
        let name = f.name();
        match source {
            Source::Chunk(_) => {
                for (from, to) in [(&old_min, &mut min), (&old_max, &mut max), (&old_nulls, &mut nulls)] {
                    if let Some(v) = from.get(name) {
                        to.insert(name.clone(), v.clone());
                    }
                }
            }
            Source::Constant(None) => {
                nulls.insert(name.clone(), rows.into());
            }
            Source::Constant(Some(v)) => {
                nulls.insert(name.clone(), 0.into());
                let value = match f.data_type() {
                    DataType::Utf8 | DataType::Date32 => Some(Value::String(v.clone())),
                    DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
                        v.parse::<i64>().ok().map(Value::from)
                    }
                    _ => None,
                };
                if let Some(value) = value {
                    min.insert(name.clone(), value.clone());
                    max.insert(name.clone(), value);
                }
            }
        }
    }
    serde_json::json!({"numRecords": rows, "minValues": min, "maxValues": max, "nullCount": nulls})
}
