//! Time-partitioned warehouse tables: `PARTITION BY RANGE` on a timestamp or
//! date column, one partition per day or month, created in the writer's
//! transaction before its rows are copied (for late rows too), and dropped
//! once older than the table's retention. Where the `timescaledb` extension
//! is installed the table becomes a hypertable instead (TimescaleDB makes its
//! own chunks; this path is not tested here: the extension is not in this
//! machine's package registries).

use std::time::Duration;

use arrow_array::{Array, RecordBatch, cast::AsArray, types};
use arrow_schema::DataType;
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use ingesta_core::{Error, Result};

use crate::connect::classify;
use crate::types::quote;

/// How a table is cut by time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimePartition {
    pub column: String,
    pub grain: Grain,
    /// Partitions whose range ended longer ago than this are dropped.
    pub retention: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grain {
    Day,
    Month,
}

/// How PostgreSQL partitions the table at (schema, table): `range` (native
/// partitions), `hypertable` (TimescaleDB), or not at all.
pub async fn kind(c: &tokio_postgres::Client, (schema, table): (&str, &str)) -> Result<Option<&'static str>> {
    let doing = |e| classify(e, &format!("reading how {schema}.{table} is partitioned"));
    let native = "SELECT 1 FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace \
                  WHERE n.nspname = $1 AND r.relname = $2 AND r.relkind = 'p'";
    if c.query_opt(native, &[&schema, &table]).await.map_err(doing)?.is_some() {
        return Ok(Some("range"));
    }
    if timescale(c).await? {
        let hyper = "SELECT 1 FROM timescaledb_information.hypertables \
                     WHERE hypertable_schema = $1 AND hypertable_name = $2";
        if c.query_opt(hyper, &[&schema, &table]).await.map_err(doing)?.is_some() {
            return Ok(Some("hypertable"));
        }
    }
    Ok(None)
}

/// Whether TimescaleDB is installed in the database.
pub async fn timescale(c: &tokio_postgres::Client) -> Result<bool> {
    let row = c
        .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'", &[])
        .await
        .map_err(|e| classify(e, "looking for TimescaleDB"))?;
    Ok(row.is_some())
}

/// The `CREATE TABLE` suffix of a natively partitioned table.
pub fn clause(p: &TimePartition) -> String {
    format!(" PARTITION BY RANGE ({})", quote(&p.column))
}

/// Makes `target` (`schema`, `table`) a hypertable (TimescaleDB).
pub async fn hypertable(c: &tokio_postgres::Client, schema: &str, table: &str, p: &TimePartition) -> Result<()> {
    let interval = match p.grain {
        Grain::Day => "1 day",
        Grain::Month => "1 month",
    };
    let sql = format!(
        "SELECT create_hypertable('{}.{}', '{}', chunk_time_interval => interval '{interval}')",
        quote(schema).replace('\'', "''"),
        quote(table).replace('\'', "''"),
        p.column.replace('\'', "''")
    );
    c.batch_execute(&sql).await.map_err(|e| classify(e, "making a TimescaleDB hypertable"))
}

/// The first day of the period holding `day`.
fn start(day: NaiveDate, grain: Grain) -> NaiveDate {
    match grain {
        Grain::Day => day,
        Grain::Month => day.with_day(1).expect("day 1 exists"),
    }
}

fn next(day: NaiveDate, grain: Grain) -> NaiveDate {
    match grain {
        Grain::Day => day.succ_opt().expect("a next day"),
        Grain::Month => day.checked_add_months(Months::new(1)).expect("a next month"),
    }
}

/// The partition's table name: `<table>_p20261101` (day) or `<table>_p202611` (month).
fn name(table: &str, from: NaiveDate, grain: Grain) -> String {
    match grain {
        Grain::Day => format!("{table}_p{}", from.format("%Y%m%d")),
        Grain::Month => format!("{table}_p{}", from.format("%Y%m")),
    }
}

