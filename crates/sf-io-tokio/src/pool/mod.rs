//! A pool of [`Sender`]s built from one connect string (DESIGN §6 items
//! 17–21), for services that borrow a sender per request or per worker.
//!
//! # Slots (store-and-forward mode)
//!
//! * Each pooled sender owns slot `<sender_id>-<index>`, `index` in
//!   `[0, max)`, lowest free first (`sf_core::pool_slots`), so a restarted
//!   pool re-adopts the same directories (item 17).
//! * An index goes back to the free set only once its sender's slot lock is
//!   seen released after close (item 18). Who still holds it decides the
//!   rest (`sf_core::pool_slots::SlotAllocator::settle`):
//!   - held by this process (`.lock.pid` names our PID): our sender failed
//!     to let go, so the index is retired: the capacity shrinks, a WARN
//!     names the slot, and [`PoolCounters::retired`] counts it;
//!   - held by another process (say a sender with `drain_orphans=on` that
//!     adopted a reaped slot as an orphan and drains it): the index is
//!     *busy elsewhere* ([`PoolCounters::busy_elsewhere`]): not lent, not
//!     retired, and re-probed when a borrow finds no free index and by the
//!     reaper every [`BUSY_REPROBE_INTERVAL`], until its lock is free.
//! * A borrow whose build fails settles the index it reserved the same way.
//! * A sender whose flush ever failed, or that is halted, is closed and
//!   discarded on return, never lent again with its rows (item 21). Rows a
//!   borrower left unflushed are flushed on return.
//! * At construction the pool recovers its in-range slots that hold
//!   segments and are not locked (item 20, rule 6), in the background so
//!   that construction never waits on the network: at most
//!   `max_background_drainers` at once, each with its index reserved
//!   (never lent meanwhile): build, wait for the acknowledgements (up to
//!   `close_flush_timeout_millis`), close, settle. The close itself waits
//!   for the `.ack-watermark` of what was acknowledged (the engine's rule,
//!   S8), so the next sender on that slot replays nothing. Best effort: an
//!   unreachable server leaves the data on disk. See `recovery` (private
//!   module) and [`PoolCounters::recovering`].
//! * With `drain_orphans=on` the pool runs orphan drainers over `sf_dir`
//!   excluding exactly its managed indices, so slots of the same base with
//!   an index `≥ max` (the pool shrank) are drained (item 19). Pooled
//!   senders themselves never scan.
//! * The pool holds the lock of `<sf_dir>/<sender_id>.pool/` for its life:
//!   a second pool (or process) with the same base fails fast; different
//!   bases coexist.
//!
//! # Threads
//!
//! Borrowing builds a sender on the borrower's thread (blocking, like
//! [`Sender::from_conf`]); returning flushes and, when discarding, closes on
//! the returning thread (bounded by `close_flush_timeout_millis`). One
//! reaper thread closes senders idle longer than the idle timeout while
//! more than `min` exist. Up to `max_background_drainers` recovery threads
//! run while construction-time recoveries are pending; `close()` stops
//! them promptly.

mod recovery;

use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sf_core::config::Config;
use sf_core::orphans::{pool_lock_id, OwnSlots};
use sf_core::pool_slots::{pooled_sender_id, Settled, SlotAllocator, SlotIndex, SlotLockProbe};

use crate::fs::{lock_holder, LockError, LockHolder, LockProbe, SlotLock};
use crate::orphan::{DrainerCounters, DrainerEvent, DrainerListener, OrphanDrainers};
use crate::sender::{Error, Sender, SenderBuilder};
use recovery::RecoveryState;

/// Sizes and timeouts of a [`SenderPool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Senders kept alive even when idle (built at construction, best
    /// effort). At most `max`.
    pub min: u32,
    /// Most senders at once; in SF mode also the number of managed slots.
    /// At most [`PoolConfig::MAX_SENDERS`].
    pub max: u32,
    /// An idle sender beyond `min` is closed after this long.
    pub idle_timeout: Duration,
    /// How long [`SenderPool::borrow`] waits for a sender.
    pub borrow_timeout: Duration,
}

