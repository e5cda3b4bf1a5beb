//! Timestamp column encoding under `FLAG_GORILLA`: an encoding byte, then
//! either raw i64s (`00`) or Gorilla delta-of-delta (`01`: `t0`, `t1`, then a
//! bit stream for the rest).
//!
//! Bits go LSB-first within each byte. For each delta-of-delta (DoD) the
//! stream holds a prefix, then the value in two's complement, LSB first:
//!
//! | DoD range        | prefix (write order) | value bits |
//! |------------------|----------------------|------------|
//! | 0                | 0                    | 0          |
//! | [-64, 63]        | 1 0                  | 7          |
//! | [-256, 255]      | 1 1 0                | 9          |
//! | [-2048, 2047]    | 1 1 1 0              | 12         |
//! | any other i32    | 1 1 1 1              | 32         |
//!
//! The encoder follows the reference client: Gorilla only for more than two
//! values whose every DoD fits in i32, raw otherwise. The decoder accepts
//! both forms for any count.

use thiserror::Error;

/// Encoding byte: raw little-endian i64 values.
pub const ENCODING_RAW: u8 = 0x00;
/// Encoding byte: Gorilla delta-of-delta.
pub const ENCODING_GORILLA: u8 = 0x01;

/// Why a timestamp section could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum GorillaError {
    /// The section ended before all values were read.
    #[error("timestamp section truncated: {needed} more bytes needed for {count} values")]
    Truncated {
        /// Values the section declares.
        count: usize,
        /// A lower bound on the missing bytes.
        needed: usize,
    },
    /// The encoding byte is neither `00` nor `01`.
    #[error("unknown timestamp encoding byte {0:#04x}")]
    UnknownEncoding(u8),
}

/// The `(prefix bits, prefix length, value bits)` bucket of a DoD, or `None`
/// when it does not fit in i32.
fn bucket(dod: i128) -> Option<(u64, u32, u32)> {
    // Prefix written LSB-first: "1 0" is the 2-bit integer 0b01, etc.
    match dod {
        0 => Some((0b0, 1, 0)),
        -64..=63 => Some((0b01, 2, 7)),
        -256..=255 => Some((0b011, 3, 9)),
        -2048..=2047 => Some((0b0111, 4, 12)),
        _ if dod >= i32::MIN as i128 && dod <= i32::MAX as i128 => Some((0b1111, 4, 32)),
        _ => None,
    }
}

/// The DoDs of `values[2..]`, exact (no overflow) thanks to i128.
fn dods(values: &[i64]) -> impl Iterator<Item = i128> + '_ {
    values.windows(3).map(|w| {
        let (a, b, c) = (w[0] as i128, w[1] as i128, w[2] as i128);
        (c - b) - (b - a)
    })
}

/// Whether the reference rules pick the Gorilla form for these values:
/// more than two values and every DoD within i32.
pub fn uses_gorilla(values: &[i64]) -> bool {
    values.len() > 2 && dods(values).all(|d| bucket(d).is_some())
}

/// Appends the encoding byte and the encoded non-null `values`, choosing the
/// form by the reference rules ([`uses_gorilla`]).
pub fn encode(values: &[i64], out: &mut Vec<u8>) {
    if !uses_gorilla(values) {
        out.reserve(1 + values.len() * 8);
        out.push(ENCODING_RAW);
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
        return;
    }
    out.push(ENCODING_GORILLA);
    out.extend_from_slice(&values[0].to_le_bytes());
    out.extend_from_slice(&values[1].to_le_bytes());
    let mut w = BitWriter::new(out);
    for dod in dods(values) {
        let (prefix, prefix_len, value_bits) = bucket(dod).expect("checked by uses_gorilla");
        w.write(prefix, prefix_len);
        if value_bits > 0 {
            let mask = (1u64 << value_bits) - 1;
            w.write((dod as i64 as u64) & mask, value_bits);
        }
    }
    w.finish();
}

