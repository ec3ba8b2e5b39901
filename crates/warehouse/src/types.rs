//! The type map between Arrow columns and PostgreSQL columns.
//!
//! | Arrow (pipeline type)                 | PostgreSQL                   |
//! |---------------------------------------|------------------------------|
//! | Boolean (`boolean`)                   | `boolean`                    |
//! | Int8, Int16, UInt8                    | `smallint`                   |
//! | Int32, UInt16 (`int`)                 | `integer`                    |
//! | Int64, UInt32 (`bigint`)              | `bigint`                     |
//! | Float16, Float32 (`float`)            | `real`                       |
//! | Float64 (`double`)                    | `double precision`           |
//! | Utf8, LargeUtf8, Utf8View (`string`)  | `text`                       |
//! | Binary, LargeBinary, BinaryView       | `bytea`                      |
//! | Date32, Date64 (`date`)               | `date`                       |
//! | Timestamp with a zone (`timestamp`)   | `timestamptz`                |
//! | Timestamp without a zone              | `timestamp`                  |
//! | Decimal128(p, s) (`decimal(p,s)`)     | `numeric(p,s)`               |
//! | List of any of the above              | an array of it (`bigint[]`)  |
//!
//! An existing table may also hold `jsonb`, `json` and `uuid` columns: text
//! is written to them (and read back as text), checked by PostgreSQL.
//! `varchar(n)` and `char(n)` columns take text too.

use std::sync::Arc;

use arrow_schema::{DataType, Field, TimeUnit};
use ingesta_core::{Error, Result};

/// A PostgreSQL column type the store reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    /// `text`, `varchar(n)`, `char(n)`: written as text.
    Text,
    Bytea,
    Date,
    Timestamp,
    Timestamptz,
    /// `numeric(p, s)`; `numeric` without a precision reads as (38, 9).
    Numeric(u8, i8),
    Jsonb,
    Json,
    Uuid,
    Array(Box<PgType>),
}

impl PgType {
    /// The PostgreSQL type for an Arrow column, or why there is none.
    pub fn for_arrow(t: &DataType) -> Result<Self> {
        Ok(match t {
            DataType::Boolean => Self::Bool,
            DataType::Int8 | DataType::Int16 | DataType::UInt8 => Self::Int2,
            DataType::Int32 | DataType::UInt16 => Self::Int4,
            DataType::Int64 | DataType::UInt32 => Self::Int8,
            DataType::Float16 | DataType::Float32 => Self::Float4,
            DataType::Float64 => Self::Float8,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Self::Text,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Self::Bytea,
            DataType::Date32 | DataType::Date64 => Self::Date,
            DataType::Timestamp(_, Some(_)) => Self::Timestamptz,
            DataType::Timestamp(_, None) => Self::Timestamp,
            DataType::Decimal128(p, s) if *s >= 0 => Self::Numeric(*p, *s),
            DataType::List(f) | DataType::LargeList(f) => match Self::for_arrow(f.data_type())? {
                Self::Array(_) => return Err(Error::stop("nested lists have no warehouse type")),
                inner => Self::Array(Box::new(inner)),
            },
            other => {
                return Err(Error::stop(format!(
                    "an Arrow `{other}` column has no warehouse type (see the type map in docs/warehouse.md)"
                )));
            }
        })
    }

    /// Parses `format_type()` as PostgreSQL prints it; `None` for a type the
    /// store does not handle.
    pub fn parse(formatted: &str) -> Option<Self> {
        if let Some(inner) = formatted.strip_suffix("[]") {
            return Some(Self::Array(Box::new(Self::parse(inner)?)));
        }
        let base = formatted.split('(').next().unwrap_or(formatted).trim();
        Some(match base {
            "boolean" => Self::Bool,
            "smallint" => Self::Int2,
            "integer" => Self::Int4,
            "bigint" => Self::Int8,
            "real" => Self::Float4,
            "double precision" => Self::Float8,
            "text" | "character varying" | "character" => Self::Text,
            "bytea" => Self::Bytea,
            "date" => Self::Date,
            "timestamp without time zone" => Self::Timestamp,
            "timestamp with time zone" => Self::Timestamptz,
            "jsonb" => Self::Jsonb,
            "json" => Self::Json,
            "uuid" => Self::Uuid,
            "numeric" => {
                let args = formatted.strip_prefix("numeric(").and_then(|a| a.strip_suffix(')'));
                match args.and_then(|a| a.split_once(',')) {
                    Some((p, s)) => Self::Numeric(p.trim().parse().ok()?, s.trim().parse().ok()?),
                    None => Self::Numeric(38, 9),
                }
            }
            _ => return None,
        })
    }

