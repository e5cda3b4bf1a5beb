//! Segment codec: pure functions over byte slices for the `SF01` segment
//! format (sf-client §6): the 24-byte header, frame append into a
//! caller-owned buffer, and the recovery scan of a segment image (S2).
//!
//! # Layout
//!
//! A segment image is a 24-byte header (`magic u32`, `version u8`,
//! `flags u8`, `reserved u16`, `baseSeq u64`, `createdMicros i64`, all
//! little-endian) followed by tightly packed frames
//! `[crc32c u32][len i32][payload]`. The CRC (Castagnoli) covers the four
//! length bytes followed by the payload. The file is preallocated and its
//! unwritten tail is zero.
//!
//! # Header validation
//!
//! [`SegmentHeader::decode`] checks, in this order: the image holds 24
//! bytes, the magic, the version, `baseSeq ≤ i64::MAX` (the spec's
//! "`baseSeq` < 0" in its signed reading), then `flags == 0` and
//! `reserved == 0`. The spec says both "must be 0" and forbids per-client
//! header extensions until a new format version exists (sf-client §19), so
//! a non-zero value is either bit rot or a writer we do not understand; we
//! reject it with its own error variant so that recovery can refuse the
//! slot (S3) instead of guessing what the bits meant.
//!
//! # Recovery scan and tail classification (S2)
//!
//! [`scan_segment`] walks frames from offset 24 and stops at the first frame
//! that does not verify (a length that is negative or runs past the image, a
//! truncated envelope, or a CRC mismatch); that offset is `last_good`. The
//! bytes from `last_good` to the end are then classified:
//!
//! - [`TailState::Clean`]: all zero (the writer never reached them).
//! - [`TailState::Torn`]: some non-zero bytes, and no CRC-valid frame starts
//!   anywhere after `last_good` — an append interrupted before its CRC was
//!   written. The count runs from `last_good` to the last non-zero byte.
//! - [`TailState::Corrupt`]: a CRC-valid frame starts after `last_good`:
//!   committed data follows the bad frame, so dropping the tail would lose
//!   it. Evidence is looked for at the position implied by the bad frame's
//!   length (when that length is plausible) and at every later offset `p`
//!   where the QWP1 magic `51 57 50 31` sits at `p + 8` (every payload is a
//!   QWP1 message, so the magic is a cheap anchor; each candidate is then
//!   checked for length and CRC).
//!
//! Consequence, stated plainly: after a *host* crash, the page cache may have
//! written a later sector of the segment but lost an earlier one. The frame
//! in the lost sector then fails its CRC while a later frame still verifies,
//! which is indistinguishable from corruption in the middle of the log. The
//! scan reports it as [`TailState::Corrupt`] and recovery refuses to open
//! the slot: S3 prefers an operator-visible refusal to silently dropping the
//! frames after the hole. Durability modes that fsync (`flush`, `append`)
//! make this case impossible for synced data.

use crate::Fsn;
use thiserror::Error;

/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 24;
/// Size of a frame's envelope before its payload: `crc32c u32` then `len i32`.
pub const FRAME_HEADER_LEN: usize = 8;
/// The segment magic, "SF01" read as a little-endian u32.
pub const SEGMENT_MAGIC: u32 = 0x3130_4653;
/// The only segment format version.
pub const SEGMENT_VERSION: u8 = 1;
/// The largest payload a frame can carry: its length field is an `i32`.
pub const MAX_PAYLOAD_LEN: usize = i32::MAX as usize;
/// The first four bytes of every payload (a QWP1 message): the anchor the
/// scan uses to look for committed frames after a bad one.
pub const QWP1_MAGIC: [u8; 4] = *b"QWP1";

/// A validated segment header: `baseSeq` always fits the spec's signed
/// reading, so encoding then decoding a header always round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    base_fsn: Fsn,
    created_micros: i64,
}

/// Why a segment header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// The image is shorter than the 24-byte header.
    #[error("segment image is {len} bytes, shorter than the {SEGMENT_HEADER_LEN}-byte header")]
    TooShort {
        /// The image's length.
        len: u64,
    },
    /// The magic is not `SF01`.
    #[error("bad segment magic {found:#010x} (expected {SEGMENT_MAGIC:#010x})")]
    BadMagic {
        /// The magic found.
        found: u32,
    },
    /// The version is not 1.
    #[error("unsupported segment version {found} (expected {SEGMENT_VERSION})")]
    UnsupportedVersion {
        /// The version found.
        found: u8,
    },
    /// `baseSeq` is above `i64::MAX` (negative in the spec's signed reading).
    #[error("segment baseSeq {base_seq} is out of range (above i64::MAX)")]
    BaseSeqOutOfRange {
        /// The raw value found.
        base_seq: u64,
    },
    /// The flags byte is not zero.
    #[error("segment header flags are {flags:#04x}; version 1 defines none")]
    NonZeroFlags {
        /// The flags found.
        flags: u8,
    },
    /// The reserved u16 is not zero.
    #[error("segment header reserved field is {reserved:#06x}; it must be 0")]
    NonZeroReserved {
        /// The value found.
        reserved: u16,
    },
}

