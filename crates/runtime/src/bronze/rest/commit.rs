//! One commit of a REST source: the pages read since the last one, decoded
//! like topic messages (declared columns, other fields in `_rescued`, a bad
//! record to quarantine with its page's URL and place), committed through
//! [`bronze::commit_with`] with the state after the last page in the
//! commit's info and the commit count as the position.

use ingesta_config::MessageFormat;
use ingesta_core::{Error, QuarantineRecord, Reason, TableStore, WriteMode};
use ingesta_sources::decode::{Raw, ReadCtx, SchemaLookup, decode_messages};

use super::columns::{Meta, Parts, assemble};
use super::state::{INFO, State};
use crate::bronze::{self, Batch, Tables};

/// Pages read and not committed yet.
#[derive(Default)]
pub(super) struct Group {
    /// Each record as JSON text.
    pub records: Vec<Vec<u8>>,
    pub meta: Vec<Meta>,
    /// The URLs of the group's pages, as shown.
    pub urls: Vec<String>,
    /// Pages that could not be read.
    pub bad: Vec<QuarantineRecord>,
    /// Bytes of the records.
    pub bytes: u64,
}

impl Group {
    /// A page's new records, each with its place in the page.
    pub fn page(&mut self, url: String, page: i64, records: Vec<(i64, Vec<u8>)>) {
        self.urls.push(url);
        let u = self.urls.len() - 1;
        for (index, r) in records {
            self.bytes += r.len() as u64;
            self.meta.push(Meta { url: u, page, index });
            self.records.push(r);
        }
    }

    /// A page that is not JSON or has no array of records, kept whole (cut
    /// to `max` bytes).
    pub fn bad_page(&mut self, url: String, page: i64, why: String, body: &[u8], max: usize) {
        let cut = body.len() > max;
        let error = if cut { format!("{why} (the page is cut to {max} bytes here)") } else { why };
        let raw = body[..body.len().min(max)].to_vec();
        self.bad.push(QuarantineRecord { source: url, position: page, reason: Reason::Parse, error, raw });
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.bad.is_empty()
    }
}

/// What one commit needs besides its pages.
pub(super) struct Target<'a> {
    pub tables: &'a mut Tables,
    pub cfg: &'a ingesta_config::Table,
    pub id: &'a str,
    /// The commit count the quarantine holds: a commit at or below it has
    /// its bad records there already (the table's commit did not follow).
    pub quarantined: i64,
    pub max_record_bytes: usize,
}

/// Commits `g` with `state` (its `commits` the new count); rows and bad records.
pub(super) async fn commit(t: Target<'_>, g: Group, state: &State) -> Result<(u64, u64), Error> {
    let raws: Vec<Raw> = g.records.iter().enumerate().map(|(i, r)| Raw { offset: i as i64 + 1, value: r }).collect();
    let ctx = ReadCtx {
        source: "",
        schema: &t.tables.record,
        skip_until: -1,
        quarantined_until: -1,
        chunk_rows: raws.len() + 1,
        max_record_bytes: t.max_record_bytes,
    };
    let decoded = decode_messages(MessageFormat::Json, &raws, &ctx, &|_| SchemaLookup::Unknown(String::new()))
        .map_err(Error::from)?;
    let metas: Vec<(i64, &Meta)> = g.meta.iter().enumerate().map(|(i, m)| (i as i64 + 1, m)).collect();
    let kept: Vec<&Meta> =
        bronze::kept_at(&metas, |(o, _)| *o, &decoded.chunk.positions).into_iter().map(|(_, m)| *m).collect();
    let mut quarantine = g.bad;
    for mut q in decoded.chunk.quarantine {
        let m = &g.meta[(q.position - 1) as usize];
        (q.source, q.position) = (g.urls[m.url].clone(), m.index);
        quarantine.push(q);
    }
    if state.commits <= t.quarantined {
        quarantine.clear();
    }
    let ingested_at = chrono::Utc::now().timestamp_micros();
    let batch_id = uuid::Uuid::new_v4().to_string();
    let parts = Parts {
        rows: &decoded.chunk.rows,
        meta: &kept,
        urls: &g.urls,
        rescued: decoded.rescued,
        ingested_at,
        batch_id: &batch_id,
    };
    let rows = assemble(&t.tables.schema, &t.cfg.partition_by, parts);
    let (n_rows, n_bad) = (rows.num_rows() as u64, quarantine.len() as u64);
    let mut staged = t.tables.bronze.begin(&WriteMode::Append)?;
    if n_rows > 0 {
        t.tables.bronze.stage(&mut staged, rows).await?;
    }
    let position = vec![(t.id.to_string(), state.commits)];
    let b = Batch {
        staged,
        rows: n_rows,
        positions: position.clone(),
        quarantine_positions: if quarantine.is_empty() { Vec::new() } else { position },
        quarantine,
        expect: None,
        batch_id,
        ingested_at,
    };
    let info = vec![(INFO.to_string(), state.encode())];
    bronze::commit_with(&mut t.tables.bronze, &mut t.tables.quarantine, b, info).await?;
    Ok((n_rows, n_bad))
}
