//! pgoutput, protocol version 1: the messages a logical slot sends between a
//! transaction's Begin and Commit (which `pgwire-replication` decodes
//! itself). Relations are cached by id and sent again by the server before
//! the first change after a schema change, so a change is always read with
//! the columns it was written with.
//! <https://www.postgresql.org/docs/15/protocol-logicalrep-message-formats.html>

use std::collections::HashMap;
use std::sync::Arc;

/// A column of a published table, as the last Relation message described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    /// Part of the replica identity (the primary key, by default).
    pub key: bool,
}

/// A published table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    /// `REPLICA IDENTITY FULL`: updates and deletes carry the whole old row.
    pub full_identity: bool,
    pub columns: Vec<Column>,
}

impl Relation {
    /// `schema.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// A column's value in a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    /// A TOASTed value the change did not touch: the server does not send it.
    Unchanged,
    /// The value's text form (the type's output function).
    Text(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
    Truncate,
}

/// One change of a published table.
#[derive(Debug, Clone)]
pub struct Change {
    pub op: Op,
    pub relation: Arc<Relation>,
    /// Updates and deletes: the old row (every column with REPLICA IDENTITY
    /// FULL; the key columns only, the others `Null`, otherwise; none when an
    /// update changed no key column of a default identity).
    pub before: Option<Vec<Value>>,
    /// Inserts and updates: the new row.
    pub after: Option<Vec<Value>>,
}

#[derive(Debug)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a pgoutput message could not be read: {}", self.0)
    }
}

/// Reads pgoutput messages, keeping the relations they refer to.
#[derive(Default)]
pub struct Decoder {
    relations: HashMap<u32, Arc<Relation>>,
}

impl Decoder {
    /// Decodes one message; its changes (several for a truncate) go to `out`.
    /// Relation messages update the cache; Type, Origin and anything this
    /// version does not read produce nothing.
    pub fn decode(&mut self, data: &[u8], out: &mut Vec<Change>) -> Result<(), DecodeError> {
        let mut r = Reader { data, at: 0 };
        match r.u8()? {
            b'R' => {
                let rel = r.relation()?;
                self.relations.insert(rel.id, Arc::new(rel));
            }
            b'I' => {
                let relation = self.relation(r.u32()?)?;
                r.expect(b'N')?;
                let after = Some(r.tuple(relation.columns.len())?);
                out.push(Change { op: Op::Insert, relation, before: None, after });
            }
            b'U' => {
                let relation = self.relation(r.u32()?)?;
                let n = relation.columns.len();
                let before = match r.u8()? {
                    b'K' | b'O' => {
                        let old = r.tuple(n)?;
                        r.expect(b'N')?;
                        Some(old)
                    }
                    b'N' => None,
                    t => return Err(DecodeError(format!("update: unexpected tuple tag `{}`", t as char))),
                };
                let after = Some(r.tuple(n)?);
                out.push(Change { op: Op::Update, relation, before, after });
            }
            b'D' => {
                let relation = self.relation(r.u32()?)?;
                match r.u8()? {
                    b'K' | b'O' => {}
                    t => return Err(DecodeError(format!("delete: unexpected tuple tag `{}`", t as char))),
                }
                let before = Some(r.tuple(relation.columns.len())?);
                out.push(Change { op: Op::Delete, relation, before, after: None });
            }
            b'T' => {
                let n = r.u32()?;
                let _options = r.u8()?;
                for _ in 0..n {
                    let relation = self.relation(r.u32()?)?;
                    out.push(Change { op: Op::Truncate, relation, before: None, after: None });
                }
            }
            // Type, Origin, and Begin / Commit / Message (decoded by the transport)
            _ => {}
        }
        Ok(())
    }

