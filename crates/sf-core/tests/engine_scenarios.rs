//! Scenario tests of the composed engine: scripted server, virtual time.

mod engine_harness;

use std::time::Duration;

use engine_harness::{config, World};
use qwp_proto::status::{ErrorCategory, ErrorPolicy};
use sf_core::ack::InFlightWindow;
use sf_core::backoff::BackoffConfig;
use sf_core::engine::{
    ConnectionState, EngineError, EngineWarning, Output, CLOSE_GOING_AWAY, CLOSE_NORMAL,
    CLOSE_PROTOCOL_ERROR,
};
use sf_core::reconnect::InitialConnectRetry;
use sf_core::storage::{AppendDecision, AppendError, LinkState};
use sf_core::{Fsn, Instant};

fn window(n: u32) -> InFlightWindow {
    InFlightWindow::new(n).expect("non-zero window")
}

fn notifies(outs: &[Output]) -> Vec<sf_core::errors::SenderError> {
    outs.iter()
        .filter_map(|o| match o {
            Output::Notify(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn has(outs: &[Output], want: &Output) -> bool {
    outs.iter().any(|o| o == want)
}

// ----- W1: order and replay ------------------------------------------------

#[test]
fn w1_frames_published_before_connect_go_out_in_fsn_order() {
    let mut w = World::new(config(1));
    w.append(3);
    assert!(
        w.take_sends().is_empty(),
        "nothing is sent before the upgrade"
    );
    w.accept(0);
    assert_eq!(w.take_sends(), vec![0, 1, 2]);
    w.append(2);
    assert_eq!(w.take_sends(), vec![3, 4]);
}

#[test]
fn w1_replay_after_reconnect_starts_at_acked_plus_one_with_wire_seq_zero() {
    let mut w = World::connected(config(1));
    w.append(5);
    assert_eq!(w.take_sends(), vec![0, 1, 2, 3, 4]);
    w.ok(1, &[]);
    assert_eq!(w.acked(), Some(1));
    let replayed_before = w.engine.total_frames_replayed();
    w.disconnect(Some(1006));
    assert!(w.take_sends().is_empty());
    assert_eq!(
        w.await_connect(),
        0,
        "reconnects (one host: after the round's sleep)"
    );
    w.accept(0);
    assert_eq!(w.take_sends(), vec![2, 3, 4], "replay from acked + 1");
    // Wire sequence restarted at 0: OK 0 on the new connection is FSN 2.
    w.ok(0, &[]);
    assert_eq!(w.acked(), Some(2));
    assert_eq!(w.engine.total_frames_replayed() - replayed_before, 3);
    assert_eq!(w.engine.total_reconnect_attempts(), 1);
    assert_eq!(w.engine.total_reconnects_succeeded(), 1);
}

#[test]
fn w1_in_flight_window_bounds_sends_and_answers_reopen_it() {
    let mut cfg = config(1);
    cfg.in_flight_window = window(2);
    let mut w = World::connected(cfg);
    w.append(5);
    assert_eq!(w.take_sends(), vec![0, 1]);
    assert_eq!(w.engine.in_flight_frames(), 2);
    w.ok(0, &[]);
    assert_eq!(w.take_sends(), vec![2]);
    w.ok(2, &[]);
    assert_eq!(w.take_sends(), vec![3, 4]);
}

// ----- W2: clamp ---------------------------------------------------------------

#[test]
fn w2_future_ok_is_clamped_to_what_this_connection_sent() {
    let mut cfg = config(1);
    cfg.in_flight_window = window(2);
    let mut w = World::connected(cfg);
    w.append(5);
    assert_eq!(w.take_sends(), vec![0, 1]);
    w.ok(100, &[]);
    assert_eq!(
        w.acked(),
        Some(1),
        "frames 2..4 were never sent: not trimmed"
    );
    let outs = w.take();
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Warn(EngineWarning::OkClamped { sequence: 100, .. })
    )));
    assert!(has(&outs, &Output::Progress { acked: Fsn(1) }));
}

/// W2 at the adapter's edge (found by the simulator, seed 153971): a
/// `Send` still queued in the engine is not on the wire. A future OK that
/// arrives before the adapter took it must not acknowledge it; otherwise a
/// close that completes on that acknowledgement discards the queued send
/// and the frame is trimmed without ever being sent.
#[test]
fn w2_an_ok_cannot_acknowledge_a_send_the_adapter_has_not_taken() {
    use qwp_proto::response::{OkFrame, Response};
    use sf_core::engine::Input;
    use sf_core::storage::AppendDecision;
    let mut w = World::connected(config(1));
    w.append(1);
    w.take();
    // Frame 1 is committed; its Send is queued but not taken.
    let AppendDecision::Place(p) = w.engine.begin_append(w.now, 16).expect("append") else {
        panic!("append had to wait")
    };
    w.engine.commit_append(w.now, p, Ok(())).expect("commit");
    let mut ok = Vec::new();
    Response::Ok(OkFrame {
        sequence: 1,
        tables: Vec::new(),
    })
    .encode_into(&mut ok)
    .expect("encodes");
    w.engine
        .handle_input(w.now, Input::Received(&ok))
        .expect("input");
    assert_eq!(
        w.engine.acked_fsn(),
        Some(Fsn(0)),
        "the OK for wire seq 1 is limited to frame 0, the last one taken"
    );
    // Once taken and answered, frame 1 is acknowledged as usual.
    w.pump();
    let outs = w.take();
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Send { fsn, .. } if *fsn == Fsn(1))));
    w.ok(1, &[]);
    assert_eq!(w.engine.acked_fsn(), Some(Fsn(1)));
}

