//! Regression scenarios for DESIGN §6 items 5 and 6, and W1/W3 across
//! reconnects, driven through the public `ack`, `durable_ack` and `errors`
//! APIs the way the engine drives them.

use qwp_proto::status::ErrorCategory;
use qwp_proto::status::ErrorPolicy;
use sf_core::ack::{InFlightWindow, TrimDriver, WireMapping};
use sf_core::durable_ack::DurableAckTracker;
use sf_core::errors::{
    CloseAction, ErrorAction, ErrorPolicies, ServerErrors, DEFAULT_ERROR_INBOX_CAPACITY,
};
use sf_core::{Fsn, Instant, WireSeq};

const T0: Instant = Instant(0);

/// What a run against a server that rejects one frame's bytes every time
/// produced.
struct PoisonRun {
    sends_of_poisoned: u32,
    connects: u32,
    acked: Option<Fsn>,
    halted: bool,
}

/// Slot with FSN 0..=9 published; the server rejects FSN `poisoned` with
/// `status` every time it sees those bytes, OKs (and, in durable mode, durably
/// acknowledges) every other frame, and closes the connection with a
/// reconnect-eligible 1011 after each error, which is what tempts a client to
/// reconnect and resend. At most 20 connections.
fn run_against_poisoning_server(
    status: u8,
    policies: ErrorPolicies,
    driver: TrimDriver,
    poisoned: Fsn,
) -> PoisonRun {
    let published = Some(Fsn(9));
    let mut errors = ServerErrors::new(policies, DEFAULT_ERROR_INBOX_CAPACITY).unwrap();
    let mut durable = DurableAckTracker::new(200);
    let mut acked: Option<Fsn> = None;
    let mut run = PoisonRun {
        sends_of_poisoned: 0,
        connects: 0,
        acked: None,
        halted: false,
    };
    'connections: while run.connects < 20 && acked != published {
        if errors.terminal().is_some() {
            break;
        }
        run.connects += 1;
        durable.reset();
        let mut m = WireMapping::connect(acked, published, driver, InFlightWindow::default(), T0);
        while let Some(fsn) = m.next_to_send(published) {
            let seq = m.on_sent(fsn, T0).unwrap();
            let seq = i64::try_from(seq.get()).unwrap();
            if fsn == poisoned {
                run.sends_of_poisoned += 1;
                let verdict =
                    errors.on_error_frame(status, seq, "rejected", &mut m, &mut durable, T0);
                acked = m.acked();
                if errors.terminal().is_some() {
                    assert_eq!(verdict.action, ErrorAction::Halt);
                    break 'connections;
                }
                // The server closes after the error: the client reconnects.
                assert_eq!(
                    errors.on_close(1011, "", acked, published),
                    CloseAction::Reconnect
                );
                continue 'connections;
            }
            let ok = m.on_ok(seq, &[("t", seq)], T0).unwrap();
            if driver == TrimDriver::DurableAck {
                let covered = durable
                    .on_ok(ok.wire_seq, &[("t", seq)], T0)
                    .or_else(|| durable.on_durable_ack(&[("t", seq)]));
                if let Some(c) = covered {
                    m.acknowledge_wire_seq(c);
                }
            }
            acked = m.acked();
        }
    }
    run.acked = acked;
    run.halted = errors.terminal().is_some();
    run
}

#[test]
fn w3_poisoned_frame_drops_or_halts_never_loops() {
    let statuses = [0x03, 0x05, 0x06, 0x08, 0x09, 0x01, 0x04, 0x07, 0xff];
    for driver in [TrimDriver::Ok, TrimDriver::DurableAck] {
        for status in statuses {
            let category = ErrorCategory::from_status(status);
            let mut all_drop = ErrorPolicies::new();
            all_drop.set_server_default(ErrorPolicy::DropAndContinue);
            let mut all_halt = ErrorPolicies::new();
            all_halt.set_server_default(ErrorPolicy::Halt);
            for (label, policies) in [
                ("default", ErrorPolicies::new()),
                ("drop", all_drop),
                ("halt", all_halt),
            ] {
                let policy = policies.resolve(category);
                let run = run_against_poisoning_server(status, policies, driver, Fsn(4));
                let ctx = format!("{driver:?} status {status:#04x} {label} → {policy:?}");
                assert_eq!(run.sends_of_poisoned, 1, "{ctx}: poisoned frame resent");
                match policy {
                    ErrorPolicy::DropAndContinue => {
                        assert!(!run.halted, "{ctx}");
                        assert_eq!(run.acked, Some(Fsn(9)), "{ctx}: everything else delivered");
                        assert_eq!(run.connects, 2, "{ctx}");
                    }
                    ErrorPolicy::Halt => {
                        assert!(run.halted, "{ctx}");
                        assert_eq!(run.connects, 1, "{ctx}: a halted sender never reconnects");
                        assert!(
                            run.acked < Some(Fsn(4)),
                            "{ctx}: HALT keeps the rejected frame"
                        );
                    }
                }
            }
        }
    }
}

