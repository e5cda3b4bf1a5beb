//! Invariant checkers named after DESIGN §4, fed events rather than a world.
//!
//! The [`Checker`] sees what an adapter sees: every input it feeds the
//! engine ([`Checker::on_input`]), every output it takes
//! ([`Checker::on_output`]), the producer's commits and returned flushes,
//! crashes and restarts, and the engine's observable state after each step
//! ([`Checker::after_step`]). It keeps a ledger of every committed frame
//! (the row ids it carries, whether its `flush()` returned, how often it
//! was sent, whether a DROP covered it) so that, at the end of a run,
//! [`Checker::check_delivery`] can prove that nothing promised was lost.
//!
//! Because it needs no simulator, the engine fuzz target reuses it as is.
//!
//! What "promised" means (C1 and the durability modes):
//! * a frame whose `flush()` returned must reach the server, unless a DROP
//!   policy event covers its FSN, or a crash was allowed to lose it:
//!   memory backing loses everything unacknowledged on any crash, a host
//!   crash in `sf_durability=memory` may lose every unsynced frame, a host
//!   crash in `flush` / `append` durability only frames above the durable
//!   FSN, and a process crash over files loses nothing;
//! * a row may reach the server more than once only if its frame was sent
//!   more than once (replay after a reconnect or a restart).

use std::collections::BTreeMap;
use std::fmt;

use qwp_proto::status::ErrorPolicy;
use sf_core::durability::DurabilityMode;
use sf_core::engine::{ConnectionState, Engine, EngineConfig, Input, Output};
use sf_core::recovery::RecoveredSlot;
use sf_core::storage::{Backing, IoId, IoOutcome, StorageOutput};
use sf_core::{Fsn, Instant};

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The DESIGN §4 name (`"S1"`, `"W2"`, `"C1"`, …) or `"LIVENESS"`.
    pub invariant: &'static str,
    /// What was seen, with the FSNs and values involved.
    pub detail: String,
    /// Virtual time of the observation.
    pub at: Instant,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at t={}ns: {}",
            self.invariant,
            self.at.as_nanos(),
            self.detail
        )
    }
}

/// What a crash is allowed to lose, derived from the crash kind and the
/// storage configuration with [`CrashLoss::for_crash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashLoss {
    /// Nothing published may be lost (process crash over files).
    Nothing,
    /// Frames above the durable FSN may be lost (host crash over files in
    /// `flush` / `append` durability).
    AboveDurable,
    /// Every unacknowledged frame may be lost (memory backing; host crash
    /// in `sf_durability=memory`).
    Unacked,
    /// Bits flipped at rest: what survives may be wrong in ways recovery
    /// cannot see (a `baseSeq` is not checksummed), so the slot starts a
    /// new epoch, nothing unacknowledged is required, and replays of its
    /// frames are not counted.
    Corrupted,
}

impl CrashLoss {
    /// The loss allowed for a crash (`host`: the machine died, not only the
    /// process) under `config`.
    pub fn for_crash(host: bool, config: &EngineConfig) -> CrashLoss {
        match (config.storage.backing, host, config.storage.durability) {
            (Backing::Memory, _, _) => CrashLoss::Unacked,
            (Backing::Files, false, _) => CrashLoss::Nothing,
            (Backing::Files, true, DurabilityMode::Memory) => CrashLoss::Unacked,
            (Backing::Files, true, _) => CrashLoss::AboveDurable,
        }
    }
}

/// One committed frame in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRecord {
    /// Its FSN (unique within a slot epoch).
    pub fsn: Fsn,
    /// The first row id it carries; its rows are `first_row..first_row + rows`.
    pub first_row: i64,
    /// How many rows.
    pub rows: u32,
    /// Its `flush()` returned (C1): it is promised.
    pub flushed: bool,
    /// A DROP policy event covered it: its loss is reported.
    pub dropped: bool,
    /// A crash or a wiped slot was allowed to lose it.
    pub excused: bool,
    /// How many times it went out on the wire (all lives); `u32::MAX` when
    /// unknown (the slot was corrupted and may replay it under another FSN).
    pub sends: u32,
}

/// How often each row id reached the server, and which rows the server
/// itself admits to having forgotten (a server restart that lost rows it
/// had not made durable).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryLog {
    /// Row id → number of times the server committed it.
    pub counts: BTreeMap<i64, u32>,
    /// Row ids the server lost on its own restart (never required of the
    /// client in OK-trim mode; a violation in durable-ACK mode if the
    /// client had been told they were durable — checked by the server).
    pub forgotten: std::collections::BTreeSet<i64>,
}

/// State of the current connection, for W1.
#[derive(Debug, Clone, Copy)]
struct SessionCheck {
    /// The FSN the next `Send` must carry.
    next: Option<Fsn>,
}

/// The snapshot taken at a crash, judged at the restart.
#[derive(Debug, Clone, Copy)]
struct CrashSnapshot {
    loss: CrashLoss,
    acked: Option<Fsn>,
    published: Option<Fsn>,
    durable: Option<Fsn>,
    watermark: Option<Fsn>,
    /// Set by a clean close that returned `Ok` with no failed watermark
    /// write in its life: the acknowledged FSN at that close, which the
    /// next open must recover at least (S8 at clean close).
    clean_acked: Option<Option<Fsn>>,
}

