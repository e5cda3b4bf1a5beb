//! The sender pool's slot-index allocator (DESIGN §6 items 17–18).
//!
//! Every pooled store-and-forward sender owns slot `<sender_id>-<index>`
//! with `index` in `[0, max)`. The allocator is the pure bookkeeping of
//! those indices:
//!
//! * [`SlotAllocator::reserve`] hands out the **lowest** free index, so a
//!   restarted pool re-adopts the same directories (and their data) in the
//!   same order (item 17: never one shared slot);
//! * [`SlotAllocator::settle`] decides what happens to an index once its
//!   sender closed, from a probe of the slot lock ([`SlotLockProbe`]):
//!   - **free**: the index returns to the free set (the only way back:
//!     an index is handed out again only after its lock was seen free);
//!   - **held by this process**: our own sender failed to release the lock;
//!     nothing will release it later, so the index is *retired* for good:
//!     the capacity shrinks instead of a second sender colliding on the
//!     lock (item 18);
//!   - **held by another process**: an outsider holds the slot, e.g. a
//!     sender of another process with `drain_orphans=on` that adopted the
//!     reaped slot as an orphan and is draining it. It will let go, so the
//!     index is *busy elsewhere*: not handed out, not retired, and
//!     [`SlotAllocator::recheck`]ed later (when no free index remains, and
//!     periodically) until a probe finds the lock free.
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

/// A release, retirement, settle or recheck named an index in the wrong
/// state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SlotIndexError {
    /// The index is not currently reserved (double release, or never
    /// reserved).
    #[error("slot index {0} is not in use")]
    NotInUse(SlotIndex),
    /// A recheck named an index that is not busy elsewhere.
    #[error("slot index {0} is not busy elsewhere")]
    NotBusyElsewhere(SlotIndex),
}

/// What a probe of a pooled slot's lock found, once the index's sender has
/// closed (or its build failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotLockProbe {
    /// Nobody holds the lock (or it was never taken).
    Free,
    /// This process holds it: `.lock.pid` names our own PID.
    HeldByUs,
    /// Another process holds it (or the holder cannot be named: a lock
    /// whose `.lock.pid` is not written yet, or a probe that failed; none
    /// of them proves that our own sender leaked the lock).
    HeldByOther,
}

/// Where [`SlotAllocator::settle`] put an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Back in the free set.
    Freed,
    /// Out of circulation for good (rule 2, item 18).
    Retired,
    /// Held by another process: kept out of the free set until a
    /// [`SlotAllocator::recheck`] finds its lock free.
    BusyElsewhere,
}

/// Lowest-free-first allocator over `[0, max)` with retirement. Every
/// index is in exactly one of: free, in use, busy elsewhere, retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotAllocator {
    max: u32,
    free: BTreeSet<u32>,
    in_use: BTreeSet<u32>,
    busy_elsewhere: BTreeSet<u32>,
    retired: BTreeSet<u32>,
}