impl SegmentHeader {
    /// A header for a segment whose first frame gets `base_fsn`; fails when
    /// `base_fsn` exceeds `i64::MAX`, which no reader would accept.
    pub fn new(base_fsn: Fsn, created_micros: i64) -> Result<SegmentHeader, HeaderError> {
        if base_fsn.get() > i64::MAX as u64 {
            return Err(HeaderError::BaseSeqOutOfRange {
                base_seq: base_fsn.get(),
            });
        }
        Ok(SegmentHeader {
            base_fsn,
            created_micros,
        })
    }

    /// FSN of the segment's first frame (`baseSeq`).
    pub fn base_fsn(&self) -> Fsn {
        self.base_fsn
    }

    /// Creation time in microseconds, informational only.
    pub fn created_micros(&self) -> i64 {
        self.created_micros
    }

    /// The 24 header bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        out[0..4].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
        out[4] = SEGMENT_VERSION;
        // out[5] flags and out[6..8] reserved stay zero.
        out[8..16].copy_from_slice(&self.base_fsn.get().to_le_bytes());
        out[16..24].copy_from_slice(&self.created_micros.to_le_bytes());
        out
    }

    /// Decodes and validates the header at the start of `image` (see the
    /// module doc for the order of the checks).
    pub fn decode(image: &[u8]) -> Result<SegmentHeader, HeaderError> {
        let Some(h) = image.first_chunk::<SEGMENT_HEADER_LEN>() else {
            return Err(HeaderError::TooShort {
                len: image.len() as u64,
            });
        };
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        if magic != SEGMENT_MAGIC {
            return Err(HeaderError::BadMagic { found: magic });
        }
        if h[4] != SEGMENT_VERSION {
            return Err(HeaderError::UnsupportedVersion { found: h[4] });
        }
        let base_seq = u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        if base_seq > i64::MAX as u64 {
            return Err(HeaderError::BaseSeqOutOfRange { base_seq });
        }
        if h[5] != 0 {
            return Err(HeaderError::NonZeroFlags { flags: h[5] });
        }
        let reserved = u16::from_le_bytes([h[6], h[7]]);
        if reserved != 0 {
            return Err(HeaderError::NonZeroReserved { reserved });
        }
        let created_micros =
            i64::from_le_bytes([h[16], h[17], h[18], h[19], h[20], h[21], h[22], h[23]]);
        Ok(SegmentHeader {
            base_fsn: Fsn(base_seq),
            created_micros,
        })
    }
}

/// Why a frame could not be written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameWriteError {
    /// The payload is longer than an `i32` length can express.
    #[error("payload of {len} bytes exceeds the frame limit of {MAX_PAYLOAD_LEN} bytes")]
    PayloadTooLong {
        /// The payload's length.
        len: usize,
    },
    /// The frame does not fit between `offset` and the end of the buffer;
    /// the caller rotates to another segment. Nothing was written.
    #[error(
        "frame of {frame_len} bytes at offset {offset} does not fit a buffer of {buf_len} bytes"
    )]
    DoesNotFit {
        /// Where the frame was to start.
        offset: usize,
        /// Envelope plus payload.
        frame_len: usize,
        /// The buffer's length.
        buf_len: usize,
    },
}

/// Why the bytes at an offset are not a valid frame. During a scan this is
/// a boundary (where `last_good` stops), never a panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameReadError {
    /// Fewer than 8 bytes remain for the envelope.
    #[error("frame envelope at offset {offset} is truncated ({available} bytes left)")]
    TruncatedEnvelope {
        /// The frame's offset.
        offset: u64,
        /// Bytes left in the image from `offset`.
        available: u64,
    },
    /// The length field is negative.
    #[error("frame at offset {offset} has negative length {len}")]
    NegativeLength {
        /// The frame's offset.
        offset: u64,
        /// The length found.
        len: i32,
    },
    /// The payload would run past the end of the image.
    #[error("frame at offset {offset} declares {len} payload bytes, past the end of the image")]
    RunsPastEnd {
        /// The frame's offset.
        offset: u64,
        /// The length found.
        len: i32,
    },
    /// The stored CRC does not match the bytes.
    #[error("frame at offset {offset}: CRC {stored:#010x} stored, {computed:#010x} computed")]
    CrcMismatch {
        /// The frame's offset.
        offset: u64,
        /// CRC found in the envelope.
        stored: u32,
        /// CRC of the length and payload bytes.
        computed: u32,
    },
}

