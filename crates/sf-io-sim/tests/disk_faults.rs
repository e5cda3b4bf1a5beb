//! Injected faults of the simulated disk, each checked against the rule it
//! exercises, plus determinism of the disk's images.

mod disk_support;

use std::time::Duration;

use disk_support::{config, Rig, SEGMENT_BYTES};
use proptest::prelude::*;
use sf_core::durability::DurabilityMode;
use sf_core::recovery::{RecoveryError, RecoveryWarning};
use sf_core::ring::SegmentName;
use sf_core::segment::SEGMENT_HEADER_LEN;
use sf_core::storage::{IoFailure, IoId, IoOutcome, StorageOutput, WaitReason};
use sf_core::{Fsn, SegmentGen};
use sf_io_sim::disk::DiskOp;
use sf_io_sim::{CrashKind, DiskFaults, SimDisk, SimRng};

#[test]
fn s7_enospc_on_create_leaves_no_file_accounted() {
    // Every creation fails: whatever each attempt left is unlinked, so the
    // directory never fills with partial files and nothing stays mapped
    // (DESIGN §6 item 3).
    let faults = DiskFaults {
        create_enospc: 1_000_000,
        ..DiskFaults::none()
    };
    let mut rig = Rig::new(11, faults, config(DurabilityMode::Memory));
    for _ in 0..50 {
        rig.advance(Duration::from_secs(1));
    }
    let st = rig.disk.stats();
    assert!(st.injected.enospc >= 10, "creation was retried: {st:?}");
    assert!(
        rig.s.begin_append(rig.now, 10).is_ok_and(|d| matches!(
            d,
            sf_core::storage::AppendDecision::Wait {
                reason: WaitReason::NoSpare {
                    last_failure: Some(IoFailure::NoSpace)
                },
                ..
            }
        )),
        "the producer waits and is told why"
    );
    let segments: Vec<String> = rig
        .disk
        .file_names()
        .into_iter()
        .filter(|n| SegmentGen::parse_file_name(n).is_some())
        .collect();
    assert!(
        segments.len() <= 1,
        "at most the attempt in flight leaves a file: {segments:?}"
    );
    assert_eq!(st.bytes, 0, "no byte is accounted to a failed creation");
    assert_eq!(st.open_handles, 0, "no handle leaks from a failed creation");
    // Space comes back: the next retry succeeds and appends go through.
    rig.disk.set_faults(DiskFaults::none());
    rig.advance(Duration::from_secs(2));
    rig.append(100)
        .expect("append after the disk has space again");
    assert_eq!(rig.disk.stats().open_handles, rig.disk.stats().files);
}

#[test]
fn s7_capacity_limit_refuses_the_creation_that_does_not_fit() {
    let faults = DiskFaults {
        capacity_bytes: Some(2 * SEGMENT_BYTES),
        ..DiskFaults::none()
    };
    let mut rig = Rig::new(12, faults, config(DurabilityMode::Memory));
    // One active segment + one spare fit; the next spare does not.
    let mut last = None;
    for _ in 0..20 {
        match rig.append(1000) {
            Ok(f) => last = Some(f),
            Err(e) => panic!("append failed: {e}"),
        }
        if rig.disk.stats().injected.enospc > 0 {
            break;
        }
    }
    assert!(rig.disk.stats().injected.enospc > 0, "the disk filled up");
    assert!(rig.disk.stats().bytes <= 2 * SEGMENT_BYTES);
    assert_eq!(rig.s.published_fsn(), last, "S7: no FSN advanced on ENOSPC");
}

#[test]
fn s3_listing_failure_makes_recover_fail_with_the_listing_error() {
    let mut rig = Rig::new(13, DiskFaults::none(), config(DurabilityMode::Flush));
    for i in 0..10 {
        rig.append(50 + i).expect("append");
    }
    rig.flush();
    rig.ack(Fsn(3));
    assert!(rig
        .disk
        .contains(sf_core::watermark::ACK_WATERMARK_FILE_NAME));
    rig.disk.crash(CrashKind::Process);
    let before = rig.disk.fingerprint();

    rig.disk.fail_next(DiskOp::List);
    match rig.disk.recover() {
        Err(RecoveryError::Listing { reason }) => assert!(reason.contains("os error 5")),
        other => panic!("S3: a listing failure must refuse, got {other:?}"),
    }
    rig.disk.fail_next(DiskOp::Stat);
    assert!(
        matches!(
            rig.disk.recover(),
            Err(RecoveryError::SizeUnreadable { .. })
        ),
        "S3 / DESIGN §6 item 4: an unreadable size is never an empty segment"
    );
    rig.disk.fail_next(DiskOp::Read);
    assert!(matches!(
        rig.disk.recover(),
        Err(RecoveryError::ReadFailed { .. })
    ));
    assert_eq!(
        rig.disk.fingerprint(),
        before,
        "S3: refusing changed nothing on disk"
    );
    assert_eq!(
        rig.disk.stats().open_handles,
        0,
        "a refused open maps nothing"
    );
    // A watermark read failure is only a warning.
    rig.disk.fail_next(DiskOp::ReadWatermark);
    let plan = rig.disk.recover().expect("the transient fault is gone");
    assert!(plan
        .warnings
        .iter()
        .any(|w| matches!(w, RecoveryWarning::WatermarkUnreadable { .. })));
    assert_eq!(plan.slot.next_fsn, Fsn(10));
}