    fn relation(&self, id: u32) -> Result<Arc<Relation>, DecodeError> {
        self.relations
            .get(&id)
            .cloned()
            .ok_or_else(|| DecodeError(format!("a change of relation {id}, which no Relation message described")))
    }
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let end = end.ok_or_else(|| DecodeError(format!("message ends at {} bytes, {n} more expected", self.at)))?;
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take(2)?.try_into().expect("two bytes")))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().expect("four bytes")))
    }

    fn expect(&mut self, tag: u8) -> Result<(), DecodeError> {
        match self.u8()? {
            t if t == tag => Ok(()),
            t => Err(DecodeError(format!("expected tag `{}`, found `{}`", tag as char, t as char))),
        }
    }

    /// A NUL-terminated string.
    fn cstr(&mut self) -> Result<String, DecodeError> {
        let rest = &self.data[self.at..];
        let len = rest.iter().position(|&b| b == 0).ok_or_else(|| DecodeError("an unterminated string".into()))?;
        let s = String::from_utf8_lossy(&rest[..len]).into_owned();
        self.at += len + 1;
        Ok(s)
    }

    fn relation(&mut self) -> Result<Relation, DecodeError> {
        let id = self.u32()?;
        let schema = self.cstr()?;
        let name = self.cstr()?;
        let full_identity = self.u8()? == b'f';
        let n = self.u16()?;
        let mut columns = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let key = self.u8()? & 1 == 1;
            let name = self.cstr()?;
            let type_oid = self.u32()?;
            let _typmod = self.u32()?;
            columns.push(Column { name, type_oid, key });
        }
        Ok(Relation { id, schema, name, full_identity, columns })
    }

    fn tuple(&mut self, expected: usize) -> Result<Vec<Value>, DecodeError> {
        let n = self.u16()? as usize;
        if n != expected {
            return Err(DecodeError(format!("a row of {n} columns for a relation of {expected}")));
        }
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(match self.u8()? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' => {
                    let len = self.u32()? as usize;
                    Value::Text(String::from_utf8_lossy(self.take(len)?).into_owned())
                }
                b'b' => return Err(DecodeError("a binary value, though the text format was asked for".into())),
                t => return Err(DecodeError(format!("unknown column kind `{}`", t as char))),
            });
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation_msg() -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend(16384u32.to_be_bytes());
        m.extend(b"shop\0customers\0d");
        m.extend(2u16.to_be_bytes());
        m.push(1);
        m.extend(b"id\0");
        m.extend(20u32.to_be_bytes());
        m.extend((-1i32).to_be_bytes());
        m.push(0);
        m.extend(b"note\0");
        m.extend(25u32.to_be_bytes());
        m.extend((-1i32).to_be_bytes());
        m
    }

    fn text(m: &mut Vec<u8>, s: &str) {
        m.push(b't');
        m.extend((s.len() as u32).to_be_bytes());
        m.extend(s.as_bytes());
    }

    #[test]
    fn reads_relations_inserts_updates_deletes_and_truncates() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.decode(&relation_msg(), &mut out).unwrap();
        assert!(out.is_empty());

        let mut ins = vec![b'I'];
        ins.extend(16384u32.to_be_bytes());
        ins.push(b'N');
        ins.extend(2u16.to_be_bytes());
        text(&mut ins, "7");
        text(&mut ins, "héllo");
        d.decode(&ins, &mut out).unwrap();
        assert_eq!(out[0].op, Op::Insert);
        assert_eq!(out[0].relation.qualified(), "shop.customers");
        assert_eq!(out[0].after, Some(vec![Value::Text("7".into()), Value::Text("héllo".into())]));

        // an update that keeps a TOASTed value: `u`
        let mut upd = vec![b'U'];
        upd.extend(16384u32.to_be_bytes());
        upd.push(b'N');
        upd.extend(2u16.to_be_bytes());
        text(&mut upd, "7");
        upd.push(b'u');
        d.decode(&upd, &mut out).unwrap();
        assert_eq!(out[1].before, None);
        assert_eq!(out[1].after.as_ref().unwrap()[1], Value::Unchanged);

        let mut del = vec![b'D'];
        del.extend(16384u32.to_be_bytes());
        del.push(b'K');
        del.extend(2u16.to_be_bytes());
        text(&mut del, "7");
        del.push(b'n');
        d.decode(&del, &mut out).unwrap();
        assert_eq!(out[2].op, Op::Delete);
        assert_eq!(out[2].before.as_ref().unwrap()[0], Value::Text("7".into()));

        let mut tr = vec![b'T'];
        tr.extend(1u32.to_be_bytes());
        tr.push(0);
        tr.extend(16384u32.to_be_bytes());
        d.decode(&tr, &mut out).unwrap();
        assert_eq!(out[3].op, Op::Truncate);
    }

    #[test]
    fn says_what_is_wrong_with_a_bad_message() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        let mut ins = vec![b'I'];
        ins.extend(99u32.to_be_bytes());
        let e = d.decode(&ins, &mut out).unwrap_err();
        assert!(e.0.contains("relation 99"), "{e}");
        let e = d.decode(&relation_msg()[..10], &mut out).unwrap_err();
        assert!(e.0.contains("unterminated") || e.0.contains("more expected"), "{e}");
    }
}
