//! Orphan drain (sf-client §18.2, §5.2, §20): adopting sibling slots under
//! `sf_dir` that hold unacknowledged data nobody is sending.
//!
//! # Shape
//!
//! The policy — which siblings to adopt, in which order, how many drainers
//! at once, which ending writes `.failed` and which is retried — is
//! `sf_core::orphans::DrainScheduler`, the same code the simulator runs.
//! This module does the I/O it asks for and decides nothing itself:
//!
//! * [`scan`] lists `<sf_dir>/*` and hands each sibling directory (its
//!   name and the names it holds) to the scheduler, which keeps the ones
//!   `sf_core::orphans::judge` adopts (not the scanner's own slots, at
//!   least one segment, no `.failed`). Lock state is not part of the scan.
//! * [`OrphanDrainers`] runs up to `max_background_drainers` worker
//!   threads; each takes the next slot from `DrainScheduler::poll_start`.
//!   A drainer is a plain [`Sender`] opened on the orphan slot with the
//!   foreground's configuration (`Config::for_orphan_drainer`: its own
//!   `sender_id`, no scan of its own, first connect retried in the
//!   background), so it has its own engine, connection, reconnect loop and
//!   host tracker, and the same I/O task as any sender — no second I/O
//!   loop.
//! * A drainer opens the slot in two steps and never lets go of the lock
//!   in between: it takes the lock (never creating the directory), checks
//!   `.failed` again (another process may have given the slot up since the
//!   scan: skipped, `DrainEnd::AlreadyFailed`), recovers the slot
//!   (`fs::recover_slot`; a refusal hands the lock back) and builds the
//!   sender on it. It waits until everything it recovered is acknowledged,
//!   closes (releasing the lock) and reports how it ended (`DrainEnd`)
//!   while it still holds whatever it holds. The scheduler answers with a
//!   `DrainAction`: `MarkFailed` (a terminal engine error, or a permanent
//!   recovery refusal) writes `.failed` (synced) under the lock the
//!   drainer still holds, reports the write (`mark_failed_done`), emits
//!   `Failed`, and only then releases the lock; `Retry` (a transient
//!   refusal such as a listing or read error) leaves the slot adoptable
//!   and re-queued.
//! * A panic in a drainer's body (a listener is user code) ends that slot
//!   as stopped and the thread goes on with the queue: the scheduler is
//!   never left with a slot active forever.
//!
//! # Threads
//!
//! Drainers run on their own threads (each drainer sender also has its own
//! I/O thread), never on the foreground's runtime: a slow or stuck drainer
//! cannot delay the foreground producer or its I/O task. [`OrphanDrainers::stop`]
//! (called by the foreground's `close()`) stops them promptly: the data
//! stays on disk, no `.failed` is written, every lock is released.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use sf_core::config::Config;
use sf_core::errors::SenderError;
use sf_core::orphans::{DrainAction, DrainEnd, DrainScheduler, OwnSlots, Verdict};
use sf_core::Fsn;

use crate::fs::{
    has_failed_marker, recover_slot, write_failed_marker, FsError, FsOp, LockError, RefusedSlot,
    SlotLock,
};
use crate::sender::{Error, Sender, SenderBuilder};