/// Counters the checker keeps for the run's statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Frames committed.
    pub frames: u64,
    /// Frames whose flush returned.
    pub flushed: u64,
    /// Frames covered by a DROP event.
    pub dropped: u64,
    /// Frames a crash or a wiped slot was allowed to lose, and did.
    pub excused_lost: u64,
    /// Sends of frames (first sends and replays).
    pub sends: u64,
    /// Sends of a frame that had gone out before.
    pub resends: u64,
    /// Restarts whose recovered acknowledgement passed the true one over
    /// frames the crash was allowed to lose (see [`Checker::on_restart`]).
    pub ack_jumps: u64,
}

/// The invariant checkers. See the module docs.
#[derive(Debug)]
pub struct Checker {
    backing: Backing,
    durability: DurabilityMode,
    footprint_bound: u64,
    /// Lives of the engine over the current slot epoch (restarts).
    life: u64,
    acked: Option<Fsn>,
    published: Option<Fsn>,
    durable: Option<Fsn>,
    /// Last `.ack-watermark` value whose write completed.
    watermark: Option<Fsn>,
    pending_watermarks: BTreeMap<IoId, Fsn>,
    session: Option<SessionCheck>,
    halted: bool,
    /// The bound for this life's footprint, raised once to what the slot
    /// held when it was opened (S6 exempts a slot already over the cap).
    opened_footprint: Option<u64>,
    crash: Option<CrashSnapshot>,
    /// The `.ack-watermark` could not be trusted for the next restart (a
    /// failed write or read was injected): replaying acknowledged frames
    /// is then the spec's fallback (sf-client §5.4), not a violation.
    watermark_unreliable: bool,
    /// What the last `Closed` output of this life said (`Some(true)`: Ok).
    close_ok: Option<bool>,
    /// A `.ack-watermark` write or removal of this life completed with a
    /// failure (the engine's close counts both as a failed watermark write
    /// and stops waiting).
    watermark_write_failed: bool,
    /// `.ack-watermark` removals in flight.
    pending_watermark_removals: std::collections::BTreeSet<IoId>,
    ledger: BTreeMap<Fsn, FrameRecord>,
    retired: Vec<FrameRecord>,
    violations: Vec<Violation>,
    stats: CheckStats,
}

impl Checker {
    /// A checker for an engine built from `config` over an empty slot.
    pub fn new(config: &EngineConfig) -> Checker {
        Checker {
            backing: config.storage.backing,
            durability: config.storage.durability,
            footprint_bound: config
                .storage
                .max_total_bytes
                .saturating_add(config.storage.segment_bytes),
            life: 0,
            acked: None,
            published: None,
            durable: None,
            watermark: None,
            pending_watermarks: BTreeMap::new(),
            session: None,
            halted: false,
            opened_footprint: None,
            crash: None,
            watermark_unreliable: false,
            close_ok: None,
            watermark_write_failed: false,
            pending_watermark_removals: std::collections::BTreeSet::new(),
            ledger: BTreeMap::new(),
            retired: Vec::new(),
            violations: Vec::new(),
            stats: CheckStats::default(),
        }
    }

    fn violate(&mut self, at: Instant, invariant: &'static str, detail: String) {
        self.violations.push(Violation {
            invariant,
            detail,
            at,
        });
    }

    /// Every violation found so far, in order.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// Takes the violations found so far.
    pub fn take_violations(&mut self) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    /// The counters.
    pub fn stats(&self) -> CheckStats {
        self.stats
    }

    /// The ledger of the current slot epoch, by FSN.
    pub fn ledger(&self) -> &BTreeMap<Fsn, FrameRecord> {
        &self.ledger
    }

    /// The acknowledged FSN the checker believes in.
    pub fn acked(&self) -> Option<Fsn> {
        self.acked
    }

    /// Whether a terminal error was reported in this life.
    pub fn halted(&self) -> bool {
        self.halted
    }

    // ----- producer ----------------------------------------------------------

    /// A frame carrying rows `first_row..first_row + rows` was committed as
    /// `fsn` (S1: FSNs are contiguous; S7: a failed append did not use one).
    pub fn on_commit(&mut self, now: Instant, fsn: Fsn, first_row: i64, rows: u32) {
        let expected = self.published.map_or(Fsn::ZERO, Fsn::next);
        if fsn != expected {
            self.violate(
                now,
                "S1",
                format!("committed FSN {fsn}, expected {expected} (contiguous, never reused)"),
            );
        }
        self.published = Some(self.published.map_or(fsn, |p| p.max(fsn)));
        self.stats.frames += 1;
        if let Some(old) = self.ledger.insert(
            fsn,
            FrameRecord {
                fsn,
                first_row,
                rows,
                flushed: false,
                dropped: false,
                excused: false,
                sends: 0,
            },
        ) {
            self.retired.push(old);
        }
    }

