//! DESIGN §6 storage regressions, one named scenario each, driven step by
//! step through the simulator (`Sim`) with scripted disk faults. Each names
//! the invariant it holds; each was checked to fail on a build carrying the
//! bug (the mutation used is named in the scenario's comment).
//!
//! Item 10 (quadratic sort of segments at open) is a timing bug: the
//! simulator never measures time, so it is covered where the planner's
//! comparisons are counted instead, `sf-core/tests/recovery_scale.rs`
//! (`regression_item10_opening_16384_segments_is_a_sort_not_quadratic`).

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::time::Duration;

use sf_core::durability::DurabilityMode;
use sf_core::engine::{EngineConfig, EngineError};
use sf_core::recovery::RecoveryError;
use sf_core::ring::SegmentState;
use sf_core::storage::{AppendError, IoFailure, StorageConfig};
use sf_core::{Fsn, SegmentGen};
use sf_io_sim::disk::DiskOp;
use sf_io_sim::{CrashKind, DiskFaults, MessageFault, Sim, SimOptions};

const SEG: u64 = 4096;

/// No random fault: every fault in these scenarios is scripted.
fn quiet() -> SimOptions {
    SimOptions {
        faults: Some(vec![]),
        max_duration: Duration::from_secs(5),
        ..SimOptions::default()
    }
}

/// File-backed defaults at `SEG`-byte segments (so S5's early reclaim
/// starts at half of `SEG`).
fn files(segments_in_cap: u64, durability: DurabilityMode) -> EngineConfig {
    let storage = StorageConfig {
        max_total_bytes: SEG * segments_in_cap,
        durability,
        ..StorageConfig::files().with_segment_bytes(SEG)
    };
    EngineConfig::new(storage, NonZeroUsize::MIN)
}

/// A host crash that keeps exactly the synced bytes.
fn strict_host_crash() -> DiskFaults {
    DiskFaults {
        sector_kept: 0,
        sector_torn: 0,
        ..DiskFaults::none()
    }
}

fn start(seed: u64, config: EngineConfig) -> Sim {
    let mut sim = Sim::with_config(seed, &quiet(), config);
    sim.disk_mut().set_faults(strict_host_crash());
    assert!(
        sim.run_until(
            |s| s.network().current_connection().is_some()
                && s.engine()
                    .is_some_and(|e| e.storage().outstanding_io() == 0),
            Duration::from_secs(5)
        ),
        "the engine opens and connects"
    );
    sim
}

fn engine(sim: &Sim) -> &sf_core::engine::Engine {
    sim.engine().expect("an engine is open")
}

/// Log segments (active or sealed) of the engine.
fn log_segments(sim: &Sim) -> usize {
    engine(sim)
        .storage()
        .segments()
        .iter()
        .filter(|s| matches!(s.state, SegmentState::Active | SegmentState::Sealed))
        .count()
}

/// S4: every segment file on the disk is one the engine accounts for (log,
/// unlink-pending or spare), so the cap it enforces is the real footprint.
fn assert_every_file_accounted(sim: &Sim, what: &str) {
    let known: BTreeSet<String> = engine(sim)
        .storage()
        .segments()
        .iter()
        .map(|s| s.name.file_name())
        .collect();
    for name in sim.disk().file_names() {
        if SegmentGen::parse_file_name(&name).is_some() {
            assert!(
                known.contains(&name),
                "S4 ({what}): {name} is on disk but the engine does not account for it (knows {known:?})"
            );
        }
    }
}

fn finish_clean(sim: Sim, what: &str) {
    let report = sim.finish();
    assert!(
        report.passed(),
        "{what}: seed {} violations {:#?}",
        report.seed,
        report.violations
    );
}

