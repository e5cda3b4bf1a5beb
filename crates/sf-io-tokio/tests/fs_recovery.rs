//! Opening a slot for recovery on real files (sf-client §18.1): lock, list,
//! stat, map and scan, read the watermark, plan — refusing what it cannot
//! prove (S3) and changing nothing on disk.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use sf_core::recovery::{LeftoverSpare, RecoveryError, RecoveryWarning};
use sf_core::segment::SegmentHeader;
use sf_core::{Fsn, SegmentGen};
use sf_io_tokio::fs::{
    list_slot, open_slot, open_slot_dir, LockError, LockHolder, SegmentBuffer, SegmentFile,
    SlotOpenError, WatermarkFile,
};

const SEG: u64 = 4096;

fn payload(fsn: u64) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend_from_slice(&fsn.to_le_bytes());
    p.resize(12 + (fsn as usize * 13) % 200, fsn as u8);
    p
}

/// Creates segment `gen` with frames `base..base + n`; returns the append
/// offset.
fn segment(slot: &Path, gen: u64, base: u64, n: u64) -> u64 {
    let mut seg = SegmentFile::create(slot, SegmentGen(gen), SEG).unwrap();
    seg.write_header(&SegmentHeader::new(Fsn(base), 0).unwrap())
        .unwrap();
    let mut at = 24;
    for fsn in base..base + n {
        at = seg.write_frame(at, &payload(fsn)).unwrap();
    }
    at
}

/// Every file of the slot but the lock's own with its length and a hash of
/// its bytes (directories as `None`).
fn snapshot(slot: &Path) -> BTreeMap<String, Option<(usize, u64)>> {
    std::fs::read_dir(slot)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let digest = e.file_type().unwrap().is_file().then(|| {
                let bytes = std::fs::read(e.path()).unwrap();
                let mut h = DefaultHasher::new();
                bytes.hash(&mut h);
                (bytes.len(), h.finish())
            });
            (name, digest)
        })
        .filter(|(name, _)| name != ".lock" && name != ".lock.pid")
        .collect()
}

fn refusal(r: Result<sf_io_tokio::fs::OpenedSlot, SlotOpenError>) -> RecoveryError {
    match r {
        Err(SlotOpenError::Recovery { source, .. }) => source,
        Err(other) => panic!("expected a recovery refusal, got {other}"),
        Ok(opened) => panic!("expected a refusal, opened {:?}", opened.plan),
    }
}

#[test]
fn s1_fresh_slot_opens_empty_and_creates_only_the_lock_files() {
    let sf = tempfile::tempdir().unwrap();
    let root = sf.path().join("deep").join("sf");
    let opened = open_slot(&root, "fresh").unwrap();
    assert_eq!(opened.plan.slot, sf_core::recovery::RecoveredSlot::empty());
    assert!(opened.plan.warnings.is_empty());
    assert!(opened.segments.is_empty());
    let mut names: Vec<_> = std::fs::read_dir(root.join("fresh"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".lock", ".lock.pid"]);
}

#[test]
fn s8_several_segments_torn_tail_watermark_and_spare_are_recovered_unchanged() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    // Generations out of FSN order on purpose: names are allocation order.
    segment(&slot, 4, 0, 5);
    segment(&slot, 2, 5, 7);
    let tail = segment(&slot, 7, 12, 3);
    {
        // An interrupted append in the active segment: length and part of
        // the payload, no CRC.
        let mut active = SegmentFile::open_existing(&slot.join("sf-0000000000000007.sfa")).unwrap();
        let at = tail as usize;
        active.image_mut()[at + 4..at + 8].copy_from_slice(&50i32.to_le_bytes());
        active.image_mut()[at + 8..at + 14].copy_from_slice(b"QWP1zz");
    }
    drop(SegmentFile::create_spare(&slot, SegmentGen(9), SEG).unwrap());
    WatermarkFile::open(&slot).unwrap().persist(Fsn(6)).unwrap();
    std::fs::write(slot.join("notes.txt"), b"operator's file").unwrap();
    let before = snapshot(&slot);

    let opened = open_slot(sf.path(), "s").unwrap();
    let s = &opened.plan.slot;
    let bases: Vec<_> = s
        .segments
        .iter()
        .map(|g| (g.gen, g.base_fsn, g.frame_count()))
        .collect();
    assert_eq!(
        bases,
        [
            (Some(SegmentGen(4)), Fsn(0), 5),
            (Some(SegmentGen(2)), Fsn(5), 7),
            (Some(SegmentGen(7)), Fsn(12), 3),
        ]
    );
    assert_eq!(s.next_fsn, Fsn(15));
    assert_eq!(s.acked, Some(Fsn(6)));
    assert_eq!(s.next_gen, SegmentGen(10));
    assert_eq!(
        s.leftover_spares,
        [LeftoverSpare {
            gen: SegmentGen(9),
            file_size: SEG
        }]
    );
    assert_eq!(s.segments[2].append_offset, tail);
    assert_eq!(s.segments[2].torn_tail_bytes, 14);
    assert!(opened.plan.warnings.contains(&RecoveryWarning::TornTail {
        name: "sf-0000000000000007.sfa".into(),
        bytes: 14,
        active: true
    }));

    // The mapped files of the log and the spare are handed over, and every
    // recovered frame reads back through them.
    assert_eq!(opened.segments.len(), 4);
    for rs in &s.segments {
        let file = opened.segments.get(rs.gen).unwrap();
        for (i, &off) in rs.frame_offsets.iter().enumerate() {
            let fsn = rs.base_fsn.get() + i as u64;
            assert_eq!(file.read_frame(off).unwrap(), payload(fsn));
        }
    }
    assert!(opened.segments.get(Some(SegmentGen(9))).is_some());

    // S3: recovery rewrote and deleted nothing.
    assert_eq!(snapshot(&slot), before);

    // C3: the opened slot is locked.
    match open_slot(sf.path(), "s") {
        Err(SlotOpenError::Lock(LockError::Held { holder, .. })) => {
            assert_eq!(holder, LockHolder::Pid(std::process::id()))
        }
        other => panic!("second open: {other:?}"),
    }
}