/// Bytes a frame with `payload_len` bytes of payload occupies.
pub fn frame_len(payload_len: usize) -> usize {
    FRAME_HEADER_LEN.saturating_add(payload_len)
}

/// The CRC32C of a frame carrying `payload`: over the little-endian `i32`
/// length then the payload. For adapters that copy the length and payload
/// into their own mapping and then store this CRC at the frame's offset.
pub fn frame_crc(payload: &[u8]) -> Result<u32, FrameWriteError> {
    let len = payload_len_field(payload.len())?;
    Ok(crc32c::crc32c_append(
        crc32c::crc32c(&len.to_le_bytes()),
        payload,
    ))
}

fn payload_len_field(len: usize) -> Result<i32, FrameWriteError> {
    i32::try_from(len).map_err(|_| FrameWriteError::PayloadTooLong { len })
}

/// Appends a frame carrying `payload` at `offset` in `buf`: the length at
/// `+4`, the payload at `+8`, then the CRC at `+0` last, so a reader never
/// sees a valid CRC over incomplete bytes. Returns the offset just past the
/// frame. A frame that does not fit writes nothing.
pub fn write_frame(
    buf: &mut [u8],
    offset: usize,
    payload: &[u8],
) -> Result<usize, FrameWriteError> {
    let len = payload_len_field(payload.len())?;
    let total = frame_len(payload.len());
    let does_not_fit = FrameWriteError::DoesNotFit {
        offset,
        frame_len: total,
        buf_len: buf.len(),
    };
    let end = offset.checked_add(total).ok_or(does_not_fit.clone())?;
    let Some(frame) = buf.get_mut(offset..end) else {
        return Err(does_not_fit);
    };
    let (envelope, body) = frame.split_at_mut(FRAME_HEADER_LEN);
    envelope[4..8].copy_from_slice(&len.to_le_bytes());
    body.copy_from_slice(payload);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&envelope[4..8]), body);
    envelope[0..4].copy_from_slice(&crc.to_le_bytes());
    Ok(end)
}

/// Verifies the frame at `offset` in `image` and returns its payload (used
/// for replay).
pub fn read_frame(image: &[u8], offset: u64) -> Result<&[u8], FrameReadError> {
    verify_frame(image, offset)
}

/// Checks the frame at `offset`; on success returns its payload.
fn verify_frame(image: &[u8], offset: u64) -> Result<&[u8], FrameReadError> {
    let available = (image.len() as u64).saturating_sub(offset);
    let envelope = usize::try_from(offset).ok().and_then(|o| {
        image
            .get(o..)?
            .first_chunk::<FRAME_HEADER_LEN>()
            .map(|e| (o, e))
    });
    let Some((start, envelope)) = envelope else {
        return Err(FrameReadError::TruncatedEnvelope { offset, available });
    };
    let stored = u32::from_le_bytes([envelope[0], envelope[1], envelope[2], envelope[3]]);
    let len_bytes = [envelope[4], envelope[5], envelope[6], envelope[7]];
    let len = i32::from_le_bytes(len_bytes);
    let Ok(payload_len) = usize::try_from(len) else {
        return Err(FrameReadError::NegativeLength { offset, len });
    };
    let payload_start = start + FRAME_HEADER_LEN;
    let payload = payload_start
        .checked_add(payload_len)
        .and_then(|end| image.get(payload_start..end));
    let Some(payload) = payload else {
        return Err(FrameReadError::RunsPastEnd { offset, len });
    };
    let computed = crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload);
    if computed != stored {
        return Err(FrameReadError::CrcMismatch {
            offset,
            stored,
            computed,
        });
    }
    Ok(payload)
}

/// What the scan found after `last_good` (S2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailState {
    /// Every byte from `last_good` to the end is zero.
    Clean,
    /// An interrupted append: non-zero bytes after `last_good` but no
    /// CRC-valid frame after them.
    Torn {
        /// Bytes from `last_good` through the last non-zero byte.
        bytes: u64,
        /// Why the frame at `last_good` did not verify.
        reason: FrameReadError,
    },
    /// A CRC-valid frame follows a bad one: committed data would be lost by
    /// truncating here. Recovery refuses the slot.
    Corrupt {
        /// Offset of the first frame that does not verify (`last_good`).
        bad_frame_offset: u64,
        /// Why it does not verify.
        reason: FrameReadError,
        /// Offset of a CRC-valid frame after it.
        evidence_offset: u64,
    },
}

