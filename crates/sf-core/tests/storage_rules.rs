//! Rule tests for the storage engine, one per invariant (S1, S4–S7, L1–L5)
//! plus the DESIGN §6 regressions (items 1, 3, 8, 9, 11, 12, 15).

use core::time::Duration;

use sf_core::durability::DurabilityMode;
use sf_core::recovery::{LeftoverSpare, RecoveredSegment, RecoveredSlot};
use sf_core::ring::{SegmentName, SegmentState};
use sf_core::storage::{
    AppendDecision, AppendError, Backing, ConfigError, IoFailure, IoId, IoOutcome, LinkState,
    Placement, Storage, StorageConfig, StorageError, StorageOutput, WaitReason,
};
use sf_core::{Fsn, Instant, SegmentGen};

const MS: u64 = 1_000_000;

/// Segments of 24 + 2 * (8 + 10) bytes: two 10-byte frames each.
const SEG: u64 = 60;

fn cfg(cap_segments: u64) -> StorageConfig {
    StorageConfig {
        backing: Backing::Files,
        segment_bytes: SEG,
        max_total_bytes: SEG * cap_segments,
        append_deadline: Duration::from_millis(100),
        durability: DurabilityMode::Memory,
        spares: 1,
        reclaim_min_bytes: 0,
    }
}

fn t(ms: u64) -> Instant {
    Instant(ms * MS)
}

fn drain(s: &mut Storage) -> Vec<StorageOutput> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn id_of(o: &StorageOutput) -> IoId {
    o.id()
}

/// Completes every queued output successfully until none is left.
fn settle(s: &mut Storage, now: Instant) {
    for _ in 0..100 {
        let outs = drain(s);
        if outs.is_empty() {
            return;
        }
        for o in outs {
            s.io_done(now, id_of(&o), IoOutcome::Done)
                .expect("known io");
        }
    }
    panic!("storage never settled");
}

/// Completes every queued output successfully until none is left and
/// returns everything that was emitted on the way.
fn settle_collect(s: &mut Storage, now: Instant) -> Vec<StorageOutput> {
    let mut all = Vec::new();
    for _ in 0..100 {
        let outs = drain(s);
        if outs.is_empty() {
            return all;
        }
        for o in outs {
            s.io_done(now, id_of(&o), IoOutcome::Done)
                .expect("known io");
            all.push(o);
        }
    }
    panic!("storage never settled");
}

/// Asserts the queued outputs hold a header sync and no unlink, completes
/// them, and returns the header syncs it saw.
fn drain_pending_unlinks_before_sync(s: &mut Storage, now: Instant) -> Vec<StorageOutput> {
    let outs = drain(s);
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, StorageOutput::Unlink { .. })),
        "S1: no unlink before the successor's header is durable: {outs:?}"
    );
    let syncs: Vec<StorageOutput> = outs
        .iter()
        .filter(|o| {
            matches!(o, StorageOutput::Sync { from_offset: 0, upto_offset, .. } if *upto_offset >= 24)
        })
        .cloned()
        .collect();
    for o in &outs {
        s.io_done(now, id_of(o), IoOutcome::Done).expect("io");
    }
    syncs
}

fn is_unlink_of(o: &StorageOutput, of: SegmentName) -> bool {
    matches!(o, StorageOutput::Unlink { name, .. } if *name == of)
}

fn place(s: &mut Storage, now: Instant, len: u64) -> Placement {
    match s.begin_append(now, len).expect("begin_append") {
        AppendDecision::Place(p) => p,
        AppendDecision::Wait { reason, .. } => panic!("unexpected wait: {reason}"),
    }
}

/// Appends one frame, settling I/O first so a spare is ready.
fn append(s: &mut Storage, now: Instant, len: u64) -> Fsn {
    settle(s, now);
    let p = place(s, now, len);
    s.commit_append(now, p, Ok(())).expect("commit").fsn
}

fn open(config: StorageConfig) -> Storage {
    Storage::open(config, RecoveredSlot::empty(), t(0)).expect("open")
}

fn log_bases(s: &Storage) -> Vec<(u64, u64)> {
    s.segments()
        .iter()
        .filter_map(|i| i.base_fsn.map(|b| (b.get(), i.frame_count)))
        .collect()
}

/// What recovery would plan from the engine's files after a process crash
/// with no usable `.ack-watermark`: acked = lowest surviving base - 1 (S8).
fn recovered_view(s: &Storage) -> RecoveredSlot {
    let infos = s.segments();
    let segments: Vec<RecoveredSegment> = infos
        .iter()
        .filter(|i| matches!(i.state, SegmentState::Active | SegmentState::Sealed))
        .map(|i| RecoveredSegment {
            gen: i.name.gen(),
            base_fsn: i.base_fsn.expect("log segment"),
            frame_offsets: s.frame_offsets(i.name).expect("log segment"),
            append_offset: i.append_offset,
            file_size: i.size,
            torn_tail_bytes: 0,
        })
        .collect();
    let max_gen = infos
        .iter()
        .filter_map(|i| i.name.gen())
        .map(|g| g.get())
        .max()
        .unwrap_or(0);
    RecoveredSlot {
        acked: segments.first().and_then(|s| s.base_fsn.prev()),
        segments,
        leftover_spares: infos
            .iter()
            .filter(|i| i.state == SegmentState::Spare)
            .filter_map(|i| {
                i.name.gen().map(|gen| LeftoverSpare {
                    gen,
                    file_size: i.size,
                })
            })
            .collect(),
        next_fsn: s.next_fsn(),
        next_gen: SegmentGen(max_gen + 100),
    }
}

#[test]
fn config_rejects_segment_without_room_for_header_and_frame() {
    let mut c = cfg(4);
    c.segment_bytes = 31;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::SegmentTooSmall { min: 32, .. })
    ));
    let mut c = cfg(4);
    c.max_total_bytes = SEG - 1;
    assert!(matches!(
        c.validate(),
        Err(ConfigError::CapBelowSegment { .. })
    ));
    let mut c = cfg(4);
    c.spares = 0;
    assert!(matches!(c.validate(), Err(ConfigError::Spares { .. })));
    let mut c = cfg(4);
    c.backing = Backing::Memory;
    c.durability = DurabilityMode::Flush;
    assert!(matches!(
        Storage::open(c, RecoveredSlot::empty(), t(0)),
        Err(StorageError::Config(
            ConfigError::DurabilityNeedsFiles { .. }
        ))
    ));
}

#[test]
fn frame_larger_than_a_segment_is_a_typed_error() {
    let mut s = open(cfg(4));
    settle(&mut s, t(0));
    assert_eq!(
        s.begin_append(t(0), SEG - 31),
        Err(AppendError::FrameTooLarge {
            payload_len: SEG - 31,
            max: SEG - 32
        })
    );
    assert_eq!(s.next_fsn(), Fsn(0));
    // The largest frame fits exactly.
    assert_eq!(append(&mut s, t(0), SEG - 32), Fsn(0));
}

