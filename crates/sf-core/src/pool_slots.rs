//! The sender pool's slot-index allocator (DESIGN §6 items 17–18).
//!
//! Every pooled store-and-forward sender owns slot `<sender_id>-<index>`
//! with `index` in `[0, max)`. The allocator is the pure bookkeeping of
//! those indices:
//!
//! * [`SlotAllocator::reserve`] hands out the **lowest** free index, so a
//!   restarted pool re-adopts the same directories (and their data) in the
//!   same order (item 17: never one shared slot);
//! * [`SlotAllocator::release`] returns an index only once its sender has
//!   *released the slot lock*; the caller proves that by probing the lock;
//! * [`SlotAllocator::retire`] takes an index whose lock is still held after
//!   close out of circulation for good: the capacity shrinks instead of a
//!   second sender colliding on the lock (item 18).
//!
//! No I/O here: the pool probes the lock and tells the allocator the result.

use std::collections::BTreeSet;

use thiserror::Error;

/// The index of a pooled slot: `<sender_id>-<index>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotIndex(u32);

impl SlotIndex {
    /// The index `i` (whether it is in range is the allocator's business).
    pub const fn from_raw(i: u32) -> SlotIndex {
        SlotIndex(i)
    }

    /// The raw index.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl core::fmt::Display for SlotIndex {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The slot id of pooled index `index` for base sender id `base`:
/// `<base>-<index>`, the index in canonical decimal (no sign, no leading
/// zero). The orphan scan recognises exactly this spelling as managed.
pub fn pooled_sender_id(base: &str, index: SlotIndex) -> String {
    format!("{base}-{}", index.0)
}

/// A release or retirement named an index that is not lent out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SlotIndexError {
    /// The index is not currently reserved (double release, or never
    /// reserved).
    #[error("slot index {0} is not in use")]
    NotInUse(SlotIndex),
}

/// Lowest-free-first allocator over `[0, max)` with retirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotAllocator {
    max: u32,
    free: BTreeSet<u32>,
    in_use: BTreeSet<u32>,
    retired: BTreeSet<u32>,
}

impl SlotAllocator {
    /// An allocator with every index in `[0, max)` free.
    pub fn new(max: u32) -> SlotAllocator {
        SlotAllocator {
            max,
            free: (0..max).collect(),
            in_use: BTreeSet::new(),
            retired: BTreeSet::new(),
        }
    }

    /// The configured maximum (exclusive upper bound of the indices).
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Reserves the lowest free index, or `None` when every index is in
    /// use or retired.
    pub fn reserve(&mut self) -> Option<SlotIndex> {
        let i = self.free.pop_first()?;
        self.in_use.insert(i);
        Some(SlotIndex(i))
    }

    /// Reserves `index` itself if it is free (construction-time recovery of
    /// a specific slot); `false` when it is in use, retired or out of range.
    pub fn reserve_exact(&mut self, index: SlotIndex) -> bool {
        if self.free.remove(&index.0) {
            self.in_use.insert(index.0);
            true
        } else {
            false
        }
    }

    /// Returns a reserved index to the free set. Call it only after the
    /// sender that used it released the slot lock (or never took it: a
    /// failed build).
    pub fn release(&mut self, index: SlotIndex) -> Result<(), SlotIndexError> {
        if !self.in_use.remove(&index.0) {
            return Err(SlotIndexError::NotInUse(index));
        }
        self.free.insert(index.0);
        Ok(())
    }

    /// Takes a reserved index out of circulation for good: its slot lock
    /// was still held after its sender closed.
    pub fn retire(&mut self, index: SlotIndex) -> Result<(), SlotIndexError> {
        if !self.in_use.remove(&index.0) {
            return Err(SlotIndexError::NotInUse(index));
        }
        self.retired.insert(index.0);
        Ok(())
    }

    /// Indices that can still be lent out at once: `max` minus the retired.
    pub fn capacity(&self) -> u32 {
        self.max - self.retired.len() as u32
    }

