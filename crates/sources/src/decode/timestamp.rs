//! Text to UTC microseconds, fast for the common ISO-8601 shapes
//! (`2026-11-01T08:30:00.123Z`, `2026-11-01 08:30:00`, `+00:00` offsets), and
//! arrow's general parser for everything else (other offsets, RFC 3339 variants).

#[cfg(test)]
pub fn parse(v: &str) -> Option<i64> {
    LastDate::default().parse(v)
}

/// A parser of one column's timestamps to UTC microseconds. It keeps the date
/// of the last fast-path value and its day number: the timestamps of a file
/// mostly share their date, so its digits are read once.
#[derive(Default)]
pub struct LastDate {
    text: Option<[u8; 10]>,
    days: i64,
}

impl LastDate {
    /// UTC microseconds, or `None` when `v` is no timestamp.
    pub fn parse(&mut self, v: &str) -> Option<i64> {
        self.parse_bytes(v.as_bytes())
    }

    /// [`Self::parse`] of a field's bytes (no timestamp unless they are UTF-8).
    pub fn parse_bytes(&mut self, v: &[u8]) -> Option<i64> {
        self.fast(v).or_else(|| {
            let v = std::str::from_utf8(v).ok()?;
            arrow_cast::parse::string_to_timestamp_nanos(v.trim()).ok().map(|ns| ns.div_euclid(1000))
        })
    }

    /// `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|+00:00]`, UTC only.
    fn fast(&mut self, b: &[u8]) -> Option<i64> {
        let (head, mut rest) = b.split_first_chunk::<19>()?;
        if !(head[10] == b'T' || head[10] == b' ') || head[13] != b':' || head[16] != b':' {
            return None;
        }
        let date: [u8; 10] = head[..10].try_into().ok()?;
        let days = match self.text {
            Some(text) if text == date => self.days,
            _ => {
                let days = self::date(&date)?;
                self.text = Some(date);
                self.days = days;
                days
            }
        };
        let two = |i: usize| {
            let (a, b) = (head[i].wrapping_sub(b'0'), head[i + 1].wrapping_sub(b'0'));
            (a <= 9 && b <= 9).then_some(i64::from(a) * 10 + i64::from(b))
        };
        let (h, mi, s) = (two(11)?, two(14)?, two(17)?);
        if h > 23 || mi > 59 || s > 59 {
            return None;
        }
        let mut micros = 0i64;
        if let [b'.', r @ ..] = rest {
            let mut n = 0;
            let mut frac = 0i64;
            while let Some(&c) = r.get(n) {
                let d = c.wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                frac = frac * 10 + i64::from(d);
                n += 1;
            }
            if n == 0 || n > 9 {
                return None;
            }
            micros = if n <= 6 { frac * POW10[6 - n] } else { frac / POW10[n - 6] };
            rest = &r[n..];
        }
        if !matches!(rest, [] | b"Z" | b"z" | b"+00:00" | b"+0000") {
            return None;
        }
        Some(((days * 24 + h) * 60 + mi) * 60_000_000 + s * 1_000_000 + micros)
    }
}

const POW10: [i64; 7] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

/// `YYYY-MM-DD` as days since 1970-01-01; `None` unless a real date.
fn date(b: &[u8; 10]) -> Option<i64> {
    let digit = |i: usize| i64::from(b[i].wrapping_sub(b'0'));
    if b[4] != b'-' || b[7] != b'-' || [0, 1, 2, 3, 5, 6, 8, 9].iter().any(|&i| digit(i) > 9) {
        return None;
    }
    let y = digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3);
    let (mo, d) = (digit(5) * 10 + digit(6), digit(8) * 10 + digit(9));
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    Some(days_from_civil(y, mo, d))
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
            assert_eq!(LastDate::default().fast(v.as_bytes()), Some(arrow), "{v}");
        }
    }

    #[test]
    fn other_shapes_fall_back_and_garbage_is_none() {
        assert_eq!(parse("2026-11-01T01:00:00+01:00"), parse("2026-11-01T00:00:00Z"));
        assert_eq!(parse("2026-02-30T00:00:00Z"), None);
        assert_eq!(parse("N/A"), None);
        assert_eq!(parse("2026-11-01T25:00:00Z"), None);
        assert_eq!(parse("\0\0\0\0\0\0\0\0\0\0T00:00:00Z"), None);
    }

    #[test]
    fn the_date_cache_reads_like_a_fresh_parse() {
        let values = [
            "2026-11-01T23:59:59.9Z",
            "2026-11-01T00:00:01Z",
            "2026-11-02T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-02T00:00:00Z",
            "2026-11-02T24:00:00Z",
            "2026-11-02 07:00:00.000001",
        ];
        let mut last = LastDate::default();
        for v in values {
            assert_eq!(last.parse(v), parse(v), "{v}");
        }
    }
}
