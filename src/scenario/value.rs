//! The value forms of scenario files (scenario-format.md, "Values"): integers written as
//! numbers or strings, sizes with binary suffixes, and the four byte-string forms,
//! including the deterministic pseudo-random generator that is part of the format.
//!
//! Everything here is independent of TOML and JSON: the functions take the text or the
//! numbers a file holds and either return the value or a [`ValueError`] saying what is
//! wrong. No function panics or wraps on any input; every overflow is an error.
//!
//! Integers are returned as `i128` so that the full range of both `u64` (written as a
//! string) and negative numbers (for the few signed fields, such as an expected `ret`)
//! fit; the caller narrows them with [`to_unsigned`] or [`to_signed`].
#![forbid(unsafe_code)]

use std::fmt;

/// The largest byte string a bytes value may produce (256 MiB). Larger `len` values are
/// rejected instead of exhausting memory: a scenario never needs them (a memop moves at
/// most 64 KiB).
pub const MAX_BYTES_LEN: u64 = 1 << 28;

/// The largest magnitude an integer may have: every field is at most 64 bits wide.
const MAX_MAGNITUDE: u128 = u64::MAX as u128;

/// A value that does not have the form or range a field requires. The `Display` text is a
/// complete sentence fragment suitable after "file:line:col: path: ".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    message: String,
}

impl ValueError {
    /// An error with the given message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ValueError {}

/// Parses an integer written as a string: decimal (`"4096"`), hexadecimal (`"0x10000"`),
/// binary (`"0b101"`) or octal (`"0o17"`, an extension), with an optional sign and `_`
/// separators anywhere among the digits. Surrounding white space is ignored. Prefixes are
/// case-insensitive. The magnitude must fit in 64 bits.
///
/// ```
/// use s390_gaccess::scenario::value::parse_integer;
/// assert_eq!(parse_integer("0xffff_ffff_ffff_f000"), Ok(0xffff_ffff_ffff_f000));
/// assert_eq!(parse_integer("-22"), Ok(-22));
/// assert!(parse_integer("4K").is_err());
/// ```
pub fn parse_integer(text: &str) -> Result<i128, ValueError> {
    parse_number(text, false)
}

/// Parses a size or address written as a string: everything [`parse_integer`] accepts,
/// plus, after a decimal number, a binary suffix `K`, `M`, `G` or `T` (2^10, 2^20, 2^30,
/// 2^40), optionally spelt `KiB`, `MiB`, `GiB`, `TiB`, case-insensitive, optionally
/// separated from the number by spaces. The product must fit in 64 bits.
///
/// ```
/// use s390_gaccess::scenario::value::parse_size;
/// assert_eq!(parse_size("4K"), Ok(4096));
/// assert_eq!(parse_size("2GiB"), Ok(2 << 30));
/// assert_eq!(parse_size("0x1000"), Ok(4096));
/// ```
pub fn parse_size(text: &str) -> Result<i128, ValueError> {
    parse_number(text, true)
}

fn parse_number(text: &str, allow_suffix: bool) -> Result<i128, ValueError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ValueError::new(
            "an empty string is not an integer; write e.g. \"0\" or \"0x1000\"",
        ));
    }
    let (negative, unsigned) = if let Some(rest) = t.strip_prefix('-') {
        (true, rest)
    } else if let Some(rest) = t.strip_prefix('+') {
        (false, rest)
    } else {
        (false, t)
    };
    let lower_prefix = unsigned.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits, radix_name) = match lower_prefix.as_deref() {
        Some("0x") => (16, unsigned.get(2..).unwrap_or(""), "hexadecimal"),
        Some("0b") => (2, unsigned.get(2..).unwrap_or(""), "binary"),
        Some("0o") => (8, unsigned.get(2..).unwrap_or(""), "octal"),
        _ => (10, unsigned, "decimal"),
    };
    let (digits, multiplier) = if allow_suffix && radix == 10 {
        split_suffix(digits)
    } else {
        (digits, 1)
    };
    let mut magnitude: u128 = 0;
    let mut seen_digit = false;
    for c in digits.chars() {
        if c == '_' {
            continue;
        }
        let Some(d) = c.to_digit(radix) else {
            let hint = if radix == 10 && c.is_ascii_alphabetic() {
                if allow_suffix {
                    " (binary suffixes are K, M, G, T or KiB, MiB, GiB, TiB, after a decimal number)"
                } else {
                    " (binary suffixes such as \"4K\" are allowed only for sizes and addresses)"
                }
            } else {
                ""
            };
            return Err(ValueError::new(format!(
                "\"{text}\" is not an integer: `{c}` is not a {radix_name} digit{hint}"
            )));
        };
        seen_digit = true;
        magnitude = magnitude
            .checked_mul(u128::from(radix))
            .and_then(|m| m.checked_add(u128::from(d)))
            .filter(|m| *m <= MAX_MAGNITUDE)
            .ok_or_else(|| too_large(text))?;
    }
    if !seen_digit {
        return Err(ValueError::new(format!(
            "\"{text}\" is not an integer: it has no {radix_name} digits"
        )));
    }
    let magnitude = magnitude
        .checked_mul(multiplier)
        .filter(|m| *m <= MAX_MAGNITUDE)
        .ok_or_else(|| too_large(text))?;
    // magnitude <= u64::MAX, so it fits in i128 with either sign.
    let value = i128::try_from(magnitude).map_err(|_| too_large(text))?;
    Ok(if negative { -value } else { value })
}