    /// A `flush()` whose batch ends at `last` returned (C1). `durable` is
    /// the engine's durable FSN at that moment: in `flush` / `append`
    /// durability it must cover the batch.
    pub fn on_flush_returned(&mut self, now: Instant, last: Option<Fsn>, durable: Option<Fsn>) {
        let Some(last) = last else {
            return;
        };
        if self.published.is_none_or(|p| last > p) {
            self.violate(
                now,
                "C1",
                format!(
                    "flush returned for FSN {last} beyond the published FSN {:?}",
                    self.published
                ),
            );
        }
        if self.backing == Backing::Files
            && self.durability != DurabilityMode::Memory
            && durable.is_none_or(|d| d < last)
        {
            self.violate(
                now,
                "C1",
                format!(
                    "flush returned for FSN {last} in {:?} durability with durable FSN {durable:?}",
                    self.durability
                ),
            );
        }
        for rec in self.ledger.range_mut(..=last).rev() {
            if rec.1.flushed {
                break;
            }
            rec.1.flushed = true;
            self.stats.flushed += 1;
        }
    }

    // ----- adapter traffic -----------------------------------------------------

    /// An input about to be fed to the engine.
    pub fn on_input(&mut self, _now: Instant, input: &Input<'_>) {
        match input {
            // Connection boundaries are taken from the outputs (`Connect`,
            // `CloseConnection`), not from these inputs: an adapter may feed
            // several inputs before it drains the outputs the first one
            // caused, and those still belong to the old connection.
            Input::Connected { .. } | Input::Disconnected { .. } | Input::ConnectFailed { .. } => {}
            Input::Io { id, outcome } => {
                if let Some(fsn) = self.pending_watermarks.remove(id) {
                    if *outcome == IoOutcome::Done {
                        self.watermark = Some(self.watermark.map_or(fsn, |w| w.max(fsn)));
                    } else {
                        self.watermark_write_failed = true;
                    }
                }
                if self.pending_watermark_removals.remove(id)
                    && matches!(outcome, IoOutcome::Failed(_))
                {
                    self.watermark_write_failed = true;
                }
            }
            Input::Received(_) | Input::Pong | Input::Timeout => {}
        }
    }

    /// An output the adapter took from the engine.
    pub fn on_output(&mut self, now: Instant, output: &Output) {
        match output {
            Output::Send { fsn, .. } => self.on_send(now, *fsn),
            Output::Progress { acked } => self.on_progress(now, *acked),
            // The engine connects only when it has no connection: the next
            // send starts a new one at `acked + 1` (W1).
            Output::CloseConnection { .. } | Output::Connect { .. } => self.session = None,
            Output::Notify(e) => {
                if e.policy() == ErrorPolicy::DropAndContinue {
                    if let Some(span) = e.span() {
                        for (_, rec) in self.ledger.range_mut(span.from()..=span.to()) {
                            if !rec.dropped {
                                rec.dropped = true;
                                self.stats.dropped += 1;
                            }
                        }
                    }
                } else {
                    self.halted = true;
                }
            }
            Output::Storage(StorageOutput::PersistAckWatermark { id, fsn, .. }) => {
                if self.acked.is_none_or(|a| *fsn > a) {
                    self.violate(
                        now,
                        "S8",
                        format!(
                            "asked to persist watermark {fsn} above the acknowledged FSN {:?}",
                            self.acked
                        ),
                    );
                }
                self.pending_watermarks.insert(*id, *fsn);
            }
            Output::Storage(StorageOutput::RemoveAckWatermark { id, .. }) => {
                self.pending_watermark_removals.insert(*id);
            }
            Output::Closed { result, .. } => self.close_ok = Some(result.is_ok()),
            Output::Storage(_) | Output::Ping | Output::Warn(_) | Output::Released => {}
        }
    }

    /// A frame went out on the current connection (W1: strict FSN order,
    /// the first one `acked + 1`; nothing acknowledged is resent).
    fn on_send(&mut self, now: Instant, fsn: Fsn) {
        let start = self.acked.map_or(Fsn::ZERO, Fsn::next);
        let expected = match self.session {
            Some(SessionCheck { next: Some(n) }) => n,
            _ => start,
        };
        if fsn != expected {
            self.violate(
                now,
                "W1",
                format!("sent FSN {fsn}, expected {expected} (strict FSN order from acked + 1)"),
            );
        }
        if self.acked.is_some_and(|a| fsn <= a) {
            self.violate(
                now,
                "W1",
                format!(
                    "resent FSN {fsn}, already acknowledged up to {:?}",
                    self.acked
                ),
            );
        }
        if self.published.is_none_or(|p| fsn > p) {
            self.violate(
                now,
                "W1",
                format!(
                    "sent FSN {fsn} beyond the published FSN {:?}",
                    self.published
                ),
            );
        }
        self.session = Some(SessionCheck {
            next: Some(fsn.next()),
        });
        self.stats.sends += 1;
        if let Some(rec) = self.ledger.get_mut(&fsn) {
            if rec.sends > 0 {
                self.stats.resends += 1;
            }
            rec.sends = rec.sends.saturating_add(1);
        }
    }

