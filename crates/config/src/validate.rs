//! Checks that need the whole pipeline: references between entries, columns
//! named by partitions and write modes, globs, the lake root's scheme.

use crate::model::{
    ColumnType, Format, Layer, Measure, MessageFormat, PartitionTransform, Pipeline, ReadMode, Source, Table,
    WriteModeName,
};

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
    if let Some(serve) = &p.serve {
        if serve.listen.parse::<std::net::SocketAddr>().is_err() {
            let msg = format!("`{}` is not an address; write ip:port like 127.0.0.1:9464", serve.listen);
            err("serve.listen", msg);
        }
        for (key, t) in [("read_token", &serve.read_token), ("admin_token", &serve.admin_token)] {
            if t.as_ref().is_some_and(|t| t.expose().trim().len() < 16) {
                let msg = "a token must have at least 16 characters; set it from the environment, like \
                           `${INGESTA_READ_TOKEN}`, or leave it out (then the server listens on loopback only)";
                err(&format!("serve.{key}"), msg.into());
            }
        }
        if serve.max_rows == 0 {
            err("serve.max_rows", "must be at least 1".into());
        }
    }
    for (name, t) in p.tables.iter().filter(|(_, t)| t.store != crate::model::Store::Warehouse) {
        for (i, _) in t.partition_by.iter().enumerate().filter(|(_, part)| part.retention.is_some()) {
            let msg = format!(
                "`retention` drops old partitions of warehouse tables; table `{name}` is in the lake (see `ingesta compact --vacuum`)"
            );
            err(&format!("tables.{name}.partition_by[{i}].retention"), msg);
        }
    }
    crate::validate_reports::validate(p, err);
    crate::validate_enrich::validate(p, err);
    for (name, source) in &p.sources {
        let at = format!("sources.{name}");
        let l = match source {
            Source::Landing(l) => l,
            Source::Kafka(k) => {
                kafka(k, &at, err);
                continue;
            }
            Source::Http(h) => {
                http(name, h, root, &at, err);
                continue;
            }
            Source::PostgresCdc(c) => {
                crate::validate_sources::postgres_cdc(c, &at, err);
                continue;
            }
            Source::Rest(r) => {
                crate::validate_sources::rest(r, &at, err);
                continue;
            }
            Source::Sql(s) => {
                if s.key.is_empty() && (s.look_back.is_some() || s.sweep.is_some()) {
                    err(&format!("{at}.key"), "`look_back` and `sweep` need the `key` columns".into());
                }
                if s.query.trim().is_empty() {
                    err(&format!("{at}.query"), "the query is empty".into());
                }
                continue;
            }
        };
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
        for (key, c) in [("delimiter", l.csv.delimiter), ("quote", l.csv.quote)] {
            if !c.is_ascii() || c == '\n' || c == '\r' {
                err(
                    &format!("{at}.csv.{key}"),
                    format!("`{c}` cannot be a CSV {key}; use one ASCII character, e.g. `;` or `|`"),
                );
            }
        }
    }
    let mut fed: std::collections::BTreeMap<String, String> = Default::default();
    for (name, t) in &p.tables {
        let at = format!("tables.{name}");
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || name.starts_with('_') {
            err(&at, format!("table name `{name}` must be letters, digits and `_`, not starting with `_`"));
        }
        if t.batch.max_rows == 0 {
            err(&format!("{at}.batch.max_rows"), "must be at least 1".into());
        }
        match t.layer {
            Layer::Bronze => bronze(p, name, t, &at, &mut fed, err),
            Layer::Silver | Layer::Gold => derived(p, name, t, &at, err),
        }
        let mut seen = std::collections::HashSet::new();
        for (i, e) in t.expect.iter().enumerate() {
            if !seen.insert(e.name.as_str()) {
                err(&format!("{at}.expect[{i}].name"), format!("expectation `{}` is named twice", e.name));
            }
            if e.check.trim().is_empty() {
                err(&format!("{at}.expect[{i}].check"), "empty check; write a SQL condition".into());
            }
        }
    }
    for (name, sink) in &p.sinks {
        let at = format!("sinks.{name}");
        let crate::model::Sink::Kafka(k) = sink;
        if !p.tables.contains_key(&k.input) {
            let known: Vec<&str> = p.tables.keys().map(String::as_str).collect();
            err(&format!("{at}.input"), format!("unknown table `{}`; defined tables: {}", k.input, list(&known)));
        } else if !matches!(p.tables[&k.input].write.mode, WriteModeName::Append | WriteModeName::InsertIfAbsent) {
            err(
                &format!("{at}.input"),
                format!("table `{}` is not append-only; a sink publishes appended rows", k.input),
            );
        }
        if k.brokers.trim().is_empty() {
            err(&format!("{at}.brokers"), "no brokers; write host:port[,host:port...]".into());
        }
        if k.topic.trim().is_empty() {
            err(&format!("{at}.topic"), "no topic".into());
        }
        registry_with_avro(k.format == crate::model::SinkFormat::Avro, k.schema_registry.is_some(), &at, err);
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            err(&at, format!("sink name `{name}`: use letters, digits, `_` and `-`"));
        }
        if p.tables.contains_key(name) {
            err(&at, format!("`{name}` is also a table's name; give the sink its own"));
        }
        for key in ["bootstrap.servers", "enable.idempotence"] {
            if k.properties.contains_key(key) {
                err(&format!("{at}.properties.{key}"), format!("`{key}` is set by Ingesta"));
            }
        }
    }
    warehouse(p, err);
    cycles(p, err);
}