#[test]
fn s8_watermark_above_the_log_is_ignored_with_a_warning() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    segment(&slot, 0, 10, 4);
    WatermarkFile::open(&slot)
        .unwrap()
        .persist(Fsn(99))
        .unwrap();
    let opened = open_slot_dir(&slot).unwrap();
    assert_eq!(opened.plan.slot.acked, Some(Fsn(9)));
    assert!(opened.plan.warnings.iter().any(|w| matches!(
        w,
        RecoveryWarning::WatermarkAboveLog {
            watermark: Fsn(99),
            ..
        }
    )));
}

#[test]
fn s3_a_directory_under_a_segment_name_refuses_the_slot() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    segment(&slot, 0, 0, 2);
    std::fs::create_dir(slot.join("sf-0000000000000001.sfa")).unwrap();
    let before = snapshot(&slot);
    match refusal(open_slot(sf.path(), "s")) {
        RecoveryError::NotAFile { name, kind } => {
            assert_eq!(name, "sf-0000000000000001.sfa");
            assert_eq!(kind, sf_core::recovery::NonFileKind::Directory);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(snapshot(&slot), before);
    // The refusal released the lock.
    open_slot_dir(&slot).unwrap_err();
    sf_io_tokio::fs::SlotLock::acquire_dir(&slot).unwrap();
}

#[test]
fn s3_a_symlink_under_a_segment_name_refuses_the_slot() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    segment(&slot, 0, 0, 2);
    std::os::unix::fs::symlink(
        slot.join("sf-0000000000000000.sfa"),
        slot.join("sf-0000000000000001.sfa"),
    )
    .unwrap();
    match refusal(open_slot_dir(&slot)) {
        e @ RecoveryError::NotAFile { .. } => {
            assert!(e.to_string().contains("symbolic link"), "{e}");
            assert!(!e.is_transient(), "structurally broken: permanent");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn s2_corrupt_segment_refuses_and_stays_on_disk() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    segment(&slot, 0, 0, 3);
    let path = slot.join("sf-0000000000000000.sfa");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[24 + 8 + 5] ^= 0xff; // the first frame's payload
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        refusal(open_slot_dir(&slot)),
        RecoveryError::Corrupt { name, .. } if name == "sf-0000000000000000.sfa"
    ));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn s1_gap_between_segments_refuses() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    segment(&slot, 0, 0, 3);
    segment(&slot, 1, 4, 3);
    assert!(matches!(
        refusal(open_slot_dir(&slot)),
        RecoveryError::Gap {
            prev_end: Fsn(3),
            next_base: Fsn(4),
            ..
        }
    ));
}

#[test]
fn s3_listing_error_is_a_value_that_names_the_directory() {
    let sf = tempfile::tempdir().unwrap();
    let missing = sf.path().join("nope");
    let err = list_slot(&missing).unwrap_err();
    assert!(err.0.starts_with("list "), "{}", err.0);
    assert!(err.0.contains(&missing.display().to_string()), "{}", err.0);
    assert!(matches!(
        sf_core::recovery::plan_reads(Err(err)),
        Err(RecoveryError::Listing { .. })
    ));
}

#[test]
fn header_only_file_shorter_than_a_header_is_skipped_and_kept() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    segment(&slot, 0, 0, 1);
    // A crash right after `create_new`, before `set_len`: an empty file.
    std::fs::write(slot.join("sf-0000000000000001.sfa"), b"").unwrap();
    let opened = open_slot_dir(&slot).unwrap();
    assert_eq!(opened.plan.slot.next_gen, SegmentGen(2));
    assert_eq!(opened.plan.slot.next_fsn, Fsn(1));
    assert!(opened.plan.warnings.iter().any(|w| matches!(
        w,
        RecoveryWarning::SegmentSkipped { name, .. } if name == "sf-0000000000000001.sfa"
    )));
    assert!(opened.segments.get(Some(SegmentGen(1))).is_none());
    assert!(slot.join("sf-0000000000000001.sfa").exists());
}
