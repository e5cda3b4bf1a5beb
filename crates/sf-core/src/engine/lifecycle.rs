//! The sender's lifecycle (C2): open, draining for `close()`, released.

use crate::storage::Storage;
use crate::Instant;

/// Where `close()` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    /// Producer calls are accepted.
    Open,
    /// `close()` was called: wait until everything published is
    /// acknowledged, a terminal error is latched, or `deadline` passes (W5:
    /// never only on an event a quiet peer may not produce).
    Draining {
        /// `now + close_flush_timeout` at `close()`.
        deadline: Instant,
    },
    /// Released: outputs `Released` and `Closed` were queued.
    Released,
}

/// Why a drain ends now, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DrainEnd {
    /// Everything published is acknowledged.
    Drained,
    /// A terminal error is latched: nothing more will be acknowledged.
    Halted,
    /// The deadline passed with frames unacknowledged.
    TimedOut,
}

/// Whether every published frame is acknowledged (`acked >= published`;
/// vacuously true when nothing was ever published).
pub(crate) fn fully_acked(storage: &Storage) -> bool {
    match storage.published_fsn() {
        None => true,
        Some(p) => storage.acked_fsn().is_some_and(|a| a >= p),
    }
}

/// Decides whether the drain that ends at `deadline` is over at `now`.
/// Full acknowledgement wins over a deadline that passed at the same
/// instant: the data did get through. Once everything is acknowledged the
/// drain still waits (up to the deadline) for `.ack-watermark` to record it,
/// so that a restart does not replay what this life saw acknowledged; the
/// watermark write completes or fails on its own, so the wait ends (W5).
pub(crate) fn drain_end(
    storage: &Storage,
    halted: bool,
    deadline: Instant,
    now: Instant,
) -> Option<DrainEnd> {
    if fully_acked(storage) {
        if !storage.ack_watermark_settled() && now < deadline && !halted {
            return None;
        }
        Some(DrainEnd::Drained)
    } else if halted {
        Some(DrainEnd::Halted)
    } else if now >= deadline {
        Some(DrainEnd::TimedOut)
    } else {
        None
    }
}
