//! The initial copy: the slot is created with an exported snapshot, each
//! table is copied (`COPY … TO STDOUT`, text format) in a transaction that
//! imports that snapshot, so the copy holds exactly what committed before the
//! slot's consistent point and the stream holds everything after it.

use futures::StreamExt;
use ingesta_core::{Error, Result};
use ingesta_warehouse::classify;
use pgwire_replication::{ReplicationClient, ReplicationConfig};
use tokio_postgres::Client;

use crate::decode::Column;
use crate::decode::Relation;
use crate::rows::{Object, Row};
use crate::slot::{ident, qualified};
use crate::{Lsn, wire};

/// A slot just created, whose snapshot stays importable while this session
/// is open.
pub struct Exported {
    _session: ReplicationClient,
    pub consistent_point: Lsn,
    pub snapshot: String,
}

/// Creates the logical slot on a replication session, exporting its snapshot.
pub async fn create_slot(cfg: ReplicationConfig) -> Result<Exported> {
    let slot = cfg.slot.clone();
    let mut session =
        ReplicationClient::connect_gated(cfg).await.map_err(|e| wire(e, "opening a replication session"))?;
    let sql = format!("CREATE_REPLICATION_SLOT {} LOGICAL pgoutput (SNAPSHOT 'export')", ident(&slot));
    let rows =
        session.simple_query(&sql).await.map_err(|e| wire(e, &format!("creating the replication slot `{slot}`")))?;
    let text = |i: usize| -> Option<String> {
        rows.first().and_then(|r| r.get(i)).and_then(|v| v.as_ref()).map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let (Some(point), Some(snapshot)) = (text(1), text(2)) else {
        return Err(Error::stop(format!("creating the slot `{slot}` returned no consistent point and snapshot")));
    };
    let consistent_point =
        Lsn::parse(&point).map_err(|_| Error::stop(format!("the slot's consistent point `{point}` is not an LSN")))?;
    tracing::info!(slot, %consistent_point, "created the replication slot");
    Ok(Exported { _session: session, consistent_point, snapshot })
}

/// A part of a table to copy: all of it, or a range of its integer key.
#[derive(Debug, Clone)]
pub struct Part {
    pub table: Relation,
    /// `key > low AND key <= high`, either end open.
    pub range: Option<(String, Option<i64>, Option<i64>)>,
}

/// Tables of more rows than this (by the planner's estimate) with a
/// one-column integer key are copied in `parts` ranges at once.
const RANGED_ROWS: f64 = 1_000_000.0;

/// The parts to copy `table` in: key ranges of about equal size when it is
/// large and keyed by one integer column, else the whole table.
pub async fn parts(c: &Client, table: Relation, parts: usize) -> Result<Vec<Part>> {
    let keys: Vec<&crate::decode::Column> = table.columns.iter().filter(|c| c.key).collect();
    let integer = matches!(keys.as_slice(), [k] if [20, 21, 23].contains(&k.type_oid));
    if parts < 2 || !integer {
        return Ok(vec![Part { table, range: None }]);
    }
    let name = table.qualified();
    let key = keys[0].name.clone();
    let sql = format!(
        "SELECT reltuples::float8, (SELECT min({k})::int8 FROM {t}), (SELECT max({k})::int8 FROM {t}) \
         FROM pg_class WHERE oid = $1::text::regclass",
        k = ident(&key),
        t = qualified(&name)
    );
    let row = c.query_one(&sql, &[&qualified(&name)]).await.map_err(|e| classify(e, &format!("sizing `{name}`")))?;
    let (rows, lo, hi): (f64, Option<i64>, Option<i64>) = (row.get(0), row.get(1), row.get(2));
    let (Some(lo), Some(hi)) = (lo, hi) else { return Ok(vec![Part { table, range: None }]) };
    if rows < RANGED_ROWS || hi - lo < parts as i64 {
        return Ok(vec![Part { table, range: None }]);
    }
    // bounds read outside the snapshot: the first and last ranges are open,
    // so rows beyond them (inserted since) are still copied once
    let step = (hi - lo) / parts as i64;
    Ok((0..parts)
        .map(|i| {
            let low = (i > 0).then(|| lo + step * i as i64);
            let high = (i + 1 < parts).then(|| lo + step * (i as i64 + 1));
            Part { table: table.clone(), range: Some((key.clone(), low, high)) }
        })
        .collect())
}

/// Copies `part` as it was in `snapshot`, sending change rows (`r`) in
/// chunks of `chunk` rows; the rows copied.
pub async fn copy_part(
    c: &Client,
    snapshot: &str,
    part: &Part,
    chunk: usize,
    out: &tokio::sync::mpsc::Sender<Vec<Row>>,
) -> Result<u64> {
    let table = &part.table;
    let name = table.qualified();
    let begin = format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
        snapshot.replace('\'', "''")
    );
    c.batch_execute(&begin)
        .await
        .map_err(|e| classify(e, &format!("importing the slot's snapshot to copy `{name}`")))?;
    let cols: Vec<String> = table.columns.iter().map(|c| ident(&c.name)).collect();
    let sql = match &part.range {
        None => format!("COPY {} ({}) TO STDOUT", qualified(&name), cols.join(", ")),
        Some((key, low, high)) => {
            let mut cond = vec!["TRUE".to_string()];
            cond.extend(low.map(|l| format!("{} > {l}", ident(key))));
            cond.extend(high.map(|h| format!("{} <= {h}", ident(key))));
            let from = format!("SELECT {} FROM {} WHERE {}", cols.join(", "), qualified(&name), cond.join(" AND "));
            format!("COPY ({from}) TO STDOUT")
        }
    };
    let stream = c.copy_out(&sql).await.map_err(|e| classify(e, &format!("copying `{name}`")))?;
    futures::pin_mut!(stream);
    let (mut rows, mut total, mut rest) = (Vec::with_capacity(chunk), 0u64, Vec::<u8>::new());
    while let Some(bytes) = stream.next().await {
        let bytes = bytes.map_err(|e| classify(e, &format!("copying `{name}`")))?;
        rest.extend_from_slice(&bytes);
        let Some(end) = memchr_last(&rest) else { continue };
        for line in rest[..end].split(|&b| b == b'\n') {
            let row = line_row(&name, &table.columns, line).ok_or_else(|| {
                Error::stop(format!("copying `{name}`: a line of the copy does not match the columns"))
            })?;
            rows.push(row);
            if rows.len() >= chunk {
                total += rows.len() as u64;
                let full = std::mem::replace(&mut rows, Vec::with_capacity(chunk));
                out.send(full).await.map_err(|_| Error::stop("the initial copy's writer stopped"))?;
            }
        }
        rest.drain(..=end);
    }
    c.batch_execute("COMMIT").await.map_err(|e| classify(e, &format!("copying `{name}`")))?;
    total += rows.len() as u64;
    if !rows.is_empty() {
        out.send(rows).await.map_err(|_| Error::stop("the initial copy's writer stopped"))?;
    }
    Ok(total)
}

