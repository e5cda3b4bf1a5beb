//! Recovery planning: from a slot's directory listing and each segment's scan,
//! decide the recovered state or refuse with a precise error (S1, S3, S8).
//!
//! The output types below are the contract between recovery and the ring
//! ([`crate::ring`], [`crate::storage`]): the ring is rebuilt from a
//! [`RecoveredSlot`] and nothing else.

use crate::{Fsn, SegmentGen};

/// A segment that recovery keeps as part of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredSegment {
    /// Its generation, or `None` for the legacy file `sf-initial.sfa`.
    pub gen: Option<SegmentGen>,
    /// FSN of its first frame (`baseSeq` from its header).
    pub base_fsn: Fsn,
    /// Start offset of each verified frame, ascending; frame `i` has FSN
    /// `base_fsn + i`. Lets the ring locate any FSN for replay without
    /// re-reading the file.
    pub frame_offsets: Vec<u64>,
    /// Byte offset just past the last verified frame (`last_good`): where
    /// the next frame would be written.
    pub append_offset: u64,
    /// The file's size in bytes (its capacity).
    pub file_size: u64,
    /// Non-zero bytes found after `append_offset` that form a torn tail (an
    /// interrupted append). The ring never appends into a segment with a
    /// torn tail: it seals it and rotates, so new frames never sit next to
    /// garbage that a later recovery would have to judge.
    pub torn_tail_bytes: u64,
}

impl RecoveredSegment {
    /// Number of verified frames.
    pub fn frame_count(&self) -> u64 {
        self.frame_offsets.len() as u64
    }

    /// The file name of this segment inside the slot directory.
    pub fn file_name(&self) -> String {
        match self.gen {
            Some(g) => g.file_name(),
            None => LEGACY_INITIAL_SEGMENT.to_string(),
        }
    }
}

/// The legacy segment file name accepted by recovery (sf-client §5.3).
pub const LEGACY_INITIAL_SEGMENT: &str = "sf-initial.sfa";

/// A segment file that holds no frames and is not part of the log: an unused
/// pre-provisioned spare, either all zeros (created, never installed) or with
/// a valid header and no frames. Kept on disk; the ring may reuse it as a
/// spare or unlink it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftoverSpare {
    /// Its generation.
    pub gen: SegmentGen,
    /// The file's size in bytes.
    pub file_size: u64,
}

/// The state a slot is reopened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredSlot {
    /// The log's segments, ascending by `base_fsn`, contiguous in FSN; the
    /// last one is the active segment. Empty for a fresh slot.
    pub segments: Vec<RecoveredSegment>,
    /// Empty spares found on disk, not part of the log.
    pub leftover_spares: Vec<LeftoverSpare>,
    /// The FSN the next appended frame receives (one past the highest
    /// recovered frame; S1: never restarts at 0 on a non-empty slot).
    pub next_fsn: Fsn,
    /// The highest acknowledged FSN per S8, or `None` when nothing is.
    pub acked: Option<Fsn>,
    /// The generation the next created segment file receives
    /// (`max(existing gen) + 1`).
    pub next_gen: SegmentGen,
}

impl RecoveredSlot {
    /// The state of a slot with no files: FSN and generation start at 0.
    pub fn empty() -> RecoveredSlot {
        RecoveredSlot {
            segments: Vec::new(),
            leftover_spares: Vec::new(),
            next_fsn: Fsn::ZERO,
            acked: None,
            next_gen: SegmentGen(0),
        }
    }
}
