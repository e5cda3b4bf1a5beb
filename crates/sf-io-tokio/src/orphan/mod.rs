//! Orphan drain (sf-client §18.2, §5.2, §20): adopting sibling slots under
//! `sf_dir` that hold unacknowledged data nobody is sending.
//!
//! # Shape
//!
//! * [`scan`] lists `<sf_dir>/*` and keeps the directories that
//!   `sf_core::orphans::judge` adopts (not the scanner's own slots, at
//!   least one segment, no `.failed`). Lock state is not part of the scan.
//! * [`OrphanDrainers`] runs the drainers: up to `max_background_drainers`
//!   worker threads take candidates from one queue. A drainer is a plain
//!   [`Sender`] opened on the orphan slot with the foreground's
//!   configuration (`Config::for_orphan_drainer`: its own `sender_id`, no
//!   scan of its own, first connect retried in the background), so it has
//!   its own engine, connection, reconnect loop and host tracker, and the
//!   same I/O task as any sender — no second I/O loop.
//! * A drainer tries the slot lock by opening the sender (a held lock is
//!   skipped), waits until everything it recovered is acknowledged, closes
//!   (releasing the lock) and takes the next candidate.
//! * A drainer that gives up — a terminal error (reconnect budget spent,
//!   auth refused, HALT) or recovery refusing the slot (corruption) —
//!   writes `.failed` with the reason while it still holds the lock, then
//!   releases it.
//!
//! # Threads
//!
//! Drainers run on their own threads (each drainer sender also has its own
//! I/O thread), never on the foreground's runtime: a slow or stuck drainer
//! cannot delay the foreground producer or its I/O task. [`OrphanDrainers::stop`]
//! (called by the foreground's `close()`) stops them promptly: the data
//! stays on disk, no `.failed` is written, every lock is released.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use sf_core::config::Config;
use sf_core::orphans::{judge, OwnSlots, Verdict};
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
    let listing = |e| FsError::io(FsOp::List, sf_dir, e);
    let mut out = Vec::new();
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
        if judge(own, &name, names.iter().map(String::as_str)) == Verdict::Adopt {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// State shared by the drainer threads and the owner.
struct DrainShared {
    config: Config,
    queue: Mutex<VecDeque<PathBuf>>,
    stop: AtomicBool,
    active: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    listener: Option<DrainerListener>,
}

impl DrainShared {
    fn emit(&self, e: DrainerEvent) {
        if let Some(l) = &self.listener {
            l(e);
        }
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
        let shared = Arc::new(DrainShared {
            config: config.clone(),
            queue: Mutex::new(VecDeque::new()),
            stop: AtomicBool::new(false),
            active: AtomicU64::new(0),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            listener,
        });
        let mut drainers = OrphanDrainers {
            shared,
            workers: Vec::new(),
        };
        let Some(dir) = config.storage().sf_dir.as_deref() else {
            return drainers;
        };
        let candidates = match scan(Path::new(dir), &own) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("orphan scan of {dir} failed, no drainers started: {e}");
                return drainers;
            }
        };
        let n = candidates
            .len()
            .min(config.storage().max_background_drainers as usize);
        lock_queue(&drainers.shared).extend(candidates);
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
        DrainerCounters {
            active: self.shared.active.load(Ordering::SeqCst),
            succeeded: self.shared.succeeded.load(Ordering::SeqCst),
            failed: self.shared.failed.load(Ordering::SeqCst),
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
        lock_queue(&self.shared).clear();
        self.join();
    }
}

impl Drop for OrphanDrainers {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lock_queue(s: &DrainShared) -> std::sync::MutexGuard<'_, VecDeque<PathBuf>> {
    s.queue.lock().unwrap_or_else(|p| p.into_inner())
}

