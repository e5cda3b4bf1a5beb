//! In-range recovery (issue 8 pool rule 6, DESIGN §6 item 20): at
//! construction the pool finds its own in-range slots that hold segments
//! and are not locked, and drains them on background threads so that
//! construction never waits on the network.
//!
//! # Shape
//!
//! * [`scan`] (at construction, file system only) lists the candidate
//!   indices in ascending order into the pool's state (`State::recovery`).
//! * [`start`] runs at most `max_background_drainers` worker threads (the
//!   cap the orphan drainers use). A worker takes the next queued index and
//!   reserves it (`SlotAllocator::reserve_exact`) *when it starts on it*,
//!   so a borrow never gets an index under recovery, and a queued index a
//!   borrow took first is skipped: the borrower's sender opens that slot
//!   and replays its data itself. Reserving only at start keeps queued
//!   indices lendable while the cap holds the others back.
//! * A recovery opens the slot with the orphan drainer's configuration
//!   (`Config::for_orphan_drainer`: first connect retried in the
//!   background, no drain at close), waits until everything recovered is
//!   acknowledged, bounded by `close_flush_timeout_millis` as before,
//!   closes (the engine's close waits for the `.ack-watermark` of what was
//!   acknowledged, S8) and settles the index exactly like any pooled
//!   sender (`PoolInner::close_and_settle`: freed, retired or busy
//!   elsewhere). Giving up (unreachable server, a refused slot, the pool
//!   closing) leaves the data on disk.
//! * The pool's `close()` sets `State::closed`; a worker notices within
//!   [`STOP_CHECK`], closes its sender without waiting (locks released,
//!   data stays) and exits; queued indices are dropped.
//!
//! A plain queue, not `sf_core::orphans::DrainScheduler`: that policy
//! judges *foreign* slots (it refuses the scanner's own) and answers a
//! terminal error with `.failed`, which the pool must never write into a
//! slot it will lend again. What is left is "at most N at once, in
//! order", which a queue and N threads express directly.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sf_core::orphans::{judge, OwnSlots, Verdict};
use sf_core::pool_slots::{pooled_sender_id, SlotIndex};
use sf_core::Fsn;

use super::{later, PoolInner};
use crate::fs::{lock_holder, LockProbe};
use crate::sender::{Error, Sender, SenderBuilder};

/// How often a recovery that waits for acknowledgements checks whether the
/// pool closed (the ack wait itself ends on progress at once).
pub(super) const STOP_CHECK: Duration = Duration::from_millis(50);

/// The recovery bookkeeping kept in the pool's state (under its mutex, so
/// every change wakes `SenderPool::wait_for`).
#[derive(Debug, Default)]
pub(super) struct RecoveryState {
    /// Candidate indices not started yet, ascending.
    pub(super) queued: VecDeque<SlotIndex>,
    /// Recoveries running now (each holds its index reserved).
    pub(super) running: u32,
    /// The most recoveries that ever ran at once.
    pub(super) peak: u32,
}

/// How one recovery ended.
enum Outcome {
    /// Everything recovered was acknowledged (or there was nothing to send).
    Recovered,
    /// Given up; the data stays on disk.
    GivenUp,
}

/// Queues every in-range slot that holds segments and is not locked
/// (file system only, no network). Without `sf_dir` nothing is queued.
pub(super) fn scan(inner: &PoolInner) {
    let Some((dir, base)) = &inner.slots else {
        return;
    };
    let mut queued = VecDeque::new();
    for i in 0..inner.sizes.max {
        let index = SlotIndex::from_raw(i);
        let slot = dir.join(pooled_sender_id(base, index));
        if holds_segments(&slot) && !matches!(lock_holder(&slot), Ok(LockProbe::Held(_))) {
            queued.push_back(index);
        }
    }
    inner.lock().recovery.queued = queued;
}

/// Starts the worker threads for the queued candidates: at most
/// `max_background_drainers`, none when nothing is queued.
pub(super) fn start(inner: &Arc<PoolInner>) -> Vec<JoinHandle<()>> {
    let cap = inner.config.storage().max_background_drainers.max(1) as usize;
    let n = inner.lock().recovery.queued.len().min(cap);
    let mut workers = Vec::with_capacity(n);
    for i in 0..n {
        let inner = Arc::clone(inner);
        match std::thread::Builder::new()
            .name(format!("qwp-sf-pool-recovery-{i}"))
            .spawn(move || worker(&inner))
        {
            Ok(h) => workers.push(h),
            Err(e) => tracing::warn!("sender pool: cannot start a recovery thread: {e}"),
        }
    }
    if workers.is_empty() {
        // Nobody would ever take them: not pending, the indices stay
        // lendable and a borrower's sender replays their data.
        inner.lock().recovery.queued.clear();
        inner.cond.notify_all();
    }
    workers
}

