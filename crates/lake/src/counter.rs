//! A counter merge of a batch into a few stored files, done with Arrow
//! kernels: the stored rows of the files, each merged with the batch's row
//! of the same key when there is one, then the batch's rows of new keys.
//! The same result as the SQL full join of `merge.rs` for the measures it
//! takes (sum, min, max, avg of two sums, last); planning and running that
//! join cost a small append's gold table more than its few thousand rows
//! (decision 0016). Sets of distinct values, and tables keeping a change
//! feed, are merged by the SQL.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, UInt32Array};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use arrow_select::zip::zip;
use ingesta_core::Measure;

/// Whether [`merge`] takes these measures.
pub(crate) fn takes(measures: &[(String, Measure)]) -> bool {
    !measures.iter().any(|(_, m)| matches!(m, Measure::Set | Measure::CountDistinct { .. }))
}

/// `stored` (rows of the table) merged with `batch` (one row per key, the
/// table's columns), by `key`: a stored row whose key the batch holds gets
/// its measures combined, the others are kept, and the batch's new keys are
/// added after them.
pub(crate) fn merge(
    schema: &SchemaRef,
    key: &[String],
    measures: &[(String, Measure)],
    stored: &[RecordBatch],
    batch: &[RecordBatch],
) -> Result<RecordBatch, ArrowError> {
    let t = arrow_select::concat::concat_batches(schema, stored)?;
    let s = arrow_select::concat::concat_batches(schema, batch)?;
    let keys = |b: &RecordBatch| -> Result<Vec<ArrayRef>, ArrowError> {
        key.iter().map(|k| Ok(b.column(schema.index_of(k)?).clone())).collect()
    };
    let fields = key.iter().map(|k| Ok(arrow_row::SortField::new(schema.field_with_name(k)?.data_type().clone())));
    let converter = arrow_row::RowConverter::new(fields.collect::<Result<_, ArrowError>>()?)?;
    let (t_keys, s_keys) = (converter.convert_columns(&keys(&t)?)?, converter.convert_columns(&keys(&s)?)?);
    let at: HashMap<_, u32> = s_keys.iter().enumerate().map(|(j, r)| (r, j as u32)).collect();
    // for each stored row, the batch's row of its key (null: none)
    let matched: UInt32Array = t_keys.iter().map(|r| at.get(&r).copied()).collect();
    let mut hit = vec![false; s.num_rows()];
    matched.iter().flatten().for_each(|j| hit[j as usize] = true);
    let added: UInt32Array = (0..s.num_rows() as u32).filter(|&j| !hit[j as usize]).collect();
    let is_matched = BooleanArray::from(matched.iter().map(|m| Some(m.is_some())).collect::<Vec<_>>());

    let aligned = |name: &str| -> Result<(ArrayRef, ArrayRef), ArrowError> {
        let i = schema.index_of(name)?;
        Ok((t.column(i).clone(), arrow_select::take::take(s.column(i), &matched, None)?))
    };
    let columns = schema.fields().iter().map(|f| {
        let (old, new) = aligned(f.name())?;
        let kept = if key.contains(f.name()) {
            old.clone()
        } else {
            let measure = measures.iter().find(|(m, _)| m == f.name()).map(|(_, m)| m);
            let combined = match measure {
                Some(Measure::Sum) => sum(&old, &new)?,
                Some(Measure::Min) => pick(&old, &new, arrow_ord::cmp::lt(&new, &old)?)?,
                Some(Measure::Max) => pick(&old, &new, arrow_ord::cmp::gt(&new, &old)?)?,
                Some(Measure::Avg { sum, count }) => ratio(aligned(sum)?, aligned(count)?)?,
                Some(Measure::Last) | None => new.clone(),
                Some(Measure::Set | Measure::CountDistinct { .. }) => {
                    return Err(ArrowError::InvalidArgumentError("sets are merged by SQL".into()));
                }
            };
            let combined = cast(&combined, f.data_type())?;
            zip(&is_matched, &combined, &old)?
        };
        let new_keys = arrow_select::take::take(s.column(schema.index_of(f.name())?), &added, None)?;
        arrow_select::concat::concat(&[kept.as_ref(), new_keys.as_ref()])
    });
    RecordBatch::try_new(schema.clone(), columns.collect::<Result<_, _>>()?)
}

/// A sum of two values; a null side counts as absent.
fn sum(old: &ArrayRef, new: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    // a decimal sum widens its precision: back to the column's type
    let both = cast(&arrow_arith::numeric::add(old, new)?, old.data_type())?;
    let old_or_both = zip(&arrow_arith::boolean::is_null(new)?, old, &both)?;
    zip(&arrow_arith::boolean::is_null(old)?, new, &old_or_both)
}

/// The new value where the stored one is null or `better` holds, else the stored one.
fn pick(old: &ArrayRef, new: &ArrayRef, better: BooleanArray) -> Result<ArrayRef, ArrowError> {
    // a comparison with a null side is not better
    let better = match better.null_count() {
        0 => better,
        _ => arrow_select::filter::prep_null_mask_filter(&better),
    };
    let take_new = arrow_arith::boolean::or(&arrow_arith::boolean::is_null(old)?, &better)?;
    zip(&take_new, new, old)
}

/// `(sum + sum) / (count + count)` as doubles, a null counted as 0.
fn ratio(sums: (ArrayRef, ArrayRef), counts: (ArrayRef, ArrayRef)) -> Result<ArrayRef, ArrowError> {
    let doubles = |(a, b): (ArrayRef, ArrayRef)| -> Result<Vec<f64>, ArrowError> {
        let (a, b) = (cast(&a, &DataType::Float64)?, cast(&b, &DataType::Float64)?);
        let (a, b) = (a.as_primitive::<Float64Type>(), b.as_primitive::<Float64Type>());
        let value =
            |x: &arrow_array::PrimitiveArray<Float64Type>, r: usize| if x.is_null(r) { 0.0 } else { x.value(r) };
        Ok((0..a.len()).map(|r| value(a, r) + value(b, r)).collect())
    };
    let (s, n) = (doubles(sums)?, doubles(counts)?);
    Ok(Arc::new(Float64Array::from(s.iter().zip(&n).map(|(s, n)| s / n).collect::<Vec<_>>())))
}

/// `a` as `ty`; a value that does not fit is an error, not a null.
fn cast(a: &ArrayRef, ty: &DataType) -> Result<ArrayRef, ArrowError> {
    if a.data_type() == ty {
        return Ok(a.clone());
    }
    let opts = arrow_cast::CastOptions { safe: false, ..Default::default() };
    arrow_cast::cast_with_options(a, ty, &opts)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Decimal128Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use ingesta_core::Measure;

    #[test]
    fn decimal_sums_keep_their_column_type() {
        let ty = DataType::Decimal128(35, 2);
        let schema =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true), Field::new("n", ty.clone(), true)]));
        let rows = |keys: Vec<&str>, n: Vec<i128>| {
            let n = Decimal128Array::from(n).with_precision_and_scale(35, 2).unwrap();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(keys)), Arc::new(n)]).unwrap()
        };
        let stored = rows(vec!["a", "b"], vec![150, 200]);
        let batch = rows(vec!["a", "c"], vec![25, 5]);
        let merged = super::merge(&schema, &["k".into()], &[("n".into(), Measure::Sum)], &[stored], &[batch]).unwrap();
        assert_eq!(merged.column(1).data_type(), &ty);
        let n = merged.column(1).as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(n.values().to_vec(), vec![175, 200, 5], "a: 1.50 + 0.25; b kept; c added");
    }
}