fn too_large(text: &str) -> ValueError {
    ValueError::new(format!(
        "\"{text}\" is too large: values must fit in 64 bits (at most 0xffff_ffff_ffff_ffff)"
    ))
}

/// Splits a binary suffix off a decimal number: returns the digits and the multiplier.
fn split_suffix(digits: &str) -> (&str, u128) {
    const SUFFIXES: [(&str, u32); 8] = [
        ("kib", 10),
        ("mib", 20),
        ("gib", 30),
        ("tib", 40),
        ("k", 10),
        ("m", 20),
        ("g", 30),
        ("t", 40),
    ];
    for (suffix, shift) in SUFFIXES {
        let n = suffix.len();
        if digits.len() > n
            && let Some(split) = digits.len().checked_sub(n)
            && let (Some(head), Some(tail)) = (digits.get(..split), digits.get(split..))
            && tail.eq_ignore_ascii_case(suffix)
        {
            return (head.trim_end(), 1u128 << shift);
        }
    }
    (digits, 1)
}

/// Narrows a parsed integer to an unsigned field whose largest value is `max`.
/// `what` names the field's kind in the message ("a byte", "a 32-bit value").
pub fn to_unsigned(value: i128, max: u64, what: &str) -> Result<u64, ValueError> {
    if value < 0 {
        return Err(ValueError::new(format!(
            "{value} is negative; this field takes {what} (0..={max:#x})"
        )));
    }
    u64::try_from(value)
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(|| {
            ValueError::new(format!(
                "{value:#x} is out of range; this field takes {what} (0..={max:#x})"
            ))
        })
}

/// Narrows a parsed integer to an `i64` field.
pub fn to_signed(value: i128) -> Result<i64, ValueError> {
    i64::try_from(value).map_err(|_| {
        ValueError::new(format!(
            "{value} is out of range; this field takes a signed 64-bit value"
        ))
    })
}

/// Decodes a hex string; white space anywhere is ignored (`"00ff 1234"`).
pub fn decode_hex(text: &str) -> Result<Vec<u8>, ValueError> {
    let mut out = Vec::with_capacity(text.len() / 2);
    let mut high: Option<u8> = None;
    for c in text.chars() {
        if c.is_whitespace() {
            continue;
        }
        let Some(d) = c.to_digit(16).and_then(|d| u8::try_from(d).ok()) else {
            return Err(ValueError::new(format!(
                "hex bytes: `{c}` is not a hex digit (only 0-9, a-f, A-F and white space are allowed)"
            )));
        };
        match high.take() {
            None => high = Some(d),
            Some(h) => out.push((h << 4) | d),
        }
    }
    if high.is_some() {
        return Err(ValueError::new(
            "hex bytes: odd number of hex digits; every byte needs two digits",
        ));
    }
    Ok(out)
}

/// Encodes bytes as lower-case hex without separators (the form results use).
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The format's pseudo-random generator (xorshift64*, with a seed scrambler):
/// state `x = seed ^ 0x9E3779B97F4A7C15` (1 if that is 0); each output does
/// `x ^= x >> 12; x ^= x << 25; x ^= x >> 27` and yields `x * 0x2545F4914F6CDD1D`
/// (wrapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorShiftStar {
    state: u64,
}