    /// The acknowledged FSN advanced (W2: never backwards, never beyond
    /// what was sent on this connection).
    fn on_progress(&mut self, now: Instant, acked: Fsn) {
        if self.acked.is_some_and(|a| acked <= a) {
            self.violate(
                now,
                "W2",
                format!(
                    "progress to {acked} does not advance the acknowledged FSN {:?}",
                    self.acked
                ),
            );
        }
        let sent_upto = self.session.and_then(|s| s.next).and_then(Fsn::prev);
        if sent_upto.is_none_or(|s| acked > s) {
            self.violate(
                now,
                "W2",
                format!("acknowledged {acked} but this connection sent only up to {sent_upto:?}"),
            );
        }
        self.acked = Some(self.acked.map_or(acked, |a| a.max(acked)));
    }

    /// The engine's observable state after a step: S1 (published agrees
    /// with the commits), W2 (acknowledgements never go back), L1 (durable
    /// FSN monotonic, never above published), S6 (footprint within the cap
    /// plus one segment of slack).
    pub fn after_step(&mut self, now: Instant, engine: &Engine) {
        if engine.is_released() {
            return;
        }
        let published = engine.published_fsn();
        if published != self.published {
            self.violate(
                now,
                "S1",
                format!(
                    "engine says published {published:?}, commits say {:?}",
                    self.published
                ),
            );
            self.published = published;
        }
        let acked = engine.acked_fsn();
        if acked < self.acked {
            self.violate(
                now,
                "W2",
                format!(
                    "acknowledged FSN went back from {:?} to {acked:?}",
                    self.acked
                ),
            );
        }
        if acked > published {
            self.violate(
                now,
                "W2",
                format!("acknowledged {acked:?} above published {published:?}"),
            );
        }
        let durable = engine.durable_fsn();
        if durable < self.durable {
            self.violate(
                now,
                "L1",
                format!(
                    "durable FSN went back from {:?} to {durable:?}",
                    self.durable
                ),
            );
        }
        if durable > published {
            self.violate(
                now,
                "L1",
                format!("durable FSN {durable:?} above published {published:?}"),
            );
        }
        self.durable = durable.max(self.durable);
        let storage = engine.storage();
        let footprint = storage.resident_bytes() + storage.slack_bytes();
        let bound = *self
            .opened_footprint
            .get_or_insert(footprint.max(self.footprint_bound));
        if footprint > bound {
            self.violate(
                now,
                "S6",
                format!(
                    "footprint {footprint} bytes (resident {} + slack {}) exceeds cap + one segment = {bound}",
                    storage.resident_bytes(),
                    storage.slack_bytes()
                ),
            );
        }
        if engine.connection_state() == ConnectionState::Halted {
            self.halted = true;
        }
    }

    // ----- crashes ---------------------------------------------------------------

    /// The process (or host) died; `loss` says what it may lose. Judged at
    /// the next [`Checker::on_restart`].
    pub fn on_crash(&mut self, _now: Instant, loss: CrashLoss) {
        self.crash = Some(CrashSnapshot {
            loss,
            acked: self.acked,
            published: self.published,
            durable: self.durable,
            watermark: self.watermark,
            clean_acked: None,
        });
        self.session = None;
    }

    /// A clean restart after `close()` released the slot: as a crash that
    /// loses nothing over files, everything unacknowledged in memory.
    ///
    /// A close that returned `Ok` over files, with no failed watermark write
    /// in its life, promises more (S8 at clean close): the engine's close
    /// settled the `.ack-watermark` for everything acknowledged, so the
    /// next open recovers at least the acknowledged FSN of that close.
    pub fn on_clean_shutdown(&mut self, now: Instant) {
        let loss = match self.backing {
            Backing::Files => CrashLoss::Nothing,
            Backing::Memory => CrashLoss::Unacked,
        };
        let promised = self.backing == Backing::Files
            && self.close_ok == Some(true)
            && !self.watermark_write_failed;
        self.on_crash(now, loss);
        if promised {
            let acked = self.acked;
            if let Some(snap) = self.crash.as_mut() {
                snap.clean_acked = Some(acked);
            }
        }
    }

