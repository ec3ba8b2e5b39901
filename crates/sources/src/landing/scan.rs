//! Listing the landing folder twice, `settle` apart, and keeping the files that
//! did not change in between.

use std::collections::HashMap;
use std::path::Path;
use std::time::UNIX_EPOCH;

use ingesta_config::{Compression, Format};
use ingesta_core::FileKey;

use super::{FileInfo, Landing, Scan};

pub fn scan(src: &Landing) -> std::io::Result<Scan> {
    if let Some(remote) = &src.remote {
        return scan_remote(src, remote);
    }
    if !src.root.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("landing folder `{}` of source `{}` does not exist", src.root.display(), src.name),
        ));
    }
    let mut out = Scan::default();
    let first = list(src, &mut out.unreadable)?;
    if !src.config.settle.0.is_zero() {
        std::thread::sleep(src.config.settle.0);
    }
    let second: HashMap<String, (u64, i64)> = list(src, &mut Vec::new())?.into_iter().collect();
    for (rel, stat) in first {
        match second.get(&rel) {
            Some(now) if *now == stat => {}
            Some(_) => {
                out.unsettled.push(rel);
                continue;
            }
            None => continue,
        }
        let (format, compression, problem) = match src.detect(&rel) {
            Ok((f, c)) => (f, c, None),
            Err(why) => (Format::Auto, Compression::None, Some(why)),
        };
        out.ready.push(FileInfo {
            key: FileKey { source: src.name.clone(), path: rel.clone(), size: stat.0, mtime_ms: stat.1 },
            path: src.root.join(&rel),
            format,
            compression,
            problem,
            object: None,
        });
    }
    out.ready.sort_by(|a, b| a.key.path.cmp(&b.key.path));
    Ok(out)
}

type Listing = Vec<(String, (u64, i64))>;

/// (relative path, (size, mtime ms)) of every matching file; entries that
/// cannot be looked at go to `unreadable` with the reason.
fn list(src: &Landing, unreadable: &mut Vec<(String, String)>) -> std::io::Result<Listing> {
    let mut out = Vec::new();
    walk(&src.root, &src.root, src, &mut out, unreadable)?;
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &Path,
    src: &Landing,
    out: &mut Listing,
    unreadable: &mut Vec<(String, String)>,
) -> std::io::Result<()> {
    let rel_of = |p: &Path| p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/");
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if dir == root => return Err(e),
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
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                if entry.file_type().is_ok_and(|t| t.is_symlink()) && src.glob.is_match(&rel) {
                    unreadable.push((rel, format!("cannot read the file: {e} (a link to a missing file?)")));
                }
                continue; // otherwise removed while we looked
            }
        };
        if meta.is_dir() {
            walk(root, &path, src, out, unreadable)?;
            continue;
        }
        if !src.glob.is_match(&rel) {
            continue;
        }
        let mtime =
            meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_millis() as i64);
        out.push((rel, (meta.len(), mtime)));
    }
    Ok(())
}

/// The same for an object-store prefix: two listings `settle` apart; a file
/// is ready when its size, time and etag did not change.
fn scan_remote(src: &Landing, remote: &super::remote::Remote) -> std::io::Result<Scan> {
    let wanted = |rel: &str| {
        !rel.split('/').any(|part| part.starts_with('_') || part.starts_with('.')) && src.glob.is_match(rel)
    };
    let first: Vec<_> = remote.list()?.into_iter().filter(|(rel, _)| wanted(rel)).collect();
    if !src.config.settle.0.is_zero() {
        std::thread::sleep(src.config.settle.0);
    }
    let second: HashMap<String, object_store::ObjectMeta> = remote.list()?.into_iter().collect();
    let mut out = Scan::default();
    for (rel, meta) in first {
        match second.get(&rel) {
            Some(now)
                if now.size == meta.size && now.last_modified == meta.last_modified && now.e_tag == meta.e_tag => {}
            Some(_) => {
                out.unsettled.push(rel);
                continue;
            }
            None => continue,
        }
        let (format, compression, problem) = match src.detect(&rel) {
            Ok((f, c)) => (f, c, None),
            Err(why) => (Format::Auto, Compression::None, Some(why)),
        };
        out.ready.push(FileInfo {
            key: FileKey {
                source: src.name.clone(),
                path: rel.clone(),
                size: meta.size,
                mtime_ms: meta.last_modified.timestamp_millis(),
            },
            path: std::path::PathBuf::from(&rel),
            format,
            compression,
            problem,
            object: Some(meta),
        });
    }
    out.ready.sort_by(|a, b| a.key.path.cmp(&b.key.path));
    Ok(out)
}