#[test]
fn s1_fsns_contiguous_across_rotations_and_locatable() {
    let mut s = open(cfg(8));
    for i in 0..5 {
        assert_eq!(append(&mut s, t(0), 10), Fsn(i));
    }
    assert_eq!(log_bases(&s), vec![(0, 2), (2, 2), (4, 1)]);
    for f in 0..5 {
        let loc = s.locate(Fsn(f)).expect("published frame is locatable");
        assert_eq!(loc.len, 10);
        assert_eq!(loc.offset, 24 + (f % 2) * 18);
    }
    assert_eq!(s.locate(Fsn(5)), None);
    assert_eq!(s.published_fsn(), Some(Fsn(4)));
}

#[test]
fn s1_reopen_continues_fsns_from_recovered_slot() {
    let slot = RecoveredSlot {
        segments: vec![RecoveredSegment {
            gen: Some(SegmentGen(7)),
            base_fsn: Fsn(10),
            frame_offsets: vec![24],
            append_offset: 42,
            file_size: SEG,
            torn_tail_bytes: 0,
        }],
        leftover_spares: vec![],
        next_fsn: Fsn(11),
        acked: Some(Fsn(9)),
        next_gen: SegmentGen(8),
    };
    let mut s = Storage::open(cfg(4), slot, t(0)).expect("open");
    settle(&mut s, t(0)); // the open-time watermark rewrite (S8)
    let p = place(&mut s, t(0), 10);
    assert_eq!(
        (p.fsn, p.gen, p.offset, p.header),
        (Fsn(11), SegmentGen(7), 42, None)
    );
    s.commit_append(t(0), p, Ok(())).expect("commit");
    assert_eq!(s.oldest_unacked(), Some(Fsn(10)));
    assert_eq!(s.locate(Fsn(11)).map(|l| l.offset), Some(42));
}

#[test]
fn recovered_slot_with_a_gap_or_bad_ack_is_refused() {
    let seg = |gen, base, frames: u64| RecoveredSegment {
        gen: Some(SegmentGen(gen)),
        base_fsn: Fsn(base),
        frame_offsets: (0..frames).map(|i| 24 + 18 * i).collect(),
        append_offset: 24 + 18 * frames,
        file_size: SEG,
        torn_tail_bytes: 0,
    };
    let slot = |segments, next, acked| RecoveredSlot {
        segments,
        leftover_spares: vec![],
        next_fsn: Fsn(next),
        acked,
        next_gen: SegmentGen(9),
    };
    let gap = slot(vec![seg(1, 0, 2), seg(2, 3, 1)], 4, None);
    assert!(matches!(
        Storage::open(cfg(4), gap, t(0)),
        Err(StorageError::Recovery(_))
    ));
    let next = slot(vec![seg(1, 0, 2)], 5, None);
    assert!(Storage::open(cfg(4), next, t(0)).is_err());
    let acked_beyond = slot(vec![seg(1, 0, 2)], 2, Some(Fsn(2)));
    assert!(Storage::open(cfg(4), acked_beyond, t(0)).is_err());
    let acked_below_log = slot(vec![seg(1, 5, 2)], 7, Some(Fsn(2)));
    assert!(Storage::open(cfg(4), acked_below_log, t(0)).is_err());
    let mut bad_offsets = seg(1, 0, 2);
    bad_offsets.frame_offsets = vec![24, 20];
    assert!(Storage::open(cfg(4), slot(vec![bad_offsets], 2, None), t(0)).is_err());
    let gen_clash = RecoveredSlot {
        next_gen: SegmentGen(1),
        ..slot(vec![seg(1, 0, 2)], 2, None)
    };
    assert!(Storage::open(cfg(4), gen_clash, t(0)).is_err());
}

#[test]
fn recovered_acked_segments_are_trimmed_at_open() {
    let slot = RecoveredSlot {
        segments: vec![
            RecoveredSegment {
                gen: Some(SegmentGen(1)),
                base_fsn: Fsn(0),
                frame_offsets: vec![24, 42],
                append_offset: 60,
                file_size: SEG,
                torn_tail_bytes: 0,
            },
            RecoveredSegment {
                gen: Some(SegmentGen(2)),
                base_fsn: Fsn(2),
                frame_offsets: vec![24],
                append_offset: 42,
                file_size: SEG,
                torn_tail_bytes: 0,
            },
        ],
        leftover_spares: vec![],
        next_fsn: Fsn(3),
        acked: Some(Fsn(1)), // from the watermark
        next_gen: SegmentGen(3),
    };
    let mut s = Storage::open(cfg(4), slot, t(0)).expect("open");
    let outs = drain(&mut s);
    // S1: whether segment 2's header reached stable storage is unknown after
    // a crash, so segment 1 goes only once that header is synced.
    let old = SegmentName::Gen(SegmentGen(1));
    assert!(!outs.iter().any(|o| is_unlink_of(o, old)));
    assert!(outs.iter().any(|o| matches!(
        o,
        StorageOutput::Sync {
            name: SegmentName::Gen(SegmentGen(2)),
            upto_offset: 24,
            ..
        }
    )));
    for o in &outs {
        s.io_done(t(0), id_of(o), IoOutcome::Done).expect("io");
    }
    assert!(drain(&mut s).iter().any(|o| is_unlink_of(o, old)));
    assert_eq!(s.oldest_unacked(), Some(Fsn(2)));
    assert_eq!(s.locate(Fsn(1)), None);
}

#[test]
fn torn_tail_active_is_sealed_and_never_appended_into() {
    let slot = RecoveredSlot {
        segments: vec![RecoveredSegment {
            gen: Some(SegmentGen(0)),
            base_fsn: Fsn(0),
            frame_offsets: vec![24],
            append_offset: 42,
            file_size: SEG,
            torn_tail_bytes: 5,
        }],
        leftover_spares: vec![],
        next_fsn: Fsn(1),
        acked: None,
        next_gen: SegmentGen(1),
    };
    let mut s = Storage::open(cfg(4), slot, t(0)).expect("open");
    settle(&mut s, t(0));
    let p = place(&mut s, t(0), 1);
    assert_ne!(p.gen, SegmentGen(0), "never append beside a torn tail");
    assert_eq!(p.header.map(|h| h.base_fsn), Some(Fsn(1)));
}

#[test]
fn leftover_spares_are_reused_or_unlinked() {
    let slot = RecoveredSlot {
        leftover_spares: vec![
            LeftoverSpare {
                gen: SegmentGen(3),
                file_size: SEG,
            },
            LeftoverSpare {
                gen: SegmentGen(4),
                file_size: SEG * 2, // another sf_max_bytes: not reusable
            },
        ],
        next_gen: SegmentGen(5),
        ..RecoveredSlot::empty()
    };
    let mut s = Storage::open(cfg(4), slot, t(0)).expect("open");
    let outs = drain(&mut s);
    assert!(outs.iter().any(|o| matches!(
        o,
        StorageOutput::Unlink {
            name: SegmentName::Gen(SegmentGen(4)),
            ..
        }
    )));
    assert!(!outs
        .iter()
        .any(|o| matches!(o, StorageOutput::CreateSegment { .. })));
    for o in &outs {
        s.io_done(t(0), id_of(o), IoOutcome::Done).expect("io");
    }
    let p = place(&mut s, t(0), 1);
    assert_eq!(p.gen, SegmentGen(3));
}

