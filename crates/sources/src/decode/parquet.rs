//! Parquet files, read batch by batch in their own types and converted to the
//! table's columns. Positions are row numbers from 1; a quarantined row keeps
//! its values as a JSON object.

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::ChunkReader;

use super::{Chunk, Collector, ReadCtx, Stopped};

pub fn read_parquet<R: ChunkReader + 'static>(
    file: R,
    ctx: &ReadCtx,
    emit: &mut dyn FnMut(Chunk) -> Result<(), Stopped>,
) -> Result<(), Stopped> {
    let mut col = Collector::new(ctx, emit);
    let reader = match ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(ctx.chunk_rows.clamp(1, 1 << 16)).build())
    {
        Ok(r) => r,
        Err(e) => return col.finish(Some(format!("not a readable Parquet file: {e}"))),
    };
    let mut position: i64 = 0;
    for batch in reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => return col.finish(Some(format!("cannot read past row {position}: {e}"))),
        };
        let first = position + 1;
        position += batch.num_rows() as i64;
        if position <= ctx.skip_until {
            continue;
        }
        let skip = (ctx.skip_until - first + 1).max(0) as usize;
        let batch = batch.slice(skip, batch.num_rows() - skip);
        col.bytes += batch.get_array_memory_size() as u64;
        let positions: Vec<i64> = (first + skip as i64..=position).collect();
        col.flush(&batch, &positions, &|row| row_json(&batch, row), false)?;
    }
    col.finish(None)
}

/// One row as a JSON object, the raw form of a quarantined Parquet row.
pub(crate) fn row_json(batch: &RecordBatch, row: usize) -> Vec<u8> {
    let mut w = arrow_json::LineDelimitedWriter::new(Vec::new());
    let _ = w.write(&batch.slice(row, 1));
    let _ = w.finish();
    let mut out = w.into_inner();
    if out.last() == Some(&b'\n') {
        out.pop();
    }
    out
}
