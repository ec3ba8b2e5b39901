//! The HTTP surface's settings.

use std::time::Duration;

use serde::Deserialize;

use super::{ByteSize, Dur, Secret};

/// The HTTP surface (`ingesta serve`, `run --watch --serve`): the dashboard,
/// reports, SQL, tables, metrics. `GET /health` is open; everything else
/// asks for a bearer token: `read` for reading, `admin` for changing state
/// (an admin token also reads). Without either token the server listens on
/// loopback only.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Serve {
    /// The address to listen on.
    #[serde(default = "default_serve_listen")]
    pub listen: String,
    /// The `read` token; by default `$INGESTA_READ_TOKEN`. Never printed.
    #[serde(default)]
    pub read_token: Option<Secret>,
    /// The `admin` token; by default `$INGESTA_ADMIN_TOKEN`. Never printed.
    #[serde(default)]
    pub admin_token: Option<Secret>,
    /// At most this many rows in one answer (a report's or SQL's); more
    /// are cut and the answer says `truncated`.
    #[serde(default = "default_answer_rows")]
    pub max_rows: usize,
    /// A query still running after this long is cancelled (504).
    #[serde(default = "default_query_timeout")]
    pub query_timeout: Dur,
    /// Report answers kept in memory until a table commits (0 turns it off).
    #[serde(default = "default_cache")]
    pub cache: ByteSize,
}

impl Default for Serve {
    fn default() -> Self {
        Serve {
            listen: default_serve_listen(),
            read_token: None,
            admin_token: None,
            max_rows: default_answer_rows(),
            query_timeout: default_query_timeout(),
            cache: default_cache(),
        }
    }
}

fn default_answer_rows() -> usize {
    100_000
}

fn default_query_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}

fn default_serve_listen() -> String {
    "127.0.0.1:9464".into()
}

fn default_cache() -> ByteSize {
    ByteSize(64 << 20)
}