/// L5: a failed fsync may drop every dirty page of the segment, so a
/// header-only retry does not settle the failure: the frame written beside
/// the header is rewritten by the next sync. Found by the simulator (soak
/// seed 13704): the frame's sync went out without `rewrite`, was counted
/// durable, and a host crash lost a flushed frame.
#[test]
fn l5_header_only_retry_leaves_the_frames_rewrite_owed() {
    let mut s = open(StorageConfig {
        durability: DurabilityMode::Flush,
        ..cfg(8)
    });
    append(&mut s, t(0), 10);
    append(&mut s, t(0), 10);
    s.end_batch(t(0));
    settle(&mut s, t(0));
    // Frame 2 opens a fresh segment (header + frame), not yet flushed.
    append(&mut s, t(0), 10);
    settle(&mut s, t(0));
    let fresh = s
        .segments()
        .iter()
        .find(|i| i.base_fsn == Some(Fsn(2)))
        .map(|i| i.name)
        .expect("a segment holds frame 2");
    // Trimming the first segment asks for the fresh one's header only.
    s.acknowledge(t(1), Fsn(1));
    let header_sync = drain(&mut s)
        .into_iter()
        .find(|o| matches!(o, StorageOutput::Sync { name, upto_offset: 24, .. } if *name == fresh))
        .expect("a header-only sync of the fresh segment");
    s.io_done(
        t(1),
        id_of(&header_sync),
        IoOutcome::Failed(IoFailure::Io { os_code: Some(5) }),
    )
    .expect("io");
    let at = s.poll_timeout().expect("the sync is retried");
    s.handle_timeout(at);
    let retry = drain(&mut s)
        .into_iter()
        .find(|o| matches!(o, StorageOutput::Sync { name, .. } if *name == fresh))
        .expect("the header sync is retried");
    assert!(
        matches!(
            retry,
            StorageOutput::Sync {
                rewrite: true,
                upto_offset: 24,
                ..
            }
        ),
        "{retry:?}"
    );
    s.io_done(at, id_of(&retry), IoOutcome::Done).expect("io");
    settle_except_syncs(&mut s, at);
    s.end_batch(at);
    let frame_sync = drain(&mut s)
        .into_iter()
        .find(|o| matches!(o, StorageOutput::Sync { name, .. } if *name == fresh))
        .expect("the flush syncs the frame");
    assert!(
        matches!(frame_sync, StorageOutput::Sync { rewrite: true, .. }),
        "the frame beside the header may have been dropped by the failed fsync: {frame_sync:?}"
    );
}

/// Completes every queued output but syncs, which are left pending.
fn settle_except_syncs(s: &mut Storage, now: Instant) {
    for o in drain(s) {
        if !matches!(o, StorageOutput::Sync { .. }) {
            s.io_done(now, id_of(&o), IoOutcome::Done).expect("io");
        }
    }
}

/// S4 with S3: a failed unlink of an older segment holds back the unlink
/// of every newer one, so the files on disk stay a contiguous run of FSNs.
/// Found by the simulator (seed 239 of the sweep): the newer segment went,
/// the older stayed, and the next open refused the slot with an FSN gap.
#[test]
fn s4_failed_unlink_holds_back_newer_unlinks_so_files_stay_contiguous() {
    let mut s = open(cfg(8));
    for _ in 0..5 {
        append(&mut s, t(0), 10);
    }
    settle(&mut s, t(0));
    let older: Vec<SegmentName> = s
        .segments()
        .iter()
        .filter(|i| i.base_fsn.is_some_and(|b| b.get() < 4))
        .map(|i| i.name)
        .collect();
    let [first, second] = older[..] else {
        panic!("two sealed segments of two frames: {older:?}");
    };
    s.acknowledge(t(1), Fsn(3));
    let mut unlinks = Vec::new();
    for _ in 0..10 {
        let outs = drain(&mut s);
        if outs.is_empty() {
            break;
        }
        for o in outs {
            if matches!(o, StorageOutput::Unlink { .. }) {
                unlinks.push(o);
            } else {
                s.io_done(t(1), id_of(&o), IoOutcome::Done).expect("io");
            }
        }
    }
    assert!(
        matches!(unlinks.as_slice(), [u] if is_unlink_of(u, first)),
        "only the oldest segment's unlink goes out first: {unlinks:?}"
    );
    s.io_done(
        t(1),
        id_of(&unlinks[0]),
        IoOutcome::Failed(IoFailure::Io { os_code: Some(5) }),
    )
    .expect("io");
    assert!(
        !drain(&mut s).iter().any(|o| is_unlink_of(o, second)),
        "the newer segment stays while the older one's unlink is retried"
    );
    let at = s.poll_timeout().expect("a retry is scheduled");
    s.handle_timeout(at);
    let retry = drain(&mut s);
    assert!(matches!(retry.as_slice(), [u] if is_unlink_of(u, first)));
    s.io_done(at, id_of(&retry[0]), IoOutcome::Done)
        .expect("io");
    let next = drain(&mut s);
    assert!(
        next.iter().any(|o| is_unlink_of(o, second)),
        "once the older file is gone the newer one follows: {next:?}"
    );
}

/// DESIGN §6 item 8 and S4.
#[test]
fn s4_unlink_failure_keeps_segment_counted_and_retries() {
    let mut s = open(cfg(8));
    for _ in 0..3 {
        append(&mut s, t(0), 10);
    }
    settle(&mut s, t(0));
    let resident = s.resident_bytes();
    s.acknowledge(t(1), Fsn(1));
    let mut outs = drain(&mut s);
    // S1: the unlink first waits for the successor's header to be durable.
    let sync = outs
        .iter()
        .position(|o| matches!(o, StorageOutput::Sync { .. }))
        .expect("the successor's header is synced first");
    assert!(!outs
        .iter()
        .any(|o| matches!(o, StorageOutput::Unlink { .. })));
    let sync = outs.remove(sync);
    s.io_done(t(1), id_of(&sync), IoOutcome::Done).expect("io");
    outs.extend(drain(&mut s));
    let unlink = outs
        .iter()
        .find(|o| matches!(o, StorageOutput::Unlink { .. }))
        .expect("fully acked sealed segment is unlinked");
    s.io_done(
        t(1),
        id_of(unlink),
        IoOutcome::Failed(IoFailure::Io { os_code: Some(5) }),
    )
    .expect("io");
    for o in outs
        .iter()
        .filter(|o| !matches!(o, StorageOutput::Unlink { .. }))
    {
        s.io_done(t(1), id_of(o), IoOutcome::Done).expect("io");
    }
    assert_eq!(
        s.resident_bytes(),
        resident,
        "a failed unlink stays counted"
    );
    assert!(s
        .segments()
        .iter()
        .any(|i| i.state == SegmentState::UnlinkPending));
    assert_eq!(s.oldest_unacked(), Some(Fsn(2)));
    assert_eq!(s.locate(Fsn(0)), None);
    assert_eq!(s.failure_counts().unlink, 1);
    // Retried with a backoff decided by the core, not by the adapter.
    let at = s.poll_timeout().expect("a retry is scheduled");
    assert!(at > t(1));
    s.handle_timeout(t(1));
    assert!(drain(&mut s).is_empty(), "no retry before its time");
    s.handle_timeout(at);
    let retry = drain(&mut s);
    assert!(matches!(retry.as_slice(), [StorageOutput::Unlink { .. }]));
    s.io_done(at, id_of(&retry[0]), IoOutcome::Done)
        .expect("io");
    assert_eq!(s.resident_bytes(), resident - SEG);
}

