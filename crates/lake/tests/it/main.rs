//! The lake honours the table contract: rows and positions land together,
//! positions survive reopening, a commit may carry only positions, and the
//! key-based modes (insert-if-absent, upsert, delete, counter merge) hold.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use ingesta_core::{TableStore, WriteMode};
use ingesta_lake::{Lake, LakeTable};
use ingesta_testkit::Rng;

mod changes;
mod contract;
mod merge;
mod read;
mod table;

fn schema() -> Schema {
    Schema::new(vec![Field::new("id", DataType::Utf8, true), Field::new("n", DataType::Int64, true)])
}

fn batch(ids: &[&str]) -> RecordBatch {
    let n: Vec<i64> = (0..ids.len() as i64).collect();
    RecordBatch::try_new(
        Arc::new(schema()),
        vec![Arc::new(StringArray::from(ids.to_vec())), Arc::new(Int64Array::from(n))],
    )
    .unwrap()
}

/// A lake in a temporary folder (kept while the folder lives).
fn temp_lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::new(dir.path().join("lake").to_str().unwrap(), Default::default()).unwrap();
    (dir, lake)
}

async fn table(lake: &Lake) -> LakeTable {
    LakeTable::open_or_create(lake, "t", &lake.table_url("t"), &schema(), &[], "test").await.unwrap()
}

async fn append(t: &mut LakeTable, ids: &[&str]) {
    let mut s = t.begin(&WriteMode::Append).unwrap();
    t.stage(&mut s, batch(ids)).await.unwrap();
    t.commit(s, vec![], vec![]).await.unwrap();
}

/// Rows of (id, n) read back sorted, through DataFusion over the table.
async fn rows(t: &LakeTable) -> Vec<(String, i64)> {
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.provider().await.unwrap()).unwrap();
    let batches = ctx.sql("SELECT id, n FROM t ORDER BY id").await.unwrap().collect().await.unwrap();
    let mut out = Vec::new();
    for b in batches {
        let ids = arrow_cast::cast(b.column(0), &DataType::Utf8).unwrap();
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        let ns = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        out.extend((0..b.num_rows()).map(|i| (ids.value(i).to_string(), ns.value(i))));
    }
    out
}

fn pairs(rows: &[(&str, i64)]) -> RecordBatch {
    RecordBatch::try_new(
        Arc::new(schema()),
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

async fn write(t: &mut LakeTable, mode: &WriteMode, batches: Vec<RecordBatch>, position: i64) {
    let mut s = t.begin(mode).unwrap();
    for b in batches {
        t.stage(&mut s, b).await.unwrap();
    }
    t.commit(s, vec![("input".into(), position)], vec![]).await.unwrap();
}

/// Commits positions (round * 10) for every (round + 1)-th input.
async fn commit_round(t: &mut LakeTable, ids: &[String], round: i64) {
    let positions: Vec<(String, i64)> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| (*i as i64) % (round + 1) == 0)
        .map(|(_, id)| (id.clone(), round * 10))
        .collect();
    let s = t.begin(&WriteMode::Append).unwrap();
    t.commit(s, positions, vec![]).await.unwrap();
}

async fn check_positions(t: &LakeTable, ids: &[String]) {
    let all = t.positions().await.unwrap().expect("the classic layout is read");
    let mut known = 0;
    for id in ids {
        let one = t.position(id).await.unwrap();
        known += usize::from(one.is_some());
        assert_eq!(all.get(id).copied(), one, "{id}");
    }
    assert_eq!(all.len(), known, "no other ids");
}

/// Rows of (id, a set of values): the set as a list column, the count as
/// `count_distinct(seen)`; an empty set is null.
fn sets(rows: &[(&str, &[&str])]) -> RecordBatch {
    use arrow_array::builder::{ListBuilder, StringBuilder};
    let mut seen = ListBuilder::new(StringBuilder::new());
    for (_, values) in rows {
        for v in *values {
            seen.values().append_value(v);
        }
        seen.append(!values.is_empty());
    }
    RecordBatch::try_new(
        Arc::new(set_schema()),
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(seen.finish()),
            Arc::new(Int64Array::from(vec![0; rows.len()])),
        ],
    )
    .unwrap()
}

