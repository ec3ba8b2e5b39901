//! One accepted request on disk: `length (u32 LE) | CRC-32 (u32 LE) | payload`,
//! the payload a JSON header line followed by the events, one per line. A
//! frame cut short or failing its checksum is a write that was never
//! acknowledged (the process died during it).

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

/// Frames larger than this are corruption, not data.
const MAX_FRAME: u32 = 1 << 30;

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The number of the first event (numbers run on across frames and segments).
    pub first: i64,
    pub count: u32,
    pub received_at_us: i64,
    pub request: String,
    /// The client's `Idempotency-Key`, when it sent one.
    pub key: Option<String>,
    /// `count` events, one JSON object per line, no trailing newline.
    pub events: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    first: i64,
    count: u32,
    received_at: i64,
    request: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

impl Frame {
    pub fn last(&self) -> i64 {
        self.first + i64::from(self.count) - 1
    }

    /// The events with their numbers.
    pub fn events(&self) -> impl Iterator<Item = (i64, &[u8])> {
        self.events.split(|b| *b == b'\n').enumerate().map(|(i, e)| (self.first + i as i64, e))
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let header = Header {
            first: self.first,
            count: self.count,
            received_at: self.received_at_us,
            request: self.request.clone(),
            key: self.key.clone(),
        };
        let mut payload = serde_json::to_vec(&header).expect("a header serialises");
        payload.push(b'\n');
        payload.extend_from_slice(&self.events);
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        out.extend_from_slice(&payload);
    }

    fn decode(mut payload: Vec<u8>) -> Result<Frame, String> {
        let nl = payload.iter().position(|b| *b == b'\n').ok_or("no header line")?;
        let h: Header = serde_json::from_slice(&payload[..nl]).map_err(|e| format!("bad header: {e}"))?;
        let events = payload.split_off(nl + 1);
        let lines = if events.is_empty() { 0 } else { events.iter().filter(|b| **b == b'\n').count() + 1 };
        if lines != h.count as usize {
            return Err(format!("the header says {} events, the frame holds {lines}", h.count));
        }
        Ok(Frame {
            first: h.first,
            count: h.count,
            received_at_us: h.received_at,
            request: h.request,
            key: h.key,
            events,
        })
    }
}

/// What the next bytes of a segment hold.
#[derive(Debug)]
pub enum Next {
    /// A whole frame, and its size on disk.
    Frame(Frame, u64),
    /// The end of the segment.
    End,
    /// A frame cut short or corrupt (why).
    Torn(String),
}

pub fn read_frame(r: &mut impl Read) -> io::Result<Next> {
    let mut head = [0u8; 8];
    let n = read_full(r, &mut head)?;
    if n == 0 {
        return Ok(Next::End);
    }
    if n < head.len() {
        return Ok(Next::Torn(format!("a frame header cut after {n} bytes")));
    }
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len > MAX_FRAME {
        return Ok(Next::Torn(format!("a frame length of {len} bytes")));
    }
    let mut payload = vec![0u8; len as usize];
    let n = read_full(r, &mut payload)?;
    if n < payload.len() {
        return Ok(Next::Torn(format!("a frame of {len} bytes cut after {n}")));
    }
    if crc32fast::hash(&payload) != crc {
        return Ok(Next::Torn("a frame whose checksum does not match".into()));
    }
    match Frame::decode(payload) {
        Ok(f) => Ok(Next::Frame(f, 8 + u64::from(len))),
        Err(e) => Ok(Next::Torn(e)),
    }
}

/// Reads until `buf` is full or the input ends; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(first: i64, events: &[&str]) -> Frame {
        Frame {
            first,
            count: events.len() as u32,
            received_at_us: 7,
            request: "r".into(),
            key: None,
            events: events.join("\n").into_bytes(),
        }
    }

    #[test]
    fn frames_round_trip_and_number_their_events() {
        let mut buf = Vec::new();
        frame(10, &[r#"{"a":1}"#, r#"{"a":2}"#]).encode(&mut buf);
        frame(12, &[r#"{"a":3}"#]).encode(&mut buf);
        let mut r = &buf[..];
        let Next::Frame(f, size) = read_frame(&mut r).unwrap() else { panic!("a frame") };
        assert_eq!(
            f.events().map(|(n, e)| (n, e.to_vec())).collect::<Vec<_>>(),
            vec![(10, br#"{"a":1}"#.to_vec()), (11, br#"{"a":2}"#.to_vec())]
        );
        assert_eq!(f.last(), 11);
        assert!(size > 8);
        assert!(matches!(read_frame(&mut r).unwrap(), Next::Frame(f, _) if f.first == 12));
        assert!(matches!(read_frame(&mut r).unwrap(), Next::End));
    }

    #[test]
    fn a_cut_or_damaged_frame_is_torn() {
        let mut buf = Vec::new();
        frame(0, &[r#"{"a":1}"#]).encode(&mut buf);
        for cut in [3, 8, buf.len() - 1] {
            assert!(matches!(read_frame(&mut &buf[..cut]).unwrap(), Next::Torn(_)), "cut at {cut}");
        }
        let last = buf.len() - 2;
        buf[last] ^= 0xff;
        assert!(matches!(read_frame(&mut &buf[..]).unwrap(), Next::Torn(e) if e.contains("checksum")));
    }
}
