//! Unsigned LEB128 varints, as used for lengths, counts and symbol ids.
//!
//! Seven bits per byte, low group first, `0x80` set on every byte but the last.
//! A `u64` takes at most [`MAX_LEN`] bytes; anything longer, or a tenth byte
//! carrying bits above bit 63, is an overflow.

use thiserror::Error;

/// The longest encoding of a `u64`.
pub const MAX_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum VarintError {
    /// The input ended before the last byte of the varint (one without `0x80`).
    #[error("varint truncated after {read} bytes")]
    Truncated {
        /// How many bytes were available.
        read: usize,
    },
    /// The varint does not fit in 64 bits.
    #[error("varint overflows 64 bits")]
    Overflow,
}

/// Appends the varint encoding of `value` to `out`.
#[inline]
pub fn write(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// The number of bytes [`write()`] produces for `value`.
#[inline]
pub fn encoded_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Reads one varint from the start of `input`, returning the value and the
/// number of bytes it took.
#[inline]
pub fn read(input: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate().take(MAX_LEN) {
        let group = u64::from(byte & 0x7f);
        if i == MAX_LEN - 1 && byte > 0x01 {
            // The tenth byte may only carry bit 63.
            return Err(VarintError::Overflow);
        }
        value |= group << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if input.len() >= MAX_LEN {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Truncated { read: input.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, v);
        out
    }

    #[test]
    fn brief_vectors() {
        // qwp-wire-brief §14.1
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(1), [0x01]);
        assert_eq!(enc(127), [0x7f]);
        assert_eq!(enc(128), [0x80, 0x01]);
        assert_eq!(enc(255), [0xff, 0x01]);
        assert_eq!(enc(300), [0xac, 0x02]);
        assert_eq!(enc(16384), [0x80, 0x80, 0x01]);
        assert_eq!(enc(u64::MAX).len(), MAX_LEN);
    }

    #[test]
    fn round_trip_edges() {
        for v in [
            0,
            1,
            127,
            128,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let bytes = enc(v);
            assert_eq!(bytes.len(), encoded_len(v), "len of {v}");
            assert_eq!(read(&bytes), Ok((v, bytes.len())));
        }
    }

    #[test]
    fn truncated_and_overflow() {
        assert_eq!(read(&[]), Err(VarintError::Truncated { read: 0 }));
        assert_eq!(read(&[0x80, 0x80]), Err(VarintError::Truncated { read: 2 }));
        assert_eq!(read(&[0xff; 10]), Err(VarintError::Overflow));
        assert_eq!(read(&[0xff; 11]), Err(VarintError::Overflow));
        let mut ten = vec![0xff; 9];
        ten.push(0x02);
        assert_eq!(read(&ten), Err(VarintError::Overflow));
    }
}
