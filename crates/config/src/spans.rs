//! Where each key path of a YAML document starts (line, column), so errors found
//! after deserialisation can still point into the file.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Key path (`tables.x.columns[2].type`) → (line, column), both from 1.
#[derive(Debug, Default)]
pub struct Spans(HashMap<String, (usize, usize)>);

impl Spans {
    pub fn parse(text: &str) -> Self {
        let mut walker = Walker::default();
        let mut parser = Parser::new_from_str(text);
        // A syntax error is reported by serde_yaml with its own location.
        let _ = parser.load(&mut walker, false);
        Spans(walker.spans)
    }

    /// The place of `path`, or of its nearest ancestor that has one.
    pub fn locate(&self, path: &str) -> (usize, usize) {
        match self.0.get(&format!("{path}#value")) {
            Some(at) => *at,
            None => self.locate_key(path),
        }
    }

    /// Places `path` (and what is under it) where `to` is: the tables a vault
    /// declares are shown at their declaration.
    pub fn alias(&mut self, path: &str, to: &str) {
        let at = self.locate_key(to);
        self.0.insert(path.to_string(), at);
    }

    /// The place of the key of `path` (or of its nearest ancestor's key).
    pub fn locate_key(&self, path: &str) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(at) = self.0.get(p) {
                return *at;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return (1, 1),
            }
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, index: usize },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    spans: HashMap<String, (usize, usize)>,
}

impl Walker {
    /// The path a value starting now gets, advancing the parent's state.
    fn next_value_path(&mut self, mark: Marker) -> Option<String> {
        let frame = self.stack.last_mut()?;
        match frame {
            // a key's own node has no path yet
            Frame::Map { path, key } => key.take().map(|k| join(path, &k)),
            Frame::Seq { path, index } => {
                let p = format!("{path}[{index}]");
                *index += 1;
                self.spans.entry(p.clone()).or_insert((mark.line(), mark.col() + 1));
                Some(p)
            }
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = if self.stack.is_empty() { Some(String::new()) } else { self.next_value_path(mark) };
                let path = path.unwrap_or_default();
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, index: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Scalar(value, ..) => {
                let is_key = matches!(self.stack.last(), Some(Frame::Map { key: None, .. }));
                if is_key {
                    if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                        let p = join(path, &value);
                        self.spans.insert(p, (mark.line(), mark.col() + 1));
                        *key = Some(value);
                    }
                } else if let Some(p) = self.next_value_path(mark) {
                    // the value's own place wins over its key's for scalars
                    self.spans.insert(format!("{p}#value"), (mark.line(), mark.col() + 1));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys_and_list_items() {
        let s = Spans::parse("a:\n  b:\n    - x: 1\n    - y: 2\n");
        assert_eq!(s.locate("a.b"), (2, 3));
        assert_eq!(s.locate("a.b[1].y"), (4, 10), "a scalar value points at the value");
        assert_eq!(s.locate("a.b[1].y.z"), (4, 7));
    }
}