/// The days `batch`'s partition column spans (none when all null).
fn span(batch: &RecordBatch, column: &str) -> Result<Option<(NaiveDate, NaiveDate)>> {
    let Some(col) = batch.column_by_name(column) else { return Ok(None) };
    let days: Vec<NaiveDate> = match col.data_type() {
        DataType::Timestamp(unit, _) => {
            let scale = match unit {
                arrow_schema::TimeUnit::Second => 1_000_000,
                arrow_schema::TimeUnit::Millisecond => 1_000,
                arrow_schema::TimeUnit::Microsecond => 1,
                arrow_schema::TimeUnit::Nanosecond => 0,
            };
            let values = arrow_cast::cast(col, &DataType::Int64).map_err(|e| Error::stop(e.to_string()))?;
            let values = values.as_primitive::<types::Int64Type>();
            let micros = |v: i64| if scale == 0 { v / 1_000 } else { v * scale };
            let (lo, hi) = (arrow_arith::aggregate::min(values), arrow_arith::aggregate::max(values));
            [lo, hi]
                .into_iter()
                .flatten()
                .filter_map(|v| DateTime::<Utc>::from_timestamp_micros(micros(v)).map(|t| t.date_naive()))
                .collect()
        }
        DataType::Date32 => {
            let values = col.as_primitive::<types::Date32Type>();
            let (lo, hi) = (arrow_arith::aggregate::min(values), arrow_arith::aggregate::max(values));
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("the epoch");
            [lo, hi]
                .into_iter()
                .flatten()
                .filter_map(|d| epoch.checked_add_signed(chrono::Duration::days(d.into())))
                .collect()
        }
        other => {
            return Err(Error::stop(format!(
                "partition column `{column}` is {other}; a warehouse table is partitioned by a timestamp or a date"
            )));
        }
    };
    Ok(days.iter().min().zip(days.iter().max()).map(|(a, b)| (*a, *b)))
}

/// Creates the partitions `batch`'s rows fall in, and the next one, in the
/// caller's transaction; `done` holds the periods this write ensured already
/// (a write's batches mostly fall in the same days).
pub async fn ensure(
    c: &tokio_postgres::Client,
    (schema, table): (&str, &str),
    p: &TimePartition,
    batch: &RecordBatch,
    done: &mut std::collections::BTreeSet<NaiveDate>,
) -> Result<()> {
    let Some((lo, hi)) = span(batch, &p.column)? else { return Ok(()) };
    let stop = next(next(start(hi, p.grain), p.grain), p.grain);
    let mut from = start(lo, p.grain);
    let mut sql = String::new();
    while from < stop {
        let to = next(from, p.grain);
        if !done.insert(from) {
            from = to;
            continue;
        }
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {}.{} PARTITION OF {}.{} FOR VALUES FROM ('{from}') TO ('{to}');",
            quote(schema),
            quote(&name(table, from, p.grain)),
            quote(schema),
            quote(table)
        ));
        from = to;
    }
    if sql.is_empty() {
        return Ok(());
    }
    c.batch_execute(&sql).await.map_err(|e| classify(e, &format!("creating the partitions of {schema}.{table}")))
}

/// Drops the partitions whose range ended before now − retention; the number dropped.
pub async fn drop_expired(
    c: &tokio_postgres::Client,
    (schema, table): (&str, &str),
    p: &TimePartition,
) -> Result<usize> {
    let Some(keep) = p.retention else { return Ok(0) };
    let cutoff = (Utc::now() - chrono::Duration::from_std(keep).unwrap_or_default()).date_naive();
    let rows = c
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             JOIN pg_class parent ON parent.oid = i.inhparent JOIN pg_namespace n ON n.oid = parent.relnamespace \
             WHERE n.nspname = $1 AND parent.relname = $2",
            &[&schema, &table],
        )
        .await
        .map_err(|e| classify(e, &format!("listing the partitions of {schema}.{table}")))?;
    let prefix = format!("{table}_p");
    let mut dropped = 0;
    for r in rows {
        let part: String = r.get(0);
        let Some(stamp) = part.strip_prefix(&prefix) else { continue };
        let from = match p.grain {
            Grain::Day => NaiveDate::parse_from_str(stamp, "%Y%m%d").ok(),
            Grain::Month => NaiveDate::parse_from_str(&format!("{stamp}01"), "%Y%m%d").ok(),
        };
        let Some(from) = from else { continue };
        if next(from, p.grain) <= cutoff {
            let sql = format!("DROP TABLE {}.{}", quote(schema), quote(&part));
            c.batch_execute(&sql).await.map_err(|e| classify(e, &format!("dropping partition {part}")))?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_names() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        assert_eq!(next(d, Grain::Day), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(start(d, Grain::Month), NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        assert_eq!(next(start(d, Grain::Month), Grain::Month), NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(name("fact", d, Grain::Day), "fact_p20261130");
        assert_eq!(name("fact", start(d, Grain::Month), Grain::Month), "fact_p202611");
    }
}
