//! The orphan drain policy of one scan (sf-client §18.2, §5.2, §20): which
//! sibling slots get a drainer, in which order, how many at once, and which
//! ending gives the slot up with `.failed`.
//!
//! The adapter (tokio threads, or the simulator's fleet) does the I/O:
//! it lists the siblings and hands each one to
//! [`DrainScheduler::handle_sibling`], starts a drainer for every slot
//! [`DrainScheduler::poll_start`] returns, reports how it ended through
//! [`DrainScheduler::handle_end`] and carries out the [`DrainAction`]
//! (after a [`DrainAction::MarkFailed`] it reports the write through
//! [`DrainScheduler::mark_failed_done`]). It decides nothing itself, so
//! every adapter runs the same policy.
//!
//! Rules kept here:
//!
//! * only slots [`judge`] adopts are queued, each at most once per scan;
//! * never more than `max_drainers` active at once;
//! * fresh candidates start in sorted name order; a slot re-queued after a
//!   transient refusal waits behind them (the refusal gets time to clear)
//!   and is re-queued at most [`RETRIES_PER_SCAN`] times;
//! * `.failed` is written only when the drainer gave up for good: a
//!   permanent recovery refusal or a terminal engine error. A held lock,
//!   a transient refusal and an owner's stop never write it: `.failed`
//!   excludes the slot from every later scan until an operator removes it;
//! * a slot found marked `.failed` once its lock is taken (another process
//!   gave it up after the scan) is skipped, never drained or re-marked;
//! * the counters only go up: a give-up is counted `failed` (or `stopped`
//!   when the write did not happen) once the adapter reports the write,
//!   and the drainer stays `active` until then;
//! * after [`DrainScheduler::stop`] nothing more starts or is re-queued.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::{judge, OwnSlots, Verdict};
use crate::errors::SenderError;
use crate::recovery::RecoveryError;

/// How many times one scan re-queues a slot whose recovery was refused for
/// a transient reason, before it leaves the slot to the next scan. Small:
/// the adapter retries at once, and a condition that outlives a few
/// attempts (a permission problem, a full file table) is for the next scan.
pub const RETRIES_PER_SCAN: u32 = 2;

/// Why a drainer ended, as the adapter (or simulator) observed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainEnd {
    /// The slot lock was held by someone else: skipped, no `.failed`.
    LockHeld,
    /// The drainer took the lock and found `.failed` (written by another
    /// process after the scan): skipped, neither drained nor re-marked.
    AlreadyFailed,
    /// Everything published was acknowledged and the slot released.
    Drained,
    /// Recovery refused to open the slot.
    RecoveryRefused(RecoveryError),
    /// The drainer's engine latched a terminal error (budget exhausted,
    /// auth refused, HALT, ...).
    Terminal(SenderError),
    /// Stopped for another reason (owner closed, an I/O error); the data
    /// stays, no `.failed`.
    Stopped,
}

/// What the adapter must do after a drainer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainAction {
    /// Nothing more.
    Done,
    /// Write `.failed` with this reason while still holding the slot lock
    /// the drainer took (never a lock taken again: the slot may have
    /// changed hands meanwhile), report the outcome through
    /// [`DrainScheduler::mark_failed_done`], then release the lock. The
    /// reason is one readable line without a line end; the adapter may
    /// prefix it (e.g. with its PID) and end it with a newline.
    MarkFailed {
        /// What gave up and why.
        reason: String,
    },
    /// A transient refusal (e.g. a listing or read error): release; the
    /// slot stays adoptable (no `.failed`). The scheduler has re-queued it:
    /// a later [`DrainScheduler::poll_start`] returns it again.
    Retry,
}

