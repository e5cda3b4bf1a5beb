//! The segment ring: FSN assignment, frame placement, sealing and rotation
//! onto pre-provisioned spares, the resident-bytes cap, and trim (S1, S4–S7).
//!
//! This module holds the ring's bookkeeping: the log segments in FSN order
//! with their per-frame offset index (so any unacknowledged FSN can be located
//! for replay), and the arithmetic on them (frame boundaries for L2, cap
//! accounting for S6). The I/O orchestration (which output to emit, retries,
//! timers) lives in [`crate::storage`], which owns the ring.

use std::collections::VecDeque;

use crate::recovery::{RecoveredSegment, LEGACY_INITIAL_SEGMENT};
use crate::segment::{FRAME_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::{Fsn, SegmentGen};

/// The header length as a byte offset.
pub(crate) const HEADER: u64 = SEGMENT_HEADER_LEN as u64;
/// A frame's envelope length as a byte count.
pub(crate) const FRAME_HEADER: u64 = FRAME_HEADER_LEN as u64;

/// Which file (or memory block) a segment lives in.
///
/// Recovery accepts the legacy file `sf-initial.sfa`, which has no
/// generation; the ring never creates one, so every segment it allocates is a
/// [`SegmentName::Gen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SegmentName {
    /// `sf-<gen:016x>.sfa`.
    Gen(SegmentGen),
    /// The legacy `sf-initial.sfa` (sf-client §5.3).
    LegacyInitial,
}

impl SegmentName {
    /// The file name inside the slot directory.
    pub fn file_name(self) -> String {
        match self {
            SegmentName::Gen(g) => g.file_name(),
            SegmentName::LegacyInitial => LEGACY_INITIAL_SEGMENT.to_string(),
        }
    }

    /// The generation, or `None` for the legacy segment.
    pub fn gen(self) -> Option<SegmentGen> {
        match self {
            SegmentName::Gen(g) => Some(g),
            SegmentName::LegacyInitial => None,
        }
    }
}

impl From<Option<SegmentGen>> for SegmentName {
    fn from(gen: Option<SegmentGen>) -> Self {
        gen.map_or(SegmentName::LegacyInitial, SegmentName::Gen)
    }
}

/// Where a published frame sits, for replay: its envelope starts at `offset`
/// of segment `name` and occupies `FRAME_HEADER_LEN + len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLocation {
    /// The segment holding the frame.
    pub name: SegmentName,
    /// Offset of the frame's CRC field within the segment.
    pub offset: u64,
    /// The payload length (the frame's `len` field).
    pub len: u32,
}

/// The life-cycle state of a segment as seen by tests and the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentState {
    /// The log segment new frames are appended to.
    Active,
    /// A full (or retired) log segment, kept until its frames are acknowledged.
    Sealed,
    /// Acknowledged (or discarded) and waiting for its unlink to succeed; no
    /// longer part of the log, still counted in the byte accounting (S4).
    UnlinkPending,
    /// Created ahead of need, not yet part of the log.
    Spare,
}

/// A snapshot of one segment, for tests, the simulator and diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The segment's file.
    pub name: SegmentName,
    /// FSN of its first frame; `None` for spares and for unlink-pending
    /// segments that were never part of the log.
    pub base_fsn: Option<Fsn>,
    /// Committed frames (0 for spares and unlink-pending segments).
    pub frame_count: u64,
    /// Offset just past the last committed frame.
    pub append_offset: u64,
    /// The segment's size in bytes.
    pub size: u64,
    /// Its state.
    pub state: SegmentState,
}

/// A segment that is part of the log (active or sealed).
#[derive(Debug, Clone)]
pub(crate) struct LogSegment {
    pub(crate) name: SegmentName,
    pub(crate) base: Fsn,
    pub(crate) size: u64,
    /// Start offset of every committed frame, ascending. `u32` halves the
    /// index's memory; segment sizes are validated to fit.
    pub(crate) starts: Vec<u32>,
    /// Offset just past the last committed frame.
    pub(crate) append: u64,
    /// No further frame is placed here (full, torn tail, failed write,
    /// legacy name, or superseded by a newer segment).
    pub(crate) sealed: bool,
    /// The highest offset a successful sync confirmed (raw, may be mid-frame;
    /// rounded down to whole frames when read, L2).
    pub(crate) synced: u64,
    /// A sync of this segment is outstanding (one at a time: later commits
    /// coalesce into the next request, a group commit).
    pub(crate) sync_in_flight: bool,
    /// The last sync of this segment failed: the next request asks the
    /// adapter to rewrite the range before syncing it (L5).
    pub(crate) rewrite: bool,
}

impl LogSegment {
    /// A freshly installed segment: header written, no frames yet.
    pub(crate) fn installed(name: SegmentName, base: Fsn, size: u64, starts: Vec<u32>) -> Self {
        LogSegment {
            name,
            base,
            size,
            starts,
            append: HEADER,
            sealed: false,
            synced: 0,
            sync_in_flight: false,
            rewrite: false,
        }
    }

