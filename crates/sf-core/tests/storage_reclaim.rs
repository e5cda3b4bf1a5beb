//! The S5 reclaim policy of file-backed slots at its default threshold
//! (half a segment), through the real segment codec, `.ack-watermark`
//! codec and recovery planner.
//!
//! A small in-memory slot directory answers the storage engine's outputs
//! with byte images. A restart hands those images to `recovery::plan_reads`
//! → `scan_segment` → `plan` and reopens the engine from the plan, the way
//! the adapter does. The rules held here:
//!
//! * S5: a fully acknowledged active segment holding at least half a
//!   segment of frame bytes is replaced by a fresh one; a smaller one stays.
//! * S5 / S8, DESIGN §6 item 11: a restart replays no acknowledged frame of
//!   a small active segment that was not reclaimed, because the watermark
//!   records the acknowledgement (process restart and clean close).
//! * S6, DESIGN §6 item 12: with a cap of one or two segments, a producer
//!   facing a fully acknowledged, less-than-half-full active segment never
//!   waits; a wait on unacknowledged frames ends with the acknowledgement,
//!   not at the deadline.

use std::collections::BTreeMap;
use std::time::Duration;

use sf_core::durability::DurabilityMode;
use sf_core::recovery::{self, ListingEntry, RecoveredSlot, SegmentRead, WatermarkRead};
use sf_core::ring::{SegmentName, SegmentState};
use sf_core::segment::{read_frame, write_frame, SegmentHeader};
use sf_core::storage::{
    AppendDecision, Backing, IoOutcome, Placement, Storage, StorageConfig, StorageOutput,
    WaitReason, DEFAULT_SEGMENT_BYTES,
};
use sf_core::watermark::encode_watermark;
use sf_core::{Fsn, Instant};

/// Segment size: a 24-byte header and room for three 32-byte frames.
const SEG: u64 = 128;
/// Payload of a small frame: 8 + 24 = 32 frame bytes, a quarter segment.
const SMALL: usize = 24;
/// Payload of a large frame: 8 + 80 = 88 frame bytes. It does not fit
/// beside a small frame (128 − 24 − 32 = 72 left), so it rotates.
const LARGE: usize = 80;
/// Where the first frame of a segment starts.
const HEADER: u64 = 24;

const MS: u64 = 1_000_000;

fn t(ms: u64) -> Instant {
    Instant(ms * MS)
}

/// File-backed defaults at `SEG`-byte segments (so the default threshold
/// is `SEG / 2`), a cap of `cap_segments` and a short deadline.
fn files(cap_segments: u64, durability: DurabilityMode) -> StorageConfig {
    StorageConfig {
        max_total_bytes: SEG * cap_segments,
        append_deadline: Duration::from_millis(100),
        durability,
        ..StorageConfig::files().with_segment_bytes(SEG)
    }
}

/// A slot directory: segment images with how far each is synced, and the
/// watermark file.
#[derive(Default, Clone)]
struct Slot {
    files: BTreeMap<String, (Vec<u8>, usize)>,
    watermark: Option<[u8; 16]>,
    installs: usize,
    /// When set, unlinks are held back until [`Slot::release_unlinks`], so
    /// a trimmed segment stays resident (and counted under the cap).
    hold_unlinks: bool,
    held: Vec<StorageOutput>,
}

impl Slot {
    fn image(&mut self, name: SegmentName) -> &mut Vec<u8> {
        &mut self
            .files
            .get_mut(&name.file_name())
            .unwrap_or_else(|| panic!("no file {}", name.file_name()))
            .0
    }

    /// Answers every output the engine emits, successfully, until it is
    /// quiet.
    fn pump(&mut self, s: &mut Storage, now: Instant) {
        while let Some(out) = s.poll_output() {
            self.answer(s, now, out);
        }
    }