#[test]
fn w2_ok_before_any_send_is_ignored() {
    let mut w = World::connected(config(1));
    w.ok(0, &[]);
    assert_eq!(w.acked(), None);
    let outs = w.take();
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Warn(EngineWarning::OkIgnored { .. }))));
    assert!(matches!(
        w.engine.connection_state(),
        ConnectionState::Connected { .. }
    ));
}

#[test]
fn w2_stale_ok_never_moves_the_watermark_back() {
    let mut w = World::connected(config(1));
    w.append(4);
    w.take();
    w.ok(2, &[]);
    w.ok(0, &[]);
    assert_eq!(w.acked(), Some(2));
}

// ----- W4: durable ACK -----------------------------------------------------------

fn durable() -> sf_core::engine::EngineConfig {
    let mut c = config(1);
    c.request_durable_ack = true;
    c
}

#[test]
fn w4_ok_alone_does_not_trim_in_durable_mode() {
    let mut w = World::connected(durable());
    assert!(matches!(
        w.engine.connection_state(),
        ConnectionState::Connected {
            durable_ack: true,
            ..
        }
    ));
    w.append(2);
    w.take();
    w.ok(1, &[("t", 5)]);
    assert_eq!(w.acked(), None);
    w.durable_ack(&[("t", 5)]);
    assert_eq!(w.acked(), Some(1));
}

#[test]
fn w4_durable_ack_before_its_ok_still_trims() {
    let mut w = World::connected(durable());
    w.append(1);
    w.take();
    w.durable_ack(&[("trades", 42)]);
    assert_eq!(w.acked(), None);
    // No further DURABLE_ACK will come: coverage is checked on the OK too.
    w.ok(0, &[("trades", 42)]);
    assert_eq!(w.acked(), Some(0));
}

#[test]
fn w4_table_with_no_further_writes_completes() {
    let mut w = World::connected(durable());
    w.append(2);
    w.take();
    w.ok(0, &[("a", 1), ("b", 7)]);
    w.ok(1, &[("a", 2)]);
    w.durable_ack(&[("a", 2)]);
    assert_eq!(w.acked(), None, "b is not durable yet");
    w.durable_ack(&[("b", 7)]);
    assert_eq!(w.acked(), Some(1));
}

#[test]
fn w4_empty_ok_between_durable_ones_is_durable_once_predecessors_are() {
    let mut w = World::connected(durable());
    w.append(3);
    w.take();
    w.ok(0, &[("a", 1)]);
    w.ok(1, &[]);
    w.ok(2, &[("a", 2)]);
    assert_eq!(w.acked(), None);
    w.durable_ack(&[("a", 1)]);
    assert_eq!(w.acked(), Some(1), "the empty OK rides on its predecessor");
    w.durable_ack(&[("a", 2)]);
    assert_eq!(w.acked(), Some(2));
}

#[test]
fn w4_missing_durable_echo_refuses_the_connect() {
    let mut cfg = durable();
    cfg.initial_connect_retry = InitialConnectRetry::On;
    let mut w = World::new(cfg);
    w.take();
    w.append(1);
    w.answer_upgrade(0, 101, &[("X-QWP-Version", b"1")]);
    let outs = w.take();
    assert!(has(
        &outs,
        &Output::CloseConnection {
            code: CLOSE_PROTOCOL_ERROR
        }
    ));
    assert!(outs.iter().any(|o| matches!(
        o,
        Output::Warn(EngineWarning::ConnectRejected { host: 0, .. })
    )));
    assert!(
        !outs.iter().any(|o| matches!(o, Output::Send { .. })),
        "nothing is sent on a refused connection"
    );
    assert!(
        w.engine.last_terminal_error().is_none(),
        "a per-host failure"
    );
    assert_eq!(w.await_connect(), 0, "the loop tries again");
    w.accept(0);
    assert_eq!(w.take_sends(), vec![0]);
}

