//! Arbitrary-precision decimal numbers, the Rust side of cty's `Number`.
//!
//! cty keeps numbers as 512-bit binary floats and writes them as the shortest
//! decimal that reads back to the same float. We keep the exact decimal
//! instead, which holds every value Terraform sends (its decimals, int64s and
//! float64s) without loss and prints back the same text.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use num_bigint::BigUint;

use super::ValueError;

/// Most significant digits a number may have. Exact float64 values need at
/// most 767; the bound keeps hostile input from costing quadratic time.
const MAX_DIGITS: usize = 4096;

/// Bound on the decimal exponent of the most significant digit, so that the
/// plain (exponent-free) text of any number stays a few kilobytes long.
const MAX_MAGNITUDE: i64 = 4096;

/// An exact decimal number: `±digits × 10^exp`.
///
/// The representation is canonical (no leading or trailing zeros in
/// `digits`, zero is `+ "" × 10^0`), so derived equality and hashing agree
/// with numeric equality.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Number {
    negative: bool,
    /// ASCII decimal digits of the integer mantissa; empty for zero.
    digits: String,
    exp: i64,
}

impl Number {
    /// The number zero.
    pub fn zero() -> Number {
        Number {
            negative: false,
            digits: String::new(),
            exp: 0,
        }
    }

    /// Builds a canonical number from raw parts, stripping redundant zeros
    /// and checking the size limits.
    fn from_parts(negative: bool, digits: &str, exp: i64) -> Result<Number, String> {
        let trimmed = digits.trim_start_matches('0');
        let significant = trimmed.trim_end_matches('0');
        if significant.is_empty() {
            return Ok(Number::zero());
        }
        let exp = exp
            .checked_add((trimmed.len() - significant.len()) as i64)
            .ok_or("exponent out of range")?;
        if significant.len() > MAX_DIGITS {
            return Err(format!("more than {MAX_DIGITS} significant digits"));
        }
        let magnitude = exp.saturating_add(significant.len() as i64);
        if !(-MAX_MAGNITUDE..=MAX_MAGNITUDE).contains(&magnitude) {
            return Err("exponent out of range".into());
        }
        Ok(Number {
            negative,
            digits: significant.to_owned(),
            exp,
        })
    }

    /// Whether the number is zero.
    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Whether the number is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// Whether the number has no fractional part.
    pub fn is_integer(&self) -> bool {
        self.exp >= 0
    }

    /// The exact value of a finite float; `None` for NaN and infinities.
    /// Negative zero becomes zero, as cty's integer-first encoding does.
    pub fn from_f64(f: f64) -> Option<Number> {
        if !f.is_finite() {
            return None;
        }
        if f == 0.0 {
            return Some(Number::zero());
        }
        let bits = f.to_bits();
        let negative = bits >> 63 == 1;
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let fraction = bits & ((1u64 << 52) - 1);
        // |f| = mantissa × 2^exp2, with subnormals lacking the implicit bit.
        let (mantissa, exp2) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1u64 << 52), biased - 1075)
        };
        let (digits, exp10) = if exp2 >= 0 {
            ((BigUint::from(mantissa) << exp2 as usize).to_string(), 0)
        } else {
            // m × 2^-k = m × 5^k × 10^-k keeps the value exact in decimal.
            let five = BigUint::from(5u32).pow(exp2.unsigned_abs() as u32);
            ((BigUint::from(mantissa) * five).to_string(), exp2)
        };
        // Every finite float fits comfortably within the limits.
        Number::from_parts(negative, &digits, exp10).ok()
    }

    /// The value as an `i64`, if it is an integer within range.
    pub fn to_i64(&self) -> Option<i64> {
        self.to_i128().and_then(|v| i64::try_from(v).ok())
    }

    /// The value as a `u64`, if it is a non-negative integer within range.
    pub fn to_u64(&self) -> Option<u64> {
        self.to_i128().and_then(|v| u64::try_from(v).ok())
    }

    fn to_i128(&self) -> Option<i128> {
        if !self.is_integer() {
            return None;
        }
        // 39 digits is beyond i128, so anything longer cannot fit.
        let len = self.digits.len() as i64 + self.exp;
        if len > 38 {
            return None;
        }
        let mut v: i128 = 0;
        for b in self.digits.bytes() {
            v = v * 10 + i128::from(b - b'0');
        }
        for _ in 0..self.exp {
            v *= 10;
        }
        Some(if self.negative { -v } else { v })
    }

    /// The nearest `f64` (correctly rounded); ±infinity when out of range.
    pub fn to_f64(&self) -> f64 {
        if self.is_zero() {
            return 0.0;
        }
        let sign = if self.negative { "-" } else { "" };
        // Rust's float parser rounds correctly, and every canonical number
        // has this shape, so parsing cannot fail.
        format!("{sign}{}e{}", self.digits, self.exp)
            .parse::<f64>()
            .unwrap_or(f64::NAN)
    }

    /// The float with exactly this value, if there is one.
    pub fn to_exact_f64(&self) -> Option<f64> {
        let f = self.to_f64();
        match Number::from_f64(f) {
            Some(back) if back == *self => Some(f),
            _ => None,
        }
    }

    fn cmp_magnitude(&self, other: &Number) -> Ordering {
        match (self.is_zero(), other.is_zero()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
        // Compare the position of the leading digit, then the digits; with
        // no trailing zeros, a digit string that is a prefix is the smaller.
        let lead_a = self.exp + self.digits.len() as i64;
        let lead_b = other.exp + other.digits.len() as i64;
        lead_a
            .cmp(&lead_b)
            .then_with(|| self.digits.as_str().cmp(other.digits.as_str()))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Number) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Number) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for Number {
    fn default() -> Number {
        Number::zero()
    }
}