    /// Completes the unlinks held back so far and answers what follows
    /// (the engine unlinks one trimmed segment at a time, so the next one's
    /// unlink is emitted, and held, only now).
    fn release_unlinks(&mut self, s: &mut Storage, now: Instant) {
        for out in std::mem::take(&mut self.held) {
            self.perform(s, now, out);
        }
        self.pump(s, now);
    }

    /// Answers one output, or holds it back if it is an unlink and
    /// `hold_unlinks` is set.
    fn answer(&mut self, s: &mut Storage, now: Instant, out: StorageOutput) {
        if self.hold_unlinks && matches!(out, StorageOutput::Unlink { .. }) {
            self.held.push(out);
        } else {
            self.perform(s, now, out);
        }
    }

    /// Performs one output on the directory and reports its success.
    fn perform(&mut self, s: &mut Storage, now: Instant, out: StorageOutput) {
        let (id, outcome) = match out {
            StorageOutput::CreateSegment { id, gen, size } => {
                let len = usize::try_from(size).expect("small segment");
                self.files.insert(gen.file_name(), (vec![0; len], 0));
                (id, IoOutcome::Done)
            }
            StorageOutput::InstallHeader { id, gen, base_fsn } => {
                self.installs += 1;
                let h = SegmentHeader::new(base_fsn, 0).expect("header").encode();
                self.image(SegmentName::Gen(gen))[..h.len()].copy_from_slice(&h);
                (id, IoOutcome::Done)
            }
            StorageOutput::Sync {
                id,
                name,
                upto_offset,
                ..
            } => {
                let f = self
                    .files
                    .get_mut(&name.file_name())
                    .expect("synced file exists");
                f.1 = f.1.max(usize::try_from(upto_offset).expect("small"));
                (id, IoOutcome::Synced { upto_offset })
            }
            StorageOutput::Unlink { id, name } => {
                self.files.remove(&name.file_name());
                (id, IoOutcome::Done)
            }
            StorageOutput::PersistAckWatermark { id, fsn, .. } => {
                self.watermark = Some(encode_watermark(fsn).expect("watermark"));
                (id, IoOutcome::Done)
            }
            StorageOutput::RemoveAckWatermark { id, .. } => {
                self.watermark = None;
                (id, IoOutcome::Done)
            }
        };
        s.io_done(now, id, outcome).expect("io_done");
    }

    /// What a host crash leaves: the synced prefix of each segment and no
    /// watermark (the adapter writes it without a sync on every advance).
    fn after_host_crash(&self) -> Slot {
        let files = self
            .files
            .iter()
            .map(|(name, (bytes, synced))| {
                let mut bytes = bytes.clone();
                bytes[*synced..].fill(0);
                (name.clone(), (bytes, *synced))
            })
            .collect();
        Slot {
            files,
            ..Slot::default()
        }
    }

    /// The recovery planner's view of this directory (S8).
    fn recover(&self) -> RecoveredSlot {
        let listing = self
            .files
            .iter()
            .map(|(name, (bytes, _))| ListingEntry::new(name.clone(), bytes.len() as u64))
            .collect();
        let reads_plan = recovery::plan_reads(Ok(listing)).expect("plan_reads");
        let reads = reads_plan
            .segment_files()
            .iter()
            .map(|sf| SegmentRead::from_image(&self.files[&sf.name].0))
            .collect();
        let wm = match self.watermark {
            Some(b) => WatermarkRead::Bytes(b.to_vec()),
            None => WatermarkRead::Absent,
        };
        recovery::plan(reads_plan, reads, wm)
            .expect("recovery opens the slot")
            .slot
    }

    /// Restarts the engine over this directory (a new life of the slot)
    /// and completes its open-time I/O.
    fn reopen(&mut self, config: StorageConfig, now: Instant) -> Storage {
        let mut s = Storage::open(config, self.recover(), now).expect("reopen");
        self.pump(&mut s, now);
        s
    }
}