#[test]
fn w4_keepalive_ping_while_confirmations_pending() {
    let mut w = World::connected(durable());
    w.append(1);
    w.take();
    w.ok(0, &[("t", 1)]);
    w.take();
    w.advance(Duration::from_millis(199));
    assert!(!has(&w.take(), &Output::Ping));
    w.advance(Duration::from_millis(1));
    assert!(
        has(&w.take(), &Output::Ping),
        "PING after 200 ms of silence"
    );
    w.durable_ack(&[("t", 1)]);
    w.take();
    w.advance(Duration::from_secs(5));
    assert!(
        !has(&w.take(), &Output::Ping),
        "no PING once nothing is pending"
    );
}

#[test]
fn w4_no_keepalive_ping_in_ok_mode() {
    let mut w = World::connected(config(1));
    w.append(1);
    w.take();
    w.advance(Duration::from_secs(5));
    assert!(!has(&w.take(), &Output::Ping));
}

#[test]
fn w4_reconnect_drops_durable_tracking() {
    let mut w = World::connected(durable());
    w.append(2);
    w.take();
    w.ok(0, &[("t", 1)]);
    w.disconnect(None);
    w.await_connect();
    w.accept(0);
    assert_eq!(
        w.take_sends(),
        vec![0, 1],
        "unconfirmed frames are replayed"
    );
    // A durable watermark of the old connection no longer counts; the
    // server re-sends cumulative watermarks on the new one.
    w.ok(0, &[("t", 1)]);
    assert_eq!(w.acked(), None);
    w.durable_ack(&[("t", 1)]);
    assert_eq!(w.acked(), Some(0));
}

// ----- W3: error frames and policies ---------------------------------------------

#[test]
fn w3_drop_policy_acknowledges_the_rejected_frame_and_continues() {
    let mut w = World::connected(config(1));
    w.append(3);
    w.take();
    w.error(0x03, 1, "schema mismatch");
    assert_eq!(w.acked(), Some(1));
    let outs = w.take();
    let errs = notifies(&outs);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].category(), ErrorCategory::SchemaMismatch);
    assert_eq!(errs[0].policy(), ErrorPolicy::DropAndContinue);
    assert!(World::connects(&outs).is_empty());
    assert_eq!(w.engine.total_server_errors(), 1);
    assert_eq!(w.engine.total_error_notifications_delivered(), 1);
    w.ok(2, &[]);
    assert_eq!(w.acked(), Some(2));
}

#[test]
fn w3_drop_in_durable_mode_waits_for_predecessors() {
    let mut w = World::connected(durable());
    w.append(2);
    w.take();
    w.ok(0, &[("t", 3)]);
    w.error(0x09, 1, "table not accepting writes");
    assert_eq!(w.acked(), None, "frame 0 is not durable yet");
    w.durable_ack(&[("t", 3)]);
    assert_eq!(w.acked(), Some(1));
}

#[test]
fn w3_policy_per_status_drop_or_halt() {
    let cases: [(u8, ErrorCategory, ErrorPolicy); 9] = [
        (
            0x03,
            ErrorCategory::SchemaMismatch,
            ErrorPolicy::DropAndContinue,
        ),
        (0x05, ErrorCategory::ParseError, ErrorPolicy::Halt),
        (0x06, ErrorCategory::InternalError, ErrorPolicy::Halt),
        (0x08, ErrorCategory::SecurityError, ErrorPolicy::Halt),
        (
            0x09,
            ErrorCategory::WriteError,
            ErrorPolicy::DropAndContinue,
        ),
        (0x01, ErrorCategory::Unknown, ErrorPolicy::Halt),
        (0x04, ErrorCategory::Unknown, ErrorPolicy::Halt),
        (0x07, ErrorCategory::Unknown, ErrorPolicy::Halt),
        (0xff, ErrorCategory::Unknown, ErrorPolicy::Halt),
    ];
    for (status, category, policy) in cases {
        let mut w = World::connected(config(1));
        w.append(2);
        w.take();
        w.error(status, 0, "rejected");
        let outs = w.take();
        let errs = notifies(&outs);
        assert_eq!(errs.len(), 1, "status {status:#x}");
        assert_eq!(errs[0].category(), category, "status {status:#x}");
        assert_eq!(errs[0].policy(), policy, "status {status:#x}");
        match policy {
            ErrorPolicy::DropAndContinue => {
                assert_eq!(w.acked(), Some(0), "status {status:#x}");
                assert!(w.engine.last_terminal_error().is_none());
            }
            ErrorPolicy::Halt => {
                assert_eq!(w.acked(), None, "status {status:#x}: nothing trimmed");
                assert_eq!(w.engine.connection_state(), ConnectionState::Halted);
                assert!(has(&outs, &Output::CloseConnection { code: CLOSE_NORMAL }));
                assert_eq!(
                    w.engine.begin_append(w.now, 16),
                    Err(EngineError::Terminal(errs[0].clone()))
                );
                assert!(matches!(
                    w.engine.flush(w.now),
                    Err(EngineError::Terminal(_))
                ));
            }
        }
    }
}

