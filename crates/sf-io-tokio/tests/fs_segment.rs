//! Segment files on a real file system: creation at full size, header and
//! frames through the mapping, reopen and scan, syncs, unlink, and errors
//! that carry their operation and path.

use std::path::Path;

use sf_core::ring::SegmentName;
use sf_core::segment::{scan_segment, ScanOutcome, SegmentHeader, TailState};
use sf_core::storage::{IoFailure, IoOutcome};
use sf_core::{Fsn, SegmentGen};
use sf_io_tokio::fs::{
    io_outcome, segment_path, sync_outcome, unlink_segment, FsError, FsOp, SegmentBuffer,
    SegmentFile,
};

fn payload(fsn: u64) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend_from_slice(&fsn.to_le_bytes());
    p.resize(12 + (fsn as usize * 37) % 300, fsn as u8);
    p
}

fn write_frames(seg: &mut SegmentFile, base: u64, n: u64) -> Vec<u64> {
    seg.write_header(&SegmentHeader::new(Fsn(base), 1_700_000_000_000_000).unwrap())
        .unwrap();
    let mut at = 24u64;
    let mut offsets = Vec::new();
    for fsn in base..base + n {
        offsets.push(at);
        at = seg.write_frame(at, &payload(fsn)).unwrap();
    }
    offsets
}

fn scan_file(path: &Path) -> sf_core::segment::SegmentScan {
    match scan_segment(&std::fs::read(path).unwrap()).unwrap() {
        ScanOutcome::Segment(s) => s,
        other => panic!("not a segment: {other:?}"),
    }
}

#[test]
fn create_makes_a_zero_file_of_full_size_under_its_generation_name() {
    let dir = tempfile::tempdir().unwrap();
    let seg = SegmentFile::create(dir.path(), SegmentGen(0x2a), 64 * 1024).unwrap();
    let path = dir.path().join("sf-000000000000002a.sfa");
    assert_eq!(seg.path(), path);
    assert_eq!(segment_path(dir.path(), SegmentGen(0x2a)), path);
    assert_eq!(seg.gen(), Some(SegmentGen(0x2a)));
    assert_eq!(seg.size(), 64 * 1024);
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(on_disk.len(), 64 * 1024);
    assert!(on_disk.iter().all(|&b| b == 0));
    assert!(seg.image().iter().all(|&b| b == 0));
}

#[test]
fn create_never_clobbers_an_existing_generation() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = SegmentFile::create(dir.path(), SegmentGen(1), 4096).unwrap();
    write_frames(&mut first, 0, 3);
    let err = SegmentFile::create(dir.path(), SegmentGen(1), 4096).unwrap_err();
    assert_eq!(err.op(), Some(FsOp::Create));
    assert!(err.to_string().contains("sf-0000000000000001.sfa"), "{err}");
    assert_eq!(scan_file(first.path()).frame_count(), 3);
}

#[test]
fn frames_written_through_the_mapping_are_scanned_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentFile::create_spare(dir.path(), SegmentGen(3), 16 * 1024).unwrap();
    let offsets = write_frames(&mut seg, 100, 20);
    let path = seg.path().to_path_buf();
    drop(seg);

    let scan = scan_file(&path);
    assert_eq!(scan.header.base_fsn(), Fsn(100));
    assert_eq!(scan.frame_offsets, offsets);
    assert_eq!(scan.tail, TailState::Clean);

    let reopened = SegmentFile::open_existing(&path).unwrap();
    assert_eq!(reopened.gen(), Some(SegmentGen(3)));
    for (i, &off) in offsets.iter().enumerate() {
        assert_eq!(reopened.read_frame(off).unwrap(), payload(100 + i as u64));
    }
    let err = reopened.read_frame(offsets[1] + 1).unwrap_err();
    assert!(matches!(err, FsError::FrameRead { .. }), "{err}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn frame_that_does_not_fit_writes_nothing_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentFile::create(dir.path(), SegmentGen(0), 64).unwrap();
    seg.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap())
        .unwrap();
    let err = seg.write_frame(24, &[7u8; 33]).unwrap_err();
    assert!(matches!(err, FsError::FrameWrite { .. }), "{err}");
    assert!(err.to_string().contains("sf-0000000000000000.sfa"), "{err}");
    assert!(seg.image()[24..].iter().all(|&b| b == 0));
    assert_eq!(seg.write_frame(24, &[7u8; 32]).unwrap(), 64);
}

#[test]
fn sync_of_a_mid_page_range_reaches_the_file_and_reports_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentFile::create_spare(dir.path(), SegmentGen(9), 5 * 4096).unwrap();
    let offsets = write_frames(&mut seg, 0, 60);
    let end = seg.size() - 1;
    // A range starting and ending inside pages, spanning a page boundary.
    let (from, upto) = (offsets[3], offsets[40]);
    assert!(from % 4096 != 0 && upto % 4096 != 0 && upto / 4096 > from / 4096);
    assert_eq!(seg.sync_range(from, upto).unwrap(), upto);
    // The first sync also made the file's metadata durable; later ones
    // only msync (exercised, and equally successful).
    assert_eq!(seg.sync_range(upto, offsets[59]).unwrap(), offsets[59]);
    assert_eq!(seg.sync_range(0, 0).unwrap(), 0);
    assert_eq!(std::fs::read(seg.path()).unwrap(), seg.image());

    for (from, upto) in [(10, 9), (0, end + 2), (end + 2, end + 3)] {
        let err = seg.sync_range(from, upto).unwrap_err();
        assert!(matches!(err, FsError::OutOfRange { .. }), "{err}");
    }
}

