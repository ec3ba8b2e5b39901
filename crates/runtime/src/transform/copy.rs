//! A table whose rows are its input's rows with some of their columns,
//! checked by its expectations (a silver table that selects and validates),
//! takes the input's large files, and a small one alone in its partition, by
//! copying their column chunks (`LakeTable::stage_copy`, decision 0013) when
//! every row of the file passes every rule. The other files are read and
//! transformed as usual.

use std::collections::HashMap;

use ingesta_config::{ReadMode, SelectItem, Table, WriteModeName};
use ingesta_core::Error;
use ingesta_lake::{AddedFile, Appended, LakeTable};

use arrow_array::cast::AsArray;
use ingesta_lake::datafusion::common::DFSchema;
use ingesta_lake::datafusion::error::DataFusionError;

use super::plan;

/// Files smaller than the table's target file size divided by this (4 MiB
/// by default) are read instead when others of their partition are read too:
/// the commit's own files gather them, where copies would keep the input's
/// small files apart. They are copied when there is nothing worth gathering:
/// a partition's only small file (a small append), or a partition's few
/// small files that together pass the floor (one large append that the input's
/// writers, at most [`crate::MAX_WRITERS`], split: reading them would write
/// about as many files of about the same size again).
const SMALL: u64 = 32;

/// Whether `t`'s rows are its input's rows, appended, with some of their
/// columns as they are: no SQL, computed or cast columns, explode, filter,
/// dedupe or lookups.
pub(super) fn copies(t: &Table) -> bool {
    let tr = &t.transform;
    let plain = |item: &SelectItem| match item {
        SelectItem::Name(_) => true,
        SelectItem::Column(c) => c.expr.is_none() && c.ty.is_none(),
    };
    t.read == ReadMode::Appends
        && t.write.mode == WriteModeName::Append
        && t.write.delete_when.is_none()
        && tr.sql.is_none()
        && tr.explode.is_none()
        && tr.filter.is_none()
        && tr.dedupe.is_none()
        && tr.lookups.is_empty()
        && tr.select.as_ref().is_none_or(|items| items.iter().all(plain))
}

/// The files of `range` worth copying (large, a partition's only small one,
/// or one of a partition's few small ones that together are large)
/// whose rows all pass every rule of `t`: the columns the rules name are
/// read straight from each file, and the rules evaluated over them (the
/// same expressions the transform's query evaluates).
pub(super) async fn clean_files(t: &Table, input: &LakeTable, range: &Appended) -> Result<Vec<AddedFile>, Error> {
    let candidates = worth_copying(&range.files, t.target_file_size.0 / SMALL);
    if candidates.is_empty() || t.expect.is_empty() {
        return Ok(candidates);
    }
    let stop = |e: DataFusionError| Error::stop(format!("checking files: {e}"));
    let ctx = plan::session();
    let table = DFSchema::try_from(input.arrow_schema()?).map_err(stop)?;
    // a row fails a rule whose check is false or null
    let fails: Vec<String> = t.expect.iter().map(|e| format!("(({}) IS NOT TRUE)", e.check)).collect();
    let failing = match ctx.parse_sql_expr(&fails.join(" OR "), &table) {
        Ok(e) => e,
        // a rule over a column the input lacks: the transform's query says so
        Err(e) => {
            tracing::debug!(error = %e, "the rules do not read the input's columns alone; copying nothing");
            return Ok(Vec::new());
        }
    };
    let columns: Vec<String> = failing.column_refs().iter().map(|c| c.name.clone()).collect();
    let (schema, files) = input.read_files(&candidates, Some(&columns)).await?;
    let failing = ctx.create_physical_expr(failing, &DFSchema::try_from(schema).map_err(stop)?).map_err(stop)?;
    let mut clean = Vec::new();
    for (file, batches) in candidates.into_iter().zip(files) {
        let mut passes = true;
        for b in &batches {
            let failed = failing.evaluate(b).and_then(|v| v.into_array(b.num_rows())).map_err(stop)?;
            passes &= failed.as_boolean().true_count() == 0;
        }
        if passes {
            clean.push(file);
        }
    }
    Ok(clean)
}

/// The files worth copying rather than reading: at least `min` bytes, or
/// the small files of a partition when there is one, or at most
/// [`crate::MAX_WRITERS`] that together have `min` bytes; and all rows live.
fn worth_copying(files: &[AddedFile], min: u64) -> Vec<AddedFile> {
    // per partition: its small files and their bytes
    let mut small: HashMap<_, (usize, u64)> = HashMap::new();
    for f in files.iter().filter(|f| f.size < min) {
        let (n, bytes) = small.entry(&f.partition_values).or_default();
        *n += 1;
        *bytes += f.size;
    }
    let worth = |f: &AddedFile| {
        let (n, bytes) = small.get(&f.partition_values).copied().unwrap_or_default();
        f.size >= min || n == 1 || (n <= crate::MAX_WRITERS && bytes >= min)
    };
    files.iter().filter(|f| worth(f) && !f.deletion_vector).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(day: &str, size: u64) -> AddedFile {
        let partition_values = [("event_date".to_string(), Some(day.to_string()))].into_iter().collect();
        AddedFile { path: format!("event_date={day}/{size}.parquet"), size, partition_values, ..Default::default() }
    }

    fn copied(files: &[AddedFile]) -> Vec<u64> {
        worth_copying(files, 100).iter().map(|f| f.size).collect()
    }

    #[test]
    fn large_files_and_a_small_one_alone_in_its_partition_are_copied() {
        let files = [file("a", 150), file("a", 5), file("a", 5), file("a", 5), file("a", 5), file("b", 7)];
        assert_eq!(copied(&files), [150, 7], "the large file, the lone small one; the four small ones are read");
        // a large file does not count towards its partition's small ones
        assert_eq!(copied(&[file("a", 150), file("a", 5), file("a", 5)]), [150]);
        assert_eq!(copied(&[file("a", 150), file("a", 60), file("a", 45)]), [150, 60, 45]);
    }

    #[test]
    fn a_partition_split_by_the_writers_into_a_few_files_that_together_are_large_is_copied() {
        // one large append that two writers split: both copied
        assert_eq!(copied(&[file("a", 60), file("a", 45)]), [60, 45]);
        // the same bytes in too many files to be one append's writers: gathered
        let many: Vec<AddedFile> = (0..5).map(|_| file("a", 30)).collect();
        assert!(copied(&many).is_empty(), "five small files of one partition are read and gathered");
        // a few files that together are still small: gathered
        assert!(copied(&[file("a", 40), file("a", 40)]).is_empty());
    }

    #[test]
    fn a_file_with_a_deletion_vector_is_read() {
        let mut f = file("a", 500);
        f.deletion_vector = true;
        assert!(copied(&[f]).is_empty());
    }
}
