//! Checks of `reports:` and `alerts:` that need no lake: names, parameter types and
//! defaults, placeholders against declared parameters. Planning each query
//! against the tables' columns happens in the runtime's `check`.

use std::collections::BTreeSet;

use crate::model::{ParamType, Pipeline};

pub fn validate(p: &Pipeline, err: &mut dyn FnMut(&str, String)) {
    validate_alerts(p, err);
    for (name, r) in &p.reports {
        let at = format!("reports.{name}");
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            err(&at, format!("report name `{name}` must be letters, digits, `_` or `-` (it is a URL path)"));
        }
        if r.sql.trim().is_empty() {
            err(&format!("{at}.sql"), "the query is empty".into());
        }
        let mut seen = BTreeSet::new();
        for (i, param) in r.params.iter().enumerate() {
            let at = format!("{at}.params[{i}]");
            if !is_identifier(&param.name) {
                let msg = format!("`{}` is not a parameter name; use letters, digits and `_`", param.name);
                err(&format!("{at}.name"), msg);
            }
            if !seen.insert(param.name.as_str()) {
                err(&format!("{at}.name"), format!("parameter `{}` is declared twice", param.name));
            }
            match (param.kind, param.values.is_empty()) {
                (ParamType::Enum, true) => err(&at, "an enum parameter needs `values: [...]`".into()),
                (ParamType::Enum, false) | (_, true) => {}
                (_, false) => err(&format!("{at}.values"), "`values` applies to `type: enum` only".into()),
            }
            if let Some(d) = param.default_text()
                && let Err(e) = param.parse(&d)
            {
                err(&format!("{at}.default"), e);
            }
        }
        let used = placeholders(&r.sql);
        for u in &used {
            if !seen.contains(u.as_str()) {
                let declared = if seen.is_empty() { "none".to_string() } else { list(&seen) };
                let msg = format!("the query uses `${u}`, which is not a declared parameter (declared: {declared})");
                err(&format!("{at}.sql"), msg);
            }
        }
        for (i, param) in r.params.iter().enumerate() {
            if !used.contains(&param.name) {
                let msg = format!(
                    "parameter `{}` is not used in the query (write `${}` where it goes)",
                    param.name, param.name
                );
                err(&format!("{at}.params[{i}].name"), msg);
            }
        }
        if let Some(c) = &r.chart
            && !r.columns.is_empty()
        {
            for col in std::iter::once(&c.x).chain(&c.y) {
                if !r.columns.contains(col) {
                    let msg =
                        format!("the chart draws `{col}`, which is not among `columns` ({})", r.columns.join(", "));
                    err(&format!("{at}.chart"), msg);
                }
            }
        }
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The `$name` placeholders of a query, outside quoted strings and names.
pub fn placeholders(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') => {
                let mut name = String::new();
                while let Some(&n) = chars.peek().filter(|n| n.is_ascii_alphanumeric() || **n == '_') {
                    name.push(n);
                    chars.next();
                }
                if !name.is_empty() {
                    out.insert(name);
                }
            }
            _ => {}
        }
    }
    out
}

fn list(names: &BTreeSet<&str>) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// `alerts:`: thresholds that fit their rule, tables that exist, a webhook URL.
fn validate_alerts(p: &Pipeline, err: &mut dyn FnMut(&str, String)) {
    for (name, a) in &p.alerts {
        let at = format!("alerts.{name}");
        if let Err(e) = a.threshold() {
            err(&format!("{at}.over"), e);
        }
        for (i, t) in a.tables.iter().enumerate() {
            if !p.tables.contains_key(t) {
                err(&format!("{at}.tables[{i}]"), format!("no table `{t}` in the pipeline"));
            }
        }
        let url = a.webhook.expose().trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            err(&format!("{at}.webhook"), "the webhook must be an http:// or https:// URL (it is not shown)".into());
        }
    }
    for (name, t) in &p.tables {
        if let Some(Err(e)) = t.schedule.as_ref().map(|s| s.check()) {
            err(&format!("tables.{name}.schedule"), e);
        }
        let streamed = matches!(
            p.sources.get(&t.input),
            Some(crate::model::Source::Kafka(_) | crate::model::Source::Http(_) | crate::model::Source::PostgresCdc(_))
        );
        if t.schedule.is_some() && streamed {
            let msg = "a table fed by a stream (a topic, the collector, database changes) takes its input as it comes; schedule the tables that read it";
            err(&format!("tables.{name}.schedule"), msg.into());
        }
        if t.retry.attempts == 0 {
            err(&format!("tables.{name}.retry.attempts"), "at least 1 (the first attempt)".into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn placeholders_outside_quotes() {
        let found = placeholders("SELECT '$no', \"$nope\" FROM t WHERE a = $farm AND b >= $from_day");
        assert_eq!(found.into_iter().collect::<Vec<_>>(), vec!["farm".to_string(), "from_day".to_string()]);
    }
}