/// One verified frame reported by a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Offset of the frame's envelope in the segment.
    pub offset: u64,
    /// Payload length in bytes.
    pub payload_len: u64,
    /// The frame's FSN: `baseSeq` plus its index.
    pub fsn: Fsn,
}

/// The result of scanning a segment image with a valid header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    /// The decoded header.
    pub header: SegmentHeader,
    /// Start offset of each verified frame, ascending. Frames are tightly
    /// packed, so frame `i` ends where frame `i + 1` starts (the last one at
    /// `last_good`); see [`SegmentScan::frames`].
    pub frame_offsets: Vec<u64>,
    /// Offset just past the last verified frame: where the next frame goes.
    pub last_good: u64,
    /// The image's length.
    pub image_len: u64,
    /// Classification of the bytes from `last_good` to the end.
    pub tail: TailState,
}

impl SegmentScan {
    /// Number of verified frames.
    pub fn frame_count(&self) -> u64 {
        self.frame_offsets.len() as u64
    }

    /// The verified frames with their payload length and FSN.
    pub fn frames(&self) -> impl Iterator<Item = FrameInfo> + '_ {
        let ends = self
            .frame_offsets
            .iter()
            .skip(1)
            .copied()
            .chain(core::iter::once(self.last_good));
        self.frame_offsets
            .iter()
            .zip(ends)
            .zip(0u64..)
            .map(move |((&offset, end), i)| FrameInfo {
                offset,
                payload_len: end.saturating_sub(offset + FRAME_HEADER_LEN as u64),
                fsn: self.header.base_fsn().plus(i),
            })
    }
}

/// What a segment image turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanOutcome {
    /// Every byte is zero: a spare the ring created but never installed
    /// (it writes the header only at install time).
    Blank {
        /// The image's length.
        image_len: u64,
    },
    /// A segment with a valid header.
    Segment(SegmentScan),
}

/// Why an image could not be scanned as a segment.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScanError {
    /// The header is unusable.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The header bytes are all zero but the body is not: frames without a
    /// `baseSeq` (e.g. a header sector lost in a host crash). Their FSNs
    /// cannot be known, so this is never taken as a blank spare.
    #[error("segment header is all zero but byte {first_nonzero} of the body is not")]
    HeaderlessData {
        /// Offset of the first non-zero byte.
        first_nonzero: u64,
    },
}

/// Scans a whole segment image: header, verified frames, `last_good`, and
/// the tail classification described in the module doc. Never panics on any
/// input; allocates at most one offset per verified frame.
pub fn scan_segment(image: &[u8]) -> Result<ScanOutcome, ScanError> {
    if let Some(h) = image.first_chunk::<SEGMENT_HEADER_LEN>() {
        if h.iter().all(|&b| b == 0) {
            let body = &image[SEGMENT_HEADER_LEN..];
            return match body.iter().position(|&b| b != 0) {
                None => Ok(ScanOutcome::Blank {
                    image_len: image.len() as u64,
                }),
                Some(i) => Err(ScanError::HeaderlessData {
                    first_nonzero: (SEGMENT_HEADER_LEN + i) as u64,
                }),
            };
        }
    }
    let header = SegmentHeader::decode(image)?;
    let mut frame_offsets = Vec::new();
    let mut pos = SEGMENT_HEADER_LEN as u64;
    let failure = loop {
        match verify_frame(image, pos) {
            Ok(payload) => {
                frame_offsets.push(pos);
                pos += (FRAME_HEADER_LEN + payload.len()) as u64;
            }
            Err(e) => break e,
        }
    };
    let tail = classify_tail(image, pos, failure);
    Ok(ScanOutcome::Segment(SegmentScan {
        header,
        frame_offsets,
        last_good: pos,
        image_len: image.len() as u64,
        tail,
    }))
}

/// Classifies `image[last_good..]` given why the frame at `last_good` failed.
fn classify_tail(image: &[u8], last_good: u64, reason: FrameReadError) -> TailState {
    // last_good never exceeds image.len(): it is the header length (checked
    // by decode) or the end of a verified frame.
    let start = last_good as usize;
    let Some(rest) = image.get(start..) else {
        return TailState::Clean;
    };
    let Some(last_nonzero) = last_nonzero(rest) else {
        return TailState::Clean;
    };
    match find_evidence(image, start, start + last_nonzero, &reason) {
        Some(evidence) => TailState::Corrupt {
            bad_frame_offset: last_good,
            reason,
            evidence_offset: evidence as u64,
        },
        None => TailState::Torn {
            bytes: last_nonzero as u64 + 1,
            reason,
        },
    }
}

