//! Wire mapping: `fsn_at_zero`, `next_wire_seq`, the in-flight window, and OK
//! handling with the W2 clamp (sf-client §7, §9).
//!
//! One [`WireMapping`] lives for one WebSocket connection. It is created at
//! connect time from the slot's acknowledged and published FSNs and pins
//! `fsn = fsn_at_zero + wire_seq` (W1). The server numbers our messages in the
//! order it receives them, so the mapping only holds if frames go out strictly
//! in FSN order; [`WireMapping::on_sent`] refuses anything else.
//!
//! Two watermarks are kept apart on purpose:
//! - the *responded* watermark: the highest wire sequence the server answered
//!   (OK or error frame). It bounds the in-flight window and drives the ACK
//!   timeout, because an answer is progress even when it does not trim;
//! - the *acknowledged* FSN: the trim watermark. With OK-driven trim it moves
//!   with every OK; with durable-ACK trim it moves only when the durable
//!   tracker ([`crate::durable_ack`]) says a prefix is covered.
//!
//! Neither watermark ever goes back (W2).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::{Fsn, Instant, WireSeq};

/// Default `in_flight_window`: frames sent but not yet answered on one
/// connection (sf-client §4.5).
pub const DEFAULT_IN_FLIGHT_WINDOW: u32 = 128;

/// What advances the trim watermark on this connection (sf-client §9.2, §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrimDriver {
    /// Every OK acknowledges up to its (clamped) sequence.
    #[default]
    Ok,
    /// `request_durable_ack=on` was negotiated: OKs are only queued, and
    /// DURABLE_ACK coverage acknowledges (W4).
    DurableAck,
}

/// The maximum number of frames sent on a connection and not yet answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlightWindow(u32);

impl InFlightWindow {
    /// A window of `frames` frames; zero would never let a frame out.
    pub fn new(frames: u32) -> Result<InFlightWindow, AckError> {
        if frames == 0 {
            return Err(AckError::ZeroWindow);
        }
        Ok(InFlightWindow(frames))
    }

    /// The number of frames.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for InFlightWindow {
    fn default() -> Self {
        InFlightWindow(DEFAULT_IN_FLIGHT_WINDOW)
    }
}

/// A mapping or ordering violation, by the caller (send order) or by the
/// server (an answer the mapping cannot place).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// `in_flight_window` was zero.
    #[error("in_flight_window must be at least 1")]
    ZeroWindow,
    /// The caller tried to send a frame other than the next one in FSN order.
    #[error(
        "frame FSN {got} sent out of order: the next frame on this connection is FSN {expected}"
    )]
    OutOfOrderSend {
        /// The FSN that must go out next.
        expected: Fsn,
        /// The FSN the caller tried to send.
        got: Fsn,
    },
    /// The caller tried to send while the in-flight window was full.
    #[error("frame FSN {fsn} sent with the in-flight window full ({window} frames unanswered)")]
    WindowFull {
        /// The FSN the caller tried to send.
        fsn: Fsn,
        /// The configured window.
        window: u32,
    },
    /// The server answered with a negative sequence.
    #[error("server answered with negative sequence {sequence}")]
    NegativeSequence {
        /// The sequence as received.
        sequence: i64,
    },
    /// The server answered although nothing was sent on this connection.
    #[error("server answered sequence {sequence} but nothing was sent on this connection")]
    NothingSent {
        /// The sequence as received.
        sequence: i64,
    },
}

/// What one OK frame means for the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OkOutcome {
    /// The sequence after the W2 clamp to `next_wire_seq − 1`.
    pub wire_seq: WireSeq,
    /// Whether the server's sequence was ahead of what was sent (W2 clamp
    /// applied); worth a WARN, since a correct server never does this.
    pub clamped: bool,
    /// The FSN the OK maps to: `fsn_at_zero + wire_seq`.
    pub fsn: Fsn,
    /// With OK-driven trim: the new acknowledged FSN if this OK advanced it
    /// (`None` for a stale or duplicate OK). Always `None` with durable-ACK
    /// trim; feed `wire_seq` and the entries to the durable tracker instead.
    pub acknowledge: Option<Fsn>,
}

