//! Text to UTC microseconds, fast for the common ISO-8601 shapes
//! (`2026-11-01T08:30:00.123Z`, `2026-11-01 08:30:00`, `+00:00` offsets), and
//! arrow's general parser for everything else (other offsets, RFC 3339 variants).

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, TimestampMicrosecondArray};
use std::sync::Arc;

/// Parses every value of a text array; a value that is no timestamp becomes null.
pub fn parse_utc_micros(text: &ArrayRef) -> ArrayRef {
    let s = text.as_string::<i32>();
    let values = (0..s.len()).map(|i| if s.is_null(i) { None } else { parse(s.value(i)) });
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

pub fn parse(v: &str) -> Option<i64> {
    fast(v.as_bytes())
        .or_else(|| arrow_cast::parse::string_to_timestamp_nanos(v.trim()).ok().map(|ns| ns.div_euclid(1000)))
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut n = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(n)
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|+00:00]`, UTC only.
fn fast(b: &[u8]) -> Option<i64> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let Some(r) = rest.strip_prefix(b".") {
        let n = r.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let frac = digits(&r[..n])?;
        micros = if n <= 6 { frac * 10i64.pow(6 - n as u32) } else { frac / 10i64.pow(n as u32 - 6) };
        rest = &r[n..];
    }
    if !(rest.is_empty() || rest == b"Z" || rest == b"z" || rest == b"+00:00" || rest == b"+0000") {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi) * 60_000_000 + s * 1_000_000 + micros)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_arrow() {
        for v in [
            "2026-11-01T00:00:00Z",
            "2026-11-01T08:30:15.123Z",
            "2024-02-29 23:59:59.999999",
            "1999-12-31T23:59:59.5+00:00",
            "2026-11-01T08:30:15.123456789Z",
        ] {
            let arrow = arrow_cast::parse::string_to_timestamp_nanos(v).unwrap().div_euclid(1000);
            assert_eq!(fast(v.as_bytes()), Some(arrow), "{v}");
        }
    }

    #[test]
    fn other_shapes_fall_back_and_garbage_is_none() {
        assert_eq!(parse("2026-11-01T01:00:00+01:00"), parse("2026-11-01T00:00:00Z"));
        assert_eq!(parse("2026-02-30T00:00:00Z"), None);
        assert_eq!(parse("N/A"), None);
        assert_eq!(parse("2026-11-01T25:00:00Z"), None);
    }
}
