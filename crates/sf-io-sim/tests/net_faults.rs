//! The simulated network and server, through the public API: what each
//! fault of DESIGN §5 puts on the wire, and what the client's own
//! classification (`qwp_proto::upgrade`, `qwp_proto::status`) makes of it.

use std::time::Duration;

use qwp_proto::encoder::MessageBuilder;
use qwp_proto::response::{Response, TableSeqTxn};
use qwp_proto::status::{close_class, CloseClass, STATUS_PARSE_ERROR, STATUS_WRITE_ERROR};
use qwp_proto::upgrade::{
    classify_upgrade, request_headers, UpgradeFailure, UpgradeOutcome, CLIENT_MAX_VERSION,
    HEADER_ROLE,
};
use sf_core::Instant;
use sf_io_sim::{ConnectFault, MessageFault, NetEvent, NetFaults, SimNetwork, SimRng};

const MS: u64 = 1_000_000;

/// One row per id in `table`, each with a symbol (so the delta dictionary
/// is used) and the `row_id` column.
fn frame(table: &str, ids: &[i64]) -> Vec<u8> {
    let mut b = MessageBuilder::new();
    for id in ids {
        b.table(table)
            .unwrap()
            .symbol("host", if id % 2 == 0 { "even" } else { "odd" })
            .unwrap()
            .column_i64("row_id", *id)
            .unwrap()
            .at_micros(1_700_000_000_000_000 + id)
            .unwrap();
    }
    let mut out = Vec::new();
    b.encode_into(&mut out).unwrap();
    out
}

fn headers(durable: bool) -> Vec<(String, String)> {
    request_headers("sim/1", durable)
        .unwrap()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect()
}

fn net(faults: NetFaults) -> SimNetwork {
    SimNetwork::new(SimRng::new(7), 2, faults)
}

/// Runs the network until `until`, returning every event with its time.
fn run(net: &mut SimNetwork, until: Instant) -> Vec<(Instant, NetEvent)> {
    let mut out = Vec::new();
    while let Some(at) = net.next_event_at() {
        if at > until {
            break;
        }
        while let Some(e) = net.poll_event(at) {
            out.push((at, e));
        }
    }
    out
}

fn events(net: &mut SimNetwork, until: Instant) -> Vec<NetEvent> {
    run(net, until).into_iter().map(|(_, e)| e).collect()
}

fn responses(events: &[NetEvent]) -> Vec<Response> {
    events
        .iter()
        .filter_map(|e| match e {
            NetEvent::Received(b) => Some(Response::decode(b).unwrap()),
            _ => None,
        })
        .collect()
}

fn ok_seqs(events: &[NetEvent]) -> Vec<i64> {
    responses(events)
        .into_iter()
        .filter_map(|r| match r {
            Response::Ok(ok) => Some(ok.sequence),
            _ => None,
        })
        .collect()
}

/// Connects to `host` and returns the upgrade answer as the engine would
/// classify it.
fn connect(net: &mut SimNetwork, now: Instant, host: usize, durable: bool) -> UpgradeOutcome {
    net.connect(now, host, &headers(durable));
    let evs = events(net, Instant(now.0 + 10 * MS));
    let [NetEvent::Connected { status, .. }] = evs.as_slice() else {
        panic!("expected one Connected, got {evs:?}");
    };
    let refs = evs[0].header_refs();
    classify_upgrade(*status, refs.iter().copied(), CLIENT_MAX_VERSION, durable)
}

fn connected(net: &mut SimNetwork, now: Instant, durable: bool) {
    let out = connect(net, now, 0, durable);
    assert!(
        matches!(out, UpgradeOutcome::Accepted { durable_ack, .. } if durable_ack == durable),
        "{out:?}"
    );
}