impl fmt::Display for Number {
    /// Plain decimal notation, never an exponent: `-12.5`, `1000`, `0.001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0");
        }
        if self.negative {
            f.write_str("-")?;
        }
        if self.exp >= 0 {
            f.write_str(&self.digits)?;
            for _ in 0..self.exp {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let frac = self.exp.unsigned_abs() as usize;
        let len = self.digits.len();
        if len > frac {
            let (int, rest) = self.digits.split_at(len - frac);
            write!(f, "{int}.{rest}")
        } else {
            f.write_str("0.")?;
            for _ in 0..frac - len {
                f.write_str("0")?;
            }
            f.write_str(&self.digits)
        }
    }
}

impl fmt::Debug for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Number({self})")
    }
}

impl FromStr for Number {
    type Err = ValueError;

    /// Parses `[+-]digits[.digits][(e|E)[+-]digits]`; either side of the
    /// point may be empty but not both. NaN, infinities and hex are refused.
    fn from_str(s: &str) -> Result<Number, ValueError> {
        parse_decimal(s).map_err(|reason| ValueError::InvalidNumber {
            text: s.chars().take(64).collect(),
            reason,
        })
    }
}

fn parse_decimal(s: &str) -> Result<Number, String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let negative = match bytes.first() {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_part = &s[int_start..i];
    let mut frac_part = "";
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        frac_part = &s[frac_start..i];
    }
    if int_part.is_empty() && frac_part.is_empty() {
        return Err("no digits".into());
    }
    let mut exp: i64 = 0;
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        let exp_start = i;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == digits_start {
            return Err("no digits in exponent".into());
        }
        exp = match s[exp_start..i].parse::<i64>() {
            Ok(e) => e,
            // A huge exponent on a zero mantissa is still zero.
            Err(_) if is_all_zero(int_part) && is_all_zero(frac_part) => 0,
            Err(_) => return Err("exponent out of range".into()),
        };
    }
    if i != bytes.len() {
        return Err("unexpected characters".into());
    }
    let digits = format!("{int_part}{frac_part}");
    let exp = exp
        .checked_sub(frac_part.len() as i64)
        .ok_or("exponent out of range")?;
    Number::from_parts(negative, &digits, exp)
}

fn is_all_zero(s: &str) -> bool {
    s.bytes().all(|b| b == b'0')
}

impl From<i64> for Number {
    fn from(v: i64) -> Number {
        let negative = v < 0;
        let digits = v.unsigned_abs().to_string();
        // Fits trivially within the limits.
        Number::from_parts(negative, &digits, 0).unwrap_or_default()
    }
}

impl From<u64> for Number {
    fn from(v: u64) -> Number {
        Number::from_parts(false, &v.to_string(), 0).unwrap_or_default()
    }
}

impl From<i32> for Number {
    fn from(v: i32) -> Number {
        Number::from(i64::from(v))
    }
}

impl From<u32> for Number {
    fn from(v: u32) -> Number {
        Number::from(u64::from(v))
    }
}

impl From<usize> for Number {
    fn from(v: usize) -> Number {
        Number::from(v as u64)
    }
}

impl TryFrom<f64> for Number {
    type Error = ValueError;

