//! Random input sequences against the engine: W1–W5 checked after every
//! step, and D1 (two engines fed the same inputs emit the same outputs).

mod engine_harness;

use std::time::Duration;

use engine_harness::{config, World, PAYLOAD};
use proptest::prelude::*;
use sf_core::ack::InFlightWindow;
use sf_core::engine::{ConnectionState, EngineConfig, Input, Output};
use sf_core::reconnect::InitialConnectRetry;
use sf_core::storage::AppendDecision;
use sf_core::Fsn;

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Flush,
    /// Answer a pending connect: 0 accepted (with echo), 1 accepted without
    /// the durable echo, 2 role reject, 3 HTTP 503, 4 auth failure, 5 a
    /// transport failure.
    Upgrade(u8),
    /// OK for `sent - 1 - back` (saturating), or far in the future.
    Ok {
        back: u8,
        future: bool,
    },
    DurableAck {
        table: u8,
        seq_txn: u8,
    },
    Error {
        status: u8,
        back: u8,
    },
    Disconnect(Option<u16>),
    Garbage(Vec<u8>),
    Advance(u16),
    Close,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        18 => (1u8..4).prop_map(Op::Append),
        3 => Just(Op::Flush),
        15 => prop_oneof![
            30 => Just(0u8), 5 => Just(1u8), 5 => Just(2u8), 5 => Just(3u8),
            5 => Just(5u8), 1 => Just(4u8),
        ]
        .prop_map(Op::Upgrade),
        18 => (0u8..4, proptest::bool::weighted(0.1))
            .prop_map(|(back, future)| Op::Ok { back, future }),
        9 => (0u8..3, 0u8..12).prop_map(|(table, seq_txn)| Op::DurableAck { table, seq_txn }),
        2 => (prop_oneof![Just(0x03u8), Just(0x09u8), Just(0x05u8)], 0u8..3)
            .prop_map(|(status, back)| Op::Error { status, back }),
        4 => prop_oneof![
            Just(None), Just(Some(1000u16)), Just(Some(1006u16)),
            Just(Some(1011u16)), Just(Some(1008u16)),
        ]
        .prop_map(Op::Disconnect),
        1 => proptest::collection::vec(any::<u8>(), 0..6).prop_map(Op::Garbage),
        12 => (0u16..3000).prop_map(Op::Advance),
        1 => Just(Op::Close),
    ]
}

fn engine_config(durable: bool) -> EngineConfig {
    let mut c = config(2);
    c.request_durable_ack = durable;
    c.initial_connect_retry = InitialConnectRetry::On;
    c.ack_timeout = Some(Duration::from_millis(1500));
    c.in_flight_window = InFlightWindow::new(4).expect("non-zero");
    c.storage.segment_bytes = 256;
    c.storage.max_total_bytes = 1024;
    c.storage.append_deadline = Duration::from_millis(800);
    c
}

const TABLES: [&str; 3] = ["a", "b", "c"];

/// The test's view of the wire, for the invariant checks.
#[derive(Debug, Default)]
struct Checker {
    /// The next FSN the current connection must send (W1).
    expected_next: Option<u64>,
    /// Frames sent on the current connection (to script OK sequences).
    sent_on_conn: u64,
    /// Highest FSN ever sent on any connection (W2).
    max_sent: Option<u64>,
    last_acked: Option<u64>,
    /// Acked at the current connection's start, and whether a DURABLE_ACK
    /// or an error frame arrived on it since (W4).
    acked_at_connect: Option<u64>,
    durable_input_seen: bool,
    halted: bool,
    closed: bool,
}

struct Run {
    w: World,
    chk: Checker,
    durable: bool,
}

impl Run {
    fn new(durable: bool, seed: u64) -> Run {
        let w = World::with_slot(
            engine_config(durable),
            sf_core::recovery::RecoveredSlot::empty(),
            seed,
        );
        let mut r = Run {
            w,
            chk: Checker::default(),
            durable,
        };
        r.check("open");
        r
    }

    fn connecting_host(&self) -> Option<usize> {
        match self.w.engine.connection_state() {
            ConnectionState::Connecting { host } => Some(host),
            _ => None,
        }
    }

    fn scripted_seq(&self, back: u8) -> i64 {
        let last = self.chk.sent_on_conn.saturating_sub(1 + u64::from(back));
        i64::try_from(last).unwrap_or(i64::MAX)
    }