/// The FSN ↔ wire-sequence mapping, send order, in-flight window and ACK
/// progress of one connection.
#[derive(Debug, Clone)]
pub struct WireMapping {
    driver: TrimDriver,
    window: InFlightWindow,
    fsn_at_zero: Fsn,
    /// Number of frames sent on this connection (= the next wire sequence).
    sent: u64,
    /// Number of leading wire sequences answered (OK or error): the highest
    /// answered sequence + 1, 0 if none.
    answered: u64,
    /// The trim watermark; starts at the slot's acknowledged FSN at connect.
    acked: Option<Fsn>,
    /// The published FSN at connect: frames up to it are replays (§13.5).
    replay_target: Option<Fsn>,
    replayed: u64,
    /// Per-table seqTxn from OKs, max-merged, for observability (§9.2 step 3).
    table_seq_txns: BTreeMap<String, i64>,
    /// When the window last made progress (became non-empty, or an answer
    /// arrived); meaningful only while frames are in flight.
    last_progress_at: Instant,
}

impl WireMapping {
    /// The mapping of a fresh connection (W1): `fsn_at_zero = acked + 1` (0 on
    /// a brand-new slot), `next_wire_seq = 0`. `published` is the slot's
    /// published FSN at connect time; frames up to it count as replays.
    pub fn connect(
        acked: Option<Fsn>,
        published: Option<Fsn>,
        driver: TrimDriver,
        window: InFlightWindow,
        now: Instant,
    ) -> WireMapping {
        WireMapping {
            driver,
            window,
            fsn_at_zero: acked.map_or(Fsn::ZERO, Fsn::next),
            sent: 0,
            answered: 0,
            acked,
            replay_target: published,
            replayed: 0,
            table_seq_txns: BTreeMap::new(),
            last_progress_at: now,
        }
    }

    /// The trim driver this connection negotiated.
    pub fn driver(&self) -> TrimDriver {
        self.driver
    }

    /// The FSN that wire sequence 0 maps to on this connection.
    pub fn fsn_at_zero(&self) -> Fsn {
        self.fsn_at_zero
    }

    /// The wire sequence the next sent frame will get.
    pub fn next_wire_seq(&self) -> WireSeq {
        WireSeq(self.sent)
    }

    /// The FSN that must go out next: `fsn_at_zero + next_wire_seq`.
    pub fn next_fsn(&self) -> Fsn {
        self.fsn_at_zero.plus(self.sent)
    }

    /// The trim watermark: every FSN up to it is acknowledged.
    pub fn acked(&self) -> Option<Fsn> {
        self.acked
    }

    /// The published FSN at connect time: the last frame that is a replay.
    pub fn replay_target(&self) -> Option<Fsn> {
        self.replay_target
    }

    /// Frames re-sent on this connection that were published before it
    /// connected (`totalFramesReplayed`, §13.5, §20).
    pub fn frames_replayed(&self) -> u64 {
        self.replayed
    }

    /// Frames sent on this connection and not yet answered.
    pub fn in_flight(&self) -> u64 {
        self.sent - self.answered
    }

    /// The next frame to send, if one is published and the window has room;
    /// frames go out in FSN order from `fsn_at_zero` (replay first, then new
    /// frames).
    pub fn next_to_send(&self, published: Option<Fsn>) -> Option<Fsn> {
        let next = self.next_fsn();
        let is_published = published.is_some_and(|p| next <= p);
        let has_room = self.in_flight() < u64::from(self.window.get());
        (is_published && has_room).then_some(next)
    }

    /// Records that `fsn` went out as the next WebSocket message and returns
    /// its wire sequence. Anything but the next FSN in order, or a send into a
    /// full window, is refused and changes nothing.
    pub fn on_sent(&mut self, fsn: Fsn, now: Instant) -> Result<WireSeq, AckError> {
        let expected = self.next_fsn();
        if fsn != expected {
            return Err(AckError::OutOfOrderSend { expected, got: fsn });
        }
        if self.in_flight() >= u64::from(self.window.get()) {
            return Err(AckError::WindowFull {
                fsn,
                window: self.window.get(),
            });
        }
        if self.in_flight() == 0 {
            // The ACK clock starts when the window becomes non-empty: an idle
            // connection has nothing to time out.
            self.last_progress_at = now;
        }
        if self.replay_target.is_some_and(|t| fsn <= t) {
            self.replayed += 1;
        }
        let seq = WireSeq(self.sent);
        self.sent += 1;
        Ok(seq)
    }

    /// W2: places a server sequence on this connection, clamped to
    /// `next_wire_seq − 1`. Returns the clamped sequence and whether the clamp
    /// applied. A negative sequence, or any answer before a frame was sent, is
    /// a protocol error: there is no frame it could refer to.
    pub fn clamp(&self, sequence: i64) -> Result<(WireSeq, bool), AckError> {
        let raw = u64::try_from(sequence).map_err(|_| AckError::NegativeSequence { sequence })?;
        let last_sent = self
            .sent
            .checked_sub(1)
            .ok_or(AckError::NothingSent { sequence })?;
        Ok((WireSeq(raw.min(last_sent)), raw > last_sent))
    }

