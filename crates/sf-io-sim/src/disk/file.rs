//! One simulated file: what the page cache holds (the *volatile* image),
//! what the medium holds (the *durable* image), and per 512-byte sector
//! whether the two may differ and whether a sync can still close the gap.
//!
//! Invariant: a [`Sector::Clean`] sector has identical volatile and durable
//! bytes; only `Dirty` and `Lost` sectors may differ.

use crate::SimRng;

/// The unit a host crash keeps, loses or tears independently.
pub const SECTOR: usize = 512;
/// The unit `msync` works in: a sync widens its range to whole pages.
pub const PAGE: usize = 4096;

/// The state of one sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sector {
    /// Volatile and durable bytes agree.
    Clean,
    /// Written since the last successful sync of it: a sync writes it.
    Dirty,
    /// A sync of it failed: the kernel marked the page clean without the
    /// bytes reaching the medium, so a later sync does *not* write it (L5)
    /// until something writes to it again.
    Lost,
}

/// What a host crash did to one file's sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SectorFates {
    pub(crate) kept: u64,
    pub(crate) lost: u64,
    pub(crate) torn: u64,
}

/// A simulated file.
#[derive(Debug, Clone)]
pub(crate) struct SimFile {
    volatile: Vec<u8>,
    durable: Vec<u8>,
    sectors: Vec<Sector>,
    /// The (simulated) adapter holds a mapping of it.
    pub(crate) mapped: bool,
    /// This session already did the once-per-session `sync_all` of the file
    /// and the directory fsync (see the tokio adapter's first sync).
    pub(crate) metadata_synced: bool,
}