    /// Rebuilds a log segment from recovery's view of it.
    pub(crate) fn recovered(seg: &RecoveredSegment, starts: Vec<u32>) -> Self {
        LogSegment {
            name: seg.gen.into(),
            base: seg.base_fsn,
            size: seg.file_size,
            starts,
            append: seg.append_offset,
            // Recovered bytes are on disk already; whether they reached stable
            // storage is unknown, so they are not counted as synced.
            sealed: false,
            synced: 0,
            sync_in_flight: false,
            // L5 across a process crash: an earlier life's sync of these
            // bytes may have failed, leaving pages the kernel marked clean
            // without writing them; a plain sync in this life would then
            // succeed without making them durable. Rewrite before the
            // first sync.
            rewrite: true,
        }
    }

    /// Number of committed frames.
    pub(crate) fn frame_count(&self) -> u64 {
        self.starts.len() as u64
    }

    /// One past the last FSN in this segment.
    pub(crate) fn end_fsn(&self) -> Fsn {
        self.base.plus(self.frame_count())
    }

    /// The last FSN in this segment, if it has frames.
    pub(crate) fn last_fsn(&self) -> Option<Fsn> {
        self.end_fsn().prev().filter(|l| *l >= self.base)
    }

    /// Whether every FSN below this segment's end is acknowledged (for a
    /// segment without frames: every FSN before its base).
    pub(crate) fn fully_acked(&self, acked: Option<Fsn>) -> bool {
        self.end_fsn().prev() <= acked
    }

    /// Whether a frame envelope of `total` bytes fits after the last frame.
    pub(crate) fn fits(&self, total: u64) -> bool {
        !self.sealed
            && self
                .append
                .checked_add(total)
                .is_some_and(|end| end <= self.size)
    }

    /// End offset of frame `i` (which must exist).
    fn frame_end(&self, i: usize) -> u64 {
        match self.starts.get(i + 1) {
            Some(next) => u64::from(*next),
            None => self.append,
        }
    }

    /// How many leading frames end at or below `offset` (L2: a sync offset
    /// inside a frame rounds down to the last whole frame below it).
    pub(crate) fn whole_frames_below(&self, offset: u64) -> u64 {
        if offset >= self.append {
            return self.frame_count();
        }
        // Frame i ends where frame i+1 starts; count the starts[1..] that are
        // at or below `offset`.
        let tail = self.starts.get(1..).unwrap_or(&[]);
        tail.partition_point(|s| u64::from(*s) <= offset) as u64
    }

    /// End offset of the frame with FSN `fsn`, if this segment holds it.
    pub(crate) fn end_offset_of(&self, fsn: Fsn) -> Option<u64> {
        let i = usize::try_from(fsn.get().checked_sub(self.base.get())?).ok()?;
        if i < self.starts.len() {
            Some(self.frame_end(i))
        } else {
            None
        }
    }

    /// Where frame `fsn` sits, if this segment holds it.
    pub(crate) fn locate(&self, fsn: Fsn) -> Option<FrameLocation> {
        let i = usize::try_from(fsn.get().checked_sub(self.base.get())?).ok()?;
        let start = u64::from(*self.starts.get(i)?);
        let len = self.frame_end(i).checked_sub(start + FRAME_HEADER)?;
        Some(FrameLocation {
            name: self.name,
            offset: start,
            len: u32::try_from(len).ok()?,
        })
    }

    /// The snapshot of this segment.
    pub(crate) fn info(&self, active: bool) -> SegmentInfo {
        SegmentInfo {
            name: self.name,
            base_fsn: Some(self.base),
            frame_count: self.frame_count(),
            append_offset: self.append,
            size: self.size,
            state: if active {
                SegmentState::Active
            } else {
                SegmentState::Sealed
            },
        }
    }
}

/// The log: segments ascending and contiguous in FSN (S1), the last one
/// possibly active, plus the FSN counters.
#[derive(Debug)]
pub(crate) struct Ring {
    pub(crate) log: VecDeque<LogSegment>,
    /// The FSN the next committed frame receives.
    pub(crate) next_fsn: Fsn,
    /// The highest acknowledged FSN (monotonic), or `None`.
    pub(crate) acked: Option<Fsn>,
    /// Cleared frame indexes of retired segments, reused so that rotation
    /// does not allocate in steady state.
    pub(crate) index_pool: Vec<Vec<u32>>,
}

impl Ring {
    /// The highest committed FSN, or `None` when nothing was ever published.
    pub(crate) fn published(&self) -> Option<Fsn> {
        self.next_fsn.prev()
    }

