//! Table maintenance: compaction (and vacuum) of chosen tables.

use std::time::Duration;

use ingesta_config::Pipeline;
use ingesta_core::{Error, TableStore};
use ingesta_lake::{Compacted, LakeTable};

use crate::lake_of;

/// What maintenance did to one table.
#[derive(Debug, Clone, Default)]
pub struct Maintained {
    pub table: String,
    pub files_before: u64,
    pub files_after: u64,
    pub compacted: Compacted,
    /// Data files deleted by vacuum.
    pub vacuumed: usize,
    /// Why vacuum left the table alone (a reader has not read all of it yet).
    pub vacuum_skipped: Option<String>,
}

/// Compacts `names` (every table when empty); vacuums too when `retention` is given.
pub async fn compact(p: &Pipeline, names: &[String], retention: Option<Duration>) -> Result<Vec<Maintained>, Error> {
    let lake = lake_of(p)?;
    let mut out = Vec::new();
    for name in p.run_order() {
        if !names.is_empty() && !names.contains(&name) {
            continue;
        }
        let size = p.tables[&name].target_file_size.0;
        let Some(t) = LakeTable::open(&lake, &name, &lake.table_url(&name)).await? else { continue };
        let mut t = t.with_target_file_size(size);
        let files_before = t.stats()?.files;
        let compacted = t.compact().await?;
        let lagging = match retention {
            Some(_) => lagging_readers(p, &lake, &name, &t).await?,
            None => Vec::new(),
        };
        let (vacuumed, vacuum_skipped) = match retention {
            Some(_) if !lagging.is_empty() => (
                0,
                Some(format!(
                    "not vacuumed: {} still read versions whose files vacuum would delete; run the pipeline first",
                    lagging.join(", ")
                )),
            ),
            Some(r) => (t.vacuum(r).await?, None),
            None => (0, None),
        };
        let files_after = t.stats()?.files;
        out.push(Maintained { table: name, files_before, files_after, compacted, vacuumed, vacuum_skipped });
    }
    Ok(out)
}

/// Tables that read `name` incrementally and have not reached its current version.
async fn lagging_readers(
    p: &Pipeline,
    lake: &ingesta_lake::Lake,
    name: &str,
    t: &LakeTable,
) -> Result<Vec<String>, Error> {
    let app = ingesta_core::app_id::table(name, &t.table_id()?);
    let mut out = Vec::new();
    let readers = p.tables.iter().filter(|(_, c)| c.input == name && c.layer != ingesta_config::Layer::Bronze);
    for (reader, _) in readers {
        let position = match LakeTable::open(lake, reader, &lake.table_url(reader)).await? {
            Some(r) => r.position(&app).await?.unwrap_or(-1),
            None => -1,
        };
        if position < t.version() {
            out.push(reader.clone());
        }
    }
    Ok(out)
}