/// DESIGN §6 item 9: the oldest-FSN answer never counts a segment whose
/// unlink is pending (replay skips it).
#[test]
fn regression_item9_oldest_unacked_ignores_unlink_pending() {
    let mut s = open(cfg(8));
    for _ in 0..4 {
        append(&mut s, t(0), 10);
    }
    settle(&mut s, t(0));
    s.acknowledge(t(0), Fsn(2));
    let _unlink_not_completed = drain(&mut s);
    // Segment [0, 1] is unlink-pending; [2, 3] holds the oldest unacked.
    assert_eq!(s.oldest_unacked(), Some(Fsn(3)));
    let loc = s.locate(Fsn(3)).expect("unacked is locatable");
    assert_eq!(loc.offset, 42);
    s.acknowledge(t(0), Fsn(3));
    assert_eq!(s.oldest_unacked(), None);
}

/// S5 and DESIGN §6 item 11.
#[test]
fn s5_fully_acked_active_is_reclaimed() {
    let mut s = open(cfg(4));
    append(&mut s, t(0), 10);
    settle(&mut s, t(0));
    let old = s.segments()[0].name;
    s.acknowledge(t(1), Fsn(0));
    let outs = drain(&mut s);
    let install = outs
        .iter()
        .find_map(|o| match o {
            StorageOutput::InstallHeader { id, base_fsn, .. } => Some((*id, *base_fsn)),
            _ => None,
        })
        .expect("a fully acked active segment is replaced");
    assert_eq!(install.1, Fsn(1), "the new header says where FSNs continue");
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, StorageOutput::Unlink { .. })),
        "the old active is unlinked only after the new header is in place (S1)"
    );
    assert!(matches!(
        s.begin_append(t(1), 1),
        Ok(AppendDecision::Wait {
            reason: WaitReason::Reclaim,
            ..
        })
    ));
    s.io_done(t(1), install.0, IoOutcome::Done).expect("io");
    // ... and only once that header is durable (S1, host crash).
    assert!(!drain_pending_unlinks_before_sync(&mut s, t(1)).is_empty());
    let outs = drain(&mut s);
    assert!(outs.iter().any(|o| is_unlink_of(o, old)));
    // What a restart now finds: one header-only segment at base 1, no
    // acknowledged frame left to replay.
    assert_eq!(log_bases(&s), vec![(1, 0)]);
    assert_eq!(s.oldest_unacked(), None);
    for o in drain(&mut s) {
        s.io_done(t(1), id_of(&o), IoOutcome::Done).expect("io");
    }
    // Restart without any watermark (it is never fsynced): S8 seeds acked
    // from the lowest surviving base, and nothing acknowledged is replayed.
    let reopened = Storage::open(cfg(4), recovered_view(&s), t(2)).expect("reopen");
    assert_eq!(
        reopened.oldest_unacked(),
        None,
        "item 11: no replay of acked frames"
    );
    assert_eq!(reopened.next_fsn(), Fsn(1));
    let p = place(&mut s, t(1), 10);
    assert_eq!((p.fsn, p.offset, p.header), (Fsn(1), 24, None));
}

/// DESIGN §6 item 11: acknowledged frames of the active segment are not
/// replayed after a restart, even without a watermark.
#[test]
fn regression_item11_restart_does_not_replay_acked_active_frames() {
    let mut s = open(cfg(4));
    append(&mut s, t(0), 10);
    append(&mut s, t(0), 10);
    append(&mut s, t(0), 10);
    s.acknowledge(t(1), Fsn(2));
    settle(&mut s, t(1));
    let reopened = Storage::open(cfg(4), recovered_view(&s), t(2)).expect("reopen");
    assert_eq!(reopened.oldest_unacked(), None);
    assert_eq!(reopened.locate(Fsn(2)), None);
    assert_eq!(reopened.next_fsn(), Fsn(3));
}

/// DESIGN §6 item 12: a cap equal to one segment never deadlocks.
#[test]
fn regression_item12_cap_of_one_segment_never_deadlocks() {
    for reclaim_min_bytes in [0, u64::MAX] {
        let mut c = cfg(1);
        c.reclaim_min_bytes = reclaim_min_bytes;
        let mut s = open(c);
        for i in 0..20u64 {
            let now = t(i);
            settle(&mut s, now);
            let p = place(&mut s, now, 10);
            let fsn = s.commit_append(now, p, Ok(())).expect("commit").fsn;
            assert_eq!(fsn, Fsn(i));
            s.acknowledge(now, fsn);
            settle(&mut s, now);
            assert!(s.resident_bytes() <= 2 * SEG);
        }
    }
}

#[test]
fn s6_cap_waits_then_errors_with_link_state() {
    let mut s = open(cfg(2));
    for _ in 0..4 {
        append(&mut s, t(0), 10);
    }
    settle(&mut s, t(0));
    assert_eq!(s.resident_bytes(), 2 * SEG);
    assert!(s.resident_bytes() + s.slack_bytes() <= 3 * SEG);
    let until = match s.begin_append(t(10), 10) {
        Ok(AppendDecision::Wait {
            until,
            reason: WaitReason::Cap { resident, cap },
        }) => {
            assert_eq!((resident, cap), (2 * SEG, 2 * SEG));
            until
        }
        other => panic!("expected a cap wait, got {other:?}"),
    };
    assert_eq!(until, t(110));
    assert!(matches!(
        s.begin_append(t(50), 10),
        Ok(AppendDecision::Wait { until: u, .. }) if u == until
    ));
    s.set_link_state(t(60), LinkState::Up);
    let err = s.begin_append(until, 10).expect_err("deadline passed");
    let msg = err.to_string();
    assert!(msg.contains("acknowledging slowly"), "{msg}");
    assert!(msg.contains("cap"), "{msg}");
    assert_eq!(s.next_fsn(), Fsn(4));
    // A new wait starts a new deadline; this time the wire is down.
    assert!(matches!(
        s.begin_append(t(200), 10),
        Ok(AppendDecision::Wait { .. })
    ));
    s.set_link_state(
        t(200),
        LinkState::Reconnecting {
            attempts: 7,
            outage_started: t(150),
        },
    );
    let msg = s
        .begin_append(t(300), 10)
        .expect_err("deadline passed")
        .to_string();
    assert!(
        msg.contains("reconnecting") && msg.contains("7 attempt"),
        "{msg}"
    );
    assert!(msg.contains(&format!("{}", t(150).as_nanos())), "{msg}");
    assert_eq!(s.failure_counts().backpressure, 2);
}

#[test]
fn s6_wait_ends_when_ack_frees_space() {
    let mut s = open(cfg(2));
    for _ in 0..4 {
        append(&mut s, t(0), 10);
    }
    settle(&mut s, t(0));
    assert!(matches!(
        s.begin_append(t(1), 10),
        Ok(AppendDecision::Wait { .. })
    ));
    s.acknowledge(t(2), Fsn(1));
    settle(&mut s, t(2));
    assert_eq!(append(&mut s, t(2), 10), Fsn(4));
    assert!(s.resident_bytes() <= 2 * SEG);
}