    /// The engine was rebuilt over `slot` (recovered from disk, or empty for
    /// memory backing). Checks S1 and S8 against the crash snapshot, retires
    /// the frames that did not survive, and starts a new life.
    pub fn on_restart(&mut self, now: Instant, slot: &RecoveredSlot) {
        let snap = self.crash.take().unwrap_or(CrashSnapshot {
            loss: CrashLoss::Nothing,
            acked: self.acked,
            published: self.published,
            durable: self.durable,
            watermark: self.watermark,
            clean_acked: None,
        });
        let recovered_published = slot.next_fsn.prev();
        if self.backing == Backing::Memory || snap.loss == CrashLoss::Corrupted {
            // Memory: nothing survives, the slot starts over at FSN 0.
            // Corrupted: what survives cannot be matched to the ledger.
            self.new_epoch(now, snap.loss == CrashLoss::Corrupted);
            self.acked = slot.acked;
            self.published = recovered_published;
        } else {
            // S8: the recovered acknowledgement may pass the true one only
            // over frames the crash was allowed to lose (they are gone and
            // will never be sent); skipping a frame that had to survive is
            // data loss.
            if slot.acked > snap.acked {
                let from = snap.acked.map_or(Fsn::ZERO, Fsn::next);
                let must_survive = |fsn: Fsn| match snap.loss {
                    CrashLoss::Nothing => true,
                    CrashLoss::AboveDurable => snap.durable.is_some_and(|d| fsn <= d),
                    CrashLoss::Unacked | CrashLoss::Corrupted => false,
                };
                let upto = slot.acked.unwrap_or(Fsn::ZERO);
                if must_survive(from) {
                    self.violate(
                        now,
                        "S8",
                        format!(
                            "recovered acked {:?} above the acknowledged FSN {:?} before a {:?} crash: frames that had to survive would never be sent",
                            slot.acked, snap.acked, snap.loss
                        ),
                    );
                } else {
                    self.stats.ack_jumps += 1;
                }
                for (_, rec) in self.ledger.range_mut(from..=upto) {
                    if !rec.excused {
                        rec.excused = true;
                        self.stats.excused_lost += 1;
                    }
                }
            }
            match snap.loss {
                CrashLoss::Nothing => {
                    if recovered_published != snap.published {
                        self.violate(
                            now,
                            "S1",
                            format!(
                                "process crash: recovered published {recovered_published:?}, was {:?}",
                                snap.published
                            ),
                        );
                    }
                    if slot.acked < snap.watermark && !self.watermark_unreliable {
                        self.violate(
                            now,
                            "S8",
                            format!(
                                "process crash: recovered acked {:?} below the persisted watermark {:?} (acknowledged frames would be replayed)",
                                slot.acked, snap.watermark
                            ),
                        );
                    } else if let Some(at_close) = snap.clean_acked {
                        if slot.acked < at_close && !self.watermark_unreliable {
                            self.violate(
                                now,
                                "S8",
                                format!(
                                    "clean close: recovered acked {:?} below the acknowledged FSN {at_close:?} at a close that returned Ok with no failed watermark write (acknowledged frames would be replayed)",
                                    slot.acked
                                ),
                            );
                        }
                    }
                }
                CrashLoss::AboveDurable => {
                    // Durable frames that were acknowledged may go: the
                    // server has them (the durable FSN counts them).
                    if recovered_published.max(snap.acked) < snap.durable {
                        self.violate(
                            now,
                            "L1",
                            format!(
                                "host crash: recovered published {recovered_published:?} below the durable FSN {:?}",
                                snap.durable
                            ),
                        );
                    }
                }
                CrashLoss::Unacked | CrashLoss::Corrupted => {}
            }
            // Frames above what survived are gone.
            let lost: Vec<Fsn> = self
                .ledger
                .range(slot.next_fsn..)
                .map(|(f, _)| *f)
                .collect();
            for fsn in lost {
                if let Some(mut rec) = self.ledger.remove(&fsn) {
                    let allowed = match snap.loss {
                        CrashLoss::Nothing => false,
                        CrashLoss::AboveDurable => snap.durable.is_none_or(|d| fsn > d),
                        CrashLoss::Unacked | CrashLoss::Corrupted => true,
                    } || snap.acked.is_some_and(|a| fsn <= a);
                    if rec.flushed && !rec.dropped && !allowed {
                        self.violate(
                            now,
                            "C1",
                            format!(
                                "frame {fsn} (rows {}..{}) was flushed and lost in a {:?} crash",
                                rec.first_row,
                                rec.first_row + i64::from(rec.rows),
                                snap.loss
                            ),
                        );
                    }
                    if snap.acked.is_none_or(|a| fsn > a) {
                        rec.excused = true;
                        self.stats.excused_lost += 1;
                    }
                    self.retired.push(rec);
                }
            }
            self.acked = slot.acked;
            self.published = recovered_published;
        }
        self.watermark = None;
        self.watermark_unreliable = false;
        self.close_ok = None;
        self.watermark_write_failed = false;
        self.pending_watermark_removals.clear();
        self.pending_watermarks.clear();
        self.durable = None;
        self.session = None;
        self.halted = false;
        self.opened_footprint = None;
        self.life += 1;
    }

    /// The next restart may not find the last persisted `.ack-watermark`
    /// (a write or a read of it failed): falling back to
    /// `lowestBase − 1` and replaying acknowledged frames is allowed then.
    pub fn distrust_watermark(&mut self) {
        self.watermark_unreliable = true;
    }

    /// Recovery refused the slot and it was wiped (or memory backing
    /// restarted): every unacknowledged frame is lost with a reported
    /// error, and FSNs start over at 0.
    pub fn on_slot_wiped(&mut self, now: Instant) {
        self.new_epoch(now, false);
        self.crash = None;
        self.close_ok = None;
        self.watermark_write_failed = false;
        self.pending_watermark_removals.clear();
        self.watermark = None;
        self.pending_watermarks.clear();
        self.durable = None;
        self.session = None;
        self.halted = false;
        self.opened_footprint = None;
        self.life += 1;
    }

