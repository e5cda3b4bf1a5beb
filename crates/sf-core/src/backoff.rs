//! Reconnect backoff (failover.md §3): `ComputeBackoff`, `NextBackoffOrGiveUp`,
//! equal jitter from an injected random source, and the per-outage state.
//!
//! Everything here is pure: randomness comes from a [`JitterSource`] the
//! caller owns (the crate ships the seeded [`SplitMix64`]), and time comes in
//! as [`Instant`]/[`Duration`] arguments. Jitter is drawn at nanosecond
//! granularity; the reference formulas draw whole milliseconds, which gives
//! the same bounds `[base, 2·base)`.

use core::time::Duration;

use crate::time::Instant;

/// A source of uniform random numbers for jitter.
pub trait JitterSource {
    /// A uniformly distributed value in `[0, bound)`; `0` when `bound` is 0.
    fn below(&mut self, bound: u64) -> u64;
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny seeded generator, enough
/// for jitter and fully deterministic for the simulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl JitterSource for SplitMix64 {
    /// Lemire's multiply-and-reject: unbiased, usually without a division.
    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(bound);
            // The low half decides rejection; the high half is the result.
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }
}

/// Why a backoff configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackoffConfigError {
    /// A zero initial or maximum backoff would make the loop spin without
    /// sleeping.
    #[error("reconnect backoff must be positive (initial {initial:?}, max {max:?})")]
    ZeroBackoff {
        /// Initial backoff given.
        initial: Duration,
        /// Maximum backoff given.
        max: Duration,
    },
}

/// Ingress backoff knobs (`reconnect_initial_backoff_millis`,
/// `reconnect_max_backoff_millis`, `reconnect_max_duration_millis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    initial: Duration,
    max: Duration,
    max_outage: Duration,
}

impl BackoffConfig {
    /// The spec's ingress defaults: 100 ms, 5 s, 300 s.
    pub const INGRESS_DEFAULT: BackoffConfig = BackoffConfig {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(5_000),
        max_outage: Duration::from_millis(300_000),
    };

    /// A configuration; `initial` and `max` must be positive. An `initial`
    /// above `max` is allowed and clamped to `max`, as `ComputeBackoff` does.
    /// A zero `max_outage` gives up at the first round boundary.
    pub fn new(
        initial: Duration,
        max: Duration,
        max_outage: Duration,
    ) -> Result<BackoffConfig, BackoffConfigError> {
        if initial.is_zero() || max.is_zero() {
            return Err(BackoffConfigError::ZeroBackoff { initial, max });
        }
        Ok(BackoffConfig {
            initial,
            max,
            max_outage,
        })
    }

    /// The first backoff base.
    pub fn initial(&self) -> Duration {
        self.initial
    }

    /// The cap on the backoff base (not on the jittered sleep).
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The per-outage budget.
    pub fn max_outage(&self) -> Duration {
        self.max_outage
    }
}

impl Default for BackoffConfig {
    fn default() -> BackoffConfig {
        BackoffConfig::INGRESS_DEFAULT
    }
}

/// The backoff base for a 0-based `attempt`, before jitter: `initial`
/// doubled `attempt` times, saturating at `max` as soon as the base exceeds
/// `max / 2` (so doubling can never overflow), and clamped to `max`.
pub fn compute_backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let mut base = initial;
    for _ in 0..attempt {
        // A zero base never grows; stop instead of counting to `attempt`.
        if base >= max || base.is_zero() {
            break;
        }
        if base > max / 2 {
            base = max;
            break;
        }
        base *= 2;
    }
    base.min(max)
}

/// Equal jitter: `base + uniform(base)`, in `[base, 2·base)`; not clamped to
/// the maximum backoff. Bases beyond `u64::MAX` nanoseconds (584 years) draw
/// their jitter from that range.
pub fn equal_jitter(base: Duration, jitter: &mut impl JitterSource) -> Duration {
    let nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
    base.saturating_add(Duration::from_nanos(jitter.below(nanos)))
}

/// The outcome of [`next_backoff_or_give_up`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffDecision {
    /// Sleep this long, then try again. Never more than the remaining budget.
    Sleep(Duration),
    /// The outage budget is spent.
    GiveUp,
}

