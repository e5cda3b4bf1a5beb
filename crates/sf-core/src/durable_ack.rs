//! Durable-ACK tracking (sf-client §10, W4): the pending queue of OKs with
//! their per-table seqTxns, max-merged durable watermarks, and coverage.
//!
//! With `request_durable_ack=on` an OK means "committed", not "durable": it is
//! queued as `(wire_seq, per-table seqTxns)` and trims nothing. DURABLE_ACK
//! frames carry cumulative per-table watermarks (no sequence). An entry is
//! covered when every table it names has a durable watermark `>=` its seqTxn;
//! the longest covered prefix of the queue is acknowledged at once.
//!
//! Coverage is re-checked on **both** inputs. A DURABLE_ACK can overtake the OK
//! it covers (the server emits them from different places), and a table that
//! gets no further writes will never produce another DURABLE_ACK: checking only
//! when a DURABLE_ACK arrives would strand that OK forever (the FlushTracker bug
//! class, DESIGN §6 item 15).
//!
//! The tracker works in wire sequences; the caller maps the returned sequence
//! to an FSN with [`crate::ack::WireMapping::acknowledge_wire_seq`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::{Instant, WireSeq};

/// Default `durable_ack_keepalive_interval_millis` (sf-client §4.3).
pub const DEFAULT_KEEPALIVE_INTERVAL_MILLIS: i64 = 200;

/// One queued OK (or dropped error) awaiting durable coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingEntry {
    wire_seq: WireSeq,
    /// Per-table seqTxn, one per distinct table (the maximum if an OK named a
    /// table twice, since coverage needs the largest). Empty = trivially
    /// durable once its predecessors are.
    tables: Vec<(String, i64)>,
    queued_at: Instant,
}

/// The durable-ACK tracker of one connection (W4).
#[derive(Debug, Clone)]
pub struct DurableAckTracker {
    pending: VecDeque<PendingEntry>,
    /// Per-table durable seqTxn, max-merged over this connection's
    /// DURABLE_ACK frames.
    durable: HashMap<String, i64>,
    /// Highest wire sequence ever queued on this connection: OKs are
    /// cumulative, so a later OK for an older sequence adds nothing.
    last_queued: Option<WireSeq>,
    /// Highest wire sequence acknowledged on this connection.
    last_covered: Option<WireSeq>,
    keepalive: Option<Duration>,
}

impl DurableAckTracker {
    /// An empty tracker. `keepalive_interval_millis` is
    /// `durable_ack_keepalive_interval_millis`; `<= 0` disables the PING.
    pub fn new(keepalive_interval_millis: i64) -> DurableAckTracker {
        let keepalive = u64::try_from(keepalive_interval_millis)
            .ok()
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        DurableAckTracker {
            pending: VecDeque::new(),
            durable: HashMap::new(),
            last_queued: None,
            last_covered: None,
            keepalive,
        }
    }