    /// Retires the whole ledger: unacknowledged frames are excused, and
    /// with `uncounted` their later replays (from a corrupted slot) are not
    /// held against the duplicate rule.
    fn new_epoch(&mut self, _now: Instant, uncounted: bool) {
        let acked = self.acked;
        for (fsn, mut rec) in std::mem::take(&mut self.ledger) {
            if acked.is_none_or(|a| fsn > a) {
                rec.excused = true;
                self.stats.excused_lost += 1;
            }
            if uncounted {
                rec.sends = u32::MAX;
            }
            self.retired.push(rec);
        }
        self.acked = None;
        self.published = None;
    }

    // ----- the end ---------------------------------------------------------------

    /// Whether every frame of the current epoch that must still be
    /// delivered is acknowledged (the liveness phase's goal).
    pub fn all_acked(&self) -> bool {
        self.published.is_none() || self.acked >= self.published
    }

    /// The duplicate rule alone (for a slot whose data is not all
    /// acknowledged, where the delivery half cannot be asked): no row
    /// reached the server more often than its frame was sent.
    pub fn check_duplicates(&mut self, now: Instant, log: &DeliveryLog) {
        let mut found = Vec::new();
        for rec in self.ledger.values().chain(self.retired.iter()) {
            let over = (0..rec.rows)
                .map(|i| rec.first_row + i64::from(i))
                .map(|row| (row, log.counts.get(&row).copied().unwrap_or(0)))
                .find(|(_, count)| *count > rec.sends);
            if let Some((row, count)) = over {
                found.push(Violation {
                    invariant: "W1",
                    detail: format!(
                        "row {row} of frame {} reached the server {count} times but the frame was sent {} times",
                        rec.fsn, rec.sends
                    ),
                    at: now,
                });
            }
        }
        self.violations.extend(found);
    }

    /// The delivery proof (C1) and the duplicate rule: every row of every
    /// promised frame reached the server at least once, and no row reached
    /// it more often than its frame was sent.
    pub fn check_delivery(&mut self, now: Instant, log: &DeliveryLog) {
        let mut found = Vec::new();
        for rec in self.ledger.values().chain(self.retired.iter()) {
            let promised = rec.flushed && !rec.dropped && !rec.excused;
            let mut missing = 0u32;
            let mut first_missing = None;
            for i in 0..rec.rows {
                let row = rec.first_row + i64::from(i);
                let count = log.counts.get(&row).copied().unwrap_or(0);
                if count == 0 && promised && !log.forgotten.contains(&row) {
                    missing += 1;
                    first_missing.get_or_insert(row);
                }
                if count > rec.sends {
                    found.push(Violation {
                        invariant: "W1",
                        detail: format!(
                            "row {row} of frame {} reached the server {count} times but the frame was sent {} times",
                            rec.fsn, rec.sends
                        ),
                        at: now,
                    });
                    break;
                }
            }
            if let Some(row) = first_missing {
                found.push(Violation {
                    invariant: "C1",
                    detail: format!(
                        "frame {} was flushed but {missing} of its {} rows never reached the server (first missing row id {row}; sent {} times)",
                        rec.fsn, rec.rows, rec.sends
                    ),
                    at: now,
                });
            }
        }
        self.violations.extend(found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_core::ring::{FrameLocation, SegmentName};
    use sf_core::storage::StorageConfig;
    use sf_core::SegmentGen;
    use std::num::NonZeroUsize;

    fn files_config(durability: DurabilityMode) -> EngineConfig {
        let mut c = EngineConfig::new(StorageConfig::files(), NonZeroUsize::MIN);
        c.storage.durability = durability;
        c
    }

    fn send(fsn: u64) -> Output {
        Output::Send {
            fsn: Fsn(fsn),
            location: FrameLocation {
                name: SegmentName::Gen(SegmentGen(0)),
                offset: 24,
                len: 8,
            },
        }
    }

    fn names(c: &Checker) -> Vec<&'static str> {
        c.violations().iter().map(|v| v.invariant).collect()
    }

    /// Three frames sent and acknowledged up to `acked`, then a clean
    /// close with `result`; the next open recovers `recovered`.
    fn clean_close_then_reopen(
        acked: u64,
        result: Result<(), sf_core::errors::SenderError>,
        watermark_write_failed: bool,
        recovered: Option<Fsn>,
    ) -> Checker {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        for i in 0..3 {
            c.on_commit(Instant::ZERO, Fsn(i), i as i64, 1);
            c.on_output(Instant::ZERO, &send(i));
        }
        c.on_output(Instant::ZERO, &Output::Progress { acked: Fsn(acked) });
        c.watermark_write_failed = watermark_write_failed;
        c.on_output(
            Instant::ZERO,
            &Output::Closed {
                result,
                drained: true,
            },
        );
        c.on_clean_shutdown(Instant::ZERO);
        let slot = RecoveredSlot {
            next_fsn: Fsn(3),
            acked: recovered,
            ..RecoveredSlot::empty()
        };
        c.on_restart(Instant::ZERO, &slot);
        c
    }

    #[test]
    fn s8_clean_close_ok_must_reopen_at_its_acked_fsn() {
        let c = clean_close_then_reopen(2, Ok(()), false, Some(Fsn(0)));
        assert_eq!(names(&c), vec!["S8"]);
        assert!(c.violations()[0].detail.contains("clean close"));
        let c = clean_close_then_reopen(2, Ok(()), false, Some(Fsn(2)));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }

    #[test]
    fn s8_clean_close_rule_spares_a_failed_close_or_watermark_write() {
        let halted = sf_core::errors::SenderError::synthesized(
            qwp_proto::status::ErrorCategory::SecurityError,
            "test",
            None,
        );
        let c = clean_close_then_reopen(2, Err(halted), false, Some(Fsn(0)));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        let c = clean_close_then_reopen(2, Ok(()), true, Some(Fsn(0)));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }

    #[test]
    fn s8_clean_close_rule_counts_a_failed_watermark_removal_as_a_failed_write() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        let remove = StorageOutput::RemoveAckWatermark {
            id: IoId(7),
            durable: true,
        };
        c.on_output(Instant::ZERO, &Output::Storage(remove));
        c.on_input(
            Instant::ZERO,
            &Input::Io {
                id: IoId(7),
                outcome: IoOutcome::Failed(sf_core::storage::IoFailure::Io { os_code: Some(5) }),
            },
        );
        assert!(c.watermark_write_failed);
    }