/// `NextBackoffOrGiveUp`: the jittered sleep for `attempt`, clamped to what
/// is left of the outage budget after `elapsed`, or [`BackoffDecision::GiveUp`]
/// when `elapsed` exceeds the budget or nothing of it remains.
pub fn next_backoff_or_give_up(
    attempt: u32,
    elapsed: Duration,
    config: &BackoffConfig,
    jitter: &mut impl JitterSource,
) -> BackoffDecision {
    if elapsed > config.max_outage {
        return BackoffDecision::GiveUp;
    }
    let sleep = equal_jitter(compute_backoff(attempt, config.initial, config.max), jitter);
    let remaining = config.max_outage - elapsed;
    if sleep > remaining {
        if remaining.is_zero() {
            BackoffDecision::GiveUp
        } else {
            BackoffDecision::Sleep(remaining)
        }
    } else {
        BackoffDecision::Sleep(sleep)
    }
}

/// The per-outage state `(attempt, outage start)` a reconnect loop owns.
///
/// The outage clock starts at the first failure and, like `attempt`, resets
/// on a successful connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutageState {
    attempt: u32,
    started_at: Option<Instant>,
}

impl OutageState {
    /// No outage in progress.
    pub fn new() -> OutageState {
        OutageState::default()
    }

    /// Backoffs consumed in this outage (since the last reset).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When the first failure of the current outage was observed.
    pub fn started_at(&self) -> Option<Instant> {
        self.started_at
    }