    /// Queues an OK for `wire_seq` (already clamped by the wire mapping) with
    /// its per-table seqTxns, then re-checks coverage: a DURABLE_ACK that
    /// arrived first may already cover it. Returns the highest newly covered
    /// wire sequence to acknowledge, if any. An OK for a sequence at or below
    /// one already queued is a duplicate or stale and changes nothing.
    pub fn on_ok(
        &mut self,
        wire_seq: WireSeq,
        entries: &[(&str, i64)],
        now: Instant,
    ) -> Option<WireSeq> {
        if self.last_queued.is_some_and(|q| wire_seq <= q) {
            return None;
        }
        // Sort then merge duplicates (keeping the larger seqTxn): O(n log n)
        // even for the 65,535 entries a hostile frame can carry.
        let mut sorted: Vec<(&str, i64)> = entries.to_vec();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0).then(b.1.cmp(&a.1)));
        sorted.dedup_by(|later, first| later.0 == first.0);
        let tables: Vec<(String, i64)> = sorted
            .into_iter()
            .map(|(name, seq_txn)| (name.to_owned(), seq_txn))
            .collect();
        self.last_queued = Some(wire_seq);
        self.pending.push_back(PendingEntry {
            wire_seq,
            tables,
            queued_at: now,
        });
        self.drain_covered()
    }

    /// A DROP_AND_CONTINUE error for `wire_seq` in durable mode (sf-client
    /// §14.4): the server will never make that frame durable, so it is queued
    /// as an empty, trivially durable entry and acknowledged once everything
    /// before it is.
    pub fn on_dropped(&mut self, wire_seq: WireSeq, now: Instant) -> Option<WireSeq> {
        self.on_ok(wire_seq, &[], now)
    }

    /// Max-merges a DURABLE_ACK's per-table watermarks, then pops the covered
    /// prefix. Returns the highest newly covered wire sequence, if any.
    pub fn on_durable_ack(&mut self, entries: &[(&str, i64)]) -> Option<WireSeq> {
        for &(name, seq_txn) in entries {
            match self.durable.get_mut(name) {
                Some(v) => *v = (*v).max(seq_txn),
                None => {
                    self.durable.insert(name.to_owned(), seq_txn);
                }
            }
        }
        self.drain_covered()
    }

    /// Pops every consecutive covered head entry; reports the last popped
    /// sequence once (§10.2 step 4).
    fn drain_covered(&mut self) -> Option<WireSeq> {
        let mut covered = None;
        while let Some(head) = self.pending.front() {
            if !self.is_covered(head) {
                break;
            }
            covered = Some(head.wire_seq);
            self.pending.pop_front();
        }
        if covered.is_some() {
            self.last_covered = covered;
        }
        covered
    }

    /// `>=` coverage: every table of the entry is durable at least up to its
    /// seqTxn. A table with no durable watermark yet is not covered.
    fn is_covered(&self, entry: &PendingEntry) -> bool {
        entry
            .tables
            .iter()
            .all(|(name, seq_txn)| self.durable.get(name).is_some_and(|d| d >= seq_txn))
    }

    /// Reconnect: the new connection renumbers wire sequences and the server
    /// re-sends cumulative watermarks, so all pending entries and watermarks of
    /// the old connection are dropped (§10.3).
    pub fn reset(&mut self) {
        self.pending.clear();
        self.durable.clear();
        self.last_queued = None;
        self.last_covered = None;
    }

    /// Number of OKs waiting for durable coverage.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no OK is waiting for durable coverage.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// The highest wire sequence acknowledged on this connection.
    pub fn last_covered(&self) -> Option<WireSeq> {
        self.last_covered
    }

    /// The durable seqTxn watermark of `table` on this connection.
    pub fn durable_watermark(&self, table: &str) -> Option<i64> {
        self.durable.get(table).copied()
    }

    /// The keepalive interval, or `None` when disabled.
    pub fn keepalive_interval(&self) -> Option<Duration> {
        self.keepalive
    }

    /// When the next keepalive PING is due (sf-client §11): one interval after
    /// the last sent frame or PING, while entries are pending and the
    /// keepalive is enabled. The server flushes durable ACKs only on inbound
    /// traffic, so an idle client must poke it or wait forever (W5).
    pub fn ping_due(&self, last_send_or_ping_at: Instant) -> Option<Instant> {
        let interval = self.keepalive?;
        (!self.pending.is_empty()).then(|| last_send_or_ping_at.saturating_add(interval))
    }

    /// Whether a PING should go out at `now`.
    pub fn should_ping(&self, now: Instant, last_send_or_ping_at: Instant) -> bool {
        self.ping_due(last_send_or_ping_at)
            .is_some_and(|due| now >= due)
    }

    /// How long the oldest pending entry has waited for durable coverage, so a
    /// stalled durable upload is visible.
    pub fn oldest_pending_age(&self, now: Instant) -> Option<Duration> {
        self.pending
            .front()
            .map(|e| now.saturating_duration_since(e.queued_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant(0);

    fn ws(n: u64) -> Option<WireSeq> {
        Some(WireSeq(n))
    }

    #[test]
    fn w4_ok_waits_for_durable_ack() {
        let mut t = DurableAckTracker::new(200);
        assert_eq!(t.on_ok(WireSeq(0), &[("trades", 42)], T0), None);
        assert_eq!(t.on_durable_ack(&[("trades", 41)]), None);
        assert_eq!(t.on_durable_ack(&[("trades", 42)]), ws(0));
        assert!(t.is_idle());
    }

    #[test]
    fn w4_durable_ack_before_ok_still_trims() {
        let mut t = DurableAckTracker::new(200);
        assert_eq!(t.on_durable_ack(&[("trades", 42)]), None);
        // The OK arrives after its durable ACK and no further DURABLE_ACK
        // will come: coverage must be checked on queueing.
        assert_eq!(t.on_ok(WireSeq(0), &[("trades", 40)], T0), ws(0));
        assert_eq!(t.on_ok(WireSeq(1), &[("trades", 42)], T0), ws(1));
        assert_eq!(t.on_ok(WireSeq(2), &[("trades", 43)], T0), None);
    }

    #[test]
    fn w4_table_with_no_further_writes_completes() {
        let mut t = DurableAckTracker::new(200);
        assert_eq!(t.on_ok(WireSeq(0), &[("a", 1), ("b", 7)], T0), None);
        assert_eq!(t.on_ok(WireSeq(1), &[("a", 2)], T0), None);
        // `b` is written once and then never again; its durable ACK lands
        // together with `a`'s later progress. Both entries complete.
        assert_eq!(t.on_durable_ack(&[("a", 2)]), None);
        assert_eq!(t.on_durable_ack(&[("b", 7)]), ws(1));
        assert!(t.is_idle());
    }

    #[test]
    fn w4_coverage_is_greater_or_equal_and_max_merged() {
        let mut t = DurableAckTracker::new(200);
        t.on_ok(WireSeq(0), &[("a", 5)], T0);
        assert_eq!(t.on_durable_ack(&[("a", 9)]), ws(0));
        // A reordered, older DURABLE_ACK does not lower the watermark.
        assert_eq!(t.on_durable_ack(&[("a", 3)]), None);
        assert_eq!(t.durable_watermark("a"), Some(9));
        assert_eq!(t.on_ok(WireSeq(1), &[("a", 9)], T0), ws(1));
    }

    #[test]
    fn w4_empty_ok_between_durable_ones() {
        let mut t = DurableAckTracker::new(200);
        t.on_ok(WireSeq(0), &[("a", 1)], T0);
        t.on_ok(WireSeq(1), &[], T0);
        t.on_ok(WireSeq(2), &[("a", 2)], T0);
        t.on_ok(WireSeq(3), &[], T0);
        // The empty OK waits for its predecessor …
        assert_eq!(t.pending_len(), 4);
        // … then goes with it, but not past an uncovered successor.
        assert_eq!(t.on_durable_ack(&[("a", 1)]), ws(1));
        assert_eq!(t.on_durable_ack(&[("a", 2)]), ws(3));
        // An empty OK with nothing pending before it is durable at once.
        assert_eq!(t.on_ok(WireSeq(4), &[], T0), ws(4));
    }

    #[test]
    fn w4_pop_reports_highest_covered_once() {
        let mut t = DurableAckTracker::new(200);
        for s in 0..5 {
            t.on_ok(WireSeq(s), &[("a", s as i64)], T0);
        }
        assert_eq!(t.on_durable_ack(&[("a", 3)]), ws(3));
        assert_eq!(t.pending_len(), 1);
        assert_eq!(t.last_covered(), ws(3));
    }

    #[test]
    fn w4_stale_or_duplicate_ok_is_ignored() {
        let mut t = DurableAckTracker::new(200);
        t.on_ok(WireSeq(3), &[("a", 3)], T0);
        assert_eq!(t.on_ok(WireSeq(3), &[("a", 1)], T0), None);
        assert_eq!(t.on_ok(WireSeq(1), &[], T0), None);
        assert_eq!(t.pending_len(), 1);
        // A table named twice needs its larger seqTxn.
        t.on_ok(WireSeq(4), &[("b", 9), ("b", 2)], T0);
        assert_eq!(t.on_durable_ack(&[("a", 3), ("b", 2)]), ws(3));
        assert_eq!(t.on_durable_ack(&[("b", 9)]), ws(4));
    }

    #[test]
    fn w4_dropped_frame_is_trivially_durable() {
        let mut t = DurableAckTracker::new(200);
        t.on_ok(WireSeq(0), &[("a", 1)], T0);
        assert_eq!(t.on_dropped(WireSeq(1), T0), None);
        assert_eq!(t.on_durable_ack(&[("a", 1)]), ws(1));
        assert_eq!(t.on_dropped(WireSeq(2), T0), ws(2));
    }

    #[test]
    fn w4_reconnect_drops_pending() {
        let mut t = DurableAckTracker::new(200);
        t.on_ok(WireSeq(0), &[("a", 5)], T0);
        t.on_durable_ack(&[("b", 9)]);
        t.reset();
        assert!(t.is_idle());
        assert_eq!(t.durable_watermark("b"), None);
        assert_eq!(t.last_covered(), None);
        // The old connection's watermark must not cover the new one's OKs,
        // and wire sequence 0 is accepted again.
        assert_eq!(t.on_ok(WireSeq(0), &[("b", 9)], T0), None);
        assert_eq!(t.on_durable_ack(&[("a", 5)]), None);
        assert_eq!(t.on_durable_ack(&[("b", 9)]), ws(0));
    }

    #[test]
    fn w4_ping_due_while_pending() {
        let mut t = DurableAckTracker::new(200);
        let last = Instant(1_000);
        assert_eq!(t.ping_due(last), None, "nothing pending");
        t.on_ok(WireSeq(0), &[("a", 1)], T0);
        let due = Instant(1_000 + 200_000_000);
        assert_eq!(t.ping_due(last), Some(due));
        assert!(!t.should_ping(Instant(due.0 - 1), last));
        assert!(t.should_ping(due, last));
        t.on_durable_ack(&[("a", 1)]);
        assert!(!t.should_ping(due, last), "covered: nothing to poke for");
    }

    #[test]
    fn w4_keepalive_zero_or_negative_disables_ping() {
        for ms in [0, -1, i64::MIN] {
            let mut t = DurableAckTracker::new(ms);
            t.on_ok(WireSeq(0), &[("a", 1)], T0);
            assert_eq!(t.keepalive_interval(), None);
            assert_eq!(t.ping_due(T0), None, "{ms}");
            assert!(!t.should_ping(Instant(u64::MAX), T0));
        }
    }

    #[test]
    fn oldest_pending_age_shows_a_stall() {
        let mut t = DurableAckTracker::new(200);
        assert_eq!(t.oldest_pending_age(Instant(50)), None);
        t.on_ok(WireSeq(0), &[("a", 1)], Instant(10));
        t.on_ok(WireSeq(1), &[("a", 2)], Instant(20));
        assert_eq!(
            t.oldest_pending_age(Instant(50)),
            Some(Duration::from_nanos(40))
        );
        t.on_durable_ack(&[("a", 1)]);
        assert_eq!(
            t.oldest_pending_age(Instant(50)),
            Some(Duration::from_nanos(30))
        );
    }
}