/// The warehouse connection, and what tables kept in it can do: be written
/// by a silver or gold transform, read by another as its input (appends) or
/// whole as its lookup; not be read as a change feed.
fn warehouse(p: &Pipeline, err: &mut dyn FnMut(&str, String)) {
    use crate::model::Store;
    let used = p.tables.values().any(|t| t.store == Store::Warehouse);
    if let Some(w) = &p.warehouse {
        let url = w.url.expose().trim();
        if url.is_empty() && !used {
            // `url: ${INGESTA_WAREHOUSE:-}` in a pipeline whose tables may all be in the lake
        } else if url.is_empty() {
            err("warehouse.url", "the URL is empty; set it from the environment: `url: ${INGESTA_WAREHOUSE}`".into());
        } else if !url.starts_with("postgres://") && !url.starts_with("postgresql://") && !url.contains('=') {
            // the URL is never quoted back: it may hold a password
            err("warehouse.url", "expected a libpq URL, postgresql://USER:PASSWORD@HOST:PORT/DATABASE".into());
        }
        if w.pool == 0 {
            err("warehouse.pool", "must be at least 1".into());
        }
    }
    for (name, t) in &p.tables {
        let at = format!("tables.{name}");
        if t.store != Store::Warehouse {
            continue; // a `schema` is the warehouse's: a lake table (`store: ${VAR:-lake}`) ignores it
        }
        if p.warehouse.is_none() {
            err(
                &format!("{at}.store"),
                "the pipeline has no `warehouse`; add `warehouse: {url: ${INGESTA_WAREHOUSE}}`".into(),
            );
        }
        if t.layer == crate::model::Layer::Bronze {
            err(&format!("{at}.store"), "bronze tables live in the lake; keep silver and gold in the warehouse".into());
        }
        warehouse_partitions(t, &at, err);
        if name.len() > 63 || t.schema.as_ref().is_some_and(|s| s.is_empty() || s.len() > 63) {
            err(&at, "PostgreSQL names (the table's and its schema's) are 1 to 63 characters".into());
        }
        for (reader, r) in &p.tables {
            if &r.input == name && r.read == ReadMode::Changes {
                err(
                    &format!("tables.{reader}.read"),
                    format!(
                        "table `{name}` is kept in the warehouse, which keeps no change feed; read its appends, \
                         or read it whole with `transform.lookups: [{name}]` and `sql`"
                    ),
                );
            }
        }
        for (sink, s) in &p.sinks {
            let crate::model::Sink::Kafka(k) = s;
            if &k.input == name {
                err(
                    &format!("sinks.{sink}.input"),
                    format!("table `{name}` is kept in the warehouse; sinks publish lake tables"),
                );
            }
        }
    }
}

/// A schema registry goes with `format: avro`, and only with it (sources and sinks).
fn registry_with_avro(avro: bool, registry: bool, at: &str, err: &mut dyn FnMut(&str, String)) {
    match (avro, registry) {
        (true, false) => {
            err(&format!("{at}.schema_registry"), "`format: avro` needs `schema_registry: {url: ...}`".into())
        }
        (false, true) => {
            err(&format!("{at}.schema_registry"), "a schema registry is used by `format: avro` only".into())
        }
        _ => {}
    }
}

