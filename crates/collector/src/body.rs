//! A request body into events: one JSON object, a JSON array of objects, or
//! objects one after another (NDJSON, or any whitespace between them). Every
//! event is checked to be a JSON object within the size limit; a body with
//! one bad event is refused whole, so a client never has to work out which
//! part was kept.

use serde_json::value::RawValue;

/// The events of a body, one compact line each.
#[derive(Debug)]
pub struct Parsed {
    pub events: Vec<u8>,
    pub count: u32,
}

#[derive(Debug, PartialEq)]
pub enum BodyError {
    /// Not JSON, or not objects (400).
    Bad(String),
    /// An event over the limit (413).
    TooLarge(String),
}

pub fn parse(body: &[u8], max_event_bytes: usize) -> Result<Parsed, BodyError> {
    let mut out = Parsed { events: Vec::with_capacity(body.len()), count: 0 };
    let stream = serde_json::Deserializer::from_slice(body).into_iter::<&RawValue>();
    for value in stream {
        let value = value.map_err(|e| BodyError::Bad(format!("invalid JSON: {e}")))?;
        if value.get().starts_with('[') {
            let items: Vec<&RawValue> =
                serde_json::from_str(value.get()).map_err(|e| BodyError::Bad(format!("invalid JSON array: {e}")))?;
            for item in items {
                push(&mut out, item.get(), max_event_bytes)?;
            }
        } else {
            push(&mut out, value.get(), max_event_bytes)?;
        }
    }
    if out.count == 0 {
        return Err(BodyError::Bad("the body holds no events; send JSON objects, an array of them, or NDJSON".into()));
    }
    Ok(out)
}

fn push(out: &mut Parsed, event: &str, max: usize) -> Result<(), BodyError> {
    let n = out.count as usize + 1;
    if !event.starts_with('{') {
        let kind = match event.as_bytes().first() {
            Some(b'"') => "a string",
            Some(b'[') => "an array",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            _ => "a number",
        };
        return Err(BodyError::Bad(format!("event {n}: expected a JSON object, found {kind}")));
    }
    if event.len() > max {
        return Err(BodyError::TooLarge(format!("event {n} is {} bytes; the limit is {max}", event.len())));
    }
    if out.count == u32::MAX {
        return Err(BodyError::TooLarge("too many events in one body".into()));
    }
    if out.count > 0 {
        out.events.push(b'\n');
    }
    let start = out.events.len();
    out.events.extend_from_slice(event.as_bytes());
    // a raw newline in valid JSON is whitespace (strings escape theirs): one event, one line
    for b in &mut out.events[start..] {
        if *b == b'\n' || *b == b'\r' {
            *b = b' ';
        }
    }
    out.count += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(body: &str) -> Vec<String> {
        let p = parse(body.as_bytes(), 1 << 20).unwrap();
        let out: Vec<String> = String::from_utf8(p.events).unwrap().split('\n').map(String::from).collect();
        assert_eq!(out.len(), p.count as usize);
        out
    }

    #[test]
    fn objects_arrays_and_ndjson_become_one_line_per_event() {
        assert_eq!(lines(r#"{"a":1}"#), vec![r#"{"a":1}"#]);
        assert_eq!(lines("{\"a\":1}\n{\"a\":2}\n"), vec![r#"{"a":1}"#, r#"{"a":2}"#]);
        assert_eq!(lines(r#"[{"a":1}, {"a":2}]"#), vec![r#"{"a":1}"#, r#"{"a":2}"#]);
        assert_eq!(
            lines("{\n  \"a\": \"x\\ny\"\n}"),
            vec![r#"{   "a": "x\ny" }"#],
            "pretty JSON, escaped newline kept"
        );
    }

    #[test]
    fn bad_bodies_say_why() {
        let bad = |b: &str| match parse(b.as_bytes(), 100) {
            Err(BodyError::Bad(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(bad("{\"a\":1}\n{\"a\":").contains("line 2"), "{}", bad("{\"a\":1}\n{\"a\":"));
        assert_eq!(bad("{\"a\":1}\n3"), "event 2: expected a JSON object, found a number");
        assert_eq!(bad("[\"x\"]"), "event 1: expected a JSON object, found a string");
        assert!(bad("  \n").contains("no events"));
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(200));
        assert_eq!(
            parse(big.as_bytes(), 100).unwrap_err(),
            BodyError::TooLarge("event 1 is 208 bytes; the limit is 100".into())
        );
    }
}
