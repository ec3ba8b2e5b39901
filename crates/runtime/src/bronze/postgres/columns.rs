//! The columns of a change-row table: what changed (`op`, `table`, `key`,
//! `before`, `after`, `unchanged`), where it is in the source's history
//! (`lsn`, `commit_lsn`, `ordinal`, and `seq`, the two as one sortable
//! number), when and in which transaction it committed, then the batch's.

use std::sync::Arc;

use arrow_array::{ArrayRef, Decimal128Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use ingesta_pgcdc::{Row, Tx};
use ingesta_sources::schema::{BATCH_ID, INGESTED_AT, utc_micros};

/// The column that orders changes: `commit_lsn × 2³² + ordinal`, the
/// `sequence` of a replica or history table.
pub const SEQ: &str = "seq";

pub fn change_schema() -> SchemaRef {
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    let int = |name: &str| Field::new(name, DataType::Int64, false);
    Arc::new(Schema::new(vec![
        text("op", false),
        text("table", false),
        text("key", false),
        text("before", true),
        text("after", true),
        text("unchanged", true),
        int("lsn"),
        int("commit_lsn"),
        int("ordinal"),
        Field::new(SEQ, DataType::Decimal128(38, 0), false),
        Field::new("commit_ts", utc_micros(), true),
        int("tx_id"),
        Field::new(INGESTED_AT, utc_micros(), true),
        Field::new(BATCH_ID, DataType::Utf8, true),
    ]))
}

/// A change row with its place in the source's history.
pub struct Placed {
    pub row: Row,
    pub lsn: u64,
    pub tx: Tx,
    pub ordinal: u32,
}

impl Placed {
    pub fn seq(&self) -> i128 {
        (i128::from(self.tx.commit_lsn.0) << 32) + i128::from(self.ordinal)
    }
}

pub fn assemble(schema: &SchemaRef, rows: &[Placed], ingested_at: i64, batch_id: &str) -> RecordBatch {
    let n = rows.len();
    let text =
        |f: &dyn Fn(&Placed) -> Option<&str>| -> ArrayRef { Arc::new(rows.iter().map(f).collect::<StringArray>()) };
    let int = |f: &dyn Fn(&Placed) -> i64| -> ArrayRef { Arc::new(rows.iter().map(f).collect::<Int64Array>()) };
    let seq = rows.iter().map(|p| Some(p.seq())).collect::<Decimal128Array>().with_precision_and_scale(38, 0);
    let commit_ts = rows.iter().map(|p| Some(p.tx.commit_ts_us)).collect::<TimestampMicrosecondArray>();
    let cols: Vec<ArrayRef> = vec![
        text(&|p| Some(p.row.op)),
        text(&|p| Some(p.row.table.as_str())),
        text(&|p| Some(p.row.key.as_str())),
        text(&|p| p.row.before.as_deref()),
        text(&|p| p.row.after.as_deref()),
        text(&|p| p.row.unchanged.as_deref()),
        int(&|p| p.lsn as i64),
        int(&|p| p.tx.commit_lsn.0 as i64),
        int(&|p| i64::from(p.ordinal)),
        Arc::new(seq.expect("precision 38 holds an LSN and an ordinal")),
        Arc::new(commit_ts.with_timezone("UTC")),
        int(&|p| i64::from(p.tx.xid)),
        Arc::new(TimestampMicrosecondArray::from(vec![ingested_at; n]).with_timezone("UTC")),
        Arc::new(StringArray::new_repeated(batch_id, n)),
    ];
    RecordBatch::try_new(schema.clone(), cols).expect("columns follow the change schema")
}
