//! Reading a pipeline file: interpolate, parse, deserialise each entry on its
//! own (so one bad table does not hide the next), then validate references.

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::interpolate::{Substitution, interpolate};

use crate::model::{
    Alert, Expansion, Generated, Lake, Pipeline, Redis, Replicas, Report, Serve, Sink, Source, Table, Vault, Warehouse,
};
use crate::spans::Spans;
use crate::validate::validate;

/// A table a declaration generated after the file was loaded (the runtime's
/// discovered replicas), read as any table.
pub fn generated_table(g: &Generated) -> Result<Table, String> {
    let mut t: Table = serde_yaml::from_value(g.table.clone()).map_err(|e| format!("{}: {e}", g.origin))?;
    t.write.resolve_replica();
    Ok(t)
}

/// Reads and validates a pipeline file, with `${VAR}` taken from the environment.
pub fn load_file(path: &Path) -> Result<Pipeline, Diagnostics> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic {
            file: file.clone(),
            line: 1,
            column: 1,
            path: String::new(),
            message: format!("cannot read the pipeline file: {e}"),
        }])
    })?;
    load_str(&file, &text, |k| std::env::var(k).ok())
}

/// Reads and validates pipeline text; `file` names it in errors.
pub fn load_str(file: &str, text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Pipeline, Diagnostics> {
    let (text, subs, missing) = interpolate(text, env);
    let mut ctx = Ctx { file, spans: Spans::parse(&text), subs, errors: Vec::new() };
    for m in missing {
        ctx.errors.push(Diagnostic {
            file: file.to_string(),
            line: m.line,
            column: m.column,
            path: String::new(),
            message: format!(
                "environment variable `{}` is not set and has no default; set it, or write `${{{}:-default}}`",
                m.var, m.var
            ),
        });
    }
    let root: Value = match serde_yaml::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((1, 1));
            ctx.push_at(line, column, "", format!("not valid YAML: {e}"));
            return Err(Diagnostics(ctx.errors));
        }
    };
    let mut pipeline = ctx.pipeline(root);
    if let Some(p) = &mut pipeline {
        validate(p, &mut |path, msg| ctx.push(path, msg));
        let env_lines = ctx.subs.iter().map(|s| (s.line, s.var.clone())).collect();
        p.origin = Origin::new(file, std::mem::take(&mut ctx.spans), env_lines);
    }
    match pipeline {
        Some(p) if ctx.errors.is_empty() => Ok(p),
        _ => {
            ctx.errors.sort_by_key(|d| (d.line, d.column));
            Err(Diagnostics(ctx.errors))
        }
    }
}

/// Where the keys of a loaded pipeline are in its file: checks that run after
/// loading (planning SQL against the lake) report through it.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    file: String,
    spans: std::sync::Arc<Spans>,
    /// Lines whose values came from the environment (line, variable).
    env_lines: Vec<(usize, String)>,
}

impl Origin {
    fn new(file: &str, spans: Spans, env_lines: Vec<(usize, String)>) -> Self {
        Self { file: file.to_string(), spans: std::sync::Arc::new(spans), env_lines }
    }

    /// A mistake at the value of key `path`.
    pub fn diagnostic(&self, path: &str, message: String) -> Diagnostic {
        let (line, column) = self.spans.locate(path);
        let message = match self.env_lines.iter().find(|(l, _)| *l == line) {
            Some((_, var)) => format!("{} (the value comes from ${{{var}}} and is not shown)", redact(&message)),
            None => message,
        };
        Diagnostic { file: self.file.clone(), line, column, path: path.to_string(), message }
    }
}