fn payload(fsn: Fsn, len: usize) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend_from_slice(&fsn.get().to_le_bytes());
    p.resize(len, fsn.get() as u8);
    p
}

/// Writes the placed frame into the slot and commits it.
fn write_and_commit(s: &mut Storage, slot: &mut Slot, now: Instant, p: Placement) -> Fsn {
    let len = usize::try_from(p.payload_len).expect("small");
    let image = slot.image(SegmentName::Gen(p.gen));
    if let Some(h) = p.header {
        let h = SegmentHeader::new(h.base_fsn, 0).expect("header").encode();
        image[..h.len()].copy_from_slice(&h);
    }
    let offset = usize::try_from(p.offset).expect("small");
    write_frame(image, offset, &payload(p.fsn, len)).expect("frame fits where it was placed");
    let fsn = s.commit_append(now, p, Ok(())).expect("commit").fsn;
    slot.pump(s, now);
    fsn
}

/// Appends a frame with every I/O completing at once; a wait is a failure.
fn append(s: &mut Storage, slot: &mut Slot, now: Instant, len: usize) -> Fsn {
    slot.pump(s, now);
    match s.begin_append(now, len as u64).expect("begin_append") {
        AppendDecision::Place(p) => write_and_commit(s, slot, now, p),
        AppendDecision::Wait { reason, .. } => panic!("unexpected wait: {reason}"),
    }
}

/// The active segment: (base FSN, frames, frame bytes).
fn active(s: &Storage) -> (u64, u64, u64) {
    let a = s
        .segments()
        .into_iter()
        .find(|i| i.state == SegmentState::Active)
        .expect("an active segment");
    (
        a.base_fsn.expect("log segment").get(),
        a.frame_count,
        a.append_offset - HEADER,
    )
}

fn unlink_pending(s: &Storage) -> usize {
    s.segments()
        .iter()
        .filter(|i| i.state == SegmentState::UnlinkPending)
        .count()
}

fn installs_in(outs: &[StorageOutput]) -> Vec<Fsn> {
    outs.iter()
        .filter_map(|o| match o {
            StorageOutput::InstallHeader { base_fsn, .. } => Some(*base_fsn),
            _ => None,
        })
        .collect()
}

#[test]
fn s5_default_threshold_is_half_a_segment_for_files_and_never_for_memory() {
    assert_eq!(
        StorageConfig::files().reclaim_min_bytes,
        DEFAULT_SEGMENT_BYTES / 2
    );
    let files = StorageConfig::files().with_segment_bytes(1 << 20);
    assert_eq!(
        (files.segment_bytes, files.reclaim_min_bytes),
        (1 << 20, 512 << 10)
    );
    assert_eq!(StorageConfig::memory().reclaim_min_bytes, u64::MAX);
    let memory = StorageConfig::memory().with_segment_bytes(1 << 20);
    assert_eq!(
        (memory.backing, memory.reclaim_min_bytes),
        (Backing::Memory, u64::MAX)
    );
    assert!(files.validate().is_ok() && memory.validate().is_ok());
}