#[test]
fn s4_failed_unlink_keeps_the_file_until_the_retry() {
    let mut rig = Rig::new(14, DiskFaults::none(), config(DurabilityMode::Flush));
    // Fill the first segment and roll onto the second.
    while rig
        .s
        .segments()
        .iter()
        .filter(|s| s.base_fsn.is_some())
        .count()
        < 2
    {
        rig.append(500).expect("append");
    }
    rig.flush();
    let first = rig.s.segments()[0].name.file_name();
    let last_in_first = rig.s.segments()[1].base_fsn.expect("base").get() - 1;
    rig.disk.fail_next(DiskOp::Unlink);
    rig.ack(Fsn(last_in_first));
    assert_eq!(rig.disk.stats().injected.unlink_fail, 1);
    assert!(
        rig.disk.contains(&first),
        "S4: the file stays after a failed unlink"
    );
    assert!(
        !rig.disk.is_mapped(&first),
        "its mapping is gone all the same"
    );
    assert_eq!(rig.s.failure_counts().unlink, 1);
    rig.advance(Duration::from_secs(2));
    assert!(!rig.disk.contains(&first), "the retry removed it");
}

#[test]
fn l2_partial_sync_reports_a_durable_offset_within_the_request() {
    for seed in 0..32 {
        let mut disk = SimDisk::new(SimRng::new(seed), DiskFaults::none());
        let gen = SegmentGen(0);
        let id = IoId(0);
        disk.perform(&StorageOutput::CreateSegment {
            id,
            gen,
            size: SEGMENT_BYTES,
        });
        let p = sf_core::storage::Placement {
            fsn: Fsn(0),
            gen,
            offset: 24,
            payload_len: 5000,
            header: Some(sf_core::storage::SegmentHeaderToWrite { base_fsn: Fsn(0) }),
        };
        disk.write_frame(&p, &disk_support::payload(Fsn(0), 5000, 0))
            .expect("write");
        disk.fail_next(DiskOp::PartialSync);
        let out = disk.perform(&StorageOutput::Sync {
            id,
            name: SegmentName::Gen(gen),
            from_offset: 0,
            upto_offset: 5032,
            rewrite: false,
        });
        let IoOutcome::Synced { upto_offset } = out else {
            panic!("seed {seed}: a partial sync still succeeds: {out:?}");
        };
        assert!(
            upto_offset < 5032,
            "seed {seed}: partial means below the request"
        );
        assert!(
            disk.is_durable(&gen.file_name(), 0, upto_offset),
            "seed {seed}: the reported prefix [0, {upto_offset}) is durable"
        );
    }
}

#[test]
fn d1_same_seed_same_images() {
    /// The disk's fingerprint after every crash, and its final stats.
    fn run(seed: u64) -> (Vec<u64>, sf_io_sim::DiskStats) {
        let mut faults = DiskFaults::random(&mut SimRng::new(seed));
        faults.sync_eio = 200_000;
        faults.partial_sync = 200_000;
        faults.listing_fail = 0;
        faults.stat_fail = 0;
        faults.read_fail = 0;
        // Memory durability leaves most bytes unsynced, so every host
        // crash draws a fate for many sectors.
        let mut rig = Rig::new(seed, faults, config(DurabilityMode::Memory));
        let mut prints = Vec::new();
        for round in 0..6u64 {
            for i in 0..15 {
                let _ = rig.append(40 + 37 * i);
            }
            rig.flush();
            if let Some(p) = rig.s.published_fsn() {
                rig.ack(Fsn(p.get() / 2));
            }
            let kind = if round % 2 == 0 {
                CrashKind::Host
            } else {
                CrashKind::Process
            };
            rig.disk.crash(kind);
            prints.push(rig.disk.fingerprint());
            if rig.reopen().is_err() {
                break;
            }
        }
        (prints, rig.disk.stats())
    }
    for seed in [1u64, 2, 3, 99] {
        assert_eq!(run(seed), run(seed), "D1: seed {seed} replays identically");
    }
    assert_ne!(
        run(1).0.first(),
        run(2).0.first(),
        "different seeds draw different sector fates"
    );
}