    /// Whether `sequence` names a frame actually sent on this connection
    /// (non-negative and below `next_wire_seq`), unclamped.
    pub fn sent_wire_seq(&self, sequence: i64) -> Option<WireSeq> {
        u64::try_from(sequence)
            .ok()
            .filter(|&s| s < self.sent)
            .map(WireSeq)
    }

    /// The FSN of a wire sequence on this connection.
    pub fn fsn_of(&self, seq: WireSeq) -> Fsn {
        self.fsn_at_zero.plus(seq.get())
    }

    /// Handles an OK frame `(sequence, per-table seqTxns)` (sf-client §9.2):
    /// clamps the sequence (W2), records the answer as progress, max-merges
    /// the per-table seqTxns, and with OK-driven trim acknowledges up to the
    /// mapped FSN (never backwards).
    pub fn on_ok(
        &mut self,
        sequence: i64,
        entries: &[(&str, i64)],
        now: Instant,
    ) -> Result<OkOutcome, AckError> {
        let (wire_seq, clamped) = self.clamp(sequence)?;
        self.record_answer(wire_seq, now);
        for &(table, seq_txn) in entries {
            match self.table_seq_txns.get_mut(table) {
                Some(v) => *v = (*v).max(seq_txn),
                None => {
                    self.table_seq_txns.insert(table.to_owned(), seq_txn);
                }
            }
        }
        let acknowledge = match self.driver {
            TrimDriver::Ok => self.acknowledge_wire_seq(wire_seq),
            TrimDriver::DurableAck => None,
        };
        Ok(OkOutcome {
            wire_seq,
            clamped,
            fsn: self.fsn_of(wire_seq),
            acknowledge,
        })
    }

    /// Records that the server answered `seq` (an OK or an error frame): the
    /// server processes messages in order, so every frame up to it has been
    /// answered. Counts as ACK progress when it moves the watermark.
    pub fn record_answer(&mut self, seq: WireSeq, now: Instant) {
        let answered = seq.get().saturating_add(1).min(self.sent);
        if answered > self.answered {
            self.answered = answered;
            self.last_progress_at = now;
        }
    }

    /// Acknowledges every frame up to wire sequence `seq` (clamped to what was
    /// sent). Returns the new acknowledged FSN if the watermark advanced, and
    /// `None` if it was already at or past it: ACK watermarks never go back.
    pub fn acknowledge_wire_seq(&mut self, seq: WireSeq) -> Option<Fsn> {
        let last_sent = self.sent.checked_sub(1)?;
        let fsn = self.fsn_of(WireSeq(seq.get().min(last_sent)));
        if self.acked.is_some_and(|a| a >= fsn) {
            return None;
        }
        self.acked = Some(fsn);
        Some(fsn)
    }

    /// The highest seqTxn an OK reported for `table` on this connection.
    pub fn table_seq_txn(&self, table: &str) -> Option<i64> {
        self.table_seq_txns.get(table).copied()
    }

    /// Every table's highest OK'd seqTxn on this connection, by name.
    pub fn table_seq_txns(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.table_seq_txns.iter().map(|(k, &v)| (k.as_str(), v))
    }

    /// When the ACK timeout fires if no answer arrives: `ack_timeout` after
    /// the last progress, while frames are in flight; `None` when the window
    /// is empty (nothing to wait for).
    pub fn ack_deadline(&self, ack_timeout: Duration) -> Option<Instant> {
        (self.in_flight() > 0).then(|| self.last_progress_at.saturating_add(ack_timeout))
    }

    /// Whether frames are in flight and no progress arrived for
    /// `ack_timeout` up to `now` (sf-client §13.1 "ack timeout").
    pub fn is_stalled(&self, now: Instant, ack_timeout: Duration) -> bool {
        self.ack_deadline(ack_timeout).is_some_and(|d| now >= d)
    }

