//! DESIGN §6 regressions the engine is responsible for (items 2, 5, 6, 7,
//! 16), each written to fail on a build that carries the bug.

mod engine_harness;

use std::time::Duration;

use engine_harness::{config, World, PAYLOAD};
use sf_core::ack::InFlightWindow;
use sf_core::engine::{ConnectionState, Output};
use sf_core::reconnect::InitialConnectRetry;
use sf_core::storage::AppendDecision;
use sf_core::Fsn;

fn closed(outs: &[Output]) -> Option<bool> {
    outs.iter().find_map(|o| match o {
        Output::Closed { drained, .. } => Some(*drained),
        _ => None,
    })
}

/// §6 item 2: reconnect attempts dropped the batch that was waiting to be
/// written. A placement made before an outage, frames appended during it,
/// and a producer parked at the cap all survive any number of failed
/// connects and go out, in order, once a connect succeeds.
#[test]
fn regression_2_reconnect_attempts_keep_the_waiting_batch() {
    let mut cfg = config(2);
    cfg.initial_connect_retry = InitialConnectRetry::On;
    cfg.storage.segment_bytes = 256;
    cfg.storage.max_total_bytes = 512;
    cfg.storage.append_deadline = std::time::Duration::from_secs(3600);
    let mut w = World::new(cfg);
    w.take();

    // A placement is outstanding while the connects fail.
    let decision = w.engine.begin_append(w.now, PAYLOAD).expect("accepted");
    let AppendDecision::Place(p) = decision else {
        panic!("first append has room: {decision:?}");
    };
    for round in 0..5 {
        let host = match round {
            0 => 0,
            _ => w.await_connect(),
        };
        w.connect_failed(host);
        let other = w.await_connect();
        w.connect_failed(other);
    }
    let c = w.engine.commit_append(w.now, p, Ok(())).expect("commit");
    w.pump();
    assert_eq!(c.fsn, Fsn(0));

    // More frames during the outage, up to the cap: the producer waits.
    let mut published = 1u64;
    while w.try_append().is_some() {
        published += 1;
    }
    for _ in 0..3 {
        let host = w.await_connect();
        w.connect_failed(host);
    }
    assert_eq!(w.engine.published_fsn(), Some(Fsn(published - 1)));

    let host = w.await_connect();
    w.accept(host);
    let sent = w.take_sends();
    assert_eq!(sent, (0..published).collect::<Vec<_>>(), "nothing dropped");
    w.ok(i64::try_from(published - 1).expect("small"), &[]);
    // The parked producer gets room once the acknowledgement trims.
    assert!(w.try_append().is_some());
    assert_eq!(w.take_sends(), vec![published]);
}

/// §6 item 5: a server error on a frame was treated as transient: reconnect
/// and resend the same bytes forever. HALT stops for good; DROP trims the
/// frame so a later reconnect never resends it.
#[test]
fn regression_5_error_frame_is_never_retried() {
    let mut w = World::connected(config(1));
    w.append(3);
    w.take();
    w.error(0x06, 0, "internal error");
    w.advance(Duration::from_secs(600));
    let outs = w.take();
    assert!(World::connects(&outs).is_empty(), "HALT: no reconnect");
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Send { .. })),
        "HALT: nothing resent"
    );
    assert_eq!(w.engine.connection_state(), ConnectionState::Halted);

    let mut w = World::connected(config(1));
    w.append(3);
    w.take();
    w.error(0x03, 0, "schema mismatch");
    w.disconnect(Some(1006));
    w.await_connect();
    w.accept(0);
    assert_eq!(w.take_sends(), vec![1, 2], "DROP: frame 0 is never resent");
}

/// §6 item 6: an ACK for a future sequence trimmed frames the new server
/// never saw. After a reconnect the new connection has sent two frames; an
/// OK for sequence 50 acknowledges exactly those two.
#[test]
fn regression_6_future_ok_after_reconnect_trims_only_sent_frames() {
    let mut cfg = config(1);
    cfg.in_flight_window = InFlightWindow::new(2).expect("non-zero");
    let mut w = World::connected(cfg);
    w.append(8);
    assert_eq!(w.take_sends(), vec![0, 1]);
    w.ok(1, &[]);
    assert_eq!(w.take_sends(), vec![2, 3]);
    w.disconnect(None);
    w.await_connect();
    w.accept(0);
    assert_eq!(w.take_sends(), vec![2, 3]);
    w.ok(50, &[]);
    assert_eq!(w.acked(), Some(3), "frames 4..7 were never sent here");
    assert_eq!(w.take_sends(), vec![4, 5]);
}

/// §6 item 7: the replay wait spun forever after the socket dropped
/// mid-replay. The drop ends the wait at once: no further send on the dead
/// socket, a timer or a connect instead of a spin, and a fresh replay from
/// `acked + 1` with wire sequence 0 on the next connection.
#[test]
fn regression_7_replay_wait_ends_when_the_socket_drops_mid_replay() {
    let mut cfg = config(1);
    cfg.in_flight_window = InFlightWindow::new(2).expect("non-zero");
    let mut w = World::new(cfg);
    w.take();
    w.append(6);
    w.accept(0);
    assert_eq!(w.take_sends(), vec![0, 1], "replay is window-bound");
    w.disconnect(None);
    assert!(w.take_sends().is_empty(), "nothing more on the dead socket");
    assert!(
        matches!(w.engine.connection_state(), ConnectionState::Down { .. }),
        "{:?}",
        w.engine.connection_state()
    );
    let timer = w
        .engine
        .poll_timeout()
        .expect("W5: the wait has a deadline");
    assert!(timer > w.now, "a timer in the past would spin");
    // A late OK of the dead connection must not be taken for the new one.
    w.ok(1, &[]);
    assert_eq!(w.acked(), None);
    w.await_connect();
    w.accept(0);
    assert_eq!(w.take_sends(), vec![0, 1]);
    w.ok(1, &[]);
    assert_eq!(w.take_sends(), vec![2, 3]);
    w.ok(3, &[]);
    assert_eq!(w.take_sends(), vec![4, 5]);
    w.ok(5, &[]);
    assert_eq!(w.acked(), Some(5));
}

/// §6 item 16: `close()` returned while published frames were neither sent
/// nor ACKed, and memory-mode data vanished. Frames published while the
/// link is down keep `close()` draining through the reconnect until they
/// are acknowledged.
#[test]
fn regression_16_close_waits_for_frames_neither_sent_nor_acked() {
    let mut cfg = config(1);
    cfg.initial_connect_retry = InitialConnectRetry::On;
    cfg.close_flush_timeout = Some(Duration::from_secs(5));
    let mut w = World::new(cfg);
    w.take();
    w.connect_failed(0);
    w.append(3);
    w.engine.close(w.now).expect("close starts");
    w.pump();
    assert_eq!(closed(&w.take()), None, "frames 0..2 were never sent");
    w.await_connect();
    assert_eq!(closed(&w.log), None);
    w.accept(0);
    assert_eq!(w.take_sends(), vec![0, 1, 2], "the drain still sends");
    w.ok(1, &[]);
    assert_eq!(closed(&w.take()), None, "frame 2 is not acked");
    w.ok(2, &[]);
    let outs = w.take();
    assert_eq!(closed(&outs), Some(true));
    assert!(w.engine.is_released());
}
