//! Local durability: the durable-FSN tracker fed by sync completions
//! (L1–L5), and the durability mode a slot runs in.

/// How far a published frame must get before the producer is told it is safe
/// (`sf_durability`). The spec defers local durability; this crate implements it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DurabilityMode {
    /// Bytes written to the segment (page cache); no fsync.
    #[default]
    Memory,
    /// `flush()` returns once the batch's bytes are fsynced.
    Flush,
    /// Every frame is fsynced before its append returns.
    Append,
}

use crate::Fsn;

/// What a `flush()` waits for: the last frame of a closed batch.
///
/// An empty batch (`last_fsn == None`) has nothing to wait for and is done
/// at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchTicket {
    /// The batch's last frame, or `None` for an empty batch.
    pub last_fsn: Option<Fsn>,
}

/// The local durability tracker (L1–L4): the durable FSN, the batch
/// boundaries, and the FSN up to which the core must ask for syncs.
///
/// It does not see offsets: the storage engine computes the durable frontier
/// from per-segment sync offsets (rounded down to whole frames, L2) and feeds
/// it in with [`DurabilityTracker::advance`].
#[derive(Debug, Clone)]
pub struct DurabilityTracker {
    mode: DurabilityMode,
    durable: Option<Fsn>,
    /// The highest FSN that must become durable without further appends:
    /// the last closed batch (flush), every committed frame (append). Syncs
    /// are requested until `durable` reaches it (L4).
    target: Option<Fsn>,
    /// The highest FSN already included in a closed batch.
    closed_upto: Option<Fsn>,
}

impl DurabilityTracker {
    /// A tracker for `mode`; frames up to `durable` (e.g. acknowledged ones
    /// at open) count as durable already.
    pub fn new(mode: DurabilityMode, durable: Option<Fsn>, published: Option<Fsn>) -> Self {
        DurabilityTracker {
            mode,
            durable,
            target: None,
            closed_upto: published,
        }
    }

    /// At open: frames recovered from an earlier life are on disk, but
    /// whether they reached stable storage is unknown (a crash does not say
    /// which syncs completed). In flush and append durability every
    /// published frame above `durable` is owed a sync, so the durable FSN
    /// reaches the published one without a further append (L4). Memory
    /// durability owes nothing.
    pub fn owe_recovered(&mut self) {
        if self.mode != DurabilityMode::Memory {
            self.target = self.target.max(self.closed_upto);
        }
    }

    /// The mode this tracker runs in.
    pub fn mode(&self) -> DurabilityMode {
        self.mode
    }

    /// The durable FSN: never decreases, never above published (L1).
    pub fn durable(&self) -> Option<Fsn> {
        self.durable
    }

    /// The FSN syncs must reach, if any sync is owed.
    pub fn sync_target(&self) -> Option<Fsn> {
        match (self.target, self.durable) {
            (Some(t), Some(d)) if t <= d => None,
            (t, _) => t,
        }
    }

    /// A frame was committed. In append mode the frame itself is a batch
    /// and its ticket is returned; otherwise `None`.
    pub fn on_commit(&mut self, fsn: Fsn) -> Option<BatchTicket> {
        match self.mode {
            DurabilityMode::Append => {
                self.target = self.target.max(Some(fsn));
                Some(BatchTicket {
                    last_fsn: Some(fsn),
                })
            }
            DurabilityMode::Memory | DurabilityMode::Flush => None,
        }
    }

    /// Closes the current batch (every frame up to `published`). A sync that
    /// already covered it (kept while the batch was open, L3) makes it done
    /// at once; otherwise the target rises and the engine asks for a sync
    /// (L4).
    pub fn end_batch(&mut self, published: Option<Fsn>) -> BatchTicket {
        let last = match (published, self.closed_upto) {
            (Some(p), Some(c)) if p <= c => None,
            (p, _) => p,
        };
        if let Some(l) = last {
            self.closed_upto = Some(l);
            if self.mode != DurabilityMode::Memory {
                self.target = self.target.max(Some(l));
            }
        }
        BatchTicket { last_fsn: last }
    }

