//! The `.ack-watermark` file codec (sf-client §5.4): 16 bytes, magic `AKW1`,
//! reserved u32, acknowledged FSN as i64.
//!
//! The file is optional and only ever an optimisation: when it is unusable
//! recovery falls back to `lowestBaseSeq − 1`, which replays more but loses
//! nothing (S8). So every doubt — wrong size, wrong magic, non-zero reserved
//! field, negative FSN — makes the watermark unusable rather than guessed at.

use crate::Fsn;
use thiserror::Error;

/// The watermark file's name inside the slot directory.
pub const ACK_WATERMARK_FILE_NAME: &str = ".ack-watermark";
/// The watermark file's exact size.
pub const ACK_WATERMARK_LEN: usize = 16;
/// The watermark magic, "AKW1" read as a little-endian u32.
pub const ACK_WATERMARK_MAGIC: u32 = 0x3157_4B41;

/// Why a watermark cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WatermarkEncodeError {
    /// The FSN does not fit the file's signed 64-bit field.
    #[error("FSN {fsn} does not fit the watermark's i64 field")]
    FsnOutOfRange {
        /// The FSN that was to be written.
        fsn: Fsn,
    },
}

/// Why a watermark file's bytes are unusable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WatermarkError {
    /// The file is not exactly 16 bytes.
    #[error("ack watermark is {len} bytes, expected {ACK_WATERMARK_LEN}")]
    WrongSize {
        /// The length found.
        len: u64,
    },
    /// The magic is zero: the file was created but no write landed before
    /// the previous session ended (the common, harmless case in §5.4).
    #[error("ack watermark was never stamped (magic is 0)")]
    NotYetStamped,
    /// The magic is neither `AKW1` nor zero.
    #[error("bad ack watermark magic {found:#010x} (expected {ACK_WATERMARK_MAGIC:#010x})")]
    BadMagic {
        /// The magic found.
        found: u32,
    },
    /// The reserved field is not zero.
    #[error("ack watermark reserved field is {found:#010x}; it must be 0")]
    NonZeroReserved {
        /// The value found.
        found: u32,
    },
    /// The FSN is negative.
    #[error("ack watermark FSN {raw} is negative")]
    NegativeFsn {
        /// The value found.
        raw: i64,
    },
}

/// The 16 bytes of a watermark recording `fsn` as acknowledged.
pub fn encode_watermark(fsn: Fsn) -> Result<[u8; ACK_WATERMARK_LEN], WatermarkEncodeError> {
    let raw = i64::try_from(fsn.get()).map_err(|_| WatermarkEncodeError::FsnOutOfRange { fsn })?;
    let mut out = [0u8; ACK_WATERMARK_LEN];
    out[0..4].copy_from_slice(&ACK_WATERMARK_MAGIC.to_le_bytes());
    out[8..16].copy_from_slice(&raw.to_le_bytes());
    Ok(out)
}

/// The acknowledged FSN a watermark file records, or why it is unusable.
pub fn decode_watermark(bytes: &[u8]) -> Result<Fsn, WatermarkError> {
    let Ok(b) = <&[u8; ACK_WATERMARK_LEN]>::try_from(bytes) else {
        return Err(WatermarkError::WrongSize {
            len: bytes.len() as u64,
        });
    };
    let magic = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if magic == 0 {
        return Err(WatermarkError::NotYetStamped);
    }
    if magic != ACK_WATERMARK_MAGIC {
        return Err(WatermarkError::BadMagic { found: magic });
    }
    let reserved = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    if reserved != 0 {
        return Err(WatermarkError::NonZeroReserved { found: reserved });
    }
    let raw = i64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    u64::try_from(raw)
        .map(Fsn)
        .map_err(|_| WatermarkError::NegativeFsn { raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_round_trips_with_spec_layout() {
        let b = encode_watermark(Fsn(0x0102_0304)).unwrap();
        assert_eq!(&b[0..4], b"AKW1");
        assert_eq!(&b[4..8], &[0, 0, 0, 0]);
        assert_eq!(&b[8..16], &[4, 3, 2, 1, 0, 0, 0, 0]);
        assert_eq!(decode_watermark(&b), Ok(Fsn(0x0102_0304)));
        assert_eq!(
            decode_watermark(&encode_watermark(Fsn(i64::MAX as u64)).unwrap()),
            Ok(Fsn(i64::MAX as u64))
        );
        assert!(encode_watermark(Fsn(1 << 63)).is_err());
    }

    #[test]
    fn s8_unusable_watermarks_say_why() {
        let good = encode_watermark(Fsn(9)).unwrap();
        assert_eq!(
            decode_watermark(&good[..15]),
            Err(WatermarkError::WrongSize { len: 15 })
        );
        assert_eq!(
            decode_watermark(&[good.as_slice(), &[0]].concat()),
            Err(WatermarkError::WrongSize { len: 17 })
        );
        assert_eq!(
            decode_watermark(&[0u8; 16]),
            Err(WatermarkError::NotYetStamped)
        );
        let mut b = good;
        b[0] = b'X';
        assert!(matches!(
            decode_watermark(&b),
            Err(WatermarkError::BadMagic { .. })
        ));
        let mut b = good;
        b[5] = 1;
        assert_eq!(
            decode_watermark(&b),
            Err(WatermarkError::NonZeroReserved { found: 0x100 })
        );
        let mut b = good;
        b[8..16].copy_from_slice(&(-1i64).to_le_bytes());
        assert_eq!(
            decode_watermark(&b),
            Err(WatermarkError::NegativeFsn { raw: -1 })
        );
    }
}
