//! A record that could not be read, typed or validated. It keeps everything
//! needed to understand and replay it: the raw bytes, where it came from, why.

use std::fmt;

/// Why a record was quarantined, as a short stable code (the `_reason` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The record is not valid in its format (JSON syntax, CSV field count, UTF-8).
    Parse,
    /// A value could not be converted to the column's type.
    Type,
    /// A required column is missing or null.
    Missing,
    /// The record is larger than `max_record_bytes`.
    TooLarge,
    /// The file itself could not be read past this point (corrupt compression, I/O).
    File,
    /// A row failed a data-quality rule whose action is `quarantine`.
    Expectation,
    /// A message names a schema the registry does not have.
    Schema,
    /// A lookup (`enrich`) found no value for the row's key.
    Lookup,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::Parse => "parse_error",
            Reason::Type => "type_error",
            Reason::Missing => "missing_required",
            Reason::TooLarge => "record_too_large",
            Reason::File => "file_error",
            Reason::Expectation => "expectation",
            Reason::Schema => "unknown_schema",
            Reason::Lookup => "lookup_missing",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRecord {
    /// The input (for files: the path relative to the source folder).
    pub source: String,
    /// The record's position in its input (line, row or element, from 1).
    pub position: i64,
    pub reason: Reason,
    /// A message for a person: the column, the value and what was expected.
    pub error: String,
    /// The record as it was read (possibly cut to a limit, said in `error`).
    pub raw: Vec<u8>,
}
