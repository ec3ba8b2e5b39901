//! The Redis connection of a table's lookups: one multiplexed connection,
//! opened on first use and again after a failure; values read with `MGET`,
//! many keys per command and every command of a batch in one round trip.

use std::time::Duration;

use ingesta_core::Error;
use redis::aio::MultiplexedConnection;

/// Keys per `MGET`.
const CHUNK: usize = 1000;
/// A connect or a round trip that takes longer has failed.
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct RedisClient {
    client: redis::Client,
    conn: Option<MultiplexedConnection>,
}

impl RedisClient {
    /// Nothing is opened yet. The URL (which may hold a password) is never
    /// put in an error.
    pub fn new(url: &str) -> Result<Self, Error> {
        let client = redis::Client::open(url)
            .map_err(|e| Error::stop(format!("redis.url is not a Redis URL ({:?})", e.kind())))?;
        Ok(Self { client, conn: None })
    }

    /// The values of `keys`, in their order (`None`: no such key, or not a
    /// string). A server that cannot be reached or does not answer is a
    /// passing fault (retry); refused credentials stop the table.
    pub async fn mget(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let conn = match &mut self.conn {
            Some(c) => c,
            None => {
                let opened = tokio::time::timeout(TIMEOUT, self.client.get_multiplexed_async_connection()).await;
                let conn = match opened {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => return Err(failed("connecting to Redis", &e)),
                    Err(_) => return Err(Error::retry(format!("connecting to Redis: no answer in {TIMEOUT:?}"))),
                };
                self.conn.insert(conn)
            }
        };
        let mut pipe = redis::pipe();
        for chunk in keys.chunks(CHUNK) {
            pipe.cmd("MGET").arg(chunk);
        }
        let answer = tokio::time::timeout(TIMEOUT, pipe.query_async::<Vec<Vec<Option<Vec<u8>>>>>(conn)).await;
        match answer {
            Ok(Ok(values)) => Ok(values.into_iter().flatten().collect()),
            Ok(Err(e)) => {
                self.conn = None;
                Err(failed("reading lookup keys from Redis", &e))
            }
            Err(_) => {
                self.conn = None;
                Err(Error::retry(format!("reading lookup keys from Redis: no answer in {TIMEOUT:?}")))
            }
        }
    }
}

fn failed(doing: &str, e: &redis::RedisError) -> Error {
    let msg = format!("{doing}: {e}");
    match e.kind() {
        redis::ErrorKind::AuthenticationFailed | redis::ErrorKind::InvalidClientConfig => {
            Error::stop(format!("{msg} (check the user and password in redis.url)"))
        }
        _ => Error::retry(msg),
    }
}