    /// The segment frames are appended to, if there is one.
    pub(crate) fn active(&self) -> Option<&LogSegment> {
        self.log.back().filter(|s| !s.sealed)
    }

    /// Mutable access to the active segment.
    pub(crate) fn active_mut(&mut self) -> Option<&mut LogSegment> {
        self.log.back_mut().filter(|s| !s.sealed)
    }

    /// Index into `log` of the segment holding `fsn` (binary search on base).
    pub(crate) fn segment_index_of(&self, fsn: Fsn) -> Option<usize> {
        let after = self.log.partition_point(|s| s.base <= fsn);
        let i = after.checked_sub(1)?;
        let seg = self.log.get(i)?;
        (fsn < seg.end_fsn()).then_some(i)
    }

    /// Locates a published, unacknowledged frame.
    pub(crate) fn locate(&self, fsn: Fsn) -> Option<FrameLocation> {
        if self.acked.is_some_and(|a| fsn <= a) {
            return None;
        }
        let i = self.segment_index_of(fsn)?;
        self.log.get(i)?.locate(fsn)
    }

    /// The lowest published FSN not yet acknowledged that the log still holds.
    pub(crate) fn oldest_unacked(&self) -> Option<Fsn> {
        let first_live = self.log.iter().find(|s| s.frame_count() > 0)?.base;
        let after_acked = self.acked.map_or(Fsn::ZERO, Fsn::next);
        let oldest = first_live.max(after_acked);
        (oldest < self.next_fsn).then_some(oldest)
    }

    /// Takes a cleared frame index from the pool, or a new one.
    pub(crate) fn take_index(&mut self) -> Vec<u32> {
        let mut v = self.index_pool.pop().unwrap_or_default();
        v.clear();
        v
    }

    /// Returns a retired segment's frame index to the pool (bounded, so a
    /// burst of trims does not pin memory forever).
    pub(crate) fn recycle_index(&mut self, mut v: Vec<u32>) {
        const POOL_MAX: usize = 4;
        if self.index_pool.len() < POOL_MAX {
            v.clear();
            self.index_pool.push(v);
        }
    }

    /// The highest FSN whose frame lies, together with every frame before it,
    /// in synced bytes or at or below `acked` (acknowledged frames need no
    /// local durability: the server has them). Never beyond `published`.
    pub(crate) fn durable_frontier(&self) -> Option<Fsn> {
        let mut frontier = self.acked;
        for seg in &self.log {
            let next_needed = frontier.map_or(Fsn::ZERO, Fsn::next);
            if seg.end_fsn() <= next_needed {
                continue;
            }
            if seg.base > next_needed {
                break; // a gap can only mean frames we cannot vouch for
            }
            let whole = seg.whole_frames_below(seg.synced);
            if whole > 0 {
                let top = seg.base.plus(whole - 1);
                if frontier.is_none_or(|f| top > f) {
                    frontier = Some(top);
                }
            }
            if whole < seg.frame_count() {
                break;
            }
        }
        match (frontier, self.published()) {
            (Some(f), Some(p)) => Some(f.min(p)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: u64, lens: &[u64]) -> LogSegment {
        let mut s = LogSegment::installed(SegmentName::Gen(SegmentGen(1)), Fsn(base), 4096, vec![]);
        for l in lens {
            s.starts.push(s.append as u32);
            s.append += FRAME_HEADER + l;
        }
        s
    }

    #[test]
    fn l2_whole_frames_below_rounds_down_mid_frame() {
        // frames at 24..42 (len 10), 42..62 (len 12)
        let s = seg(0, &[10, 12]);
        assert_eq!(s.whole_frames_below(0), 0);
        assert_eq!(s.whole_frames_below(41), 0);
        assert_eq!(s.whole_frames_below(42), 1);
        assert_eq!(s.whole_frames_below(61), 1);
        assert_eq!(s.whole_frames_below(62), 2);
        assert_eq!(s.whole_frames_below(u64::MAX), 2);
    }

    #[test]
    fn locate_reports_payload_len_and_offset() {
        let s = seg(7, &[10, 12]);
        let loc = s.locate(Fsn(8)).expect("frame 8");
        assert_eq!((loc.offset, loc.len), (42, 12));
        assert_eq!(s.locate(Fsn(6)), None);
        assert_eq!(s.locate(Fsn(9)), None);
    }

    #[test]
    fn s1_segment_index_binary_search_over_bases() {
        let ring = Ring {
            log: VecDeque::from(vec![seg(0, &[1, 1]), seg(2, &[1]), seg(3, &[1, 1, 1])]),
            next_fsn: Fsn(6),
            acked: None,
            index_pool: Vec::new(),
        };
        let got: Vec<_> = (0..7).map(|f| ring.segment_index_of(Fsn(f))).collect();
        assert_eq!(
            got,
            vec![Some(0), Some(0), Some(1), Some(2), Some(2), Some(2), None]
        );
    }
}
