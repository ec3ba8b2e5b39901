//! Answers kept until the data changes: a report or query asked again with
//! the same parameters and format, while no table of the pipeline has
//! committed since (the data's generation), is answered from memory. Bounded
//! by bytes; when full, or when the generation moves, it starts empty.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::answer::Encoded;

pub struct Cache {
    max_bytes: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    bytes: usize,
    entries: HashMap<String, Arc<Encoded>>,
}

impl Cache {
    /// A cache of at most `max_bytes` (0: nothing is kept).
    pub fn new(max_bytes: usize) -> Self {
        Cache { max_bytes, inner: Mutex::new(Inner::default()) }
    }

    pub fn get(&self, generation: u64, key: &str) -> Option<Arc<Encoded>> {
        let inner = self.inner.lock().expect("cache");
        (inner.generation == generation).then(|| inner.entries.get(key).cloned()).flatten()
    }

    pub fn put(&self, generation: u64, key: String, answer: Arc<Encoded>) {
        // one answer may take at most an eighth of the cache
        if answer.len() > self.max_bytes / 8 {
            return;
        }
        let mut inner = self.inner.lock().expect("cache");
        if inner.generation != generation || inner.bytes + answer.len() > self.max_bytes {
            *inner = Inner { generation, ..Inner::default() };
        }
        inner.bytes += answer.len();
        if let Some(old) = inner.entries.insert(key, answer) {
            inner.bytes -= old.len();
        }
    }
}