/// S5 at the default threshold: an acknowledged active segment under half
/// full stays (no fresh segment per catch-up); at exactly half it is
/// replaced by a segment whose header carries the next FSN, and a restart
/// then finds nothing to replay even without a watermark.
#[test]
fn s5_half_full_acked_active_is_reclaimed() {
    let config = files(4, DurabilityMode::Memory);
    let mut slot = Slot::default();
    let mut s = Storage::open(config.clone(), RecoveredSlot::empty(), t(0)).expect("open");
    slot.pump(&mut s, t(0));

    // A quarter segment, acknowledged: kept.
    let f0 = append(&mut s, &mut slot, t(1), SMALL);
    s.acknowledge(t(1), f0);
    let outs: Vec<StorageOutput> = std::iter::from_fn(|| s.poll_output()).collect();
    assert_eq!(
        installs_in(&outs),
        vec![],
        "below half a segment: no reclaim"
    );
    for o in outs {
        slot.answer(&mut s, t(1), o);
    }
    slot.pump(&mut s, t(1));
    assert_eq!(active(&s), (0, 1, 32), "the acknowledged frame stays");
    assert_eq!(slot.installs, 0);

    // The next frame goes in beside it, without waiting, and brings the
    // segment to exactly half: acknowledging it reclaims the segment.
    let p = match s.begin_append(t(2), SMALL as u64).expect("begin") {
        AppendDecision::Place(p) => p,
        AppendDecision::Wait { reason, .. } => panic!("waited: {reason}"),
    };
    assert_eq!((p.fsn, p.offset, p.header), (Fsn(1), HEADER + 32, None));
    let f1 = write_and_commit(&mut s, &mut slot, t(2), p);
    assert_eq!(active(&s), (0, 2, SEG / 2));
    s.acknowledge(t(2), f1);
    let outs: Vec<StorageOutput> = std::iter::from_fn(|| s.poll_output()).collect();
    assert_eq!(
        installs_in(&outs),
        vec![Fsn(2)],
        "half a segment acknowledged: replaced by a header at the next FSN"
    );
    assert!(matches!(
        s.begin_append(t(2), SMALL as u64),
        Ok(AppendDecision::Wait {
            reason: WaitReason::Reclaim,
            ..
        })
    ));
    for o in outs {
        slot.answer(&mut s, t(2), o);
    }
    slot.pump(&mut s, t(2));
    assert_eq!(active(&s), (2, 0, 0), "only the fresh header is left");
    assert_eq!(slot.files.len(), 2, "the fresh segment and a new spare");

    // A restart that lost the watermark still replays nothing: the
    // surviving header says everything below FSN 2 is acknowledged.
    slot.watermark = None;
    let reopened = slot.reopen(config, t(3));
    assert_eq!(reopened.acked_fsn(), Some(f1));
    assert_eq!(reopened.oldest_unacked(), None);
    assert_eq!(reopened.next_fsn(), Fsn(2));
}

/// How the slot's life ends before the restart.
#[derive(Debug, Clone, Copy)]
enum End {
    /// The process dies right after the acknowledgement was handled.
    ProcessCrash,
    /// A clean close: the sender waits until `.ack-watermark` is settled,
    /// releases the slot, and the next life closes cleanly again without
    /// appending before a third life opens it.
    CleanClose,
}

/// DESIGN §6 item 11 at the default threshold: the acknowledged frames of
/// an active segment too small to be reclaimed are not replayed after a
/// restart, because recovery starts after the watermark (S8). Covers a
/// fresh slot (one segment) and one whose older segment was trimmed after
/// a rotation, so the planner's `lowest base − 1` is below the
/// acknowledgement and only the watermark holds it.
#[test]
fn s5_item11_restart_after_acked_small_active_replays_nothing() {
    for end in [End::ProcessCrash, End::CleanClose] {
        // 1 frame: the active segment is the only one. 4 frames: three
        // fill the first segment, the fourth rotates into a second one.
        for frames in [1usize, 4] {
            let config = files(8, DurabilityMode::Memory);
            let mut slot = Slot::default();
            let mut s = Storage::open(config.clone(), RecoveredSlot::empty(), t(0)).expect("open");
            slot.pump(&mut s, t(0));
            let mut last = Fsn::ZERO;
            for i in 0..frames {
                last = append(&mut s, &mut slot, t(1), SMALL);
                assert_eq!(last, Fsn(i as u64), "S1");
            }
            s.acknowledge(t(2), last);
            slot.pump(&mut s, t(2));
            let ctx = format!("{end:?}, {frames} frames");
            assert_eq!(
                active(&s),
                (last.get(), 1, 32),
                "{ctx}: the acknowledged active segment is below half and stays"
            );
            assert_eq!(slot.installs, 0, "{ctx}: no reclaim happened");
            assert!(
                slot.files
                    .values()
                    .any(|(img, _)| read_frame(img, HEADER).is_ok()),
                "{ctx}: the acknowledged frame is still on disk"
            );
            let mut s = match end {
                End::ProcessCrash => slot.reopen(config.clone(), t(3)),
                End::CleanClose => {
                    assert!(s.ack_watermark_settled(), "{ctx}: close can release");
                    drop(s);
                    let second = slot.reopen(config.clone(), t(3));
                    assert!(second.ack_watermark_settled(), "{ctx}: second close");
                    assert_eq!(second.oldest_unacked(), None, "{ctx}: second life");
                    drop(second);
                    slot.reopen(config.clone(), t(4))
                }
            };
            assert_eq!(
                s.acked_fsn(),
                Some(last),
                "{ctx}: S8 acked from the watermark"
            );
            assert_eq!(
                s.oldest_unacked(),
                None,
                "{ctx}: item 11: an acknowledged frame would be replayed"
            );
            assert_eq!(s.locate(last), None, "{ctx}: nothing to replay");
            assert_eq!(s.next_fsn(), last.next(), "{ctx}: S1");
            // The new life appends after it, beside the old frame.
            let next = append(&mut s, &mut slot, t(5), SMALL);
            assert_eq!(next, last.next(), "{ctx}: S1");
            assert_eq!(s.oldest_unacked(), Some(next), "{ctx}");
        }
    }
}