impl XorShiftStar {
    /// The seed scrambler constant.
    pub const SEED_XOR: u64 = 0x9E37_79B9_7F4A_7C15;
    /// The output multiplier.
    pub const MULTIPLIER: u64 = 0x2545_F491_4F6C_DD1D;

    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        let x = seed ^ Self::SEED_XOR;
        Self {
            state: if x == 0 { 1 } else { x },
        }
    }

    /// The next 64-bit output.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(Self::MULTIPLIER)
    }
}

impl Iterator for XorShiftStar {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        Some(self.next_u64())
    }
}

/// `len` bytes of the format's random sequence for `seed`: the outputs of
/// [`XorShiftStar`], each most significant byte first; when `len` is not a multiple of 8
/// the last output is cut after `len` bytes. Fails only when `len` exceeds
/// [`MAX_BYTES_LEN`].
pub fn random_bytes(seed: u64, len: u64) -> Result<Vec<u8>, ValueError> {
    let len = check_len(len)?;
    let mut out = Vec::with_capacity(len.saturating_add(7));
    let mut generator = XorShiftStar::new(seed);
    while out.len() < len {
        out.extend_from_slice(&generator.next_u64().to_be_bytes());
    }
    out.truncate(len);
    Ok(out)
}

/// Checks a byte-string length against [`MAX_BYTES_LEN`] and converts it to `usize`.
pub fn check_len(len: u64) -> Result<usize, ValueError> {
    if len > MAX_BYTES_LEN {
        return Err(ValueError::new(format!(
            "length {len:#x} exceeds the limit of {MAX_BYTES_LEN:#x} bytes for a bytes value"
        )));
    }
    usize::try_from(len).map_err(|_| {
        ValueError::new(format!(
            "length {len:#x} does not fit this machine's memory"
        ))
    })
}

/// One of the four byte-string forms, after its numbers were parsed but before the bytes
/// are produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BytesForm {
    /// `{ hex = "00ff 1234" }`: the decoded bytes.
    Hex(Vec<u8>),
    /// `{ fill = BYTE, len = SIZE }`.
    Fill {
        /// The byte repeated.
        byte: u8,
        /// How many bytes.
        len: u64,
    },
    /// `{ u64 = [...] }`: big-endian doublewords.
    U64(Vec<u64>),
    /// `{ random = SEED, len = SIZE }`: see [`random_bytes`].
    Random {
        /// The generator seed.
        seed: u64,
        /// How many bytes.
        len: u64,
    },
}