#[test]
fn w1_oks_carry_the_per_connection_wire_sequence() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    for id in 0..3 {
        n.send(Instant(20 * MS), &frame("t", &[id]));
    }
    let evs = events(&mut n, Instant(40 * MS));
    assert_eq!(ok_seqs(&evs), vec![0, 1, 2]);
    n.close(Instant(40 * MS), 1000);
    connected(&mut n, Instant(50 * MS), false);
    n.send(Instant(70 * MS), &frame("t", &[3]));
    let evs = events(&mut n, Instant(90 * MS));
    assert_eq!(ok_seqs(&evs), vec![0], "a new connection numbers from 0");
    let acc = n.accepted();
    assert_eq!(acc.len(), 4);
    assert_eq!(
        acc.iter()
            .map(|m| (m.connection, m.wire_seq, m.tables[0].seq_txn))
            .collect::<Vec<_>>(),
        vec![(0, 0, 1), (0, 1, 2), (0, 2, 3), (1, 0, 4)],
        "seqTxn is per table, not per connection"
    );
    assert_eq!(acc[3].tables[0].row_ids, vec![3]);
}

#[test]
fn d14_replayed_frame_on_a_fresh_connection_decodes() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    let frames: Vec<Vec<u8>> = (0..4).map(|i| frame("t", &[2 * i, 2 * i + 1])).collect();
    for f in &frames {
        n.send(Instant(20 * MS), f);
    }
    let _ = events(&mut n, Instant(40 * MS));
    n.close(Instant(40 * MS), 1000);
    // Replay from the third frame on a fresh connection (fresh decoder).
    connected(&mut n, Instant(50 * MS), false);
    for f in &frames[2..] {
        n.send(Instant(70 * MS), f);
    }
    let evs = events(&mut n, Instant(90 * MS));
    assert_eq!(ok_seqs(&evs), vec![0, 1]);
    assert!(n.violations().is_empty(), "{:?}", n.violations());
    assert!(n.rejected().is_empty());
}

/// `frame` rewritten so that its symbol is declared by an earlier message
/// only: delta start 1, no entries, while the column still uses id 0.
fn dependent_frame() -> Vec<u8> {
    let f = frame("t", &[0]);
    // Header (12 bytes), then the delta: start 0, count 1, len 4, "even".
    assert_eq!(&f[12..18], &[0, 1, 4, b'e', b'v', b'e']);
    let mut out = f[..12].to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&f[19..]);
    let payload = u32::try_from(out.len() - 12).unwrap();
    out[8..12].copy_from_slice(&payload.to_le_bytes());
    out
}

#[test]
fn d14_a_frame_that_needs_connection_state_is_a_violation() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    // First on the connection: it does not decode at all.
    n.send(Instant(20 * MS), &dependent_frame());
    // After a frame declaring id 0 it decodes with the connection's
    // dictionary, but would not on a fresh connection: still a violation.
    n.send(Instant(20 * MS), &frame("t", &[1]));
    n.send(Instant(20 * MS), &dependent_frame());
    let evs = events(&mut n, Instant(40 * MS));
    let statuses: Vec<Option<u8>> = responses(&evs)
        .into_iter()
        .map(|r| match r {
            Response::Error(e) => Some(e.status()),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        vec![Some(STATUS_PARSE_ERROR), None, Some(STATUS_PARSE_ERROR)]
    );
    let v = n.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(v.iter().all(|v| v.invariant == "SELF_SUFFICIENT"));
    assert!(
        v[1].detail.contains("only with the connection"),
        "{}",
        v[1].detail
    );
    assert_eq!(n.accepted().len(), 1);
}

#[test]
fn w2_coalesced_ok_covers_several_messages() {
    let mut n = net(NetFaults {
        coalesce_window: Duration::from_secs(1),
        ..NetFaults::none()
    });
    connected(&mut n, Instant(0), false);
    n.script_message(MessageFault::CoalesceOk);
    n.script_message(MessageFault::CoalesceOk);
    n.script_message(MessageFault::None);
    n.send(Instant(20 * MS), &frame("a", &[0]));
    n.send(Instant(20 * MS), &frame("b", &[1]));
    n.send(Instant(20 * MS), &frame("a", &[2]));
    let evs = events(&mut n, Instant(40 * MS));
    let rs = responses(&evs);
    let [Response::Ok(ok)] = rs.as_slice() else {
        panic!("one OK expected, got {rs:?}");
    };
    assert_eq!(ok.sequence, 2);
    assert_eq!(
        ok.tables,
        vec![TableSeqTxn::new("a", 2), TableSeqTxn::new("b", 1)],
        "per-table seqTxns of every covered message, max-merged"
    );
}