#[test]
fn w3_user_override_turns_halt_into_drop() {
    let mut cfg = config(1);
    cfg.error_policies
        .set(ErrorCategory::ParseError, ErrorPolicy::DropAndContinue)
        .expect("overridable");
    let mut w = World::connected(cfg);
    w.append(1);
    w.take();
    w.error(0x05, 0, "bad");
    assert_eq!(w.acked(), Some(0));
    assert!(w.engine.last_terminal_error().is_none());
}

// ----- close codes, auth, role rejects, budget --------------------------------

#[test]
fn terminal_close_codes_halt_with_the_unacked_span() {
    for code in [1002u16, 1003, 1007, 1008, 1009, 1010] {
        let mut w = World::connected(config(1));
        w.append(4);
        w.take();
        w.ok(0, &[]);
        w.disconnect(Some(code));
        let outs = w.take();
        let errs = notifies(&outs);
        assert_eq!(errs.len(), 1, "code {code}");
        let e = &errs[0];
        assert_eq!(e.category(), ErrorCategory::ProtocolViolation);
        assert_eq!(e.status(), None);
        assert_eq!(e.wire_seq(), None);
        assert!(e.message().starts_with(&format!("ws-close[{code}]")));
        let span = e.span().expect("frames 1..3 are unacked");
        assert_eq!((span.from(), span.to()), (Fsn(1), Fsn(3)));
        assert_eq!(w.engine.connection_state(), ConnectionState::Halted);
        w.advance(Duration::from_secs(60));
        assert!(
            World::connects(&w.take()).is_empty(),
            "code {code}: no reconnect"
        );
    }
}

#[test]
fn reconnect_close_codes_reconnect() {
    for code in [1000u16, 1001, 1006, 1011, 4000, 3000] {
        let mut w = World::connected(config(1));
        w.append(1);
        w.take();
        w.disconnect(Some(code));
        assert!(notifies(&w.log).is_empty(), "code {code}");
        assert_eq!(w.await_connect(), 0, "code {code}");
        assert!(w.engine.last_terminal_error().is_none());
    }
}

#[test]
fn auth_rejection_is_terminal_security_error() {
    for status in [401u16, 403] {
        let mut cfg = config(2);
        cfg.initial_connect_retry = InitialConnectRetry::On;
        let mut w = World::new(cfg);
        w.take();
        w.append(2);
        w.answer_upgrade(0, status, &[]);
        let outs = w.take();
        let errs = notifies(&outs);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].category(), ErrorCategory::SecurityError);
        assert!(World::connects(&outs).is_empty(), "host 1 is not tried");
        assert_eq!(w.engine.connection_state(), ConnectionState::Halted);
        let span = errs[0].span().expect("unacked");
        assert_eq!((span.from(), span.to()), (Fsn(0), Fsn(1)));
    }
}

#[test]
fn role_reject_rounds_walk_hosts_and_sleep_initial_without_doubling() {
    let mut cfg = config(2);
    cfg.initial_connect_retry = InitialConnectRetry::On;
    let mut w = World::new(cfg);
    assert_eq!(World::connects(&w.take()), vec![0]);
    let role: [(&str, &[u8]); 1] = [("X-QuestDB-Role", b"PRIMARY_CATCHUP")];
    for round in 0..4 {
        w.answer_upgrade(0, 421, &role);
        assert_eq!(
            World::connects(&w.take()),
            vec![1],
            "round {round}: walk on, no sleep"
        );
        let before = w.now;
        w.answer_upgrade(1, 421, &role);
        assert!(
            World::connects(&w.take()).is_empty(),
            "round {round}: sleep"
        );
        assert_eq!(
            w.engine.connection_state(),
            ConnectionState::Down {
                sleep_until: Some(before.saturating_add(Duration::from_millis(100)))
            },
            "round {round}: the role-reject sleep is the initial backoff"
        );
        assert!(w.fire_next_timeout());
        assert_eq!(World::connects(&w.take()), vec![0], "round {round}");
    }
    assert!(w.engine.last_terminal_error().is_none());
}