impl PoolConfig {
    /// The largest `max` a pool accepts: every index is a slot directory
    /// the pool scans and recovers at construction.
    pub const MAX_SENDERS: u32 = 4096;
}

impl Default for PoolConfig {
    /// `min` 0, `max` 4, idle 60 s, borrow 30 s.
    fn default() -> PoolConfig {
        PoolConfig {
            min: 0,
            max: 4,
            idle_timeout: Duration::from_secs(60),
            borrow_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a pool call failed.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The connect string or the pool sizes are invalid.
    #[error("pool configuration: {0}")]
    Config(String),
    /// Another pool (or process) with the same base holds the pool lock.
    #[error("sender pool lock: {0}")]
    Lock(#[from] LockError),
    /// Building a sender for a borrow failed (its index was settled).
    #[error("building a pooled sender: {0}")]
    Build(#[from] Error),
    /// No sender became available within the borrow timeout.
    #[error("no sender available within {timeout:?} (max {max}, capacity {capacity})")]
    BorrowTimeout {
        /// The borrow timeout.
        timeout: Duration,
        /// The configured maximum.
        max: u32,
        /// The capacity left after retirements.
        capacity: u32,
    },
    /// The pool was closed.
    #[error("the sender pool is closed")]
    Closed,
}

/// A snapshot of the pool's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounters {
    /// Senders lent out now.
    pub lent: u32,
    /// Idle senders held now.
    pub idle: u32,
    /// Indices that can still be used at once (`max` minus retired).
    pub capacity: u32,
    /// Senders built (borrows, prefill, recovery).
    pub created: u64,
    /// Senders closed and dropped on return (failed flush, halted).
    pub discarded: u64,
    /// Indices retired because this process still held their lock after
    /// close.
    pub retired: u64,
    /// Indices whose lock another process holds now: kept out of use
    /// (not retired) until a re-probe finds the lock free.
    pub busy_elsewhere: u32,
    /// Borrows whose sender could not be built.
    pub build_failures: u64,
    /// Borrows that timed out.
    pub borrow_timeouts: u64,
    /// In-range slots recovered to full acknowledgement (construction-time
    /// recovery, rule 6).
    pub recovered_slots: u64,
    /// Construction-time recoveries running now; each holds its index
    /// reserved, so it is not lent meanwhile.
    pub recovering: u32,
    /// In-range slots waiting for a recovery thread (the cap
    /// `max_background_drainers` is reached). Not reserved: a borrow may
    /// take one, and its sender then replays that slot itself.
    pub recoveries_queued: u32,
    /// Construction-time recoveries that gave up (unreachable server within
    /// `close_flush_timeout_millis`, a slot that would not open, the pool
    /// closing); their data stays on disk.
    pub recoveries_given_up: u64,
    /// The most construction-time recoveries that ran at once (at most
    /// `max_background_drainers`).
    pub recovering_peak: u32,
    /// Idle senders closed by the reaper.
    pub reaped: u64,
    /// The pool's orphan drainers (sf-client §20).
    pub drainers: DrainerCounters,
}

/// A hook run after a pooled sender closed, with its slot directory
/// (tests use it to stand in for an owner that still holds the lock).
type AfterClose = Arc<dyn Fn(&Path) + Send + Sync + 'static>;

/// Whether a lock holder named by `.lock.pid` is this process (a seam:
/// tests stand in for another process, which one process cannot fake by
/// PID).
type HolderIsUs = Arc<dyn Fn(LockHolder) -> bool + Send + Sync + 'static>;

/// How often the reaper re-probes the indices busy elsewhere (a borrow
/// that finds no free index re-probes them at once).
pub const BUSY_REPROBE_INTERVAL: Duration = Duration::from_secs(1);

/// The default [`HolderIsUs`]: `.lock.pid` names our PID. An unknown
/// holder (no PID written yet) is not us: our sender writes its PID right
/// after it takes the lock, and closed before the probe.
fn holder_is_this_process(holder: LockHolder) -> bool {
    holder == LockHolder::Pid(std::process::id())
}

struct Idle {
    sender: Sender,
    index: SlotIndex,
    since: Instant,
}

struct State {
    alloc: SlotAllocator,
    idle: Vec<Idle>,
    lent: u32,
    closed: bool,
    recovery: RecoveryState,
}

#[derive(Default)]
struct Stats {
    created: AtomicU64,
    discarded: AtomicU64,
    retired: AtomicU64,
    build_failures: AtomicU64,
    borrow_timeouts: AtomicU64,
    recovered_slots: AtomicU64,
    recoveries_given_up: AtomicU64,
    reaped: AtomicU64,
}

struct PoolInner {
    config: Config,
    sizes: PoolConfig,
    /// `(sf_dir, base sender id)` in SF mode.
    slots: Option<(PathBuf, String)>,
    state: Mutex<State>,
    cond: Condvar,
    stats: Stats,
    after_close: Option<AfterClose>,
    holder_is_us: HolderIsUs,
}

impl PoolInner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slot_dir(&self, index: SlotIndex) -> Option<PathBuf> {
        self.slots
            .as_ref()
            .map(|(dir, base)| dir.join(pooled_sender_id(base, index)))
    }

    /// The configuration of the sender at `index`.
    fn sender_config(&self, index: SlotIndex) -> Result<Config, PoolError> {
        match &self.slots {
            Some((_, base)) => self
                .config
                .for_slot(&pooled_sender_id(base, index))
                .map_err(|e| PoolError::Config(e.to_string())),
            None => Ok(self.config.clone()),
        }
    }

    fn build(&self, index: SlotIndex) -> Result<Sender, PoolError> {
        let s = SenderBuilder::new(self.sender_config(index)?).build()?;
        self.stats.created.fetch_add(1, Ordering::Relaxed);
        Ok(s)
    }

    /// Retires `index` because recovery refuses its slot's data: it is
    /// never lent again, and the data stays on disk for an operator.
    fn retire_unusable(&self, index: SlotIndex, why: &PoolError) {
        let mut g = self.lock();
        tracing::warn!(
            slot = ?self.slot_dir(index),
            "sender pool: slot index {index} retired, recovery refuses its data ({why}); \
             see `qwp-sf inspect`; capacity is now {}",
            g.alloc.capacity().saturating_sub(1)
        );
        self.stats.retired.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = g.alloc.retire(index) {
            tracing::error!("sender pool bookkeeping: {e}");
        }
        drop(g);
        self.cond.notify_all();
    }

    /// Probes the slot lock of `index`: free, held by this process, or
    /// held by another one (with a description for the log).
    fn probe(&self, index: SlotIndex) -> (SlotLockProbe, String) {
        let Some(dir) = self.slot_dir(index) else {
            return (SlotLockProbe::Free, String::new());
        };
        match lock_holder(&dir) {
            Ok(LockProbe::Free | LockProbe::NeverLocked) => (SlotLockProbe::Free, String::new()),
            Ok(LockProbe::Held(h)) if (self.holder_is_us)(h) => (
                SlotLockProbe::HeldByUs,
                format!("held by this process ({h})"),
            ),
            Ok(LockProbe::Held(h)) => (
                SlotLockProbe::HeldByOther,
                format!("held by another process ({h})"),
            ),
            // Unproven release is no release: never risk two owners. Not
            // proof of our own leak either, so re-probed, not retired.
            Err(e) => (
                SlotLockProbe::HeldByOther,
                format!("not provably free (cannot probe the lock: {e})"),
            ),
        }
    }

    /// Returns `index` to the free set if its slot lock is released, or
    /// retires it if this process still holds it (item 18), or marks it
    /// busy elsewhere if another process does. Call with the sender closed.
    fn settle(&self, index: SlotIndex) {
        let (probe, why) = self.probe(index);
        let mut g = self.lock();
        match g.alloc.settle(index, probe) {
            Ok(Settled::Freed) => {}
            Ok(Settled::Retired) => {
                tracing::warn!(
                    slot = ?self.slot_dir(index),
                    "sender pool: slot index {index} retired, its lock is still {why} after close; \
                     capacity is now {}",
                    g.alloc.capacity()
                );
                self.stats.retired.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Settled::BusyElsewhere) => {
                tracing::warn!(
                    slot = ?self.slot_dir(index),
                    "sender pool: slot index {index} is busy, its lock is {why}; \
                     not lent until the lock is free"
                );
            }
            Err(e) => tracing::error!("sender pool bookkeeping: {e}"),
        }
        drop(g);
        self.cond.notify_all();
    }

    /// Re-probes the indices busy elsewhere and frees the ones whose lock
    /// is free now. Returns how many came back. The probe runs under the
    /// state lock on purpose: a probe briefly takes the slot lock itself,
    /// so it must not race a borrow that reserved the same index in the
    /// meantime and is building its sender (the build would find the lock
    /// held). Busy indices are rare and a probe is a few syscalls.
    fn reprobe_busy(&self, g: &mut MutexGuard<'_, State>) -> u32 {
        let busy: Vec<SlotIndex> = g.alloc.busy_elsewhere().collect();
        let mut freed = 0;
        for index in busy {
            let (probe, _) = self.probe(index);
            match g.alloc.recheck(index, probe) {
                Ok(true) => {
                    freed += 1;
                    tracing::info!(
                        slot = ?self.slot_dir(index),
                        "sender pool: slot index {index} is free again"
                    );
                }
                Ok(false) => {}
                Err(e) => tracing::error!("sender pool bookkeeping: {e}"),
            }
        }
        if freed > 0 {
            self.cond.notify_all();
        }
        freed
    }

    /// Closes `sender` (bounded by its close timeout) and settles `index`.
    fn close_and_settle(&self, sender: Sender, index: SlotIndex) {
        if let Err(e) = sender.close() {
            tracing::warn!("sender pool: closing pooled sender {index}: {e}");
        }
        if let (Some(hook), Some(dir)) = (&self.after_close, self.slot_dir(index)) {
            hook(&dir);
        }
        self.settle(index);
    }

    /// Takes a sender back from a borrower.
    fn give_back(&self, mut sender: Sender, index: SlotIndex) {
        // The next borrower must start at a row boundary.
        if sender.cancel_row() {
            tracing::warn!(
                "sender pool: a sender came back with a row in progress; that row was dropped"
            );
        }
        let mut discard = sender.flush_failed();
        if !discard && sender.pending_rows() > 0 {
            discard = sender.flush().is_err();
        }
        if !discard && sender.counters().last_terminal_error.is_some() {
            discard = true;
        }
        let mut g = self.lock();
        g.lent = g.lent.saturating_sub(1);
        if discard || g.closed {
            drop(g);
            if discard {
                self.stats.discarded.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "sender pool: discarding pooled sender {index} after a failed flush"
                );
            }
            self.close_and_settle(sender, index);
            return;
        }
        g.idle.push(Idle {
            sender,
            index,
            since: Instant::now(),
        });
        drop(g);
        self.cond.notify_all();
    }
}

/// A pool of senders over one connect string. See the module docs.
pub struct SenderPool {
    inner: Arc<PoolInner>,
    reaper: Option<JoinHandle<()>>,
    drainers: Option<OrphanDrainers>,
    recoveries: Vec<JoinHandle<()>>,
    _pool_lock: Option<SlotLock>,
}

impl core::fmt::Debug for SenderPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SenderPool")
            .field("sizes", &self.inner.sizes)
            .field("counters", &self.counters())
            .finish()
    }
}