/// The drainer counters of sf-client §20, plus the endings that are neither
/// a success nor a give-up.
///
/// Every started drainer is counted exactly once: while it runs (or waits
/// for its `.failed` write to be reported) in `active`, then in exactly one
/// of `succeeded`, `failed`, `skipped`, `stopped` (a transient refusal,
/// re-queued or not, counts as `stopped`). Apart from `active`, the
/// counters never go down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainCounters {
    /// Drainers running now (`getActiveBackgroundDrainers`).
    pub active: u64,
    /// Drainers that ended after fully draining their slot
    /// (`getTotalBackgroundDrainersSucceeded`).
    pub succeeded: u64,
    /// Drainers that ended by writing `.failed`
    /// (`getTotalBackgroundDrainersFailed`).
    pub failed: u64,
    /// Drainers that found the slot lock held, or the slot marked
    /// `.failed` once they held it.
    pub skipped: u64,
    /// Drainers that stopped without finishing and without `.failed`.
    pub stopped: u64,
}

/// How far one adopted slot got in this scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Waiting for a drainer (fresh or re-queued).
    Queued,
    /// A drainer runs on it.
    Active,
    /// Its drainer ended; nothing more happens to it in this scan.
    Ended,
    /// Its drainer was told to write `.failed` and has not reported the
    /// write yet; still active.
    AwaitingMark,
}

/// One adopted slot's bookkeeping.
#[derive(Debug, Clone, Copy)]
struct SlotEntry {
    state: SlotState,
    /// Re-queues after transient refusals so far.
    retries: u32,
}

/// The orphan drain policy of one scanner (a foreground sender or a pool):
/// pure, one per scan.
#[derive(Debug, Clone)]
pub struct DrainScheduler {
    own: OwnSlots,
    max_drainers: usize,
    /// Every slot adopted in this scan, and how far it got.
    slots: BTreeMap<String, SlotEntry>,
    /// Fresh candidates not started yet, sorted by name.
    fresh: BTreeSet<String>,
    /// Slots re-queued after a transient refusal, in re-queue order.
    retry: VecDeque<String>,
    active: BTreeSet<String>,
    counters: DrainCounters,
    stopped: bool,
}

impl DrainScheduler {
    /// A scheduler for the scanner owning `own`, running at most
    /// `max_drainers` drainers at once (0 is treated as 1: a scan that
    /// adopts a slot must be able to drain it).
    pub fn new(own: OwnSlots, max_drainers: usize) -> DrainScheduler {
        DrainScheduler {
            own,
            max_drainers: max_drainers.max(1),
            slots: BTreeMap::new(),
            fresh: BTreeSet::new(),
            retry: VecDeque::new(),
            active: BTreeSet::new(),
            counters: DrainCounters::default(),
            stopped: false,
        }
    }

    /// The cap on concurrent drainers (at least 1).
    pub fn max_drainers(&self) -> usize {
        self.max_drainers
    }