#[test]
fn budget_exhaustion_is_terminal_protocol_violation_with_the_unacked_span() {
    let mut cfg = config(1);
    cfg.backoff = BackoffConfig::new(
        Duration::from_millis(10),
        Duration::from_millis(40),
        Duration::from_millis(500),
    )
    .expect("valid backoff");
    let mut w = World::connected(cfg);
    w.append(3);
    w.take();
    w.ok(0, &[]);
    w.disconnect(None);
    let mut attempts = 0;
    loop {
        let outs = w.take();
        if !notifies(&outs).is_empty() {
            let e = &notifies(&outs)[0];
            assert_eq!(e.category(), ErrorCategory::ProtocolViolation);
            assert!(e.is_terminal());
            let span = e.span().expect("unacked");
            assert_eq!((span.from(), span.to()), (Fsn(1), Fsn(2)));
            break;
        }
        for host in World::connects(&outs) {
            attempts += 1;
            w.connect_failed(host);
        }
        if w.log.is_empty() {
            assert!(w.fire_next_timeout(), "a sleeping loop always has a timer");
        }
        assert!(attempts < 1000, "the budget must end the loop");
    }
    assert!(w.now <= Instant(0).saturating_add(Duration::from_millis(600)));
    assert_eq!(w.engine.connection_state(), ConnectionState::Halted);
    assert!(w.engine.total_reconnect_attempts() >= 2);
    assert_eq!(w.engine.total_reconnects_succeeded(), 0);
}

#[test]
fn initial_connect_failure_is_terminal_with_retry_off() {
    let mut w = World::new(config(1));
    w.take();
    w.connect_failed(0);
    let errs = notifies(&w.take());
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].category(), ErrorCategory::ProtocolViolation);
}

// ----- timeouts ------------------------------------------------------------------

#[test]
fn ack_timeout_drops_a_silent_connection_and_reconnects() {
    let mut cfg = config(1);
    cfg.ack_timeout = Some(Duration::from_secs(1));
    let mut w = World::connected(cfg);
    w.append(2);
    w.take();
    assert_eq!(
        w.engine.poll_timeout(),
        Some(w.now.saturating_add(Duration::from_secs(1)))
    );
    w.advance(Duration::from_millis(999));
    assert!(World::connects(&w.take()).is_empty());
    w.advance(Duration::from_millis(1));
    let outs = w.take();
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Warn(EngineWarning::AckTimeout { in_flight: 2 }))));
    assert!(has(
        &outs,
        &Output::CloseConnection {
            code: CLOSE_GOING_AWAY
        }
    ));
    w.log = outs;
    assert_eq!(w.await_connect(), 0);
    w.accept(0);
    assert_eq!(w.take_sends(), vec![0, 1]);
}

#[test]
fn connect_timeout_counts_as_a_failed_host() {
    let mut cfg = config(2);
    cfg.connect_timeout = Duration::from_secs(3);
    let mut w = World::new(cfg);
    assert_eq!(World::connects(&w.take()), vec![0]);
    w.advance(Duration::from_secs(3));
    let outs = w.take();
    assert!(has(
        &outs,
        &Output::Warn(EngineWarning::ConnectTimedOut { host: 0 })
    ));
    // First connect with initial_connect_retry=off: terminal.
    assert_eq!(notifies(&outs).len(), 1);
}

// ----- lifecycle: flush and close --------------------------------------------------

#[test]
fn c1_flush_in_memory_durability_is_done_at_once() {
    let mut w = World::new(config(1));
    w.append(2);
    let ticket = w.engine.flush(w.now).expect("flush");
    assert_eq!(w.engine.is_flushed(ticket), Ok(true));
}

#[test]
fn c1_flush_in_flush_durability_waits_for_the_sync() {
    use sf_core::durability::DurabilityMode;
    use sf_core::storage::StorageConfig;
    let mut cfg = config(1);
    cfg.storage = StorageConfig {
        durability: DurabilityMode::Flush,
        ..StorageConfig {
            segment_bytes: 4096,
            max_total_bytes: 64 * 1024,
            ..StorageConfig::files()
        }
    };
    let mut w = World::new(cfg);
    w.storage_mode = engine_harness::StorageMode::HoldSyncs;
    w.append(2);
    let ticket = w.engine.flush(w.now).expect("flush");
    w.pump();
    assert_eq!(w.engine.is_flushed(ticket), Ok(false));
    assert!(!w.held.is_empty(), "the flush asked for a sync");
    w.release_syncs();
    assert_eq!(w.engine.is_flushed(ticket), Ok(true));
}

fn closed(outs: &[Output]) -> Option<(Result<(), sf_core::errors::SenderError>, bool)> {
    outs.iter().find_map(|o| match o {
        Output::Closed { result, drained } => Some((result.clone(), *drained)),
        _ => None,
    })
}

