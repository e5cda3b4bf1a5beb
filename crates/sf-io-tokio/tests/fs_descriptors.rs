//! A mapped segment holds no file descriptor, so a slot with thousands of
//! segments (10 GiB of 4 MiB segments is 2,560 files) opens under the common
//! 1,024-descriptor limit.
//!
//! Alone in its own test binary because it counts this process's open
//! descriptors, which tests running in parallel would move.

use sf_core::segment::SegmentHeader;
use sf_core::{Fsn, SegmentGen};
use sf_io_tokio::fs::{open_slot_dir, SegmentBuffer, SegmentFile};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
#[cfg(target_os = "linux")]
fn recovered_and_created_segments_hold_no_descriptor() {
    const SEGMENTS: u64 = 300;
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    let before = open_fds();
    let mut created = Vec::new();
    for gen in 0..SEGMENTS {
        let mut seg = SegmentFile::create(&slot, SegmentGen(gen), 4096).unwrap();
        seg.write_header(&SegmentHeader::new(Fsn(gen), 0).unwrap())
            .unwrap();
        seg.write_frame(24, b"QWP1....").unwrap();
        if gen < 5 {
            // The first sync opens a descriptor for fsync and closes it.
            seg.sync_range(0, 40).unwrap();
        }
        created.push(seg);
    }
    assert!(
        open_fds() < before + 10,
        "{SEGMENTS} created segments hold descriptors"
    );
    drop(created);

    let opened = open_slot_dir(&slot).unwrap();
    assert_eq!(opened.segments.len(), SEGMENTS as usize);
    assert_eq!(opened.plan.slot.next_fsn, Fsn(SEGMENTS));
    // The lock's descriptor is the one that stays open.
    assert!(
        open_fds() < before + 10,
        "{SEGMENTS} recovered segments hold descriptors"
    );
}