/// What happened to one drainer (sf-client §20: the per-drainer listener).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainerEvent {
    /// The drainer took the slot's lock and recovered it; `published` is the
    /// highest FSN it must see acknowledged (`None`: nothing to send).
    Started {
        /// The orphan slot directory.
        slot: PathBuf,
        /// The highest recovered FSN.
        published: Option<Fsn>,
    },
    /// The slot's lock is held by a live sender, or the slot was marked
    /// `.failed` after the scan: skipped.
    Skipped {
        /// The orphan slot directory.
        slot: PathBuf,
        /// Why (names the holder).
        reason: String,
    },
    /// The acknowledged FSN advanced.
    Progress {
        /// The orphan slot directory.
        slot: PathBuf,
        /// The highest acknowledged FSN.
        acked: Fsn,
    },
    /// Everything recovered was acknowledged; the lock is released.
    Succeeded {
        /// The orphan slot directory.
        slot: PathBuf,
    },
    /// The drainer gave up and wrote `.failed` with `reason`; emitted while
    /// it still holds the slot lock (released right after).
    Failed {
        /// The orphan slot directory.
        slot: PathBuf,
        /// The reason, as written into `.failed`.
        reason: String,
    },
    /// The drainer stopped without finishing and without `.failed`: the
    /// foreground closed, or an error that is not a give-up (an I/O error
    /// opening the slot). The data stays on disk for the next scan.
    Stopped {
        /// The orphan slot directory.
        slot: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Listener for [`DrainerEvent`]s; called on the drainer's thread, so it
/// must be quick.
pub type DrainerListener = Arc<dyn Fn(DrainerEvent) + Send + Sync + 'static>;

/// The drainer counters of sf-client §20.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainerCounters {
    /// Drainers running now (`getActiveBackgroundDrainers`).
    pub active: u64,
    /// Drainers that exited after fully draining their slot
    /// (`getTotalBackgroundDrainersSucceeded`).
    pub succeeded: u64,
    /// Drainers that exited by writing `.failed`
    /// (`getTotalBackgroundDrainersFailed`).
    pub failed: u64,
}

/// Lists `<sf_dir>/*` and returns the sibling slot directories to drain,
/// sorted by name. A sibling whose listing fails is skipped with a WARN
/// (never drained on a guess); a failure to list `sf_dir` itself is an
/// error.
pub fn scan(sf_dir: &Path, own: &OwnSlots) -> Result<Vec<PathBuf>, FsError> {
    let mut scheduler = DrainScheduler::new(own.clone(), 1);
    let mut out: Vec<PathBuf> = feed(sf_dir, &mut scheduler)?
        .into_iter()
        .map(|name| sf_dir.join(name))
        .collect();
    out.sort();
    Ok(out)
}

/// Lists `<sf_dir>/*` into `scheduler`; returns the names it adopted. Only
/// directories with UTF-8 names are slots; a sibling whose listing fails
/// is skipped with a WARN.
fn feed(sf_dir: &Path, scheduler: &mut DrainScheduler) -> Result<Vec<String>, FsError> {
    let listing = |e| FsError::io(FsOp::List, sf_dir, e);
    let mut adopted = Vec::new();
    for entry in std::fs::read_dir(sf_dir).map_err(listing)? {
        let entry = entry.map_err(listing)?;
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {}
            _ => continue,
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let names = match std::fs::read_dir(&path).and_then(|rd| {
            rd.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<std::io::Result<Vec<String>>>()
        }) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(slot = %path.display(), "orphan scan: cannot list the slot, skipped: {e}");
                continue;
            }
        };
        if scheduler.handle_sibling(&name, names.iter().map(String::as_str)) == Verdict::Adopt {
            adopted.push(name);
        }
    }
    Ok(adopted)
}

/// State shared by the drainer threads and the owner.
struct DrainShared {
    config: Config,
    /// `<sf_dir>`: a slot named `n` is `<sf_dir>/n`.
    sf_dir: PathBuf,
    /// The policy; every decision is taken under this mutex, never I/O.
    scheduler: Mutex<DrainScheduler>,
    /// Set by [`OrphanDrainers::stop`]: running drainers close at once.
    stop: AtomicBool,
    listener: Option<DrainerListener>,
}

impl DrainShared {
    fn emit(&self, e: DrainerEvent) {
        if let Some(l) = &self.listener {
            l(e);
        }
    }

    fn scheduler(&self) -> MutexGuard<'_, DrainScheduler> {
        self.scheduler.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The background drainers of one foreground sender or pool.
pub struct OrphanDrainers {
    shared: Arc<DrainShared>,
    workers: Vec<JoinHandle<()>>,
}

impl core::fmt::Debug for OrphanDrainers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OrphanDrainers")
            .field("counters", &self.counters())
            .field("workers", &self.workers.len())
            .finish()
    }
}

/// How often a drainer that waits for acknowledgements checks whether its
/// owner asked it to stop (the ack wait itself ends on progress at once).
const STOP_CHECK: Duration = Duration::from_millis(50);

