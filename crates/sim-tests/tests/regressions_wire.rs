//! Named scenarios for the wire bugs of the DESIGN §6 regression catalogue
//! (items 2, 5, 6, 7, 14 and 16), driven step by step through the simulator
//! with exact, scripted network and server faults. Each scenario asserts the
//! invariant the bug broke, by name, and fails on a build carrying the bug
//! (the mutation each was checked against is named in its doc comment).

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::time::Duration;

use qwp_proto::status::{ErrorCategory, STATUS_PARSE_ERROR, STATUS_WRITE_ERROR};
use sf_core::ack::InFlightWindow;
use sf_core::config::InitialConnectRetry;
use sf_core::engine::{ConnectionState, EngineConfig};
use sf_core::storage::StorageConfig;
use sf_io_sim::{ConnectFault, MessageFault, Sim, SimOptions};

/// No random faults: every fault in these scenarios is scripted.
fn options() -> SimOptions {
    SimOptions {
        faults: Some(Vec::new()),
        max_duration: Duration::from_secs(5),
        liveness_bound: Duration::from_secs(60),
        ..SimOptions::default()
    }
}

/// Memory backing, one host, connects retried from the start, a 30 s ACK
/// timeout (longer than any scenario needs, so a wait that only the
/// timeout ends shows).
fn config() -> EngineConfig {
    let mut c = EngineConfig::new(StorageConfig::memory(), NonZeroUsize::MIN);
    c.initial_connect_retry = InitialConnectRetry::On;
    c.ack_timeout = Some(Duration::from_secs(30));
    c.close_flush_timeout = Some(Duration::from_secs(10));
    c
}

fn is_up(sim: &Sim) -> bool {
    sim.engine()
        .is_some_and(|e| matches!(e.connection_state(), ConnectionState::Connected { .. }))
}

/// A world whose first connection is up.
fn connected_sim(seed: u64, config: EngineConfig) -> Sim {
    let mut sim = Sim::with_config(seed, &options(), config);
    assert!(
        sim.run_until(is_up, Duration::from_secs(5)),
        "the first connect did not come up"
    );
    sim
}

/// Every row id the producer committed so far (ids are consecutive from 0).
fn committed(sim: &Sim) -> BTreeSet<i64> {
    let rows = i64::try_from(sim.stats().rows).unwrap_or(i64::MAX);
    (0..rows).collect()
}

/// Every row id some server committed.
fn delivered(sim: &Sim) -> BTreeSet<i64> {
    sim.network()
        .accepted()
        .iter()
        .flat_map(|m| m.row_ids())
        .collect()
}

fn assert_no_violations(sim: &Sim) {
    let v = sim.violations();
    assert!(v.is_empty(), "violations: {v:#?}");
}

fn injected(sim: &Sim, name: &str) -> u64 {
    sim.network()
        .stats()
        .injected
        .get(name)
        .copied()
        .unwrap_or(0)
}

/// §6 item 2: reconnect attempts dropped the batch that was waiting to be
/// written. Frames published while the connection is down and connects
/// keep failing must all go out once a connect succeeds (W1: replay starts
/// at `acked + 1`).
///
/// Checked against: `WireMapping::connect(self.storage.acked_fsn(), …)` in
/// `Engine::on_connected` changed to start at `published_fsn()`.
#[test]
fn reg02_w1_batch_waiting_through_reconnect_attempts_is_delivered() {
    let mut sim = connected_sim(2, config());
    for _ in 0..3 {
        sim.append_rows(4).unwrap();
    }
    sim.flush().unwrap();
    assert!(sim.run_until_idle());
    // The next frame's connection resets, and the next four connects are
    // refused while the producer keeps writing.
    sim.network_mut().script_message(MessageFault::DropBefore);
    for _ in 0..4 {
        sim.network_mut().script_connect(ConnectFault::Refuse);
    }
    for _ in 0..6 {
        sim.append_rows(4).unwrap();
        sim.flush().unwrap();
        sim.run_for(Duration::from_millis(100));
    }
    assert!(
        sim.run_until_idle(),
        "W1: frames published during the outage were never acknowledged"
    );
    assert_eq!(injected(&sim, "connect_refused"), 4);
    assert_eq!(injected(&sim, "drop_before"), 1);
    let missing: Vec<i64> = committed(&sim)
        .difference(&delivered(&sim))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "W1: rows of the batch waiting through the reconnect attempts never reached the server: {missing:?}"
    );
    assert_no_violations(&sim);
}

