//! PostgreSQL change data capture (decision 0031): a publication and a
//! logical slot on the source database, the initial copy under the slot's
//! exported snapshot, then the slot's pgoutput stream decoded into change
//! rows. The replication session is `pgwire-replication`'s; the pgoutput
//! decoder ([`decode`]) is ours; everything else goes through an ordinary
//! tokio-postgres connection.

pub mod decode;
pub mod extract;
pub mod rows;
pub mod slot;
pub mod snapshot;
pub mod stream;

pub use pgwire_replication::Lsn;
pub use rows::Row;
pub use slot::{Scope, SlotState};
pub use stream::{Event, Stream, Tx};

use ingesta_core::{Error, Result};
use ingesta_warehouse::{Conn, Warehouse};
use pgwire_replication::{PgWireError, ReplicationConfig, TlsConfig};
use tokio_postgres::config::{Host, SslMode};

/// A source database, its publication and its slot.
#[derive(Clone)]
pub struct Source {
    db: Warehouse,
    pub publication: String,
    pub slot: String,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (slot `{}`)", self.db.describe(), self.slot)
    }
}

impl Source {
    /// `url` is a libpq URL; its user needs the REPLICATION attribute (and
    /// to own the tables, or be a superuser, to create the publication).
    pub fn new(url: &str, publication: &str, slot: &str, connections: usize) -> Result<Self> {
        let db = Warehouse::database(url, connections + 1, "the source database")?;
        Ok(Self { db, publication: publication.into(), slot: slot.into() })
    }

    /// `user@host:port/database`, without the password.
    pub fn describe(&self) -> String {
        self.db.describe()
    }

    /// An ordinary connection to the source database.
    pub async fn connect(&self) -> Result<Conn> {
        self.db.connect().await
    }

    /// The replication session's settings: the URL's parts, values printed
    /// in UTC and ISO dates so the change rows do not depend on the server's
    /// defaults.
    pub fn replication(&self) -> Result<ReplicationConfig> {
        let c = self.db.config();
        let host = match c.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => return Err(Error::stop("the source database's `url` names no host")),
        };
        let password = c.get_password().map(|p| String::from_utf8_lossy(p).into_owned()).unwrap_or_default();
        let user = c.get_user().unwrap_or_default();
        let database = c.get_dbname().unwrap_or(user);
        let tls = match c.get_ssl_mode() {
            SslMode::Disable => TlsConfig::disabled(),
            SslMode::Prefer => TlsConfig { mode: pgwire_replication::SslMode::Prefer, ..TlsConfig::disabled() },
            _ => TlsConfig::require(),
        };
        Ok(ReplicationConfig::new(host, user, password, database, self.slot.clone(), self.publication.as_str())
            .with_port(c.get_ports().first().copied().unwrap_or(5432))
            .with_tls(tls)
            .with_options("-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=3")
            .with_application_name(format!("ingesta {}", self.slot)))
    }
}

/// A replication session's error, said with `doing`: a broken connection,
/// a server shutting down or starting, or a slot held by another session
/// retries; the rest (a lost or missing slot, refused credentials) stops.
pub fn wire(e: PgWireError, doing: &str) -> Error {
    let message = format!("{doing}: {e}");
    let code = match &e {
        PgWireError::Io(_) | PgWireError::Task(_) => return Error::retry(message),
        PgWireError::Server(m) => m.split("SQLSTATE ").nth(1).map(|c| c.chars().take(5).collect::<String>()),
        _ => None,
    };
    match code.as_deref() {
        Some(c) if ["08", "40", "53", "57", "58"].contains(&&c[..2.min(c.len())]) || c == "55006" => {
            Error::retry(message)
        }
        _ => Error::stop(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_errors_retry_or_stop_by_their_sqlstate() {
        let server = |m: &str| PgWireError::Server(m.into());
        let shutdown = server("terminating connection due to administrator command (SQLSTATE 57P01)");
        assert_eq!(wire(shutdown, "x").kind, ingesta_core::ErrorKind::Retry);
        let held = server("replication slot \"s\" is active for PID 7 (SQLSTATE 55006)");
        assert_eq!(wire(held, "x").kind, ingesta_core::ErrorKind::Retry);
        let lost = server("can no longer get changes from replication slot \"s\" (SQLSTATE 55000)");
        assert_eq!(wire(lost, "x").kind, ingesta_core::ErrorKind::Stop);
        let io = PgWireError::Io(std::sync::Arc::new(std::io::Error::other("reset")));
        assert_eq!(wire(io, "x").kind, ingesta_core::ErrorKind::Retry);
    }
}
