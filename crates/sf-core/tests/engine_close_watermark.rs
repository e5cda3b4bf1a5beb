//! S8 at close for every kind of close: a close that skips its drain
//! (`close_flush_timeout` 0/−1, a latched error) or whose drain times out
//! still waits, bounded (W5), for the `.ack-watermark` write it owes, so a
//! reopen does not replay what this life saw acknowledged (bug 7 of the
//! previous session). Adapters used to wait for it themselves.

mod engine_harness;

use std::time::Duration;

use engine_harness::{config, StorageMode, World};
use sf_core::engine::{EngineConfig, Input, Output, CLOSE_WATERMARK_WAIT};
use sf_core::errors::SenderError;
use sf_core::storage::{IoFailure, IoOutcome, StorageConfig, StorageOutput};
use sf_core::Fsn;

/// One host over file backing (where `.ack-watermark` exists).
fn files(close_flush_timeout: Option<Duration>) -> EngineConfig {
    let mut cfg = config(1);
    cfg.storage = StorageConfig {
        segment_bytes: 4096,
        max_total_bytes: 64 * 1024,
        ..StorageConfig::files()
    };
    cfg.close_flush_timeout = close_flush_timeout;
    cfg.ack_timeout = None;
    cfg
}

fn closed(outs: &[Output]) -> Option<(Result<(), SenderError>, bool)> {
    outs.iter().find_map(|o| match o {
        Output::Closed { result, drained } => Some((result.clone(), *drained)),
        _ => None,
    })
}

fn released(outs: &[Output]) -> bool {
    outs.contains(&Output::Released)
}

/// The FSNs of the held `.ack-watermark` writes.
fn held_watermarks(w: &World) -> Vec<u64> {
    w.held
        .iter()
        .filter_map(|s| match s {
            StorageOutput::PersistAckWatermark { fsn, .. } => Some(fsn.get()),
            _ => None,
        })
        .collect()
}

/// Fails every held request.
fn fail_held(w: &mut World) {
    for s in std::mem::take(&mut w.held) {
        w.input(Input::Io {
            id: s.id(),
            outcome: IoOutcome::Failed(IoFailure::Io { os_code: Some(5) }),
        });
    }
}

/// A connected file-backed world with frames 0..3 sent, frame 0's
/// watermark write in flight (held) and frames 1..2 acknowledged after it:
/// the write for FSN 2 is owed but not yet issued (one write at a time).
/// This is the state bug 7 released the slot in.
fn owing_watermark_of_fsn_2(close_flush_timeout: Option<Duration>) -> World {
    let mut w = World::connected(files(close_flush_timeout));
    w.append(3);
    w.take();
    w.storage_mode = StorageMode::HoldWatermarks;
    w.ok(0, &[]);
    w.ok(2, &[]);
    w.take();
    assert_eq!(w.acked(), Some(2));
    assert_eq!(held_watermarks(&w), vec![0], "one write in flight");
    assert!(!w.engine.storage().ack_watermark_settled());
    w
}

#[test]
fn s8_fast_close_persists_the_owed_watermark() {
    let mut w = owing_watermark_of_fsn_2(None);
    w.engine.close(w.now).expect("close");
    w.pump();
    let outs = w.take();
    assert!(
        !released(&outs) && closed(&outs).is_none(),
        "released with the watermark of FSN 2 owed: {outs:?}"
    );
    assert!(w.engine.is_closing());
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::CloseConnection { .. })),
        "the connection closes at once, so nothing more is acknowledged"
    );
    // The write of FSN 0 lands; the engine then issues the owed one.
    w.release_held();
    assert!(closed(&w.take()).is_none(), "FSN 2 is not on disk yet");
    assert_eq!(held_watermarks(&w), vec![2], "the owed write was issued");
    w.release_held();
    let outs = w.take();
    assert!(released(&outs));
    assert_eq!(closed(&outs), Some((Ok(()), true)));
    assert_eq!(w.engine.storage().watermark_persisted(), Some(Fsn(2)));
}

#[test]
fn s8_close_with_a_latched_error_persists_the_owed_watermark() {
    let mut w = owing_watermark_of_fsn_2(Some(Duration::from_secs(5)));
    w.append(1);
    w.take();
    w.error(0x05, 3, "parse");
    let err = w.engine.last_terminal_error().cloned().expect("latched");
    w.take();
    w.engine.close(w.now).expect("close skips the drain");
    w.pump();
    assert!(!released(&w.take()), "released with a watermark owed");
    w.release_held();
    w.release_held();
    let outs = w.take();
    assert_eq!(closed(&outs), Some((Err(err), false)));
    assert_eq!(w.engine.storage().watermark_persisted(), Some(Fsn(2)));
}

