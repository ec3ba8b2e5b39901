//! Checks that need the whole pipeline: references between entries, columns
//! named by partitions and write modes, globs, the lake root's scheme.

use crate::model::{ColumnType, Format, Layer, PartitionTransform, Pipeline, Source, WriteModeName};

const SCHEMES: [&str; 6] = ["file://", "s3://", "s3a://", "abfss://", "az://", "gs://"];

pub fn validate(p: &Pipeline, err: &mut dyn FnMut(&str, String)) {
    let root = p.lake.root.trim();
    if root.is_empty() {
        err("lake.root", "the lake root is empty; give a folder or an s3://, abfss://, gs:// URL".into());
    } else if root.contains("://") && !SCHEMES.iter().any(|s| root.starts_with(s)) {
        err(
            "lake.root",
            format!("unsupported URL `{root}`; expected a local folder or one of: {}", SCHEMES.join(", ")),
        );
    }
    for (name, source) in &p.sources {
        let Source::Landing(l) = source;
        let at = format!("sources.{name}");
        let path = l.path.trim();
        if path.contains("://") && !SCHEMES.iter().any(|s| path.starts_with(s)) {
            err(
                &format!("{at}.path"),
                format!("unsupported URL `{path}`; expected a local folder or one of: {}", SCHEMES.join(", ")),
            );
        }
        if let Err(e) = globset::Glob::new(&l.glob) {
            err(&format!("{at}.glob"), format!("invalid glob `{}`: {e}", l.glob));
        }
        if l.explode.is_some() && !matches!(l.format, Format::Json | Format::Auto) {
            err(&format!("{at}.explode"), "`explode` applies to `format: json` only".into());
        }
        if l.max_record_bytes.0 < 1024 {
            err(&format!("{at}.max_record_bytes"), "must be at least 1KiB".into());
        }
    }
    let mut fed: std::collections::BTreeMap<&str, &str> = Default::default();
    for (name, t) in &p.tables {
        let at = format!("tables.{name}");
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.starts_with('_') {
            err(&at, format!("table name `{name}` must be letters, digits and `_`, not starting with `_`"));
        }
        if !p.sources.contains_key(&t.input) {
            let known: Vec<&str> = p.sources.keys().map(String::as_str).collect();
            err(&format!("{at}.input"), format!("unknown input `{}`; defined sources: {}", t.input, list(&known)));
        } else if let Some(other) = fed.insert(t.input.as_str(), name.as_str()) {
            err(
                &format!("{at}.input"),
                format!("source `{}` already feeds table `{other}`; a source feeds one table", t.input),
            );
        }
        if t.layer != Layer::Bronze {
            err(
                &format!("{at}.layer"),
                format!("layer `{}` is not available yet: tables read from sources are `bronze`", t.layer.as_str()),
            );
        }
        if t.write.mode != WriteModeName::Append {
            err(&format!("{at}.write.mode"), "bronze tables are append-only; expected `append`".into());
        }
        if t.batch.max_rows == 0 {
            err(&format!("{at}.batch.max_rows"), "must be at least 1".into());
        }
        let columns = t.columns.as_deref().unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        for (i, c) in columns.iter().enumerate() {
            if c.name.starts_with('_') {
                err(
                    &format!("{at}.columns[{i}].name"),
                    format!("column `{}`: names starting with `_` are kept for ingestion metadata", c.name),
                );
            }
            if !seen.insert(c.name.as_str()) {
                err(&format!("{at}.columns[{i}].name"), format!("column `{}` is declared twice", c.name));
            }
        }
        for (i, part) in t.partition_by.iter().enumerate() {
            let pat = format!("{at}.partition_by[{i}]");
            if t.columns.is_none() {
                err(&pat, "partitioning needs declared `columns` (the partition source must have a known type)".into());
                continue;
            }
            match columns.iter().find(|c| c.name == part.from) {
                None => {
                    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                    err(&format!("{pat}.from"), format!("unknown column `{}`; columns: {}", part.from, list(&names)));
                }
                Some(c) if part.transform != PartitionTransform::Identity && c.ty != ColumnType::Timestamp => {
                    err(
                        &format!("{pat}.transform"),
                        format!("`{:?}` needs a timestamp column, `{}` is {:?}", part.transform, c.name, c.ty)
                            .to_lowercase(),
                    );
                }
                Some(_) => {}
            }
            if columns.iter().any(|c| c.name == part.column) {
                err(
                    &format!("{pat}.column"),
                    format!("`{}` is already a record column; pick another name", part.column),
                );
            }
        }
    }
}

fn list(items: &[&str]) -> String {
    if items.is_empty() { "(none)".into() } else { items.join(", ") }
}