/// §6 item 5: a server error on a frame was treated as transient, so the
/// client reconnected and resent the same bytes forever. The server here
/// refuses the frame carrying row 5 every time it sees it (a poisoned
/// frame): with the default DROP_AND_CONTINUE policy of WRITE_ERROR the
/// frame is dropped once and the rest is delivered on the same connection
/// (W3).
///
/// Checked against: the `ErrorAction::Continue` arm of
/// `Engine::on_error_frame` replaced by
/// `self.fail_connection(now, Some(CLOSE_GOING_AWAY))`.
#[test]
fn reg05_w3_rejected_frame_is_dropped_not_resent_forever() {
    let mut sim = connected_sim(5, config());
    sim.network_mut().poison_row(5, STATUS_WRITE_ERROR);
    for _ in 0..10 {
        sim.append_rows(1).unwrap();
    }
    sim.flush().unwrap();
    let idle = sim.run_until_idle();
    let rejections = sim
        .network()
        .rejected()
        .iter()
        .filter(|r| r.row_ids.contains(&5))
        .count();
    assert_eq!(
        rejections, 1,
        "W3: the poisoned frame was sent again after its reject"
    );
    assert!(idle, "W3: the dropped frame was never acknowledged");
    assert_eq!(
        sim.network().stats().connects,
        1,
        "W3: a reject reconnected"
    );
    let mut expected = committed(&sim);
    expected.remove(&5);
    assert_eq!(delivered(&sim), expected);
    assert_no_violations(&sim);
}

/// §6 item 5, the HALT side: PARSE_ERROR (default HALT) latches a terminal
/// error after one reject, and nothing is resent (W3).
///
/// Checked against: the same mutation, applied to the `ErrorAction::Halt`
/// arm (`self.stop_loop()` replaced by a reconnect).
#[test]
fn reg05_w3_halting_status_stops_instead_of_looping() {
    let mut sim = connected_sim(55, config());
    sim.network_mut().poison_row(2, STATUS_PARSE_ERROR);
    for _ in 0..5 {
        sim.append_rows(1).unwrap();
    }
    let _ = sim.flush();
    sim.run_for(Duration::from_secs(60));
    assert_eq!(
        sim.network().rejected().len(),
        1,
        "W3: the poisoned frame was sent again after a HALT reject"
    );
    let engine = sim.engine().expect("the engine is still open");
    let error = engine
        .last_terminal_error()
        .expect("W3: PARSE_ERROR must latch a terminal error");
    assert_eq!(error.category(), ErrorCategory::ParseError);
    assert_eq!(engine.connection_state(), ConnectionState::Halted);
    assert_eq!(
        sim.network().stats().connects,
        1,
        "W3: a reject reconnected"
    );
    assert_no_violations(&sim);
}

/// §6 item 6: an ACK for a future sequence trimmed frames the server never
/// saw. With an in-flight window of 2, five frames are published and two
/// sent; the server coalesces their OKs into one that names sequence 4.
/// The client must clamp it to the last frame it sent (W2) and still send
/// and deliver the three frames behind the window.
///
/// Checked against: the W2 clamp removed (`raw.min(last_sent)` → `raw` in
/// `WireMapping::clamp` and `seq.get().min(last_sent)` → `seq.get()` in
/// `WireMapping::acknowledge_wire_seq`).
#[test]
fn reg06_w2_future_sequence_ok_never_trims_unsent_frames() {
    let mut c = config();
    c.in_flight_window = InFlightWindow::new(2).unwrap();
    let mut sim = connected_sim(6, c);
    sim.network_mut().script_message(MessageFault::CoalesceOk);
    sim.network_mut().script_message(MessageFault::FutureOk(3));
    for _ in 0..5 {
        sim.append_rows(2).unwrap();
    }
    let _ = sim.flush();
    let idle = sim.run_until_idle();
    assert_eq!(
        injected(&sim, "future_ok"),
        1,
        "the scenario must deliver an OK for a sequence never sent"
    );
    let missing: Vec<i64> = committed(&sim)
        .difference(&delivered(&sim))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "W2: a future-sequence OK trimmed frames the server never saw: rows {missing:?}"
    );
    assert!(idle, "W2: not everything was acknowledged");
    assert_no_violations(&sim);
}