#[test]
fn w2_coalesced_ok_is_sent_alone_when_its_window_ends() {
    let mut n = net(NetFaults {
        coalesce_window: Duration::from_millis(30),
        ..NetFaults::none()
    });
    connected(&mut n, Instant(0), false);
    n.script_message(MessageFault::CoalesceOk);
    n.send(Instant(20 * MS), &frame("a", &[0]));
    let evs = run(&mut n, Instant(100 * MS));
    assert_eq!(evs.len(), 1);
    assert!(
        evs[0].0 >= Instant(50 * MS),
        "held for its window: {:?}",
        evs[0].0
    );
}

#[test]
fn w2_future_sequence_ok_is_produced_when_enabled() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    n.script_message(MessageFault::FutureOk(2));
    n.send(Instant(20 * MS), &frame("t", &[0]));
    let evs = events(&mut n, Instant(40 * MS));
    assert_eq!(ok_seqs(&evs), vec![2], "an OK for sequence 2, never sent");
    // With a frame still in flight when it arrives, the lie would make a
    // clamping client trim that frame: a plain OK instead.
    n.script_message(MessageFault::FutureOk(2));
    n.send(Instant(50 * MS), &frame("t", &[1]));
    // The server has answered (at +50 µs) but the OK is still on its way
    // when the client sends the next frame.
    assert!(events(&mut n, Instant(50 * MS + 60_000)).is_empty());
    n.send(Instant(50 * MS + 60_000), &frame("t", &[2]));
    let evs = events(&mut n, Instant(90 * MS));
    assert_eq!(ok_seqs(&evs), vec![1, 2]);
    // From the rates too.
    let mut n = net(NetFaults {
        future_ok: 1_000_000,
        ..NetFaults::none()
    });
    connected(&mut n, Instant(0), false);
    n.send(Instant(20 * MS), &frame("t", &[0]));
    let seqs = ok_seqs(&events(&mut n, Instant(40 * MS)));
    assert!(seqs.len() == 1 && seqs[0] >= 1, "{seqs:?}");
    assert_eq!(n.stats().injected.get("future_ok"), Some(&1));
}

#[test]
fn w2_future_sequence_ok_merges_a_coalesced_one() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    n.script_message(MessageFault::CoalesceOk);
    n.script_message(MessageFault::FutureOk(3));
    n.send(Instant(20 * MS), &frame("t", &[0]));
    n.send(Instant(20 * MS), &frame("t", &[1]));
    let evs = events(&mut n, Instant(40 * MS));
    assert_eq!(ok_seqs(&evs), vec![4]);
}

#[test]
fn w4_durable_ack_follows_ok_on_inbound_activity() {
    let mut n = net(NetFaults {
        durable_delay_min: Duration::from_millis(10),
        durable_delay_max: Duration::from_millis(10),
        ..NetFaults::none()
    });
    connected(&mut n, Instant(0), true);
    n.send(Instant(20 * MS), &frame("t", &[0]));
    let rs = responses(&events(&mut n, Instant(25 * MS)));
    assert!(matches!(rs.as_slice(), [Response::Ok(_)]), "{rs:?}");
    assert!(!n.accepted()[0].durable_by(Instant(25 * MS)));
    // Durable by now, but the server only says so on inbound activity.
    assert!(events(&mut n, Instant(100 * MS)).is_empty());
    assert!(n.accepted()[0].durable_by(Instant(31 * MS)));
    n.ping(Instant(100 * MS));
    let evs = events(&mut n, Instant(120 * MS));
    assert_eq!(evs[0], NetEvent::Pong);
    let rs = responses(&evs);
    let [Response::DurableAck(d)] = rs.as_slice() else {
        panic!("{rs:?}");
    };
    assert_eq!(d.tables, vec![TableSeqTxn::new("t", 1)]);
}

