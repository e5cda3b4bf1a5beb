//! The sender's lifecycle (C2): open, draining for `close()`, settling the
//! owed `.ack-watermark` write, released.

use std::time::Duration;

use crate::storage::Storage;
use crate::Instant;

/// How long every `close()` waits, at least, for the `.ack-watermark` write
/// it owes once its drain is over (or was skipped), counted from the end of
/// the drain; a draining close also keeps waiting up to its own drain
/// deadline. So `close()` is bounded by
/// `max(close_flush_timeout, drain time + CLOSE_WATERMARK_WAIT)`: at most
/// `close_flush_timeout + CLOSE_WATERMARK_WAIT` on a stuck disk, and a close
/// that owes nothing releases at once.
///
/// Why a close waits at all: a restart seeds `ackedFsn` from the watermark
/// (S8), so a release before the last write lands replays every frame
/// acknowledged since the previous write. Two seconds is generous for one
/// 16-byte write (microseconds on a healthy disk) and short enough that a
/// close that skips its drain (orphan drainers, pool recovery) stays fast
/// when the disk is stuck.
pub const CLOSE_WATERMARK_WAIT: Duration = Duration::from_secs(2);

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
    /// The drain is over (or was skipped) and the connection is closed, so
    /// the acknowledged FSN no longer moves: wait for `.ack-watermark` to
    /// record it (S8), up to a deadline (W5).
    Settling(Settle),
    /// Released: outputs `Released` and `Closed` were queued.
    Released,
}

/// The watermark wait of a closing engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Settle {
    /// How the drain ended; reported by `Closed { drained }`.
    pub end: DrainEnd,
    /// The wait ends here even if the write never completes (W5).
    pub deadline: Instant,
    /// Failed watermark writes counted when the wait began: one more means
    /// the write this close waits for failed, and the wait ends rather than
    /// retrying past the close (the next open rewrites the watermark).
    pub failures_before: u64,
}

impl Settle {
    /// The wait for a drain that ended `end` at `now`, whose own deadline
    /// (the close time for a skipped drain) was `drain_deadline`.
    pub(crate) fn begin(
        storage: &Storage,
        end: DrainEnd,
        drain_deadline: Instant,
        now: Instant,
    ) -> Settle {
        Settle {
            end,
            deadline: drain_deadline.max(now.saturating_add(CLOSE_WATERMARK_WAIT)),
            failures_before: storage.failure_counts().watermark,
        }
    }

    /// Whether the wait is over at `now`: the watermark is written (or
    /// nothing was owed), its write failed, or the deadline passed.
    pub(crate) fn is_over(&self, storage: &Storage, now: Instant) -> bool {
        storage.ack_watermark_settled()
            || storage.failure_counts().watermark > self.failures_before
            || now >= self.deadline
    }
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
/// instant, and over a latched error: the data did get through. The wait
/// for `.ack-watermark` that follows every drain is [`Settle`]'s.
pub(crate) fn drain_end(
    storage: &Storage,
    halted: bool,
    deadline: Instant,
    now: Instant,
) -> Option<DrainEnd> {
    if fully_acked(storage) {
        Some(DrainEnd::Drained)
    } else if halted {
        Some(DrainEnd::Halted)
    } else if now >= deadline {
        Some(DrainEnd::TimedOut)
    } else {
        None
    }
}
