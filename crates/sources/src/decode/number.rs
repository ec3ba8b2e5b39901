//! Text to numbers, fast for the short plain decimals that measurements are
//! written as (`-12.34`, `0.078`) and for plain integers, and by arrow's
//! parsers (the ones its cast uses) for everything else: exponents, `inf`,
//! `NaN`, long digit strings, `+1`.

use arrow_array::ArrowPrimitiveType;
use arrow_array::types::Float64Type;
use arrow_cast::parse::Parser;

/// A double, or `None` when `v` is no number.
pub fn parse(v: &str) -> Option<f64> {
    parse_bytes(v.as_bytes())
}

/// [`parse`] of a field's bytes (no number unless they are UTF-8).
pub fn parse_bytes(v: &[u8]) -> Option<f64> {
    fast(v).or_else(|| std::str::from_utf8(v).ok().and_then(Float64Type::parse))
}

/// An integer of type `T` from a field's bytes: `[-]digits` (at most 18) read
/// here, everything else (`+1`, out of range) by arrow's parser, as a cast would.
pub fn parse_int<T>(v: &[u8]) -> Option<T::Native>
where
    T: ArrowPrimitiveType + Parser,
    T::Native: TryFrom<i64>,
{
    match int_fast(v) {
        Some(n) => T::Native::try_from(n).ok(),
        None => std::str::from_utf8(v).ok().and_then(T::parse),
    }
}

fn int_fast(b: &[u8]) -> Option<i64> {
    let (negative, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut n: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + i64::from(d);
    }
    Some(if negative { -n } else { n })
}

const POW10: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/// `[-]digits[.digits]` with at most 15 digits in all. The digits read as an
/// integer are exact in a double (below 2^53), and so is 10^k for the k
/// fraction digits, so one IEEE division gives the correctly rounded value
/// (Clinger's fast path), bit for bit what a full parser gives.
fn fast(b: &[u8]) -> Option<f64> {
    let (negative, b) = match b {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, b),
    };
    let mut n: u64 = 0;
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add(u64::from(d));
        i += 1;
    }
    let int_digits = i;
    let mut scale = 0;
    if let Some(&c) = b.get(i) {
        // digits on both sides of the point (`1.` and `.5` go to arrow)
        if c != b'.' || int_digits == 0 {
            return None;
        }
        i += 1;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return None;
            }
            n = n.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        scale = i - int_digits - 1;
        if scale == 0 {
            return None;
        }
    }
    if int_digits == 0 || int_digits + scale > 15 {
        return None;
    }
    let v = n as f64 / POW10[scale];
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every short decimal the fast path takes reads exactly as the standard
    /// library's correctly rounded parser reads it.
    #[test]
    fn fast_path_is_bit_exact() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = 1 + (x % 15) as usize;
            let n = x % 10u64.pow(digits as u32);
            let scale = (x >> 32) as usize % digits;
            let s = format!("{n:0digits$}");
            let (int, frac) = s.split_at(digits - scale);
            let text = if scale == 0 { int.to_string() } else { format!("{int}.{frac}") };
            let text = if x >> 63 == 1 { format!("-{text}") } else { text };
            let expected: f64 = text.parse().unwrap();
            let got = fast(text.as_bytes()).unwrap_or_else(|| panic!("{text} not taken"));
            assert_eq!(got.to_bits(), expected.to_bits(), "{text}");
        }
    }

    #[test]
    fn ints_read_as_arrow_reads_them() {
        use arrow_array::types::{Int32Type, Int64Type};
        let values = [
            "0",
            "-0",
            "7",
            "007",
            "-12",
            "+5",
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "999999999999999999",
            "9223372036854775807",
            "9223372036854775808",
            "",
            "-",
            "1.5",
            "1e3",
            " 1",
            "x",
        ];
        for v in values {
            assert_eq!(parse_int::<Int32Type>(v.as_bytes()), Int32Type::parse(v), "int {v:?}");
            assert_eq!(parse_int::<Int64Type>(v.as_bytes()), Int64Type::parse(v), "bigint {v:?}");
        }
    }

    #[test]
    fn other_shapes_fall_back_and_garbage_is_none() {
        for v in ["1e3", "-2.5E-3", "+1.5", "1.", ".5", "1234567890.1234567", "inf", "NaN"] {
            assert_eq!(fast(v.as_bytes()), None, "{v}");
            assert_eq!(parse(v).map(f64::to_bits), Float64Type::parse(v).map(f64::to_bits), "{v}");
        }
        assert_eq!(parse("12.5"), Some(12.5));
        assert_eq!(parse("-0.078"), Some(-0.078));
        for v in ["", "-", "1.2.3", "12a", "N/A", "1,5"] {
            assert_eq!(fast(v.as_bytes()), None, "{v}");
            assert_eq!(parse(v), None, "{v}");
        }
    }
}
