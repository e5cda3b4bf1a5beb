//! What the simulated disk may do wrong, what a crash is, and what the disk
//! counted. Rates are integers per million so a run never depends on
//! floating-point rounding.

use crate::SimRng;

/// Which kind of crash ends the engine's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrashKind {
    /// The process dies: the page cache survives, so every byte written
    /// (synced or not) is still there; handles are gone.
    Process,
    /// The machine dies: only synced bytes are sure; every unsynced 512-byte
    /// sector is independently kept, lost or torn, unsynced directory
    /// changes may be undone, and rare bit flips at rest may appear.
    Host,
}

impl CrashKind {
    /// A short name for traces.
    pub fn as_str(self) -> &'static str {
        match self {
            CrashKind::Process => "process",
            CrashKind::Host => "host",
        }
    }
}

/// One kind of disk operation, for one-shot failures
/// ([`super::SimDisk::fail_next`]) and for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DiskOp {
    /// `CreateSegment` (default failure: ENOSPC).
    Create,
    /// `InstallHeader` (default failure: EIO).
    InstallHeader,
    /// The producer's frame write, [`super::SimDisk::write_frame`]
    /// (default failure: EIO, leaving a partial frame behind).
    WriteFrame,
    /// `Sync` (default failure: EIO; the dirty pages of the range are lost).
    Sync,
    /// `Sync` that succeeds only part of the way and reports an offset
    /// below the request, possibly inside a frame (the failure is ignored).
    PartialSync,
    /// `Unlink` (default failure: EIO; the file stays).
    Unlink,
    /// `PersistAckWatermark` (default failure: EIO).
    PersistWatermark,
    /// `RemoveAckWatermark` (default failure: EIO).
    RemoveWatermark,
    /// Listing the slot directory in [`super::SimDisk::recover`].
    List,
    /// Reading a segment's size in the listing.
    Stat,
    /// Reading a segment file's bytes in recovery.
    Read,
    /// Reading `.ack-watermark` in recovery.
    ReadWatermark,
}

impl DiskOp {
    /// Every operation kind.
    pub const ALL: [DiskOp; 12] = [
        DiskOp::Create,
        DiskOp::InstallHeader,
        DiskOp::WriteFrame,
        DiskOp::Sync,
        DiskOp::PartialSync,
        DiskOp::Unlink,
        DiskOp::PersistWatermark,
        DiskOp::RemoveWatermark,
        DiskOp::List,
        DiskOp::Stat,
        DiskOp::Read,
        DiskOp::ReadWatermark,
    ];

    /// A short name for traces.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskOp::Create => "create",
            DiskOp::InstallHeader => "install_header",
            DiskOp::WriteFrame => "write_frame",
            DiskOp::Sync => "sync",
            DiskOp::PartialSync => "partial_sync",
            DiskOp::Unlink => "unlink",
            DiskOp::PersistWatermark => "persist_watermark",
            DiskOp::RemoveWatermark => "remove_watermark",
            DiskOp::List => "list",
            DiskOp::Stat => "stat",
            DiskOp::Read => "read",
            DiskOp::ReadWatermark => "read_watermark",
        }
    }
}

/// Fault rates of the simulated disk (per million operations unless said
/// otherwise) and the host-crash model for unsynced sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFaults {
    /// `CreateSegment` fails with ENOSPC.
    pub create_enospc: u32,
    /// The disk holds at most this many bytes of files; a creation beyond
    /// it fails with ENOSPC (a deterministic "disk full").
    pub capacity_bytes: Option<u64>,
    /// A frame write or header install fails with EIO.
    pub write_eio: u32,
    /// A sync fails with EIO; the dirty pages of its range are lost (marked
    /// clean without reaching the medium, as Linux does after a writeback
    /// error) until something rewrites them.
    pub sync_eio: u32,
    /// A sync completes only part of its range and reports that offset,
    /// which may lie inside a frame.
    pub partial_sync: u32,
    /// An unlink (segment or watermark) fails; the file stays.
    pub unlink_fail: u32,
    /// A watermark write fails with EIO.
    pub watermark_fail: u32,
    /// Listing the slot directory fails in recovery (transient: the next
    /// [`super::SimDisk::recover`] draws again).
    pub listing_fail: u32,
    /// Reading one segment's size fails in recovery (per file).
    pub stat_fail: u32,
    /// Reading one segment's bytes fails in recovery (per file).
    pub read_fail: u32,
    /// Per segment file and host crash: one bit of it flips at rest.
    /// `.ack-watermark` is spared: its format has no checksum, so a flip
    /// there is undetectable by design rather than a finding.
    pub bit_flip: u32,
    /// Host-crash model: an unsynced sector reaches the medium whole.
    pub sector_kept: u32,
    /// Host-crash model: an unsynced sector is left torn (a prefix of the
    /// new bytes over the old ones). The remainder of the million is lost.
    pub sector_torn: u32,
}