/// Index of the last non-zero byte, checking 64-byte blocks first so a
/// mostly empty 4 MiB segment is cleared quickly.
fn last_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    for chunk in bytes.rchunks(64) {
        let chunk_start = end - chunk.len();
        if chunk.iter().any(|&b| b != 0) {
            return chunk.iter().rposition(|&b| b != 0).map(|i| chunk_start + i);
        }
        end = chunk_start;
    }
    None
}

/// A CRC-valid frame start in `(bad, last_nonzero]`, if any: first where the
/// bad frame's own length points, then at every QWP1 anchor.
fn find_evidence(
    image: &[u8],
    bad: usize,
    last_nonzero: usize,
    reason: &FrameReadError,
) -> Option<usize> {
    let implied_len = match reason {
        FrameReadError::CrcMismatch { .. } => read_len(image, bad),
        _ => None,
    };
    if let Some(len) = implied_len {
        let next = bad + FRAME_HEADER_LEN + len;
        if next <= last_nonzero && verify_frame(image, next as u64).is_ok() {
            return Some(next);
        }
    }
    // A frame starting at `s` has its QWP1 anchor at `s + 8`; a valid frame
    // is never all zero, so it starts at or before the last non-zero byte.
    let first_anchor = bad + 1 + FRAME_HEADER_LEN;
    let last_anchor_end = (last_nonzero + FRAME_HEADER_LEN + QWP1_MAGIC.len()).min(image.len());
    let window = image.get(first_anchor..last_anchor_end)?;
    // Candidates whose envelope and claimed length fit the image, as
    // (start, CRC-covered range). Checking each by hashing its range would
    // cost the sum of the claimed lengths: quadratic on a crafted image (an
    // anchor every few bytes, each claiming a long frame; 4 MiB took a
    // minute). Prefix CRCs make each check O(log n) instead.
    let candidates: Vec<(usize, usize, usize)> = window
        .windows(QWP1_MAGIC.len())
        .enumerate()
        .filter(|(_, w)| *w == QWP1_MAGIC)
        .filter_map(|(i, _)| {
            let s = first_anchor + i - FRAME_HEADER_LEN;
            let end = s
                .checked_add(FRAME_HEADER_LEN)?
                .checked_add(read_len(image, s)?)?;
            (end <= image.len()).then_some((s, s + 4, end))
        })
        .collect();
    if candidates.is_empty() {
        return None;
    }
    let prefix = range_crc::PrefixCrcs::new(
        image,
        candidates.iter().flat_map(|&(_, from, to)| [from, to]),
    );
    candidates
        .into_iter()
        .filter(|&(s, from, to)| {
            let stored = image
                .get(s..s + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes);
            stored.is_some() && prefix.crc_of(from, to) == stored
        })
        // The fast check is exact; the full verification keeps one
        // definition of "valid frame" and costs one frame's length.
        .map(|(s, _, _)| s)
        .find(|&s| verify_frame(image, s as u64).is_ok())
}

/// CRC32C of arbitrary sub-ranges of one image from CRCs of its prefixes:
/// `crc(B) = crc(A‖B) ⊕ shift(crc(A), |B|)`, where `shift` advances a CRC
/// over `|B|` zero bytes (the identity behind zlib's `crc32_combine`).
mod range_crc {
    /// Bits of the operator that advances a CRC over one zero bit: the
    /// reflected Castagnoli polynomial, then the identity shifted by one.
    const POLY: u32 = 0x82F6_3B78;

    /// A GF(2) 32×32 matrix, one column per input bit.
    type Matrix = [u32; 32];

    fn times(m: &Matrix, mut v: u32) -> u32 {
        let mut out = 0;
        let mut i = 0;
        while v != 0 {
            if v & 1 == 1 {
                out ^= m[i];
            }
            v >>= 1;
            i += 1;
        }
        out
    }

    fn square(m: &Matrix) -> Matrix {
        let mut out = [0; 32];
        for (o, &col) in out.iter_mut().zip(m.iter()) {
            *o = times(m, col);
        }
        out
    }

    /// CRCs of `image[..offset]` at a chosen set of offsets, and the
    /// zero-byte shift operators for every power of two up to the image
    /// length.
    pub(super) struct PrefixCrcs {
        offsets: Vec<usize>,
        crcs: Vec<u32>,
        /// `shifts[k]` advances a CRC over `2^k` zero bytes.
        shifts: Vec<Matrix>,
    }