fn worker(s: &Arc<DrainShared>) {
    loop {
        if s.stop.load(Ordering::SeqCst) {
            return;
        }
        let Some(slot) = lock_queue(s).pop_front() else {
            return;
        };
        s.active.fetch_add(1, Ordering::SeqCst);
        let outcome = drain_one(s, &slot);
        match &outcome {
            DrainerEvent::Succeeded { .. } => {
                s.succeeded.fetch_add(1, Ordering::SeqCst);
            }
            DrainerEvent::Failed { slot, reason } => {
                s.failed.fetch_add(1, Ordering::SeqCst);
                tracing::error!(slot = %slot.display(), "orphan drainer gave up: {reason}");
            }
            DrainerEvent::Skipped { slot, reason } => {
                tracing::info!(slot = %slot.display(), "orphan slot skipped: {reason}");
            }
            DrainerEvent::Stopped { slot, reason } => {
                tracing::warn!(slot = %slot.display(), "orphan drainer stopped: {reason}");
            }
            DrainerEvent::Started { .. } | DrainerEvent::Progress { .. } => {}
        }
        // Counted down before the final event, so a listener that sees it
        // reads settled counters.
        s.active.fetch_sub(1, Ordering::SeqCst);
        s.emit(outcome);
    }
}

/// The text written into `.failed`.
fn failed_reason(what: &str) -> String {
    format!(
        "qwp-sf orphan drainer (pid {}) gave up: {what}\n",
        std::process::id()
    )
}

/// Drains one slot; returns the final event (not yet emitted).
fn drain_one(s: &Arc<DrainShared>, slot: &Path) -> DrainerEvent {
    let stopped = |reason: String| DrainerEvent::Stopped {
        slot: slot.to_path_buf(),
        reason,
    };
    let Some(name) = slot.file_name().and_then(|n| n.to_str()) else {
        return stopped("the slot name is not UTF-8".into());
    };
    let config = match s.config.for_orphan_drainer(name) {
        Ok(c) => c,
        Err(e) => return stopped(e.to_string()),
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
            return DrainerEvent::Skipped {
                slot: slot.to_path_buf(),
                reason: format!("the slot lock is held (holder={holder})"),
            };
        }
        Err(e @ Error::Slot(SlotOpenError::Recovery { .. })) => {
            // Recovery released the lock when it refused; take it again
            // so `.failed` exists before anyone else can lock the slot
            // after us. A slot someone locked meanwhile is theirs.
            return match SlotLock::acquire_dir(slot) {
                Ok(lock) => give_up_locked(slot, &lock, &e.to_string()),
                Err(le) => stopped(format!("{e}; not marked failed: {le}")),
            };
        }
        Err(e) => return stopped(e.to_string()),
    };
    let published = sender.counters().published_fsn;
    s.emit(DrainerEvent::Started {
        slot: slot.to_path_buf(),
        published,
    });
    let Some(target) = published else {
        return finish(sender, slot);
    };
    loop {
        if s.stop.load(Ordering::SeqCst) {
            let _ = sender.close();
            return stopped("the owner closed; the data stays on disk".into());
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
                return finish(sender, slot);
            }
            Err(Error::AckTimeout { .. }) => continue,
            Err(Error::Terminal(e)) => {
                let reason = failed_reason(&e.to_string());
                let written = sender.write_failed_marker(&reason);
                let _ = sender.close();
                return match written {
                    Ok(true) => DrainerEvent::Failed {
                        slot: slot.to_path_buf(),
                        reason,
                    },
                    Ok(false) => stopped(format!("{e}; the lock was already released")),
                    Err(w) => stopped(format!("{e}; cannot write .failed: {w}")),
                };
            }
            Err(e) => {
                let _ = sender.close();
                return stopped(e.to_string());
            }
        }
    }
}

/// Closes a drained sender (releasing the lock).
fn finish(sender: Sender, slot: &Path) -> DrainerEvent {
    match sender.close() {
        Ok(()) => DrainerEvent::Succeeded {
            slot: slot.to_path_buf(),
        },
        Err(e) => DrainerEvent::Stopped {
            slot: slot.to_path_buf(),
            reason: format!("close after drain: {e}"),
        },
    }
}

/// Writes `.failed` under `lock`, which the caller releases after.
fn give_up_locked(slot: &Path, lock: &SlotLock, what: &str) -> DrainerEvent {
    let reason = failed_reason(what);
    match write_failed_marker(lock, &reason) {
        Ok(()) => DrainerEvent::Failed {
            slot: slot.to_path_buf(),
            reason,
        },
        Err(e) => DrainerEvent::Stopped {
            slot: slot.to_path_buf(),
            reason: format!("{what}; cannot write .failed: {e}"),
        },
    }
}
