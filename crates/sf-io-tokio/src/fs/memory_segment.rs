//! Memory segments: the same interface as a segment file over a zeroed heap
//! buffer, so a sender without `sf_dir` runs the same core and codec.

use sf_core::segment::SEGMENT_HEADER_LEN;
use sf_core::SegmentGen;

use super::error::FsError;
use super::segment_buffer::SegmentBuffer;

/// A segment held in memory (memory mode: create means allocate, unlink
/// means drop).
#[derive(Debug)]
pub struct MemorySegment {
    gen: SegmentGen,
    bytes: Box<[u8]>,
}

impl MemorySegment {
    /// Allocates a zeroed segment of `size` bytes. Fails when the size
    /// cannot hold a header or cannot be addressed on this platform.
    pub fn new(gen: SegmentGen, size: u64) -> Result<MemorySegment, FsError> {
        let bad = |why| FsError::BadSegmentSize {
            segment: memory_label(gen),
            size,
            why,
        };
        if size < SEGMENT_HEADER_LEN as u64 {
            return Err(bad("smaller than the 24-byte header"));
        }
        let len = usize::try_from(size).map_err(|_| bad("larger than the address space"))?;
        Ok(MemorySegment {
            gen,
            bytes: vec![0u8; len].into_boxed_slice(),
        })
    }

    /// The segment's generation.
    pub fn gen(&self) -> SegmentGen {
        self.gen
    }

    /// Gives up the buffer as a raw pointer, for the split handles, which
    /// free it with `Box::from_raw`. A raw pointer (not a moved `Box`) keeps
    /// pointers derived from it valid under Rust's aliasing rules.
    pub(super) fn into_raw(self) -> (SegmentGen, *mut [u8]) {
        (self.gen, Box::into_raw(self.bytes))
    }
}

pub(super) fn memory_label_of(gen: SegmentGen) -> String {
    memory_label(gen)
}

fn memory_label(gen: SegmentGen) -> String {
    format!("memory:{}", gen.file_name())
}

impl SegmentBuffer for MemorySegment {
    fn image(&self) -> &[u8] {
        &self.bytes
    }

    fn image_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    fn label(&self) -> String {
        memory_label(self.gen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_core::segment::{scan_segment, ScanOutcome, SegmentHeader};
    use sf_core::Fsn;

    #[test]
    fn memory_segment_round_trips_header_and_frames() {
        let mut seg = MemorySegment::new(SegmentGen(2), 128).unwrap();
        assert!(seg.image().iter().all(|&b| b == 0));
        seg.write_header(&SegmentHeader::new(Fsn(7), 1).unwrap())
            .unwrap();
        let end = seg.write_frame(24, b"QWP1abc").unwrap();
        assert_eq!(end, 24 + 8 + 7);
        assert_eq!(seg.read_frame(24).unwrap(), b"QWP1abc");
        let Ok(ScanOutcome::Segment(scan)) = scan_segment(seg.image()) else {
            panic!("not a segment");
        };
        assert_eq!(scan.frame_count(), 1);
        assert_eq!(scan.header.base_fsn(), Fsn(7));
    }

    #[test]
    fn memory_segment_refuses_frame_that_does_not_fit() {
        let mut seg = MemorySegment::new(SegmentGen(0), 40).unwrap();
        let err = seg.write_frame(24, &[1u8; 9]).unwrap_err();
        assert!(matches!(err, FsError::FrameWrite { .. }), "{err}");
        assert!(err.to_string().contains("memory:sf-0000000000000000.sfa"));
        assert!(seg.image().iter().all(|&b| b == 0));
        assert!(matches!(seg.read_frame(24), Err(FsError::FrameRead { .. })));
    }

    #[test]
    fn memory_segment_too_small_for_header_is_refused() {
        assert!(matches!(
            MemorySegment::new(SegmentGen(0), 23),
            Err(FsError::BadSegmentSize { size: 23, .. })
        ));
    }
}