impl SimFile {
    /// A file of `len` zero bytes, as the medium would also read it (a
    /// zero-filled creation and the unwritten blocks it replaces agree).
    pub(crate) fn zeroed(len: usize) -> SimFile {
        SimFile {
            volatile: vec![0; len],
            durable: vec![0; len],
            sectors: vec![Sector::Clean; len.div_ceil(SECTOR)],
            mapped: false,
            metadata_synced: false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.volatile.len()
    }

    pub(crate) fn volatile(&self) -> &[u8] {
        &self.volatile
    }

    pub(crate) fn durable(&self) -> &[u8] {
        &self.durable
    }

    /// Writes through `f` into the volatile image, then marks the sectors
    /// of `range` dirty (the caller names the range `f` touches).
    pub(crate) fn write_with<R>(
        &mut self,
        range: core::ops::Range<usize>,
        f: impl FnOnce(&mut [u8]) -> R,
    ) -> R {
        let r = f(&mut self.volatile);
        self.mark_dirty(range);
        r
    }

    /// Copies `bytes` to `offset` (clamped to the file) and marks them dirty.
    pub(crate) fn write(&mut self, offset: usize, bytes: &[u8]) {
        let end = offset.saturating_add(bytes.len()).min(self.len());
        if let (Some(dst), Some(src)) = (
            self.volatile.get_mut(offset..end),
            bytes.get(..end.saturating_sub(offset)),
        ) {
            dst.copy_from_slice(src);
        }
        self.mark_dirty(offset..end);
    }

    /// Marks the sectors overlapping `range` dirty. Writing to a `Lost`
    /// sector dirties its page again, so the next sync writes the whole
    /// sector, earlier lost bytes included (as a real page would).
    pub(crate) fn mark_dirty(&mut self, range: core::ops::Range<usize>) {
        for s in sector_span(range, self.sectors.len()) {
            if let Some(st) = self.sectors.get_mut(s) {
                *st = Sector::Dirty;
            }
        }
    }

    /// `msync` of `[from, upto)` widened to whole pages: every dirty sector
    /// there reaches the medium. `Lost` sectors do not.
    pub(crate) fn sync_range(&mut self, from: usize, upto: usize) {
        let (from, upto) = page_widen(from, upto, self.len());
        for s in sector_span(from..upto, self.sectors.len()) {
            self.write_back(s);
        }
    }

    /// `fsync` of the whole file.
    pub(crate) fn sync_all(&mut self) {
        for s in 0..self.sectors.len() {
            self.write_back(s);
        }
    }

    /// A failed `msync` of `[from, upto)`: its dirty sectors are lost.
    pub(crate) fn fail_range(&mut self, from: usize, upto: usize) {
        let (from, upto) = page_widen(from, upto, self.len());
        for s in sector_span(from..upto, self.sectors.len()) {
            if let Some(st) = self.sectors.get_mut(s) {
                if *st == Sector::Dirty {
                    *st = Sector::Lost;
                }
            }
        }
    }

    /// Whether every byte of `[from, upto)` is durable with the volatile
    /// contents (what a crash test checks after a successful sync).
    pub(crate) fn is_durable(&self, from: usize, upto: usize) -> bool {
        sector_span(from..upto, self.sectors.len())
            .all(|s| self.sectors.get(s) == Some(&Sector::Clean))
    }

    fn write_back(&mut self, s: usize) {
        let Some(st) = self.sectors.get_mut(s) else {
            return;
        };
        if *st != Sector::Dirty {
            return;
        }
        *st = Sector::Clean;
        let r = sector_bytes(s, self.volatile.len());
        if let (Some(src), Some(dst)) = (self.volatile.get(r.clone()), self.durable.get_mut(r)) {
            dst.copy_from_slice(src);
        }
    }

    /// A host crash: the medium's bytes become the file's bytes. Each dirty
    /// sector independently reaches the medium whole (`kept_pm` per
    /// million), torn (`torn_pm`: a prefix of the new bytes over the old
    /// ones, cut at an 8-byte boundary — a writeback never splits an
    /// aligned 8-byte store, which the watermark's FSN field relies on), or
    /// not at all. A `Lost` sector is lost.
    pub(crate) fn host_crash(
        &mut self,
        rng: &mut SimRng,
        kept_pm: u32,
        torn_pm: u32,
    ) -> SectorFates {
        let mut fates = SectorFates::default();
        let len = self.volatile.len();
        for s in 0..self.sectors.len() {
            let Some(st) = self.sectors.get(s).copied() else {
                break;
            };
            let r = sector_bytes(s, len);
            match st {
                Sector::Clean => continue,
                Sector::Lost => fates.lost += 1,
                Sector::Dirty => {
                    let draw = rng.below(1_000_000);
                    if draw < u64::from(kept_pm) {
                        fates.kept += 1;
                        if let (Some(src), Some(dst)) = (
                            self.volatile.get(r.clone()),
                            self.durable.get_mut(r.clone()),
                        ) {
                            dst.copy_from_slice(src);
                        }
                    } else if draw < u64::from(kept_pm) + u64::from(torn_pm) {
                        fates.torn += 1;
                        let n = r.len();
                        let cut = usize::try_from(rng.range_inclusive(1, (SECTOR / 8 - 1) as u64))
                            .unwrap_or(1)
                            * 8;
                        let cut = r.start + cut.min(n);
                        if let (Some(src), Some(dst)) = (
                            self.volatile.get(r.start..cut),
                            self.durable.get_mut(r.start..cut),
                        ) {
                            dst.copy_from_slice(src);
                        }
                    } else {
                        fates.lost += 1;
                    }
                }
            }
        }
        self.volatile.copy_from_slice(&self.durable);
        self.sectors.fill(Sector::Clean);
        self.mapped = false;
        self.metadata_synced = false;
        fates
    }

    /// Flips `bit` of byte `offset` on the medium (and in the cache, which
    /// after a host crash holds what the medium holds). `false` when out of
    /// range.
    pub(crate) fn flip_bit(&mut self, offset: usize, bit: u8) -> bool {
        let mask = 1u8 << (bit % 8);
        match (self.volatile.get_mut(offset), self.durable.get_mut(offset)) {
            (Some(v), Some(d)) => {
                *d ^= mask;
                *v = *d;
                true
            }
            _ => false,
        }
    }

    /// One past the last non-zero byte of the file (0 when blank).
    pub(crate) fn written_len(&self) -> usize {
        self.volatile
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1)
    }
}

/// The byte range of sector `s` in a file of `len` bytes.
fn sector_bytes(s: usize, len: usize) -> core::ops::Range<usize> {
    let start = (s * SECTOR).min(len);
    start..(start + SECTOR).min(len)
}

/// The sectors overlapping `range`.
fn sector_span(range: core::ops::Range<usize>, sectors: usize) -> core::ops::Range<usize> {
    if range.start >= range.end {
        return 0..0;
    }
    (range.start / SECTOR).min(sectors)..range.end.div_ceil(SECTOR).min(sectors)
}