impl DiskFaults {
    /// The default host-crash model: half the unsynced sectors were
    /// written back, a tenth torn, the rest lost.
    pub const DEFAULT_SECTOR_KEPT: u32 = 500_000;
    /// See [`DiskFaults::DEFAULT_SECTOR_KEPT`].
    pub const DEFAULT_SECTOR_TORN: u32 = 100_000;

    /// No injected fault. A host crash still loses, keeps or tears unsynced
    /// sectors per the default model: that is what a crash is, not a fault.
    pub fn none() -> DiskFaults {
        DiskFaults {
            create_enospc: 0,
            capacity_bytes: None,
            write_eio: 0,
            sync_eio: 0,
            partial_sync: 0,
            unlink_fail: 0,
            watermark_fail: 0,
            listing_fail: 0,
            stat_fail: 0,
            read_fail: 0,
            bit_flip: 0,
            sector_kept: Self::DEFAULT_SECTOR_KEPT,
            sector_torn: Self::DEFAULT_SECTOR_TORN,
        }
    }

    /// A random mix for swarm testing: each fault family is switched on
    /// with some probability, at a rate between rare and frequent, so
    /// different seeds stress different combinations.
    pub fn random(rng: &mut SimRng) -> DiskFaults {
        let mut rate = |on_per_million: u32, max: u64| -> u32 {
            if rng.chance(on_per_million) {
                // Rates are at most 300_000, so this fits u32.
                u32::try_from(rng.range_inclusive(1_000, max)).unwrap_or(0)
            } else {
                0
            }
        };
        let mut f = DiskFaults {
            create_enospc: rate(400_000, 200_000),
            capacity_bytes: None,
            write_eio: rate(300_000, 20_000),
            sync_eio: rate(400_000, 200_000),
            partial_sync: rate(400_000, 300_000),
            unlink_fail: rate(400_000, 300_000),
            watermark_fail: rate(300_000, 200_000),
            listing_fail: rate(200_000, 300_000),
            stat_fail: rate(200_000, 50_000),
            read_fail: rate(200_000, 50_000),
            bit_flip: rate(100_000, 50_000),
            sector_kept: Self::DEFAULT_SECTOR_KEPT,
            sector_torn: Self::DEFAULT_SECTOR_TORN,
        };
        let kept = rng.below(1_000_001);
        let torn = rng.below(1_000_001 - kept);
        f.sector_kept = u32::try_from(kept).unwrap_or(0);
        f.sector_torn = u32::try_from(torn).unwrap_or(0);
        f
    }

    /// The rate of random failures for `op`.
    pub(crate) fn rate(&self, op: DiskOp) -> u32 {
        match op {
            DiskOp::Create => self.create_enospc,
            DiskOp::InstallHeader | DiskOp::WriteFrame => self.write_eio,
            DiskOp::Sync => self.sync_eio,
            DiskOp::PartialSync => self.partial_sync,
            DiskOp::Unlink => self.unlink_fail,
            DiskOp::PersistWatermark | DiskOp::RemoveWatermark => self.watermark_fail,
            DiskOp::List => self.listing_fail,
            DiskOp::Stat => self.stat_fail,
            DiskOp::Read | DiskOp::ReadWatermark => self.read_fail,
        }
    }
}

impl Default for DiskFaults {
    fn default() -> Self {
        DiskFaults::none()
    }
}

/// Injected faults, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InjectedFaults {
    /// Creations refused with ENOSPC (rate, capacity or one-shot).
    pub enospc: u64,
    /// Frame writes and header installs failed with EIO.
    pub write_eio: u64,
    /// Syncs failed with EIO.
    pub sync_eio: u64,
    /// Syncs that reported a partial offset.
    pub partial_sync: u64,
    /// Unlinks (segment or watermark) that failed.
    pub unlink_fail: u64,
    /// Watermark writes that failed.
    pub watermark_fail: u64,
    /// Directory listings that failed.
    pub listing_fail: u64,
    /// Size reads that failed.
    pub stat_fail: u64,
    /// File reads (segment or watermark) that failed.
    pub read_fail: u64,
    /// Bits flipped at rest.
    pub bit_flips: u64,
}

/// What the disk holds and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStats {
    /// Files in the slot directory (segments, watermark, partial files).
    pub files: usize,
    /// Bytes of those files.
    pub bytes: u64,
    /// Files mapped by the (simulated) adapter: created or recovered and
    /// not yet unlinked or lost in a crash.
    pub open_handles: usize,
    /// Storage outputs performed.
    pub operations: u64,
    /// Syncs performed (successful or not).
    pub syncs: u64,
    /// Frames written by the producer.
    pub frame_writes: u64,
    /// Process crashes.
    pub process_crashes: u64,
    /// Host crashes.
    pub host_crashes: u64,
    /// Unsynced sectors a host crash kept.
    pub sectors_kept: u64,
    /// Unsynced sectors a host crash lost (including those a failed sync
    /// had already lost).
    pub sectors_lost: u64,
    /// Unsynced sectors a host crash tore.
    pub sectors_torn: u64,
    /// Unsynced directory changes (creations, removals) a host crash undid.
    pub dir_ops_undone: u64,
    /// Injected faults by kind.
    pub injected: InjectedFaults,
}