/// §6 item 7: the replay wait spun forever after the socket dropped
/// mid-replay. A backlog builds during an outage; the connection that
/// replays it is reset after five frames. The wait must end with the drop
/// (W5): the client reconnects at once, long before its 30 s ACK timeout,
/// and replays the rest.
///
/// Checked against: `None => self.fail_connection(now, None)` in
/// `Engine::on_disconnected` replaced by `None => {}` (the drop ignored; only
/// the ACK timeout ends the wait).
#[test]
fn reg07_w5_replay_wait_ends_when_the_socket_drops_mid_replay() {
    let mut sim = connected_sim(7, config());
    // The outage that builds the backlog starts with a close frame (a
    // reconnect-class code), so only the mid-replay drop is a reset.
    sim.network_mut().script_message(MessageFault::Close(1011));
    for _ in 0..3 {
        sim.network_mut().script_connect(ConnectFault::Refuse);
    }
    for _ in 0..20 {
        sim.append_rows(2).unwrap();
    }
    let _ = sim.flush();
    // The replaying connection: five frames, then a reset.
    for _ in 0..5 {
        sim.network_mut().script_message(MessageFault::None);
    }
    sim.network_mut().script_message(MessageFault::DropAfter);
    assert!(
        sim.run_until(
            |s| s.network().stats().injected.contains_key("drop_after"),
            Duration::from_secs(10)
        ),
        "the replay never reached its sixth frame"
    );
    let dropped_at = sim.now();
    assert!(
        sim.run_until(
            |s| s.network().stats().connects_opened >= 3,
            Duration::from_secs(5)
        ),
        "W5: no reconnect within 5 s of the drop (waited on a dead socket since {dropped_at:?})"
    );
    assert!(sim.run_until_idle(), "W5: the replay never completed");
    let missing: Vec<i64> = committed(&sim)
        .difference(&delivered(&sim))
        .copied()
        .collect();
    assert!(missing.is_empty(), "rows never delivered: {missing:?}");
    assert_no_violations(&sim);
}

/// §6 item 14: a schema-reset race let frames encoded for the old
/// connection reach disk. Moot with self-sufficient frames; the scenario
/// keeps them so: every frame replayed after a reconnect is accepted by a
/// fresh server connection, whose decoder starts with an empty symbol
/// dictionary (the server also decodes every frame on its own and records
/// a `SELF_SUFFICIENT` violation otherwise).
///
/// Checked against (the frames are encoded by `qwp-proto`, not `sf-core`):
/// `crate::varint::write(out, 0)` → `crate::varint::write(out, 1)` for the
/// delta start in the encoder's `SymbolDict::write`, i.e. a dictionary that
/// relies on an id declared by an earlier message.
#[test]
fn reg14_self_sufficient_frames_replay_on_a_fresh_connection() {
    let mut sim = connected_sim(14, config());
    for _ in 0..3 {
        sim.network_mut().script_message(MessageFault::None);
    }
    sim.network_mut().script_message(MessageFault::DropAfter);
    for _ in 0..8 {
        sim.append_rows(3).unwrap();
    }
    let _ = sim.flush();
    let idle = sim.run_until_idle();
    let net = sim.network();
    assert!(
        net.violations().is_empty(),
        "SELF_SUFFICIENT: {:#?}",
        net.violations()
    );
    assert!(net.rejected().is_empty(), "{:#?}", net.rejected());
    assert!(idle, "not everything was acknowledged");
    let first = net.accepted()[0].connection;
    let replayed = net
        .accepted()
        .iter()
        .find(|m| m.connection != first && m.wire_seq == 0)
        .expect("a frame was replayed on a second connection");
    let seen_before: BTreeSet<i64> = net
        .accepted()
        .iter()
        .filter(|m| m.connection == first)
        .flat_map(|m| m.row_ids())
        .collect();
    assert!(
        replayed.row_ids().all(|r| seen_before.contains(&r)),
        "the first frame of the new connection is a replay of one the old connection took"
    );
    assert_eq!(delivered(&sim), committed(&sim));
    assert_no_violations(&sim);
}

/// §6 item 16: `close()` returned while published frames were neither sent
/// nor acknowledged, and memory-mode data vanished at exit. Frames are
/// published while the connection is down; `close()` must drain them (C2)
/// before it reports a drained release.
///
/// Checked against: `if fully_acked(storage)` → `if true` in
/// `lifecycle::drain_end`.
#[test]
fn reg16_c2_close_drains_published_frames_before_release() {
    let mut sim = connected_sim(16, config());
    sim.network_mut().script_message(MessageFault::DropBefore);
    for _ in 0..2 {
        sim.network_mut().script_connect(ConnectFault::Refuse);
    }
    for _ in 0..5 {
        sim.append_rows(3).unwrap();
    }
    sim.flush().unwrap();
    let engine = sim.engine().unwrap();
    assert!(
        engine.acked_fsn() < engine.published_fsn(),
        "the scenario must close with unacknowledged frames"
    );
    let (result, drained) = sim.close().expect("close() reports Closed");
    assert!(result.is_ok(), "{result:?}");
    assert!(drained, "C2: the drain timed out");
    assert!(sim.engine().is_none(), "C2: the slot was not released");
    let missing: Vec<i64> = committed(&sim)
        .difference(&delivered(&sim))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "C2: close() released with rows neither sent nor acknowledged: {missing:?}"
    );
    assert_no_violations(&sim);
}
