//! Typed readers (and canonical writers) for the value shapes connect-string
//! keys use: booleans, integers, sizes with binary suffixes, milliseconds,
//! and the `off` keyword.
//!
//! Keywords (`on`, `off`, `true`, `false`, enum names) match ASCII
//! case-insensitively; the writers always emit lower case. Numbers are plain
//! decimal: no sign other than a leading `-` where a key allows negatives, no
//! `_` separators, no surrounding whitespace.

use super::error::ConfigError;

/// Reads a boolean: `on`/`true` or `off`/`false`.
pub(super) fn parse_bool(key: &str, value: &str) -> Result<bool, ConfigError> {
    if eq_kw(value, "on") || eq_kw(value, "true") {
        Ok(true)
    } else if eq_kw(value, "off") || eq_kw(value, "false") {
        Ok(false)
    } else {
        Err(ConfigError::InvalidValue {
            key: key.to_owned(),
            value: value.to_owned(),
            expected: "`on` or `off` (or `true` / `false`)",
        })
    }
}

/// Canonical spelling of a boolean.
pub(super) fn fmt_bool(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// ASCII case-insensitive keyword comparison.
pub(super) fn eq_kw(value: &str, keyword: &str) -> bool {
    value.eq_ignore_ascii_case(keyword)
}

/// Reads a decimal integer that may be negative. Range checks are the
/// caller's, so that the message can state the key's own range.
pub(super) fn parse_i64(key: &str, value: &str) -> Result<i64, ConfigError> {
    let digits = value.strip_prefix('-').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::InvalidNumber {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: "expected a decimal integer",
        });
    }
    value
        .parse::<i64>()
        .map_err(|_| ConfigError::InvalidNumber {
            key: key.to_owned(),
            value: value.to_owned(),
            reason: "the number does not fit in 64 bits",
        })
}

/// Reads an integer and checks it lies in `min..=max`.
pub(super) fn parse_int_in(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n = parse_i64(key, value)?;
    if n < min || n > max {
        return Err(out_of_range(key, value, format!("expected {min}..={max}")));
    }
    Ok(n)
}

/// An [`ConfigError::OutOfRange`] for `key=value`.
pub(super) fn out_of_range(key: &str, value: &str, expected: String) -> ConfigError {
    ConfigError::OutOfRange {
        key: key.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

/// Binary size suffixes, largest first, so [`fmt_size`] picks the largest
/// exact one.
const SIZE_UNITS: [(char, u32); 4] = [('T', 40), ('G', 30), ('M', 20), ('K', 10)];

/// Reads a size: an integer number of bytes, optionally followed by one of
/// `K`, `M`, `G`, `T` (either case), each a power of 1024.
///
/// Two-letter units (`KB`, `KiB`, `MB`, …) are rejected rather than guessed:
/// `KB` means 1000 to some readers and 1024 to others, and the spec defines
/// only the single letters.
pub(super) fn parse_size(key: &str, value: &str) -> Result<u64, ConfigError> {
    let bad = |reason: &'static str| ConfigError::InvalidSize {
        key: key.to_owned(),
        value: value.to_owned(),
        reason,
    };
    let digits_end = value
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(digits_end);
    if value.starts_with('-') {
        return Err(bad("sizes cannot be negative"));
    }
    if digits.is_empty() {
        return Err(bad(
            "expected an integer number of bytes, optionally followed by K, M, G or T",
        ));
    }
    let shift = match unit {
        "" => 0,
        u => {
            let mut chars = u.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(bad("the only units are K, M, G and T (binary: 1K = 1024 bytes); write `4M`, not `4MB` or `4MiB`"));
            };
            match SIZE_UNITS
                .iter()
                .find(|(unit, _)| unit.eq_ignore_ascii_case(&c))
            {
                Some((_, shift)) => *shift,
                None => {
                    return Err(bad(
                        "the only units are K, M, G and T (binary: 1K = 1024 bytes)",
                    ))
                }
            }
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| bad("the number does not fit in 64 bits"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| bad("the size does not fit in 64 bits"))
}

/// Canonical spelling of a size: the largest unit that divides it exactly.
pub(super) fn fmt_size(bytes: u64) -> String {
    if bytes != 0 {
        for (unit, shift) in SIZE_UNITS {
            let m = 1u64 << shift;
            if bytes.is_multiple_of(m) {
                return format!("{}{unit}", bytes / m);
            }
        }
    }
    bytes.to_string()
}

/// Whether `value` is the `off` keyword.
pub(super) fn is_off(value: &str) -> bool {
    eq_kw(value, "off")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bools_accept_on_off_true_false_any_case() {
        for v in ["on", "ON", "true", "True"] {
            assert_eq!(parse_bool("k", v), Ok(true), "{v}");
        }
        for v in ["off", "Off", "false", "FALSE"] {
            assert_eq!(parse_bool("k", v), Ok(false), "{v}");
        }
        for v in ["yes", "1", "0", "", " on"] {
            assert!(parse_bool("k", v).is_err(), "{v}");
        }
    }

    #[test]
    fn sizes_use_binary_single_letter_units() {
        assert_eq!(parse_size("k", "0"), Ok(0));
        assert_eq!(parse_size("k", "4096"), Ok(4096));
        assert_eq!(parse_size("k", "64K"), Ok(64 << 10));
        assert_eq!(parse_size("k", "64k"), Ok(64 << 10));
        assert_eq!(parse_size("k", "4M"), Ok(4 << 20));
        assert_eq!(parse_size("k", "10G"), Ok(10 << 30));
        assert_eq!(parse_size("k", "2t"), Ok(2 << 40));
    }

    #[test]
    fn sizes_reject_ambiguous_units_signs_and_overflow() {
        for v in [
            "4MB",
            "4MiB",
            "4KB",
            "4 M",
            "M",
            "",
            "-1",
            "+1",
            "4X",
            "1.5M",
            "16777216T",
        ] {
            assert!(
                matches!(parse_size("k", v), Err(ConfigError::InvalidSize { .. })),
                "{v}"
            );
        }
        assert!(parse_size("k", "18446744073709551616").is_err());
        assert_eq!(parse_size("k", "18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size("k", "16777215T"), Ok(16_777_215u64 << 40));
    }

    #[test]
    fn size_format_round_trips() {
        for n in [
            0,
            1,
            1023,
            1024,
            1025,
            64 << 10,
            100 << 20,
            10 << 30,
            3 << 40,
            u64::MAX,
        ] {
            assert_eq!(parse_size("k", &fmt_size(n)), Ok(n), "{n}");
        }
        assert_eq!(fmt_size(4 << 20), "4M");
        assert_eq!(fmt_size(1536), "1536");
        assert_eq!(fmt_size(3 << 10), "3K");
    }

    #[test]
    fn integers_reject_junk_and_overflow() {
        assert_eq!(parse_i64("k", "-1"), Ok(-1));
        assert_eq!(parse_i64("k", "007"), Ok(7));
        for v in [
            "",
            "-",
            "+1",
            "1_000",
            " 1",
            "1e3",
            "0x10",
            "9223372036854775808",
        ] {
            assert!(
                matches!(parse_i64("k", v), Err(ConfigError::InvalidNumber { .. })),
                "{v}"
            );
        }
        assert!(matches!(
            parse_int_in("k", "5", 6, 9),
            Err(ConfigError::OutOfRange { .. })
        ));
    }
}