/// Builds a [`SenderPool`] with the hooks a connect string cannot carry.
pub struct SenderPoolBuilder {
    conf: String,
    sizes: PoolConfig,
    listener: Option<DrainerListener>,
    after_close: Option<AfterClose>,
    holder_is_us: Option<HolderIsUs>,
}

impl core::fmt::Debug for SenderPoolBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SenderPoolBuilder")
            .field("sizes", &self.sizes)
            .finish()
    }
}

impl SenderPoolBuilder {
    /// Calls `f` with every event of the pool's orphan drainers.
    pub fn on_drainer_event(mut self, f: impl Fn(DrainerEvent) + Send + Sync + 'static) -> Self {
        self.listener = Some(Arc::new(f));
        self
    }

    /// Test seam: runs `f` with a pooled sender's slot directory right
    /// after that sender closed and before the pool probes its lock.
    #[doc(hidden)]
    pub fn after_sender_close(mut self, f: impl Fn(&Path) + Send + Sync + 'static) -> Self {
        self.after_close = Some(Arc::new(f));
        self
    }

    /// Test seam: decides whether a slot lock holder named by `.lock.pid`
    /// is this process (default: it names our PID), so a test can stand in
    /// for another process's sender from inside this one.
    #[doc(hidden)]
    pub fn lock_holder_is_us(
        mut self,
        f: impl Fn(LockHolder) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.holder_is_us = Some(Arc::new(f));
        self
    }