/// Appends the Gorilla form (`01`, t0, t1, stream) regardless of the
/// reference rules, for any count of values whose DoDs fit in i32. Returns
/// `false` and writes nothing when a DoD does not fit. Used by tests and by
/// peers that want to exercise the decoder's acceptance of short forms.
pub fn encode_gorilla_forced(values: &[i64], out: &mut Vec<u8>) -> bool {
    if !dods(values).all(|d| bucket(d).is_some()) {
        return false;
    }
    out.push(ENCODING_GORILLA);
    for v in values.iter().take(2) {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut w = BitWriter::new(out);
    for dod in dods(values) {
        let (prefix, prefix_len, value_bits) = bucket(dod).expect("checked above");
        w.write(prefix, prefix_len);
        if value_bits > 0 {
            w.write((dod as i64 as u64) & ((1u64 << value_bits) - 1), value_bits);
        }
    }
    w.finish();
    true
}

/// Decodes `count` timestamps from `input`, which starts at the encoding
/// byte. Returns the values and the number of bytes consumed. Allocates only
/// after checking that the input is long enough to hold `count` values.
pub fn decode(input: &[u8], count: usize) -> Result<(Vec<i64>, usize), GorillaError> {
    let Some((&encoding, rest)) = input.split_first() else {
        return Err(GorillaError::Truncated { count, needed: 1 });
    };
    match encoding {
        ENCODING_RAW => {
            let need = count.saturating_mul(8);
            if rest.len() < need {
                return Err(GorillaError::Truncated {
                    count,
                    needed: need - rest.len(),
                });
            }
            let values = rest[..need]
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8")))
                .collect();
            Ok((values, 1 + need))
        }
        ENCODING_GORILLA => {
            let heads = count.min(2);
            let stream_values = count - heads;
            // Each streamed value takes at least one bit.
            let min_need = heads * 8 + stream_values.div_ceil(8);
            if rest.len() < min_need {
                return Err(GorillaError::Truncated {
                    count,
                    needed: min_need - rest.len(),
                });
            }
            let mut values = Vec::with_capacity(count);
            for c in rest[..heads * 8].chunks_exact(8) {
                values.push(i64::from_le_bytes(c.try_into().expect("chunk of 8")));
            }
            if stream_values == 0 {
                return Ok((values, 1 + heads * 8));
            }
            let mut r = BitReader::new(&rest[heads * 8..]);
            let mut prev = values[1];
            let mut delta = values[1].wrapping_sub(values[0]);
            for _ in 0..stream_values {
                let dod = r
                    .read_dod()
                    .ok_or(GorillaError::Truncated { count, needed: 1 })?;
                delta = delta.wrapping_add(dod);
                prev = prev.wrapping_add(delta);
                values.push(prev);
            }
            Ok((values, 1 + heads * 8 + r.bytes_consumed()))
        }
        other => Err(GorillaError::UnknownEncoding(other)),
    }
}

/// Writes bits LSB-first into whole bytes appended to a `Vec`.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl<'a> BitWriter<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        BitWriter {
            out,
            acc: 0,
            nbits: 0,
        }
    }

    /// Writes the low `n` (≤ 32) bits of `bits`.
    fn write(&mut self, bits: u64, n: u32) {
        debug_assert!(n <= 32);
        self.acc |= bits << self.nbits;
        self.nbits += n;
        while self.nbits >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.nbits -= 8;
        }
    }

    /// Flushes a partial byte, zero-padded.
    fn finish(self) {
        if self.nbits > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// Reads bits LSB-first from a byte slice.
struct BitReader<'a> {
    input: &'a [u8],
    bit: usize,
}

impl<'a> BitReader<'a> {
    fn new(input: &'a [u8]) -> Self {
        BitReader { input, bit: 0 }
    }

    fn read_bit(&mut self) -> Option<u64> {
        let byte = *self.input.get(self.bit / 8)?;
        let b = (byte >> (self.bit % 8)) & 1;
        self.bit += 1;
        Some(u64::from(b))
    }

    fn read_bits(&mut self, n: u32) -> Option<u64> {
        let mut v = 0u64;
        for i in 0..n {
            v |= self.read_bit()? << i;
        }
        Some(v)
    }

    /// Reads one prefix-coded, sign-extended DoD.
    fn read_dod(&mut self) -> Option<i64> {
        let mut ones = 0;
        while ones < 4 && self.read_bit()? == 1 {
            ones += 1;
        }
        let width = match ones {
            0 => return Some(0),
            1 => 7,
            2 => 9,
            3 => 12,
            _ => 32,
        };
        let raw = self.read_bits(width)?;
        let shift = 64 - width;
        Some(((raw << shift) as i64) >> shift)
    }