/// S7 and DESIGN §6 item 1: a failed write never advances the FSN and the
/// caller's frame is placed again (in a fresh segment).
#[test]
fn s7_failed_write_does_not_advance_fsn() {
    let mut s = open(cfg(4));
    append(&mut s, t(0), 10);
    settle(&mut s, t(0));
    let p = place(&mut s, t(0), 10);
    assert_eq!(p.fsn, Fsn(1));
    let err = s
        .commit_append(t(0), p, Err(IoFailure::NoSpace))
        .expect_err("write failed");
    assert_eq!(
        err,
        AppendError::WriteFailed {
            fsn: Fsn(1),
            failure: IoFailure::NoSpace
        }
    );
    assert_eq!(s.next_fsn(), Fsn(1));
    assert_eq!(s.published_fsn(), Some(Fsn(0)));
    assert_eq!(s.locate(Fsn(1)), None);
    // Retry: the same FSN, in a fresh segment (never beside a partial frame).
    settle(&mut s, t(1));
    let retry = place(&mut s, t(1), 10);
    assert_eq!(retry.fsn, Fsn(1));
    assert_ne!(retry.gen, p.gen);
    assert_eq!(retry.header.map(|h| h.base_fsn), Some(Fsn(1)));
    s.commit_append(t(1), retry, Ok(())).expect("commit");
    assert_eq!(log_bases(&s), vec![(0, 1), (1, 1)]);
    // Trim still works.
    s.acknowledge(t(2), Fsn(0));
    assert!(settle_collect(&mut s, t(2))
        .iter()
        .any(|o| matches!(o, StorageOutput::Unlink { .. })));
}

#[test]
fn s7_failed_rotation_write_cleans_up_the_spare() {
    let mut s = open(cfg(4));
    append(&mut s, t(0), 10);
    append(&mut s, t(0), 10);
    settle(&mut s, t(0));
    let p = place(&mut s, t(0), 10);
    assert!(p.header.is_some());
    s.commit_append(t(0), p, Err(IoFailure::Io { os_code: None }))
        .expect_err("failed");
    assert_eq!(s.next_fsn(), Fsn(2));
    let outs = drain(&mut s);
    assert!(outs.iter().any(
        |o| matches!(o, StorageOutput::Unlink { name, .. } if *name == SegmentName::Gen(p.gen))
    ));
    assert!(s.provisioning_in_flight() <= 1);
    for o in outs {
        s.io_done(t(0), id_of(&o), IoOutcome::Done).expect("io");
    }
    assert_eq!(append(&mut s, t(1), 10), Fsn(2));
}

/// DESIGN §6 item 3: repeated spare-creation failures never pile up
/// outstanding creations (or their leftovers), are each accounted, back off,
/// and never advance the FSN.
#[test]
fn s7_failed_spare_creation_is_bounded_and_retried_with_backoff() {
    let mut c = cfg(16);
    c.spares = 2;
    let mut s = open(c);
    let mut now = t(0);
    let mut creates = 0;
    // What the adapter holds: failed attempts whose leftovers are not yet
    // unlinked. Counted from the outputs, independently of the engine.
    let mut leftovers = std::collections::BTreeSet::new();
    for round in 0..50 {
        for o in drain(&mut s) {
            let outcome = match &o {
                StorageOutput::CreateSegment { gen, .. } => {
                    creates += 1;
                    leftovers.insert(SegmentName::Gen(*gen));
                    IoOutcome::Failed(IoFailure::NoSpace)
                }
                // Under disk pressure the cleanup of a failed attempt fails
                // too, for a while.
                StorageOutput::Unlink { .. } if round % 4 != 3 => {
                    IoOutcome::Failed(IoFailure::Io { os_code: Some(5) })
                }
                StorageOutput::Unlink { name, .. } => {
                    leftovers.remove(name);
                    IoOutcome::Done
                }
                _ => IoOutcome::Done,
            };
            s.io_done(now, id_of(&o), outcome).expect("io");
        }
        assert!(leftovers.len() <= 2, "bounded leftovers: {leftovers:?}");
        assert!(s.provisioning_in_flight() <= 2, "bounded outstanding");
        assert!(s.outstanding_io() <= 2);
        now = s.poll_timeout().unwrap_or(now).max(now);
        s.handle_timeout(now);
    }
    assert_eq!(s.failure_counts().create, creates);

    assert!(creates >= 10, "retries continue: {creates}");
    assert!(now >= t(1_000), "with backoff: {now:?}");
    assert_eq!(s.next_fsn(), Fsn(0));
    match s.begin_append(now, 1) {
        Ok(AppendDecision::Wait {
            reason:
                WaitReason::NoSpare {
                    last_failure: Some(IoFailure::NoSpace),
                },
            ..
        }) => {}
        other => panic!("expected a spare wait, got {other:?}"),
    }
    let msg = s
        .begin_append(now.saturating_add(Duration::from_secs(1)), 1)
        .expect_err("deadline")
        .to_string();
    assert!(msg.contains("no space left"), "{msg}");
    // The disk recovers: every failed attempt is cleaned up, provisioning
    // resumes and appends work.
    for _ in 0..10 {
        for o in drain(&mut s) {
            if let StorageOutput::Unlink { name, .. } = &o {
                leftovers.remove(name);
            }
            s.io_done(now, id_of(&o), IoOutcome::Done).expect("io");
        }
        now = s.poll_timeout().unwrap_or(now).max(now);
        s.handle_timeout(now);
    }
    assert!(
        leftovers.is_empty(),
        "every failed attempt cleaned up: {leftovers:?}"
    );
    assert_eq!(append(&mut s, now, 1), Fsn(0));
}

fn flush_cfg(mode: DurabilityMode) -> StorageConfig {
    StorageConfig {
        durability: mode,
        append_deadline: Duration::from_secs(3600),
        ..cfg(8)
    }
}

fn syncs(outs: &[StorageOutput]) -> Vec<(IoId, SegmentName, u64, u64, bool)> {
    outs.iter()
        .filter_map(|o| match o {
            StorageOutput::Sync {
                id,
                name,
                from_offset,
                upto_offset,
                rewrite,
            } => Some((*id, *name, *from_offset, *upto_offset, *rewrite)),
            _ => None,
        })
        .collect()
}

/// Opens in flush durability with a spare ready and no output pending.
fn flush_storage(mode: DurabilityMode) -> Storage {
    let mut s = open(flush_cfg(mode));
    settle(&mut s, t(0));
    s
}

/// Appends, completing the provisioning the append triggered but leaving
/// any sync output queued.
fn append_raw(s: &mut Storage, len: u64) -> Fsn {
    let p = place(s, t(0), len);
    let c = s.commit_append(t(0), p, Ok(())).expect("commit");
    let mut keep = Vec::new();
    for o in drain(s) {
        match o {
            StorageOutput::Sync { .. } => keep.push(o),
            _ => s.io_done(t(0), id_of(&o), IoOutcome::Done).expect("io"),
        }
    }
    assert!(
        keep.is_empty(),
        "flush durability syncs at end_batch only: {keep:?}"
    );
    c.fsn
}