#[test]
fn c2_close_drains_until_everything_is_acknowledged() {
    let mut w = World::connected(config(1));
    w.append(3);
    w.take();
    w.engine.close(w.now).expect("close starts");
    w.pump();
    assert!(closed(&w.take()).is_none(), "frames 0..2 are not acked yet");
    assert_eq!(w.engine.begin_append(w.now, 16), Err(EngineError::Closed));
    w.ok(2, &[]);
    let outs = w.take();
    let released = outs.iter().position(|o| *o == Output::Released);
    let closed_at = outs.iter().position(|o| matches!(o, Output::Closed { .. }));
    assert!(
        released.is_some() && released < closed_at,
        "release, then close"
    );
    assert_eq!(closed(&outs), Some((Ok(()), true)));
    assert!(has(&outs, &Output::CloseConnection { code: CLOSE_NORMAL }));
    assert_eq!(w.engine.poll_timeout(), None);
}

/// [`config`] over file backing, where `.ack-watermark` exists.
fn file_backed_config() -> sf_core::engine::EngineConfig {
    let mut cfg = config(1);
    cfg.storage = sf_core::storage::StorageConfig {
        segment_bytes: 4096,
        max_total_bytes: 64 * 1024,
        ..sf_core::storage::StorageConfig::files()
    };
    cfg
}

/// S8 at close (found by the CLI's drain test): the last acknowledgement's
/// `.ack-watermark` write must complete before the slot is released, or a
/// restart replays the frames acknowledged since the previous write.
#[test]
fn s8_close_waits_for_the_watermark_it_owes() {
    let mut cfg = file_backed_config();
    cfg.close_flush_timeout = Some(Duration::from_millis(5000));
    let mut w = World::connected(cfg);
    w.append(3);
    w.take();
    w.storage_mode = engine_harness::StorageMode::HoldWatermarks;
    w.engine.close(w.now).expect("close starts");
    w.pump();
    w.ok(2, &[]);
    let outs = w.take();
    assert!(
        !w.held.is_empty(),
        "the ack asked for a watermark write: {outs:?}"
    );
    assert!(
        closed(&outs).is_none() && !has(&outs, &Output::Released),
        "released before the watermark of FSN 2 was written"
    );
    w.release_held();
    let outs = w.take();
    assert_eq!(closed(&outs), Some((Ok(()), true)));
}

/// W5 for the wait above: a watermark write that never completes does not
/// hold the close past its deadline, and the drain still counts as drained
/// (every frame was acknowledged; only a restart could replay some).
#[test]
fn w5_close_does_not_wait_past_its_deadline_for_the_watermark() {
    let mut cfg = file_backed_config();
    cfg.close_flush_timeout = Some(Duration::from_millis(5000));
    cfg.ack_timeout = None;
    let mut w = World::connected(cfg);
    w.append(1);
    w.take();
    w.storage_mode = engine_harness::StorageMode::HoldWatermarks;
    w.engine.close(w.now).expect("close starts");
    w.ok(0, &[]);
    assert!(closed(&w.take()).is_none());
    w.advance(Duration::from_millis(5000));
    assert_eq!(closed(&w.take()), Some((Ok(()), true)));
}

#[test]
fn c2_close_drain_times_out_then_releases() {
    let mut cfg = config(1);
    cfg.close_flush_timeout = Some(Duration::from_millis(5000));
    cfg.ack_timeout = None;
    let mut w = World::connected(cfg);
    w.append(2);
    w.take();
    w.engine.close(w.now).expect("close starts");
    w.pump();
    w.advance(Duration::from_millis(4999));
    assert!(closed(&w.take()).is_none());
    w.advance(Duration::from_millis(1));
    let outs = w.take();
    assert_eq!(closed(&outs), Some((Ok(()), false)));
    assert!(outs
        .iter()
        .any(|o| matches!(o, Output::Warn(EngineWarning::CloseDrainTimedOut { .. }))));
}

#[test]
fn c2_fast_close_skips_the_drain() {
    let mut cfg = config(1);
    cfg.close_flush_timeout = None;
    let mut w = World::connected(cfg);
    w.append(2);
    w.take();
    w.engine.close(w.now).expect("close");
    w.pump();
    assert_eq!(closed(&w.take()), Some((Ok(()), false)));
    assert!(w.engine.is_released());
}