impl BytesForm {
    /// Produces the bytes. Fails only when the length exceeds [`MAX_BYTES_LEN`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, ValueError> {
        match self {
            BytesForm::Hex(bytes) => Ok(bytes.clone()),
            BytesForm::Fill { byte, len } => Ok(vec![*byte; check_len(*len)?]),
            BytesForm::U64(words) => {
                let len = u64::try_from(words.len())
                    .ok()
                    .and_then(|n| n.checked_mul(8))
                    .unwrap_or(u64::MAX);
                check_len(len)?;
                Ok(words.iter().flat_map(|w| w.to_be_bytes()).collect())
            }
            BytesForm::Random { seed, len } => random_bytes(*seed, *len),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(parse_integer("0"), Ok(0));
        assert_eq!(parse_integer("4096"), Ok(4096));
        assert_eq!(parse_integer("0x10000"), Ok(0x10000));
        assert_eq!(parse_integer("0X1_0000"), Ok(0x10000));
        assert_eq!(parse_integer("0b101"), Ok(5));
        assert_eq!(parse_integer("0o17"), Ok(15));
        assert_eq!(parse_integer("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_integer(" 12 "), Ok(12));
        assert_eq!(parse_integer("-0x16"), Ok(-22));
        assert_eq!(parse_integer("+7"), Ok(7));
        assert_eq!(
            parse_integer("0xffff_ffff_ffff_ffff"),
            Ok(i128::from(u64::MAX))
        );
        assert_eq!(
            parse_integer("18446744073709551615"),
            Ok(i128::from(u64::MAX))
        );
        assert_eq!(
            parse_integer("-18446744073709551615"),
            Ok(-i128::from(u64::MAX))
        );
    }

    #[test]
    fn integer_errors() {
        for bad in [
            "", " ", "0x", "0x_", "-", "_", "0xg", "12a", "1.5", "0b102", "4K", "--1", "0x-1", "１",
        ] {
            assert!(parse_integer(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_integer("0x1_0000_0000_0000_0000").unwrap_err();
        assert!(e.message().contains("too large"), "{e}");
        assert!(parse_integer("18446744073709551616").is_err());
        assert!(parse_integer("99999999999999999999999999999999999999999999").is_err());
        let e = parse_integer("4K").unwrap_err();
        assert!(e.message().contains("only for sizes"), "{e}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4 KiB"), Ok(4096));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("16777215T"), Ok(16_777_215 << 40));
        assert!(parse_size("16777216T").is_err());
        assert_eq!(parse_size("0x2000"), Ok(0x2000));
        assert_eq!(parse_size("1_024K"), Ok(1 << 20));
        for bad in ["K", "KiB", "4KB", "4X", "0x10K", "4Ki", "4 K B"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn narrowing() {
        assert_eq!(to_unsigned(255, 255, "a byte"), Ok(255));
        assert!(to_unsigned(256, 255, "a byte").is_err());
        assert!(to_unsigned(-1, u64::MAX, "a 64-bit value").is_err());
        assert_eq!(
            to_unsigned(i128::from(u64::MAX), u64::MAX, "a 64-bit value"),
            Ok(u64::MAX)
        );
        assert_eq!(to_signed(-22), Ok(-22));
        assert!(to_signed(i128::from(u64::MAX)).is_err());
    }

    #[test]
    fn hex() {
        assert_eq!(decode_hex("00ff 1234"), Ok(vec![0x00, 0xff, 0x12, 0x34]));
        assert_eq!(decode_hex(" A b\n\tC d "), Ok(vec![0xab, 0xcd]));
        assert_eq!(decode_hex(""), Ok(vec![]));
        assert!(decode_hex("0").is_err());
        assert!(decode_hex("0x00").is_err());
        assert!(decode_hex("zz").is_err());
        assert_eq!(encode_hex(&[0x5a, 0x00, 0xff]), "5a00ff");
    }

    /// The first outputs for seed 42, computed independently (Python, arbitrary-precision
    /// integers masked to 64 bits) from the generator text in scenario-format.md.
    #[test]
    fn random_seed_42() {
        let mut g = XorShiftStar::new(42);
        assert_eq!(g.next_u64(), 0x0832_8d7f_03bc_ec1a);
        assert_eq!(g.next_u64(), 0x077e_7279_e17a_b6cd);
        assert_eq!(g.next_u64(), 0x0c4e_098f_541b_b09e);
        assert_eq!(g.next_u64(), 0xd861_fcf4_7b8b_124e);
        assert_eq!(
            random_bytes(42, 12),
            Ok(vec![
                0x08, 0x32, 0x8d, 0x7f, 0x03, 0xbc, 0xec, 0x1a, 0x07, 0x7e, 0x72, 0x79
            ])
        );
        assert_eq!(random_bytes(42, 0), Ok(vec![]));
    }

    /// A seed equal to the scrambler constant gives state 0, which is replaced by 1.
    #[test]
    fn random_zero_state() {
        let mut g = XorShiftStar::new(XorShiftStar::SEED_XOR);
        // x = 1: x ^= x<<25 gives 0x2000001; the output is that times the multiplier.
        assert_eq!(
            g.next_u64(),
            0x200_0001u64.wrapping_mul(XorShiftStar::MULTIPLIER)
        );
        assert_eq!(g.next_u64(), 0xabcf_a6a8_e079_651d);
        let mut g0 = XorShiftStar::new(0);
        assert_eq!(g0.next_u64(), 0x0d83_b3e2_9a21_487a);
    }

    #[test]
    fn forms() {
        assert_eq!(
            BytesForm::Fill { byte: 0xaa, len: 3 }.to_bytes(),
            Ok(vec![0xaa; 3])
        );
        assert_eq!(
            BytesForm::U64(vec![1, 0x0102_0304_0506_0708]).to_bytes(),
            Ok(vec![0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert!(
            BytesForm::Fill {
                byte: 0,
                len: u64::MAX
            }
            .to_bytes()
            .is_err()
        );
        assert!(random_bytes(1, MAX_BYTES_LEN + 1).is_err());
    }
}