    impl PrefixCrcs {
        /// Prefix CRCs of `image` at every offset in `at` (each at most
        /// `image.len()`); one pass over the image.
        pub(super) fn new(image: &[u8], at: impl Iterator<Item = usize>) -> PrefixCrcs {
            let mut offsets: Vec<usize> = at.filter(|&o| o <= image.len()).collect();
            offsets.sort_unstable();
            offsets.dedup();
            let mut crcs = Vec::with_capacity(offsets.len());
            let (mut crc, mut done) = (0u32, 0usize);
            for &o in &offsets {
                crc = crc32c::crc32c_append(crc, &image[done..o]);
                done = o;
                crcs.push(crc);
            }
            let mut one_bit = [0u32; 32];
            one_bit[0] = POLY;
            for (i, col) in one_bit.iter_mut().enumerate().skip(1) {
                *col = 1 << (i - 1);
            }
            // 1 bit → 2 → 4 → 8 bits: one zero byte.
            let mut op = square(&square(&square(&one_bit)));
            let mut shifts = Vec::new();
            let mut span = 1usize;
            loop {
                shifts.push(op);
                match span.checked_mul(2) {
                    Some(next) if next <= image.len() => span = next,
                    _ => break,
                }
                op = square(&op);
            }
            PrefixCrcs {
                offsets,
                crcs,
                shifts,
            }
        }

        fn prefix(&self, offset: usize) -> Option<u32> {
            let i = self.offsets.binary_search(&offset).ok()?;
            self.crcs.get(i).copied()
        }

        fn shift(&self, mut crc: u32, mut zeros: usize) -> u32 {
            let mut k = 0;
            while zeros != 0 {
                if zeros & 1 == 1 {
                    if let Some(op) = self.shifts.get(k) {
                        crc = times(op, crc);
                    }
                }
                zeros >>= 1;
                k += 1;
            }
            crc
        }

        /// CRC32C of `image[from..to]`; `None` unless both offsets were
        /// given to [`PrefixCrcs::new`] and `from <= to`.
        pub(super) fn crc_of(&self, from: usize, to: usize) -> Option<u32> {
            if from > to {
                return None;
            }
            let (a, b) = (self.prefix(from)?, self.prefix(to)?);
            Some(b ^ self.shift(a, to - from))
        }
    }

    #[cfg(test)]
    mod tests {
        use super::PrefixCrcs;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn range_crc_equals_direct_crc(
                image in proptest::collection::vec(any::<u8>(), 0..3000),
                cuts in proptest::collection::vec((any::<u16>(), any::<u16>()), 1..20),
            ) {
                let n = image.len();
                let ranges: Vec<(usize, usize)> = cuts
                    .iter()
                    .map(|&(a, b)| {
                        let (a, b) = (usize::from(a) % (n + 1), usize::from(b) % (n + 1));
                        (a.min(b), a.max(b))
                    })
                    .collect();
                let p = PrefixCrcs::new(&image, ranges.iter().flat_map(|&(a, b)| [a, b]));
                for (a, b) in ranges {
                    prop_assert_eq!(p.crc_of(a, b), Some(crc32c::crc32c(&image[a..b])));
                }
            }
        }
    }
}

