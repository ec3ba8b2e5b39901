//! The replication session: `START_REPLICATION` from the slot's confirmed
//! position, pgoutput decoded into transactions of change rows, and the
//! flush position confirmed only when the caller says its commit is durable.

use std::collections::VecDeque;
use std::time::Duration;

use ingesta_core::{Error, Result};
use pgwire_replication::{ReplicationClient, ReplicationConfig, ReplicationEvent};

use crate::decode::{Change, Decoder};
use crate::rows::{Row, change_row};
use crate::{Lsn, wire};

/// How soon a confirmed position is sent to the server.
const STATUS_INTERVAL: Duration = Duration::from_millis(250);

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// A transaction being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tx {
    /// The LSN of its commit record: with the change's ordinal, the change's
    /// position, the same however often the transaction is sent again.
    pub commit_lsn: Lsn,
    pub xid: u32,
    /// Microseconds since the Unix epoch.
    pub commit_ts_us: i64,
}

pub enum Event {
    Begin(Tx),
    /// A change of the transaction begun last: its row and its own LSN.
    Change(Row, Lsn),
    /// The transaction ended; everything up to `end_lsn` has been sent.
    Commit {
        end_lsn: Lsn,
    },
    /// The server's WAL end while no transaction is being sent: nothing
    /// before it is left to read.
    Idle {
        wal_end: Lsn,
    },
}

pub struct Stream {
    client: ReplicationClient,
    decoder: Decoder,
    changes: VecDeque<(Change, Lsn)>,
    decoded: Vec<Change>,
    in_tx: bool,
    /// The last position confirmed.
    confirmed: Lsn,
}

impl Stream {
    /// Starts streaming from the slot's confirmed position.
    pub async fn open(cfg: ReplicationConfig) -> Result<Self> {
        let slot = cfg.slot.clone();
        let cfg = cfg.with_start_lsn(Lsn(0)).with_status_interval(STATUS_INTERVAL);
        let mut client = ReplicationClient::connect(cfg).await.map_err(|e| wire(e, "opening a replication session"))?;
        client.wait_started().await.map_err(|e| wire(e, &format!("starting replication from the slot `{slot}`")))?;
        Ok(Self {
            client,
            decoder: Decoder::default(),
            changes: VecDeque::new(),
            decoded: Vec::new(),
            in_tx: false,
            confirmed: Lsn(0),
        })
    }

    /// The next event, or None when nothing arrived for `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<Event>> {
        loop {
            if let Some((c, lsn)) = self.changes.pop_front() {
                return Ok(Some(Event::Change(change_row(&c), lsn)));
            }
            let ev = match tokio::time::timeout(wait, self.client.recv()).await {
                Err(_) => return Ok(None),
                Ok(r) => r.map_err(|e| wire(e, "reading the replication stream"))?,
            };
            let Some(ev) = ev else {
                return Err(Error::retry("the replication stream ended"));
            };
            match ev {
                ReplicationEvent::Begin { final_lsn, xid, commit_time_micros } => {
                    self.in_tx = true;
                    let tx = Tx { commit_lsn: final_lsn, xid, commit_ts_us: commit_time_micros + PG_EPOCH_US };
                    return Ok(Some(Event::Begin(tx)));
                }
                ReplicationEvent::XLogData { wal_start, data, .. } => {
                    self.decoder
                        .decode(&data, &mut self.decoded)
                        .map_err(|e| Error::stop(format!("reading the replication stream: {e}")))?;
                    self.changes.extend(self.decoded.drain(..).map(|c| (c, wal_start)));
                }
                ReplicationEvent::Commit { end_lsn, .. } => {
                    self.in_tx = false;
                    return Ok(Some(Event::Commit { end_lsn }));
                }
                ReplicationEvent::KeepAlive { wal_end, .. } if !self.in_tx => {
                    return Ok(Some(Event::Idle { wal_end }));
                }
                ReplicationEvent::KeepAlive { .. } | ReplicationEvent::Message { .. } => {}
                ReplicationEvent::StoppedAt { .. } => return Err(Error::retry("the replication stream stopped")),
            }
        }
    }

    /// Tells PostgreSQL everything up to `lsn` is durable here, so the slot
    /// may release the WAL before it (sent within [`STATUS_INTERVAL`]).
    pub fn confirm(&mut self, lsn: Lsn) {
        self.confirmed = self.confirmed.max(lsn);
        self.client.update_applied_lsn(lsn);
    }

    /// Ends the session once the last confirmed position has reached the
    /// server (the transport's stop does not send it).
    pub async fn close(mut self) {
        let metrics = self.client.metrics();
        let deadline = tokio::time::Instant::now() + STATUS_INTERVAL * 8;
        while metrics.last_applied_lsn() < self.confirmed && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.client.shutdown()).await;
    }
}