#[test]
fn l5_resync_after_failure_rewrites_the_range_unchanged_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentFile::create(dir.path(), SegmentGen(1), 3 * 4096).unwrap();
    let offsets = write_frames(&mut seg, 7, 40);
    let before = seg.image().to_vec();
    let upto = *offsets.last().unwrap();
    assert_eq!(seg.resync_range(100, upto).unwrap(), upto);
    assert_eq!(seg.image(), before.as_slice());
    assert_eq!(std::fs::read(seg.path()).unwrap(), before);
    assert!(matches!(
        seg.resync_range(5, 4),
        Err(FsError::OutOfRange { .. })
    ));
}

#[test]
fn s4_unlink_closes_and_removes_and_a_missing_file_counts_as_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentFile::create_spare(dir.path(), SegmentGen(5), 8192).unwrap();
    write_frames(&mut seg, 0, 2);
    let path = seg.path().to_path_buf();
    seg.unlink().unwrap();
    assert!(!path.exists());
    unlink_segment(dir.path(), SegmentName::Gen(SegmentGen(5))).unwrap();

    // An unlink the OS refuses is an error with its operation and path: a
    // non-empty directory under a segment's name cannot be removed.
    let stuck = dir.path().join("sf-0000000000000006.sfa");
    std::fs::create_dir(&stuck).unwrap();
    std::fs::write(stuck.join("x"), b"x").unwrap();
    let err = unlink_segment(dir.path(), SegmentName::Gen(SegmentGen(6))).unwrap_err();
    assert_eq!(err.op(), Some(FsOp::Unlink));
    assert!(err.to_string().starts_with("unlink "), "{err}");
    assert!(err.to_string().contains("sf-0000000000000006.sfa"), "{err}");
    assert!(err.os_code().is_some());
    assert!(!err.is_no_space());
}

#[test]
fn create_in_a_missing_directory_fails_with_create_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone");
    let err = SegmentFile::create(&missing, SegmentGen(0), 4096).unwrap_err();
    assert_eq!(err.op(), Some(FsOp::Create));
    let msg = err.to_string();
    assert!(msg.starts_with("create "), "{msg}");
    assert!(msg.contains(
        &missing
            .join("sf-0000000000000000.sfa")
            .display()
            .to_string()
    ));
    assert_eq!(err.os_code(), Some(2));
}

#[test]
fn open_existing_of_a_missing_file_fails_with_open_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = SegmentFile::open_existing(&dir.path().join("sf-0000000000000001.sfa")).unwrap_err();
    assert_eq!(err.op(), Some(FsOp::Open));
    assert!(err.to_string().contains("sf-0000000000000001.sfa"), "{err}");
}

#[test]
fn empty_file_maps_as_an_empty_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sf-0000000000000004.sfa");
    std::fs::write(&path, b"").unwrap();
    let seg = SegmentFile::open_existing(&path).unwrap();
    assert_eq!(seg.size(), 0);
    assert!(seg.image().is_empty());
}

#[tokio::test]
async fn spare_created_on_the_blocking_pool_is_ready_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = SegmentFile::create_spare_async(dir.path().to_path_buf(), SegmentGen(8), 8192)
        .await
        .unwrap();
    write_frames(&mut seg, 0, 4);
    assert_eq!(scan_file(seg.path()).frame_count(), 4);

    let err = SegmentFile::create_spare_async(dir.path().join("missing"), SegmentGen(8), 8192)
        .await
        .unwrap_err();
    assert_eq!(err.op(), Some(FsOp::Create));
}

#[test]
fn create_refuses_a_size_below_the_header_without_creating_a_file() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        SegmentFile::create(dir.path(), SegmentGen(0), 23),
        Err(FsError::BadSegmentSize { size: 23, .. })
    ));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn s7_os_errors_become_the_cores_io_failure_inputs() {
    let err = |code| {
        FsError::io(
            FsOp::Write,
            "/x/sf-0000000000000001.sfa",
            std::io::Error::from_raw_os_error(code),
        )
    };
    // ENOSPC and EDQUOT are "no space" (the core backpressures, S6/S7).
    assert_eq!(err(28).io_failure(), IoFailure::NoSpace);
    assert_eq!(err(122).io_failure(), IoFailure::NoSpace);
    // Anything else keeps its OS code.
    assert_eq!(err(5).io_failure(), IoFailure::Io { os_code: Some(5) });
    let not_os = FsError::OutOfRange {
        segment: "s".into(),
        start: 1,
        end: 0,
        size: 0,
    };
    assert_eq!(IoFailure::from(&not_os), IoFailure::Io { os_code: None });

    assert_eq!(io_outcome(&Ok::<(), FsError>(())), IoOutcome::Done);
    assert_eq!(
        io_outcome(&Err::<(), FsError>(err(28))),
        IoOutcome::Failed(IoFailure::NoSpace)
    );
    assert_eq!(
        sync_outcome(&Ok(4096)),
        IoOutcome::Synced { upto_offset: 4096 }
    );
    assert_eq!(
        sync_outcome(&Err(err(5))),
        IoOutcome::Failed(IoFailure::Io { os_code: Some(5) })
    );
}

#[test]
fn s4_unlink_of_a_real_segment_reports_done_to_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let seg = SegmentFile::create(dir.path(), SegmentGen(2), 4096).unwrap();
    assert_eq!(io_outcome(&seg.unlink()), IoOutcome::Done);
    // The retry of an unlink that already happened is a success too.
    assert_eq!(
        io_outcome(&unlink_segment(dir.path(), SegmentName::Gen(SegmentGen(2)))),
        IoOutcome::Done
    );
}