#[test]
fn s8_timed_out_drain_still_waits_for_the_owed_watermark() {
    // The drain deadline (1 s) is shorter than the watermark wait.
    let mut w = owing_watermark_of_fsn_2(Some(Duration::from_secs(1)));
    w.append(1);
    w.take();
    w.engine.close(w.now).expect("close starts draining");
    w.advance(Duration::from_secs(1));
    let outs = w.take();
    assert!(
        !released(&outs),
        "FSN 3 is unacknowledged, but FSN 2 must still reach the watermark"
    );
    w.release_held();
    w.release_held();
    let outs = w.take();
    assert_eq!(closed(&outs), Some((Ok(()), false)));
    assert_eq!(w.engine.storage().watermark_persisted(), Some(Fsn(2)));
}

#[test]
fn w5_fast_close_watermark_wait_ends_at_its_deadline() {
    let mut w = owing_watermark_of_fsn_2(None);
    w.engine.close(w.now).expect("close");
    w.pump();
    assert_eq!(
        w.engine.poll_timeout(),
        Some(w.now.saturating_add(CLOSE_WATERMARK_WAIT)),
        "the wait has a timer"
    );
    // The write never completes.
    w.advance(CLOSE_WATERMARK_WAIT - Duration::from_nanos(1));
    assert!(closed(&w.take()).is_none());
    w.advance(Duration::from_nanos(1));
    let outs = w.take();
    assert!(released(&outs));
    assert_eq!(
        closed(&outs),
        Some((Ok(()), true)),
        "every frame was acknowledged; only a restart replays some"
    );
    assert_eq!(w.engine.poll_timeout(), None);
}

#[test]
fn w5_fast_close_watermark_wait_ends_when_the_write_fails() {
    let mut w = owing_watermark_of_fsn_2(None);
    w.engine.close(w.now).expect("close");
    w.pump();
    w.release_held();
    assert_eq!(held_watermarks(&w), vec![2]);
    fail_held(&mut w);
    let outs = w.take();
    assert!(released(&outs), "a failed write ends the wait: {outs:?}");
    assert_eq!(closed(&outs), Some((Ok(()), true)));
}

#[test]
fn s8_fast_close_does_not_wait_out_a_failed_writes_backoff() {
    let mut w = World::connected(files(None));
    w.append(1);
    w.take();
    w.storage_mode = StorageMode::HoldWatermarks;
    w.ok(0, &[]);
    fail_held(&mut w);
    assert!(w.held.is_empty(), "the retry waits for its backoff");
    w.engine.close(w.now).expect("close");
    w.pump();
    assert_eq!(
        held_watermarks(&w),
        vec![0],
        "the close issues the owed write at once"
    );
    assert!(!released(&w.take()));
    w.release_held();
    assert_eq!(closed(&w.take()), Some((Ok(()), true)));
}

#[test]
fn c2_fast_close_with_nothing_owed_closes_at_once() {
    // File backing with the watermark written, and memory backing (no
    // watermark at all): the close releases within the call, no timer.
    let mut file_backed = World::connected(files(None));
    file_backed.append(2);
    file_backed.ok(1, &[]);
    assert!(file_backed.engine.storage().ack_watermark_settled());
    let mut memory = World::connected({
        let mut c = config(1);
        c.close_flush_timeout = None;
        c
    });
    memory.append(2);
    for w in [&mut file_backed, &mut memory] {
        w.take();
        let at = w.now;
        w.engine.close(at).expect("close");
        w.pump();
        assert_eq!(w.now, at, "no time passed");
        let outs = w.take();
        assert!(released(&outs), "{outs:?}");
        assert!(closed(&outs).is_some());
        assert!(w.engine.is_released());
        assert_eq!(w.engine.poll_timeout(), None);
    }
}

#[test]
fn c2_fast_close_of_a_fresh_file_slot_closes_at_once() {
    // Nothing acknowledged in this life and the open's watermark removal
    // done: nothing is owed.
    let mut w = World::new(files(None));
    assert!(w.engine.storage().ack_watermark_settled());
    w.take();
    w.engine.close(w.now).expect("close");
    w.pump();
    assert_eq!(closed(&w.take()), Some((Ok(()), true)));
}