#[test]
fn l2_mid_frame_sync_rounds_down() {
    let mut s = flush_storage(DurabilityMode::Flush);
    append_raw(&mut s, 10); // 24..42
    append_raw(&mut s, 10); // 42..60
    let ticket = s.end_batch(t(0));
    let sy = syncs(&drain(&mut s));
    assert_eq!(sy.len(), 1);
    assert_eq!((sy[0].2, sy[0].3), (0, 60));
    s.io_done(t(0), sy[0].0, IoOutcome::Synced { upto_offset: 59 })
        .expect("io");
    assert_eq!(s.durable_fsn(), Some(Fsn(0)), "59 lies inside frame 1");
    assert!(!s.is_batch_done(ticket));
    // L4: the rest is re-requested by the core itself.
    let sy = syncs(&drain(&mut s));
    assert_eq!(sy.len(), 1);
    assert_eq!(sy[0].2, 59);
    s.io_done(t(0), sy[0].0, IoOutcome::Done).expect("io");
    assert_eq!(s.durable_fsn(), Some(Fsn(1)));
    assert!(s.is_batch_done(ticket));
}

#[test]
fn l2_sync_beyond_request_is_capped_at_request() {
    let mut s = flush_storage(DurabilityMode::Flush);
    append_raw(&mut s, 10);
    let ticket = s.end_batch(t(0));
    let sy = syncs(&drain(&mut s));
    append_raw(&mut s, 10); // written after the sync was requested
    s.io_done(t(0), sy[0].0, IoOutcome::Synced { upto_offset: 1000 })
        .expect("io");
    assert_eq!(s.durable_fsn(), Some(Fsn(0)));
    assert!(s.is_batch_done(ticket));
}

#[test]
fn l3_sync_during_open_batch_is_kept() {
    let mut s = flush_storage(DurabilityMode::Flush);
    append_raw(&mut s, 10);
    let first = s.end_batch(t(0));
    let sy = syncs(&drain(&mut s));
    // The next batch opens; the first sync fails and is retried after
    // backoff, now covering the open batch's frame too.
    append_raw(&mut s, 10);
    s.io_done(
        t(0),
        sy[0].0,
        IoOutcome::Failed(IoFailure::Io { os_code: Some(5) }),
    )
    .expect("io");
    let at = s.poll_timeout().expect("sync retry");
    s.handle_timeout(at);
    let sy = syncs(&drain(&mut s));
    assert_eq!(sy.len(), 1);
    assert_eq!(sy[0].3, 60, "the retry covers the open batch");
    s.io_done(at, sy[0].0, IoOutcome::Done).expect("io");
    assert!(s.is_batch_done(first));
    assert_eq!(
        s.durable_fsn(),
        Some(Fsn(1)),
        "kept while the batch is open"
    );
    // Closing the batch re-evaluates: already covered, no new sync.
    let second = s.end_batch(at);
    assert!(s.is_batch_done(second));
    assert!(syncs(&drain(&mut s)).is_empty());
    // A batch is done only when its last frame is durable.
    append_raw(&mut s, 10);
    let third = s.end_batch(at);
    assert!(!s.is_batch_done(third));
}

/// L4 and DESIGN §6 item 15: a quiet producer gets durable without any
/// further append, across segments and partial completions.
#[test]
fn l4_quiet_producer_gets_durable_without_more_appends() {
    let mut s = flush_storage(DurabilityMode::Flush);
    for _ in 0..3 {
        append_raw(&mut s, 10);
    }
    let ticket = s.end_batch(t(0));
    let sy = syncs(&drain(&mut s));
    assert_eq!(sy.len(), 2, "both segments of the batch are synced");
    // The later segment completes first; the earlier one only partly.
    s.io_done(t(0), sy[1].0, IoOutcome::Done).expect("io");
    s.io_done(t(0), sy[0].0, IoOutcome::Synced { upto_offset: 42 })
        .expect("io");
    assert_eq!(s.durable_fsn(), Some(Fsn(0)));
    assert!(!s.is_batch_done(ticket));
    for _ in 0..3 {
        let outs = drain(&mut s);
        for (id, ..) in syncs(&outs) {
            s.io_done(t(0), id, IoOutcome::Done).expect("io");
        }
    }
    assert!(s.is_batch_done(ticket), "no append was needed");
    assert_eq!(s.durable_fsn(), s.published_fsn());
    assert!(s.end_batch(t(0)).last_fsn.is_none(), "empty flush");
}

#[test]
fn l5_failed_sync_not_erased() {
    let mut s = flush_storage(DurabilityMode::Flush);
    append_raw(&mut s, 10);
    let first = s.end_batch(t(0));
    let sy = syncs(&drain(&mut s));
    s.io_done(t(0), sy[0].0, IoOutcome::Done).expect("io");
    assert!(s.is_batch_done(first));
    append_raw(&mut s, 10);
    let second = s.end_batch(t(0));
    let sy = syncs(&drain(&mut s));
    assert_eq!((sy[0].2, sy[0].3, sy[0].4), (42, 60, false));
    s.io_done(
        t(0),
        sy[0].0,
        IoOutcome::Failed(IoFailure::Io { os_code: Some(5) }),
    )
    .expect("io");
    assert_eq!(s.durable_fsn(), Some(Fsn(0)), "L1: not lowered, not raised");
    assert!(!s.is_batch_done(second));
    assert_eq!(s.failure_counts().sync, 1);
    // A stale completion of the failed request cannot erase the failure.
    assert_eq!(
        s.io_done(t(0), sy[0].0, IoOutcome::Done),
        Err(StorageError::UnknownIo(sy[0].0))
    );
    assert!(!s.is_batch_done(second));
    let at = s.poll_timeout().expect("re-sync scheduled");
    s.handle_timeout(at);
    let sy = syncs(&drain(&mut s));
    assert_eq!(
        (sy[0].2, sy[0].3, sy[0].4),
        (42, 60, true),
        "rewrite then sync"
    );
    // A success for less than the failed range does not cover it.
    s.io_done(at, sy[0].0, IoOutcome::Synced { upto_offset: 50 })
        .expect("io");
    assert!(!s.is_batch_done(second));
    let sy = syncs(&drain(&mut s));
    s.io_done(at, sy[0].0, IoOutcome::Done).expect("io");
    assert!(s.is_batch_done(second));
}

/// L5 without a rewrite per sync: once a rewrite covered everything written
/// when it was asked for, frames appended while it ran (written after the
/// failure, dirty on their own) do not keep the rewrite owed.
#[test]
fn l5_a_completed_rewrite_is_not_owed_again_for_later_frames() {
    let mut s = flush_storage(DurabilityMode::Flush);
    append_raw(&mut s, 10);
    s.end_batch(t(0));
    let sy = syncs(&drain(&mut s));
    let failure = IoOutcome::Failed(IoFailure::Io { os_code: Some(5) });
    s.io_done(t(0), sy[0].0, failure).expect("io");
    let at = s.poll_timeout().expect("re-sync scheduled");
    s.handle_timeout(at);
    let retry = syncs(&drain(&mut s));
    assert!(retry[0].4, "the retry rewrites");
    // Another batch lands while the rewrite is in flight.
    append_raw(&mut s, 10);
    let later = s.end_batch(at);
    s.io_done(at, retry[0].0, IoOutcome::Done).expect("io");
    let next = syncs(&drain(&mut s));
    assert_eq!(next.len(), 1, "the later batch is synced");
    assert!(
        !next[0].4,
        "no rewrite owed for frames written after the failure"
    );
    s.io_done(at, next[0].0, IoOutcome::Done).expect("io");
    assert!(s.is_batch_done(later));
}