    /// Time since the outage started, zero when there is none.
    pub fn elapsed(&self, now: Instant) -> Duration {
        self.started_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t))
    }

    /// What is left of `config`'s budget at `now`.
    pub fn remaining(&self, now: Instant, config: &BackoffConfig) -> Duration {
        config.max_outage.saturating_sub(self.elapsed(now))
    }

    /// Records a failure: starts the outage clock unless it runs already.
    pub fn record_failure(&mut self, now: Instant) {
        self.started_at.get_or_insert(now);
    }

    /// Counts one consumed backoff.
    pub fn consume_backoff(&mut self) {
        self.attempt = self.attempt.saturating_add(1);
    }

    /// Resets the doubling only (role rejects); the clock keeps running.
    pub fn reset_attempt(&mut self) {
        self.attempt = 0;
    }

    /// Ends the outage (successful connect): attempt and clock reset.
    pub fn reset(&mut self) {
        *self = OutageState::default();
    }

    /// [`next_backoff_or_give_up`] for this outage at `now`.
    pub fn next_backoff(
        &self,
        now: Instant,
        config: &BackoffConfig,
        jitter: &mut impl JitterSource,
    ) -> BackoffDecision {
        next_backoff_or_give_up(self.attempt, self.elapsed(now), config, jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn brief_14_16_ingress_bases_double_then_saturate() {
        let want = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000];
        for (attempt, w) in want.iter().enumerate() {
            let a = u32::try_from(attempt).unwrap();
            assert_eq!(compute_backoff(a, ms(100), ms(5000)), ms(*w), "attempt {a}");
        }
        assert_eq!(compute_backoff(u32::MAX, ms(100), ms(5000)), ms(5000));
    }

    #[test]
    fn brief_14_16_egress_bases_double_then_saturate() {
        let want = [50, 100, 200, 400, 800, 1000, 1000];
        for (attempt, w) in want.iter().enumerate() {
            let a = u32::try_from(attempt).unwrap();
            assert_eq!(compute_backoff(a, ms(50), ms(1000)), ms(*w), "attempt {a}");
        }
    }

    #[test]
    fn saturation_before_doubling_cannot_overflow() {
        let max = Duration::MAX;
        let initial = max / 2 + Duration::from_nanos(1);
        assert_eq!(compute_backoff(1, initial, max), max);
        assert_eq!(compute_backoff(u32::MAX, Duration::from_nanos(1), max), max);
        // Jitter of a saturated, enormous base does not overflow either.
        let mut rng = SplitMix64::new(1);
        assert_eq!(equal_jitter(max, &mut rng), max);
    }

    #[test]
    fn initial_above_max_is_clamped_and_zero_base_terminates() {
        assert_eq!(compute_backoff(0, ms(9000), ms(5000)), ms(5000));
        assert_eq!(
            compute_backoff(u32::MAX, Duration::ZERO, ms(5000)),
            Duration::ZERO
        );
    }

    #[test]
    fn brief_14_16_equal_jitter_stays_in_b_2b_and_covers_it() {
        let mut rng = SplitMix64::new(0xfeed);
        for base in [ms(100), ms(5000), Duration::from_nanos(3)] {
            let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
            for _ in 0..20_000 {
                let s = equal_jitter(base, &mut rng);
                assert!(
                    s >= base && s < base * 2,
                    "{s:?} outside [{base:?}, 2·{base:?})"
                );
                lo = lo.min(s);
                hi = hi.max(s);
            }
            // Both ends of the interval are reached (not a constant draw).
            assert!(lo < base + base / 50 + Duration::from_nanos(1), "{lo:?}");
            assert!(
                hi + base / 50 + Duration::from_nanos(1) >= base * 2,
                "{hi:?}"
            );
        }
    }

    #[test]
    fn saturated_jitter_lands_in_max_2max_not_clamped() {
        let mut rng = SplitMix64::new(3);
        let c = BackoffConfig::INGRESS_DEFAULT;
        let mut above_max = false;
        for _ in 0..1000 {
            match next_backoff_or_give_up(20, Duration::ZERO, &c, &mut rng) {
                BackoffDecision::Sleep(s) => {
                    assert!(s >= ms(5000) && s < ms(10_000));
                    above_max |= s > ms(5000);
                }
                BackoffDecision::GiveUp => panic!("budget not spent"),
            }
        }
        assert!(above_max);
    }

    #[test]
    fn brief_14_17_sleep_is_clamped_to_the_remaining_budget() {
        let c = BackoffConfig::INGRESS_DEFAULT;
        let mut rng = SplitMix64::new(9);
        for attempt in [0, 3, 10] {
            assert_eq!(
                next_backoff_or_give_up(attempt, ms(299_950), &c, &mut rng),
                BackoffDecision::Sleep(ms(50))
            );
            assert_eq!(
                next_backoff_or_give_up(attempt, ms(300_000), &c, &mut rng),
                BackoffDecision::GiveUp
            );
            assert_eq!(
                next_backoff_or_give_up(attempt, ms(300_001), &c, &mut rng),
                BackoffDecision::GiveUp
            );
        }
        // Below the clamp the jittered value comes through unchanged.
        match next_backoff_or_give_up(0, ms(1000), &c, &mut rng) {
            BackoffDecision::Sleep(s) => assert!(s >= ms(100) && s < ms(200)),
            BackoffDecision::GiveUp => panic!("budget not spent"),
        }
    }

    #[test]
    fn outage_state_starts_at_first_failure_and_resets_on_success() {
        let mut o = OutageState::new();
        assert_eq!(o.elapsed(Instant(50)), Duration::ZERO);
        o.record_failure(Instant(10));
        o.record_failure(Instant(20));
        assert_eq!(o.started_at(), Some(Instant(10)));
        assert_eq!(o.elapsed(Instant(25)), Duration::from_nanos(15));
        o.consume_backoff();
        o.consume_backoff();
        assert_eq!(o.attempt(), 2);
        o.reset_attempt();
        assert_eq!((o.attempt(), o.started_at()), (0, Some(Instant(10))));
        o.consume_backoff();
        o.reset();
        assert_eq!(o, OutageState::new());
    }

    #[test]
    fn zero_backoff_config_is_refused() {
        assert!(BackoffConfig::new(Duration::ZERO, ms(1), ms(1)).is_err());
        assert!(BackoffConfig::new(ms(1), Duration::ZERO, ms(1)).is_err());
        assert!(BackoffConfig::new(ms(1), ms(1), Duration::ZERO).is_ok());
        assert_eq!(BackoffConfig::default(), BackoffConfig::INGRESS_DEFAULT);
    }

    #[test]
    fn splitmix64_matches_reference_output_and_below_is_bounded() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut r = SplitMix64::new(42);
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
        for bound in [2u64, 3, 7, 1000, u64::MAX] {
            for _ in 0..1000 {
                assert!(r.below(bound) < bound);
            }
        }
    }
}