    /// One sibling directory from the scan (its name and the names it
    /// holds); queues it when [`judge`] says [`Verdict::Adopt`]. Returns the
    /// verdict. A name handed in twice is queued once; after
    /// [`DrainScheduler::stop`] nothing is queued.
    pub fn handle_sibling<'a>(
        &mut self,
        name: &str,
        entries: impl IntoIterator<Item = &'a str>,
    ) -> Verdict {
        let verdict = judge(&self.own, name, entries);
        if verdict == Verdict::Adopt && !self.stopped && !self.slots.contains_key(name) {
            self.slots.insert(
                name.to_owned(),
                SlotEntry {
                    state: SlotState::Queued,
                    retries: 0,
                },
            );
            self.fresh.insert(name.to_owned());
        }
        verdict
    }

    /// The next slot to start a drainer on, if fewer than `max_drainers`
    /// are active and one is queued (it becomes active). Fresh candidates
    /// come in sorted name order, then re-queued ones in re-queue order.
    pub fn poll_start(&mut self) -> Option<String> {
        if self.stopped || self.active.len() >= self.max_drainers {
            return None;
        }
        let name = match self.fresh.pop_first() {
            Some(n) => n,
            None => self.retry.pop_front()?,
        };
        if let Some(entry) = self.slots.get_mut(&name) {
            entry.state = SlotState::Active;
        }
        self.active.insert(name.clone());
        self.counters.active += 1;
        Some(name)
    }

    /// A drainer on `slot` ended. A slot with no active drainer (never
    /// started, already ended, or awaiting its `.failed` report) changes
    /// nothing and gets [`DrainAction::Done`].
    pub fn handle_end(&mut self, slot: &str, end: DrainEnd) -> DrainAction {
        let awaiting = self
            .slots
            .get(slot)
            .is_some_and(|e| e.state == SlotState::AwaitingMark);
        if awaiting || !self.active.contains(slot) {
            return DrainAction::Done;
        }
        let Some(entry) = self.slots.get_mut(slot) else {
            // Unreachable by construction (every active slot was adopted);
            // counted as stopped so the totals stay consistent.
            self.active.remove(slot);
            self.counters.active = self.counters.active.saturating_sub(1);
            self.counters.stopped += 1;
            return DrainAction::Done;
        };
        if matches!(end, DrainEnd::Terminal(_))
            || matches!(&end, DrainEnd::RecoveryRefused(e) if !e.is_transient())
        {
            // Still active until the adapter reports the write: counting
            // it `failed` now would have to be taken back if the write
            // fails, and §20's totals must never go down.
            entry.state = SlotState::AwaitingMark;
        } else {
            entry.state = SlotState::Ended;
            self.active.remove(slot);
            self.counters.active = self.counters.active.saturating_sub(1);
        }
        match end {
            DrainEnd::LockHeld | DrainEnd::AlreadyFailed => {
                self.counters.skipped += 1;
                DrainAction::Done
            }
            DrainEnd::Drained => {
                self.counters.succeeded += 1;
                DrainAction::Done
            }
            DrainEnd::Stopped => {
                self.counters.stopped += 1;
                DrainAction::Done
            }
            DrainEnd::RecoveryRefused(e) if e.is_transient() => {
                self.counters.stopped += 1;
                if self.stopped || entry.retries >= RETRIES_PER_SCAN {
                    return DrainAction::Done;
                }
                entry.retries += 1;
                entry.state = SlotState::Queued;
                self.retry.push_back(slot.to_owned());
                DrainAction::Retry
            }
            DrainEnd::RecoveryRefused(e) => DrainAction::MarkFailed {
                reason: failed_reason(slot, "recovery refused the slot", &e.to_string()),
            },
            DrainEnd::Terminal(e) => DrainAction::MarkFailed {
                reason: failed_reason(
                    slot,
                    "its engine stopped on a terminal error",
                    &e.to_string(),
                ),
            },
        }
    }

    /// The adapter carried out [`DrainAction::MarkFailed`] for `slot`:
    /// `written` says whether `.failed` now exists (written while the lock
    /// was held). The drainer ends: counted `failed` when written (§20
    /// counts drainers that wrote `.failed`), `stopped` otherwise (the
    /// lock was gone, or the write failed; the slot stays adoptable).
    /// Call it before releasing the lock, so that a reader of the counters
    /// never sees the slot free and not yet counted. Returns whether
    /// `slot` was awaiting its mark; otherwise nothing changes.
    pub fn mark_failed_done(&mut self, slot: &str, written: bool) -> bool {
        match self.slots.get_mut(slot) {
            Some(entry) if entry.state == SlotState::AwaitingMark => {
                entry.state = SlotState::Ended;
                self.active.remove(slot);
                self.counters.active = self.counters.active.saturating_sub(1);
                if written {
                    self.counters.failed += 1;
                } else {
                    self.counters.stopped += 1;
                }
                true
            }
            _ => false,
        }
    }

    /// The owner closes: nothing more starts, the queue is dropped. Active
    /// drainers still report their end through
    /// [`DrainScheduler::handle_end`] (and their `.failed` write through
    /// [`DrainScheduler::mark_failed_done`]).
    pub fn stop(&mut self) {
        self.stopped = true;
        for name in std::mem::take(&mut self.fresh)
            .into_iter()
            .chain(std::mem::take(&mut self.retry))
        {
            if let Some(entry) = self.slots.get_mut(&name) {
                entry.state = SlotState::Ended;
            }
        }
    }

    /// Whether [`DrainScheduler::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// The counters now.
    pub fn counters(&self) -> DrainCounters {
        self.counters
    }

    /// Nothing queued and nothing active (a drainer awaiting its `.failed`
    /// report is active).
    pub fn is_idle(&self) -> bool {
        self.queued() == 0 && self.active.is_empty()
    }

    /// How many slots wait for a drainer.
    pub fn queued(&self) -> usize {
        self.fresh.len() + self.retry.len()
    }

    /// The slots a drainer runs on now (including those awaiting their
    /// `.failed` report), in name order.
    pub fn active(&self) -> impl Iterator<Item = &str> {
        self.active.iter().map(String::as_str)
    }
}

