//! Segment codec: pure functions over byte slices for the `SF01` segment
//! format (sf-client §6): the 24-byte header, frame append into a
//! caller-owned buffer, and the recovery scan of a segment image (S2).

/// Size of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 24;
/// Size of a frame's envelope before its payload: `crc32c u32` then `len i32`.
pub const FRAME_HEADER_LEN: usize = 8;
/// The segment magic, "SF01" read as a little-endian u32.
pub const SEGMENT_MAGIC: u32 = 0x3130_4653;
/// The only segment format version.
pub const SEGMENT_VERSION: u8 = 1;
