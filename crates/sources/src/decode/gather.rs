//! Joining a chunk's typed parts into one batch, without the rows that went to
//! quarantine, in one copy: filtering each part and then concatenating them
//! copied every kept value twice (nearly every part of a large file holds a
//! bad row or two).

use arrow_array::{RecordBatch, make_array};
use arrow_buffer::BooleanBuffer;
use arrow_data::transform::{Capacities, MutableArrayData};
use arrow_schema::{DataType, SchemaRef};

/// A part of a chunk: its rows, and which of them are kept (all when `None`).
pub(crate) struct Part {
    pub rows: RecordBatch,
    pub keep: Option<BooleanBuffer>,
}

/// The kept rows of `parts`, in order, as one batch of `schema`.
pub(crate) fn gather(schema: &SchemaRef, parts: &[Part]) -> RecordBatch {
    // runs of kept rows: (part, start, end)
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        match &p.keep {
            None => runs.push((i, 0, p.rows.num_rows())),
            Some(keep) => runs.extend(keep.set_slices().map(|(s, e)| (i, s, e))),
        }
    }
    if runs.is_empty() {
        return RecordBatch::new_empty(schema.clone());
    }
    if let [(i, s, e)] = runs[..] {
        return parts[i].rows.slice(s, e - s);
    }
    let rows: usize = runs.iter().map(|(_, s, e)| e - s).sum();
    let columns = (0..schema.fields().len())
        .map(|c| {
            let data: Vec<_> = parts.iter().map(|p| p.rows.column(c).to_data()).collect();
            let capacities = match schema.field(c).data_type() {
                DataType::Utf8 | DataType::Binary => {
                    let bytes = data.iter().map(|d| d.buffers()[1].len()).sum();
                    Capacities::Binary(rows, Some(bytes))
                }
                _ => Capacities::Array(rows),
            };
            let mut out = MutableArrayData::with_capacities(data.iter().collect(), false, capacities);
            for &(i, s, e) in &runs {
                out.try_extend(i, s, e).expect("a chunk's values fit its offsets");
            }
            make_array(out.freeze())
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns).expect("parts follow the schema")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Array, Float64Array, StringArray};
    use arrow_schema::{Field, Schema};

    use super::*;

    fn part(names: &[Option<&str>], temps: &[Option<f64>], keep: Option<&[bool]>) -> Part {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("temp", DataType::Float64, true),
        ]));
        let rows = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(names.to_vec())), Arc::new(Float64Array::from(temps.to_vec()))],
        )
        .unwrap();
        Part { rows, keep: keep.map(BooleanBuffer::from) }
    }

    #[test]
    fn the_kept_rows_of_every_part_in_order() {
        let parts = [
            part(&[Some("a"), Some("bad"), None], &[Some(1.0), None, Some(3.0)], Some(&[true, false, true])),
            part(&[Some("d"), Some("e")], &[Some(4.0), Some(5.0)], None),
            part(&[Some("bad")], &[None], Some(&[false])),
            part(&[Some("f"), Some("gg")], &[None, Some(7.0)], Some(&[true, true])),
        ];
        let out = gather(&parts[0].rows.schema(), &parts);
        let names = out.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(names.iter().collect::<Vec<_>>(), [Some("a"), None, Some("d"), Some("e"), Some("f"), Some("gg")]);
        let temps = out.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(temps.iter().collect::<Vec<_>>(), [Some(1.0), Some(3.0), Some(4.0), Some(5.0), None, Some(7.0)]);
        out.column(0).to_data().validate_full().unwrap();
    }

    #[test]
    fn one_run_is_a_slice_and_none_is_empty() {
        let parts =
            [part(&[Some("bad"), Some("b"), Some("c")], &[None, Some(2.0), Some(3.0)], Some(&[false, true, true]))];
        let out = gather(&parts[0].rows.schema(), &parts);
        assert_eq!(out.num_rows(), 2);
        let none = [part(&[Some("bad")], &[None], Some(&[false]))];
        assert_eq!(gather(&none[0].rows.schema(), &none).num_rows(), 0);
    }
}