/// The `.failed` text: one line naming the slot, what gave up and why.
/// Control characters in `detail` (adapter and server text) are escaped so
/// the file stays one line.
fn failed_reason(slot: &str, what: &str, detail: &str) -> String {
    let mut out = format!("orphan drainer gave up on slot {slot}: {what}: ");
    for c in detail.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use qwp_proto::status::ErrorCategory;

    const SEG: &str = "sf-0000000000000001.sfa";

    fn me() -> OwnSlots {
        OwnSlots::Single("me".into())
    }

    fn transient() -> RecoveryError {
        RecoveryError::Listing {
            reason: "Too many open files (os error 24)".into(),
        }
    }

    fn permanent() -> RecoveryError {
        RecoveryError::GenerationExhausted
    }

    fn terminal() -> SenderError {
        SenderError::synthesized(
            ErrorCategory::ProtocolViolation,
            "reconnect budget exhausted\nafter 3 attempts",
            None,
        )
    }

    fn with(names: &[&str], cap: usize) -> DrainScheduler {
        let mut s = DrainScheduler::new(me(), cap);
        for n in names {
            assert_eq!(s.handle_sibling(n, [SEG]), Verdict::Adopt);
        }
        s
    }

    #[test]
    fn s18_2_only_adopted_siblings_are_queued_in_name_order() {
        let mut s = DrainScheduler::new(me(), 8);
        assert_eq!(s.handle_sibling("c", [SEG]), Verdict::Adopt);
        assert_eq!(s.handle_sibling("me", [SEG]), Verdict::Own);
        assert_eq!(s.handle_sibling("f", [SEG, ".failed"]), Verdict::Failed);
        assert_eq!(s.handle_sibling("e", [".lock"]), Verdict::NoSegments);
        assert_eq!(s.handle_sibling("a..b", [SEG]), Verdict::InvalidName);
        assert_eq!(s.handle_sibling("a", [SEG]), Verdict::Adopt);
        assert_eq!(s.handle_sibling("b", ["sf-initial.sfa"]), Verdict::Adopt);
        assert_eq!(s.queued(), 3);
        let started: Vec<_> = std::iter::from_fn(|| s.poll_start()).collect();
        assert_eq!(started, ["a", "b", "c"]);
        assert_eq!(s.active().collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn s18_2_a_sibling_listed_twice_is_queued_once() {
        let mut s = with(&["a"], 4);
        assert_eq!(s.handle_sibling("a", [SEG]), Verdict::Adopt);
        assert_eq!(s.poll_start().as_deref(), Some("a"));
        assert_eq!(s.handle_sibling("a", [SEG]), Verdict::Adopt);
        assert_eq!(s.handle_end("a", DrainEnd::Drained), DrainAction::Done);
        assert_eq!(s.handle_sibling("a", [SEG]), Verdict::Adopt);
        assert_eq!(s.poll_start(), None, "one drainer per slot and scan");
        assert!(s.is_idle());
    }

    #[test]
    fn s18_2_never_more_than_the_cap_active() {
        let mut s = with(&["a", "b", "c"], 2);
        assert_eq!(s.poll_start().as_deref(), Some("a"));
        assert_eq!(s.poll_start().as_deref(), Some("b"));
        assert_eq!(s.poll_start(), None, "the cap is reached");
        assert_eq!(s.counters().active, 2);
        assert_eq!(s.handle_end("b", DrainEnd::Drained), DrainAction::Done);
        assert_eq!(s.poll_start().as_deref(), Some("c"));
        assert_eq!(s.poll_start(), None);
    }

    #[test]
    fn s18_2_zero_cap_is_treated_as_one() {
        let mut s = with(&["a", "b"], 0);
        assert_eq!(s.max_drainers(), 1);
        assert_eq!(s.poll_start().as_deref(), Some("a"));
        assert_eq!(s.poll_start(), None);
    }

    #[test]
    fn s18_2_held_lock_is_skipped_without_failed() {
        let mut s = with(&["a"], 1);
        s.poll_start();
        assert_eq!(s.handle_end("a", DrainEnd::LockHeld), DrainAction::Done);
        assert_eq!(
            s.counters(),
            DrainCounters {
                skipped: 1,
                ..DrainCounters::default()
            }
        );
        assert!(s.is_idle());
    }

    #[test]
    fn s5_2_permanent_refusal_marks_failed() {
        let mut s = with(&["a"], 1);
        s.poll_start();
        match s.handle_end("a", DrainEnd::RecoveryRefused(permanent())) {
            DrainAction::MarkFailed { reason } => {
                assert!(reason.contains("slot a"), "{reason}");
                assert!(reason.contains("recovery refused"), "{reason}");
                assert!(reason.contains("generations exhausted"), "{reason}");
            }
            other => panic!("expected MarkFailed, got {other:?}"),
        }
        assert_eq!(s.counters().failed, 0, "not counted before the write");
        assert_eq!(s.counters().active, 1, "active until the write is reported");
        assert!(s.mark_failed_done("a", true));
        assert_eq!(s.counters().failed, 1);
        assert_eq!(s.counters().active, 0);
        assert_eq!(s.poll_start(), None, "a given-up slot is not retried");
        assert!(s.is_idle());
    }

    #[test]
    fn s5_2_terminal_error_marks_failed_with_one_readable_line() {
        let mut s = with(&["a"], 1);
        s.poll_start();
        match s.handle_end("a", DrainEnd::Terminal(terminal())) {
            DrainAction::MarkFailed { reason } => {
                assert!(!reason.contains('\n'), "one line: {reason:?}");
                assert!(reason.contains("terminal error"), "{reason}");
                assert!(reason.contains("budget exhausted"), "{reason}");
            }
            other => panic!("expected MarkFailed, got {other:?}"),
        }
        assert!(s.mark_failed_done("a", true));
        assert_eq!(s.counters().failed, 1);
    }

    #[test]
    fn s5_2_recovery_reason_with_a_line_end_stays_one_line() {
        let mut s = with(&["a"], 1);
        s.poll_start();
        let e = RecoveryError::FsnOverflow {
            name: "sf-\n0001.sfa".into(),
        };
        match s.handle_end("a", DrainEnd::RecoveryRefused(e)) {
            DrainAction::MarkFailed { reason } => assert!(!reason.contains('\n'), "{reason:?}"),
            other => panic!("expected MarkFailed, got {other:?}"),
        }
    }

    #[test]
    fn s18_2_transient_refusal_is_retried_not_marked() {
        let mut s = with(&["a", "b"], 1);
        assert_eq!(s.poll_start().as_deref(), Some("a"));
        assert_eq!(
            s.handle_end("a", DrainEnd::RecoveryRefused(transient())),
            DrainAction::Retry
        );
        assert_eq!(
            s.poll_start().as_deref(),
            Some("b"),
            "a retry waits behind fresh candidates"
        );
        assert_eq!(s.handle_end("b", DrainEnd::Drained), DrainAction::Done);
        for _ in 1..RETRIES_PER_SCAN {
            assert_eq!(s.poll_start().as_deref(), Some("a"));
            assert_eq!(
                s.handle_end("a", DrainEnd::RecoveryRefused(transient())),
                DrainAction::Retry
            );
        }
        assert_eq!(s.poll_start().as_deref(), Some("a"));
        assert_eq!(
            s.handle_end("a", DrainEnd::RecoveryRefused(transient())),
            DrainAction::Done,
            "bounded: the next scan tries again"
        );
        assert_eq!(s.poll_start(), None);
        assert!(s.is_idle());
        let c = s.counters();
        assert_eq!(c.failed, 0, "never .failed for a transient refusal");
        assert_eq!(c.stopped, u64::from(RETRIES_PER_SCAN) + 1);
        assert_eq!(c.succeeded, 1);
    }

    #[test]
    fn s20_counters_track_active_succeeded_failed() {
        let mut s = with(&["a", "b", "c", "d", "e"], 5);
        while s.poll_start().is_some() {}
        assert_eq!(s.counters().active, 5);
        s.handle_end("a", DrainEnd::Drained);
        s.handle_end("b", DrainEnd::Terminal(terminal()));
        s.handle_end("c", DrainEnd::LockHeld);
        s.handle_end("d", DrainEnd::Stopped);
        assert_eq!(
            s.counters(),
            DrainCounters {
                active: 2,
                succeeded: 1,
                failed: 0,
                skipped: 1,
                stopped: 1,
            },
            "b is active until its .failed write is reported"
        );
        assert!(s.mark_failed_done("b", true));
        assert_eq!(
            s.counters(),
            DrainCounters {
                active: 1,
                succeeded: 1,
                failed: 1,
                skipped: 1,
                stopped: 1,
            }
        );
        assert!(!s.is_idle());
        s.handle_end("e", DrainEnd::Drained);
        assert_eq!(s.counters().active, 0);
        assert_eq!(s.counters().succeeded, 2);
        assert!(s.is_idle());
    }

    #[test]
    fn s20_an_unwritten_marker_is_counted_stopped_and_failed_never_goes_down() {
        let mut s = with(&["a"], 1);
        s.poll_start();
        assert!(!s.mark_failed_done("a", false), "not awaiting a mark yet");
        assert!(matches!(
            s.handle_end("a", DrainEnd::Terminal(terminal())),
            DrainAction::MarkFailed { .. }
        ));
        assert_eq!(s.counters().failed, 0, "nothing counted before the report");
        assert!(!s.is_idle(), "the drainer still holds the slot");
        assert!(s.mark_failed_done("a", false));
        assert!(!s.mark_failed_done("a", true), "once");
        assert_eq!(
            s.counters(),
            DrainCounters {
                stopped: 1,
                ..DrainCounters::default()
            }
        );
        assert!(s.is_idle());
    }

    #[test]
    fn s18_2_end_reported_twice_while_awaiting_the_mark_changes_nothing() {
        let mut s = with(&["a", "b"], 1);
        s.poll_start();
        assert!(matches!(
            s.handle_end("a", DrainEnd::RecoveryRefused(permanent())),
            DrainAction::MarkFailed { .. }
        ));
        assert_eq!(s.handle_end("a", DrainEnd::Stopped), DrainAction::Done);
        assert_eq!(s.poll_start(), None, "a still occupies the only drainer");
        assert!(s.mark_failed_done("a", true));
        assert_eq!(s.poll_start().as_deref(), Some("b"));
        assert_eq!(s.counters().failed, 1);
        assert_eq!(s.counters().stopped, 0);
    }

    #[test]
    fn s5_2_slot_marked_failed_after_the_scan_is_skipped_not_remarked() {
        let mut s = with(&["a"], 1);
        s.poll_start();
        assert_eq!(
            s.handle_end("a", DrainEnd::AlreadyFailed),
            DrainAction::Done
        );
        assert_eq!(
            s.counters(),
            DrainCounters {
                skipped: 1,
                ..DrainCounters::default()
            }
        );
        assert!(!s.mark_failed_done("a", true), "no mark was asked for");
        assert!(s.is_idle());
    }

    #[test]
    fn s18_2_end_of_a_slot_not_active_changes_nothing() {
        let mut s = with(&["a"], 1);
        assert_eq!(s.handle_end("a", DrainEnd::Drained), DrainAction::Done);
        assert_eq!(s.handle_end("zz", DrainEnd::Drained), DrainAction::Done);
        assert_eq!(s.counters(), DrainCounters::default());
        assert_eq!(s.poll_start().as_deref(), Some("a"), "still queued");
    }

    #[test]
    fn s18_2_stop_starts_nothing_more() {
        let mut s = with(&["a", "b", "c"], 1);
        assert_eq!(s.poll_start().as_deref(), Some("a"));
        s.stop();
        assert!(s.is_stopped());
        assert_eq!(s.queued(), 0, "the queue is dropped");
        assert_eq!(s.poll_start(), None);
        assert_eq!(s.handle_sibling("d", [SEG]), Verdict::Adopt);
        assert_eq!(s.queued(), 0, "nothing queued after stop");
        assert!(!s.is_idle(), "a is still active");
        assert_eq!(
            s.handle_end("a", DrainEnd::RecoveryRefused(transient())),
            DrainAction::Done,
            "no retry after stop"
        );
        assert!(s.is_idle());
        assert_eq!(s.poll_start(), None);
    }

    /// What the model adapter does in one step.
    #[derive(Debug, Clone)]
    enum Op {
        Sibling(u8, bool),
        Start,
        End(u8, u8),
        MarkDone(u8, bool),
        Stop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..6, any::<bool>()).prop_map(|(n, seg)| Op::Sibling(n, seg)),
            4 => Just(Op::Start),
            5 => (0u8..8, 0u8..8).prop_map(|(n, k)| Op::End(n, k)),
            2 => (0u8..6, any::<bool>()).prop_map(|(n, w)| Op::MarkDone(n, w)),
            1 => Just(Op::Stop),
        ]
    }

    fn end_of(k: u8) -> DrainEnd {
        match k {
            0 => DrainEnd::LockHeld,
            1 => DrainEnd::Drained,
            2 | 6 => DrainEnd::RecoveryRefused(transient()),
            7 => DrainEnd::AlreadyFailed,
            3 => DrainEnd::RecoveryRefused(permanent()),
            4 => DrainEnd::Terminal(terminal()),
            _ => DrainEnd::Stopped,
        }
    }

    proptest! {
        /// Against a simple model over random siblings, starts and ends:
        /// active ≤ cap; a slot runs only after it was adopted, at most
        /// once per scan plus `RETRIES_PER_SCAN` retries, never twice at
        /// once; `.failed` exactly for permanent refusals and terminal
        /// errors, counted `failed` only once the write is reported (and
        /// active until then); every start counted once; the totals never
        /// go down; idle exactly when nothing is queued or active; nothing
        /// starts after stop.
        #[test]
        fn s18_2_scheduler_matches_the_model(
            cap in 0usize..4,
            ops in proptest::collection::vec(op(), 0..80),
        ) {
            let names = ["a", "b", "c", "d", "me", "e"];
            let mut s = DrainScheduler::new(me(), cap);
            let cap = cap.max(1);
            let mut adopted = BTreeSet::new();
            let mut starts: BTreeMap<String, u32> = BTreeMap::new();
            let mut active: BTreeSet<String> = BTreeSet::new();
            let mut queued: BTreeSet<String> = BTreeSet::new();
            // Ended with MarkFailed, awaiting the write report: still active.
            let mut marked: BTreeSet<String> = BTreeSet::new();
            let mut stopped = false;
            let mut total_starts = 0u64;
            let mut prev = DrainCounters::default();
            for op in ops {
                match op {
                    Op::Sibling(n, seg) => {
                        let name = names[usize::from(n)];
                        let entries: &[&str] = if seg { &[SEG] } else { &[".lock"] };
                        let v = s.handle_sibling(name, entries.iter().copied());
                        prop_assert_eq!(v, judge(&me(), name, entries.iter().copied()));
                        if v == Verdict::Adopt && !stopped && adopted.insert(name.to_owned()) {
                            queued.insert(name.to_owned());
                        }
                    }
                    Op::Start => match s.poll_start() {
                        Some(n) => {
                            prop_assert!(!stopped, "started {} after stop", n);
                            prop_assert!(adopted.contains(&n));
                            prop_assert!(queued.remove(&n), "{} was not queued", n);
                            prop_assert!(!marked.contains(&n), "{} restarted while awaiting its mark", n);
                            prop_assert!(active.insert(n.clone()), "{} twice at once", n);
                            let k = starts.entry(n.clone()).or_default();
                            *k += 1;
                            prop_assert!(*k <= 1 + RETRIES_PER_SCAN);
                            total_starts += 1;
                        }
                        None => prop_assert!(stopped || active.len() + marked.len() >= cap || queued.is_empty()),
                    },
                    Op::End(n, k) => {
                        // Mostly an active slot (so long retry chains
                        // happen), sometimes any name (ends of slots not
                        // running must change nothing).
                        let name = match active.iter().nth(usize::from(n) % active.len().max(1)) {
                            Some(a) if n < 6 => a.clone(),
                            _ => names[usize::from(n) % names.len()].to_owned(),
                        };
                        let name = name.as_str();
                        let end = end_of(k);
                        let before = s.counters();
                        let was_active = active.remove(name);
                        let a = s.handle_end(name, end.clone());
                        if !was_active {
                            prop_assert_eq!(a, DrainAction::Done);
                            prop_assert_eq!(s.counters(), before, "an end of a slot not running counts nothing");
                            continue;
                        }
                        match end {
                            DrainEnd::RecoveryRefused(ref e) if !e.is_transient() => {
                                prop_assert!(matches!(a, DrainAction::MarkFailed { .. }), "{:?}", a);
                                marked.insert(name.to_owned());
                            }
                            DrainEnd::Terminal(_) => {
                                prop_assert!(matches!(a, DrainAction::MarkFailed { .. }), "{:?}", a);
                                marked.insert(name.to_owned());
                            }
                            DrainEnd::LockHeld | DrainEnd::AlreadyFailed => {
                                prop_assert_eq!(a, DrainAction::Done);
                                prop_assert_eq!(s.counters().skipped, before.skipped + 1);
                            }
                            DrainEnd::RecoveryRefused(_) => {
                                let again = !stopped && starts[name] <= RETRIES_PER_SCAN;
                                if again {
                                    prop_assert_eq!(a, DrainAction::Retry);
                                    queued.insert(name.to_owned());
                                } else {
                                    prop_assert_eq!(a, DrainAction::Done);
                                }
                            }
                            _ => prop_assert_eq!(a, DrainAction::Done),
                        }
                    }
                    Op::MarkDone(n, written) => {
                        let name = names[usize::from(n)];
                        let before = s.counters();
                        let awaited = marked.remove(name);
                        prop_assert_eq!(s.mark_failed_done(name, written), awaited);
                        let c = s.counters();
                        if awaited && written {
                            prop_assert_eq!((c.failed, c.stopped), (before.failed + 1, before.stopped));
                        } else if awaited {
                            prop_assert_eq!((c.failed, c.stopped), (before.failed, before.stopped + 1));
                        } else {
                            prop_assert_eq!(c, before);
                        }
                    }
                    Op::Stop => {
                        s.stop();
                        stopped = true;
                        queued.clear();
                    }
                }
                let c = s.counters();
                prop_assert!(active.len() + marked.len() <= cap);
                prop_assert_eq!(c.active, (active.len() + marked.len()) as u64);
                prop_assert!(
                    c.succeeded >= prev.succeeded
                        && c.failed >= prev.failed
                        && c.skipped >= prev.skipped
                        && c.stopped >= prev.stopped,
                    "a total went down: {:?} -> {:?}", prev, c
                );
                prev = c;
                prop_assert_eq!(
                    c.active + c.succeeded + c.failed + c.skipped + c.stopped,
                    total_starts
                );
                prop_assert_eq!(s.queued(), queued.len());
                prop_assert_eq!(
                    s.is_idle(),
                    queued.is_empty() && active.is_empty() && marked.is_empty()
                );
                prop_assert_eq!(
                    s.active().map(str::to_owned).collect::<BTreeSet<_>>(),
                    active.union(&marked).cloned().collect::<BTreeSet<_>>()
                );
            }
        }
    }
}