fn set_schema() -> Schema {
    let item = Arc::new(Field::new("item", DataType::Utf8, true));
    Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("seen", DataType::List(item), true),
        Field::new("n", DataType::Int64, true),
    ])
}

/// The rows of a table's change feed after `after`: (id, n, change type, version), sorted.
async fn changes(t: &LakeTable, after: i64) -> Vec<(String, i64, String, u64)> {
    let range = t.changed_since(after, None, u64::MAX).await.unwrap();
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("c", t.changes_provider(&range).await.unwrap()).unwrap();
    let sql = "SELECT id, n, _change_type, _commit_version FROM c ORDER BY id";
    let mut out = Vec::new();
    for b in ctx.sql(sql).await.unwrap().collect().await.unwrap() {
        let text = |i: usize| arrow_cast::cast(b.column(i), &DataType::Utf8).unwrap();
        let (ids, kinds) = (text(0), text(2));
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        let kinds = kinds.as_any().downcast_ref::<StringArray>().unwrap();
        let ns = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
        let vs = b.column(3).as_any().downcast_ref::<arrow_array::UInt64Array>().unwrap();
        out.extend(
            (0..b.num_rows()).map(|i| (ids.value(i).to_string(), ns.value(i), kinds.value(i).to_string(), vs.value(i))),
        );
    }
    out.sort_by(|a, b| (a.3, &a.0, &a.2).cmp(&(b.3, &b.0, &b.2)));
    out
}

/// (id, n) rows with the upsert's delete flag.
fn flagged(rows: &[(&str, i64, bool)]) -> RecordBatch {
    let mut fields = schema().fields().to_vec();
    fields.push(Arc::new(Field::new(ingesta_core::DELETE_FLAG, DataType::Boolean, true)));
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(arrow_array::BooleanArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>())),
        ],
    )
    .unwrap()
}

/// (id, n, x, day) rows of a table partitioned by `day`.
fn daily(rows: &[(&str, i64, &str)]) -> RecordBatch {
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        Field::new("day", DataType::Date32, true),
    ]);
    let days = StringArray::from(rows.iter().map(|r| r.2).collect::<Vec<_>>());
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from(rows.iter().map(|r| r.0).collect::<Vec<_>>())),
            Arc::new(Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>())),
            Arc::new(arrow_array::Float64Array::from(rows.iter().map(|r| r.1 as f64 / 2.0).collect::<Vec<_>>())),
            arrow_cast::cast(&days, &DataType::Date32).unwrap(),
        ],
    )
    .unwrap()
}

/// The rows of `t` as sorted text lines, through DataFusion.
async fn lines(t: &LakeTable, sql: &str) -> Vec<String> {
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.provider().await.unwrap()).unwrap();
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out: Vec<String> = arrow_cast::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
        .lines()
        .filter(|l| l.starts_with("| "))
        .skip(1)
        .map(|l| l.split('|').map(str::trim).filter(|c| !c.is_empty()).collect::<Vec<_>>().join(","))
        .collect();
    out.sort();
    out
}

fn measures_schema() -> Schema {
    Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
        Field::new("total", DataType::Float64, true),
        Field::new("lo", DataType::Float64, true),
        Field::new("hi", DataType::Float64, true),
        Field::new("mean", DataType::Float64, true),
        Field::new("last", DataType::Utf8, true),
    ])
}

