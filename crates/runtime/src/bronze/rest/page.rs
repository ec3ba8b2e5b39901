//! One page of a REST API: its records (the array at the source's `records`
//! path) and the next page's cursor or link when the page names it. A page
//! that is not JSON, or has no array there, is bad: it goes to quarantine
//! whole, with its URL.

use serde_json::Value;

#[derive(Debug)]
pub(crate) struct Page {
    pub records: Vec<Value>,
    /// The value at the pagination's `field` (a cursor or a link), as text;
    /// none when absent, null or empty.
    pub next: Option<String>,
}

/// Reads a page; `Err` says why it is bad.
pub(crate) fn parse(body: &[u8], records: &str, next_field: Option<&str>) -> Result<Page, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the page is not JSON: {e}"))?;
    let path = records.trim();
    let list = if path.is_empty() { Some(&v) } else { at_path(&v, path) };
    let list = match list {
        Some(Value::Array(a)) => a.clone(),
        Some(Value::Null) | None if !path.is_empty() => {
            return Err(format!("the page has no `{path}` (the `records` path)"));
        }
        _ if path.is_empty() => return Err("the page is not a JSON array; set `records` to the array's path".into()),
        _ => return Err(format!("`{path}` is not an array")),
    };
    let next = next_field.and_then(|f| at_path(&v, f)).and_then(|n| match n {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        other => Some(super::state::text_of(other)),
    });
    Ok(Page { records: list, next })
}

/// The value at a dotted path (`data.items`) of objects.
pub(crate) fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_the_next_cursor_are_found_by_their_paths() {
        let body = br#"{"data": {"items": [{"id": 1}, {"id": 2}]}, "meta": {"next": "abc"}}"#;
        let p = parse(body, "data.items", Some("meta.next")).unwrap();
        assert_eq!((p.records.len(), p.next.as_deref()), (2, Some("abc")));
        let last =
            parse(br#"{"data": {"items": []}, "meta": {"next": null}}"#, "data.items", Some("meta.next")).unwrap();
        assert_eq!((last.records.len(), last.next), (0, None));
        assert_eq!(parse(br#"[{"id": 1}]"#, "", None).unwrap().records.len(), 1);
    }

    #[test]
    fn a_page_without_its_array_is_bad_and_says_why() {
        assert!(parse(b"<html>busy</html>", "data", None).unwrap_err().contains("not JSON"));
        assert!(parse(br#"{"error": "x"}"#, "data", None).unwrap_err().contains("no `data`"));
        assert!(parse(br#"{"data": 3}"#, "data", None).unwrap_err().contains("not an array"));
        assert!(parse(br#"{"data": []}"#, "", None).unwrap_err().contains("set `records`"));
    }
}