impl OrphanDrainers {
    /// Scans `config`'s `sf_dir` for orphans of `own` and starts up to
    /// `max_background_drainers` drainer threads over them. Without
    /// `sf_dir` nothing starts. A scan that cannot list `sf_dir` is logged
    /// and starts nothing: drain is best effort and never fails its owner.
    pub fn start(
        config: &Config,
        own: OwnSlots,
        listener: Option<DrainerListener>,
    ) -> OrphanDrainers {
        let max = config.storage().max_background_drainers as usize;
        let sf_dir = config.storage().sf_dir.as_deref().map(PathBuf::from);
        let mut scheduler = DrainScheduler::new(own, max);
        let scanned = match &sf_dir {
            None => Ok(Vec::new()),
            Some(dir) => feed(dir, &mut scheduler),
        };
        if let Err(e) = scanned {
            tracing::warn!("orphan scan failed, no drainers started: {e}");
            scheduler.stop();
        }
        let n = scheduler.queued().min(scheduler.max_drainers());
        let shared = Arc::new(DrainShared {
            config: config.clone(),
            sf_dir: sf_dir.unwrap_or_default(),
            scheduler: Mutex::new(scheduler),
            stop: AtomicBool::new(false),
            listener,
        });
        let mut drainers = OrphanDrainers {
            shared,
            workers: Vec::new(),
        };
        let spawned = (0..n).filter(|&i| {
            let s = Arc::clone(&drainers.shared);
            match std::thread::Builder::new()
                .name(format!("qwp-sf-drainer-{i}"))
                .spawn(move || worker(&s))
            {
                Ok(h) => {
                    drainers.workers.push(h);
                    true
                }
                Err(e) => {
                    tracing::warn!("cannot start an orphan drainer thread: {e}");
                    false
                }
            }
        });
        if spawned.count() == 0 && n > 0 {
            // Nobody will ever poll the queue: drop it, so the scheduler is
            // idle and its counters say nothing runs.
            drainers.shared.scheduler().stop();
        }
        drainers
    }

    /// The counters now.
    pub fn counters(&self) -> DrainerCounters {
        let c = self.shared.scheduler().counters();
        DrainerCounters {
            active: c.active,
            succeeded: c.succeeded,
            failed: c.failed,
        }
    }

    /// Waits until every candidate was handled (drained, skipped, failed
    /// or stopped). Returns at once after [`OrphanDrainers::stop`].
    pub fn join(&mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    /// Stops every drainer: a running one closes its sender without
    /// waiting (the data stays on disk, no `.failed`, the lock is
    /// released); queued candidates are dropped. Returns once all drainer
    /// threads ended.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.scheduler().stop();
        self.join();
    }
}