#[test]
fn w4_durable_ack_before_ok_ordering() {
    let mut n = net(NetFaults {
        durable_delay_min: Duration::from_secs(10),
        durable_delay_max: Duration::from_secs(10),
        ..NetFaults::none()
    });
    connected(&mut n, Instant(0), true);
    n.script_message(MessageFault::DurableBeforeOk);
    n.send(Instant(20 * MS), &frame("t", &[0]));
    let rs = responses(&events(&mut n, Instant(40 * MS)));
    match rs.as_slice() {
        [Response::DurableAck(d), Response::Ok(ok)] => {
            assert_eq!(d.tables, vec![TableSeqTxn::new("t", 1)]);
            assert_eq!(ok.sequence, 0);
            assert_eq!(ok.tables, d.tables);
        }
        other => panic!("DURABLE_ACK then OK expected: {other:?}"),
    }
    assert!(n.accepted()[0].durable_by(Instant(20 * MS + 50_000)));
}

#[test]
fn w4_partial_and_stale_durable_acks() {
    let mut n = net(NetFaults {
        partial_durable: 1_000_000,
        stale_durable: 1_000_000,
        ..NetFaults::none()
    });
    connected(&mut n, Instant(0), true);
    // One message, two tables: the partial ACK names only the first.
    let mut b = MessageBuilder::new();
    for t in ["a", "b"] {
        b.table(t)
            .unwrap()
            .column_i64("row_id", 1)
            .unwrap()
            .at_micros(1)
            .unwrap();
    }
    let mut f = Vec::new();
    b.encode_into(&mut f).unwrap();
    n.send(Instant(20 * MS), &f);
    n.send(Instant(20 * MS), &frame("a", &[2]));
    let rs = responses(&events(&mut n, Instant(40 * MS)));
    let durable: Vec<Vec<TableSeqTxn>> = rs
        .into_iter()
        .filter_map(|r| match r {
            Response::DurableAck(d) => Some(d.tables),
            _ => None,
        })
        .collect();
    assert_eq!(
        durable,
        vec![
            vec![TableSeqTxn::new("a", 1)],
            vec![TableSeqTxn::new("a", 0)],
            vec![TableSeqTxn::new("a", 2)],
            vec![TableSeqTxn::new("a", 1)],
        ],
        "partial (b held back), each followed by a stale repeat"
    );
    // b goes out on the next inbound activity.
    n.ping(Instant(50 * MS));
    let rs = responses(&events(&mut n, Instant(70 * MS)));
    assert!(
        matches!(rs.first(), Some(Response::DurableAck(d)) if d.tables == vec![TableSeqTxn::new("b", 1)]),
        "{rs:?}"
    );
}

#[test]
fn w4_missing_durable_echo_fails_the_connect() {
    let mut n = net(NetFaults::none());
    n.script_connect(ConnectFault::OmitDurableEcho);
    assert_eq!(
        connect(&mut n, Instant(0), 0, true),
        UpgradeOutcome::DurableAckNotEnabled { version: 1 }
    );
    n.close(Instant(10 * MS), 1002);
    let mut n = net(NetFaults {
        omit_durable_echo: 1_000_000,
        ..NetFaults::none()
    });
    assert_eq!(
        connect(&mut n, Instant(0), 0, true),
        UpgradeOutcome::DurableAckNotEnabled { version: 1 }
    );
}