    /// Builds the pool: takes the pool lock, starts the background recovery
    /// of in-range slots (never waits for it), starts the orphan drainers
    /// and prefills `min` senders.
    pub fn build(self) -> Result<SenderPool, PoolError> {
        let config = Config::from_conf(&self.conf).map_err(|e| PoolError::Config(e.to_string()))?;
        let sizes = self.sizes;
        if sizes.max == 0 || sizes.min > sizes.max || sizes.max > PoolConfig::MAX_SENDERS {
            return Err(PoolError::Config(format!(
                "need 0 <= min <= max and 0 < max <= {}, got min {} max {}",
                PoolConfig::MAX_SENDERS,
                sizes.min,
                sizes.max
            )));
        }
        let (slots, pool_lock) = match &config.storage().sf_dir {
            None => (None, None),
            Some(dir) => {
                let base = config.storage().sender_id.clone();
                let lock_id = pool_lock_id(&base);
                // The longest managed id must still be a valid sender id.
                let last = pooled_sender_id(&base, SlotIndex::from_raw(sizes.max - 1));
                config
                    .for_slot(&last)
                    .and_then(|_| config.for_slot(&lock_id))
                    .map_err(|e| PoolError::Config(e.to_string()))?;
                let lock = SlotLock::acquire(Path::new(dir), &lock_id)?;
                (Some((PathBuf::from(dir), base)), Some(lock))
            }
        };
        let inner = Arc::new(PoolInner {
            config,
            sizes,
            slots,
            state: Mutex::new(State {
                alloc: SlotAllocator::new(sizes.max),
                idle: Vec::new(),
                lent: 0,
                closed: false,
                recovery: RecoveryState::default(),
            }),
            cond: Condvar::new(),
            stats: Stats::default(),
            after_close: self.after_close,
            holder_is_us: self
                .holder_is_us
                .unwrap_or_else(|| Arc::new(holder_is_this_process)),
        });
        recovery::scan(&inner);
        let recoveries = recovery::start(&inner);
        let drainers = match &inner.slots {
            Some((_, base)) if inner.config.storage().drain_orphans => Some(OrphanDrainers::start(
                &inner.config,
                OwnSlots::Pool {
                    base: base.clone(),
                    max: sizes.max,
                },
                self.listener,
            )),
            _ => None,
        };
        prefill(&inner);
        let reaper = {
            let i = Arc::clone(&inner);
            std::thread::Builder::new()
                .name("qwp-sf-pool-reaper".into())
                .spawn(move || reap(&i))
                .map_err(|e| PoolError::Build(Error::IoTask(e.to_string())))
        };
        // Assembled before the reaper's result is looked at, so a failure
        // still closes the pool (stops and joins the recoveries, closes the
        // prefilled senders) before the pool lock goes.
        let mut pool = SenderPool {
            inner,
            reaper: None,
            drainers,
            recoveries,
            _pool_lock: pool_lock,
        };
        pool.reaper = Some(reaper?);
        Ok(pool)
    }
}

