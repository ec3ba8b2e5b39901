//! Small notes kept beside a table's log (`_ingesta_<name>` objects): facts
//! derived from what the table committed, such as a landing source's settled
//! watermark, that a process reads instead of the whole log. A note is only
//! ever a shortcut: lost or unreadable, the reader falls back to the log.
//! Delta readers and every vacuum leave names starting with `_` alone; a
//! destroyed table takes its notes with it.

use std::collections::HashMap;

use deltalake::DeltaTableError;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::{LakeError, LakeTable};

impl LakeTable {
    /// The note `name`, or `None` when there is none.
    pub async fn note(&self, name: &str) -> Result<Option<String>, LakeError> {
        let err = |e: object_store::Error| LakeError::delta(&self.name, DeltaTableError::from(e));
        match self.table.object_store().get(&Path::from(format!("_ingesta_{name}"))).await {
            Ok(r) => Ok(Some(String::from_utf8_lossy(&r.bytes().await.map_err(err)?).into_owned())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Writes (or replaces) the note `name`.
    pub async fn write_note(&self, name: &str, text: &str) -> Result<(), LakeError> {
        let path = Path::from(format!("_ingesta_{name}"));
        let put = self.table.object_store().put(&path, text.as_bytes().to_vec().into()).await;
        put.map(|_| ()).map_err(|e| LakeError::delta(&self.name, e.into()))
    }

    /// The input positions recorded in the table whose application id `keep`
    /// keeps, read in one pass without holding the others; `None` when the
    /// log's layout asks for per-input lookups.
    pub async fn positions_where(
        &self,
        keep: &dyn Fn(&str) -> bool,
    ) -> Result<Option<HashMap<String, i64>>, LakeError> {
        let version = self.table.snapshot().map_err(|e| LakeError::delta(&self.name, e))?.version() as i64;
        let found = crate::ledger::transactions_where(&self.table, version, keep).await;
        found.map_err(|e| LakeError::delta(&self.name, e))
    }
}