/// Builds a flushed (synced) segment holding several frames and returns
/// the disk after a process crash, with the frame offsets.
fn synced_segment(seed: u64) -> (Rig, String, Vec<u64>) {
    let mut rig = Rig::new(seed, DiskFaults::none(), config(DurabilityMode::Flush));
    for i in 0..6 {
        rig.append(60 + 11 * i).expect("append");
    }
    assert!(rig.flush());
    let name = rig.s.segments()[0].name.file_name();
    let offsets = rig
        .s
        .frame_offsets(rig.s.segments()[0].name)
        .expect("log segment");
    rig.disk.crash(CrashKind::Process);
    (rig, name, offsets)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// S2: a bit flipped at rest anywhere in a synced frame (envelope or
    /// payload) is caught by recovery: the slot is refused as corrupt, or
    /// the frame ends the log as a torn tail (with a warning) — it is never
    /// read back as a valid frame with different bytes.
    #[test]
    fn s2_bit_flip_in_a_synced_frame_is_never_silently_accepted(
        seed in 0u64..4,
        which in 0usize..6,
        pos in any::<u16>(),
        bit in 0u8..8,
    ) {
        let (mut rig, name, offsets) = synced_segment(seed);
        let start = offsets[which];
        let end = offsets.get(which + 1).copied().unwrap_or_else(|| {
            rig.s.segments()[0].append_offset
        });
        prop_assert!(start >= SEGMENT_HEADER_LEN as u64);
        let at = start + u64::from(pos) % (end - start);
        let original = rig.disk.volatile_image(&name).expect("file").to_vec();
        prop_assert!(rig.disk.flip_bit(&name, at, bit));
        match rig.disk.recover() {
            Err(RecoveryError::Corrupt { bad_frame_offset, .. }) => {
                prop_assert_eq!(bad_frame_offset, start);
            }
            Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
            Ok(plan) => {
                let seg = plan.slot.segments.iter().find(|s| s.file_name() == name)
                    .expect("segment recovered");
                prop_assert_eq!(which, offsets.len() - 1, "only the last frame can become a torn tail");
                prop_assert_eq!(seg.frame_offsets.len(), which, "the flipped frame is not kept");
                let torn_warning = plan.warnings.iter().any(|w| matches!(w, RecoveryWarning::TornTail { .. }));
                prop_assert!(torn_warning, "reported as a torn tail");
                let image = rig.disk.volatile_image(&name).expect("file");
                prop_assert_eq!(&image[..start as usize], &original[..start as usize]);
            }
        }
    }
}

#[test]
fn s2_random_bit_flips_at_rest_are_counted_and_spare_the_watermark() {
    let faults = DiskFaults {
        bit_flip: 1_000_000,
        sector_kept: 1_000_000,
        ..DiskFaults::none()
    };
    let mut rig = Rig::new(15, faults, config(DurabilityMode::Flush));
    for i in 0..8 {
        rig.append(70 + i).expect("append");
    }
    rig.flush();
    rig.ack(Fsn(2));
    rig.advance(Duration::from_millis(100));
    let wm = rig
        .disk
        .volatile_image(sf_core::watermark::ACK_WATERMARK_FILE_NAME)
        .map(<[u8]>::to_vec);
    assert!(wm.is_some(), "the watermark was written");
    let segments = rig
        .disk
        .file_names()
        .iter()
        .filter(|n| SegmentGen::parse_file_name(n).is_some())
        .count() as u64;
    rig.disk.crash(CrashKind::Host);
    let flips = rig.disk.stats().injected.bit_flips;
    assert!(
        flips >= 1 && flips <= segments,
        "one flip per segment file at most"
    );
    let wm_after = rig
        .disk
        .volatile_image(sf_core::watermark::ACK_WATERMARK_FILE_NAME)
        .map(<[u8]>::to_vec);
    // The watermark's creation may be undone (missing or empty file);
    // whatever is left holds no flipped bit.
    if let Some(after) = wm_after.filter(|a| !a.is_empty()) {
        assert_eq!(
            Some(after),
            wm,
            "no flip lands in the unchecksummed watermark"
        );
    }
}
