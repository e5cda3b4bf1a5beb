//! State shared by the producer (the `Sender` methods) and the I/O task:
//! the engine and the segment buffers behind one mutex, plus the wake-ups.
//!
//! Why one mutex: the engine's producer calls (`begin_append`,
//! `commit_append`, `flush`) and its I/O inputs mutate the same value, and
//! the frame bytes are written into the same segment buffers the I/O task
//! reads for sending. The producer holds the lock for one placement, one
//! memcpy + CRC and one commit; it never waits for the I/O task to append.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use sf_core::engine::Engine;
use sf_core::errors::SenderError;
use sf_core::ring::SegmentName;
use sf_core::storage::IoFailure;
use sf_core::Instant;
use tokio::sync::{watch, Notify};

use crate::fs::{FsError, MemorySegment, SegmentFile, SegmentReader, SegmentWriter, SlotLock};

/// The monotonic clock the engine's `Instant`s are read from: nanoseconds
/// since the sender was built.
///
/// Read through tokio's clock, which is the OS monotonic clock except on a
/// runtime whose time is paused or simulated (tokio `test-util`, turmoil):
/// there the engine's deadlines follow the same virtual time as the I/O
/// task's timers, instead of a wall clock that never reaches them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            origin: tokio::time::Instant::now(),
        }
    }

    /// Now on the engine's clock.
    pub(crate) fn now(&self) -> Instant {
        Instant(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// The wall-clock instant of an engine instant (for timers and waits).
    /// A deadline too far to represent (a saturated engine instant) maps to
    /// a year from now: far enough to mean "never", without overflowing.
    pub(crate) fn to_std(self, at: Instant) -> std::time::Instant {
        self.origin
            .into_std()
            .checked_add(Duration::from_nanos(at.as_nanos()))
            .unwrap_or_else(|| {
                tokio::time::Instant::now().into_std() + Duration::from_secs(365 * 86_400)
            })
    }

    /// [`Clock::to_std`] on tokio's clock, for async timers (which follow
    /// a paused or simulated tokio clock, as the engine's `now` does).
    pub(crate) fn to_tokio(self, at: Instant) -> tokio::time::Instant {
        self.origin
            .checked_add(Duration::from_nanos(at.as_nanos()))
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(365 * 86_400))
    }
}

/// One segment, split so the producer writes above the published end
/// while the I/O task reads, syncs and unlinks below it without the lock
/// (an fsync never stalls an append).
#[derive(Debug)]
pub(crate) struct Segment {
    /// The producer's half (used under the lock).
    pub writer: SegmentWriter,
    /// A reader; more are cloned off the writer for work done off the lock.
    pub reader: SegmentReader,
}

impl Segment {
    /// A mapped file with `published` bytes already published (0 for a
    /// spare, the recovered append offset for a log segment).
    pub(crate) fn file(f: SegmentFile, published: u64) -> Result<Segment, FsError> {
        let (writer, reader) = f.into_split(published)?;
        Ok(Segment { writer, reader })
    }

    /// A fresh memory segment.
    pub(crate) fn memory(m: MemorySegment) -> Result<Segment, FsError> {
        let (writer, reader) = m.into_split(0)?;
        Ok(Segment { writer, reader })
    }
}

/// The engine's failure vocabulary for an adapter error.
pub(crate) fn io_failure(e: &FsError) -> IoFailure {
    if e.is_no_space() {
        IoFailure::NoSpace
    } else {
        IoFailure::Io {
            os_code: e.os_code(),
        }
    }
}

/// How `close()` ended, as the engine reported it.
#[derive(Debug, Clone)]
pub(crate) struct CloseOutcome {
    /// The latched terminal error, if any (C2).
    pub result: Result<(), SenderError>,
    /// Whether everything published was acknowledged before release.
    pub drained: bool,
}

/// Everything behind the mutex.
#[derive(Debug)]
pub(crate) struct Inner {
    pub engine: Engine,
    pub segments: BTreeMap<SegmentName, Segment>,
    /// The slot lock (SF mode) until the engine releases the slot.
    pub lock: Option<SlotLock>,
    /// Set once the engine said `Closed`, or the I/O task ended without it.
    pub closed: Option<CloseOutcome>,
    /// Set when the I/O task stopped for a reason other than `close()`.
    pub driver_failure: Option<String>,
}

/// The shared half of a sender.
#[derive(Debug)]
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    /// Blocking waiters (flush, wait_acked, append at the cap, close).
    cond: Condvar,
    /// Async waiters: bumped after every change a waiter may care about.
    epoch: watch::Sender<u64>,
    /// Wakes the I/O task: a frame was committed, a batch closed, a wait
    /// started, `close()` was called.
    pub wake_driver: Notify,
    pub clock: Clock,
    /// Set once a terminal error is latched or the sender closed, so the
    /// per-row check is one relaxed load instead of a lock.
    pub stopped: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub(crate) fn new(inner: Inner, clock: Clock) -> Shared {
        Shared {
            inner: Mutex::new(inner),
            cond: Condvar::new(),
            epoch: watch::channel(0).0,
            wake_driver: Notify::new(),
            clock,
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Locks the state. A panic while the lock was held (a bug) poisons it;
    /// the state is still the engine's own consistent value between calls,
    /// so the lock is taken anyway rather than panicking every later call.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits on the condition variable for at most `timeout`.
    pub(crate) fn wait_timeout<'a>(
        &self,
        guard: MutexGuard<'a, Inner>,
        timeout: Duration,
    ) -> MutexGuard<'a, Inner> {
        match self.cond.wait_timeout(guard, timeout) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    /// Waits on the condition variable with no bound (only where another
    /// bound exists, e.g. the engine's close deadline).
    pub(crate) fn wait<'a>(&self, guard: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        self.cond.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// Wakes every waiter, blocking and async.
    pub(crate) fn notify_waiters(&self) {
        self.mark_stopped(&self.lock());
        self.cond.notify_all();
        self.epoch.send_modify(|e| *e = e.wrapping_add(1));
    }

    /// Raises [`Shared::stopped`] once a terminal error is latched or the
    /// sender closed.
    pub(crate) fn mark_stopped(&self, g: &Inner) {
        if g.engine.last_terminal_error().is_some() || g.closed.is_some() {
            self.stopped
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// A receiver for async waits.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_instants_map_onto_the_monotonic_clock_even_when_saturated() {
        let c = Clock::new();
        let far = c.to_std(Instant(u64::MAX));
        assert!(far > std::time::Instant::now());
        assert!(c.to_std(c.now()) <= std::time::Instant::now());
    }
}