struct Ctx<'a> {
    file: &'a str,
    spans: Spans,
    subs: Vec<Substitution>,
    errors: Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn push(&mut self, path: &str, message: String) {
        let (line, column) =
            if message.starts_with("unknown key") { self.spans.locate_key(path) } else { self.spans.locate(path) };
        self.push_at(line, column, path, message);
    }

    fn push_at(&mut self, line: usize, column: usize, path: &str, message: String) {
        // A value that came from the environment may be a secret: do not echo it.
        let message = match self.subs.iter().find(|s| s.line == line) {
            Some(s) => format!("{} (the value comes from ${{{}}} and is not shown)", redact(&message), s.var),
            None => message,
        };
        self.errors.push(Diagnostic { file: self.file.to_string(), line, column, path: path.to_string(), message });
    }

    fn pipeline(&mut self, root: Value) -> Option<Pipeline> {
        let Value::Mapping(mut map) = root else {
            self.push("", "the pipeline file must be a mapping with `pipeline`, `lake`, `sources` and `tables`".into());
            return None;
        };
        let name = self.required::<String>(&mut map, "pipeline");
        let lake = self.required::<Lake>(&mut map, "lake");
        let sources = self.entries(&mut map, "sources", Self::source);
        let tables = self.entries(&mut map, "tables", |ctx, at, v| ctx.de::<Table>(at, v));
        let vaults = self.entries(&mut map, "vaults", |ctx, at, v| ctx.de::<Vault>(at, v));
        let replicas = self.entries(&mut map, "replicas", |ctx, at, v| ctx.de::<Replicas>(at, v));
        let tables = match (tables, vaults, &replicas) {
            (Some(t), Some(v), Some(r)) => {
                let vaults = v.into_iter().map(|(name, v)| v.expand(&format!("vaults.{name}")));
                let replicas = r.iter().map(|(name, r)| r.expand(&format!("replicas.{name}")));
                Some(self.add_generated(t, vaults.chain(replicas).collect()))
            }
            _ => None,
        };
        let tables = tables.map(|mut t| {
            t.values_mut().for_each(|t| t.write.resolve_replica());
            t
        });
        let sinks = self.entries(&mut map, "sinks", Self::sink);
        let reports = self.entries(&mut map, "reports", |ctx, at, v| ctx.de::<Report>(at, v));
        let alerts = self.entries(&mut map, "alerts", |ctx, at, v| ctx.de::<Alert>(at, v));
        let serve = match map.remove("serve") {
            None | Some(Value::Null) => Some(None),
            Some(v) => self.de::<Serve>("serve", v).map(Some),
        };
        let warehouse = match map.remove("warehouse") {
            None | Some(Value::Null) => Some(None),
            Some(v) => self.de::<Warehouse>("warehouse", v).map(Some),
        };
        let redis = match map.remove("redis") {
            None | Some(Value::Null) => Some(None),
            Some(v) => self.de::<Redis>("redis", v).map(Some),
        };
        for (k, _) in map {
            let key = scalar_text(&k);
            let known =
                "pipeline, lake, warehouse, redis, sources, tables, vaults, replicas, sinks, serve, reports, alerts";
            self.push(&key, format!("unknown key `{key}`; expected one of: {known}"));
        }
        Some(Pipeline {
            pipeline: name?,
            lake: lake?,
            warehouse: warehouse?,
            redis: redis?,
            sources: sources?,
            tables: tables?,
            sinks: sinks?,
            serve: serve?,
            reports: reports?,
            replicas: replicas?,
            alerts: alerts?,
            origin: Origin::default(),
        })
    }

    /// Adds the tables of each declaration (a vault's hubs, links and
    /// satellites; replicas and histories) to `tables`; their mistakes
    /// point at the declaration they come from.
    fn add_generated(
        &mut self,
        mut tables: BTreeMap<String, Table>,
        generated: Vec<Expansion>,
    ) -> BTreeMap<String, Table> {
        for expanded in generated {
            match expanded {
                Ok(generated) => {
                    for g in generated {
                        if tables.contains_key(&g.name) {
                            self.push(&g.origin, format!("`{}` is also a table of `tables`; rename one", g.name));
                            continue;
                        }
                        self.spans.alias(&format!("tables.{}", g.name), &g.origin);
                        if let Some(t) = self.de::<Table>(&g.origin, g.table) {
                            tables.insert(g.name, t);
                        }
                    }
                }
                Err(errors) => errors.into_iter().for_each(|(path, message)| self.push(&path, message)),
            }
        }
        tables
    }

    fn required<T: DeserializeOwned>(&mut self, map: &mut Mapping, key: &str) -> Option<T> {
        match map.remove(key) {
            Some(v) => self.de(key, v),
            None => {
                self.push("", format!("missing key `{key}`"));
                None
            }
        }
    }

    /// A source: its `type` picks the struct the other keys are read into (done
    /// here rather than by serde's internal tagging, which loses key paths).
    fn source(&mut self, at: &str, v: Value) -> Option<Source> {
        let (ty, m) = self.typed(at, v, "source", &Source::TYPES)?;
        match ty.as_str() {
            "landing" => self.de(at, m).map(Source::Landing),
            "kafka" => self.de(at, m).map(Source::Kafka),
            "http" => self.de(at, m).map(Source::Http),
            "postgres_cdc" => self.de(at, m).map(Source::PostgresCdc),
            "sql" => self.de(at, m).map(Source::Sql),
            "rest" => self.de(at, m).map(Source::Rest),
            _ => unreachable!("`typed` accepts Source::TYPES only"),
        }
    }

    /// A sink: its `type` picks the struct, as for sources.
    fn sink(&mut self, at: &str, v: Value) -> Option<Sink> {
        let (_, m) = self.typed(at, v, "sink", &Sink::TYPES)?;
        self.de(at, m).map(Sink::Kafka)
    }

    /// An entry's `type` (one of `types`) and its other keys.
    fn typed(&mut self, at: &str, v: Value, what: &str, types: &[&str]) -> Option<(String, Value)> {
        let Value::Mapping(mut m) = v else {
            self.push(at, format!("a {what} must be a mapping with a `type`"));
            return None;
        };
        match m.remove("type").map(|t| scalar_text(&t)) {
            Some(t) if types.contains(&t.as_str()) => Some((t, Value::Mapping(m))),
            Some(other) => {
                let msg = format!("unknown {what} type `{other}`; expected one of: {}", types.join(", "));
                self.push(&format!("{at}.type"), msg);
                None
            }
            None => {
                self.push(at, format!("missing key `type`; expected one of: {}", types.join(", ")));
                None
            }
        }
    }

    fn entries<T>(
        &mut self,
        map: &mut Mapping,
        key: &str,
        read: impl Fn(&mut Self, &str, Value) -> Option<T>,
    ) -> Option<std::collections::BTreeMap<String, T>> {
        let mut out = std::collections::BTreeMap::new();
        let entries = match map.remove(key) {
            None | Some(Value::Null) => return Some(out),
            Some(Value::Mapping(m)) => m,
            Some(_) => {
                self.push(key, format!("`{key}` must be a mapping of names to definitions"));
                return None;
            }
        };
        let mut ok = true;
        for (k, v) in entries {
            let name = scalar_text(&k);
            match read(self, &format!("{key}.{name}"), v) {
                Some(t) => {
                    out.insert(name, t);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn de<T: DeserializeOwned>(&mut self, prefix: &str, v: Value) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(v) {
            Ok(t) => Some(t),
            Err(e) => {
                let inner = e.path().to_string();
                let path = if inner == "." || inner.is_empty() {
                    prefix.to_string()
                } else if inner.starts_with('[') {
                    format!("{prefix}{inner}")
                } else {
                    format!("{prefix}.{inner}")
                };
                let message = friendly(&e.into_inner().to_string());
                self.push(&path, message);
                None
            }
        }
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
    }
}

/// serde's messages, worded for a person editing YAML.
fn friendly(msg: &str) -> String {
    let msg = msg.replace("unknown field", "unknown key").replace("missing field", "missing key");
    msg.replace("unknown variant", "unknown value")
}

/// Removes quoted values from a message.
fn redact(msg: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in msg.chars() {
        if c == '`' || c == '"' {
            if !quoted {
                out.push_str("<hidden>");
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}