#[test]
fn c2_close_returns_the_latched_terminal_error_without_draining() {
    for timeout in [Some(Duration::from_secs(5)), None] {
        let mut cfg = config(1);
        cfg.close_flush_timeout = timeout;
        let mut w = World::connected(cfg);
        w.append(2);
        w.take();
        w.error(0x05, 0, "parse");
        let err = w.engine.last_terminal_error().cloned().expect("latched");
        w.take();
        w.engine.close(w.now).expect("close");
        w.pump();
        let outs = w.take();
        assert!(
            has(&outs, &Output::Released),
            "{timeout:?}: always releases"
        );
        assert_eq!(closed(&outs), Some((Err(err), false)), "{timeout:?}");
    }
}

#[test]
fn c2_close_twice_is_refused() {
    let mut w = World::new(config(1));
    w.engine.close(w.now).expect("close");
    assert_eq!(w.engine.close(w.now), Err(EngineError::Closed));
}

// ----- backpressure (S6) and counters ------------------------------------------------

fn tiny_cap() -> sf_core::engine::EngineConfig {
    let mut c = config(1);
    c.storage.segment_bytes = 256;
    c.storage.max_total_bytes = 512;
    c.storage.append_deadline = Duration::from_secs(1);
    c.ack_timeout = None;
    c
}

fn fill_until_wait(w: &mut World) -> usize {
    let mut n = 0;
    while w.try_append().is_some() {
        n += 1;
        assert!(n < 1000, "the cap must bite");
    }
    n
}

#[test]
fn s6_backpressure_while_reconnecting_says_so() {
    let mut cfg = tiny_cap();
    cfg.initial_connect_retry = InitialConnectRetry::On;
    let mut w = World::new(cfg);
    w.take();
    fill_until_wait(&mut w);
    assert_eq!(w.engine.total_backpressure_stalls(), 1);
    let deadline = w
        .engine
        .poll_timeout()
        .expect("the append deadline is a timer");
    assert!(deadline <= w.now.saturating_add(Duration::from_secs(1)));
    w.advance(Duration::from_secs(1));
    match w.engine.begin_append(w.now, 16) {
        Err(EngineError::Append(AppendError::Backpressure(b))) => {
            assert!(
                matches!(b.link, LinkState::Reconnecting { attempts, .. } if attempts >= 1),
                "{b}"
            );
        }
        other => panic!("expected backpressure, got {other:?}"),
    }
}

#[test]
fn s6_backpressure_while_connected_says_the_wire_is_up() {
    let mut w = World::connected(tiny_cap());
    fill_until_wait(&mut w);
    w.take();
    w.advance(Duration::from_secs(1));
    match w.engine.begin_append(w.now, 16) {
        Err(EngineError::Append(AppendError::Backpressure(b))) => {
            assert_eq!(b.link, LinkState::Up);
        }
        other => panic!("expected backpressure, got {other:?}"),
    }
}

#[test]
fn w5_cap_wait_ends_on_progress() {
    let mut w = World::connected(tiny_cap());
    let n = fill_until_wait(&mut w);
    let sent = w.take_sends();
    assert_eq!(sent.len(), n);
    w.ok(i64::try_from(n - 1).expect("small"), &[]);
    // Acknowledgement trimmed the sealed segment: the producer may go on.
    let decision = w.engine.begin_append(w.now, 16).expect("accepted");
    assert!(matches!(decision, AppendDecision::Place(_)), "{decision:?}");
}

#[test]
fn counters_start_at_zero_and_track_events() {
    let mut w = World::connected(config(1));
    assert_eq!(w.engine.total_reconnect_attempts(), 0);
    assert_eq!(w.engine.total_reconnects_succeeded(), 0);
    assert_eq!(w.engine.total_frames_replayed(), 0);
    assert_eq!(w.engine.total_server_errors(), 0);
    assert_eq!(w.engine.dropped_error_notifications(), 0);
    assert_eq!(w.engine.total_error_notifications_delivered(), 0);
    assert_eq!(w.engine.total_backpressure_stalls(), 0);
    assert!(w.engine.last_terminal_error().is_none());
    w.append(2);
    w.take();
    w.error(0x03, 0, "a");
    w.error(0x09, 1, "b");
    assert_eq!(w.engine.total_server_errors(), 2);
    assert_eq!(w.engine.total_error_notifications_delivered(), 2);
    assert_eq!(w.engine.published_fsn(), Some(Fsn(1)));
    assert_eq!(w.engine.acked_fsn(), Some(Fsn(1)));
    assert_eq!(w.engine.in_flight_frames(), 0);
}

#[test]
fn oldest_pending_durable_age_grows_until_covered() {
    let mut w = World::connected(durable());
    w.append(1);
    w.take();
    w.ok(0, &[("t", 1)]);
    let t0 = w.now;
    w.advance(Duration::from_millis(150));
    assert_eq!(
        w.engine.oldest_pending_durable_age(w.now),
        Some(w.now.saturating_duration_since(t0))
    );
    w.durable_ack(&[("t", 1)]);
    assert_eq!(w.engine.oldest_pending_durable_age(w.now), None);
}

