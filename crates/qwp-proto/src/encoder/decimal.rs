//! Range checks for DECIMAL64/128/256 unscaled values and scales.
//!
//! The spec sizes the widths at 18 / 38 / 77 digits. A signed 256-bit
//! integer cannot hold every 77-digit value (2^255 ≈ 5.8·10^76), so the
//! 256-bit width is checked at 76 digits, QuestDB's largest decimal
//! precision. A scale larger than the width's digit count is refused too.

/// Digits DECIMAL64 holds.
pub const DECIMAL64_DIGITS: u8 = 18;
/// Digits DECIMAL128 holds.
pub const DECIMAL128_DIGITS: u8 = 38;
/// Digits DECIMAL256 holds (see the module note on 77 vs 76).
pub const DECIMAL256_DIGITS: u8 = 76;

/// Whether `|v| < 10^digits` (digits ≤ 38) for a 128-bit value.
pub(crate) fn fits_i128(v: i128, digits: u8) -> bool {
    match 10u128.checked_pow(u32::from(digits)) {
        Some(limit) => v.unsigned_abs() < limit,
        None => true,
    }
}

/// `10^n` as four little-endian u64 limbs (n ≤ 77).
const fn pow10_limbs(n: u32) -> [u64; 4] {
    let mut limbs = [1u64, 0, 0, 0];
    let mut i = 0;
    while i < n {
        let mut carry: u128 = 0;
        let mut k = 0;
        while k < 4 {
            let p = limbs[k] as u128 * 10 + carry;
            limbs[k] = p as u64;
            carry = p >> 64;
            k += 1;
        }
        i += 1;
    }
    limbs
}

const LIMIT_256: [u64; 4] = pow10_limbs(DECIMAL256_DIGITS as u32);

/// Whether the two's-complement 256-bit value (little-endian limbs) has
/// `|v| < 10^76`.
pub(crate) fn fits_i256(limbs: [u64; 4]) -> bool {
    let negative = limbs[3] >> 63 == 1;
    let mag = if negative {
        // Two's-complement negation; i256::MIN maps to 2^255, which is
        // correctly out of range.
        let mut out = [0u64; 4];
        let mut carry = true;
        for (o, l) in out.iter_mut().zip(limbs) {
            let (s, c) = (!l).overflowing_add(u64::from(carry));
            *o = s;
            carry = c;
        }
        out
    } else {
        limbs
    };
    // Compare most significant limb first.
    for k in (0..4).rev() {
        if mag[k] != LIMIT_256[k] {
            return mag[k] < LIMIT_256[k];
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limbs_of(v: i128) -> [u64; 4] {
        let ext = if v < 0 { u64::MAX } else { 0 };
        [v as u64, (v >> 64) as u64, ext, ext]
    }

    #[test]
    fn decimal64_holds_18_digits() {
        assert!(fits_i128(999_999_999_999_999_999, 18));
        assert!(fits_i128(-999_999_999_999_999_999, 18));
        assert!(!fits_i128(1_000_000_000_000_000_000, 18));
        assert!(!fits_i128(i64::MIN.into(), 18));
    }

    #[test]
    fn decimal128_holds_38_digits() {
        let max = 10i128.pow(38) - 1;
        assert!(fits_i128(max, 38));
        assert!(fits_i128(-max, 38));
        assert!(!fits_i128(max + 1, 38));
        assert!(!fits_i128(i128::MIN, 38));
    }

    #[test]
    fn decimal256_holds_76_digits() {
        let ten38 = pow10_limbs(38);
        assert_eq!(ten38, limbs_of(10i128.pow(38)));
        assert!(fits_i256(limbs_of(-2)));
        assert!(fits_i256(limbs_of(i128::MAX)));
        assert!(fits_i256(limbs_of(i128::MIN)));
        // 10^76 itself is out, 10^76 - 1 is in (both signs).
        // 10^76 - 1, borrowing through the limbs (10^76 has 76 low zero bits).
        let mut below = LIMIT_256;
        for limb in below.iter_mut() {
            let (v, borrow) = limb.overflowing_sub(1);
            *limb = v;
            if !borrow {
                break;
            }
        }
        assert!(fits_i256(below));
        assert!(!fits_i256(LIMIT_256));
        let neg = |l: [u64; 4]| {
            let mut out = [0u64; 4];
            let mut carry = true;
            for (o, x) in out.iter_mut().zip(l) {
                let (s, c) = (!x).overflowing_add(u64::from(carry));
                *o = s;
                carry = c;
            }
            out
        };
        assert!(fits_i256(neg(below)));
        assert!(!fits_i256(neg(LIMIT_256)));
        assert!(!fits_i256([0, 0, 0, 1 << 63])); // i256::MIN
        assert!(!fits_i256([u64::MAX, u64::MAX, u64::MAX, u64::MAX >> 1])); // i256::MAX
    }
}