#[test]
fn failover_421_carries_x_questdb_role() {
    let mut n = net(NetFaults::none());
    n.set_role(0, Some("PRIMARY_CATCHUP".to_owned()));
    n.connect(Instant(0), 0, &headers(false));
    let evs = events(&mut n, Instant(10 * MS));
    let NetEvent::Connected {
        status, headers, ..
    } = &evs[0]
    else {
        panic!("{evs:?}");
    };
    assert_eq!(*status, 421);
    assert_eq!(
        headers[0],
        (HEADER_ROLE.to_owned(), b"PRIMARY_CATCHUP".to_vec())
    );
    let refs = evs[0].header_refs();
    assert!(matches!(
        classify_upgrade(421, refs.iter().copied(), 1, false),
        UpgradeOutcome::RoleReject {
            transient: true,
            ..
        }
    ));
    assert_eq!(
        n.current_connection(),
        None,
        "no socket after a refused upgrade"
    );
    // A role host refuses even when a 101 fault was drawn for it.
    n.script_connect(ConnectFault::BadVersion("2".to_owned()));
    assert!(matches!(
        connect(&mut n, Instant(5 * MS), 0, false),
        UpgradeOutcome::RoleReject {
            transient: true,
            ..
        }
    ));
    // The other host accepts.
    assert!(matches!(
        connect(&mut n, Instant(10 * MS), 1, false),
        UpgradeOutcome::Accepted { .. }
    ));
    n.script_connect(ConnectFault::Role("REPLICA".to_owned()));
    assert!(matches!(
        connect(&mut n, Instant(20 * MS), 1, false),
        UpgradeOutcome::RoleReject {
            transient: false,
            ..
        }
    ));
    n.script_connect(ConnectFault::Role(String::new()));
    assert_eq!(
        connect(&mut n, Instant(30 * MS), 1, false),
        UpgradeOutcome::TransportError(UpgradeFailure::RoleRejectWithoutRole)
    );
}

#[test]
fn failover_401_and_403_are_auth_errors() {
    let mut n = net(NetFaults::none());
    for status in [401, 403] {
        n.script_connect(ConnectFault::Status(status));
        assert_eq!(
            connect(&mut n, Instant(0), 0, false),
            UpgradeOutcome::AuthError { status }
        );
        assert!(n.server(0).unwrap().open_connections().next().is_none());
    }
    n.script_connect(ConnectFault::Status(503));
    assert_eq!(
        connect(&mut n, Instant(0), 0, false),
        UpgradeOutcome::TransportError(UpgradeFailure::UnexpectedStatus(503))
    );
}

#[test]
fn failover_bad_qwp_version_is_a_transport_error() {
    let mut n = net(NetFaults::none());
    n.script_connect(ConnectFault::BadVersion("2".to_owned()));
    assert_eq!(
        connect(&mut n, Instant(0), 0, false),
        UpgradeOutcome::TransportError(UpgradeFailure::VersionOutOfRange {
            version: 2,
            client_max: 1
        })
    );
    n.script_connect(ConnectFault::BadVersion("one".to_owned()));
    assert!(matches!(
        connect(&mut n, Instant(0), 0, false),
        UpgradeOutcome::TransportError(UpgradeFailure::VersionUnparsable(_))
    ));
}

#[test]
fn refused_and_hung_connects() {
    let mut n = net(NetFaults::none());
    n.script_connect(ConnectFault::Refuse);
    n.connect(Instant(0), 0, &headers(false));
    let evs = events(&mut n, Instant(10 * MS));
    assert!(
        matches!(evs.as_slice(), [NetEvent::ConnectFailed { host: 0, .. }]),
        "{evs:?}"
    );
    assert_eq!(n.current_connection(), None);
    n.script_connect(ConnectFault::Hang);
    n.connect(Instant(10 * MS), 0, &headers(false));
    assert!(
        events(&mut n, Instant(10_000 * MS)).is_empty(),
        "a hung connect never answers"
    );
    n.close(Instant(10_000 * MS), 1001);
    assert_eq!(n.current_connection(), None);
}

#[test]
fn w3_close_codes_reach_the_client_after_the_answer() {
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 4000,
    ] {
        let mut n = net(NetFaults::none());
        connected(&mut n, Instant(0), false);
        n.script_message(MessageFault::Close(code));
        n.send(Instant(20 * MS), &frame("t", &[0]));
        // Sent after the server closed: lost.
        n.send(Instant(20 * MS), &frame("t", &[1]));
        let evs = events(&mut n, Instant(40 * MS));
        assert_eq!(ok_seqs(&evs), vec![0], "{code}");
        assert_eq!(
            evs.last(),
            Some(&NetEvent::Disconnected {
                close_code: Some(code),
                reason: "closed by server (injected fault)".to_owned()
            })
        );
        assert_eq!(n.accepted().len(), 1);
        assert_eq!(n.stats().frames_lost, 1);
        let terminal = matches!(close_class(code), CloseClass::Terminal);
        assert_eq!(
            terminal,
            (1002..=1010).contains(&code) && !(1004..=1006).contains(&code)
        );
        assert!(events(&mut n, Instant(1_000 * MS)).is_empty());
    }
}