    /// The exact value of a finite float; NaN and infinities are errors.
    fn try_from(f: f64) -> Result<Number, ValueError> {
        Number::from_f64(f).ok_or_else(|| ValueError::InvalidNumber {
            text: f.to_string(),
            reason: "not a finite number".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        s.parse().unwrap()
    }

    #[test]
    fn display_is_plain_decimal() {
        assert_eq!(n("1.0").to_string(), "1");
        assert_eq!(n("1e3").to_string(), "1000");
        assert_eq!(n("1e-30").to_string(), "0.000000000000000000000000000001");
        assert_eq!(n("-0012.5000").to_string(), "-12.5");
        assert_eq!(n("-0").to_string(), "0");
        assert_eq!(n("0.000").to_string(), "0");
        assert_eq!(n(".5").to_string(), "0.5");
        assert_eq!(n("5.").to_string(), "5");
        assert_eq!(n("+7E+2").to_string(), "700");
        assert_eq!(
            n("123456789012345678901234567890.123").to_string(),
            "123456789012345678901234567890.123"
        );
        assert_eq!(n("0e99999999999999999999999").to_string(), "0");
    }

    #[test]
    fn parse_errors() {
        for bad in [
            "",
            "-",
            ".",
            "e5",
            "1e",
            "1e+",
            "NaN",
            "nan",
            "Inf",
            "-Infinity",
            "0x10",
            "1_000",
            "1.2.3",
            " 1",
            "1 ",
            "--1",
            "1e99999999999999999999",
        ] {
            assert!(bad.parse::<Number>().is_err(), "{bad:?} parsed");
        }
        assert!(format!("1e{}", MAX_MAGNITUDE + 1)
            .parse::<Number>()
            .is_err());
        assert!("1".repeat(MAX_DIGITS + 1).parse::<Number>().is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(Number::from(i64::MIN).to_string(), "-9223372036854775808");
        assert_eq!(Number::from(i64::MIN).to_i64(), Some(i64::MIN));
        assert_eq!(Number::from(i64::MIN).to_u64(), None);
        assert_eq!(Number::from(u64::MAX).to_u64(), Some(u64::MAX));
        assert_eq!(Number::from(u64::MAX).to_i64(), None);
        assert_eq!(Number::from(100i32).to_i64(), Some(100));
        assert_eq!(n("1e2").to_u64(), Some(100));
        assert_eq!(n("1.5").to_i64(), None);
        assert_eq!(n("1e40").to_i64(), None);
        let two80 = n("1208925819614629174706176");
        assert_eq!(two80.to_f64(), 2f64.powi(80));
        assert_eq!(two80.to_exact_f64(), Some(2f64.powi(80)));
        assert_eq!(two80.to_i64(), None);
    }

    #[test]
    fn floats_are_exact() {
        assert_eq!(Number::from_f64(0.5).unwrap().to_string(), "0.5");
        assert_eq!(Number::from_f64(-0.0).unwrap(), Number::zero());
        assert_eq!(
            Number::from_f64(2f64.powi(80)).unwrap(),
            n("1208925819614629174706176")
        );
        // The float nearest 0.1 is not 0.1.
        let f = Number::from_f64(0.1).unwrap();
        assert_eq!(
            f.to_string(),
            "0.1000000000000000055511151231257827021181583404541015625"
        );
        assert_eq!(f.to_f64(), 0.1);
        assert_eq!(n("0.1").to_exact_f64(), None);
        assert_eq!(n("0.1").to_f64(), 0.1);
        assert_eq!(n("1e-30").to_f64(), 1e-30);
        let tiny = Number::from_f64(f64::from_bits(1)).unwrap();
        assert_eq!(tiny.to_f64(), f64::from_bits(1));
        let huge = Number::from_f64(f64::MAX).unwrap();
        assert_eq!(huge.to_f64(), f64::MAX);
        assert!(Number::from_f64(f64::NAN).is_none());
        assert!(Number::try_from(f64::INFINITY).is_err());
        assert_eq!(n("1e400").to_f64(), f64::INFINITY);
    }

    #[test]
    fn ordering_is_numeric() {
        let sorted = [
            "-1e10", "-100", "-99.5", "-0.001", "0", "1e-30", "0.1", "0.12", "0.123", "1", "9",
            "10", "1e20",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(n(a).cmp(&n(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
        assert_eq!(n("1.50"), n("1.5"));
        assert_eq!(n("15e-1"), n("1.5"));
    }
}