/// Appends 10-row frames until the active segment holds at least half a
/// segment of frame bytes (the default S5 early-reclaim threshold), all in
/// that one segment.
fn fill_active_past_half(sim: &mut Sim) {
    let frame_bytes = |sim: &Sim| {
        engine(sim)
            .storage()
            .segments()
            .iter()
            .find(|s| s.state == SegmentState::Active)
            .map_or(0, |s| s.append_offset.saturating_sub(24))
    };
    while frame_bytes(sim) < SEG / 2 {
        sim.append_rows(10).expect("append");
    }
    assert_eq!(log_segments(sim), 1, "one active segment holds them");
}

/// Every row the servers committed, committed exactly once.
fn assert_each_row_once(sim: &Sim, what: &str) {
    let log = sim.delivery_log();
    let dup: Vec<_> = log.counts.iter().filter(|(_, &n)| n != 1).collect();
    assert!(
        dup.is_empty(),
        "{what}: rows delivered more than once (acknowledged frames replayed): {dup:?}"
    );
    assert!(!log.counts.is_empty(), "{what}: nothing was delivered");
}

// ---------------------------------------------------------------------------

/// Item 1: a disk-full error during append advanced the FSN and lost the
/// batch. S7: the failed write publishes nothing, the FSN does not move,
/// the frames committed before it stay, and the next append continues the
/// FSNs (S1). Mutation checked: `self.ring.next_fsn = placement.fsn.next();`
/// added to the failure branch of `Storage::commit_append`.
#[test]
fn item01_s7_disk_full_during_append_keeps_the_fsn_and_the_batch() {
    let mut sim = start(101, files(8, DurabilityMode::Flush));
    let a = sim.append_rows(5).expect("append");
    let b = sim.append_rows(5).expect("append");
    assert_eq!(b, a.next());
    sim.disk_mut()
        .fail_next_with(DiskOp::WriteFrame, IoFailure::NoSpace);
    match sim.append_rows(5) {
        Err(EngineError::Append(AppendError::WriteFailed { fsn, failure })) => {
            assert_eq!((fsn, failure), (b.next(), IoFailure::NoSpace));
        }
        other => panic!("the disk-full write must fail the append: {other:?}"),
    }
    assert_eq!(
        engine(&sim).published_fsn(),
        Some(b),
        "S7: a failed append never advances the FSN"
    );
    let c = sim.append_rows(5).expect("the retried append");
    assert_eq!(c, b.next(), "S1/S7: FSNs stay contiguous after the failure");
    assert_eq!(
        sim.flush().expect("flush"),
        Some(c),
        "C1: the batch is whole"
    );
    assert!(sim.run_until_idle(), "everything is acknowledged");
    finish_clean(sim, "item 1");
}

/// Item 3: a failed rotation leaked a file handle per attempt under disk
/// pressure. S7 / DESIGN §6 item 3: with every creation failing for a long
/// while, the files on disk and the mappings stay bounded by what the
/// engine accounts for, and creation in flight never exceeds the spares.
/// Mutation checked: dropping the `push_unlink` of the failed generation
/// in `Storage::io_done` (`PendingIo::Create` failure branch).
#[test]
fn item03_s7_failed_rotations_leak_no_file_and_no_handle() {
    let mut sim = start(103, files(8, DurabilityMode::Memory));
    sim.append_rows(5).expect("append");
    sim.disk_mut().set_faults(DiskFaults {
        create_enospc: 1_000_000,
        ..strict_host_crash()
    });
    // Fill the active segment and the ready spare, then wait for a spare
    // that cannot be created until the append deadline.
    let mut refused = false;
    for _ in 0..200 {
        match sim.append_rows(20) {
            Ok(_) => {}
            Err(EngineError::Append(AppendError::Backpressure(_))) => {
                refused = true;
                break;
            }
            Err(e) => panic!("unexpected append error: {e}"),
        }
    }
    assert!(refused, "the producer ends at the deadline, told why");
    let st = sim.disk().stats();
    assert!(
        st.injected.enospc >= 10,
        "the creation was retried many times: {st:?}"
    );
    let storage = engine(&sim).storage();
    assert!(
        storage.provisioning_in_flight() <= storage.config().spares,
        "DESIGN §6 item 3: at most `spares` creations in flight"
    );
    let segment_files = sim
        .disk()
        .file_names()
        .iter()
        .filter(|n| SegmentGen::parse_file_name(n).is_some())
        .count();
    assert!(
        segment_files <= storage.segments().len() + 1,
        "item 3: {segment_files} segment files for {} accounted segments after {} failed creations",
        storage.segments().len(),
        st.injected.enospc
    );
    assert!(
        st.open_handles <= storage.segments().len(),
        "item 3: {} open handles for {} accounted segments",
        st.open_handles,
        storage.segments().len()
    );
    // Space comes back: the producer goes on.
    sim.disk_mut().set_faults(strict_host_crash());
    sim.run_for(Duration::from_secs(2));
    sim.append_rows(5).expect("append once space is back");
    assert!(sim.run_until_idle());
    finish_clean(sim, "item 3");
}