impl SenderPool {
    /// A pool over connect string `conf` with sizes `sizes`.
    pub fn new(conf: &str, sizes: PoolConfig) -> Result<SenderPool, PoolError> {
        SenderPool::builder(conf, sizes).build()
    }

    /// A builder, for the drainer listener.
    pub fn builder(conf: &str, sizes: PoolConfig) -> SenderPoolBuilder {
        SenderPoolBuilder {
            conf: conf.to_owned(),
            sizes,
            listener: None,
            after_close: None,
            holder_is_us: None,
        }
    }

    /// Lends a sender: an idle one (most recently returned first), else a
    /// new one on the lowest free slot index, else waits up to the borrow
    /// timeout for a return.
    pub fn borrow(&self) -> Result<PooledSender, PoolError> {
        let inner = &self.inner;
        let deadline = later(Instant::now(), inner.sizes.borrow_timeout);
        let mut g = inner.lock();
        loop {
            if g.closed {
                return Err(PoolError::Closed);
            }
            if let Some(idle) = g.idle.pop() {
                g.lent += 1;
                return Ok(self.lend(idle.sender, idle.index));
            }
            if let Some(index) = g.alloc.reserve() {
                g.lent += 1;
                drop(g);
                return match inner.build(index) {
                    Ok(s) => Ok(self.lend(s, index)),
                    Err(e) => {
                        inner.stats.build_failures.fetch_add(1, Ordering::Relaxed);
                        let mut g = inner.lock();
                        g.lent = g.lent.saturating_sub(1);
                        drop(g);
                        if refused_by_recovery(&e) {
                            // The slot's data needs an operator (inspect,
                            // repair); freeing the index would hand the
                            // same broken slot to every later borrow.
                            inner.retire_unusable(index, &e);
                        } else {
                            // Rule 3: the reserved index is freed (or
                            // retired if another owner holds that slot).
                            inner.settle(index);
                        }
                        Err(e)
                    }
                };
            }
            // No free index: one busy in another process may be free by
            // now (nothing notifies us when an outsider lets go).
            if g.alloc.busy_elsewhere_count() > 0 && inner.reprobe_busy(&mut g) > 0 {
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                inner.stats.borrow_timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(PoolError::BorrowTimeout {
                    timeout: inner.sizes.borrow_timeout,
                    max: inner.sizes.max,
                    capacity: g.alloc.capacity(),
                });
            }
            // Woken by returns; while indices are busy elsewhere, also
            // after a short while to re-probe them.
            let mut wait = deadline - now;
            if g.alloc.busy_elsewhere_count() > 0 {
                wait = wait.min(BORROW_REPROBE_INTERVAL);
            }
            g = inner
                .cond
                .wait_timeout(g, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn lend(&self, sender: Sender, index: SlotIndex) -> PooledSender {
        PooledSender {
            sender: Some(sender),
            index,
            pool: Arc::clone(&self.inner),
        }
    }

    /// The counters now.
    pub fn counters(&self) -> PoolCounters {
        let g = self.inner.lock();
        self.counters_locked(&g)
    }

    fn counters_locked(&self, g: &State) -> PoolCounters {
        let s = &self.inner.stats;
        PoolCounters {
            lent: g.lent,
            idle: g.idle.len() as u32,
            capacity: g.alloc.capacity(),
            created: s.created.load(Ordering::Relaxed),
            discarded: s.discarded.load(Ordering::Relaxed),
            retired: s.retired.load(Ordering::Relaxed),
            busy_elsewhere: g.alloc.busy_elsewhere_count(),
            build_failures: s.build_failures.load(Ordering::Relaxed),
            borrow_timeouts: s.borrow_timeouts.load(Ordering::Relaxed),
            recovered_slots: s.recovered_slots.load(Ordering::Relaxed),
            recovering: g.recovery.running,
            recoveries_queued: g.recovery.queued.len() as u32,
            recoveries_given_up: s.recoveries_given_up.load(Ordering::Relaxed),
            recovering_peak: g.recovery.peak,
            reaped: s.reaped.load(Ordering::Relaxed),
            drainers: self
                .drainers
                .as_ref()
                .map(OrphanDrainers::counters)
                .unwrap_or_default(),
        }
    }

    /// Waits until `pred` holds for the counters or `timeout` passes;
    /// returns whether it held. Woken by every return, settle, reap and
    /// recovery start or end (the drainer counters are read whenever the
    /// pool wakes).
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&PoolCounters) -> bool) -> bool {
        let deadline = later(Instant::now(), timeout);
        loop {
            if pred(&self.counters()) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let g = self.inner.lock();
            // Re-checked under the lock the notifier takes, so a wake-up
            // between the check above and this wait is not lost.
            if pred(&self.counters_locked(&g)) {
                return true;
            }
            let _ = self
                .inner
                .cond
                .wait_timeout(g, (deadline - now).min(Duration::from_millis(50)));
        }
    }

    /// Closes the pool: stops the orphan drainers and the construction-time
    /// recoveries (promptly: their data stays on disk, their slot locks are
    /// released), closes every idle sender (each drains up to
    /// `close_flush_timeout_millis`); senders still lent are closed when
    /// returned. Releases the pool lock.
    pub fn close(mut self) {
        self.close_inner();
    }

    fn close_inner(&mut self) {
        if let Some(mut d) = self.drainers.take() {
            d.stop();
        }
        let idle = {
            let mut g = self.inner.lock();
            g.closed = true;
            std::mem::take(&mut g.idle)
        };
        self.inner.cond.notify_all();
        // They see `closed` within `recovery::STOP_CHECK`, close without a
        // drain and settle their indices.
        for r in self.recoveries.drain(..) {
            let _ = r.join();
        }
        for i in idle {
            self.inner.close_and_settle(i.sender, i.index);
        }
        if let Some(r) = self.reaper.take() {
            let _ = r.join();
        }
    }
}

impl Drop for SenderPool {
    fn drop(&mut self) {
        self.close_inner();
    }
}

/// A borrowed sender; derefs to [`Sender`] and goes back to its pool when
/// dropped (flushing rows left pending; discarded if a flush failed).
pub struct PooledSender {
    sender: Option<Sender>,
    index: SlotIndex,
    pool: Arc<PoolInner>,
}

impl core::fmt::Debug for PooledSender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PooledSender")
            .field("index", &self.index)
            .finish()
    }
}

