//! Checks of the database and API sources: a `postgres_cdc` source and a
//! `rest` source.

pub(crate) fn postgres_cdc(c: &crate::PostgresCdc, at: &str, err: &mut dyn FnMut(&str, String)) {
    match (c.schemas.is_empty(), c.tables.is_empty()) {
        (true, true) if c.publication.is_none() => {
            err(at, "name what to capture: `schemas` (every table of them) or `tables` (`schema.table`)".into())
        }
        (false, false) => err(at, "`schemas` or `tables`, not both".into()),
        _ => {}
    }
    let named =
        |s: &str| !s.is_empty() && s.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
    if let Some(slot) = c.slot.as_deref().filter(|s| !named(s) || s.len() > 63) {
        err(&format!("{at}.slot"), format!("`{slot}`: a slot name is lower-case letters, digits and `_`, at most 63"));
    }
    if c.copy_connections == 0 {
        err(&format!("{at}.copy_connections"), "must be at least 1".into());
    }
}

/// A REST source: an http(s) URL (its text is never printed: it may hold a
/// token), pagination parameters named, at least one try per request.
pub(crate) fn rest(r: &crate::model::Rest, at: &str, err: &mut dyn FnMut(&str, String)) {
    let url = r.url.expose().trim();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        err(&format!("{at}.url"), "expected an http:// or https:// URL".into());
    }
    if r.attempts == 0 {
        err(&format!("{at}.attempts"), "must be at least 1".into());
    }
    let named = |key: &str, v: &str, err: &mut dyn FnMut(&str, String)| {
        if v.trim().is_empty() {
            err(&format!("{at}.pagination.{key}"), "must name a query parameter or a field".into());
        }
    };
    match &r.pagination {
        crate::model::Pagination::Cursor { param, field } => {
            named("cursor.param", param, err);
            named("cursor.field", field, err);
        }
        crate::model::Pagination::Page { param, size_param, size, .. } => {
            named("page.param", param, err);
            if size_param.is_some() != size.is_some() {
                err(&format!("{at}.pagination.page.size"), "`size_param` and `size` go together".into());
            }
        }
        crate::model::Pagination::Offset { param, limit_param, limit } => {
            named("offset.param", param, err);
            if limit_param.is_some() != limit.is_some() {
                err(&format!("{at}.pagination.offset.limit"), "`limit_param` and `limit` go together".into());
            }
        }
        crate::model::Pagination::None | crate::model::Pagination::NextLink { .. } => {}
    }
    if r.incremental.as_ref().is_some_and(|i| i.param.trim().is_empty() || i.field.trim().is_empty()) {
        err(&format!("{at}.incremental"), "`param` and `field` must both be named".into());
    }
}