/// Item 4: a file length read error (−1) was taken as an empty segment.
/// S3: a size that cannot be read refuses the open (never a shorter or
/// absent segment); once it can be read, every frame is still there (S1).
/// Mutation checked: `Err(_) => continue,` for the size error in
/// `recovery::plan_reads` (the segment is treated as not there).
#[test]
fn item04_s3_an_unreadable_segment_size_is_never_an_empty_segment() {
    let mut sim = start(104, files(8, DurabilityMode::Memory));
    // Keep the frames unacknowledged so the oldest segment holds the log's
    // start: the server gets no message through.
    for _ in 0..200 {
        sim.network_mut().script_message(MessageFault::DropBefore);
    }
    for _ in 0..30 {
        sim.append_rows(10).expect("append");
    }
    let published = engine(&sim).published_fsn();
    assert!(log_segments(&sim) >= 2, "frames span several segments");
    assert_eq!(engine(&sim).acked_fsn(), None);
    sim.disk_mut().fail_next(DiskOp::Stat);
    match sim.crash(CrashKind::Process) {
        Err(RecoveryError::SizeUnreadable { name, .. }) => {
            assert_eq!(name, SegmentGen(0).file_name(), "the oldest segment");
        }
        other => panic!("S3 / item 4: an unreadable size must refuse the open: {other:?}"),
    }
    assert!(
        sim.run_until(|s| s.engine().is_some(), Duration::from_secs(5)),
        "the world retries the open once the size reads again"
    );
    assert_eq!(
        engine(&sim).published_fsn(),
        published,
        "S1: every frame is still there"
    );
    assert_eq!(
        engine(&sim).acked_fsn(),
        None,
        "S8: nothing was acknowledged"
    );
    finish_clean(sim, "item 4");
}

