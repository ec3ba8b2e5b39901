//! Claims: a name that only one process can take, as a file created under
//! `<root>/_claims/` only if it does not exist yet (the object store's
//! conditional put). A scheduled table claims each occurrence it runs, so two
//! processes never run the same occurrence.

use deltalake::DeltaTableBuilder;
use object_store::path::Path;
use object_store::{PutMode, PutOptions, PutPayload};

use crate::{Lake, LakeError};

impl Lake {
    /// Takes `name` (a path under `_claims/`): true when this call created it,
    /// false when it was already taken.
    pub async fn claim(&self, name: &str, note: &str) -> Result<bool, LakeError> {
        let err = |e: deltalake::DeltaTableError| LakeError::delta("_claims", e);
        let url = self.root().join("_claims/").expect("a URL-safe name");
        let store = DeltaTableBuilder::from_url(url)
            .map_err(err)?
            .with_storage_options(self.storage().clone())
            .build_storage()
            .map_err(err)?
            .object_store(None);
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match store.put_opts(&Path::from(name), PutPayload::from(note.to_string()), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(err(e.into())),
        }
    }
}