/// DESIGN §6 item 5: a server error on a frame was treated as transient:
/// reconnect and resend the same bytes forever. The poisoned frame is the very
/// first one (FSN 0), where an off-by-one or an unacknowledged drop would
/// replay it on every connection.
#[test]
fn regression_5_server_error_is_never_transient() {
    for driver in [TrimDriver::Ok, TrimDriver::DurableAck] {
        for status in [0x03, 0x09] {
            let run = run_against_poisoning_server(status, ErrorPolicies::new(), driver, Fsn(0));
            assert_eq!(run.sends_of_poisoned, 1, "{driver:?} {status:#x}");
            assert_eq!(run.acked, Some(Fsn(9)), "{driver:?} {status:#x}");
        }
        for status in [0x05, 0x06, 0x08, 0x07] {
            let run = run_against_poisoning_server(status, ErrorPolicies::new(), driver, Fsn(0));
            assert_eq!(run.sends_of_poisoned, 1, "{driver:?} {status:#x}");
            assert!(run.halted, "{driver:?} {status:#x}");
            assert_eq!(run.acked, None, "{driver:?} {status:#x}");
        }
    }
}

/// DESIGN §6 item 6: an ACK for a future sequence trimmed frames the new
/// server never saw. Connection 1 sent FSN 0..=9 and got OK up to 4; after a
/// reconnect, connection 2 has sent only FSN 5 and 6 when an OK numbered for
/// the old connection (sequence 9) arrives.
#[test]
fn regression_6_future_ok_never_trims_unsent_frames() {
    let published = Some(Fsn(9));
    for driver in [TrimDriver::Ok, TrimDriver::DurableAck] {
        let mut first =
            WireMapping::connect(None, published, driver, InFlightWindow::default(), T0);
        for _ in 0..10 {
            let fsn = first.next_fsn();
            first.on_sent(fsn, T0).unwrap();
        }
        first.on_ok(4, &[], T0).unwrap();
        let acked = first.acknowledge_wire_seq(WireSeq(4)).or(first.acked());
        assert_eq!(acked, Some(Fsn(4)));

        let mut durable = DurableAckTracker::new(200);
        let mut second =
            WireMapping::connect(acked, published, driver, InFlightWindow::default(), T0);
        assert_eq!(second.fsn_at_zero(), Fsn(5));
        second.on_sent(Fsn(5), T0).unwrap();
        second.on_sent(Fsn(6), T0).unwrap();
        let ok = second.on_ok(9, &[("t", 1)], T0).unwrap();
        assert!(ok.clamped, "{driver:?}");
        assert_eq!(ok.wire_seq, WireSeq(1), "{driver:?}");
        assert_eq!(ok.fsn, Fsn(6), "{driver:?}: FSN 14 was never sent");
        if driver == TrimDriver::DurableAck {
            assert_eq!(
                second.acked(),
                Some(Fsn(4)),
                "OKs do not trim in durable mode"
            );
            let covered = durable.on_durable_ack(&[("t", 1)]);
            assert_eq!(covered, None);
            let covered = durable.on_ok(ok.wire_seq, &[("t", 1)], T0).unwrap();
            second.acknowledge_wire_seq(covered);
        }
        assert_eq!(second.acked(), Some(Fsn(6)), "{driver:?}");
        // FSN 7..=9 are still owed to the server, in order.
        assert_eq!(second.next_to_send(published), Some(Fsn(7)), "{driver:?}");
    }
}

#[test]
fn w1_replay_restarts_at_acked_plus_one_after_each_reconnect() {
    let published = Some(Fsn(7));
    let mut acked = None;
    let mut order = Vec::new();
    let mut replayed = 0;
    // Each connection sends everything, gets one OK for its second frame,
    // then drops.
    for _ in 0..4 {
        let mut m = WireMapping::connect(
            acked,
            published,
            TrimDriver::Ok,
            InFlightWindow::default(),
            T0,
        );
        assert_eq!(m.fsn_at_zero(), acked.map_or(Fsn(0), Fsn::next));
        let mut sent = Vec::new();
        while let Some(fsn) = m.next_to_send(published) {
            m.on_sent(fsn, T0).unwrap();
            sent.push(fsn.get());
        }
        if sent.len() >= 2 {
            m.on_ok(1, &[], T0).unwrap();
        }
        replayed += m.frames_replayed();
        acked = m.acked();
        order.push(sent);
    }
    assert_eq!(
        order,
        vec![
            vec![0, 1, 2, 3, 4, 5, 6, 7],
            vec![2, 3, 4, 5, 6, 7],
            vec![4, 5, 6, 7],
            vec![6, 7],
        ]
    );
    assert_eq!(replayed, 8 + 6 + 4 + 2);
    assert_eq!(acked, Some(Fsn(7)));
}
