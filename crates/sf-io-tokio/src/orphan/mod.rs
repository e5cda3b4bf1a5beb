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
//! * A drainer tries the slot lock by opening the sender, waits until
//!   everything it recovered is acknowledged, closes (releasing the lock)
//!   and reports how it ended (`DrainEnd`) while it still holds whatever it
//!   holds. The scheduler answers with a `DrainAction`: `MarkFailed` (a
//!   terminal engine error, or a permanent recovery refusal) writes
//!   `.failed` while the lock is held (re-taken after a refusal, which
//!   released it), then releases it; `Retry` (a transient refusal such as
//!   a listing or read error) leaves the slot adoptable and re-queued.
//!
//! # Threads
//!
//! Drainers run on their own threads (each drainer sender also has its own
//! I/O thread), never on the foreground's runtime: a slow or stuck drainer
//! cannot delay the foreground producer or its I/O task. [`OrphanDrainers::stop`]
//! (called by the foreground's `close()`) stops them promptly: the data
//! stays on disk, no `.failed` is written, every lock is released.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use sf_core::config::Config;
use sf_core::errors::SenderError;
use sf_core::orphans::{DrainAction, DrainEnd, DrainScheduler, OwnSlots, Verdict};
use sf_core::recovery::RecoveryError;
use sf_core::Fsn;

use crate::fs::{write_failed_marker, FsError, FsOp, LockError, SlotLock, SlotOpenError};
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
    /// The slot's lock is held by a live sender: skipped.
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
    /// The drainer gave up and wrote `.failed` with `reason` before
    /// releasing the lock.
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

/// How long a drainer that finished waits for the `.ack-watermark` to cover
/// everything before it releases the slot.
const WATERMARK_WAIT: Duration = Duration::from_secs(2);

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
        for i in 0..n {
            let s = Arc::clone(&drainers.shared);
            match std::thread::Builder::new()
                .name(format!("qwp-sf-drainer-{i}"))
                .spawn(move || worker(&s))
            {
                Ok(h) => drainers.workers.push(h),
                Err(e) => tracing::warn!("cannot start an orphan drainer thread: {e}"),
            }
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
        let ended = if s.stop.load(Ordering::SeqCst) {
            Ended::Stopped("the owner closed before the drainer started".into())
        } else {
            drain_one(s, &name, &slot)
        };
        let action = s.scheduler().handle_end(&name, ended.end());
        let event = carry_out(s, &name, &slot, ended, action);
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
        // The scheduler counted the end before the final event, so a
        // listener that sees it reads settled counters.
        s.emit(event);
    }
}

/// How one drainer ended, with what it still holds for the action to come.
enum Ended {
    /// The slot lock is held by someone else (the text names the holder).
    LockHeld(String),
    /// Everything recovered was acknowledged; the sender closed.
    Drained,
    /// Recovery refused the slot (and released the lock).
    Refused(RecoveryError, String),
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
            Ended::Drained => DrainEnd::Drained,
            Ended::Refused(e, _) => DrainEnd::RecoveryRefused(e.clone()),
            Ended::Terminal(e, _) => DrainEnd::Terminal(e.clone()),
            Ended::Stopped(_) => DrainEnd::Stopped,
        }
    }
}

/// Carries out the scheduler's `action` for a drainer that ended as
/// `ended`; returns the final event (not yet emitted).
fn carry_out(
    s: &DrainShared,
    name: &str,
    slot: &Path,
    ended: Ended,
    action: DrainAction,
) -> DrainerEvent {
    let slot_buf = slot.to_path_buf();
    let stopped = |reason: String| DrainerEvent::Stopped {
        slot: slot.to_path_buf(),
        reason,
    };
    match (ended, action) {
        (Ended::LockHeld(reason), _) => DrainerEvent::Skipped {
            slot: slot_buf,
            reason,
        },
        (Ended::Drained, _) => DrainerEvent::Succeeded { slot: slot_buf },
        (Ended::Stopped(reason), _) => stopped(reason),
        (Ended::Terminal(e, sender), DrainAction::MarkFailed { reason }) => {
            let text = failed_text(&reason);
            let written = sender.write_failed_marker(&text);
            let _ = sender.close();
            match written {
                Ok(true) => DrainerEvent::Failed {
                    slot: slot_buf,
                    reason: text,
                },
                Ok(false) => {
                    s.scheduler().mark_failed_unwritten(name);
                    stopped(format!("{e}; the lock was already released"))
                }
                Err(w) => {
                    s.scheduler().mark_failed_unwritten(name);
                    stopped(format!("{e}; cannot write .failed: {w}"))
                }
            }
        }
        (Ended::Refused(_, what), DrainAction::MarkFailed { reason }) => {
            // Recovery released the lock when it refused; take it again
            // so `.failed` exists before anyone else can lock the slot
            // after us. A slot someone locked meanwhile is theirs.
            let text = failed_text(&reason);
            let marked = SlotLock::acquire_dir(slot)
                .map_err(|le| format!("not marked failed: {le}"))
                .and_then(|lock| {
                    write_failed_marker(&lock, &text)
                        .map_err(|we| format!("cannot write .failed: {we}"))
                });
            match marked {
                Ok(()) => DrainerEvent::Failed {
                    slot: slot_buf,
                    reason: text,
                },
                Err(why) => {
                    s.scheduler().mark_failed_unwritten(name);
                    stopped(format!("{what}; {why}"))
                }
            }
        }
        (Ended::Refused(_, what), DrainAction::Retry) => {
            stopped(format!("{what}; transient, retried"))
        }
        (Ended::Refused(_, what), DrainAction::Done) => stopped(format!(
            "{what}; transient, left adoptable for the next scan"
        )),
        (Ended::Terminal(e, sender), DrainAction::Done | DrainAction::Retry) => {
            // The scheduler always gives a terminal error up; if it ever
            // does not, release without a mark.
            let _ = sender.close();
            stopped(e.to_string())
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
    let mut builder = SenderBuilder::new(config);
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
        Err(Error::Slot(SlotOpenError::Lock(LockError::Held { slot: _, holder }))) => {
            return Ended::LockHeld(format!("the slot lock is held (holder={holder})"));
        }
        Err(e @ Error::Slot(SlotOpenError::Recovery { .. })) => {
            let what = e.to_string();
            return match e {
                Error::Slot(SlotOpenError::Recovery { source, .. }) => Ended::Refused(source, what),
                _ => Ended::Stopped(what),
            };
        }
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
                // acknowledged frames (S8). A drainer closes without a
                // drain wait (so that its owner's close stops it at once),
                // and a close that skips the drain does not wait for the
                // last watermark write, so wait for it here.
                if !sender.wait_watermark(target, WATERMARK_WAIT) {
                    tracing::warn!(slot = %slot.display(), "orphan drainer: the ack watermark did not reach FSN {} before release; a later drain may replay acknowledged frames", target.get());
                }
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