    fn bytes_consumed(&self) -> usize {
        self.bit.div_ceil(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(values: &[i64]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(values, &mut out);
        assert_eq!(out[0], ENCODING_GORILLA, "{values:?} should use Gorilla");
        out[17..].to_vec()
    }

    #[test]
    fn brief_14_8_stream_vectors() {
        assert_eq!(stream(&[1000, 2000, 3000, 4000, 5010]), [0xa4, 0x00]);
        let tens: Vec<i64> = (0..10).map(|i| i * 10).collect();
        assert_eq!(stream(&tens), [0x00]);
        assert_eq!(stream(&[100, 200, 300, 399]), [0xfa, 0x03]);
        assert_eq!(stream(&[0, 1000, 2000, 3300]), [0x8e, 0x25, 0x00]);
        assert_eq!(
            stream(&[0, 1000, 2000, 103000]),
            [0x1e, 0xd4, 0x30, 0x00, 0x00]
        );
    }

    fn bits_for(dod: i64) -> usize {
        // Three values give exactly one DoD.
        let values = [0, 0, dod];
        let mut out = Vec::new();
        encode(&values, &mut out);
        assert_eq!(out[0], ENCODING_GORILLA);
        let (p, l, v) = bucket(dod as i128).unwrap();
        let _ = p;
        assert_eq!(out.len() - 17, ((l + v) as usize).div_ceil(8));
        (l + v) as usize
    }

    #[test]
    fn bucket_edges() {
        assert_eq!(bits_for(0), 1);
        assert_eq!(bits_for(-64), 9);
        assert_eq!(bits_for(63), 9);
        assert_eq!(bits_for(64), 12);
        assert_eq!(bits_for(-65), 12);
        assert_eq!(bits_for(256), 16);
        assert_eq!(bits_for(2048), 36);
        assert_eq!(bits_for(i32::MIN as i64), 36);
        assert_eq!(bits_for(i32::MAX as i64), 36);
    }

    #[test]
    fn reference_fallback_to_raw() {
        for values in [
            vec![],
            vec![5],
            vec![5, 6],
            vec![0, 0, 1i64 << 31],
            vec![0, i64::MAX, 0],
        ] {
            let mut out = Vec::new();
            encode(&values, &mut out);
            assert_eq!(out[0], ENCODING_RAW, "{values:?}");
            assert_eq!(out.len(), 1 + 8 * values.len());
            assert_eq!(decode(&out, values.len()), Ok((values.clone(), out.len())));
        }
    }

    #[test]
    fn decoder_accepts_short_gorilla_forms() {
        for values in [vec![], vec![7i64], vec![7, 9]] {
            let mut out = Vec::new();
            assert!(encode_gorilla_forced(&values, &mut out));
            assert_eq!(decode(&out, values.len()), Ok((values.clone(), out.len())));
        }
    }

    #[test]
    fn round_trip_mixed_buckets_and_extremes() {
        let values = vec![
            1_700_000_000_000_000,
            1_700_000_000_001_000,
            1_700_000_000_002_000,
            1_700_000_000_002_999,
            1_700_000_000_004_200,
            1_700_000_000_010_000,
            1_700_000_100_000_000,
            1_700_000_100_000_000,
        ];
        let mut out = Vec::new();
        encode(&values, &mut out);
        assert_eq!(out[0], ENCODING_GORILLA);
        assert_eq!(decode(&out, values.len()), Ok((values.clone(), out.len())));
        // Trailing bytes after the section are not consumed.
        out.extend_from_slice(&[0xaa, 0xbb]);
        assert_eq!(decode(&out, values.len()).unwrap().1, out.len() - 2);
    }

    #[test]
    fn malformed_sections_are_errors_not_panics() {
        assert_eq!(
            decode(&[], 1),
            Err(GorillaError::Truncated {
                count: 1,
                needed: 1
            })
        );
        assert_eq!(decode(&[0x02], 0), Err(GorillaError::UnknownEncoding(2)));
        assert!(decode(&[0x00, 1, 2, 3], 1).is_err());
        // A huge declared count with a tiny input is refused before allocating.
        assert!(decode(&[0x01; 20], usize::MAX).is_err());
        assert!(decode(&[0x00; 20], usize::MAX).is_err());
        // A stream that runs out mid-value.
        let mut g = vec![0x01];
        g.extend_from_slice(&0i64.to_le_bytes());
        g.extend_from_slice(&0i64.to_le_bytes());
        g.push(0xff); // prefix 1111 then 4 of 32 value bits
        assert!(decode(&g, 3).is_err());
    }
}
