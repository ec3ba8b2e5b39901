//! A table whose rows are its input's rows with some of their columns,
//! checked by its expectations (a silver table that selects and validates),
//! takes the input's large files, and a small one alone in its partition, by
//! copying their column chunks (`LakeTable::stage_copy`, decision 0013) when
//! every row of the file passes every rule. The other files are read and
//! transformed as usual.

use std::collections::HashMap;
use std::sync::Arc;

use ingesta_config::{ReadMode, SelectItem, Table, WriteModeName};
use ingesta_core::Error;
use ingesta_lake::{AddedFile, Appended, LakeTable};

use arrow_array::cast::AsArray;
use arrow_schema::Schema;
use ingesta_lake::datafusion::common::DFSchema;
use ingesta_lake::datafusion::error::DataFusionError;
use ingesta_lake::datafusion::physical_expr::PhysicalExpr;

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
        && tr.enrich.is_empty()
        && tr.select.as_ref().is_none_or(|items| items.iter().all(plain))
}

/// A table's rules as one expression over the columns of its input that
/// they read: true for a row that fails one (a check false or null). Kept
/// by the task between passes while the input's columns stay the same.
pub(super) struct Rules {
    /// The input's columns it was made for.
    input: Schema,
    /// The columns read, and the expression; `None` when a rule reads a
    /// column the input lacks (nothing is copied: the query says why).
    check: Option<(Vec<String>, Arc<dyn PhysicalExpr>)>,
    /// Whether it may be evaluated again (no `now()`, `random()`, ...).
    reruns: bool,
}

impl Rules {
    fn new(t: &Table, input: Schema) -> Result<Self, Error> {
        let stop = |e: DataFusionError| Error::stop(format!("checking files: {e}"));
        let ctx = plan::session();
        let fails: Vec<String> = t.expect.iter().map(|e| format!("(({}) IS NOT TRUE)", e.check)).collect();
        let failing = match ctx.parse_sql_expr(&fails.join(" OR "), &DFSchema::try_from(input.clone()).map_err(stop)?) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "the rules do not read the input's columns alone; copying nothing");
                return Ok(Self { input, check: None, reruns: true });
            }
        };
        let reruns = super::query::fixed_in(&failing).is_none();
        let columns: Vec<String> = failing.column_refs().iter().map(|c| c.name.clone()).collect();
        // the columns as `read_files` gives them: in the input's order
        let read = input.fields().iter().filter(|f| columns.contains(f.name())).cloned().collect::<Vec<_>>();
        let failing = ctx.create_physical_expr(failing, &DFSchema::try_from(Schema::new(read)).map_err(stop)?);
        Ok(Self { input, check: Some((columns, failing.map_err(stop)?)), reruns })
    }
}

/// Makes `t`'s rules over `input`'s columns into `kept`, unless it holds
/// them already (made for the same columns, reading no clock).
pub(super) fn prepare(t: &Table, input: &LakeTable, kept: &mut Option<Box<Rules>>) -> Result<(), Error> {
    if t.expect.is_empty() {
        return Ok(());
    }
    let schema = input.arrow_schema()?;
    if !kept.as_ref().is_some_and(|r| r.reruns && r.input == schema) {
        *kept = Some(Box::new(Rules::new(t, schema)?));
    }
    Ok(())
}

/// The files of `range` worth copying (large, a partition's only small one,
/// or one of a partition's few small ones that together are large)
/// whose rows all pass every rule of `t`: the columns the rules name are
/// read straight from each file, and the rules evaluated over them (the
/// same expressions the transform's query evaluates). `kept` holds the
/// rules made by the last call, made anew when the input's columns changed.
pub(super) async fn clean_files(
    t: &Table,
    input: &LakeTable,
    range: &Appended,
    kept: &mut Option<Box<Rules>>,
) -> Result<Vec<AddedFile>, Error> {
    let candidates = worth_copying(&range.files, t.target_file_size.0 / SMALL);
    if candidates.is_empty() || t.expect.is_empty() {
        return Ok(candidates);
    }
    prepare(t, input, kept)?;
    let Some((columns, failing)) = kept.as_ref().and_then(|r| r.check.as_ref()) else { return Ok(Vec::new()) };
    let (_, files) = input.read_files(&candidates, Some(columns)).await?;
    let stop = |e: DataFusionError| Error::stop(format!("checking files: {e}"));
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

    /// The rules as one expression over the columns they read, true where a
    /// row fails one; kept only without a function of the clock.
    #[test]
    fn rules_become_one_expression_kept_unless_they_read_the_clock() {
        let yaml = r#"
pipeline: rules
lake: {root: "/tmp/unused"}
sources:
  files: {type: landing, path: "/tmp/unused"}
tables:
  src:
    layer: bronze
    input: files
    columns: [{name: id, type: string}, {name: n, type: long}, {name: t, type: double}]
  checked:
    layer: silver
    input: src
    expect:
      - {name: positive, check: "n > 0", action: quarantine}
      - {name: warm, check: "t BETWEEN -40 AND 70", action: drop}
  recent:
    layer: silver
    input: src
    expect: [{name: fresh, check: "now() > TIMESTAMP '2000-01-01'", action: warn}]
"#;
        let p = ingesta_config::load_str("rules.yaml", yaml, |_| None).unwrap();
        let input = Schema::new(vec![
            arrow_schema::Field::new("id", arrow_schema::DataType::Utf8, true),
            arrow_schema::Field::new("t", arrow_schema::DataType::Float64, true),
            arrow_schema::Field::new("n", arrow_schema::DataType::Int64, true),
        ]);
        let rules = Rules::new(&p.tables["checked"], input.clone()).unwrap();
        assert!(rules.reruns);
        let (columns, failing) = rules.check.as_ref().expect("the input has the columns");
        let mut sorted = columns.clone();
        sorted.sort();
        assert_eq!(sorted, ["n", "t"]);
        // read in the input's order: t, then n
        let batch = arrow_array::RecordBatch::try_new(
            Arc::new(Schema::new(input.fields()[1..].to_vec())),
            vec![
                Arc::new(arrow_array::Float64Array::from(vec![Some(20.0), Some(99.0), Some(5.0), None])),
                Arc::new(arrow_array::Int64Array::from(vec![1, 2, -1, 3])),
            ],
        )
        .unwrap();
        let failed = failing.evaluate(&batch).unwrap().into_array(4).unwrap();
        let failed: Vec<_> = failed.as_boolean().iter().collect();
        assert_eq!(failed, [Some(false), Some(true), Some(true), Some(true)], "too hot, not positive, no reading");
        assert!(!Rules::new(&p.tables["recent"], input.clone()).unwrap().reruns, "now() is made anew each pass");
        let lacking = Schema::new(vec![arrow_schema::Field::new("id", arrow_schema::DataType::Utf8, true)]);
        assert!(Rules::new(&p.tables["checked"], lacking).unwrap().check.is_none(), "a rule over a missing column");
    }

    #[test]
    fn a_file_with_a_deletion_vector_is_read() {
        let mut f = file("a", 500);
        f.deletion_vector = true;
        assert!(copied(&[f]).is_empty());
    }
}
