//! The interface the producer and the I/O task share for any segment,
//! whether it is a mapped file or a memory buffer: write the header, write a
//! frame at the offset the core placed it, read a frame back for replay.
//!
//! Every method here works on the bytes in memory only (no syscall), so it is
//! safe on the producer's hot path.

use sf_core::segment::{read_frame, write_frame, SegmentHeader, SEGMENT_HEADER_LEN};

use super::error::FsError;

/// A segment's bytes plus the codec operations over them.
pub trait SegmentBuffer {
    /// The whole segment image, header included.
    fn image(&self) -> &[u8];

    /// The whole segment image, writable.
    fn image_mut(&mut self) -> &mut [u8];

    /// A label for error messages: the file's path or a memory segment's
    /// name.
    fn label(&self) -> String;

    /// The segment's size in bytes.
    fn size(&self) -> u64 {
        self.image().len() as u64
    }

    /// Writes the 24-byte header at offset 0 (install time: the core writes
    /// a header only when a spare becomes the active segment).
    fn write_header(&mut self, header: &SegmentHeader) -> Result<(), FsError> {
        let size = self.size();
        let Some(dst) = self.image_mut().get_mut(..SEGMENT_HEADER_LEN) else {
            return Err(FsError::OutOfRange {
                segment: self.label(),
                start: 0,
                end: SEGMENT_HEADER_LEN as u64,
                size,
            });
        };
        dst.copy_from_slice(&header.encode());
        Ok(())
    }

    /// Writes a frame carrying `payload` at `offset` (length, payload, then
    /// CRC last, sf-client §6.3) and returns the offset just past it. A frame
    /// that does not fit writes nothing. Publishing the new end to readers
    /// is the caller's job (the core's commit).
    fn write_frame(&mut self, offset: u64, payload: &[u8]) -> Result<u64, FsError> {
        let at = usize::try_from(offset).map_err(|_| FsError::OutOfRange {
            segment: self.label(),
            start: offset,
            end: offset,
            size: self.size(),
        })?;
        match write_frame(self.image_mut(), at, payload) {
            Ok(end) => Ok(end as u64),
            Err(source) => Err(FsError::FrameWrite {
                segment: self.label(),
                source,
            }),
        }
    }

    /// Verifies the frame at `offset` and returns its payload (replay).
    fn read_frame(&self, offset: u64) -> Result<&[u8], FsError> {
        read_frame(self.image(), offset).map_err(|source| FsError::FrameRead {
            segment: self.label(),
            source,
        })
    }
}
