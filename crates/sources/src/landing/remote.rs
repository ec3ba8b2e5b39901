//! Landing folders behind `object_store`: an `s3://`, `abfss://`, `gs://` or
//! `file://` prefix. Listing gives size, modification time and etag; files are
//! streamed (Parquet files are fetched whole, their reader needs to seek). The
//! reader threads are not async: calls go through the runtime's handle.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use tokio::runtime::Handle;

/// Bytes per ranged read while streaming a file.
const READ_AHEAD: usize = 8 << 20;

#[derive(Debug, Clone)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    handle: Handle,
}

impl Remote {
    pub fn new(url: &str, options: HashMap<String, String>) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let (store, prefix) = object_store::parse_url_opts(&parsed, options).map_err(|e| {
            format!("cannot open `{url}`: {e} (s3://, abfss:// and gs:// need a build with `--features cloud`)")
        })?;
        let handle = Handle::try_current()
            .map_err(|_| format!("reading `{url}` needs the async runtime; create the source inside it"))?;
        Ok(Self { store: Arc::from(store), prefix, handle })
    }

    /// Every object under the prefix: (path relative to it, its metadata).
    pub fn list(&self) -> std::io::Result<Vec<(String, ObjectMeta)>> {
        let prefix = self.prefix.clone();
        let objects: Vec<ObjectMeta> =
            self.handle.block_on(self.store.list(Some(&prefix)).try_collect()).map_err(std::io::Error::other)?;
        let base = prefix.as_ref().len();
        Ok(objects
            .into_iter()
            .map(|m| {
                let full = m.location.as_ref();
                let rel = full.get(base..).unwrap_or(full).trim_start_matches('/').to_string();
                (rel, m)
            })
            .collect())
    }

    /// A buffered, streaming reader of one object.
    pub fn open(&self, meta: &ObjectMeta) -> Box<dyn BufRead + Send> {
        let reader = object_store::buffered::BufReader::with_capacity(self.store.clone(), meta, READ_AHEAD);
        let sync = tokio_util::io::SyncIoBridge::new_with_handle(reader, self.handle.clone());
        Box::new(std::io::BufReader::with_capacity(1 << 20, sync))
    }

    /// The whole object.
    pub fn fetch(&self, meta: &ObjectMeta) -> std::io::Result<bytes::Bytes> {
        let location = meta.location.clone();
        self.handle.block_on(async { self.store.get(&location).await?.bytes().await }).map_err(std::io::Error::other)
    }
}
