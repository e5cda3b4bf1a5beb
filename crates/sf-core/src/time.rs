//! The core's notion of time: a caller-supplied instant.
//!
//! The core never reads a clock. Every input carries `now`, an [`Instant`] on
//! a clock the caller defines (monotonic wall time in the tokio adapter,
//! virtual time in the simulator). Durations are [`core::time::Duration`].

use core::time::Duration;

/// Nanoseconds on the caller's monotonic clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    /// The origin of the caller's clock.
    pub const ZERO: Instant = Instant(0);

    /// Nanoseconds since the clock's origin.
    pub fn as_nanos(self) -> u64 {
        self.0
    }

    /// This instant plus `d`, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Instant {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_arithmetic() {
        let t = Instant(10);
        assert_eq!(t.saturating_add(Duration::from_nanos(5)), Instant(15));
        assert_eq!(
            Instant(u64::MAX - 1).saturating_add(Duration::MAX),
            Instant(u64::MAX)
        );
        assert_eq!(Instant(3).saturating_duration_since(t), Duration::ZERO);
        assert_eq!(
            t.saturating_duration_since(Instant(4)),
            Duration::from_nanos(6)
        );
    }
}