/// Random rows of [`measures_schema`]: keys from a few (and null), some values null.
fn measure_rows(rng: &mut Rng, rows: usize) -> RecordBatch {
    use arrow_array::Float64Array;
    let maybe = |v: f64, rng: &mut Rng| (rng.below(5) > 0).then_some(v);
    let ids: Vec<Option<String>> =
        (0..rows).map(|_| Some(rng.below(7)).filter(|k| *k < 6).map(|k| format!("k{k}"))).collect();
    let n: Vec<Option<i64>> = (0..rows).map(|_| Some(1 + rng.below(5) as i64)).collect();
    let float = |rng: &mut Rng| rng.below(2001) as f64 / 8.0 - 125.0;
    let total: Vec<Option<f64>> = (0..rows).map(|_| maybe(float(rng), rng)).collect();
    let lo: Vec<Option<f64>> = (0..rows).map(|_| maybe(float(rng), rng)).collect();
    let hi: Vec<Option<f64>> = (0..rows).map(|_| maybe(float(rng), rng)).collect();
    let mean: Vec<Option<f64>> =
        total.iter().zip(&n).map(|(t, n)| Some(t.unwrap_or(0.0) / n.unwrap() as f64)).collect();
    let last: Vec<Option<String>> = (0..rows).map(|_| Some(format!("v{}", rng.below(100)))).collect();
    RecordBatch::try_new(
        Arc::new(measures_schema()),
        vec![
            Arc::new(StringArray::from(ids)),
            Arc::new(Int64Array::from(n)),
            Arc::new(Float64Array::from(total)),
            Arc::new(Float64Array::from(lo)),
            Arc::new(Float64Array::from(hi)),
            Arc::new(Float64Array::from(mean)),
            Arc::new(StringArray::from(last)),
        ],
    )
    .unwrap()
}

/// A table's rows sorted by key (null first).
async fn all_rows(t: &LakeTable) -> RecordBatch {
    let ctx = ingesta_lake::datafusion::prelude::SessionContext::new();
    ctx.register_table("t", t.provider().await.unwrap()).unwrap();
    let batches = ctx.sql("SELECT * FROM t ORDER BY id NULLS FIRST").await.unwrap().collect().await.unwrap();
    let schema = Arc::new(measures_schema());
    let batches: Vec<RecordBatch> = batches
        .iter()
        .map(|b| {
            let columns = schema
                .fields()
                .iter()
                .map(|f| arrow_cast::cast(b.column_by_name(f.name()).unwrap(), f.data_type()).unwrap());
            RecordBatch::try_new(schema.clone(), columns.collect()).unwrap()
        })
        .collect();
    arrow_select::concat::concat_batches(&schema, &batches).unwrap()
}

/// The table folder `table` of the lake at `dir` copied under `to` and opened
/// there: its files were not written by this process at that place, so they
/// are read from the disk.
async fn elsewhere(dir: &std::path::Path, table: &str, to: &std::path::Path) -> LakeTable {
    fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            match e.file_type().unwrap().is_dir() {
                true => copy(&e.path(), &to.join(e.file_name())),
                false => drop(std::fs::copy(e.path(), to.join(e.file_name())).unwrap()),
            }
        }
    }
    copy(&dir.join(table), &to.join(table));
    let lake = Lake::new(to.to_str().unwrap(), Default::default()).unwrap();
    LakeTable::open(&lake, table, &lake.table_url(table)).await.unwrap().unwrap()
}

/// Overwrites every data file of `table` with zeros of the same length.
fn spoil(dir: &std::path::Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.ends_with("_delta_log") {
            spoil(&p);
        } else if p.extension().is_some_and(|x| x == "parquet") {
            let n = std::fs::metadata(&p).unwrap().len() as usize;
            std::fs::write(&p, vec![0u8; n]).unwrap();
        }
    }
}

/// `files` of `t` read back, as sorted text lines of (file's day, id, n, x, day).
async fn file_lines(t: &LakeTable, files: &[ingesta_lake::AddedFile]) -> Result<Vec<String>, ingesta_lake::LakeError> {
    let (_, read) = t.read_files(files, None).await?;
    let mut out = Vec::new();
    for (f, batches) in files.iter().zip(read) {
        let day = f.partition_values["day"].clone().unwrap();
        for b in batches {
            for r in 0..b.num_rows() {
                let cols: Vec<String> =
                    b.columns().iter().map(|c| arrow_cast::display::array_value_to_string(c, r).unwrap()).collect();
                out.push(format!("{day}:{}", cols.join(",")));
            }
        }
    }
    out.sort();
    Ok(out)
}