#[test]
fn drops_in_either_direction_reset_the_connection() {
    // Client → server: the message is lost.
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    n.script_message(MessageFault::DropBefore);
    n.send(Instant(20 * MS), &frame("t", &[0]));
    let evs = events(&mut n, Instant(40 * MS));
    assert!(
        matches!(
            evs.as_slice(),
            [NetEvent::Disconnected {
                close_code: None,
                ..
            }]
        ),
        "{evs:?}"
    );
    assert!(n.accepted().is_empty());
    // Server → client: committed, but the OK is lost.
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    n.script_message(MessageFault::DropAfter);
    n.send(Instant(20 * MS), &frame("t", &[0]));
    let evs = events(&mut n, Instant(40 * MS));
    assert!(
        matches!(
            evs.as_slice(),
            [NetEvent::Disconnected {
                close_code: None,
                ..
            }]
        ),
        "{evs:?}"
    );
    assert_eq!(n.accepted().len(), 1);
}

#[test]
fn error_statuses_reject_without_commit() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    for status in [3u8, 5, 6, 8, 9, 1, 4, 7] {
        n.script_message(MessageFault::Error(status));
        n.send(Instant(20 * MS), &frame("t", &[i64::from(status)]));
    }
    let rs = responses(&events(&mut n, Instant(40 * MS)));
    let got: Vec<(u8, i64)> = rs
        .into_iter()
        .map(|r| match r {
            Response::Error(e) => (e.status(), e.sequence()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (3, 0),
            (5, 1),
            (6, 2),
            (8, 3),
            (9, 4),
            (1, 5),
            (4, 6),
            (7, 7)
        ]
    );
    assert!(n.accepted().is_empty());
    assert_eq!(n.rejected().len(), 8);
    assert_eq!(n.rejected()[4].row_ids, vec![9]);
}

#[test]
fn w3_poisoned_row_is_rejected_on_every_resend() {
    let mut n = net(NetFaults::none());
    n.poison_row(42, STATUS_WRITE_ERROR);
    let poisoned = frame("t", &[41, 42]);
    for round in 0..3u64 {
        let t = round * 100 * MS;
        connected(&mut n, Instant(t), false);
        n.send(Instant(t + 20 * MS), &poisoned);
        let rs = responses(&events(&mut n, Instant(t + 40 * MS)));
        assert!(
            matches!(rs.as_slice(), [Response::Error(e)] if e.status() == STATUS_WRITE_ERROR),
            "{rs:?}"
        );
        n.close(Instant(t + 40 * MS), 1000);
    }
    assert!(n.accepted().is_empty());
}

#[test]
fn duplicate_responses_repeat_the_ok() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    n.script_message(MessageFault::DuplicateResponse);
    n.send(Instant(20 * MS), &frame("t", &[0]));
    assert_eq!(ok_seqs(&events(&mut n, Instant(40 * MS))), vec![0, 0]);
}

#[test]
fn delayed_ok_holds_back_everything_after_it() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    n.script_message(MessageFault::DelayOk(Duration::from_millis(100)));
    n.send(Instant(20 * MS), &frame("t", &[0]));
    n.send(Instant(20 * MS), &frame("t", &[1]));
    let evs = run(&mut n, Instant(1_000 * MS));
    let times: Vec<Instant> = evs.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        ok_seqs(&evs.into_iter().map(|(_, e)| e).collect::<Vec<_>>()),
        vec![0, 1]
    );
    assert!(
        times[0] >= Instant(120 * MS) && times[1] >= times[0],
        "{times:?}"
    );
}

