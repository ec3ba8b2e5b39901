//! Incremental extraction by a watermark column: the query's rows whose
//! watermark is above a position, in watermark order, read through a cursor
//! in chunks (text format, so the values are typed into JSON exactly as the
//! change stream types them), and the query's keys for a delete sweep.

use ingesta_core::{Error, Result};
use ingesta_warehouse::classify;
use tokio_postgres::Client;

use crate::rows::Object;
use crate::slot::ident;

/// The query's columns, and how its watermark becomes a position.
#[derive(Debug, Clone)]
pub struct Described {
    pub query: String,
    pub columns: Vec<(String, u32)>,
    pub key: Vec<usize>,
    pub watermark: usize,
    /// The watermark is a time: positions are microseconds since the epoch.
    pub time: bool,
}

/// One row read: its key and row as JSON objects, its watermark position.
#[derive(Debug, Clone)]
pub struct Extracted {
    pub key: String,
    pub after: String,
    pub position: i64,
}

/// Reads the query's columns (nothing is fetched).
pub async fn describe(c: &Client, query: &str, watermark: &str, key: &[String]) -> Result<Described> {
    let st = c.prepare(query).await.map_err(|e| classify(e, "preparing the source query"))?;
    let columns: Vec<(String, u32)> = st.columns().iter().map(|c| (c.name().to_string(), c.type_().oid())).collect();
    let find = |name: &str| {
        columns.iter().position(|(n, _)| n == name).ok_or_else(|| {
            let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
            Error::stop(format!("the source query has no column `{name}` (it has: {})", names.join(", ")))
        })
    };
    let wm = find(watermark)?;
    let time = match columns[wm].1 {
        20 | 21 | 23 => false,
        1082 | 1114 | 1184 => true,
        oid => {
            return Err(Error::stop(format!(
                "the watermark `{watermark}` is of type {oid}; it must be an integer, a date or a timestamp"
            )));
        }
    };
    let key = key.iter().map(|k| find(k)).collect::<Result<Vec<_>>>()?;
    Ok(Described { query: query.to_string(), columns, key, watermark: wm, time })
}

impl Described {
    /// The watermark as a position (an integer, or microseconds since the epoch).
    fn position_sql(&self) -> String {
        let w = format!("q.{}", ident(&self.columns[self.watermark].0));
        match self.time {
            true => format!("(extract(epoch FROM {w}::timestamptz) * 1000000)::int8"),
            false => format!("{w}::int8"),
        }
    }

    /// Reads the rows whose watermark position is above `low`, in order,
    /// `chunk` at a time, each chunk handed to `each`.
    pub async fn read_after(
        &self,
        c: &mut Client,
        low: i64,
        chunk: usize,
        mut each: impl AsyncFnMut(Vec<Extracted>) -> Result<()>,
    ) -> Result<u64> {
        let doing = |e| classify(e, "reading the source query");
        let tx = c.transaction().await.map_err(doing)?;
        let pos = self.position_sql();
        let sql = format!(
            "DECLARE ingesta_extract NO SCROLL CURSOR FOR SELECT q.*, {pos} FROM ({}) q WHERE {pos} > {low} ORDER BY {pos}",
            self.query
        );
        tx.batch_execute(&sql).await.map_err(doing)?;
        let mut total = 0u64;
        loop {
            let msgs = tx.simple_query(&format!("FETCH {chunk} FROM ingesta_extract")).await.map_err(doing)?;
            let rows: Vec<Extracted> = msgs
                .iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(self.extracted(r)),
                    _ => None,
                })
                .collect::<Result<_>>()?;
            if rows.is_empty() {
                break;
            }
            total += rows.len() as u64;
            each(rows).await?;
        }
        tx.commit().await.map_err(doing)?;
        Ok(total)
    }

    fn extracted(&self, r: &tokio_postgres::SimpleQueryRow) -> Result<Extracted> {
        let n = self.columns.len();
        let position = r.get(n).and_then(|p| p.parse().ok()).ok_or_else(|| {
            Error::stop(format!("a row of the source query has no `{}`", self.columns[self.watermark].0))
        })?;
        let key = self.object(self.key.iter().map(|&i| (i, r.get(i))));
        Ok(Extracted { key, after: self.object((0..n).map(|i| (i, r.get(i)))), position })
    }

    /// A JSON object of the columns `i` and their text values.
    fn object<'a>(&self, values: impl Iterator<Item = (usize, Option<&'a str>)>) -> String {
        let mut out = Object::with_capacity(128);
        values.for_each(|(i, v)| out.field(&self.columns[i].0, self.columns[i].1, v));
        out.finish()
    }

    /// The key of every row the query gives now (JSON objects, as `key`).
    pub async fn keys(&self, c: &Client) -> Result<Vec<String>> {
        let cols: Vec<String> = self.key.iter().map(|&i| format!("q.{}", ident(&self.columns[i].0))).collect();
        let sql = format!("SELECT {} FROM ({}) q", cols.join(", "), self.query);
        let msgs = c.simple_query(&sql).await.map_err(|e| classify(e, "sweeping the source query's keys"))?;
        let keys = msgs.iter().filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(self.object(self.key.iter().enumerate().map(|(j, &i)| (i, r.get(j)))))
            }
            _ => None,
        });
        Ok(keys.collect())
    }
}
