//! W4 property test: the durable-ACK path (wire mapping + durable tracker +
//! DROP errors) against a brute-force model, over random interleavings of
//! sends, OKs (stale, duplicate, future, empty), DURABLE_ACKs (including ones
//! that arrive before their OK), dropped frames and reconnects.
//!
//! The model never pops anything: after every step it recomputes, from the
//! whole list of OKs queued on the connection, the longest prefix whose every
//! `(table, seqTxn)` is `<=` the table's max-merged durable watermark. The
//! acknowledged FSN must equal `fsn_at_zero + that prefix's last sequence`
//! (or the FSN acknowledged at connect) after every step, and never decrease.

use std::collections::HashMap;

use proptest::prelude::*;
use sf_core::ack::{InFlightWindow, TrimDriver, WireMapping};
use sf_core::durable_ack::DurableAckTracker;
use sf_core::errors::{ErrorAction, ErrorPolicies, ServerErrors};
use sf_core::{Fsn, Instant};

const TABLES: [&str; 3] = ["a", "b", "c"];
const PUBLISHED: Fsn = Fsn(10_000);

#[derive(Debug, Clone)]
enum Op {
    /// Send up to n frames.
    Send(u8),
    /// An OK at `last OK sequence + delta` (negative deltas: stale and
    /// duplicate OKs; large ones: future sequences the clamp must catch).
    Ok {
        delta: i8,
        tables: Vec<(usize, i64)>,
    },
    /// A DURABLE_ACK.
    Durable(Vec<(usize, i64)>),
    /// A SCHEMA_MISMATCH (DROP) error for the frame after the last OK'd one.
    Drop,
    /// The connection drops; the next one starts at acked + 1.
    Reconnect,
}

fn entries() -> impl Strategy<Value = Vec<(usize, i64)>> {
    prop::collection::vec((0..TABLES.len(), 0i64..12), 0..4)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..5).prop_map(Op::Send),
        5 => (-2i8..4, entries()).prop_map(|(delta, tables)| Op::Ok { delta, tables }),
        5 => entries().prop_map(Op::Durable),
        1 => Just(Op::Drop),
        1 => Just(Op::Reconnect),
    ]
}

fn named(e: &[(usize, i64)]) -> Vec<(&'static str, i64)> {
    e.iter().map(|&(t, s)| (TABLES[t], s)).collect()
}

/// The brute-force model of one connection.
#[derive(Default)]
struct Model {
    /// Every entry queued on this connection, never popped.
    queued: Vec<(u64, Vec<(&'static str, i64)>)>,
    durable: HashMap<&'static str, i64>,
}

impl Model {
    fn queue(&mut self, seq: u64, tables: Vec<(&'static str, i64)>) {
        // OKs are cumulative: one for a sequence at or below the last queued
        // one adds nothing.
        if self.queued.last().is_some_and(|(last, _)| seq <= *last) {
            return;
        }
        self.queued.push((seq, tables));
    }

    fn longest_covered_prefix(&self) -> Option<u64> {
        let mut last = None;
        for (seq, tables) in &self.queued {
            let covered = tables
                .iter()
                .all(|(t, s)| self.durable.get(t).is_some_and(|d| d >= s));
            if !covered {
                break;
            }
            last = Some(*seq);
        }
        last
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn w4_durable_tracker_matches_longest_covered_prefix(ops in prop::collection::vec(op(), 1..120)) {
        let t = Instant(0);
        let mut errors = ServerErrors::new(ErrorPolicies::new(), 16).unwrap();
        let mut tracker = DurableAckTracker::new(200);
        let mut m = WireMapping::connect(None, Some(PUBLISHED), TrimDriver::DurableAck, InFlightWindow::default(), t);
        let mut model = Model::default();
        let mut acked_at_connect: Option<Fsn> = None;
        let mut last_ok: i64 = -1;
        let mut high_water: Option<Fsn> = None;

        for op in ops {
            match op {
                Op::Send(n) => {
                    for _ in 0..n {
                        if let Some(fsn) = m.next_to_send(Some(PUBLISHED)) {
                            m.on_sent(fsn, t).unwrap();
                        }
                    }
                }
                Op::Ok { delta, tables } => {
                    let seq = last_ok + i64::from(delta);
                    let sent = m.next_wire_seq().get();
                    let tables = named(&tables);
                    match m.on_ok(seq, &tables, t) {
                        Ok(ok) => {
                            prop_assert!(seq >= 0 && sent > 0);
                            // Independent W2 clamp.
                            let clamped = (seq as u64).min(sent - 1);
                            prop_assert_eq!(ok.wire_seq.get(), clamped);
                            prop_assert_eq!(ok.acknowledge, None, "OKs never trim in durable mode");
                            last_ok = last_ok.max(clamped as i64);
                            model.queue(clamped, tables.clone());
                            if let Some(c) = tracker.on_ok(ok.wire_seq, &tables, t) {
                                m.acknowledge_wire_seq(c);
                            }
                        }
                        Err(_) => prop_assert!(seq < 0 || sent == 0),
                    }
                }
                Op::Durable(tables) => {
                    let tables = named(&tables);
                    for &(name, s) in &tables {
                        let d = model.durable.entry(name).or_insert(s);
                        *d = (*d).max(s);
                    }
                    if let Some(c) = tracker.on_durable_ack(&tables) {
                        m.acknowledge_wire_seq(c);
                    }
                }
                Op::Drop => {
                    let seq = last_ok + 1;
                    if (seq as u64) < m.next_wire_seq().get() {
                        let v = errors.on_error_frame(0x03, seq, "dropped", &mut m, &mut tracker, t);
                        let continued = matches!(v.action, ErrorAction::Continue { .. });
                        prop_assert!(continued, "SCHEMA_MISMATCH drops by default");
                        last_ok = seq;
                        model.queue(seq as u64, Vec::new());
                    }
                }
                Op::Reconnect => {
                    acked_at_connect = m.acked();
                    m = WireMapping::connect(acked_at_connect, Some(PUBLISHED), TrimDriver::DurableAck, InFlightWindow::default(), t);
                    tracker.reset();
                    model = Model::default();
                    last_ok = -1;
                }
            }
            let from_model = model
                .longest_covered_prefix()
                .map(|seq| m.fsn_at_zero().plus(seq));
            let expected = acked_at_connect.max(from_model);
            prop_assert_eq!(m.acked(), expected);
            prop_assert!(m.acked() >= high_water, "acknowledged FSN went back");
            high_water = m.acked();
            prop_assert!(
                m.acked() == acked_at_connect || m.acked().is_some_and(|a| a < m.next_fsn()),
                "acknowledged a frame never sent"
            );
        }
    }
}