    /// Raises the durable FSN to `frontier` if higher, clamped to
    /// `published` (L1). Lower values are ignored.
    pub fn advance(&mut self, frontier: Option<Fsn>, published: Option<Fsn>) {
        let capped = match (frontier, published) {
            (Some(f), Some(p)) => Some(f.min(p)),
            _ => None,
        };
        if capped > self.durable {
            self.durable = capped;
        }
    }

    /// Whether the batch behind `ticket` is done: committed (memory), or its
    /// last frame durable (flush, append).
    pub fn is_done(&self, ticket: BatchTicket) -> bool {
        match (self.mode, ticket.last_fsn) {
            (_, None) | (DurabilityMode::Memory, _) => true,
            (_, Some(last)) => self.durable.is_some_and(|d| d >= last),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1_durable_never_decreases_nor_exceeds_published() {
        let mut t = DurabilityTracker::new(DurabilityMode::Flush, None, None);
        t.advance(Some(Fsn(5)), Some(Fsn(3)));
        assert_eq!(t.durable(), Some(Fsn(3)));
        t.advance(Some(Fsn(1)), Some(Fsn(9)));
        assert_eq!(t.durable(), Some(Fsn(3)));
        t.advance(Some(Fsn(1)), None);
        assert_eq!(t.durable(), Some(Fsn(3)));
    }

    #[test]
    fn c1_empty_batch_is_done_and_owes_no_sync() {
        let mut t = DurabilityTracker::new(DurabilityMode::Flush, None, Some(Fsn(4)));
        let ticket = t.end_batch(Some(Fsn(4)));
        assert_eq!(ticket.last_fsn, None);
        assert!(t.is_done(ticket));
        assert_eq!(t.sync_target(), None);
    }

    #[test]
    fn l3_batch_done_only_when_last_frame_durable() {
        let mut t = DurabilityTracker::new(DurabilityMode::Flush, None, None);
        t.advance(Some(Fsn(1)), Some(Fsn(2)));
        let ticket = t.end_batch(Some(Fsn(2)));
        assert!(!t.is_done(ticket));
        assert_eq!(t.sync_target(), Some(Fsn(2)));
        t.advance(Some(Fsn(2)), Some(Fsn(2)));
        assert!(t.is_done(ticket));
        assert_eq!(t.sync_target(), None);
    }

    #[test]
    fn c1_memory_durability_done_once_committed() {
        let mut t = DurabilityTracker::new(DurabilityMode::Memory, None, None);
        let ticket = t.end_batch(Some(Fsn(0)));
        assert!(t.is_done(ticket));
        assert_eq!(t.sync_target(), None);
        assert_eq!(t.on_commit(Fsn(1)), None);
    }

    #[test]
    fn l4_recovered_frames_are_owed_a_sync_in_syncing_modes() {
        let mut t = DurabilityTracker::new(DurabilityMode::Flush, Some(Fsn(1)), Some(Fsn(4)));
        t.owe_recovered();
        assert_eq!(t.sync_target(), Some(Fsn(4)));
        let mut t = DurabilityTracker::new(DurabilityMode::Append, Some(Fsn(4)), Some(Fsn(4)));
        t.owe_recovered();
        assert_eq!(t.sync_target(), None, "nothing above durable is owed");
        let mut t = DurabilityTracker::new(DurabilityMode::Memory, None, Some(Fsn(4)));
        t.owe_recovered();
        assert_eq!(t.sync_target(), None);
    }

    #[test]
    fn append_mode_every_commit_is_a_ticket() {
        let mut t = DurabilityTracker::new(DurabilityMode::Append, None, None);
        let ticket = t.on_commit(Fsn(0)).expect("append mode tickets each frame");
        assert!(!t.is_done(ticket));
        assert_eq!(t.sync_target(), Some(Fsn(0)));
    }
}