impl Drop for OrphanDrainers {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One drainer thread: drains slots while the scheduler hands them out.
/// The thread that re-queued a slot (`Retry`) is still in this loop, so a
/// re-queued slot is never left without a thread to run it.
fn worker(s: &Arc<DrainShared>) {
    loop {
        let Some(name) = s.scheduler().poll_start() else {
            return;
        };
        let slot = s.sf_dir.join(&name);
        // A panic (a listener is user code) must not strand the slot as
        // active with nobody to end it, nor drop the queue with the thread:
        // the slot ends as stopped (its sender or lock was released by the
        // unwinding) and this thread goes on.
        if catch_unwind(AssertUnwindSafe(|| run_slot(s, &name, &slot))).is_err() {
            tracing::error!(slot = %slot.display(), "orphan drainer panicked; the slot is left for the next scan");
            let mut sched = s.scheduler();
            // Whichever step it reached: still running (ended here), or
            // awaiting its `.failed` report (not written, as far as we
            // know). Both calls change nothing when they do not apply.
            sched.handle_end(&name, DrainEnd::Stopped);
            sched.mark_failed_done(&name, false);
        }
    }
}

/// Drains slot `name`, has the scheduler judge the ending, carries out its
/// action and emits the final event.
fn run_slot(s: &DrainShared, name: &str, slot: &Path) {
    let ended = if s.stop.load(Ordering::SeqCst) {
        Ended::Stopped("the owner closed before the drainer started".into())
    } else {
        drain_one(s, name, slot)
    };
    let action = s.scheduler().handle_end(name, ended.end());
    carry_out(s, name, slot, ended, action);
}

/// Logs the final event of a drainer and hands it to the listener. The
/// scheduler counted the end before, so a listener reads settled counters.
fn finish_event(s: &DrainShared, event: DrainerEvent) {
    match &event {
        DrainerEvent::Failed { slot, reason } => {
            tracing::error!(slot = %slot.display(), "orphan drainer gave up: {}", reason.trim_end());
        }
        DrainerEvent::Skipped { slot, reason } => {
            tracing::info!(slot = %slot.display(), "orphan slot skipped: {reason}");
        }
        DrainerEvent::Stopped { slot, reason } => {
            tracing::warn!(slot = %slot.display(), "orphan drainer stopped: {reason}");
        }
        DrainerEvent::Succeeded { .. }
        | DrainerEvent::Started { .. }
        | DrainerEvent::Progress { .. } => {}
    }
    s.emit(event);
}

/// How one drainer ended, with what it still holds for the action to come.
enum Ended {
    /// The slot lock is held by someone else (the text names the holder).
    LockHeld(String),
    /// With the lock taken, the slot turned out marked `.failed`.
    AlreadyFailed,
    /// Everything recovered was acknowledged; the sender closed.
    Drained,
    /// Recovery refused the slot; the lock is still held (inside), for a
    /// `.failed` written before anyone else can take the slot.
    Refused(Box<RefusedSlot>, String),
    /// The drainer's engine latched a terminal error; the sender is still
    /// open, so its slot lock is still held.
    Terminal(SenderError, Box<Sender>),
    /// Anything else: the data stays, no `.failed`.
    Stopped(String),
}

impl Ended {
    /// What the scheduler is told.
    fn end(&self) -> DrainEnd {
        match self {
            Ended::LockHeld(_) => DrainEnd::LockHeld,
            Ended::AlreadyFailed => DrainEnd::AlreadyFailed,
            Ended::Drained => DrainEnd::Drained,
            Ended::Refused(r, _) => DrainEnd::RecoveryRefused(r.error.clone()),
            Ended::Terminal(e, _) => DrainEnd::Terminal(e.clone()),
            Ended::Stopped(_) => DrainEnd::Stopped,
        }
    }
}

/// Carries out the scheduler's `action` for a drainer that ended as
/// `ended` and emits the final event. Whatever `ended` still holds (a
/// sender, a lock) is released only after the event: a listener that sees
/// `Failed` sees `.failed` written and the lock still held.
fn carry_out(s: &DrainShared, name: &str, slot: &Path, ended: Ended, action: DrainAction) {
    let slot_buf = slot.to_path_buf();
    let stopped = |reason: String| DrainerEvent::Stopped {
        slot: slot.to_path_buf(),
        reason,
    };
    match (ended, action) {
        (Ended::LockHeld(reason), _) => finish_event(
            s,
            DrainerEvent::Skipped {
                slot: slot_buf,
                reason,
            },
        ),
        (Ended::AlreadyFailed, _) => finish_event(
            s,
            DrainerEvent::Skipped {
                slot: slot_buf,
                reason: "marked .failed by another process after the scan".into(),
            },
        ),
        (Ended::Drained, _) => finish_event(s, DrainerEvent::Succeeded { slot: slot_buf }),
        (Ended::Stopped(reason), _) => finish_event(s, stopped(reason)),
        (Ended::Terminal(e, sender), DrainAction::MarkFailed { reason }) => {
            let text = failed_text(&reason);
            let written = sender.write_failed_marker(&text);
            s.scheduler()
                .mark_failed_done(name, matches!(written, Ok(true)));
            let event = match written {
                Ok(true) => DrainerEvent::Failed {
                    slot: slot_buf,
                    reason: text,
                },
                Ok(false) => stopped(format!("{e}; the lock was already released")),
                Err(w) => stopped(format!("{e}; cannot write .failed: {w}")),
            };
            finish_event(s, event);
            let _ = sender.close();
        }
        (Ended::Refused(refused, what), DrainAction::MarkFailed { reason }) => {
            // The lock recovery refused under is still held: `.failed`
            // exists before anyone else can lock the slot after us.
            let text = failed_text(&reason);
            let written = write_failed_marker(&refused.lock, &text);
            s.scheduler().mark_failed_done(name, written.is_ok());
            let event = match written {
                Ok(()) => DrainerEvent::Failed {
                    slot: slot_buf,
                    reason: text,
                },
                Err(we) => stopped(format!("{what}; cannot write .failed: {we}")),
            };
            finish_event(s, event);
            drop(refused);
        }
        (Ended::Refused(refused, what), DrainAction::Retry) => {
            drop(refused);
            finish_event(s, stopped(format!("{what}; transient, retried")));
        }
        (Ended::Refused(refused, what), DrainAction::Done) => {
            drop(refused);
            finish_event(
                s,
                stopped(format!(
                    "{what}; transient, left adoptable for the next scan"
                )),
            );
        }
        (Ended::Terminal(e, sender), DrainAction::Done | DrainAction::Retry) => {
            // The scheduler always gives a terminal error up; if it ever
            // does not, release without a mark.
            let _ = sender.close();
            finish_event(s, stopped(e.to_string()));
        }
    }
}

/// The text written into `.failed`: the scheduler's one-line reason, with
/// this process's PID for the operator.
fn failed_text(reason: &str) -> String {
    format!("qwp-sf (pid {}): {reason}\n", std::process::id())
}

/// Drains one slot and says how it ended; a terminal error keeps the
/// sender open (its lock held) for the `.failed` write.
fn drain_one(s: &DrainShared, name: &str, slot: &Path) -> Ended {
    let config = match s.config.for_orphan_drainer(name) {
        Ok(c) => c,
        Err(e) => return Ended::Stopped(e.to_string()),
    };
    // Step one: the lock (a slot deleted since the scan is not recreated),
    // then `.failed` again under it: another process may have given the
    // slot up after our scan, and its reason must stand.
    let lock = match SlotLock::acquire_existing_dir(slot) {
        Ok(lock) => lock,
        Err(LockError::Held { slot: _, holder }) => {
            return Ended::LockHeld(format!("the slot lock is held (holder={holder})"));
        }
        Err(e) => return Ended::Stopped(e.to_string()),
    };
    match has_failed_marker(slot) {
        Ok(false) => {}
        Ok(true) => return Ended::AlreadyFailed,
        Err(e) => return Ended::Stopped(format!("cannot check for .failed: {e}")),
    }
    // Step two: recovery, which hands the lock back when it refuses.
    let opened = match recover_slot(lock) {
        Ok(opened) => opened,
        Err(refused) => {
            let what = format!(
                "recovery of slot {} refused: {}",
                slot.display(),
                refused.error
            );
            return Ended::Refused(Box::new(refused), what);
        }
    };
    let mut builder = SenderBuilder::new(config).opened_slot(opened);
    if let Some(l) = s.listener.clone() {
        let p = slot.to_path_buf();
        builder = builder.on_progress(move |acked| {
            l(DrainerEvent::Progress {
                slot: p.clone(),
                acked,
            })
        });
    }
    let sender = match builder.build() {
        Ok(sender) => sender,
        Err(e) => return Ended::Stopped(e.to_string()),
    };
    let published = sender.counters().published_fsn;
    s.emit(DrainerEvent::Started {
        slot: slot.to_path_buf(),
        published,
    });
    let Some(target) = published else {
        return finish(sender);
    };
    loop {
        if s.stop.load(Ordering::SeqCst) {
            let _ = sender.close();
            return Ended::Stopped("the owner closed; the data stays on disk".into());
        }
        match sender.wait_acked(target, STOP_CHECK) {
            Ok(()) => {
                // A drained slot keeps its acknowledged active segment, so
                // the next scan adopts it again; only a watermark that
                // covers everything keeps that drain from replaying
                // acknowledged frames (S8). The close settles the owed
                // watermark write before it releases the lock (bounded by
                // the engine's CLOSE_WATERMARK_WAIT), so no wait here.
                return finish(sender);
            }
            Err(Error::AckTimeout { .. }) => continue,
            Err(Error::Terminal(e)) => return Ended::Terminal(e, Box::new(sender)),
            Err(e) => {
                let _ = sender.close();
                return Ended::Stopped(e.to_string());
            }
        }
    }
}

/// Closes a drained sender (releasing the lock).
fn finish(sender: Sender) -> Ended {
    match sender.close() {
        Ok(()) => Ended::Drained,
        Err(e) => Ended::Stopped(format!("close after drain: {e}")),
    }
}
