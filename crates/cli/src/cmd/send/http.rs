//! Messages to the HTTP collector: NDJSON requests of `--batch` events with
//! the bearer token, gzip on request. A request answered 429 or 503 is sent
//! again after its `Retry-After` (nothing of it was kept); one refused
//! connection is retried with a backoff; any other failure stops the run
//! (whether the batch was kept is then unknown). A message that is not a JSON
//! object goes alone and must be refused with 400, which the manifest counts.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::blocking::Client;

use super::{Sink, Target};

pub struct HttpSink {
    client: Client,
    url: String,
    token: String,
    batch: usize,
    gzip: bool,
    pending: Vec<u8>,
    in_batch: usize,
    requests: u64,
    accepted: u64,
    resent: u64,
    rejected: u64,
}

impl HttpSink {
    pub fn new(t: &Target) -> anyhow::Result<HttpSink> {
        let token = t.token.clone().or_else(|| std::env::var("INGESTA_TOKEN").ok());
        let Some(token) = token else {
            bail!("the collector needs its bearer token: give --token or set INGESTA_TOKEN")
        };
        let client = Client::builder().timeout(Duration::from_secs(60)).build()?;
        Ok(HttpSink {
            client,
            url: t.to.clone(),
            token,
            batch: t.batch.max(1),
            gzip: t.gzip,
            pending: Vec::new(),
            in_batch: 0,
            requests: 0,
            accepted: 0,
            resent: 0,
            rejected: 0,
        })
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.in_batch == 0 {
            return Ok(());
        }
        let body = std::mem::take(&mut self.pending);
        let n = std::mem::take(&mut self.in_batch) as u64;
        match self.post(body)? {
            s if s.is_success() => self.accepted += n,
            s => bail!("the collector answered {s}"),
        }
        Ok(())
    }

    /// Posts until the answer is not 429/503; the final status.
    fn post(&mut self, body: Vec<u8>) -> anyhow::Result<reqwest::StatusCode> {
        let body = if self.gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&body)?;
            gz.finish()?
        } else {
            body
        };
        let mut refused_connections = 0;
        loop {
            self.requests += 1;
            let mut req = self.client.post(&self.url).bearer_auth(&self.token).body(body.clone());
            req = req.header("Content-Type", "application/x-ndjson");
            if self.gzip {
                req = req.header("Content-Encoding", "gzip");
            }
            match req.send() {
                Ok(r) if r.status() == 429 || r.status() == 503 => {
                    let wait = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1);
                    self.resent += 1;
                    std::thread::sleep(Duration::from_secs(wait));
                }
                Ok(r) if r.status().is_success() || r.status() == 400 => return Ok(r.status()),
                Ok(r) => {
                    let status = r.status();
                    bail!("the collector answered {status}: {}", r.text().unwrap_or_default());
                }
                Err(e) if e.is_connect() && refused_connections < 10 => {
                    refused_connections += 1;
                    std::thread::sleep(Duration::from_millis(200 << refused_connections.min(5)));
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("posting to {} (whether the last batch was kept is unknown)", self.url)
                    });
                }
            }
        }
    }
}

impl Sink for HttpSink {
    fn send(&mut self, _key: Option<&str>, value: Vec<u8>) -> anyhow::Result<()> {
        let object = value.first() == Some(&b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(&value).is_ok();
        if !object {
            self.flush()?;
            match self.post(value)? {
                reqwest::StatusCode::BAD_REQUEST => self.rejected += 1,
                s => bail!("a malformed message was answered {s}, not 400"),
            }
            return Ok(());
        }
        self.pending.extend_from_slice(&value);
        self.pending.push(b'\n');
        self.in_batch += 1;
        if self.in_batch >= self.batch {
            self.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self, manifest: &mut serde_json::Map<String, serde_json::Value>) -> anyhow::Result<()> {
        self.flush()?;
        manifest.insert("delivered".into(), self.accepted.into());
        manifest.insert("requests".into(), self.requests.into());
        manifest.insert("requests_resent".into(), self.resent.into());
        manifest.insert("rejected_with_400".into(), self.rejected.into());
        Ok(())
    }
}