    #[test]
    fn w1_duplicate_rule_alone_fires_without_the_delivery_half() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        c.on_commit(Instant::ZERO, Fsn(0), 0, 2);
        c.on_commit(Instant::ZERO, Fsn(1), 2, 2);
        c.on_flush_returned(Instant::ZERO, Some(Fsn(1)), None);
        c.on_output(Instant::ZERO, &send(0));
        let mut log = DeliveryLog::default();
        log.counts.insert(0, 1);
        log.counts.insert(1, 1);
        c.check_duplicates(Instant::ZERO, &log);
        assert!(c.violations().is_empty(), "frame 1 missing is not judged");
        log.counts.insert(1, 2);
        c.check_duplicates(Instant::ZERO, &log);
        assert_eq!(names(&c), vec!["W1"]);
    }

    #[test]
    fn s1_a_skipped_fsn_is_reported() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        c.on_commit(Instant::ZERO, Fsn(0), 0, 1);
        c.on_commit(Instant::ZERO, Fsn(2), 1, 1);
        assert_eq!(names(&c), vec!["S1"]);
    }

    #[test]
    fn w1_out_of_order_and_acknowledged_resends_are_reported() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        for i in 0..3 {
            c.on_commit(Instant::ZERO, Fsn(i), i as i64, 1);
        }
        c.on_output(Instant::ZERO, &send(0));
        c.on_output(Instant::ZERO, &send(1));
        c.on_output(Instant::ZERO, &Output::Progress { acked: Fsn(1) });
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        c.on_output(Instant::ZERO, &send(1));
        assert_eq!(names(&c), vec!["W1", "W1"]);
    }

    #[test]
    fn w1_replay_on_a_new_connection_starts_at_acked_plus_one() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        for i in 0..3 {
            c.on_commit(Instant::ZERO, Fsn(i), i as i64, 1);
        }
        c.on_output(Instant::ZERO, &send(0));
        c.on_output(Instant::ZERO, &Output::Progress { acked: Fsn(0) });
        c.on_output(Instant::ZERO, &Output::Connect { host: 0 });
        c.on_output(Instant::ZERO, &send(1));
        c.on_output(Instant::ZERO, &send(2));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        c.on_output(Instant::ZERO, &Output::CloseConnection { code: 1000 });
        c.on_output(Instant::ZERO, &send(2));
        assert_eq!(names(&c), vec!["W1"]);
    }

    #[test]
    fn w2_progress_beyond_what_was_sent_is_reported() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        for i in 0..3 {
            c.on_commit(Instant::ZERO, Fsn(i), i as i64, 1);
        }
        c.on_output(Instant::ZERO, &send(0));
        c.on_output(Instant::ZERO, &Output::Progress { acked: Fsn(2) });
        assert_eq!(names(&c), vec!["W2"]);
    }

    #[test]
    fn c1_flushed_frame_lost_by_a_process_crash_is_reported() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        c.on_commit(Instant::ZERO, Fsn(0), 0, 2);
        c.on_commit(Instant::ZERO, Fsn(1), 2, 2);
        c.on_flush_returned(Instant::ZERO, Some(Fsn(1)), None);
        c.on_crash(Instant::ZERO, CrashLoss::Nothing);
        let slot = RecoveredSlot {
            next_fsn: Fsn(1),
            ..RecoveredSlot::empty()
        };
        c.on_restart(Instant::ZERO, &slot);
        assert_eq!(names(&c), vec!["S1", "C1"]);
    }

    #[test]
    fn c1_host_crash_in_memory_durability_may_lose_unacked_frames() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        c.on_commit(Instant::ZERO, Fsn(0), 0, 2);
        c.on_flush_returned(Instant::ZERO, Some(Fsn(0)), None);
        c.on_crash(Instant::ZERO, CrashLoss::Unacked);
        c.on_restart(Instant::ZERO, &RecoveredSlot::empty());
        c.check_delivery(Instant::ZERO, &DeliveryLog::default());
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        assert_eq!(c.stats().excused_lost, 1);
    }

    #[test]
    fn l1_host_crash_may_not_lose_durable_frames() {
        let mut c = Checker::new(&files_config(DurabilityMode::Flush));
        c.on_commit(Instant::ZERO, Fsn(0), 0, 1);
        c.on_commit(Instant::ZERO, Fsn(1), 1, 1);
        c.on_flush_returned(Instant::ZERO, Some(Fsn(1)), Some(Fsn(1)));
        c.durable = Some(Fsn(1));
        c.on_crash(Instant::ZERO, CrashLoss::AboveDurable);
        let slot = RecoveredSlot {
            next_fsn: Fsn(1),
            ..RecoveredSlot::empty()
        };
        c.on_restart(Instant::ZERO, &slot);
        assert_eq!(names(&c), vec!["L1", "C1"]);
    }

    #[test]
    fn s8_an_ack_jump_over_frames_the_crash_could_lose_is_counted_not_violated() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        for i in 0..4 {
            c.on_commit(Instant::ZERO, Fsn(i), i as i64, 1);
        }
        c.on_flush_returned(Instant::ZERO, Some(Fsn(3)), None);
        c.on_crash(Instant::ZERO, CrashLoss::Unacked);
        let slot = RecoveredSlot {
            next_fsn: Fsn(4),
            acked: Some(Fsn(3)),
            ..RecoveredSlot::empty()
        };
        c.on_restart(Instant::ZERO, &slot);
        c.check_delivery(Instant::ZERO, &DeliveryLog::default());
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        assert_eq!(c.stats().ack_jumps, 1);
        assert_eq!(c.stats().excused_lost, 4);
    }

    #[test]
    fn s8_an_ack_jump_over_durable_frames_is_a_violation() {
        let mut c = Checker::new(&files_config(DurabilityMode::Flush));
        for i in 0..4 {
            c.on_commit(Instant::ZERO, Fsn(i), i as i64, 1);
        }
        c.durable = Some(Fsn(3));
        c.on_crash(Instant::ZERO, CrashLoss::AboveDurable);
        let slot = RecoveredSlot {
            next_fsn: Fsn(4),
            acked: Some(Fsn(3)),
            ..RecoveredSlot::empty()
        };
        c.on_restart(Instant::ZERO, &slot);
        assert_eq!(names(&c), vec!["S8"]);
    }

    #[test]
    fn c1_flush_in_flush_durability_needs_a_durable_batch() {
        let mut c = Checker::new(&files_config(DurabilityMode::Flush));
        c.on_commit(Instant::ZERO, Fsn(0), 0, 1);
        c.on_flush_returned(Instant::ZERO, Some(Fsn(0)), None);
        assert_eq!(names(&c), vec!["C1"]);
    }

    #[test]
    fn s8_process_crash_may_not_forget_a_persisted_watermark() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        for i in 0..3 {
            c.on_commit(Instant::ZERO, Fsn(i), i as i64, 1);
        }
        c.on_output(Instant::ZERO, &send(0));
        c.on_output(Instant::ZERO, &send(1));
        c.on_output(Instant::ZERO, &Output::Progress { acked: Fsn(1) });
        c.on_output(
            Instant::ZERO,
            &Output::Storage(StorageOutput::PersistAckWatermark {
                id: IoId(9),
                fsn: Fsn(1),
                durable: false,
            }),
        );
        c.on_input(
            Instant::ZERO,
            &Input::Io {
                id: IoId(9),
                outcome: IoOutcome::Done,
            },
        );
        c.on_crash(Instant::ZERO, CrashLoss::Nothing);
        let slot = RecoveredSlot {
            next_fsn: Fsn(3),
            acked: Some(Fsn(0)),
            ..RecoveredSlot::empty()
        };
        c.on_restart(Instant::ZERO, &slot);
        assert_eq!(names(&c), vec!["S8"]);
    }

    #[test]
    fn delivery_missing_rows_and_unexplained_duplicates_are_reported() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        c.on_commit(Instant::ZERO, Fsn(0), 0, 2);
        c.on_commit(Instant::ZERO, Fsn(1), 2, 2);
        c.on_flush_returned(Instant::ZERO, Some(Fsn(1)), None);
        c.on_output(Instant::ZERO, &send(0));
        c.on_output(Instant::ZERO, &send(1));
        let mut log = DeliveryLog::default();
        log.counts.insert(0, 2);
        log.counts.insert(1, 1);
        log.counts.insert(2, 1);
        c.check_delivery(Instant::ZERO, &log);
        assert_eq!(names(&c), vec!["W1", "C1"]);
    }

    #[test]
    fn dropped_frames_are_not_required() {
        let mut c = Checker::new(&files_config(DurabilityMode::Memory));
        c.on_commit(Instant::ZERO, Fsn(0), 0, 1);
        c.on_flush_returned(Instant::ZERO, Some(Fsn(0)), None);
        let e = sf_core::errors::SenderError::server(
            0x05,
            ErrorPolicy::DropAndContinue,
            None,
            Some(sf_core::errors::FsnSpan::single(Fsn(0))),
            "bad",
        );
        c.on_output(Instant::ZERO, &Output::Notify(e));
        c.check_delivery(Instant::ZERO, &DeliveryLog::default());
        assert!(c.violations().is_empty(), "{:?}", c.violations());
    }
}