    /// Indices currently reserved.
    pub fn in_use(&self) -> u32 {
        self.in_use.len() as u32
    }

    /// The retired indices, ascending.
    pub fn retired(&self) -> impl Iterator<Item = SlotIndex> + '_ {
        self.retired.iter().map(|&i| SlotIndex(i))
    }

    /// Whether `index` is retired.
    pub fn is_retired(&self, index: SlotIndex) -> bool {
        self.retired.contains(&index.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn item17_each_reservation_gets_a_distinct_lowest_free_index() {
        let mut a = SlotAllocator::new(3);
        let got: Vec<u32> = (0..3).map(|_| a.reserve().unwrap().get()).collect();
        assert_eq!(got, vec![0, 1, 2]);
        assert_eq!(a.reserve(), None, "max reached");
        a.release(SlotIndex(1)).unwrap();
        assert_eq!(a.reserve(), Some(SlotIndex(1)), "lowest free first");
    }

    #[test]
    fn item18_retired_index_is_never_handed_out_again() {
        let mut a = SlotAllocator::new(2);
        let i0 = a.reserve().unwrap();
        a.retire(i0).unwrap();
        assert_eq!(a.capacity(), 1);
        assert_eq!(a.reserve(), Some(SlotIndex(1)));
        assert_eq!(a.reserve(), None);
        assert!(a.is_retired(i0));
        assert!(!a.reserve_exact(i0));
        assert_eq!(a.retired().collect::<Vec<_>>(), vec![i0]);
    }

    #[test]
    fn release_of_an_index_not_in_use_is_an_error() {
        let mut a = SlotAllocator::new(2);
        assert_eq!(
            a.release(SlotIndex(0)),
            Err(SlotIndexError::NotInUse(SlotIndex(0)))
        );
        let i = a.reserve().unwrap();
        a.release(i).unwrap();
        assert!(a.release(i).is_err(), "double release");
        assert!(a.retire(i).is_err(), "retire of a free index");
    }

    #[test]
    fn reserve_exact_takes_only_a_free_index() {
        let mut a = SlotAllocator::new(3);
        assert!(a.reserve_exact(SlotIndex(2)));
        assert!(!a.reserve_exact(SlotIndex(2)));
        assert!(!a.reserve_exact(SlotIndex(7)), "out of range");
        assert_eq!(a.reserve(), Some(SlotIndex(0)));
    }

    #[test]
    fn pooled_sender_id_is_base_dash_canonical_index() {
        assert_eq!(pooled_sender_id("w", SlotIndex(0)), "w-0");
        assert_eq!(pooled_sender_id("w-1", SlotIndex(12)), "w-1-12");
    }

    proptest! {
        /// Against a model: reserve is always the minimum of the free set,
        /// in-use indices are distinct, and the capacity is max minus the
        /// retired.
        #[test]
        fn allocator_matches_model(
            max in 0u32..8,
            ops in proptest::collection::vec((0u8..3, 0u32..8), 0..64),
        ) {
            let mut a = SlotAllocator::new(max);
            let mut free: BTreeSet<u32> = (0..max).collect();
            let mut used = BTreeSet::new();
            let mut retired = BTreeSet::new();
            for (op, i) in ops {
                match op {
                    0 => {
                        let want = free.pop_first();
                        if let Some(w) = want {
                            used.insert(w);
                        }
                        prop_assert_eq!(a.reserve().map(SlotIndex::get), want);
                    }
                    1 => {
                        let ok = used.remove(&i);
                        if ok {
                            free.insert(i);
                        }
                        prop_assert_eq!(a.release(SlotIndex(i)).is_ok(), ok);
                    }
                    _ => {
                        let ok = used.remove(&i);
                        if ok {
                            retired.insert(i);
                        }
                        prop_assert_eq!(a.retire(SlotIndex(i)).is_ok(), ok);
                    }
                }
                prop_assert_eq!(a.capacity(), max - retired.len() as u32);
                prop_assert_eq!(a.in_use(), used.len() as u32);
            }
        }
    }
}
