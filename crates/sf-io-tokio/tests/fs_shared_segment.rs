//! A segment split between the producer (one writer) and the I/O task
//! (readers that read, sync and unlink): published bytes are read-only,
//! unpublished ones invisible, and the two sides run concurrently.

use sf_core::segment::{SegmentHeader, SEGMENT_HEADER_LEN};
use sf_core::{Fsn, SegmentGen};
use sf_io_tokio::fs::{FsError, MemorySegment, SegmentBuffer, SegmentFile};

fn payload(fsn: u64) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend_from_slice(&fsn.to_le_bytes());
    p.resize(12 + (fsn as usize * 7) % 90, fsn as u8);
    p
}

#[test]
fn published_frames_are_readable_and_unpublished_ones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let seg = SegmentFile::create_spare(dir.path(), SegmentGen(1), 8192).unwrap();
    let (mut w, r) = seg.into_split(0).unwrap();
    w.write_header(&SegmentHeader::new(Fsn(40), 0).unwrap())
        .unwrap();
    assert_eq!(r.published(), 24, "the header is published with its write");
    assert_eq!(
        SegmentHeader::decode(r.published_bytes())
            .unwrap()
            .base_fsn(),
        Fsn(40)
    );
    let first = w.write_frame(24, &payload(40)).unwrap();
    assert!(r.read_frame(24).is_err(), "read before publish");
    assert_eq!(r.published(), 24);
    w.publish(first).unwrap();
    assert_eq!(r.read_frame(24).unwrap(), payload(40));
    let second = w.write_frame(first, &payload(41)).unwrap();
    assert!(matches!(
        r.read_frame(first),
        Err(FsError::FrameRead { .. })
    ));
    w.publish(second).unwrap();
    assert_eq!(r.read_frame(first).unwrap(), payload(41));
    assert_eq!(r.published_bytes().len() as u64, second);
    assert_eq!(r.gen(), Some(SegmentGen(1)));
    assert_eq!(
        r.path(),
        Some(dir.path().join("sf-0000000000000001.sfa").as_path())
    );
}

#[test]
fn published_bytes_are_read_only_and_publish_only_moves_forward() {
    let mut seg = MemorySegment::new(SegmentGen(0), 256).unwrap();
    seg.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap())
        .unwrap();
    let (mut w, r) = seg.into_split(0).unwrap();
    let end = w.write_frame(24, &payload(0)).unwrap();
    w.publish(end).unwrap();
    assert!(matches!(
        w.write_frame(24, &payload(1)),
        Err(FsError::BelowPublished { offset: 24, .. })
    ));
    assert!(matches!(
        w.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap()),
        Err(FsError::BelowPublished { .. })
    ));
    assert!(matches!(
        w.publish(end - 1),
        Err(FsError::OutOfRange { .. })
    ));
    assert!(matches!(w.publish(257), Err(FsError::OutOfRange { .. })));
    let err = w.write_frame(end, &[1u8; 300]).unwrap_err();
    assert!(
        err.to_string().contains(&format!("at offset {end}")),
        "{err}"
    );
    assert_eq!(r.read_frame(24).unwrap(), payload(0));
    // Memory segments have nothing to sync; the range is still checked.
    assert_eq!(r.sync_range(0, end).unwrap(), end);
    assert!(r.sync_range(0, end + 1).is_err());
    assert_eq!(r.path(), None);
}

