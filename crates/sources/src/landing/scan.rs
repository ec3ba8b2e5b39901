//! Listing the landing folder (or object-store prefix). A file last
//! modified longer than `settle` ago is taken at once; the others are looked
//! at again `settle` later and kept only if they did not change in between
//! (so a run over a quiet folder does not wait).

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ingesta_config::{Compression, Format};
use ingesta_core::FileKey;

use super::{FileInfo, Landing, Scan};

/// One listed file.
struct Entry {
    /// Path relative to the folder or prefix, with `/`.
    rel: String,
    size: u64,
    mtime_ms: i64,
    appeared_ms: i64,
    etag: Option<String>,
    object: Option<object_store::ObjectMeta>,
}

impl Entry {
    fn unchanged(&self, later: &Entry) -> bool {
        (self.size, self.mtime_ms, &self.etag) == (later.size, later.mtime_ms, &later.etag)
    }
}

pub fn scan(src: &Landing, taken_before: Option<i64>) -> std::io::Result<Scan> {
    let mut out = Scan::default();
    let settle = src.config.settle.0;
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let quiet_since = now_ms - settle.as_millis() as i64;
    let keep = |e: &Entry| taken_before.is_none_or(|w| e.appeared_ms > w);
    let (settled, recent): (Vec<Entry>, Vec<Entry>) =
        listing(src, &keep, &mut out.unreadable)?.into_iter().partition(|e| e.mtime_ms <= quiet_since);
    out.ready.extend(settled.into_iter().map(|e| file_info(src, e)));
    if !recent.is_empty() {
        std::thread::sleep(settle);
        let second: HashMap<String, Entry> =
            listing(src, &keep, &mut Vec::new())?.into_iter().map(|e| (e.rel.clone(), e)).collect();
        for e in recent {
            match second.get(&e.rel) {
                Some(now) if e.unchanged(now) => out.ready.push(file_info(src, e)),
                Some(_) => out.unsettled.push(e.rel),
                None => {} // removed while we looked
            }
        }
    }
    out.ready.sort_by(|a, b| a.key.path.cmp(&b.key.path));
    Ok(out)
}

fn file_info(src: &Landing, e: Entry) -> FileInfo {
    let (format, compression, problem) = match src.detect(&e.rel) {
        Ok((f, c)) => (f, c, None),
        Err(why) => (Format::Auto, Compression::None, Some(why)),
    };
    FileInfo {
        key: FileKey { source: src.name.clone(), path: e.rel.clone(), size: e.size, mtime_ms: e.mtime_ms },
        path: src.root.join(&e.rel),
        format,
        compression,
        problem,
        object: e.object,
        appeared_ms: e.appeared_ms,
    }
}

/// Every matching file that `keep` keeps, decided as each is listed;
/// entries that cannot be looked at go to `unreadable`.
fn listing(
    src: &Landing,
    keep: &dyn Fn(&Entry) -> bool,
    unreadable: &mut Vec<(String, String)>,
) -> std::io::Result<Vec<Entry>> {
    if let Some(remote) = &src.remote {
        let wanted = |rel: &str| {
            !rel.split('/').any(|part| part.starts_with('_') || part.starts_with('.')) && src.glob.is_match(rel)
        };
        return Ok(remote
            .list()?
            .into_iter()
            .filter(|(rel, _)| wanted(rel))
            .map(|(rel, m)| Entry {
                rel,
                size: m.size,
                mtime_ms: m.last_modified.timestamp_millis(),
                appeared_ms: m.last_modified.timestamp_millis(),
                etag: m.e_tag.clone(),
                object: Some(m),
            })
            .filter(keep)
            .collect());
    }
    if !src.root.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("landing folder `{}` of source `{}` does not exist", src.root.display(), src.name),
        ));
    }
    let mut out = Vec::new();
    let root_changed = std::fs::metadata(&src.root).map_or(i64::MAX, |m| changed(&m));
    let walk_ctx = Walk { root: &src.root, src, keep };
    walk_ctx.walk(&src.root, root_changed, &mut out, unreadable)?;
    Ok(out)
}

/// A local listing: the folder, its source, and which entries to keep.
struct Walk<'a> {
    root: &'a Path,
    src: &'a Landing,
    keep: &'a dyn Fn(&Entry) -> bool,
}

impl Walk<'_> {
    /// Lists `dir` and its subfolders, skipping names that start with `_` or
    /// `.`; `folders` is the latest change time of `dir` and the folders
    /// above it (a folder moved in changes, its files do not).
    fn walk(
        &self,
        dir: &Path,
        folders: i64,
        out: &mut Vec<Entry>,
        unreadable: &mut Vec<(String, String)>,
    ) -> std::io::Result<()> {
        let rel_of = |p: &Path| p.strip_prefix(self.root).unwrap_or(p).to_string_lossy().replace('\\', "/");
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if dir == self.root => return Err(e),
            Err(e) => {
                unreadable.push((rel_of(dir), format!("cannot list the folder: {e}")));
                return Ok(());
            }
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('_') || name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let rel = rel_of(&path);
            // the type comes with the listing: a file the glob leaves out is not looked at
            let kind = entry.file_type().ok();
            let symlink = kind.is_some_and(|t| t.is_symlink());
            if kind.is_some_and(|t| t.is_file()) && !self.src.glob.is_match(&rel) {
                continue;
            }
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    if symlink && self.src.glob.is_match(&rel) {
                        unreadable.push((rel, format!("cannot read the file: {e} (a link to a missing file?)")));
                    }
                    continue; // otherwise removed while we looked
                }
            };
            // a link: when it was made counts too, not only its target's times
            let link = match symlink {
                true => std::fs::symlink_metadata(&path).map_or(i64::MAX, |m| changed(&m)),
                false => i64::MIN,
            };
            if meta.is_dir() {
                self.walk(&path, folders.max(changed(&meta)).max(link), out, unreadable)?;
                continue;
            }
            if !self.src.glob.is_match(&rel) {
                continue;
            }
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as i64);
            let appeared_ms = mtime.max(changed(&meta)).max(folders).max(link);
            let e = Entry { rel, size: meta.len(), mtime_ms: mtime, appeared_ms, etag: None, object: None };
            if (self.keep)(&e) {
                out.push(e);
            }
        }
        Ok(())
    }
}

/// An entry's status-change time in milliseconds (its modification time
/// where there is none).
#[cfg(unix)]
fn changed(meta: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.ctime() * 1000 + meta.ctime_nsec() / 1_000_000
}

#[cfg(not(unix))]
fn changed(meta: &std::fs::Metadata) -> i64 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(i64::MAX, |d| d.as_millis() as i64)
}
