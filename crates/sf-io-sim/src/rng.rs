//! The simulator's only source of randomness: one seeded generator per run,
//! split into independent streams per component so that adding a draw in one
//! component (say, the disk) does not shift every later draw of another (the
//! network). That keeps seeds comparable while the fault model grows.

use sf_core::backoff::{JitterSource, SplitMix64};

/// A seeded, deterministic random stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimRng {
    inner: SplitMix64,
}

impl SimRng {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng {
            inner: SplitMix64::new(seed),
        }
    }

    /// An independent stream derived from this one and a `label` (a component
    /// name), consuming one draw of this stream.
    pub fn fork(&mut self, label: &str) -> SimRng {
        // FNV-1a of the label keeps streams for different components apart
        // even when they are forked in the same order from the same parent.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in label.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        SimRng::new(self.next_u64() ^ h)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A uniform value in `[0, bound)`; `0` when `bound` is 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.inner.below(bound)
    }

    /// A uniform value in `[lo, hi]` (inclusive); `lo` when `hi <= lo`.
    pub fn range_inclusive(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.below(hi - lo + 1)
    }

    /// `true` with probability `per_million / 1_000_000`. Rates are integers
    /// so that a run never depends on floating-point rounding.
    pub fn chance(&mut self, per_million: u32) -> bool {
        per_million > 0 && self.below(1_000_000) < u64::from(per_million)
    }

    /// `true` or `false` with equal probability.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A uniformly chosen element of `items`, `None` when it is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        let i = self.below(items.len() as u64) as usize;
        items.get(i)
    }
}

impl JitterSource for SimRng {
    fn below(&mut self, bound: u64) -> u64 {
        self.inner.below(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d1_same_seed_same_stream() {
        let mut a = SimRng::new(42);
        let mut b = SimRng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn forks_with_different_labels_differ() {
        let mut a = SimRng::new(1);
        let mut b = SimRng::new(1);
        let mut disk = a.fork("disk");
        let mut net = b.fork("net");
        assert_ne!(disk.next_u64(), net.next_u64());
    }

    #[test]
    fn range_and_chance_stay_in_bounds() {
        let mut r = SimRng::new(9);
        for _ in 0..1000 {
            let v = r.range_inclusive(3, 7);
            assert!((3..=7).contains(&v));
        }
        assert!(!(0..1000).any(|_| r.chance(0)));
        assert!((0..1000).all(|_| r.chance(1_000_000)));
        assert_eq!(r.pick::<u8>(&[]), None);
    }
}