#[test]
fn split_with_a_published_end_past_the_segment_is_refused() {
    assert!(matches!(
        MemorySegment::new(SegmentGen(0), 64)
            .unwrap()
            .into_split(65),
        Err(FsError::OutOfRange { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    let seg = SegmentFile::create(dir.path(), SegmentGen(0), 4096).unwrap();
    assert!(seg.into_split(4097).is_err());
}

#[test]
fn l5_sync_and_resync_cover_published_bytes_only() {
    let dir = tempfile::tempdir().unwrap();
    let seg = SegmentFile::create_spare(dir.path(), SegmentGen(2), 3 * 4096).unwrap();
    let (mut w, r) = seg.into_split(0).unwrap();
    w.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap())
        .unwrap();
    let mut at = SEGMENT_HEADER_LEN as u64;
    for fsn in 0..60 {
        at = w.write_frame(at, &payload(fsn)).unwrap();
    }
    let unpublished_end = at;
    // Bytes written but not yet published cannot be synced from the reader
    // side: the writer still owns them.
    w.publish(unpublished_end / 2).unwrap();
    assert!(matches!(
        r.sync_range(0, unpublished_end),
        Err(FsError::OutOfRange { .. })
    ));
    w.publish(unpublished_end).unwrap();
    assert_eq!(r.sync_range(100, unpublished_end).unwrap(), unpublished_end);
    assert_eq!(r.resync_range(0, unpublished_end).unwrap(), unpublished_end);
    assert!(matches!(
        r.sync_range(0, unpublished_end + 1),
        Err(FsError::OutOfRange { .. })
    ));
    let on_disk = std::fs::read(r.path().unwrap()).unwrap();
    assert_eq!(&on_disk[..unpublished_end as usize], r.published_bytes());
}

#[test]
fn recovered_segment_continues_after_its_append_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentFile::create(dir.path(), SegmentGen(3), 4096).unwrap();
    seg.write_header(&SegmentHeader::new(Fsn(10), 0).unwrap())
        .unwrap();
    let end = seg.write_frame(24, &payload(10)).unwrap();
    drop(seg);
    let seg = SegmentFile::open_existing(&dir.path().join("sf-0000000000000003.sfa")).unwrap();
    let (mut w, r) = seg.into_split(end).unwrap();
    assert_eq!(r.read_frame(24).unwrap(), payload(10));
    let next = w.write_frame(end, &payload(11)).unwrap();
    w.publish(next).unwrap();
    assert_eq!(r.read_frame(end).unwrap(), payload(11));
}

#[test]
fn s4_unlink_through_a_reader_removes_the_file_while_handles_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let seg = SegmentFile::create(dir.path(), SegmentGen(4), 4096).unwrap();
    let path = seg.path().to_path_buf();
    let (mut w, r) = seg.into_split(0).unwrap();
    let keep = w.reader();
    r.unlink().unwrap();
    assert!(!path.exists());
    w.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap())
        .unwrap();
    let end = w.write_frame(24, &payload(0)).unwrap();
    w.publish(end).unwrap();
    assert_eq!(keep.read_frame(24).unwrap(), payload(0));
    keep.unlink().unwrap();
}

/// The producer appends and publishes on one thread while the I/O side
/// reads every frame as soon as it is published (and syncs, for files):
/// every frame reads back intact, in order.
fn concurrent_append_and_read(
    mut w: sf_io_tokio::fs::SegmentWriter,
    r: sf_io_tokio::fs::SegmentReader,
    sync_every: Option<u64>,
) {
    w.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap())
        .unwrap();
    let total = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut at = SEGMENT_HEADER_LEN as u64;
            let mut fsn = 0;
            while let Ok(end) = w.write_frame(at, &payload(fsn)) {
                w.publish(end).unwrap();
                at = end;
                fsn += 1;
            }
            fsn
        });
        let mut at = SEGMENT_HEADER_LEN as u64;
        let mut fsn = 0u64;
        let mut synced = 0;
        let mut check = |p: &[u8], at: &mut u64, fsn: &mut u64| {
            assert_eq!(p, payload(*fsn), "FSN {fsn} at {at}");
            *at += 8 + p.len() as u64;
            *fsn += 1;
            if sync_every.is_some_and(|n| fsn.is_multiple_of(n)) {
                synced = r.sync_range(synced, *at).unwrap();
            }
        };
        while !producer.is_finished() {
            match r.read_frame(at) {
                Ok(p) => check(p, &mut at, &mut fsn),
                Err(_) => std::thread::yield_now(),
            }
        }
        // After the join every publish is visible: the rest must read.
        let written = producer.join().unwrap();
        while fsn < written {
            let p = r.read_frame(at).unwrap();
            check(p, &mut at, &mut fsn);
        }
        assert_eq!(r.published(), at);
        assert!(r.read_frame(at).is_err());
        written
    });
    assert!(total > 100, "only {total} frames fit");
}

#[test]
fn concurrent_writer_and_reader_on_a_memory_segment() {
    let (w, r) = MemorySegment::new(SegmentGen(0), 1 << 20)
        .unwrap()
        .into_split(0)
        .unwrap();
    concurrent_append_and_read(w, r, None);
}

#[test]
fn concurrent_writer_and_syncing_reader_on_a_file_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (w, r) = SegmentFile::create_spare(dir.path(), SegmentGen(0), 256 * 1024)
        .unwrap()
        .into_split(0)
        .unwrap();
    concurrent_append_and_read(w, r, Some(500));
}