    /// How the type is written in DDL.
    pub fn sql(&self) -> String {
        match self {
            Self::Bool => "boolean".into(),
            Self::Int2 => "smallint".into(),
            Self::Int4 => "integer".into(),
            Self::Int8 => "bigint".into(),
            Self::Float4 => "real".into(),
            Self::Float8 => "double precision".into(),
            Self::Text => "text".into(),
            Self::Bytea => "bytea".into(),
            Self::Date => "date".into(),
            Self::Timestamp => "timestamp".into(),
            Self::Timestamptz => "timestamptz".into(),
            Self::Numeric(p, s) => format!("numeric({p},{s})"),
            Self::Jsonb => "jsonb".into(),
            Self::Json => "json".into(),
            Self::Uuid => "uuid".into(),
            Self::Array(inner) => format!("{}[]", inner.sql()),
        }
    }

    /// The type's object id (for array elements in the binary format).
    pub fn oid(&self) -> u32 {
        match self {
            Self::Bool => 16,
            Self::Int2 => 21,
            Self::Int4 => 23,
            Self::Int8 => 20,
            Self::Float4 => 700,
            Self::Float8 => 701,
            Self::Text => 25,
            Self::Bytea => 17,
            Self::Date => 1082,
            Self::Timestamp => 1114,
            Self::Timestamptz => 1184,
            Self::Numeric(..) => 1700,
            Self::Jsonb => 3802,
            Self::Json => 114,
            Self::Uuid => 2950,
            Self::Array(_) => 0, // nested arrays are refused
        }
    }

    /// The Arrow type a column of this type is encoded from and read into:
    /// a batch's column is cast to it first.
    pub fn arrow(&self) -> DataType {
        match self {
            Self::Bool => DataType::Boolean,
            Self::Int2 => DataType::Int16,
            Self::Int4 => DataType::Int32,
            Self::Int8 => DataType::Int64,
            Self::Float4 => DataType::Float32,
            Self::Float8 => DataType::Float64,
            Self::Text | Self::Jsonb | Self::Json | Self::Uuid => DataType::Utf8,
            Self::Bytea => DataType::Binary,
            Self::Date => DataType::Date32,
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Self::Numeric(p, s) => DataType::Decimal128(*p, *s),
            Self::Array(inner) => DataType::List(Arc::new(Field::new("item", inner.arrow(), true))),
        }
    }

    /// Whether an Arrow column of type `t` can be written to a column of this type.
    pub fn accepts(&self, t: &DataType) -> bool {
        let target = self.arrow();
        if t == &target {
            return true;
        }
        match (self, t) {
            // lists cast element-wise; only same-kind elements are accepted
            (Self::Array(inner), DataType::List(f) | DataType::LargeList(f)) => inner.accepts(f.data_type()),
            (Self::Array(_), _) => false,
            // integers into integers and numerics, floats into floats, never text into numbers
            (Self::Int2 | Self::Int4 | Self::Int8 | Self::Numeric(..) | Self::Float4 | Self::Float8, _) => {
                t.is_integer()
                    || (matches!(self, Self::Float4 | Self::Float8) && t.is_floating())
                    || matches!((self, t), (Self::Numeric(..) | Self::Float8, DataType::Decimal128(..)))
            }
            (Self::Text | Self::Jsonb | Self::Json | Self::Uuid, _) => {
                matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            }
            (Self::Bytea, _) => matches!(t, DataType::Binary | DataType::LargeBinary | DataType::BinaryView),
            (Self::Date, _) => matches!(t, DataType::Date32 | DataType::Date64),
            (Self::Timestamp | Self::Timestamptz, _) => matches!(t, DataType::Timestamp(..) | DataType::Date32),
            (Self::Bool, _) => false,
        }
    }
}

/// `"name"` with quotes doubled: every identifier the store writes is quoted.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_types_parse_back() {
        for t in [
            PgType::Bool,
            PgType::Int8,
            PgType::Numeric(12, 2),
            PgType::Timestamptz,
            PgType::Array(Box::new(PgType::Text)),
        ] {
            let printed = match &t {
                PgType::Timestamptz => "timestamp with time zone".to_string(),
                other => other.sql(),
            };
            assert_eq!(PgType::parse(&printed), Some(t));
        }
        assert_eq!(PgType::parse("character varying(20)"), Some(PgType::Text));
        assert_eq!(PgType::parse("point"), None);
    }

    #[test]
    fn text_never_goes_into_a_number() {
        assert!(PgType::Int8.accepts(&DataType::Int32));
        assert!(PgType::Numeric(10, 2).accepts(&DataType::Int64));
        assert!(!PgType::Int8.accepts(&DataType::Utf8));
        assert!(!PgType::Int4.accepts(&DataType::Float64));
        assert!(PgType::Jsonb.accepts(&DataType::Utf8View));
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