#[test]
fn append_durability_tickets_each_frame_and_group_commits() {
    let mut s = flush_storage(DurabilityMode::Append);
    let p = place(&mut s, t(0), 10);
    let c0 = s.commit_append(t(0), p, Ok(())).expect("commit");
    let t0 = c0.ticket.expect("append mode tickets each frame");
    let sy = syncs(&drain(&mut s));
    assert_eq!(sy.len(), 1);
    let p = place(&mut s, t(0), 10);
    let t1 = s
        .commit_append(t(0), p, Ok(()))
        .expect("commit")
        .ticket
        .expect("ticket");
    assert!(
        syncs(&drain(&mut s)).is_empty(),
        "one sync per segment at a time"
    );
    s.io_done(t(0), sy[0].0, IoOutcome::Done).expect("io");
    assert!(s.is_batch_done(t0));
    assert!(!s.is_batch_done(t1));
    let sy = syncs(&drain(&mut s));
    assert_eq!(
        sy.len(),
        1,
        "the next frame is synced without another append"
    );
    s.io_done(t(0), sy[0].0, IoOutcome::Done).expect("io");
    assert!(s.is_batch_done(t1));
}

#[test]
fn memory_durability_batch_done_once_committed_and_no_syncs() {
    let mut s = flush_storage(DurabilityMode::Memory);
    append_raw(&mut s, 10);
    let ticket = s.end_batch(t(0));
    assert!(s.is_batch_done(ticket));
    assert!(syncs(&drain(&mut s)).is_empty());
}

#[test]
fn ack_watermark_is_debounced_and_files_only() {
    let mut s = open(cfg(8));
    for _ in 0..4 {
        append(&mut s, t(0), 10);
    }
    settle(&mut s, t(0));
    s.acknowledge(t(0), Fsn(0));
    let wm: Vec<_> = drain(&mut s)
        .into_iter()
        .filter(|o| matches!(o, StorageOutput::PersistAckWatermark { .. }))
        .collect();
    assert!(matches!(
        wm.as_slice(),
        [StorageOutput::PersistAckWatermark { fsn: Fsn(0), .. }]
    ));
    s.acknowledge(t(0), Fsn(1));
    s.acknowledge(t(0), Fsn(2));
    assert!(!drain(&mut s)
        .iter()
        .any(|o| matches!(o, StorageOutput::PersistAckWatermark { .. })));
    s.io_done(t(0), id_of(&wm[0]), IoOutcome::Done).expect("io");
    assert!(drain(&mut s)
        .iter()
        .any(|o| matches!(o, StorageOutput::PersistAckWatermark { fsn: Fsn(2), .. })));

    let mut m = open(StorageConfig {
        backing: Backing::Memory,
        ..cfg(8)
    });
    append(&mut m, t(0), 10);
    m.acknowledge(t(0), Fsn(0));
    assert!(!drain(&mut m).iter().any(|o| matches!(
        o,
        StorageOutput::PersistAckWatermark { .. } | StorageOutput::Sync { .. }
    )));
}

#[test]
fn acknowledge_never_goes_back_and_is_clamped_to_published() {
    let mut s = open(cfg(8));
    s.acknowledge(t(0), Fsn(3));
    assert_eq!(s.acked_fsn(), None, "nothing published yet");
    for _ in 0..3 {
        append(&mut s, t(0), 10);
    }
    s.acknowledge(t(0), Fsn(1));
    s.acknowledge(t(0), Fsn(0));
    assert_eq!(s.acked_fsn(), Some(Fsn(1)));
    s.acknowledge(t(0), Fsn(99));
    assert_eq!(s.acked_fsn(), Some(Fsn(2)));
}

#[test]
fn protocol_misuse_is_a_typed_error() {
    let mut s = open(cfg(8));
    assert_eq!(
        s.io_done(t(0), IoId(999), IoOutcome::Done),
        Err(StorageError::UnknownIo(IoId(999)))
    );
    let mut outs = drain(&mut s);
    let create = outs.remove(0);
    assert!(matches!(
        s.io_done(t(0), id_of(&create), IoOutcome::Synced { upto_offset: 1 }),
        Err(StorageError::MismatchedOutcome { .. })
    ));
    s.io_done(t(0), id_of(&create), IoOutcome::Done)
        .expect("io");
    for o in outs {
        // The open-time watermark rewrite (S8).
        s.io_done(t(0), id_of(&o), IoOutcome::Done).expect("io");
    }
    let p = place(&mut s, t(0), 1);
    assert_eq!(
        s.begin_append(t(0), 1),
        Err(AppendError::AppendInProgress { fsn: Fsn(0) })
    );
    let mut other = p;
    other.offset += 1;
    assert_eq!(
        s.commit_append(t(0), other, Ok(())),
        Err(AppendError::UnknownPlacement)
    );
    s.commit_append(t(0), p, Ok(())).expect("commit");
}

fn header_syncs(outs: &[StorageOutput]) -> Vec<(IoId, SegmentName, bool)> {
    outs.iter()
        .filter_map(|o| match o {
            StorageOutput::Sync {
                id,
                name,
                from_offset: 0,
                upto_offset,
                rewrite,
            } if *upto_offset >= 24 => Some((*id, *name, *rewrite)),
            _ => None,
        })
        .collect()
}

#[test]
fn s1_unlink_waits_for_a_durable_successor_header() {
    // Segments hold two 10-byte frames: A = [0, 1], B = [2] (rotation wrote
    // B's header through the placement, never synced in memory durability).
    let mut s = open(cfg(8));
    for _ in 0..3 {
        append(&mut s, t(0), 10);
    }
    settle(&mut s, t(0));
    let [a, b] = [s.segments()[0].name, s.segments()[1].name];
    let resident = s.resident_bytes();
    s.acknowledge(t(1), Fsn(1));
    let outs = drain(&mut s);
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, StorageOutput::Unlink { .. })),
        "S1: A's header is the only durable record of where FSNs continue"
    );
    let sync = header_syncs(&outs);
    assert_eq!(sync.len(), 1, "one header sync of the successor: {outs:?}");
    assert_eq!((sync[0].1, sync[0].2), (b, false));
    // A failed header sync keeps the unlink deferred and A counted (S4),
    // and is retried with a rewrite after a backoff (L5).
    s.io_done(
        t(1),
        sync[0].0,
        IoOutcome::Failed(IoFailure::Io { os_code: Some(5) }),
    )
    .expect("io");
    for o in outs.iter().filter(|o| id_of(o) != sync[0].0) {
        s.io_done(t(1), id_of(o), IoOutcome::Done).expect("io");
    }
    assert_eq!(s.failure_counts().sync, 1);
    assert!(drain(&mut s).is_empty(), "no retry before its backoff");
    assert_eq!(s.resident_bytes(), resident, "A stays counted");
    assert_eq!(s.oldest_unacked(), Some(Fsn(2)));
    let at = s.poll_timeout().expect("the header sync is retried");
    assert!(at > t(1));
    s.handle_timeout(at);
    let retry = drain(&mut s);
    let sync = header_syncs(&retry);
    assert_eq!(sync.len(), 1, "{retry:?}");
    assert_eq!((sync[0].1, sync[0].2), (b, true), "L5: rewrite, then sync");
    assert!(!retry.iter().any(|o| is_unlink_of(o, a)));
    s.io_done(at, sync[0].0, IoOutcome::Done).expect("io");
    let outs = settle_collect(&mut s, at);
    assert!(outs.iter().any(|o| is_unlink_of(o, a)));
    assert_eq!(s.resident_bytes(), resident - SEG);

    // Memory backing has nothing to survive a host crash: no sync, unlink
    // (free) at once.
    let mut m = open(StorageConfig {
        backing: Backing::Memory,
        ..cfg(8)
    });
    for _ in 0..3 {
        append(&mut m, t(0), 10);
    }
    settle(&mut m, t(0));
    let first = m.segments()[0].name;
    m.acknowledge(t(1), Fsn(1));
    let outs = drain(&mut m);
    assert!(header_syncs(&outs).is_empty());
    assert!(outs.iter().any(|o| is_unlink_of(o, first)));
}