/// A Kafka source: what to read and how to decode it.
fn kafka(k: &crate::model::Kafka, at: &str, err: &mut dyn FnMut(&str, String)) {
    if k.brokers.trim().is_empty() {
        err(&format!("{at}.brokers"), "no brokers; write host:port[,host:port...]".into());
    }
    match (&k.pattern, k.topics.is_empty()) {
        (None, true) => err(at, "no topics; give `topics: [name, ...]` or `pattern: ^regex`".into()),
        (Some(_), false) => err(&format!("{at}.pattern"), "give `topics` or `pattern`, not both".into()),
        (Some(p), true) if !p.starts_with('^') => {
            err(&format!("{at}.pattern"), format!("pattern `{p}` must start with `^` (a regular expression)"))
        }
        _ => {}
    }
    registry_with_avro(k.format == MessageFormat::Avro, k.schema_registry.is_some(), at, err);
    for key in ["bootstrap.servers", "group.id", "enable.auto.commit", "enable.auto.offset.store"] {
        if k.properties.contains_key(key) {
            err(
                &format!("{at}.properties.{key}"),
                format!("`{key}` is set by Ingesta (exactly once needs it); use `brokers` / `group` instead"),
            );
        }
    }
    if k.max_record_bytes.0 < 1024 {
        err(&format!("{at}.max_record_bytes"), "must be at least 1KiB".into());
    }
}