impl PooledSender {
    /// The pool slot index of this sender.
    pub fn index(&self) -> SlotIndex {
        self.index
    }

    /// The slot id (`<sender_id>-<index>`) in SF mode.
    pub fn slot_id(&self) -> Option<String> {
        self.pool
            .slots
            .as_ref()
            .map(|(_, base)| pooled_sender_id(base, self.index))
    }

    /// Closes this sender instead of returning it to the pool.
    pub fn discard(mut self) {
        if let Some(s) = self.sender.take() {
            let mut g = self.pool.lock();
            g.lent = g.lent.saturating_sub(1);
            drop(g);
            self.pool.stats.discarded.fetch_add(1, Ordering::Relaxed);
            self.pool.close_and_settle(s, self.index);
        }
    }
}

impl Deref for PooledSender {
    type Target = Sender;
    fn deref(&self) -> &Sender {
        // Present until drop or `discard`, which consume the value.
        self.sender.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for PooledSender {
    fn deref_mut(&mut self) -> &mut Sender {
        self.sender.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for PooledSender {
    fn drop(&mut self) {
        if let Some(s) = self.sender.take() {
            self.pool.give_back(s, self.index);
        }
    }
}

/// Builds `min` idle senders, best effort.
fn prefill(inner: &Arc<PoolInner>) {
    for _ in 0..inner.sizes.min {
        let Some(index) = inner.lock().alloc.reserve() else {
            return;
        };
        match inner.build(index) {
            Ok(sender) => inner.lock().idle.push(Idle {
                sender,
                index,
                since: Instant::now(),
            }),
            Err(e) => {
                tracing::warn!("sender pool: prefill stopped: {e}");
                inner.settle(index);
                return;
            }
        }
    }
}

/// The reaper: closes senders idle longer than the idle timeout while more
/// than `min` senders exist.
fn reap(inner: &Arc<PoolInner>) {
    let mut g = inner.lock();
    let mut next_reprobe = later(Instant::now(), BUSY_REPROBE_INTERVAL);
    loop {
        if g.closed {
            return;
        }
        if g.alloc.busy_elsewhere_count() > 0 && Instant::now() >= next_reprobe {
            inner.reprobe_busy(&mut g);
            next_reprobe = later(Instant::now(), BUSY_REPROBE_INTERVAL);
            continue;
        }
        let now = Instant::now();
        let mut expired = Vec::new();
        // Oldest first: borrowers take the most recent, so the front ages.
        // In-use counts an expired sender until it is settled (subtract
        // the ones already taken in this pass) and every index a running
        // recovery holds (not a sender the pool keeps: it would otherwise
        // reap below `min` while recoveries run).
        while g
            .alloc
            .in_use()
            .saturating_sub(g.recovery.running)
            .saturating_sub(expired.len() as u32)
            > inner.sizes.min
            && g.idle
                .first()
                .is_some_and(|i| now.saturating_duration_since(i.since) >= inner.sizes.idle_timeout)
        {
            expired.push(g.idle.remove(0));
        }
        if !expired.is_empty() {
            drop(g);
            for i in expired {
                inner.stats.reaped.fetch_add(1, Ordering::Relaxed);
                inner.close_and_settle(i.sender, i.index);
            }
            g = inner.lock();
            continue;
        }
        let mut wait = g
            .idle
            .first()
            .map(|i| later(i.since, inner.sizes.idle_timeout).saturating_duration_since(now))
            .unwrap_or(inner.sizes.idle_timeout);
        if g.alloc.busy_elsewhere_count() > 0 {
            wait = wait.min(next_reprobe.saturating_duration_since(now));
        }
        let wait = wait.max(Duration::from_millis(1));
        g = inner
            .cond
            .wait_timeout(g, wait)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// How often a borrow that waits for a sender re-probes the indices busy
/// elsewhere.
const BORROW_REPROBE_INTERVAL: Duration = Duration::from_millis(50);

/// `at + d`, or a year from `at` when that is not representable.
fn later(at: Instant, d: Duration) -> Instant {
    at.checked_add(d)
        .or_else(|| at.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(at)
}
/// Whether a build failed because recovery refuses the slot's data
/// (corruption, an FSN gap, …), which no retry repairs.
fn refused_by_recovery(e: &PoolError) -> bool {
    matches!(
        e,
        PoolError::Build(Error::Slot(crate::fs::SlotOpenError::Recovery { .. }))
    )
}