#[test]
fn s8_header_sync_targets_the_oldest_log_segment() {
    // A = [0, 1], B = [2, 3], C = [4]. Acknowledging A must make B's
    // header durable, not C's: with only C's header surviving a host crash,
    // recovery would seed acked = 3 and count the lost B frames acknowledged.
    let mut s = open(cfg(8));
    for _ in 0..5 {
        append(&mut s, t(0), 10);
    }
    settle(&mut s, t(0));
    let b = s.segments()[1].name;
    s.acknowledge(t(1), Fsn(1));
    let outs = drain(&mut s);
    let sync = header_syncs(&outs);
    assert_eq!(sync.len(), 1, "{outs:?}");
    assert_eq!(sync[0].1, b);
}

fn slot_at_10(acked: Option<Fsn>) -> RecoveredSlot {
    RecoveredSlot {
        segments: vec![RecoveredSegment {
            gen: Some(SegmentGen(7)),
            base_fsn: Fsn(10),
            frame_offsets: vec![24],
            append_offset: 42,
            file_size: SEG,
            torn_tail_bytes: 0,
        }],
        leftover_spares: vec![],
        next_fsn: Fsn(11),
        acked,
        next_gen: SegmentGen(8),
    }
}

#[test]
fn s8_open_rewrites_a_stale_watermark_before_appending() {
    // Nothing survived (a host crash in memory durability): FSNs restart at
    // 0, so whatever `.ack-watermark` says belongs to frames that are gone.
    let mut s = Storage::open(cfg(4), RecoveredSlot::empty(), t(0)).expect("open");
    let outs = drain(&mut s);
    let remove: Vec<IoId> = outs
        .iter()
        // Durable (a directory fsync): a removal a host crash undoes would
        // bring the stale watermark back over reused FSNs.
        .filter(|o| matches!(o, StorageOutput::RemoveAckWatermark { durable: true, .. }))
        .map(id_of)
        .collect();
    assert_eq!(remove.len(), 1, "{outs:?}");
    for o in outs.iter().filter(|o| id_of(o) != remove[0]) {
        s.io_done(t(0), id_of(o), IoOutcome::Done).expect("io");
    }
    assert!(matches!(
        s.begin_append(t(0), 10),
        Ok(AppendDecision::Wait {
            reason: WaitReason::Opening { last_failure: None },
            ..
        })
    ));
    // A failure is counted, surfaces in the wait reason and is retried.
    let failure = IoFailure::Io { os_code: Some(13) };
    s.io_done(t(0), remove[0], IoOutcome::Failed(failure))
        .expect("io");
    assert_eq!(s.failure_counts().watermark, 1);
    assert!(drain(&mut s).is_empty(), "no retry before its backoff");
    assert!(matches!(
        s.begin_append(t(0), 10),
        Ok(AppendDecision::Wait {
            reason: WaitReason::Opening {
                last_failure: Some(f)
            },
            ..
        }) if f == failure
    ));
    let at = s.poll_timeout().expect("the rewrite is retried");
    assert!(at > t(0));
    s.handle_timeout(at);
    let retry = drain(&mut s);
    assert!(
        matches!(
            retry.as_slice(),
            [StorageOutput::RemoveAckWatermark { durable: true, .. }]
        ),
        "{retry:?}"
    );
    s.io_done(at, id_of(&retry[0]), IoOutcome::Done)
        .expect("io");
    let p = place(&mut s, at, 10);
    assert_eq!(p.fsn, Fsn(0));

    // A recovered acknowledgement is written back as is and fsynced, even if
    // the file already held it (it may hold a higher, stale value: the
    // simulator's seed 135544 lost an unsynced rewrite in a second host
    // crash and the stale value skipped reused FSNs); later
    // acknowledgements are persisted above it, without an fsync.
    let mut s = Storage::open(cfg(4), slot_at_10(Some(Fsn(9))), t(0)).expect("open");
    let outs = drain(&mut s);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            StorageOutput::PersistAckWatermark {
                fsn: Fsn(9),
                durable: true,
                ..
            }
        )),
        "{outs:?}"
    );
    assert!(matches!(
        s.begin_append(t(0), 10),
        Ok(AppendDecision::Wait {
            reason: WaitReason::Opening { .. },
            ..
        })
    ));
    for o in &outs {
        s.io_done(t(0), id_of(o), IoOutcome::Done).expect("io");
    }
    settle(&mut s, t(0));
    s.acknowledge(t(1), Fsn(10));
    assert!(drain(&mut s).iter().any(|o| matches!(
        o,
        StorageOutput::PersistAckWatermark {
            fsn: Fsn(10),
            durable: false,
            ..
        }
    )));

    // Memory backing has no watermark: nothing to rewrite, no wait.
    let mut m = open(StorageConfig {
        backing: Backing::Memory,
        ..cfg(4)
    });
    let outs = drain(&mut m);
    assert!(!outs.iter().any(|o| matches!(
        o,
        StorageOutput::RemoveAckWatermark { .. } | StorageOutput::PersistAckWatermark { .. }
    )));
    for o in &outs {
        m.io_done(t(0), id_of(o), IoOutcome::Done).expect("io");
    }
    assert_eq!(place(&mut m, t(0), 10).fsn, Fsn(0));
}

#[test]
fn l4_recovered_frames_are_synced_at_open_in_flush_durability() {
    // Frame 10 came from an earlier life; a crash does not say whether it
    // reached stable storage. A quiet producer still gets durable ==
    // published without appending (L4).
    let mut s = Storage::open(
        flush_cfg(DurabilityMode::Flush),
        slot_at_10(Some(Fsn(9))),
        t(0),
    )
    .expect("open");
    assert_eq!(s.durable_fsn(), Some(Fsn(9)));
    let outs = drain(&mut s);
    let sync = syncs(&outs);
    assert_eq!(sync.len(), 1, "{outs:?}");
    assert_eq!(
        (sync[0].1, sync[0].2, sync[0].3),
        (SegmentName::Gen(SegmentGen(7)), 0, 42)
    );
    for o in &outs {
        s.io_done(t(0), id_of(o), IoOutcome::Done).expect("io");
    }
    assert_eq!(s.durable_fsn(), Some(Fsn(10)));

    // Memory durability syncs only the header (S1), never the frames.
    let mut m = Storage::open(cfg(4), slot_at_10(Some(Fsn(9))), t(0)).expect("open");
    let outs = drain(&mut m);
    let sync = syncs(&outs);
    assert_eq!(sync.len(), 1, "{outs:?}");
    assert_eq!((sync[0].2, sync[0].3), (0, 24));
}