/// The price of not reclaiming a small acknowledged active segment,
/// bounded: a host crash that loses the unsynced watermark replays its
/// acknowledged frames (duplicates), and never skips or loses a frame that
/// a flush made durable and the server did not acknowledge (S8, L1).
#[test]
fn s8_host_crash_losing_the_watermark_replays_acked_frames_never_skips_one() {
    let config = files(8, DurabilityMode::Flush);
    let mut slot = Slot::default();
    let mut s = Storage::open(config.clone(), RecoveredSlot::empty(), t(0)).expect("open");
    slot.pump(&mut s, t(0));
    for _ in 0..4 {
        append(&mut s, &mut slot, t(1), SMALL);
    }
    // Acknowledge the fourth frame (the first of the active segment) only,
    // then one more frame that a flush makes durable.
    s.acknowledge(t(2), Fsn(3));
    let unacked = append(&mut s, &mut slot, t(2), SMALL);
    let ticket = s.end_batch(t(2));
    slot.pump(&mut s, t(2));
    assert!(s.is_batch_done(ticket));
    let mut crashed = slot.after_host_crash();
    let reopened = crashed.reopen(config, t(3));
    assert_eq!(
        reopened.acked_fsn(),
        Some(Fsn(2)),
        "S8: without the watermark, acked is the lowest base − 1"
    );
    assert_eq!(
        reopened.oldest_unacked(),
        Some(Fsn(3)),
        "the acknowledged frame 3 is replayed (a duplicate)"
    );
    assert!(
        reopened.locate(unacked).is_some(),
        "L1: the flushed frame survives"
    );
}