#[test]
fn slow_server_answers_one_message_per_service_time() {
    let mut n = net(NetFaults {
        service_time: Duration::from_millis(10),
        ..NetFaults::none()
    });
    connected(&mut n, Instant(0), false);
    for id in 0..5 {
        n.send(Instant(20 * MS), &frame("t", &[id]));
    }
    let evs = run(&mut n, Instant(1_000 * MS));
    let times: Vec<u64> = evs.iter().map(|(t, _)| t.0).collect();
    assert_eq!(times.len(), 5);
    for w in times.windows(2) {
        assert!(w[1] - w[0] >= 10 * MS, "{times:?}");
    }
}

#[test]
fn restart_forgets_connection_state() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    n.send(Instant(20 * MS), &frame("t", &[0]));
    n.send(Instant(20 * MS), &frame("t", &[1]));
    let _ = events(&mut n, Instant(40 * MS));
    n.restart(Instant(40 * MS), 0, false, Duration::from_millis(100));
    let evs = events(&mut n, Instant(60 * MS));
    assert!(
        matches!(
            evs.as_slice(),
            [NetEvent::Disconnected {
                close_code: None,
                ..
            }]
        ),
        "{evs:?}"
    );
    // Down: refused.
    n.connect(Instant(60 * MS), 0, &headers(false));
    assert!(matches!(
        events(&mut n, Instant(80 * MS)).as_slice(),
        [NetEvent::ConnectFailed { .. }]
    ));
    // Up again: numbering restarts, tables survive.
    connected(&mut n, Instant(200 * MS), false);
    n.send(Instant(220 * MS), &frame("t", &[2]));
    let rs = responses(&events(&mut n, Instant(240 * MS)));
    let [Response::Ok(ok)] = rs.as_slice() else {
        panic!("{rs:?}");
    };
    assert_eq!(
        (ok.sequence, ok.tables.clone()),
        (0, vec![TableSeqTxn::new("t", 3)])
    );
    assert_eq!(n.accepted().len(), 3);
}

#[test]
fn restart_losing_undurable_commits_forgets_their_rows() {
    let mut n = net(NetFaults {
        durable_delay_min: Duration::from_millis(50),
        durable_delay_max: Duration::from_millis(50),
        ..NetFaults::none()
    });
    connected(&mut n, Instant(0), true);
    n.send(Instant(20 * MS), &frame("t", &[0]));
    let _ = events(&mut n, Instant(100 * MS));
    n.send(Instant(100 * MS), &frame("t", &[1]));
    let _ = events(&mut n, Instant(110 * MS));
    n.restart(Instant(110 * MS), 0, true, Duration::ZERO);
    let acc = n.accepted();
    assert_eq!(acc.len(), 1);
    assert!(acc[0].durable_by(Instant(110 * MS)));
    assert_eq!(acc[0].tables[0].row_ids, vec![0]);
    assert_eq!(n.server(0).unwrap().seq_txn("t"), 1);
    assert_eq!(n.stats().rows_lost, 1);
    assert_eq!(n.lost().len(), 1);
    assert_eq!(n.lost()[0].row_ids().collect::<Vec<_>>(), vec![1]);
}

#[test]
fn client_close_suppresses_every_later_event_of_that_connection() {
    let mut n = net(NetFaults::none());
    connected(&mut n, Instant(0), false);
    n.send(Instant(20 * MS), &frame("t", &[0]));
    n.close(Instant(20 * MS), 1000);
    assert!(events(&mut n, Instant(1_000 * MS)).is_empty());
    assert_eq!(
        n.accepted().len(),
        1,
        "in flight before the close: committed"
    );
}

/// A crude client: connects when it has no connection, sends a frame per
/// step, pings, and logs every event with its time.
/// Every event with its time, and every commit as (connection, wire
/// sequence, row ids).
type Drive = (Vec<(Instant, NetEvent)>, Vec<(u64, u64, Vec<i64>)>);