/// One recovery thread: recovers queued indices until none is left or the
/// pool closes.
fn worker(inner: &Arc<PoolInner>) {
    while let Some(index) = next(inner) {
        // A panic inside one recovery (slot recovery from disk, a tracing
        // layer) must not leave its index reserved with no owner and
        // `running` counted for good: the index is settled (its sender, if
        // any, was dropped by the unwind and released its lock) and the
        // slot counted as given up, its data left on disk.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| recover_one(inner, index)))
                .unwrap_or_else(|_| {
                    tracing::error!(
                "sender pool: the recovery of slot index {index} panicked; its data stays on disk"
            );
                    inner.settle(index);
                    Outcome::GivenUp
                });
        let stat = match outcome {
            Outcome::Recovered => &inner.stats.recovered_slots,
            Outcome::GivenUp => &inner.stats.recoveries_given_up,
        };
        // Counted, and the index settled, before `running` drops: a waiter
        // that sees no recovery running reads final counters.
        stat.fetch_add(1, Ordering::Relaxed);
        let mut g = inner.lock();
        g.recovery.running = g.recovery.running.saturating_sub(1);
        drop(g);
        inner.cond.notify_all();
    }
}

/// Takes the next queued index this worker can reserve, counting it as
/// running; `None` when the queue is empty or the pool closed (which drops
/// the queue).
fn next(inner: &PoolInner) -> Option<SlotIndex> {
    let mut g = inner.lock();
    let taken = loop {
        if g.closed {
            g.recovery.queued.clear();
            break None;
        }
        let index = g.recovery.queued.pop_front()?;
        // Reserved here, before any I/O on the slot: from now on no
        // borrow gets this index until the recovery settled it.
        if g.alloc.reserve_exact(index) {
            g.recovery.running += 1;
            g.recovery.peak = g.recovery.peak.max(g.recovery.running);
            break Some(index);
        }
        // Lent (its sender replays the slot itself), retired or busy
        // elsewhere meanwhile: not ours to recover now.
    };
    drop(g);
    inner.cond.notify_all();
    taken
}

/// Recovers the slot at `index` (reserved by the caller) and settles the
/// index. Never panics; every failure leaves the data on disk.
fn recover_one(inner: &PoolInner, index: SlotIndex) -> Outcome {
    let Some((dir, base)) = &inner.slots else {
        inner.settle(index);
        return Outcome::GivenUp;
    };
    let id = pooled_sender_id(base, index);
    let slot = dir.join(&id);
    let built = inner
        .config
        .for_orphan_drainer(&id)
        .map_err(|e| e.to_string())
        .and_then(|c| SenderBuilder::new(c).build().map_err(|e| e.to_string()));
    let sender = match built {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(slot = %slot.display(), "sender pool: cannot recover the slot, its data stays on disk: {e}");
            inner.settle(index);
            return Outcome::GivenUp;
        }
    };
    inner.stats.created.fetch_add(1, Ordering::Relaxed);
    let waited = match sender.counters().published_fsn {
        None => Ok(()),
        Some(target) => wait_acked(inner, &sender, target),
    };
    let outcome = match waited {
        Ok(()) => Outcome::Recovered,
        Err(why) => {
            tracing::warn!(slot = %slot.display(), "sender pool: slot not recovered ({why}), its data stays on disk");
            Outcome::GivenUp
        }
    };
    // The drainer configuration closes without a drain, so a close after
    // the pool's close is prompt; the engine's close still waits for the
    // `.ack-watermark` of what is acknowledged (S8), so the next sender on
    // this slot does not replay the recovered frames.
    inner.close_and_settle(sender, index);
    outcome
}

/// Waits until `target` is acknowledged, bounded by
/// `close_flush_timeout_millis` (none: no wait), checking every
/// [`STOP_CHECK`] whether the pool closed. `Err` says why it gave up.
fn wait_acked(inner: &PoolInner, sender: &Sender, target: Fsn) -> Result<(), String> {
    let bound = inner.config.close_flush_timeout().unwrap_or(Duration::ZERO);
    let deadline = later(Instant::now(), bound);
    loop {
        if inner.lock().closed {
            return Err("the pool closed".into());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match sender.wait_acked(target, left.min(STOP_CHECK)) {
            Ok(()) => return Ok(()),
            Err(Error::AckTimeout { .. }) if Instant::now() < deadline => continue,
            Err(Error::AckTimeout { acked, .. }) => {
                return Err(format!(
                    "FSN {} not acknowledged within {bound:?}, acknowledged up to {acked:?}",
                    target.get()
                ))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Whether `dir` holds a segment file (a listing error counts as "no":
/// recovery is best effort, and the slot is then used at the next borrow).
fn holds_segments(dir: &Path) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    // Judged as a foreign slot so the one rule decides what a segment is;
    // `.failed` does not stop the owner from recovering its own slot.
    let names = names
        .iter()
        .map(String::as_str)
        .filter(|n| *n != sf_core::orphans::FAILED_MARKER);
    judge(&OwnSlots::Single(String::new()), "x", names) == Verdict::Adopt
}