/// An HTTP collector source: where it listens, its token and limits.
fn http(name: &str, h: &crate::model::Http, root: &str, at: &str, err: &mut dyn FnMut(&str, String)) {
    if h.listen.parse::<std::net::SocketAddr>().is_err() {
        err(&format!("{at}.listen"), format!("`{}` is not an address; write ip:port like 0.0.0.0:8088", h.listen));
    }
    if h.token.expose().trim().is_empty() {
        err(
            &format!("{at}.token"),
            "the token is empty; set it from the environment, like `token: ${TRACKER_TOKEN}`".into(),
        );
    }
    let remote = root.contains("://") && !root.starts_with("file://");
    if h.wal.is_none() && remote {
        err(
            &format!("{at}.wal"),
            "the lake is an object store; give `wal:` a local folder for the collector's log".into(),
        );
    }
    if h.wal.as_deref().is_some_and(|w| w.contains("://")) {
        err(&format!("{at}.wal"), "the write-ahead log must be a local folder".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        err(at, format!("source `{name}` is a URL path (`/ingest/{name}`): use letters, digits, `_` and `-`"));
    }
    if h.max_record_bytes.0 < 1024 {
        err(&format!("{at}.max_record_bytes"), "must be at least 1KiB".into());
    }
    if h.max_body_bytes.0 < h.max_record_bytes.0 {
        err(&format!("{at}.max_body_bytes"), "must be at least `max_record_bytes`".into());
    }
}

/// A bronze table: fed by a source, with declared or inferred record columns.
fn bronze(
    p: &Pipeline,
    name: &str,
    t: &Table,
    at: &str,
    fed: &mut std::collections::BTreeMap<String, String>,
    err: &mut dyn FnMut(&str, String),
) {
    if !p.sources.contains_key(&t.input) {
        let known: Vec<&str> = p.sources.keys().map(String::as_str).collect();
        let hint = if p.tables.contains_key(&t.input) { "; tables read tables in layer silver or gold" } else { "" };
        err(&format!("{at}.input"), format!("unknown source `{}`; defined sources: {}{hint}", t.input, list(&known)));
    } else if let Some(other) = fed.insert(t.input.clone(), name.to_string()) {
        err(
            &format!("{at}.input"),
            format!("source `{}` already feeds table `{other}`; a source feeds one table", t.input),
        );
    }
    if t.write.mode != WriteModeName::Append {
        err(&format!("{at}.write.mode"), "bronze tables are append-only; expected `append`".into());
    }
    if t.read != ReadMode::Appends {
        err(&format!("{at}.read"), "bronze tables read a source; `read` is for silver and gold tables".into());
    }
    if let Some(Source::Kafka(k)) = p.sources.get(&t.input) {
        match k.format {
            MessageFormat::String | MessageFormat::Bytes if t.columns.is_some() => err(
                &format!("{at}.columns"),
                "`format: string` and `bytes` tables have one record column, `value`; remove `columns`".into(),
            ),
            MessageFormat::Avro if t.columns.is_none() => err(
                &format!("{at}.columns"),
                "declare `columns` for Avro topics (the registry's schema is not read for inference yet)".into(),
            ),
            _ => {}
        }
    }
    let tr = &t.transform;
    if tr.sql.is_some() || tr.select.is_some() || tr.filter.is_some() || tr.dedupe.is_some() || tr.explode.is_some() {
        err(&format!("{at}.transform"), "bronze keeps records as read; transform them in a silver table".into());
    }
    if !t.expect.is_empty() {
        err(&format!("{at}.expect"), "expectations apply to silver and gold tables (bronze keeps what arrived)".into());
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
        let Some(from) = &part.from else {
            err(&pat, "missing key `from`: the record column the partition is computed from".into());
            continue;
        };
        match columns.iter().find(|c| &c.name == from) {
            None => {
                let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
                err(&format!("{pat}.from"), format!("unknown column `{from}`; columns: {}", list(&names)));
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
            err(&format!("{pat}.column"), format!("`{}` is already a record column; pick another name", part.column));
        }
    }
}

/// A silver or gold table: reads another table's new rows.
fn derived(p: &Pipeline, name: &str, t: &Table, at: &str, err: &mut dyn FnMut(&str, String)) {
    let tables: Vec<&str> = p.tables.keys().map(String::as_str).collect();
    match p.tables.get(&t.input) {
        None => {
            let hint = if p.sources.contains_key(&t.input) { "; sources feed bronze tables" } else { "" };
            err(&format!("{at}.input"), format!("unknown table `{}`; tables: {}{hint}", t.input, list(&tables)));
        }
        Some(_) if t.input == name => err(&format!("{at}.input"), "a table cannot read itself".into()),
        Some(up)
            if t.read == ReadMode::Appends
                && !matches!(up.write.mode, WriteModeName::Append | WriteModeName::InsertIfAbsent) =>
        {
            err(
                &format!("{at}.input"),
                format!(
                    "`{}` changes rows in place (write mode {}), so its appended rows are not all it does. \
                     Read its changes (`read: changes`: every insert, update and delete, with \
                     `_change_type`), or read it whole with `transform.lookups` and `sql`",
                    t.input,
                    up.write.mode.as_str()
                ),
            )
        }
        Some(_) => {}
    }
    for (i, l) in t.transform.lookups.iter().enumerate() {
        if !p.tables.contains_key(l) {
            err(&format!("{at}.transform.lookups[{i}]"), format!("unknown table `{l}`; tables: {}", list(&tables)));
        }
    }
    if t.columns.is_some() {
        err(&format!("{at}.columns"), "silver and gold columns come from `transform`; remove `columns`".into());
    }
    let tr = &t.transform;
    let steps = tr.select.is_some() || tr.filter.is_some() || tr.dedupe.is_some() || tr.explode.is_some();
    if tr.sql.is_some() && steps {
        err(
            &format!("{at}.transform.sql"),
            "`sql` replaces the other steps; use either `sql` or explode/select/filter/dedupe".into(),
        );
    }
    if tr.sql.is_none() && !tr.lookups.is_empty() {
        err(&format!("{at}.transform.lookups"), "lookups are read by `sql`; add a `sql` query".into());
    }
    if let Some(d) = &tr.dedupe
        && d.key.is_empty()
    {
        err(&format!("{at}.transform.dedupe.key"), "name at least one key column".into());
    }
    for (i, part) in t.partition_by.iter().enumerate() {
        let in_lake = t.store != crate::model::Store::Warehouse; // a warehouse table may cut by `month`
        if part.from.is_some() || (part.transform != PartitionTransform::Identity && in_lake) {
            err(
                &format!("{at}.partition_by[{i}]"),
                "silver and gold partitions are output columns: give only `column` (compute it in the transform)"
                    .into(),
            );
        }
    }
    let w = &t.write;
    let needs_key = w.mode != WriteModeName::Append;
    if needs_key && w.key.is_empty() {
        err(&format!("{at}.write.key"), format!("write mode `{}` needs `key` columns", w.mode.as_str()));
    }
    if !needs_key && !w.key.is_empty() {
        err(&format!("{at}.write.key"), "`append` takes no key; use insert_if_absent, upsert or aggregate".into());
    }
    let versioned = matches!(w.mode, WriteModeName::Upsert | WriteModeName::Scd2);
    match (versioned, &w.sequence) {
        (true, None) => err(
            &format!("{at}.write.sequence"),
            format!("{} needs `sequence`: the column that orders versions of a key", w.mode.as_str()),
        ),
        (true, Some(s)) if w.key.contains(s) => err(
            &format!("{at}.write.sequence"),
            format!("`{s}` is a key column; the sequence orders versions of one key, so it must be another column"),
        ),
        (true, Some(_)) | (false, None) => {}
        (false, Some(_)) => err(&format!("{at}.write.sequence"), "`sequence` applies to upsert and scd2 only".into()),
    }
    if w.delete_when.is_some() && w.mode != WriteModeName::Upsert {
        err(&format!("{at}.write.delete_when"), "`delete_when` applies to upsert only".into());
    }
    if w.truncate_when.is_some() && (w.mode != WriteModeName::Upsert || w.delete_when.is_none()) {
        let msg = "`truncate_when` applies to upsert with `delete_when` (a truncate deletes the keys before it)";
        err(&format!("{at}.write.truncate_when"), msg.into());
    }
    let feeds = t.change_feed || p.tables.values().any(|r| r.input == name && r.read == ReadMode::Changes);
    if w.mode == WriteModeName::Scd2 && feeds {
        let msg = "an scd2 table keeps no change feed yet (`change_feed`, or a reader with `read: changes`); \
                   read it whole with `transform.lookups`";
        err(&format!("{at}.write.mode"), msg.into());
    }
    if w.mode == WriteModeName::Aggregate {
        if w.measures.is_empty() {
            err(
                &format!("{at}.write.measures"),
                "aggregate needs `measures` (column: sum|min|max|last|avg(sum, count)|set|count_distinct(set))".into(),
            );
        }
        for (m, kind) in &w.measures {
            if let Measure::Avg { sum, count } = kind {
                for c in [sum, count] {
                    if w.measures.get(c) != Some(&Measure::Sum) {
                        err(
                            &format!("{at}.write.measures.{m}"),
                            format!("`{c}` must be a `sum` measure of this table for avg to stay exact"),
                        );
                    }
                }
            }
            if let Measure::CountDistinct { set } = kind
                && w.measures.get(set) != Some(&Measure::Set)
            {
                err(
                    &format!("{at}.write.measures.{m}"),
                    format!(
                        "`{set}` must be a `set` measure of this table (e.g. `array_agg(DISTINCT customer_id) AS {set}`) \
                         for the count to stay exact"
                    ),
                );
            }
        }
    } else if !w.measures.is_empty() {
        err(&format!("{at}.write.measures"), "`measures` apply to write mode aggregate only".into());
    }
}

/// Tables reading each other in a circle can never run.
fn cycles(p: &Pipeline, err: &mut dyn FnMut(&str, String)) {
    let order = p.run_order();
    let mut done: Vec<&str> = Vec::new();
    for name in &order {
        let t = &p.tables[name];
        let waits: Vec<String> =
            t.upstream().into_iter().filter(|u| p.tables.contains_key(u) && !done.contains(&u.as_str())).collect();
        if !waits.is_empty() && t.layer != Layer::Bronze {
            err(
                &format!("tables.{name}.input"),
                format!("tables read each other in a cycle (through {})", waits.join(", ")),
            );
        }
        done.push(name);
    }
}

fn list(items: &[&str]) -> String {
    if items.is_empty() { "(none)".into() } else { items.join(", ") }
}

/// A warehouse table is range-partitioned by one time column, by day or
/// month; PostgreSQL's unique indexes on it must hold that column.
fn warehouse_partitions(t: &Table, at: &str, err: &mut dyn FnMut(&str, String)) {
    use crate::model::PartitionTransform as T;
    if t.partition_by.len() > 1 {
        err(&format!("{at}.partition_by"), "a warehouse table is partitioned by one time column".into());
    }
    let Some(p) = t.partition_by.first() else { return };
    let pat = format!("{at}.partition_by[0]");
    if !matches!(p.transform, T::Identity | T::Day | T::Month) {
        err(&format!("{pat}.transform"), "a warehouse table is partitioned by `day` (the default) or `month`".into());
    }
    if !t.write.key.is_empty() && !t.write.key.contains(&p.column) {
        let msg = format!(
            "the key must hold the partition column `{}` (PostgreSQL's unique indexes on a partitioned table do): \
             add it to `write.key`",
            p.column
        );
        err(&format!("{at}.write.key"), msg);
    }
}