    /// Since when the window has been waiting without progress, if frames are
    /// in flight.
    pub fn stalled_since(&self) -> Option<Instant> {
        (self.in_flight() > 0).then_some(self.last_progress_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Instant = Instant(0);

    fn window(n: u32) -> InFlightWindow {
        InFlightWindow::new(n).unwrap()
    }

    fn send_n(m: &mut WireMapping, n: u64) {
        for _ in 0..n {
            let fsn = m.next_fsn();
            m.on_sent(fsn, T0).unwrap();
        }
    }

    #[test]
    fn w1_fsn_at_zero_is_acked_plus_one() {
        let fresh = WireMapping::connect(None, None, TrimDriver::Ok, window(8), T0);
        assert_eq!(fresh.fsn_at_zero(), Fsn(0));
        assert_eq!(fresh.next_wire_seq(), WireSeq(0));
        let resumed =
            WireMapping::connect(Some(Fsn(41)), Some(Fsn(50)), TrimDriver::Ok, window(8), T0);
        assert_eq!(resumed.fsn_at_zero(), Fsn(42));
        assert_eq!(resumed.next_wire_seq(), WireSeq(0));
        assert_eq!(resumed.next_to_send(Some(Fsn(50))), Some(Fsn(42)));
    }

    #[test]
    fn w1_send_order_is_strict() {
        let mut m = WireMapping::connect(Some(Fsn(4)), Some(Fsn(9)), TrimDriver::Ok, window(8), T0);
        assert_eq!(
            m.on_sent(Fsn(6), T0),
            Err(AckError::OutOfOrderSend {
                expected: Fsn(5),
                got: Fsn(6)
            })
        );
        assert_eq!(m.on_sent(Fsn(5), T0), Ok(WireSeq(0)));
        assert_eq!(
            m.on_sent(Fsn(5), T0),
            Err(AckError::OutOfOrderSend {
                expected: Fsn(6),
                got: Fsn(5)
            })
        );
        assert_eq!(m.on_sent(Fsn(6), T0), Ok(WireSeq(1)));
        assert_eq!(m.next_fsn(), Fsn(7));
    }

    #[test]
    fn next_to_send_waits_for_publication() {
        let m = WireMapping::connect(Some(Fsn(4)), Some(Fsn(4)), TrimDriver::Ok, window(8), T0);
        assert_eq!(m.next_to_send(Some(Fsn(4))), None);
        assert_eq!(m.next_to_send(Some(Fsn(5))), Some(Fsn(5)));
        let empty = WireMapping::connect(None, None, TrimDriver::Ok, window(8), T0);
        assert_eq!(empty.next_to_send(None), None);
        assert_eq!(empty.next_to_send(Some(Fsn(0))), Some(Fsn(0)));
    }

    #[test]
    fn in_flight_window_bounds_sends_and_answers_reopen_it() {
        let mut m = WireMapping::connect(None, None, TrimDriver::Ok, window(2), T0);
        let published = Some(Fsn(10));
        send_n(&mut m, 2);
        assert_eq!(m.in_flight(), 2);
        assert_eq!(m.next_to_send(published), None);
        assert_eq!(
            m.on_sent(Fsn(2), T0),
            Err(AckError::WindowFull {
                fsn: Fsn(2),
                window: 2
            })
        );
        m.on_ok(0, &[], T0).unwrap();
        assert_eq!(m.in_flight(), 1);
        assert_eq!(m.next_to_send(published), Some(Fsn(2)));
        assert_eq!(InFlightWindow::new(0), Err(AckError::ZeroWindow));
        assert_eq!(InFlightWindow::default().get(), 128);
    }

    #[test]
    fn replays_are_frames_published_before_connect() {
        let mut m =
            WireMapping::connect(Some(Fsn(2)), Some(Fsn(5)), TrimDriver::Ok, window(16), T0);
        send_n(&mut m, 5); // FSN 3..=7: 3, 4, 5 are replays
        assert_eq!(m.frames_replayed(), 3);
        let fresh =
            WireMapping::connect(Some(Fsn(5)), Some(Fsn(5)), TrimDriver::Ok, window(16), T0);
        assert_eq!(fresh.frames_replayed(), 0);
    }

    #[test]
    fn ok_acknowledges_mapped_fsn() {
        let mut m =
            WireMapping::connect(Some(Fsn(9)), Some(Fsn(20)), TrimDriver::Ok, window(16), T0);
        send_n(&mut m, 4);
        let out = m.on_ok(2, &[("trades", 42)], T0).unwrap();
        assert_eq!(
            out,
            OkOutcome {
                wire_seq: WireSeq(2),
                clamped: false,
                fsn: Fsn(12),
                acknowledge: Some(Fsn(12)),
            }
        );
        assert_eq!(m.acked(), Some(Fsn(12)));
    }

    #[test]
    fn w2_future_ok_is_clamped() {
        let mut m =
            WireMapping::connect(Some(Fsn(9)), Some(Fsn(20)), TrimDriver::Ok, window(16), T0);
        send_n(&mut m, 3); // FSN 10, 11, 12 on wire seq 0..=2
        let out = m.on_ok(100, &[], T0).unwrap();
        assert!(out.clamped);
        assert_eq!(out.wire_seq, WireSeq(2));
        assert_eq!(out.acknowledge, Some(Fsn(12)));
        assert_eq!(m.acked(), Some(Fsn(12)));
        let out = m.on_ok(i64::MAX, &[], T0).unwrap();
        assert_eq!((out.wire_seq, out.acknowledge), (WireSeq(2), None));
    }

    #[test]
    fn w2_ok_without_a_sent_frame_or_negative_is_a_protocol_error() {
        let mut m =
            WireMapping::connect(Some(Fsn(3)), Some(Fsn(9)), TrimDriver::Ok, window(16), T0);
        assert_eq!(
            m.on_ok(0, &[], T0),
            Err(AckError::NothingSent { sequence: 0 })
        );
        send_n(&mut m, 1);
        assert_eq!(
            m.on_ok(-1, &[], T0),
            Err(AckError::NegativeSequence { sequence: -1 })
        );
        assert_eq!(m.acked(), Some(Fsn(3)));
    }

    #[test]
    fn w2_ack_never_goes_back() {
        let mut m = WireMapping::connect(None, Some(Fsn(20)), TrimDriver::Ok, window(16), T0);
        send_n(&mut m, 6);
        assert_eq!(m.on_ok(4, &[], T0).unwrap().acknowledge, Some(Fsn(4)));
        assert_eq!(m.on_ok(1, &[], T0).unwrap().acknowledge, None);
        assert_eq!(m.acked(), Some(Fsn(4)));
        assert_eq!(m.acknowledge_wire_seq(WireSeq(2)), None);
        assert_eq!(m.acked(), Some(Fsn(4)));
        assert_eq!(m.in_flight(), 1);
        assert_eq!(m.on_ok(5, &[], T0).unwrap().acknowledge, Some(Fsn(5)));
    }

    #[test]
    fn w4_ok_does_not_trim_in_durable_mode() {
        let mut m =
            WireMapping::connect(None, Some(Fsn(5)), TrimDriver::DurableAck, window(16), T0);
        send_n(&mut m, 3);
        let out = m.on_ok(2, &[("t", 1)], T0).unwrap();
        assert_eq!(out.acknowledge, None);
        assert_eq!(out.fsn, Fsn(2));
        assert_eq!(m.acked(), None);
        assert_eq!(m.in_flight(), 0, "an OK still answers frames");
        assert_eq!(m.acknowledge_wire_seq(WireSeq(1)), Some(Fsn(1)));
    }

    #[test]
    fn per_table_seq_txns_are_max_merged() {
        let mut m = WireMapping::connect(None, Some(Fsn(5)), TrimDriver::Ok, window(16), T0);
        send_n(&mut m, 3);
        m.on_ok(0, &[("a", 5), ("b", 2)], T0).unwrap();
        m.on_ok(1, &[("a", 3)], T0).unwrap();
        m.on_ok(2, &[("b", 7), ("c", 1)], T0).unwrap();
        assert_eq!(m.table_seq_txn("a"), Some(5));
        assert_eq!(m.table_seq_txn("b"), Some(7));
        assert_eq!(m.table_seq_txn("zzz"), None);
        let all: Vec<_> = m.table_seq_txns().collect();
        assert_eq!(all, vec![("a", 5), ("b", 7), ("c", 1)]);
    }

    #[test]
    fn ack_deadline_runs_only_with_frames_in_flight() {
        let timeout = Duration::from_secs(5);
        let mut m =
            WireMapping::connect(None, Some(Fsn(9)), TrimDriver::Ok, window(16), Instant(0));
        assert_eq!(m.ack_deadline(timeout), None);
        assert!(!m.is_stalled(Instant(u64::MAX), timeout));
        // The clock starts when the window becomes non-empty, not at connect.
        m.on_sent(Fsn(0), Instant(1_000)).unwrap();
        m.on_sent(Fsn(1), Instant(2_000)).unwrap();
        assert_eq!(m.stalled_since(), Some(Instant(1_000)));
        assert_eq!(m.ack_deadline(timeout), Some(Instant(5_000_001_000)));
        assert!(!m.is_stalled(Instant(5_000_000_999), timeout));
        assert!(m.is_stalled(Instant(5_000_001_000), timeout));
        // An answer is progress and restarts the clock.
        m.on_ok(0, &[], Instant(3_000)).unwrap();
        assert_eq!(m.ack_deadline(timeout), Some(Instant(5_000_003_000)));
        // A stale answer is not progress.
        m.on_ok(0, &[], Instant(4_000)).unwrap();
        assert_eq!(m.ack_deadline(timeout), Some(Instant(5_000_003_000)));
        m.on_ok(1, &[], Instant(5_000)).unwrap();
        assert_eq!(m.ack_deadline(timeout), None);
    }
}