impl SlotAllocator {
    /// An allocator with every index in `[0, max)` free.
    pub fn new(max: u32) -> SlotAllocator {
        SlotAllocator {
            max,
            free: (0..max).collect(),
            in_use: BTreeSet::new(),
            busy_elsewhere: BTreeSet::new(),
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
    /// a specific slot); `false` when it is in use, busy elsewhere, retired
    /// or out of range.
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

    /// Settles a reserved index whose sender closed (or whose build
    /// failed), from a probe of its slot lock: free → freed, held by this
    /// process → retired, held by another process → busy elsewhere.
    pub fn settle(
        &mut self,
        index: SlotIndex,
        probe: SlotLockProbe,
    ) -> Result<Settled, SlotIndexError> {
        match probe {
            SlotLockProbe::Free => self.release(index).map(|()| Settled::Freed),
            SlotLockProbe::HeldByUs => self.retire(index).map(|()| Settled::Retired),
            SlotLockProbe::HeldByOther => {
                if !self.in_use.remove(&index.0) {
                    return Err(SlotIndexError::NotInUse(index));
                }
                self.busy_elsewhere.insert(index.0);
                Ok(Settled::BusyElsewhere)
            }
        }
    }

    /// Re-probes an index that is busy elsewhere: a free lock returns it to
    /// the free set (`true`); a lock still held keeps it busy (`false`),
    /// whoever holds it now, since the sender this pool closed is not the
    /// holder (it was seen released into another process's hands).
    pub fn recheck(
        &mut self,
        index: SlotIndex,
        probe: SlotLockProbe,
    ) -> Result<bool, SlotIndexError> {
        if !self.busy_elsewhere.contains(&index.0) {
            return Err(SlotIndexError::NotBusyElsewhere(index));
        }
        if probe != SlotLockProbe::Free {
            return Ok(false);
        }
        self.busy_elsewhere.remove(&index.0);
        self.free.insert(index.0);
        Ok(true)
    }

    /// The indices busy elsewhere, ascending: the ones to re-probe.
    pub fn busy_elsewhere(&self) -> impl Iterator<Item = SlotIndex> + '_ {
        self.busy_elsewhere.iter().map(|&i| SlotIndex(i))
    }

    /// How many indices are busy elsewhere.
    pub fn busy_elsewhere_count(&self) -> u32 {
        self.busy_elsewhere.len() as u32
    }

    /// Whether `index` is busy elsewhere.
    pub fn is_busy_elsewhere(&self, index: SlotIndex) -> bool {
        self.busy_elsewhere.contains(&index.0)
    }

    /// Indices that can still be lent out at once: `max` minus the retired
    /// (an index busy elsewhere still counts: it comes back).
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
    fn rule2_lock_held_by_this_process_after_close_retires_the_index() {
        let mut a = SlotAllocator::new(2);
        let i0 = a.reserve().unwrap();
        assert_eq!(a.settle(i0, SlotLockProbe::HeldByUs), Ok(Settled::Retired));
        assert!(a.is_retired(i0));
        assert!(!a.is_busy_elsewhere(i0));
        assert_eq!(a.capacity(), 1);
        assert_eq!(
            a.recheck(i0, SlotLockProbe::Free),
            Err(SlotIndexError::NotBusyElsewhere(i0)),
            "a retired index is never re-probed back"
        );
        assert_eq!(a.reserve(), Some(SlotIndex(1)));
        assert_eq!(a.reserve(), None);
    }

    #[test]
    fn rule2_lock_held_by_another_process_makes_the_index_busy_not_retired() {
        let mut a = SlotAllocator::new(2);
        let i0 = a.reserve().unwrap();
        assert_eq!(
            a.settle(i0, SlotLockProbe::HeldByOther),
            Ok(Settled::BusyElsewhere)
        );
        assert!(a.is_busy_elsewhere(i0));
        assert!(!a.is_retired(i0));
        assert_eq!(a.capacity(), 2, "busy elsewhere is not retired");
        assert_eq!(a.in_use(), 0);
        assert_eq!(a.busy_elsewhere().collect::<Vec<_>>(), vec![i0]);
        assert_eq!(a.reserve(), Some(SlotIndex(1)), "not handed out now");
        assert_eq!(a.reserve(), None);
        assert!(!a.reserve_exact(i0));
    }

    #[test]
    fn rule2_busy_index_returns_once_a_recheck_finds_its_lock_free() {
        let mut a = SlotAllocator::new(3);
        let i0 = a.reserve().unwrap();
        a.settle(i0, SlotLockProbe::HeldByOther).unwrap();
        for still_held in [SlotLockProbe::HeldByOther, SlotLockProbe::HeldByUs] {
            assert_eq!(a.recheck(i0, still_held), Ok(false));
            assert!(a.is_busy_elsewhere(i0), "{still_held:?}: still busy");
        }
        assert_eq!(a.recheck(i0, SlotLockProbe::Free), Ok(true));
        assert!(!a.is_busy_elsewhere(i0));
        assert_eq!(a.busy_elsewhere_count(), 0);
        assert_eq!(a.reserve(), Some(i0), "lowest free first again");
        assert_eq!(
            a.recheck(i0, SlotLockProbe::Free),
            Err(SlotIndexError::NotBusyElsewhere(i0)),
            "a recheck never frees an index that is in use"
        );
    }

    #[test]
    fn settle_with_a_free_lock_frees_and_of_an_index_not_in_use_is_an_error() {
        let mut a = SlotAllocator::new(1);
        let i0 = a.reserve().unwrap();
        assert_eq!(a.settle(i0, SlotLockProbe::Free), Ok(Settled::Freed));
        for probe in [
            SlotLockProbe::Free,
            SlotLockProbe::HeldByUs,
            SlotLockProbe::HeldByOther,
        ] {
            assert_eq!(a.settle(i0, probe), Err(SlotIndexError::NotInUse(i0)));
        }
        assert_eq!(a.reserve(), Some(i0));
    }

    #[test]
    fn pooled_sender_id_is_base_dash_canonical_index() {
        assert_eq!(pooled_sender_id("w", SlotIndex(0)), "w-0");
        assert_eq!(pooled_sender_id("w-1", SlotIndex(12)), "w-1-12");
    }

    proptest! {
        /// Against a model: reserve is always the minimum of the free set,
        /// in-use indices are distinct, the capacity is max minus the
        /// retired, a settle follows its probe (free → free, ours →
        /// retired, other → busy), a busy index comes back only on a free
        /// recheck, and every index is in exactly one set.
        #[test]
        fn allocator_matches_model(
            max in 0u32..8,
            ops in proptest::collection::vec((0u8..5, 0u32..8, 0u8..3), 0..64),
        ) {
            let mut a = SlotAllocator::new(max);
            let mut free: BTreeSet<u32> = (0..max).collect();
            let mut used = BTreeSet::new();
            let mut busy = BTreeSet::new();
            let mut retired = BTreeSet::new();
            for (op, i, p) in ops {
                let probe = [
                    SlotLockProbe::Free,
                    SlotLockProbe::HeldByUs,
                    SlotLockProbe::HeldByOther,
                ][usize::from(p)];
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
                    2 => {
                        let ok = used.remove(&i);
                        if ok {
                            retired.insert(i);
                        }
                        prop_assert_eq!(a.retire(SlotIndex(i)).is_ok(), ok);
                    }
                    3 => {
                        let want = used.remove(&i).then(|| match probe {
                            SlotLockProbe::Free => {
                                free.insert(i);
                                Settled::Freed
                            }
                            SlotLockProbe::HeldByUs => {
                                retired.insert(i);
                                Settled::Retired
                            }
                            SlotLockProbe::HeldByOther => {
                                busy.insert(i);
                                Settled::BusyElsewhere
                            }
                        });
                        prop_assert_eq!(a.settle(SlotIndex(i), probe).ok(), want);
                    }
                    _ => {
                        let want = busy.contains(&i).then(|| {
                            let freed = probe == SlotLockProbe::Free;
                            if freed {
                                busy.remove(&i);
                                free.insert(i);
                            }
                            freed
                        });
                        prop_assert_eq!(a.recheck(SlotIndex(i), probe).ok(), want);
                    }
                }
                prop_assert_eq!(a.capacity(), max - retired.len() as u32);
                prop_assert_eq!(a.in_use(), used.len() as u32);
                prop_assert_eq!(a.busy_elsewhere_count(), busy.len() as u32);
                prop_assert_eq!(
                    a.busy_elsewhere().map(SlotIndex::get).collect::<BTreeSet<_>>(),
                    busy.clone()
                );
                prop_assert_eq!(&a.free, &free);
                prop_assert_eq!(&a.in_use, &used);
                prop_assert_eq!(&a.retired, &retired);
                let total = a.free.len() + a.in_use.len() + a.busy_elsewhere.len() + a.retired.len();
                prop_assert_eq!(total, max as usize, "every index in exactly one set");
            }
        }
    }
}