/// Item 8: a segment that failed to unlink was forgotten: the cap stopped
/// being true and a restart re-sent acknowledged frames. S4: the segment
/// stays accounted (out of the log, counted) and is retried; a crash before
/// the retry reopens (no FSN gap, S3) without replaying anything
/// acknowledged (S8). Mutation checked: treating the failure as success in
/// `Storage::io_done` (`PendingIo::Unlink`: `match failure` →
/// `match None::<IoFailure>`, the segment is forgotten).
#[test]
fn item08_s4_a_failed_unlink_keeps_the_segment_accounted_and_nothing_acked_replays() {
    let mut sim = start(108, files(8, DurabilityMode::Flush));
    for _ in 0..30 {
        sim.append_rows(10).expect("append");
    }
    sim.flush().expect("flush");
    assert!(log_segments(&sim) >= 3, "several segments");
    for _ in 0..1000 {
        // Every unlink fails for now (each retry too).
        sim.disk_mut().fail_next(DiskOp::Unlink);
    }
    assert!(sim.run_until(
        |s| s.disk().stats().injected.unlink_fail >= 3,
        Duration::from_secs(10)
    ));
    let storage = engine(&sim).storage();
    assert!(
        storage
            .segments()
            .iter()
            .any(|s| s.state == SegmentState::UnlinkPending),
        "S4: the segment whose unlink failed is still accounted"
    );
    assert!(
        storage.failure_counts().unlink >= 3,
        "and the failures counted"
    );
    assert_every_file_accounted(&sim, "after failed unlinks");
    let resident = storage.resident_bytes() + storage.slack_bytes();
    let on_disk = sim.disk().stats().bytes;
    assert!(
        on_disk <= resident + 16,
        "S4/S6: the disk holds {on_disk} bytes, the engine counts {resident} (+16 for the watermark)"
    );
    assert!(sim.run_until_idle());
    let acked = engine(&sim).acked_fsn();
    let accepted = sim.network().accepted().len();
    // A crash while the unlinks are still pending.
    sim.crash(CrashKind::Process)
        .expect("S3: the slot reopens after a process crash");
    assert_eq!(
        engine(&sim).acked_fsn(),
        acked,
        "S8: what was acknowledged stays acknowledged"
    );
    sim.run_for(Duration::from_secs(3));
    assert_eq!(
        sim.network().accepted().len(),
        accepted,
        "item 8: a restart re-sent acknowledged frames"
    );
    assert_each_row_once(&sim, "item 8");
    finish_clean(sim, "item 8");
}

/// Item 9: the oldest-FSN query counted an unlink-pending segment that
/// replay skipped (FSN drift, reconnect loop). W1: with a segment pending
/// its unlink and the front segment partly acknowledged, the oldest
/// unacknowledged FSN is `acked + 1`, a reconnect replays from exactly
/// there and every row reaches the server once. (The engine's replay does
/// not use the query: `WireMapping::connect` starts at the acknowledged FSN;
/// the query is the adapter's and the diagnostics'.) Mutation checked:
/// `Storage::oldest_unacked` returning `Fsn::ZERO` while any segment is
/// unlink-pending.
#[test]
fn item09_w1_an_unlink_pending_segment_never_moves_where_replay_starts() {
    let mut config = files(8, DurabilityMode::Memory);
    // Keep the acknowledged active segment in the log (no reclaim before it
    // is full), so the front log segment is partly acknowledged later.
    config.storage.reclaim_min_bytes = u64::MAX;
    let mut sim = start(109, config);
    for _ in 0..1000 {
        sim.disk_mut().fail_next(DiskOp::Unlink);
    }
    while log_segments(&sim) < 2 {
        sim.append_rows(10).expect("append");
    }
    assert!(sim.run_until_idle(), "everything so far is acknowledged");
    assert!(
        engine(&sim)
            .storage()
            .segments()
            .iter()
            .any(|s| s.state == SegmentState::UnlinkPending),
        "the trimmed segment waits for its unlink"
    );
    let acked = engine(&sim).acked_fsn().expect("acknowledged");
    // The next message is reset before it reaches the server: reconnect
    // and replay.
    sim.network_mut().script_message(MessageFault::DropBefore);
    let f = sim.append_rows(10).expect("append");
    assert_eq!(f, acked.next());
    assert_eq!(
        engine(&sim).storage().oldest_unacked(),
        Some(acked.next()),
        "item 9: the oldest unacknowledged FSN counts no unlink-pending segment"
    );
    assert!(sim.run_until_idle(), "the replay is acknowledged");
    assert!(
        engine(&sim).total_reconnects_succeeded() >= 1,
        "the connection was reset and re-established"
    );
    assert_each_row_once(&sim, "item 9");
    finish_clean(sim, "item 9");
}