fn drive(seed: u64) -> Drive {
    let mut rng = SimRng::new(seed);
    let faults = NetFaults::random(&mut rng).without_terminal();
    let mut n = SimNetwork::new(rng.fork("net"), 3, faults);
    let mut log = Vec::new();
    let mut now = Instant(0);
    let mut connected = false;
    let mut connecting = false;
    let mut host = 0usize;
    let mut next_id = 0i64;
    for _ in 0..400 {
        if !connected && !connecting {
            n.connect(now, host, &headers(seed.is_multiple_of(2)));
            connecting = true;
        }
        if connected {
            n.send(now, &frame("t", &[next_id]));
            next_id += 1;
            n.ping(now);
        }
        now = Instant(now.0 + 3 * MS);
        while let Some(e) = n.poll_event(now) {
            match &e {
                NetEvent::Connected { status: 101, .. } => {
                    connecting = false;
                    connected = true;
                }
                NetEvent::Connected { .. } | NetEvent::ConnectFailed { .. } => {
                    connecting = false;
                    n.close(now, 1000);
                    host = (host + 1) % 3;
                }
                NetEvent::Disconnected { .. } => connected = false,
                _ => {}
            }
            log.push((now, e));
        }
        if connecting && n.next_event_at().is_none() {
            n.close(now, 1001);
            connecting = false;
        }
    }
    let accepted = n
        .accepted()
        .iter()
        .map(|m| {
            (
                m.connection,
                m.wire_seq,
                m.tables.iter().flat_map(|t| t.row_ids.clone()).collect(),
            )
        })
        .collect();
    (log, accepted)
}

#[test]
fn d1_same_seed_same_event_sequence() {
    for seed in [1u64, 2, 3, 4] {
        let a = drive(seed);
        let b = drive(seed);
        assert!(a.1.len() > 10, "seed {seed}: {} commits", a.1.len());
        assert_eq!(a, b, "seed {seed}");
    }
    assert_ne!(drive(1), drive(5), "different seeds differ");
}

#[test]
fn random_restarts_lose_undurable_rows_only_behind_durable_ack_clients() {
    let faults = NetFaults {
        restart: 1_000_000,
        restart_loses_undurable: 1_000_000,
        restart_downtime_max: Duration::from_millis(1),
        durable_delay_min: Duration::from_secs(100),
        durable_delay_max: Duration::from_secs(100),
        ..NetFaults::none()
    };
    for durable in [false, true] {
        let mut n = net(faults.clone());
        connected(&mut n, Instant(0), durable);
        n.send(Instant(20 * MS), &frame("t", &[0]));
        let evs = events(&mut n, Instant(40 * MS));
        assert!(
            matches!(
                evs.as_slice(),
                [NetEvent::Disconnected {
                    close_code: None,
                    ..
                }]
            ),
            "{evs:?}"
        );
        assert_eq!(n.stats().restarts, 1);
        // With OK-driven trim the client may already have trimmed a
        // committed row, so only a host whose clients all trim on
        // DURABLE_ACK ever forgets one.
        assert_eq!(n.lost().len(), usize::from(durable), "durable={durable}");
        assert_eq!(
            n.accepted().len(),
            usize::from(!durable),
            "durable={durable}"
        );
    }
}

#[test]
fn random_faults_are_well_formed_and_terminal_ones_can_be_removed() {
    let mut rng = SimRng::new(3);
    for _ in 0..200 {
        let f = NetFaults::random(&mut rng);
        assert!(f.latency_min <= f.latency_max, "{f:?}");
        assert!(f.durable_delay_min <= f.durable_delay_max, "{f:?}");
        let t = f.clone().without_terminal();
        assert_eq!((t.auth_reject, t.error_halt, t.close_terminal), (0, 0, 0));
        assert_eq!(t.drop_before, f.drop_before);
        let quiet = f.timing_only();
        assert_eq!(quiet.latency_max, f.latency_max);
        assert_eq!(
            NetFaults {
                latency_min: NetFaults::none().latency_min,
                latency_max: NetFaults::none().latency_max,
                service_time: Duration::ZERO,
                durable_delay_min: Duration::ZERO,
                durable_delay_max: Duration::ZERO,
                ..quiet
            },
            NetFaults::none()
        );
    }
}
