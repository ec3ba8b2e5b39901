//! The connection to the warehouse: a libpq URL (`postgresql://user@host:port/db?sslmode=…`),
//! TLS through the system's OpenSSL when `sslmode` asks for it, the password
//! never printed, and at most `pool` connections open at once. Errors are
//! classified by their SQLSTATE: connection loss, serialization failures and
//! resource limits retry; data and constraint errors concern rows
//! (quarantine); the rest (a wrong password, a missing privilege, SQL
//! mistakes) stop with PostgreSQL's own message.

use std::str::FromStr;
use std::sync::Arc;

use ingesta_core::{Error, ErrorKind, Result};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_postgres::config::SslMode;

/// How to reach the warehouse; cheap to clone (one pool of permits).
#[derive(Clone)]
pub struct Warehouse {
    config: Arc<tokio_postgres::Config>,
    permits: Arc<Semaphore>,
    /// The TLS connector, built once: building one loads the system's
    /// certificates, which costs more than the connection itself.
    tls: Arc<std::sync::OnceLock<postgres_native_tls::MakeTlsConnector>>,
    /// Connections handed back after single statements (no transaction
    /// open), taken again before a new one is opened.
    idle: Arc<std::sync::Mutex<Vec<tokio_postgres::Client>>>,
    /// What the database is to the pipeline, for errors: "the warehouse",
    /// "the source database".
    what: &'static str,
}

impl std::fmt::Debug for Warehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// An open connection, holding one of the warehouse's permits. Dropped, it
/// closes (a transaction left open rolls back); [`Conn::release`] keeps it
/// for the next caller instead.
pub struct Conn {
    pub client: tokio_postgres::Client,
    _permit: OwnedSemaphorePermit,
    idle: Arc<std::sync::Mutex<Vec<tokio_postgres::Client>>>,
}

impl Conn {
    /// Hands the connection back for reuse: only after statements outside
    /// any transaction (a read's single query). The idle ones never outnumber
    /// the pool: a connection is opened only when none is idle.
    pub fn release(self) {
        if !self.client.is_closed() {
            self.idle.lock().expect("idle connections").push(self.client);
        }
    }
}

impl Warehouse {
    /// Parses `url` (nothing is opened yet); `pool` bounds the connections open at once.
    pub fn new(url: &str, pool: usize) -> Result<Self> {
        Self::database(url, pool, "the warehouse")
    }

    /// Another PostgreSQL database than the warehouse (a source), named
    /// `what` in errors.
    pub fn database(url: &str, pool: usize, what: &'static str) -> Result<Self> {
        let config = tokio_postgres::Config::from_str(url).map_err(|e| {
            // the parser's message never quotes the URL, so no password leaks
            Error::stop(format!("{what}'s `url` is not a PostgreSQL URL: {e}"))
        })?;
        if config.get_hosts().is_empty() {
            return Err(Error::stop(format!("{what}'s `url` names no host (postgresql://USER@HOST:PORT/DATABASE)")));
        }
        Ok(Self {
            config: Arc::new(config),
            permits: Arc::new(Semaphore::new(pool.max(1))),
            tls: Arc::new(std::sync::OnceLock::new()),
            idle: Arc::new(std::sync::Mutex::new(Vec::new())),
            what,
        })
    }

    /// The parsed URL (the replication session takes its parts).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// `user@host:port/database`, without the password: for logs and errors.
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "{}@{host}:{port}/{}",
            self.config.get_user().unwrap_or(""),
            self.config.get_dbname().unwrap_or(self.config.get_user().unwrap_or(""))
        )
    }

    /// Opens a connection (waiting for a free permit).
    pub async fn connect(&self) -> Result<Conn> {
        let permit =
            self.permits.clone().acquire_owned().await.map_err(|_| Error::stop(format!("{} is closed", self.what)))?;
        let reused = {
            let mut idle = self.idle.lock().expect("idle connections");
            std::iter::from_fn(|| idle.pop()).find(|c| !c.is_closed())
        };
        if let Some(client) = reused {
            return Ok(Conn { client, _permit: permit, idle: self.idle.clone() });
        }
        let client = match self.config.get_ssl_mode() {
            SslMode::Disable => {
                let (client, conn) = self.config.connect(tokio_postgres::NoTls).await.map_err(|e| self.failed(e))?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "warehouse connection ended");
                    }
                });
                client
            }
            _ => {
                let tls = match self.tls.get() {
                    Some(tls) => tls.clone(),
                    None => {
                        let tls = native_tls::TlsConnector::builder()
                            .build()
                            .map_err(|e| Error::stop(format!("TLS for {}: {e}", self.what)))?;
                        self.tls.get_or_init(|| postgres_native_tls::MakeTlsConnector::new(tls)).clone()
                    }
                };
                let (client, conn) = self.config.connect(tls).await.map_err(|e| self.failed(e))?;
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "warehouse connection ended");
                    }
                });
                client
            }
        };
        Ok(Conn { client, _permit: permit, idle: self.idle.clone() })
    }

    fn failed(&self, e: tokio_postgres::Error) -> Error {
        classify(e, &format!("connecting to {} {}", self.what, self.describe()))
    }
}

/// An error from PostgreSQL, classified by its SQLSTATE and said with `doing`.
pub fn classify(e: tokio_postgres::Error, doing: &str) -> Error {
    let Some(db) = e.as_db_error() else {
        // no answer from the server: the connection failed or broke
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        return Error::retry(format!("{doing}: {message}")).caused_by(e);
    };
    let code = db.code().code();
    let kind = match &code[..2] {
        // connection, transaction rollback (serialization, deadlock), resources,
        // operator intervention (shutdown), system errors
        "08" | "40" | "53" | "57" | "58" => ErrorKind::Retry,
        // data exceptions (out of range, bad value) and integrity (NOT NULL, checks)
        "22" | "23" => ErrorKind::Quarantine,
        _ => ErrorKind::Stop,
    };
    let mut message = format!("{doing}: {} (SQLSTATE {code})", db.message());
    if let Some(column) = db.column() {
        message.push_str(&format!(", column `{column}`"));
    }
    if let Some(detail) = db.detail() {
        message.push_str(&format!("; {detail}"));
    }
    if code == "28P01" || code == "28000" {
        message.push_str(" (check the user and the password in the `url`'s environment variable)");
    }
    Error::new(kind, message).caused_by(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_described() {
        let w = Warehouse::new("postgresql://app:s3cret@db.example:6543/dwh?sslmode=require", 4).expect("a url");
        assert_eq!(w.describe(), "app@db.example:6543/dwh");
        assert!(!format!("{w:?}").contains("s3cret"));
        let bad = Warehouse::new("postgresql://app:s3cret@db.example:notaport/dwh", 4).unwrap_err();
        assert!(!bad.message.contains("s3cret"), "{}", bad.message);
    }
}
