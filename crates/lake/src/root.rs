//! The lake root and where each table lives under it: `<root>/<table>` for data,
//! `<root>/_quarantine/<table>` for the records that could not be read.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use deltalake::table::state::DeltaTableState;

use crate::table::Seen;

use url::Url;

use crate::LakeError;

#[derive(Clone)]
pub struct Lake {
    root: Url,
    storage: HashMap<String, String>,
    /// Tables created with a Change Data Feed (decision 0011).
    feeds: Arc<BTreeSet<String>>,
    pub(crate) snapshots: Snapshots,
    /// Rows of the data files this process wrote lately (`recent.rs`).
    pub(crate) recent: crate::recent::RecentFiles,
}

/// Names the storage options, never their values (keys, secrets).
impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options: Vec<&String> = self.storage.keys().collect();
        f.debug_struct("Lake").field("root", &self.root.as_str()).field("storage", &options).finish_non_exhaustive()
    }
}

/// The newest state of each table of the lake that this process committed
/// or read from the log, with its commit file's identity, by table URL. A table open twice in
/// one process (one task's output, the next task's input) takes it on open
/// or refresh instead of reading the new commit from the log again
/// (decision 0016).
#[derive(Debug, Clone, Default)]
pub(crate) struct Snapshots(Arc<Mutex<HashMap<String, (DeltaTableState, Seen)>>>);

impl Snapshots {
    pub(crate) fn publish(&self, url: &Url, state: &DeltaTableState, seen: Seen) {
        let mut all = self.0.lock().expect("not poisoned");
        if all.get(url.as_str()).is_none_or(|(s, _)| s.version() < state.version()) {
            all.insert(url.to_string(), (state.clone(), seen));
        }
    }

    /// The state published for the table at `url`, if newer than `version`.
    pub(crate) fn newer(&self, url: &Url, version: i64) -> Option<(DeltaTableState, Seen)> {
        let all = self.0.lock().expect("not poisoned");
        all.get(url.as_str()).filter(|(s, _)| s.version() as i64 > version).cloned()
    }

    /// Forgets the table at `url` (deleted).
    pub(crate) fn forget(&self, url: &Url) {
        self.0.lock().expect("not poisoned").remove(url.as_str());
    }
}

impl Lake {
    /// `root` is a local folder (created when missing) or an object-store URL.
    pub fn new(root: &str, storage: HashMap<String, String>) -> Result<Self, LakeError> {
        let err = |reason: String| LakeError::Root { root: root.to_string(), reason };
        let url = if root.contains("://") {
            register_cloud(root).map_err(err)?;
            Url::parse(root).map_err(|e| err(e.to_string()))?
        } else {
            std::fs::create_dir_all(root).map_err(|e| err(format!("cannot create the folder: {e}")))?;
            let abs = std::fs::canonicalize(root).map_err(|e| err(e.to_string()))?;
            Url::from_directory_path(&abs).map_err(|_| err("not an absolute path".into()))?
        };
        let mut root = url;
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        Ok(Self { root, storage, feeds: Arc::default(), snapshots: Snapshots::default(), recent: Default::default() })
    }

    /// The tables whose changes are read: they are created with a Change
    /// Data Feed. Other tables keep none, so their merges write no change files.
    pub fn with_change_feeds(mut self, tables: impl IntoIterator<Item = String>) -> Self {
        self.feeds = Arc::new(tables.into_iter().collect());
        self
    }

    /// Whether `table` is created with a Change Data Feed.
    pub(crate) fn keeps_change_feed(&self, table: &str) -> bool {
        self.feeds.contains(table)
    }

    pub fn root(&self) -> &Url {
        &self.root
    }

    pub fn storage(&self) -> &HashMap<String, String> {
        &self.storage
    }

    pub fn table_url(&self, table: &str) -> Url {
        self.root.join(&format!("{table}/")).expect("table names are URL-safe")
    }

    pub fn quarantine_url(&self, table: &str) -> Url {
        self.root.join(&format!("_quarantine/{table}/")).expect("table names are URL-safe")
    }

    /// The run history: one row per table pass.
    pub fn runs_url(&self) -> Url {
        self.root.join("_runs/").expect("a URL-safe name")
    }

    /// A sink's ledger: the input versions it has published.
    pub fn sink_url(&self, sink: &str) -> Url {
        self.root.join(&format!("_sinks/{sink}/")).expect("sink names are URL-safe")
    }
}

/// Makes the object store of `root`'s scheme available, or says how to get it.
fn register_cloud(root: &str) -> Result<(), String> {
    let scheme = root.split("://").next().unwrap_or_default();
    match scheme {
        "file" => Ok(()),
        "s3" | "s3a" => {
            #[cfg(feature = "s3")]
            {
                deltalake::aws::register_handlers(None);
                Ok(())
            }
            #[cfg(not(feature = "s3"))]
            missing(scheme, "s3")
        }
        "abfss" | "az" | "azure" => {
            #[cfg(feature = "azure")]
            {
                deltalake::azure::register_handlers(None);
                Ok(())
            }
            #[cfg(not(feature = "azure"))]
            missing(scheme, "azure")
        }
        "gs" => {
            #[cfg(feature = "gcs")]
            {
                deltalake::gcp::register_handlers(None);
                Ok(())
            }
            #[cfg(not(feature = "gcs"))]
            missing(scheme, "gcs")
        }
        other => Err(format!("unsupported scheme `{other}://`; expected a folder, s3://, abfss:// or gs://")),
    }
}

#[cfg_attr(all(feature = "s3", feature = "azure", feature = "gcs"), allow(dead_code))]
fn missing(scheme: &str, feature: &str) -> Result<(), String> {
    Err(format!(
        "this build cannot reach `{scheme}://` lakes; build with `cargo build --release --features cloud` (or `{feature}`)"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_names_the_storage_options_but_not_their_values() {
        let storage = [("azure_storage_account_key".to_string(), "s3cr3t-key".to_string())].into();
        let lake = super::Lake::new("/tmp/lake", storage).unwrap();
        let shown = format!("{lake:?}");
        assert!(shown.contains("azure_storage_account_key") && !shown.contains("s3cr3t-key"), "{shown}");
    }
}