// ----- restart: replay of a recovered slot ------------------------------------------

/// A slot recovered with frames 0..=4 of which 0..=1 are acknowledged
/// (files backing, 24-byte frames after the 24-byte header).
fn recovered_slot() -> sf_core::recovery::RecoveredSlot {
    use sf_core::recovery::{RecoveredSegment, RecoveredSlot};
    use sf_core::SegmentGen;
    RecoveredSlot {
        segments: vec![RecoveredSegment {
            gen: Some(SegmentGen(0)),
            base_fsn: Fsn(0),
            frame_offsets: vec![24, 48, 72, 96, 120],
            append_offset: 144,
            file_size: 4096,
            torn_tail_bytes: 0,
        }],
        leftover_spares: Vec::new(),
        next_fsn: Fsn(5),
        acked: Some(Fsn(1)),
        next_gen: SegmentGen(1),
    }
}

fn files_config() -> sf_core::engine::EngineConfig {
    let mut c = config(1);
    c.storage = sf_core::storage::StorageConfig {
        segment_bytes: 4096,
        max_total_bytes: 64 * 1024,
        ..sf_core::storage::StorageConfig::files()
    };
    c
}

#[test]
fn w1_restart_replays_recovered_frames_from_acked_plus_one() {
    let mut w = World::with_slot(files_config(), recovered_slot(), 1);
    w.take();
    w.append(1);
    w.accept(0);
    let outs = w.take();
    let sends: Vec<(u64, u64)> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Send { fsn, location } => Some((fsn.get(), location.offset)),
            _ => None,
        })
        .collect();
    assert_eq!(
        sends,
        vec![(2, 72), (3, 96), (4, 120), (5, 144)],
        "recovered frames from acked + 1 at their offsets, then the new one"
    );
    assert_eq!(
        w.engine.total_frames_replayed(),
        3,
        "only frames from the earlier run are re-sends"
    );
    w.ok(0, &[]);
    assert_eq!(w.acked(), Some(2), "wire seq 0 is FSN acked + 1");
}

#[test]
fn first_connection_of_a_fresh_slot_replays_nothing() {
    let mut w = World::new(config(1));
    w.take();
    w.append(3);
    w.accept(0);
    assert_eq!(w.take_sends(), vec![0, 1, 2]);
    assert_eq!(w.engine.total_frames_replayed(), 0);
    assert_eq!(w.engine.total_reconnect_attempts(), 0);
    assert_eq!(w.engine.total_reconnects_succeeded(), 0);
}

#[test]
fn error_inbox_drops_oldest_when_the_adapter_does_not_poll() {
    use qwp_proto::response::{ErrorFrame, Response};
    use sf_core::engine::Input;
    let mut cfg = config(1);
    cfg.error_inbox_capacity = 16;
    let mut w = World::connected(cfg);
    w.append(20);
    w.take();
    for seq in 0..20i64 {
        let mut bytes = Vec::new();
        Response::Error(ErrorFrame::new(0x03, seq, format!("e{seq}")).expect("status"))
            .encode_into(&mut bytes)
            .expect("encodes");
        w.engine
            .handle_input(w.now, Input::Received(&bytes))
            .expect("accepted");
    }
    assert_eq!(w.engine.dropped_error_notifications(), 4);
    w.pump();
    let errs = notifies(&w.take());
    assert_eq!(errs.len(), 16);
    assert_eq!(errs[0].message(), "e4", "the oldest were dropped");
    assert_eq!(w.engine.total_error_notifications_delivered(), 16);
    assert_eq!(w.engine.total_server_errors(), 20);
    assert_eq!(w.acked(), Some(19));
}

#[test]
fn w1_sends_queued_for_a_dead_connection_are_discarded() {
    use sf_core::engine::Input;
    let mut w = World::connected(config(1));
    // Publish without draining outputs: the sends sit in the engine's queue.
    for _ in 0..3 {
        let AppendDecision::Place(p) = w.engine.begin_append(w.now, 16).expect("ok") else {
            panic!("room expected");
        };
        w.engine.commit_append(w.now, p, Ok(())).expect("commit");
    }
    w.engine
        .handle_input(
            w.now,
            Input::Disconnected {
                close_code: None,
                reason: "reset",
            },
        )
        .expect("accepted");
    w.pump();
    assert!(
        w.take_sends().is_empty(),
        "sends decided for the dead connection never reach the adapter"
    );
    w.await_connect();
    w.accept(0);
    assert_eq!(w.take_sends(), vec![0, 1, 2]);
}