/// Item 11: acknowledged frames in the active segment were replayed after a
/// restart. S5: a fully acknowledged active segment holding at least half a
/// segment (the default threshold) is reclaimed, so the slot records the
/// acknowledgement in a header even when `.ack-watermark` could not be
/// written, and a restart replays nothing. (A smaller one is covered by the
/// watermark alone: `sf-core/tests/storage_reclaim.rs`.) Mutation checked:
/// an early `return;` at the top of `Storage::try_reclaim`.
#[test]
fn item11_s5_acknowledged_frames_in_the_active_segment_are_not_replayed() {
    let mut sim = start(111, files(8, DurabilityMode::Memory));
    // Every watermark write fails in this life.
    sim.disk_mut().set_faults(DiskFaults {
        watermark_fail: 1_000_000,
        ..strict_host_crash()
    });
    fill_active_past_half(&mut sim);
    assert!(sim.run_until_idle(), "everything is acknowledged");
    let published = engine(&sim).published_fsn();
    // Time for the reclaim and the unlink of the old segment.
    sim.run_for(Duration::from_secs(2));
    let accepted = sim.network().accepted().len();
    sim.disk_mut().set_faults(strict_host_crash());
    sim.crash(CrashKind::Process).expect("reopen");
    assert_eq!(
        engine(&sim).acked_fsn(),
        published,
        "S5: the restart knows every frame is acknowledged"
    );
    sim.run_for(Duration::from_secs(3));
    assert_eq!(
        sim.network().accepted().len(),
        accepted,
        "item 11: acknowledged frames were replayed"
    );
    assert_eq!(engine(&sim).total_frames_replayed(), 0);
    finish_clean(sim, "item 11");
}

/// Item 12: a cap equal to one segment size deadlocked (the only segment
/// was active). S5/S6: with `sf_max_total_bytes == sf_max_bytes`, a
/// producer writing many segments' worth goes through as acknowledgements
/// arrive. Run with reclaim only at rotation (`reclaim_min_bytes = MAX`) so
/// the rotation rule itself must let a fully acknowledged active segment
/// retire, with reclaim at once, and with the default (half a segment).
/// Mutation checked:
/// `.filter(|s| s.fully_acked(self.ring.acked))` → `.filter(|_| false)` in
/// `Storage::rotation_blocker` (the retiring segment is not subtracted).
#[test]
fn item12_s6_a_cap_of_one_segment_does_not_deadlock() {
    for (seed, reclaim_min_bytes) in [(112, u64::MAX), (212, 0), (312, SEG / 2)] {
        let mut config = files(1, DurabilityMode::Memory);
        config.storage.reclaim_min_bytes = reclaim_min_bytes;
        let mut sim = start(seed, config);
        let mut last = None;
        for _ in 0..60 {
            let f = sim.append_rows(10).unwrap_or_else(|e| {
                panic!("item 12 (reclaim_min_bytes={reclaim_min_bytes}): append refused: {e}")
            });
            last = Some(f);
        }
        assert!(
            sim.disk().stats().frame_writes > 0 && last > Some(Fsn(20)),
            "many segments' worth went through"
        );
        assert!(sim.run_until_idle());
        assert!(
            engine(&sim).storage().resident_bytes() <= SEG,
            "S6: resident bytes within the cap"
        );
        finish_clean(sim, "item 12");
    }
}

