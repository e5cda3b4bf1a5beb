//! The simulated `sf_dir`: one directory per slot, each with its own
//! [`SimDisk`], the slot's [`Checker`] (which lives across every engine
//! that ever owns the slot), the `.failed` sentinel and the lock table.
//!
//! The lock table models `flock` on `<slot>/.lock`: at most one holder, a
//! holder that dies releases it (the kernel drops the lock with the
//! process), and holding is never inferred from a listing (sf-client
//! §18.2: lock state is not part of the scan).

use std::collections::BTreeMap;

use sf_core::engine::EngineConfig;
use sf_core::orphans::FAILED_MARKER;

use crate::check::{Checker, CrashLoss};
use crate::disk::{CrashKind, DiskFaults, SimDisk};
use crate::SimRng;

use super::NodeId;

/// The lock file every opened slot keeps (the real adapter creates it
/// once and never removes it).
pub const LOCK_FILE: &str = ".lock";

/// Who holds a slot's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LockHolder {
    /// A node of the fleet.
    Node(NodeId),
    /// A process outside the fleet (a live sender of another application).
    Outside,
}

/// One slot directory.
#[derive(Debug)]
pub struct SlotDir {
    /// Its files.
    pub disk: SimDisk,
    /// The invariant checkers of the slot, across every engine that owns it.
    pub checker: Checker,
    failed: Option<String>,
    lock: Option<LockHolder>,
    ever_locked: bool,
    /// A host crash, a bit flip or deliberate corruption touched the slot:
    /// a structural recovery refusal is explicable.
    pub(crate) damaged: bool,
    /// The loss the checker was last told about since its last engine
    /// ended (a later host crash may only make it larger).
    pub(crate) pending_loss: Option<CrashLoss>,
    /// Injected watermark write/read failures seen at the last open.
    pub(crate) watermark_faults_seen: u64,
    /// Engines that opened the slot.
    pub(crate) lives: u64,
}

impl SlotDir {
    /// The `.failed` reason, if the sentinel exists.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// The lock holder.
    pub fn lock(&self) -> Option<LockHolder> {
        self.lock
    }

    /// The names a directory listing of the slot shows: the disk's files,
    /// `.lock` once the slot was ever opened, `.failed` if written.
    pub fn entries(&self) -> Vec<String> {
        let mut names = self.disk.file_names();
        if self.ever_locked {
            names.push(LOCK_FILE.to_owned());
        }
        if self.failed.is_some() {
            names.push(FAILED_MARKER.to_owned());
        }
        names.sort();
        names
    }

    /// How many engines opened the slot.
    pub fn lives(&self) -> u64 {
        self.lives
    }
}

/// Order of severity of what a crash may lose, so a second crash of an
/// idle slot only ever widens what the checker allows.
fn loss_rank(l: CrashLoss) -> u8 {
    match l {
        CrashLoss::Nothing => 0,
        CrashLoss::AboveDurable => 1,
        CrashLoss::Unacked => 2,
        CrashLoss::Corrupted => 3,
    }
}

/// The wider of two allowed losses.
pub(crate) fn wider(a: Option<CrashLoss>, b: CrashLoss) -> CrashLoss {
    match a {
        Some(a) if loss_rank(a) >= loss_rank(b) => a,
        _ => b,
    }
}

/// The simulated `sf_dir`.
#[derive(Debug, Default)]
pub struct SlotTree {
    slots: BTreeMap<String, SlotDir>,
}

impl SlotTree {
    /// An empty `sf_dir`.
    pub fn new() -> SlotTree {
        SlotTree::default()
    }

    /// Creates slot `name` (empty) if absent; its disk's RNG is forked from
    /// `rng` by the slot's name, so slots draw independently.
    pub fn create(
        &mut self,
        name: &str,
        rng: &mut SimRng,
        faults: DiskFaults,
        config: &EngineConfig,
    ) {
        if self.slots.contains_key(name) {
            return;
        }
        let disk = SimDisk::new(rng.fork(&format!("disk/{name}")), faults)
            .with_backing(config.storage.backing);
        self.slots.insert(
            name.to_owned(),
            SlotDir {
                disk,
                checker: Checker::new(config),
                failed: None,
                lock: None,
                ever_locked: false,
                damaged: false,
                pending_loss: None,
                watermark_faults_seen: 0,
                lives: 0,
            },
        );
    }

    /// The slot `name`.
    pub fn get(&self, name: &str) -> Option<&SlotDir> {
        self.slots.get(name)
    }