fn memchr_last(b: &[u8]) -> Option<usize> {
    b.iter().rposition(|&c| c == b'\n')
}

/// The change row (`r`) of one line of `COPY … TO STDOUT` in text format
/// (tab-separated, `\N` for NULL, backslash escapes), written straight into
/// its JSON; None when the line has not the table's columns.
pub fn line_row(table: &str, cols: &[Column], line: &[u8]) -> Option<Row> {
    let mut after = Object::with_capacity(line.len() + cols.len() * 16);
    let mut key = Object::with_capacity(24);
    let mut n = 0;
    for (i, field) in line.split(|&b| b == b'\t').enumerate() {
        let c = cols.get(i)?;
        n += 1;
        let text = match field {
            b"\\N" => None,
            f if f.contains(&b'\\') => Some(std::borrow::Cow::Owned(unescape(f))),
            f => Some(String::from_utf8_lossy(f)),
        };
        after.field(&c.name, c.type_oid, text.as_deref());
        if c.key {
            key.field(&c.name, c.type_oid, text.as_deref());
        }
    }
    let (key, after) = (key.finish(), Some(after.finish()));
    (n == cols.len()).then(|| Row { op: "r", table: table.to_string(), key, before: None, after, unchanged: None })
}

fn unescape(field: &[u8]) -> String {
    if !field.contains(&b'\\') {
        return String::from_utf8_lossy(field).into_owned();
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let b = field[i];
        if b != b'\\' || i + 1 == field.len() {
            out.push(b);
            i += 1;
            continue;
        }
        let e = field[i + 1];
        i += 2;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match field.get(i) {
                        Some(d @ b'0'..=b'7') => v = v * 8 + u32::from(d - b'0'),
                        _ => break,
                    }
                    i += 1;
                }
                out.push(v as u8);
            }
            b'x' => {
                let digits = field[i..].iter().take(2).take_while(|c| c.is_ascii_hexdigit()).count();
                let hex = std::str::from_utf8(&field[i..i + digits]).unwrap_or("0");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += digits;
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_copy_text_lines_into_change_rows() {
        let col = |name: &str, type_oid, key| Column { name: name.into(), type_oid, key };
        let cols = [col("id", 20, true), col("gone", 25, false), col("text", 25, false), col("oct", 25, false)];
        let r = line_row("s.t", &cols, b"1\t\\N\ta\\tb\\\\c\\nd\t\\101").unwrap();
        assert_eq!(r.key, r#"{"id":1}"#);
        assert_eq!(r.after.as_deref(), Some(r#"{"id":1,"gone":null,"text":"a\tb\\c\nd","oct":"A"}"#));
        assert!(line_row("s.t", &cols, b"1\t2").is_none());
    }
}