fn read_len(image: &[u8], offset: usize) -> Option<usize> {
    let b = image.get(offset + 4..offset + 8)?;
    usize::try_from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwp(n: usize, fill: u8) -> Vec<u8> {
        let mut p = QWP1_MAGIC.to_vec();
        p.resize(4 + n, fill);
        p
    }

    fn segment(base: u64, size: usize, payloads: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut img = vec![0u8; size];
        img[..24].copy_from_slice(&SegmentHeader::new(Fsn(base), 7).unwrap().encode());
        let mut off = 24;
        let mut offs = Vec::new();
        for p in payloads {
            offs.push(off);
            off = write_frame(&mut img, off, p).unwrap();
        }
        (img, offs)
    }

    fn scan(img: &[u8]) -> SegmentScan {
        match scan_segment(img).unwrap() {
            ScanOutcome::Segment(s) => s,
            other => panic!("not a segment: {other:?}"),
        }
    }

    #[test]
    fn header_round_trips_and_matches_layout() {
        let h = SegmentHeader::new(Fsn(0x0102), -5).unwrap();
        let b = h.encode();
        assert_eq!(&b[0..4], b"SF01");
        assert_eq!(b[4], 1);
        assert_eq!(&b[5..8], &[0, 0, 0]);
        assert_eq!(&b[8..16], &[2, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
    }

    #[test]
    fn header_rejects_each_bad_field() {
        let good = SegmentHeader::new(Fsn(1), 0).unwrap().encode();
        let cases: [(usize, u8, HeaderError); 4] = [
            (0, 0x54, HeaderError::BadMagic { found: 0x3130_4654 }),
            (4, 2, HeaderError::UnsupportedVersion { found: 2 }),
            (5, 1, HeaderError::NonZeroFlags { flags: 1 }),
            (7, 1, HeaderError::NonZeroReserved { reserved: 0x100 }),
        ];
        for (at, v, want) in cases {
            let mut b = good;
            b[at] = v;
            assert_eq!(SegmentHeader::decode(&b), Err(want));
        }
        let mut b = good;
        b[15] = 0x80;
        assert!(matches!(
            SegmentHeader::decode(&b),
            Err(HeaderError::BaseSeqOutOfRange { .. })
        ));
        assert_eq!(
            SegmentHeader::decode(&good[..23]),
            Err(HeaderError::TooShort { len: 23 })
        );
        assert!(SegmentHeader::new(Fsn(1 << 63), 0).is_err());
        assert!(SegmentHeader::new(Fsn(i64::MAX as u64), 0).is_ok());
    }

    #[test]
    fn write_frame_writes_len_payload_crc_and_returns_end() {
        let mut buf = vec![0u8; 64];
        let end = write_frame(&mut buf, 24, b"QWP1ab").unwrap();
        assert_eq!(end, 24 + 8 + 6);
        assert_eq!(&buf[28..32], &6i32.to_le_bytes());
        assert_eq!(&buf[32..38], b"QWP1ab");
        let crc = u32::from_le_bytes(buf[24..28].try_into().unwrap());
        assert_eq!(crc, frame_crc(b"QWP1ab").unwrap());
        assert_eq!(crc, crc32c::crc32c(&buf[28..38]));
        assert_eq!(read_frame(&buf, 24), Ok(&b"QWP1ab"[..]));
    }

    #[test]
    fn write_frame_that_does_not_fit_writes_nothing() {
        let mut buf = vec![0u8; 40];
        let err = write_frame(&mut buf, 24, &[9u8; 9]).unwrap_err();
        assert_eq!(
            err,
            FrameWriteError::DoesNotFit {
                offset: 24,
                frame_len: 17,
                buf_len: 40
            }
        );
        assert!(buf.iter().all(|&b| b == 0));
        assert!(write_frame(&mut buf, usize::MAX, b"x").is_err());
        assert_eq!(write_frame(&mut buf, 24, &[1u8; 8]), Ok(40));
    }

    #[test]
    fn crc_is_castagnoli_check_value() {
        // The standard CRC-32C check value of "123456789".
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn s2_clean_tail_reports_all_frames() {
        let (img, offs) = segment(10, 256, &[qwp(3, 1), qwp(0, 0), qwp(20, 2)]);
        let s = scan(&img);
        assert_eq!(
            s.frame_offsets,
            offs.iter().map(|&o| o as u64).collect::<Vec<_>>()
        );
        assert_eq!(s.tail, TailState::Clean);
        let frames: Vec<_> = s.frames().collect();
        assert_eq!(frames[1].payload_len, 4);
        assert_eq!(frames[2].fsn, Fsn(12));
        assert_eq!(s.last_good, frames[2].offset + 8 + 24);
    }

    #[test]
    fn s2_interrupted_append_is_torn() {
        let (mut img, _) = segment(0, 256, &[qwp(3, 1)]);
        let at = 24 + 8 + 7;
        // len and part of the payload written, CRC never stored.
        img[at + 4..at + 8].copy_from_slice(&10i32.to_le_bytes());
        img[at + 8..at + 13].copy_from_slice(b"QWP1z");
        let s = scan(&img);
        assert_eq!(s.frame_count(), 1);
        assert_eq!(s.last_good, at as u64);
        assert!(matches!(
            s.tail,
            TailState::Torn {
                bytes: 13,
                reason: FrameReadError::CrcMismatch { .. }
            }
        ));
    }

    #[test]
    fn s2_negative_or_overlong_length_is_a_boundary() {
        for len in [-1i32, i32::MIN, 1000, i32::MAX] {
            let (mut img, _) = segment(0, 128, &[qwp(3, 1)]);
            img[39..43].copy_from_slice(&[0xaa; 4]);
            img[39 + 4..39 + 8].copy_from_slice(&len.to_le_bytes());
            img[39 + 8] = 0x51;
            let s = scan(&img);
            assert_eq!(s.frame_count(), 1, "len {len}");
            assert_eq!(s.last_good, 39);
            let want_negative = len < 0;
            assert!(
                matches!(
                    (&s.tail, want_negative),
                    (
                        TailState::Torn {
                            bytes: 9,
                            reason: FrameReadError::NegativeLength { .. }
                        },
                        true
                    ) | (
                        TailState::Torn {
                            bytes: 9,
                            reason: FrameReadError::RunsPastEnd { .. }
                        },
                        false
                    )
                ),
                "len {len}: {:?}",
                s.tail
            );
        }
    }

    #[test]
    fn s2_bad_frame_followed_by_valid_frame_is_corrupt() {
        let (mut img, offs) = segment(0, 256, &[qwp(3, 1), qwp(3, 2), qwp(3, 3)]);
        img[offs[1] + 9] ^= 0xff; // payload byte of the middle frame
        let s = scan(&img);
        assert_eq!(
            s.tail,
            TailState::Corrupt {
                bad_frame_offset: offs[1] as u64,
                reason: s_reason(&s),
                evidence_offset: offs[2] as u64
            }
        );
    }

    fn s_reason(s: &SegmentScan) -> FrameReadError {
        match &s.tail {
            TailState::Corrupt { reason, .. } | TailState::Torn { reason, .. } => reason.clone(),
            TailState::Clean => panic!("clean"),
        }
    }

    #[test]
    fn s2_zeroed_frame_followed_by_valid_frame_is_corrupt_via_anchor() {
        // A lost sector: the bad frame's length is gone, so only the QWP1
        // anchor search can find the surviving frame.
        let (mut img, offs) = segment(0, 256, &[qwp(3, 1), qwp(30, 2), qwp(3, 3)]);
        img[offs[1]..offs[2]].fill(0);
        let s = scan(&img);
        assert!(
            matches!(s.tail, TailState::Corrupt { evidence_offset, .. } if evidence_offset == offs[2] as u64)
        );
    }

    #[test]
    fn s2_evidence_found_among_many_decoy_anchors() {
        // A crafted tail: after a bad frame, a QWP1 anchor every 8 bytes, each
        // claiming a long frame with a wrong CRC, then one real frame. The
        // prefix-CRC check must find exactly the real one (and the decoys
        // must not be mistaken for evidence).
        let (mut img, offs) = segment(0, 64 * 1024, &[qwp(3, 1), qwp(3, 2)]);
        img[offs[1]..offs[1] + 4].fill(0xee); // break frame 1's CRC
        let mut p = offs[1] + 16;
        while p + 16 < 48 * 1024 {
            img[p..p + 4].copy_from_slice(&0xdead_beef_u32.to_le_bytes());
            img[p + 4..p + 8].copy_from_slice(&(8_000i32).to_le_bytes());
            img[p + 8..p + 12].copy_from_slice(&QWP1_MAGIC);
            p += 16;
        }
        let real = write_frame(&mut img, 50 * 1024, &qwp(40, 9)).unwrap();
        assert!(real < img.len());
        let s = scan(&img);
        assert!(
            matches!(s.tail, TailState::Corrupt { evidence_offset, .. } if evidence_offset == 50 * 1024),
            "{:?}",
            s.tail
        );
        // Without the real frame, the decoys alone are a torn tail.
        img[50 * 1024..real].fill(0);
        assert!(matches!(scan(&img).tail, TailState::Torn { .. }));
    }

    #[test]
    fn s2_garbage_without_valid_frame_is_torn_to_last_nonzero() {
        let (mut img, offs) = segment(0, 256, &[qwp(3, 1)]);
        let lg = offs[0] + 15;
        img[lg + 40] = 0x51;
        img[lg + 100..lg + 104].copy_from_slice(b"QWP1");
        let s = scan(&img);
        assert!(matches!(s.tail, TailState::Torn { bytes: 104, .. }));
    }

    #[test]
    fn blank_and_headerless_images() {
        assert_eq!(
            scan_segment(&[0u8; 100]),
            Ok(ScanOutcome::Blank { image_len: 100 })
        );
        let mut img = [0u8; 100];
        img[60] = 1;
        assert_eq!(
            scan_segment(&img),
            Err(ScanError::HeaderlessData { first_nonzero: 60 })
        );
        assert_eq!(
            scan_segment(&[0u8; 10]),
            Err(ScanError::Header(HeaderError::TooShort { len: 10 }))
        );
    }

    #[test]
    fn header_only_image_is_clean_with_no_frames() {
        let (img, _) = segment(5, 24, &[]);
        let s = scan(&img);
        assert_eq!(s.frame_count(), 0);
        assert_eq!(s.last_good, 24);
        assert_eq!(s.tail, TailState::Clean);
    }

    #[test]
    fn last_nonzero_across_chunks() {
        let mut v = vec![0u8; 300];
        assert_eq!(last_nonzero(&v), None);
        v[3] = 1;
        assert_eq!(last_nonzero(&v), Some(3));
        v[299] = 1;
        assert_eq!(last_nonzero(&v), Some(299));
    }
}