/// Drives a producer under a cap of `cap_segments` segments with the
/// default threshold and checks S6 / item 12: with everything acknowledged,
/// `begin_append` places at once, also when the frame must rotate out of a
/// fully acknowledged active segment under half full (which the threshold
/// keeps instead of reclaiming); and a wait on unacknowledged frames at the
/// cap ends at the acknowledgement, at the same instant, never at the
/// deadline. With `hold_unlinks` the segment the previous rotation trimmed
/// is still resident at the next append (its unlink is not done), which
/// puts a cap of two segments exactly at the cap. Returns (rotations out of
/// an acknowledged small active segment, cap waits).
fn cap_never_waits_on_an_acked_active(cap_segments: u64, hold_unlinks: bool) -> (usize, usize) {
    let config = files(cap_segments, DurabilityMode::Memory);
    let mut slot = Slot {
        hold_unlinks,
        ..Slot::default()
    };
    let mut s = Storage::open(config.clone(), RecoveredSlot::empty(), t(0)).expect("open");
    slot.pump(&mut s, t(0));
    let (mut small_rotations, mut cap_waits) = (0, 0);
    for i in 0..60u64 {
        let now = t(i);
        slot.pump(&mut s, now);
        let len = if i % 2 == 0 { SMALL } else { LARGE };
        // Every fourth frame finds the previous one not yet acknowledged.
        let ack_now = i % 4 != 3;
        let everything_acked = s.acked_fsn() == s.published_fsn();
        let before = s.published_fsn().map(|_| active(&s));
        let p = match s.begin_append(now, len as u64) {
            Ok(AppendDecision::Place(p)) => p,
            Ok(AppendDecision::Wait { reason, until }) => {
                assert!(
                    !everything_acked,
                    "S6/item 12 (cap {cap_segments}): frame {i} waits ({reason}) \
                     although everything is acknowledged"
                );
                assert!(matches!(reason, WaitReason::Cap { .. }), "{reason}");
                assert!(until > now);
                cap_waits += 1;
                let published = s.published_fsn().expect("something to acknowledge");
                s.acknowledge(now, published);
                slot.pump(&mut s, now);
                match s.begin_append(now, len as u64) {
                    Ok(AppendDecision::Place(p)) => p,
                    other => panic!(
                        "S6/item 12 (cap {cap_segments}): frame {i} still waits after \
                         the acknowledgement: {other:?}"
                    ),
                }
            }
            Err(e) => panic!("S6/item 12 (cap {cap_segments}): frame {i}: {e}"),
        };
        if let (Some((_, frames, bytes)), Some(_)) = (before, p.header) {
            if frames > 0 && bytes < SEG / 2 && s.acked_fsn() == s.published_fsn() {
                small_rotations += 1;
            }
        }
        let fsn = write_and_commit(&mut s, &mut slot, now, p);
        assert_eq!(fsn, Fsn(i), "S1");
        if ack_now {
            s.acknowledge(now, fsn);
            slot.pump(&mut s, now);
        }
        // Earlier trimmed segments are unlinked now; the newest one stays
        // resident, its unlink pending, into the next append.
        while unlink_pending(&s) > 1 {
            slot.release_unlinks(&mut s, now);
        }
        assert!(
            s.resident_bytes() + s.slack_bytes() <= SEG * (cap_segments + 1),
            "S6: resident {} + slack {} beyond the cap plus one spare",
            s.resident_bytes(),
            s.slack_bytes()
        );
    }
    while !slot.held.is_empty() {
        slot.release_unlinks(&mut s, t(100));
    }
    assert!(
        s.resident_bytes() <= SEG * cap_segments,
        "S6: within the cap"
    );
    (small_rotations, cap_waits)
}

/// DESIGN §6 item 12 with a cap of one segment.
#[test]
fn s6_item12_cap_of_one_segment_never_waits_on_an_acked_active() {
    let (small_rotations, cap_waits) = cap_never_waits_on_an_acked_active(1, false);
    assert!(
        small_rotations >= 10,
        "the scenario must rotate out of acknowledged small active segments: {small_rotations}"
    );
    assert!(
        cap_waits >= 5,
        "the scenario must also wait on unacknowledged frames: {cap_waits}"
    );
}

/// DESIGN §6 item 12 with a cap of two segments.
#[test]
fn s6_item12_cap_of_two_segments_never_waits_on_an_acked_active() {
    let (small_rotations, cap_waits) = cap_never_waits_on_an_acked_active(2, true);
    assert!(
        small_rotations >= 10,
        "the scenario must rotate out of acknowledged small active segments: {small_rotations}"
    );
    assert!(
        cap_waits >= 5,
        "the scenario must also wait on unacknowledged frames: {cap_waits}"
    );
}
