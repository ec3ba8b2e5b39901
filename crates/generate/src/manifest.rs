//! `_manifest.json`: what a generator wrote.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::GenerateError;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub kind: String,
    pub seed: u64,
    pub format: String,
    /// Records written, malformed ones included.
    pub rows: u64,
    pub malformed: u64,
    pub valid_rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub file_list: Vec<FileEntry>,
    /// For `farm`: the manifest of each dataset by subfolder.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub datasets: BTreeMap<String, Manifest>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub name: String,
    pub rows: u64,
    pub malformed: u64,
    pub bytes: u64,
}

impl Manifest {
    pub fn add(&mut self, f: FileEntry) {
        self.rows += f.rows;
        self.malformed += f.malformed;
        self.valid_rows = self.rows - self.malformed;
        self.bytes += f.bytes;
        self.files += 1;
        self.file_list.push(f);
    }

    pub fn write(&self, dir: &Path) -> Result<(), GenerateError> {
        let path = dir.join("_manifest.json");
        let text = serde_json::to_string_pretty(self).expect("manifest serialises");
        std::fs::write(&path, text).map_err(|e| crate::out::io(&path, e))
    }
}