/// `[from, upto)` widened to whole pages and clamped to the file.
fn page_widen(from: usize, upto: usize, len: usize) -> (usize, usize) {
    if from >= upto {
        return (from, from);
    }
    let start = from / PAGE * PAGE;
    let end = upto.div_ceil(PAGE).saturating_mul(PAGE).min(len);
    (start.min(end), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_widens_to_whole_pages_and_no_further() {
        let mut f = SimFile::zeroed(3 * PAGE);
        f.write(10, &[1; 8]);
        f.write(PAGE + 100, &[2; 8]);
        f.write(2 * PAGE + 5, &[3; 8]);
        // A sync of [20, PAGE + 1) covers pages 0 and 1 whole.
        f.sync_range(20, PAGE + 1);
        assert!(f.is_durable(0, 2 * PAGE));
        assert!(
            !f.is_durable(2 * PAGE, 3 * PAGE),
            "page 2 was not asked for"
        );
        assert_eq!(f.durable()[10], 1);
        assert_eq!(f.durable()[PAGE + 100], 2);
        assert_eq!(f.durable()[2 * PAGE + 5], 0);
    }

    #[test]
    fn l5_lost_sector_stays_lost_until_written_again() {
        let mut f = SimFile::zeroed(PAGE);
        f.write(0, &[7; 16]);
        f.fail_range(0, 16);
        f.sync_all();
        assert!(!f.is_durable(0, 16), "a plain sync skips a lost sector");
        assert_eq!(f.durable()[0], 0);
        // Any write to the sector dirties it whole again.
        f.write(100, &[8]);
        f.sync_range(0, 1);
        assert!(f.is_durable(0, SECTOR));
        assert_eq!(&f.durable()[..16], &[7; 16]);
    }

    #[test]
    fn host_crash_fates_per_sector_and_torn_cut_is_8_byte_aligned() {
        let mut rng = SimRng::new(5);
        for _ in 0..50 {
            let mut f = SimFile::zeroed(4 * SECTOR);
            f.write(0, &[0xAB; 4 * SECTOR]);
            f.sync_range(0, 0); // nothing
            let fates = f.host_crash(&mut rng, 0, 1_000_000);
            assert_eq!(fates.torn, 4);
            for s in 0..4 {
                let sector = &f.volatile()[s * SECTOR..(s + 1) * SECTOR];
                let new = sector.iter().take_while(|&&b| b == 0xAB).count();
                assert!(new > 0 && new < SECTOR && new % 8 == 0, "cut at {new}");
                assert!(
                    sector[new..].iter().all(|&b| b == 0),
                    "old bytes after the cut"
                );
            }
            assert!(!f.mapped && f.is_durable(0, f.len()));
        }
        let mut f = SimFile::zeroed(2 * SECTOR);
        f.write(0, &[1; 2 * SECTOR]);
        let fates = f.host_crash(&mut rng, 1_000_000, 0);
        assert_eq!((fates.kept, fates.lost), (2, 0));
        assert!(f.volatile().iter().all(|&b| b == 1));
        let mut f = SimFile::zeroed(2 * SECTOR);
        f.write(0, &[1; 2 * SECTOR]);
        let fates = f.host_crash(&mut rng, 0, 0);
        assert_eq!(fates.lost, 2);
        assert!(f.volatile().iter().all(|&b| b == 0));
    }

    #[test]
    fn clean_sectors_survive_a_host_crash_whatever_the_model() {
        let mut rng = SimRng::new(6);
        let mut f = SimFile::zeroed(2 * PAGE);
        f.write(0, &[9; 700]);
        f.sync_all();
        f.write(PAGE, &[4; 10]);
        f.host_crash(&mut rng, 0, 0);
        assert_eq!(&f.volatile()[..700], &[9; 700][..]);
        assert_eq!(f.volatile()[PAGE], 0, "the unsynced write is lost");
    }

    #[test]
    fn partial_file_end_sector_is_handled() {
        let mut f = SimFile::zeroed(SECTOR + 16);
        f.write(SECTOR, &[5; 16]);
        f.write(SECTOR + 10, &[6; 100]); // clamped to the file
        assert_eq!(f.len(), SECTOR + 16);
        f.sync_range(SECTOR + 8, SECTOR + 16);
        assert!(f.is_durable(0, f.len()));
        assert!(!f.flip_bit(SECTOR + 16, 0));
        assert!(f.flip_bit(SECTOR + 15, 3));
        assert_eq!(f.durable()[SECTOR + 15], 6 ^ 8);
    }
}
