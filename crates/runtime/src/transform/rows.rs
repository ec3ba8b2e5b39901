//! Splitting a transformed batch by its expectation columns, and fitting it to
//! the stored table's columns. Rows that fail a `quarantine` rule, or whose
//! value the stored column's type cannot hold, become quarantine records with
//! the row as JSON; nothing is dropped silently.

use std::collections::BTreeMap;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, new_null_array};
use arrow_schema::SchemaRef;
use ingesta_config::{ExpectAction, Expectation};
use ingesta_core::{Error, QuarantineRecord, Reason};

use super::plan::expect_column;

/// Pass/fail counts of one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct RuleCount {
    pub passed: u64,
    pub failed: u64,
}

/// The rows to keep (with their positions among the new rows), and the ones
/// to quarantine.
pub struct Split {
    pub keep: RecordBatch,
    pub positions: Vec<i64>,
    pub quarantine: Vec<QuarantineRecord>,
}

/// Applies the rules to one batch (which carries a `__expect_<i>` column per
/// rule); `source`/`first` name the rows' place for the quarantine.
pub fn apply_expectations(
    table: &str,
    rules: &[Expectation],
    batch: RecordBatch,
    counts: &mut BTreeMap<String, RuleCount>,
    source: &str,
    first: i64,
) -> Result<Split, Error> {
    let n = batch.num_rows();
    let mut drop = vec![false; n];
    let mut quarantine: Vec<Option<&str>> = vec![None; n];
    for (i, rule) in rules.iter().enumerate() {
        let col = batch.column_by_name(&expect_column(i)).expect("expectation column");
        let pass: &BooleanArray = col.as_boolean();
        let failed = (0..n).filter(|&r| !pass.value(r)).count() as u64;
        let c = counts.entry(rule.name.clone()).or_default();
        c.passed += n as u64 - failed;
        c.failed += failed;
        if failed == 0 {
            continue;
        }
        match rule.action {
            ExpectAction::Warn => {}
            ExpectAction::Fail => {
                let row = (0..n).find(|&r| !pass.value(r)).expect("a failing row");
                let sample = row_json(&data_columns(&batch)?, row);
                return Err(Error::stop(format!(
                    "table `{table}`: expectation `{}` ({}) failed for {failed} row(s), e.g. {sample}; \
                     nothing of this batch was written",
                    rule.name, rule.check
                )));
            }
            ExpectAction::Drop => (0..n).filter(|&r| !pass.value(r)).for_each(|r| drop[r] = true),
            ExpectAction::Quarantine => {
                for r in (0..n).filter(|&r| !pass.value(r)) {
                    quarantine[r].get_or_insert(rule.name.as_str());
                }
            }
        }
    }
    let data = data_columns(&batch)?;
    let mut records = Vec::new();
    let keep: Vec<bool> = (0..n)
        .map(|r| match quarantine[r] {
            Some(name) => {
                let rule = rules.iter().find(|e| e.name == name).expect("rule");
                records.push(QuarantineRecord {
                    source: source.to_string(),
                    position: first + r as i64,
                    reason: Reason::Expectation,
                    error: format!("expectation `{}` failed: {}", rule.name, rule.check),
                    raw: row_json(&data, r).into_bytes(),
                });
                false
            }
            None => !drop[r],
        })
        .collect();
    let positions = (0..n).filter(|&r| keep[r]).map(|r| first + r as i64).collect();
    let keep = arrow_select::filter::filter_record_batch(&data, &BooleanArray::from(keep)).map_err(stop)?;
    Ok(Split { keep, positions, quarantine: records })
}

/// The batch without its expectation columns.
fn data_columns(batch: &RecordBatch) -> Result<RecordBatch, Error> {
    let keep: Vec<usize> =
        (0..batch.num_columns()).filter(|&i| !batch.schema().field(i).name().starts_with("__expect_")).collect();
    batch.project(&keep).map_err(stop)
}

/// Casts `batch` to the stored columns: absent columns become null; a value
/// the stored type cannot hold sends its row to quarantine (type_error), and
/// so does a null in a column the table does not take nulls in
/// (missing_required). `positions` are the rows' places among the new rows.
pub fn conform(batch: RecordBatch, stored: &SchemaRef, source: &str, positions: Vec<i64>) -> Result<Split, Error> {
    let n = batch.num_rows();
    let mut bad: Vec<Option<(Reason, String)>> = vec![None; n];
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(stored.fields().len());
    for field in stored.fields() {
        let Some(col) = batch.column_by_name(field.name()) else {
            cols.push(new_null_array(field.data_type(), n));
            continue;
        };
        if col.data_type() == field.data_type() {
            cols.push(col.clone());
            continue;
        }
        let opts = arrow_cast::CastOptions { safe: true, ..Default::default() };
        let cast = arrow_cast::cast_with_options(col, field.data_type(), &opts).map_err(|e| {
            Error::stop(format!(
                "column `{}` is {} in the new rows but {} in the table, and cannot be converted: {e}",
                field.name(),
                col.data_type(),
                field.data_type()
            ))
        })?;
        for r in (0..n).filter(|&r| col.is_valid(r) && cast.is_null(r)) {
            bad[r].get_or_insert_with(|| {
                let why =
                    format!("column `{}`: value does not fit the table's type {}", field.name(), field.data_type());
                (Reason::Type, why)
            });
        }
        cols.push(cast);
    }
    for (field, col) in stored.fields().iter().zip(&cols).filter(|(f, c)| !f.is_nullable() && c.null_count() > 0) {
        for r in (0..n).filter(|&r| col.is_null(r)) {
            bad[r].get_or_insert_with(|| {
                (Reason::Missing, format!("column `{}` is null, and the table does not take nulls there", field.name()))
            });
        }
    }
    if bad.iter().all(Option::is_none) {
        let keep = RecordBatch::try_new(stored.clone(), cols).map_err(stop)?;
        return Ok(Split { keep, positions, quarantine: Vec::new() });
    }
    let keep: BooleanArray = bad.iter().map(|b| Some(b.is_none())).collect();
    let quarantine = (0..n)
        .filter_map(|r| {
            bad[r].take().map(|(reason, error)| QuarantineRecord {
                source: source.to_string(),
                position: positions[r],
                reason,
                error,
                raw: row_json(&batch, r).into_bytes(),
            })
        })
        .collect();
    let kept = (0..n).filter(|&r| keep.value(r)).map(|r| positions[r]).collect();
    let cols = cols.iter().map(|c| arrow_select::filter::filter(c, &keep)).collect::<Result<Vec<_>, _>>();
    let keep = RecordBatch::try_new(stored.clone(), cols.map_err(stop)?).map_err(stop)?;
    Ok(Split { keep, positions: kept, quarantine })
}

/// One row as a JSON object.
pub(super) fn row_json(batch: &RecordBatch, row: usize) -> String {
    let one = batch.slice(row, 1);
    let mut w = arrow_json::LineDelimitedWriter::new(Vec::new());
    match w.write(&one).and_then(|_| w.finish()) {
        Ok(()) => String::from_utf8_lossy(&w.into_inner()).trim_end().to_string(),
        Err(e) => format!("{{\"_unprintable\": \"{e}\"}}"),
    }
}

fn stop(e: arrow_schema::ArrowError) -> Error {
    Error::stop(e.to_string())
}