    /// The slot `name`, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut SlotDir> {
        self.slots.get_mut(name)
    }

    /// Every slot, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SlotDir)> {
        self.slots.iter().map(|(n, s)| (n.as_str(), s))
    }

    /// Every slot, mutably, in name order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut SlotDir)> {
        self.slots.iter_mut().map(|(n, s)| (n.as_str(), s))
    }

    /// A scan of `sf_dir`: each slot's name and listing, in name order.
    pub fn listing(&self) -> Vec<(String, Vec<String>)> {
        self.slots
            .iter()
            .map(|(n, s)| (n.clone(), s.entries()))
            .collect()
    }

    /// Tries the lock of `name` for `holder`; the current holder if it is
    /// held (or `None` for a slot that does not exist, which cannot be
    /// locked either).
    pub fn try_lock(&mut self, name: &str, holder: LockHolder) -> Result<(), Option<LockHolder>> {
        let slot = self.slots.get_mut(name).ok_or(None)?;
        match slot.lock {
            Some(h) => Err(Some(h)),
            None => {
                slot.lock = Some(holder);
                slot.ever_locked = true;
                Ok(())
            }
        }
    }

    /// Releases `name`'s lock if `holder` holds it; whether it did.
    pub fn release(&mut self, name: &str, holder: LockHolder) -> bool {
        match self.slots.get_mut(name) {
            Some(s) if s.lock == Some(holder) => {
                s.lock = None;
                true
            }
            _ => false,
        }
    }

    /// Writes `.failed` with `reason` (durable once written, as the adapter
    /// fsyncs it). The caller checks who holds the lock.
    pub fn write_failed(&mut self, name: &str, reason: &str) {
        if let Some(s) = self.slots.get_mut(name) {
            s.failed = Some(reason.to_owned());
        }
    }

    /// The host died: every slot disk loses what was not synced; a slot
    /// with no live engine has its allowed loss widened (its checker was
    /// told about the end of its last engine already).
    pub(crate) fn host_crash_idle(
        &mut self,
        now: sf_core::Instant,
        config: &EngineConfig,
        live: &[String],
    ) {
        for (name, slot) in self.slots.iter_mut() {
            if live.iter().any(|l| l == name) {
                continue;
            }
            let flips = slot.disk.stats().injected.bit_flips;
            slot.disk.crash(CrashKind::Host);
            slot.damaged = true;
            let flipped = slot.disk.stats().injected.bit_flips > flips;
            let loss = if flipped {
                CrashLoss::Corrupted
            } else {
                CrashLoss::for_crash(true, config)
            };
            let loss = wider(slot.pending_loss, loss);
            slot.pending_loss = Some(loss);
            // Nothing changed since the last engine ended, so a fresh
            // snapshot with the wider loss is exact.
            slot.checker.on_crash(now, loss);
            if slot.lock == Some(LockHolder::Outside) {
                slot.lock = None;
            }
        }
    }

    /// Releases every lock held by one of `nodes` (their process died).
    pub(crate) fn release_all(&mut self, nodes: &[NodeId]) {
        for s in self.slots.values_mut() {
            if let Some(LockHolder::Node(n)) = s.lock {
                if nodes.contains(&n) {
                    s.lock = None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_core::storage::StorageConfig;
    use std::num::NonZeroUsize;

    fn tree_with(names: &[&str]) -> SlotTree {
        let config = EngineConfig::new(StorageConfig::files(), NonZeroUsize::MIN);
        let mut rng = SimRng::new(1);
        let mut t = SlotTree::new();
        for n in names {
            t.create(n, &mut rng, DiskFaults::none(), &config);
        }
        t
    }

    #[test]
    fn c3_a_slot_lock_has_one_holder_at_a_time() {
        let mut t = tree_with(&["a"]);
        assert_eq!(t.try_lock("a", LockHolder::Node(NodeId(1))), Ok(()));
        assert_eq!(
            t.try_lock("a", LockHolder::Node(NodeId(2))),
            Err(Some(LockHolder::Node(NodeId(1))))
        );
        assert_eq!(
            t.try_lock("a", LockHolder::Outside),
            Err(Some(LockHolder::Node(NodeId(1))))
        );
        assert!(
            !t.release("a", LockHolder::Node(NodeId(2))),
            "only the holder releases"
        );
        assert!(t.release("a", LockHolder::Node(NodeId(1))));
        assert_eq!(t.try_lock("a", LockHolder::Outside), Ok(()));
        assert_eq!(t.try_lock("missing", LockHolder::Outside), Err(None));
    }

    #[test]
    fn c3_a_dead_process_releases_exactly_its_locks() {
        let mut t = tree_with(&["a", "b", "c"]);
        t.try_lock("a", LockHolder::Node(NodeId(1))).unwrap();
        t.try_lock("b", LockHolder::Node(NodeId(2))).unwrap();
        t.try_lock("c", LockHolder::Outside).unwrap();
        t.release_all(&[NodeId(1)]);
        assert_eq!(t.get("a").unwrap().lock(), None);
        assert_eq!(
            t.get("b").unwrap().lock(),
            Some(LockHolder::Node(NodeId(2)))
        );
        assert_eq!(t.get("c").unwrap().lock(), Some(LockHolder::Outside));
    }

    #[test]
    fn s18_2_listing_shows_lock_file_and_failed_marker_not_lock_state() {
        let mut t = tree_with(&["a", "b"]);
        assert!(t.get("a").unwrap().entries().is_empty());
        t.try_lock("a", LockHolder::Outside).unwrap();
        let held = t.get("a").unwrap().entries();
        t.release("a", LockHolder::Outside);
        assert_eq!(held, vec![LOCK_FILE.to_owned()]);
        assert_eq!(t.get("a").unwrap().entries(), held, "the file stays");
        t.write_failed("b", "gave up");
        assert_eq!(t.get("b").unwrap().failed(), Some("gave up"));
        assert_eq!(
            t.get("b").unwrap().entries(),
            vec![FAILED_MARKER.to_owned()]
        );
        let names: Vec<String> = t.listing().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, vec!["a".to_owned(), "b".to_owned()], "name order");
    }

    #[test]
    fn a_later_crash_only_widens_the_allowed_loss() {
        assert_eq!(wider(None, CrashLoss::Nothing), CrashLoss::Nothing);
        assert_eq!(
            wider(Some(CrashLoss::Unacked), CrashLoss::AboveDurable),
            CrashLoss::Unacked
        );
        assert_eq!(
            wider(Some(CrashLoss::Nothing), CrashLoss::Corrupted),
            CrashLoss::Corrupted
        );
    }
}
