//! An upsert's truncates (`write.truncate_when`, a replica's `op = 't'`): a
//! row where the condition holds is not written; instead every key stored or
//! staged with a lower sequence gets a delete row at the truncate's
//! sequence, staged with the write. The merge keeps a key's highest
//! sequence, so rows after the truncate stay and everything before it goes,
//! in the same commit as the input's position (a rerun finds nothing left
//! to delete and stages the same rows again).

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt32Array, new_null_array};
use arrow_schema::SchemaRef;
use ingesta_core::{DELETE_FLAG, Error, TableStore};

use super::target::Target;

/// The column of the transform's rows saying the row truncates.
pub const TRUNCATE_FLAG: &str = "__ingesta_truncate";

/// What a write's truncate rows asked so far.
pub struct Truncates {
    key: Vec<String>,
    sequence: String,
    /// The highest sequence of a truncate row (one value).
    at: Option<ArrayRef>,
    /// The key and sequence columns of the rows staged so far.
    staged: Vec<RecordBatch>,
}

fn arrow(e: arrow_schema::ArrowError) -> Error {
    Error::stop(format!("applying a truncate: {e}"))
}

impl Truncates {
    pub fn new(key: &[String], sequence: &str) -> Self {
        Self { key: key.to_vec(), sequence: sequence.to_string(), at: None, staged: Vec::new() }
    }

    /// The rows of `batch` that do not truncate (the truncates' highest
    /// sequence remembered, the others' keys noted).
    pub fn split(&mut self, batch: RecordBatch) -> Result<RecordBatch, Error> {
        let Some(flag) = batch.column_by_name(TRUNCATE_FLAG) else { return Ok(batch) };
        let flag = flag
            .as_any()
            .downcast_ref::<BooleanArray>()
            .cloned()
            .unwrap_or_else(|| BooleanArray::from(vec![false; batch.num_rows()]));
        let keep = arrow_select::filter::filter_record_batch(&batch, &arrow_arith::boolean::not(&flag).map_err(arrow)?)
            .map_err(arrow)?;
        if flag.true_count() > 0 {
            let truncates = arrow_select::filter::filter_record_batch(&batch, &flag).map_err(arrow)?;
            let seq = self.column(&truncates, &self.sequence)?;
            for i in 0..seq.len() {
                let candidate = seq.slice(i, 1);
                let higher = match &self.at {
                    None => true,
                    Some(at) => arrow_ord::cmp::gt(&candidate, at).map_err(arrow)?.value(0),
                };
                if higher {
                    self.at = Some(candidate);
                }
            }
        }
        let names: Vec<&String> = self.key.iter().chain([&self.sequence]).collect();
        let idx: Vec<usize> =
            names.iter().map(|n| keep.schema().index_of(n)).collect::<Result<_, _>>().map_err(arrow)?;
        self.staged.push(keep.project(&idx).map_err(arrow)?);
        Ok(keep)
    }

    fn column(&self, b: &RecordBatch, name: &str) -> Result<ArrayRef, Error> {
        b.column_by_name(name).cloned().ok_or_else(|| Error::stop(format!("a truncate needs the column `{name}`")))
    }

    /// The delete rows (in the table's write columns `stored`) for every
    /// key stored or staged before the last truncate, if there was one.
    pub async fn deletes(self, target: &Target, stored: &SchemaRef) -> Result<Option<RecordBatch>, Error> {
        let Some(at) = self.at.clone() else { return Ok(None) };
        let mut candidates = target.scan().await?;
        candidates.extend(self.staged.iter().cloned());
        let mut keys: Vec<Vec<ArrayRef>> = vec![Vec::new(); self.key.len()];
        for b in &candidates {
            let seq = self.column(b, &self.sequence)?;
            let at = arrow_cast::cast(&at, seq.data_type()).map_err(arrow)?;
            let before = arrow_ord::cmp::lt(&seq, &arrow_array::Scalar::new(at)).map_err(arrow)?;
            for (i, k) in self.key.iter().enumerate() {
                keys[i].push(arrow_select::filter::filter(&self.column(b, k)?, &before).map_err(arrow)?);
            }
        }
        let n: usize = keys.first().map_or(0, |k| k.iter().map(|a| a.len()).sum());
        if n == 0 {
            return Ok(None);
        }
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(stored.fields().len());
        for f in stored.fields() {
            let col = if let Some(i) = self.key.iter().position(|k| k == f.name()) {
                let parts: Vec<&dyn Array> = keys[i].iter().map(|a| a.as_ref()).collect();
                let all = arrow_select::concat::concat(&parts).map_err(arrow)?;
                arrow_cast::cast(&all, f.data_type()).map_err(arrow)?
            } else if f.name() == &self.sequence {
                let same = arrow_select::take::take(&at, &UInt32Array::from(vec![0u32; n]), None).map_err(arrow)?;
                arrow_cast::cast(&same, f.data_type()).map_err(arrow)?
            } else if f.name() == DELETE_FLAG {
                Arc::new(BooleanArray::from(vec![true; n]))
            } else {
                new_null_array(f.data_type(), n)
            };
            cols.push(col);
        }
        tracing::info!(rows = n, "a truncate deletes the rows before it");
        RecordBatch::try_new(stored.clone(), cols).map(Some).map_err(arrow)
    }
}