/// Item 13: recovery restarted FSNs at 0 on a non-empty directory. S1:
/// with every frame acknowledged and trimmed, only an empty installed
/// segment records where FSNs continue; after a process crash and after a
/// host crash (the watermark is not synced) the next frame continues there.
/// Mutation checked: `let end = log_end;` in `recovery::plan` (no fallback
/// to the highest installed header).
#[test]
fn item13_s1_recovery_never_restarts_fsns_at_zero_on_a_non_empty_slot() {
    for (seed, kind) in [(113, CrashKind::Process), (213, CrashKind::Host)] {
        let mut sim = start(seed, files(8, DurabilityMode::Memory));
        // Past the default threshold, so the acknowledged active segment
        // is reclaimed and only the fresh empty one is left.
        fill_active_past_half(&mut sim);
        assert!(sim.run_until_idle());
        let published = engine(&sim).published_fsn().expect("published");
        assert!(sim.run_until(
            |s| !s.disk().contains(&SegmentGen(0).file_name()),
            Duration::from_secs(5)
        ));
        sim.crash(kind).expect("reopen");
        assert_eq!(
            engine(&sim).published_fsn(),
            Some(published),
            "S1 ({kind:?}): FSNs continue after the last published frame"
        );
        let next = sim.append_rows(3).expect("append");
        assert_eq!(next, published.next(), "S1 ({kind:?}): never reused");
        assert!(sim.run_until_idle());
        finish_clean(sim, "item 13");
    }
}

/// Item 15: a multi-fragment transaction's flush was reported at a
/// mid-batch offset before its last fragment, and with no new writes the
/// flush watermark stuck forever. L2/L3/L4: a batch of several frames whose
/// syncs complete only part of the way (possibly inside a frame) is not
/// reported durable before its last frame is, and completes without any
/// further append; a host crash then keeps every flushed frame (C1).
/// Nothing is acknowledged meanwhile (the connection is reset and every
/// reconnect refused), so only syncs can make the batch durable.
/// Mutations checked: (a) `seg.synced = seg.synced.max(upto)` for a
/// `Synced` outcome in `Storage::io_done` (the requested offset is taken
/// instead of the reported one: reported early, lost in the crash);
/// (b) `if seg.synced > HEADER || seg.sync_in_flight` in
/// `Storage::drive_syncs` (a segment synced part of the way counts as done:
/// no new sync is asked for and the flush never returns).
#[test]
fn item15_l3_l4_a_batch_is_durable_only_with_its_last_frame_and_never_sticks() {
    // Segments of several pages, so a partial sync leaves whole pages of
    // the batch unsynced (a sync is widened to pages).
    let mut config = files(8, DurabilityMode::Flush);
    config.storage.segment_bytes = 16 * SEG;
    config.storage.max_total_bytes = 128 * SEG;
    let mut sim = start(115, config);
    // A first flushed frame: the segment's first sync (which also syncs the
    // whole file, see the disk's docs) is behind us.
    sim.append_rows(10).expect("append");
    sim.flush().expect("flush");
    sim.network_mut().script_message(MessageFault::DropBefore);
    let quiet_net = sim.network().faults().clone();
    sim.network_mut().set_faults(sf_io_sim::NetFaults {
        refuse_connect: 1_000_000,
        ..quiet_net.clone()
    });
    let mut last = None;
    for _ in 0..40 {
        last = Some(sim.append_rows(10).expect("append"));
    }
    assert_eq!(
        log_segments(&sim),
        1,
        "the batch spans pages of one segment"
    );
    for _ in 0..3 {
        sim.disk_mut().fail_next(DiskOp::PartialSync);
    }
    let syncs_before = sim.disk().stats().syncs;
    assert_eq!(
        sim.flush()
            .expect("C1/L4: the flush returns without more appends"),
        last
    );
    assert!(
        engine(&sim).acked_fsn() < last,
        "no acknowledgement covered the batch"
    );
    assert_eq!(
        engine(&sim).durable_fsn(),
        last,
        "L3: durable exactly at the batch's end"
    );
    let partial = sim.disk().stats().injected.partial_sync;
    let syncs = sim.disk().stats().syncs - syncs_before;
    sim.crash(CrashKind::Host).expect("reopen");
    assert!(
        engine(&sim).published_fsn() >= last,
        "C1: every flushed frame survives the host crash"
    );
    assert!(
        partial >= 1 && syncs > partial,
        "L4: each partial sync was followed by another ({syncs} syncs, {partial} partial)"
    );
    sim.network_mut().set_faults(quiet_net);
    finish_clean(sim, "item 15");
}