    fn step(&mut self, op: &Op) {
        let now = self.w.now;
        match op {
            Op::Append(n) => {
                for _ in 0..*n {
                    match self.w.engine.begin_append(now, PAYLOAD) {
                        Ok(AppendDecision::Place(p)) => {
                            self.w.pump();
                            let _ = self.w.engine.commit_append(now, p, Ok(()));
                        }
                        Ok(AppendDecision::Wait { .. }) | Err(_) => {}
                    }
                    self.w.pump();
                }
            }
            Op::Flush => {
                if let Ok(ticket) = self.w.engine.flush(now) {
                    self.w.pump();
                    // Memory durability: a batch is done once published (C1).
                    assert_eq!(self.w.engine.is_flushed(ticket), Ok(true), "C1");
                }
            }
            Op::Upgrade(kind) => {
                let Some(host) = self.connecting_host() else {
                    return;
                };
                let with_echo: [(&str, &[u8]); 2] =
                    [("X-QWP-Version", b"1"), ("X-QWP-Durable-Ack", b"enabled")];
                let no_echo: [(&str, &[u8]); 1] = [("X-QWP-Version", b"1")];
                let role: [(&str, &[u8]); 1] = [("X-QuestDB-Role", b"REPLICA")];
                let acked_before = self.w.acked();
                match kind {
                    0 => self.w.answer_upgrade(host, 101, &with_echo),
                    1 => self.w.answer_upgrade(host, 101, &no_echo),
                    2 => self.w.answer_upgrade(host, 421, &role),
                    3 => self.w.answer_upgrade(host, 503, &[]),
                    4 => self.w.answer_upgrade(host, 401, &[]),
                    _ => self.w.connect_failed(host),
                }
                if matches!(
                    self.w.engine.connection_state(),
                    ConnectionState::Connected { .. }
                ) {
                    self.chk.expected_next = Some(acked_before.map_or(0, |a| a + 1));
                    self.chk.sent_on_conn = 0;
                    self.chk.acked_at_connect = acked_before;
                    self.chk.durable_input_seen = false;
                }
            }
            Op::Ok { back, future } => {
                let seq = if *future {
                    i64::try_from(self.chk.sent_on_conn + 50).unwrap_or(i64::MAX)
                } else {
                    self.scripted_seq(*back)
                };
                // seqTxn = wire seq + 1 on table "a" so durable ACKs can cover.
                let txn = seq.saturating_add(1);
                self.w.ok(seq, &[("a", txn)]);
            }
            Op::DurableAck { table, seq_txn } => {
                self.chk.durable_input_seen = true;
                let name = TABLES[usize::from(*table) % TABLES.len()];
                self.w.durable_ack(&[(name, i64::from(*seq_txn))]);
            }
            Op::Error { status, back } => {
                self.chk.durable_input_seen = true;
                let seq = self.scripted_seq(*back);
                self.w.error(*status, seq, "rejected");
            }
            Op::Disconnect(code) => self.w.disconnect(*code),
            Op::Garbage(bytes) => self.w.input(Input::Received(bytes)),
            Op::Advance(ms) => self.w.advance(Duration::from_millis(u64::from(*ms))),
            Op::Close => {
                let _ = self.w.engine.close(now);
                self.w.pump();
            }
        }
        self.check(&format!("{op:?}"));
    }

    /// Consumes the new outputs and checks W1–W5 and the lifecycle order.
    fn check(&mut self, ctx: &str) {
        let outs = self.w.take();
        let e = &self.w.engine;
        for o in &outs {
            assert!(!self.chk.closed, "{ctx}: output {o:?} after Closed");
            match o {
                Output::Send { fsn, .. } => {
                    assert!(!self.chk.halted, "W3 {ctx}: send after a halt");
                    let want = self.chk.expected_next.expect("send while connected");
                    assert_eq!(fsn.get(), want, "W1 {ctx}: strict FSN order from acked + 1");
                    self.chk.expected_next = Some(want + 1);
                    self.chk.sent_on_conn += 1;
                    self.chk.max_sent = self.chk.max_sent.max(Some(fsn.get()));
                }
                Output::Connect { .. } => {
                    assert!(!self.chk.halted, "W3 {ctx}: reconnect after a halt");
                    self.chk.expected_next = None;
                    self.chk.sent_on_conn = 0;
                }
                Output::Notify(err) if err.is_terminal() => self.chk.halted = true,
                Output::Closed { .. } => self.chk.closed = true,
                _ => {}
            }
        }
        if e.last_terminal_error().is_some() {
            self.chk.halted = true;
        }
        let acked = e.acked_fsn().map(Fsn::get);
        let published = e.published_fsn().map(Fsn::get);
        assert!(acked >= self.chk.last_acked, "W2 {ctx}: acked went back");
        assert!(acked <= published, "W2 {ctx}: acked beyond published");
        assert!(
            acked <= self.chk.max_sent || acked == self.chk.last_acked,
            "W2 {ctx}: acked {acked:?} beyond any sent frame {:?}",
            self.chk.max_sent
        );
        if self.durable
            && !self.chk.durable_input_seen
            && matches!(e.connection_state(), ConnectionState::Connected { .. })
        {
            assert_eq!(
                acked, self.chk.acked_at_connect,
                "W4 {ctx}: an OK alone trimmed in durable mode"
            );
        }
        self.chk.last_acked = acked;
        // W5: a pending wait always has a timer, and no timer is overdue.
        if let Some(t) = e.poll_timeout() {
            assert!(t > self.w.now, "W5 {ctx}: timer {t:?} not after now");
        }
        let waiting = acked < published || e.is_closing();
        if waiting && !self.chk.halted && !e.is_released() {
            assert!(
                e.poll_timeout().is_some(),
                "W5 {ctx}: waiting with no timer in {:?}",
                e.connection_state()
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn w1_to_w5_hold_after_every_step_and_d1(
        durable in any::<bool>(),
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 10..120),
    ) {
        let mut a = Run::new(durable, seed);
        let mut b = Run::new(durable, seed);
        for op in &ops {
            a.step(op);
            b.step(op);
        }
        prop_assert_eq!(&a.w.trace, &b.w.trace, "D1: same inputs, same outputs");
    }
}
