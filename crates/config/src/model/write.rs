//! How a table writes: its mode, key and sequence, and what a row may say
//! (delete its key, truncate the table).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteConfig {
    #[serde(default)]
    pub mode: WriteModeName,
    #[serde(default)]
    pub key: Vec<String>,
    /// Upsert and scd2: the column that orders versions of a key (in an
    /// upsert the highest wins; in scd2 each is a version from then on).
    #[serde(default)]
    pub sequence: Option<String>,
    /// Upsert: a SQL condition over the transform's columns; a row where it
    /// holds deletes its key (when its sequence is the newest) instead of
    /// being written, e.g. `_change_type = 'delete'` when reading changes.
    #[serde(default)]
    pub delete_when: Option<String>,
    /// Upsert: a SQL condition over the transform's columns; a row where it
    /// holds deletes every stored row whose sequence is lower than its own
    /// (a source table's truncate), e.g. `op = 't'` for change rows.
    #[serde(default)]
    pub truncate_when: Option<String>,
    /// Aggregate: how each measure combines with the stored one.
    #[serde(default)]
    pub measures: BTreeMap<String, Measure>,
}

impl WriteConfig {
    /// `mode: replica` is an upsert with the change rows' defaults: `seq`
    /// orders the versions, `op = 'd'` deletes a key, `op = 't'` every key
    /// before it (each may be given).
    pub fn resolve_replica(&mut self) {
        if self.mode == WriteModeName::Replica {
            self.mode = WriteModeName::Upsert;
            self.sequence.get_or_insert_with(|| "seq".into());
            self.delete_when.get_or_insert_with(|| "op = 'd'".into());
            self.truncate_when.get_or_insert_with(|| "op = 't'".into());
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteModeName {
    #[default]
    Append,
    /// Rows whose key is already in the table are skipped.
    InsertIfAbsent,
    /// Merge by key; the row with the highest `sequence` wins, whatever the arrival order.
    Upsert,
    /// Merge by key, combining `measures` with the stored ones.
    Aggregate,
    /// A replica of a change-row table's source table: an upsert whose
    /// `sequence` is `seq` and whose rows with `op = 'd'` delete their key
    /// (both defaults of this mode).
    Replica,
    /// Keep every version of a key (slowly changing dimension, type 2):
    /// `valid_from` (the row's `sequence`), `valid_to` (the next version's)
    /// and `is_current` are added and kept right whatever the arrival order.
    Scd2,
}

impl WriteModeName {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteModeName::Append => "append",
            WriteModeName::InsertIfAbsent => "insert_if_absent",
            WriteModeName::Upsert => "upsert",
            WriteModeName::Replica => "replica",
            WriteModeName::Aggregate => "aggregate",
            WriteModeName::Scd2 => "scd2",
        }
    }
}

pub use ingesta_core::Measure;
