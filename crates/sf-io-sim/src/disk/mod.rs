//! The simulated disk: one slot directory's files, each with a volatile
//! image (the page cache) and a durable image (the medium), with the crash
//! semantics and faults of DESIGN §5.
//!
//! # What it models, and how it mirrors the tokio adapter
//!
//! [`SimDisk::perform`] carries out one [`StorageOutput`] the way
//! `sf-io-tokio`'s fs layer does:
//!
//! * `CreateSegment`: a new file `sf-<gen>.sfa` (`O_EXCL`: an existing name
//!   fails), zero-filled at full size and mapped. On ENOSPC nothing is
//!   mapped; a 0-byte file may be left behind for the core's follow-up
//!   unlink (the adapter leaves a partial file the same way).
//! * `InstallHeader`: the 24-byte header written into the spare's mapping.
//! * `Sync`: with `rewrite`, the range is written again first (re-dirtying
//!   pages a failed sync lost, L5); then `msync` of the range widened to
//!   whole 4 KiB pages. The first sync of a file in a session is also the
//!   adapter's `sync_all` of the file plus the directory fsync, which makes
//!   every directory change so far durable. A failed sync loses the range's
//!   dirty pages (marked clean, never written) until they are rewritten.
//! * `Unlink` / `RemoveAckWatermark`: a missing file counts as success; a
//!   failed segment unlink still drops the mapping, as the adapter does.
//! * `PersistAckWatermark`: 16 bytes written (file created if missing),
//!   synced only when `durable` (the rewrite at open); `RemoveAckWatermark`
//!   with `durable` also fsyncs the directory.
//!
//! [`SimDisk::write_frame`] is the producer's copy into the mapping and
//! [`SimDisk::frame_bytes`] the replay read. [`SimDisk::recover`] opens the
//! slot through the real planner ([`recovery::plan_reads`] then
//! [`recovery::plan`]) over the volatile images; it rewrites nothing.
//!
//! # Crashes
//!
//! * [`CrashKind::Process`]: every byte written survives (page cache),
//!   including the dirty and the lost state of each sector; mappings close.
//! * [`CrashKind::Host`]: each file becomes what its medium holds. Each
//!   unsynced 512-byte sector is independently kept, lost or torn
//!   ([`DiskFaults::sector_kept`], [`DiskFaults::sector_torn`]); directory
//!   changes (creations, removals) since the last directory fsync are undone
//!   from a random point on (a journal commits them in order, so a suffix is
//!   lost: an unlinked file may come back, a created one may vanish or
//!   remain empty); then, rarely, a bit flips at rest in a segment file,
//!   past its header (header fields and `.ack-watermark` carry no checksum:
//!   a flip there is undetectable by the format, so it is not simulated).
//! * Memory backing ([`Backing::Memory`]): a crash of either kind loses
//!   every segment.
//!
//! Determinism (D1): files live in a `BTreeMap`, and every random choice
//! comes from the disk's own [`SimRng`] stream, in a fixed order.

mod faults;
mod file;

pub use faults::{CrashKind, DiskFaults, DiskOp, DiskStats, InjectedFaults};
pub use file::{PAGE, SECTOR};

use std::collections::{BTreeMap, VecDeque};

use sf_core::recovery::{
    self, ListingEntry, ListingError, RecoveryError, RecoveryPlan, SegmentRead, WatermarkRead,
};
use sf_core::ring::{FrameLocation, SegmentName};
use sf_core::segment::{self, SegmentHeader, SEGMENT_HEADER_LEN};
use sf_core::storage::{Backing, IoFailure, IoOutcome, Placement, StorageOutput};
use sf_core::watermark::{encode_watermark, ACK_WATERMARK_FILE_NAME, ACK_WATERMARK_LEN};
use sf_core::{Fsn, SegmentGen};

use crate::SimRng;
use file::SimFile;

/// EIO.
const EIO: i32 = 5;
/// ENOENT.
const ENOENT: i32 = 2;
/// EEXIST.
const EEXIST: i32 = 17;
/// EINVAL.
const EINVAL: i32 = 22;

/// A directory change not yet made durable by a directory fsync.
#[derive(Debug, Clone)]
enum DirOp {
    /// The name was created.
    Create(String),
    /// The name was removed; the file as it was, should a crash undo it.
    Remove(String, SimFile),
}

/// The simulated slot directory. See the module docs.
#[derive(Debug, Clone)]
pub struct SimDisk {
    rng: SimRng,
    faults: DiskFaults,
    backing: Backing,
    files: BTreeMap<String, SimFile>,
    /// Directory changes since the last directory fsync, oldest first.
    dir_log: Vec<DirOp>,
    /// One-shot failures queued by [`SimDisk::fail_next_with`].
    one_shot: BTreeMap<DiskOp, VecDeque<IoFailure>>,
    /// `createdMicros` written into headers.
    created_micros: i64,
    stats: DiskStats,
}

impl SimDisk {
    /// An empty file-backed slot directory whose random choices come from
    /// `rng`, injecting `faults`.
    pub fn new(rng: SimRng, faults: DiskFaults) -> SimDisk {
        SimDisk {
            rng,
            faults,
            backing: Backing::Files,
            files: BTreeMap::new(),
            dir_log: Vec::new(),
            one_shot: BTreeMap::new(),
            created_micros: 0,
            stats: DiskStats::default(),
        }
    }

    /// The same disk serving an engine with `backing` (memory backing needs
    /// no durability: a crash loses every segment, and there is no sync,
    /// watermark or directory).
    pub fn with_backing(mut self, backing: Backing) -> SimDisk {
        self.backing = backing;
        self
    }

    /// The backing this disk serves.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// Replaces the fault rates (the world turns faults off for the
    /// liveness phase). Queued one-shot failures stay queued.
    pub fn set_faults(&mut self, faults: DiskFaults) {
        self.faults = faults;
    }

    /// The fault rates in force.
    pub fn faults(&self) -> &DiskFaults {
        &self.faults
    }

    /// Makes the next `op` fail with its default failure (ENOSPC for a
    /// creation, EIO otherwise), whatever the rates say. For
    /// [`DiskOp::PartialSync`]: the next successful sync is partial.
    pub fn fail_next(&mut self, op: DiskOp) {
        let failure = match op {
            DiskOp::Create => IoFailure::NoSpace,
            _ => IoFailure::Io { os_code: Some(EIO) },
        };
        self.fail_next_with(op, failure);
    }

    /// Makes the next `op` fail with `failure` (queued behind earlier
    /// one-shots of the same kind).
    pub fn fail_next_with(&mut self, op: DiskOp, failure: IoFailure) {
        self.one_shot.entry(op).or_default().push_back(failure);
    }

    /// Sets the `createdMicros` written into later segment headers (the
    /// world may pass its virtual clock; the default is 0).
    pub fn set_created_micros(&mut self, micros: i64) {
        self.created_micros = micros;
    }

    // ----- the adapter's operations ------------------------------------------

    /// Carries out one storage output (see the module docs) and returns
    /// the outcome to feed back under the output's id.
    pub fn perform(&mut self, op: &StorageOutput) -> IoOutcome {
        self.stats.operations += 1;
        match *op {
            StorageOutput::CreateSegment { gen, size, .. } => self.create(gen, size),
            StorageOutput::InstallHeader { gen, base_fsn, .. } => {
                self.install_header(gen, base_fsn)
            }
            StorageOutput::Sync {
                name,
                from_offset,
                upto_offset,
                rewrite,
                ..
            } => self.sync(name, from_offset, upto_offset, rewrite),
            StorageOutput::Unlink { name, .. } => self.unlink(name),
            StorageOutput::PersistAckWatermark { fsn, durable, .. } => {
                self.persist_watermark(fsn, durable)
            }
            StorageOutput::RemoveAckWatermark { durable, .. } => self.remove_watermark(durable),
        }
    }

    /// The producer's write of a placed frame (header first when the
    /// placement installs a segment), through the segment codec. On an
    /// injected EIO a prefix of (header, length, payload) may have reached
    /// the mapping (never the CRC, and never frame bytes without the
    /// header the same write installs): the core seals or discards the
    /// segment, so that partial frame becomes a torn tail. Pass the result
    /// to `commit_append`.
    pub fn write_frame(&mut self, placement: &Placement, payload: &[u8]) -> Result<(), IoFailure> {
        self.stats.frame_writes += 1;
        let name = placement.gen.file_name();
        let injected = self.inject(DiskOp::WriteFrame);
        let created_micros = self.created_micros;
        let Some(file) = self.files.get_mut(&name).filter(|f| f.mapped) else {
            return Err(IoFailure::Io {
                os_code: Some(ENOENT),
            });
        };
        let offset = usize::try_from(placement.offset).unwrap_or(usize::MAX);
        if payload.len() != placement.payload_len as usize {
            return Err(IoFailure::Io {
                os_code: Some(EINVAL),
            });
        }
        let header = match placement.header {
            Some(h) => match SegmentHeader::new(h.base_fsn, created_micros) {
                Ok(h) => Some(h.encode()),
                Err(_) => {
                    return Err(IoFailure::Io {
                        os_code: Some(EINVAL),
                    })
                }
            },
            None => None,
        };
        let end = offset.saturating_add(segment::frame_len(payload.len()));
        if end > file.len() {
            return Err(IoFailure::Io {
                os_code: Some(EINVAL),
            });
        }
        if let Some(failure) = injected {
            // Some prefix of (header, length, payload) landed; the CRC,
            // written last, did not. A prefix: the adapter writes the
            // header first and stops at its failure, so frame bytes never
            // land in an installing segment whose header did not (that
            // would be headerless data, which no crash of the real adapter
            // leaves behind and recovery rightly refuses).
            let header_landed = match header {
                Some(h) => {
                    let landed = self.rng.coin();
                    if landed {
                        file.write(0, &h);
                    }
                    landed
                }
                None => true,
            };
            // The placement's length fits i32 (the engine caps payloads).
            let len = i32::try_from(payload.len()).unwrap_or(i32::MAX);
            let mut body = len.to_le_bytes().to_vec();
            body.extend_from_slice(payload);
            // Drawn even when nothing more lands, so the random stream (and
            // every other saved seed's run) stays as it was.
            let n = usize::try_from(self.rng.below(body.len() as u64 + 1)).unwrap_or(0);
            if let Some(prefix) = body.get(..n).filter(|_| header_landed) {
                file.write(offset + 4, prefix);
            }
            return Err(failure);
        }
        if let Some(h) = header {
            file.write(0, &h);
        }
        let written = file.write_with(offset..end, |image| {
            segment::write_frame(image, offset, payload)
        });
        match written {
            Ok(_) => Ok(()),
            Err(_) => Err(IoFailure::Io {
                os_code: Some(EINVAL),
            }),
        }
    }

    /// The payload of the frame at `location` as the adapter would read it
    /// for `Output::Send` (CRC-checked); `None` if the file is gone or the
    /// bytes there are not that frame.
    pub fn frame_bytes(&self, location: &FrameLocation) -> Option<&[u8]> {
        let file = self.files.get(&location.name.file_name())?;
        segment::read_frame(file.volatile(), location.offset)
            .ok()
            .filter(|p| p.len() == location.len as usize)
    }

    // ----- crashes and recovery ---------------------------------------------

    /// Ends the engine's life with a crash of `kind` (see the module docs).
    pub fn crash(&mut self, kind: CrashKind) {
        match kind {
            CrashKind::Process => self.stats.process_crashes += 1,
            CrashKind::Host => self.stats.host_crashes += 1,
        }
        if self.backing == Backing::Memory {
            self.files.clear();
            self.dir_log.clear();
            return;
        }
        match kind {
            CrashKind::Process => {
                for f in self.files.values_mut() {
                    f.mapped = false;
                    f.metadata_synced = false;
                }
            }
            CrashKind::Host => self.host_crash(),
        }
    }

    fn host_crash(&mut self) {
        // Undo a suffix of the unsynced directory changes, newest first.
        let log = std::mem::take(&mut self.dir_log);
        let keep = usize::try_from(self.rng.below(log.len() as u64 + 1)).unwrap_or(0);
        let undone = log.len().saturating_sub(keep);
        self.stats.dir_ops_undone += undone as u64;
        for op in log.into_iter().skip(keep).rev() {
            match op {
                DirOp::Create(name) => {
                    // The name may have reached the journal without the
                    // size: an empty file, which recovery skips.
                    let empty = self.rng.coin();
                    self.files.remove(&name);
                    if empty {
                        self.files.insert(name, SimFile::zeroed(0));
                    }
                }
                DirOp::Remove(name, file) => {
                    self.files.insert(name, file);
                }
            }
        }
        let (kept, torn) = (self.faults.sector_kept, self.faults.sector_torn);
        for f in self.files.values_mut() {
            let fates = f.host_crash(&mut self.rng, kept, torn);
            self.stats.sectors_kept += fates.kept;
            self.stats.sectors_lost += fates.lost;
            self.stats.sectors_torn += fates.torn;
        }
        if self.faults.bit_flip > 0 {
            let names: Vec<String> = self
                .files
                .keys()
                .filter(|n| SegmentGen::parse_file_name(n).is_some())
                .cloned()
                .collect();
            for name in names {
                if !self.rng.chance(self.faults.bit_flip) {
                    continue;
                }
                let Some(f) = self.files.get(&name) else {
                    continue;
                };
                // Only past the header: its fields carry no checksum (a
                // flipped `baseSeq` shifts every FSN undetectably), so a
                // flip there is a limit of the format, not a finding. Half
                // the flips land in the written frames, the rest anywhere
                // after the header.
                let span = if self.rng.coin() {
                    f.written_len()
                } else {
                    f.len()
                };
                if span <= SEGMENT_HEADER_LEN {
                    continue;
                }
                let at = SEGMENT_HEADER_LEN
                    + usize::try_from(self.rng.below((span - SEGMENT_HEADER_LEN) as u64))
                        .unwrap_or(0);
                let bit = (self.rng.below(8)) as u8;
                if self.flip_bit(&name, at as u64, bit) {
                    self.stats.injected.bit_flips += 1;
                }
            }
        }
    }

    /// Flips bit `bit` (0–7) of byte `offset` of file `name` at rest, on the
    /// medium and in the cache; `false` if there is no such byte. For
    /// targeted corruption tests between a crash and [`SimDisk::recover`].
    pub fn flip_bit(&mut self, name: &str, offset: u64, bit: u8) -> bool {
        let Ok(at) = usize::try_from(offset) else {
            return false;
        };
        self.files
            .get_mut(name)
            .is_some_and(|f| f.flip_bit(at, bit))
    }

    /// Opens the slot for a new life through the real recovery planner,
    /// with listing, size and read failures injected per the faults. It
    /// changes no byte and no name; the files recovery keeps (log segments
    /// and leftover spares) are mapped, as the adapter maps them. Memory
    /// backing recovers an empty slot.
    pub fn recover(&mut self) -> Result<RecoveryPlan, RecoveryError> {
        if self.backing == Backing::Memory {
            self.files.clear();
            let read_plan = recovery::plan_reads(Ok(Vec::new()))?;
            return recovery::plan(read_plan, Vec::new(), WatermarkRead::Absent);
        }
        // A new process: nothing is mapped, and its first sync of each file
        // fsyncs file and directory again.
        for f in self.files.values_mut() {
            f.mapped = false;
            f.metadata_synced = false;
        }
        let listing = if self.inject(DiskOp::List).is_some() {
            Err(ListingError(
                "sim: reading the slot directory failed (os error 5)".to_string(),
            ))
        } else {
            let names: Vec<(String, u64)> = self
                .files
                .iter()
                .map(|(n, f)| (n.clone(), f.len() as u64))
                .collect();
            let mut entries = Vec::with_capacity(names.len());
            for (name, len) in names {
                // Only segment sizes matter to the planner; a failed stat
                // of another entry would be ignored, so none is drawn.
                let is_segment = name.ends_with(".sfa");
                let size = if is_segment && self.inject(DiskOp::Stat).is_some() {
                    Err(format!("sim: stat {name} failed (os error 5)"))
                } else {
                    Ok(len)
                };
                entries.push(ListingEntry { name, size });
            }
            // Directory order is arbitrary: never hand the planner a sorted
            // listing it could come to rely on.
            for i in (1..entries.len()).rev() {
                let j = usize::try_from(self.rng.below(i as u64 + 1)).unwrap_or(0);
                entries.swap(i, j);
            }
            Ok(entries)
        };
        let read_plan = recovery::plan_reads(listing)?;
        let mut reads = Vec::with_capacity(read_plan.segment_files().len());
        for planned in read_plan.segment_files() {
            let read = if self.inject(DiskOp::Read).is_some() {
                SegmentRead::Failed(format!("sim: reading {} failed (os error 5)", planned.name))
            } else {
                match self.files.get(&planned.name) {
                    Some(f) => SegmentRead::from_image(f.volatile()),
                    None => SegmentRead::Failed(format!("sim: {} vanished", planned.name)),
                }
            };
            reads.push(read);
        }
        let watermark = if !read_plan.reads_watermark() {
            WatermarkRead::Absent
        } else if self.inject(DiskOp::ReadWatermark).is_some() {
            WatermarkRead::Failed("sim: reading .ack-watermark failed (os error 5)".to_string())
        } else {
            match self.files.get(ACK_WATERMARK_FILE_NAME) {
                Some(f) => WatermarkRead::Bytes(f.volatile().to_vec()),
                None => WatermarkRead::Absent,
            }
        };
        let plan = recovery::plan(read_plan, reads, watermark)?;
        let kept = plan
            .slot
            .segments
            .iter()
            .map(|s| SegmentName::from(s.gen))
            .chain(
                plan.slot
                    .leftover_spares
                    .iter()
                    .map(|s| SegmentName::Gen(s.gen)),
            );
        for name in kept {
            if let Some(f) = self.files.get_mut(&name.file_name()) {
                f.mapped = true;
            }
        }
        Ok(plan)
    }

    // ----- inspection --------------------------------------------------------

    /// Counters and the current footprint.
    pub fn stats(&self) -> DiskStats {
        let mut s = self.stats;
        s.files = self.files.len();
        s.bytes = self.files.values().map(|f| f.len() as u64).sum();
        s.open_handles = self.files.values().filter(|f| f.mapped).count();
        s
    }

    /// The names in the slot directory, sorted.
    pub fn file_names(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// Whether file `name` exists.
    pub fn contains(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// What a reader sees in file `name` now (the page cache).
    pub fn volatile_image(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(SimFile::volatile)
    }

    /// What the medium holds for file `name` (what a host crash would
    /// leave, apart from unsynced sectors it happens to keep).
    pub fn durable_image(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(SimFile::durable)
    }

    /// Whether bytes `[from, upto)` of file `name` are on the medium as
    /// the cache holds them (every sector touching the range is clean).
    pub fn is_durable(&self, name: &str, from: u64, upto: u64) -> bool {
        let (Ok(from), Ok(upto)) = (usize::try_from(from), usize::try_from(upto)) else {
            return false;
        };
        self.files
            .get(name)
            .is_some_and(|f| upto <= f.len() && f.is_durable(from, upto))
    }

    /// Whether file `name` is mapped by the (simulated) adapter.
    pub fn is_mapped(&self, name: &str) -> bool {
        self.files.get(name).is_some_and(|f| f.mapped)
    }

    /// A hash of every file's name, volatile and durable image (D1: the
    /// same seed and operations give the same fingerprint).
    pub fn fingerprint(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for (name, f) in &self.files {
            eat(name.as_bytes());
            eat(&(f.len() as u64).to_le_bytes());
            eat(f.volatile());
            eat(f.durable());
        }
        h
    }

    // ----- internals -----------------------------------------------------------

    /// The failure to inject for `op`, if any: a queued one-shot first,
    /// then the random rate. A zero rate draws nothing, so switching a
    /// fault family off does not shift the other draws of a run.
    fn inject(&mut self, op: DiskOp) -> Option<IoFailure> {
        let failure = if let Some(f) = self.one_shot.get_mut(&op).and_then(VecDeque::pop_front) {
            Some(f)
        } else if self.rng.chance(self.faults.rate(op)) {
            Some(match op {
                DiskOp::Create => IoFailure::NoSpace,
                _ => IoFailure::Io { os_code: Some(EIO) },
            })
        } else {
            None
        }?;
        let i = &mut self.stats.injected;
        match op {
            DiskOp::Create => i.enospc += 1,
            DiskOp::InstallHeader | DiskOp::WriteFrame => i.write_eio += 1,
            DiskOp::Sync => i.sync_eio += 1,
            DiskOp::PartialSync => i.partial_sync += 1,
            DiskOp::Unlink => i.unlink_fail += 1,
            DiskOp::RemoveWatermark => i.unlink_fail += 1,
            DiskOp::PersistWatermark => i.watermark_fail += 1,
            DiskOp::List => i.listing_fail += 1,
            DiskOp::Stat => i.stat_fail += 1,
            DiskOp::Read | DiskOp::ReadWatermark => i.read_fail += 1,
        }
        Some(failure)
    }

    fn files_backed(&self) -> bool {
        self.backing == Backing::Files
    }

    fn log_dir(&mut self, op: DirOp) {
        if self.files_backed() {
            self.dir_log.push(op);
        }
    }

    fn used_bytes(&self) -> u64 {
        self.files.values().map(|f| f.len() as u64).sum()
    }

    fn create(&mut self, gen: SegmentGen, size: u64) -> IoOutcome {
        let name = gen.file_name();
        if self.files.contains_key(&name) {
            return IoOutcome::Failed(IoFailure::Io {
                os_code: Some(EEXIST),
            });
        }
        let Ok(len) = usize::try_from(size) else {
            return IoOutcome::Failed(IoFailure::Io {
                os_code: Some(EINVAL),
            });
        };
        if len < SEGMENT_HEADER_LEN {
            return IoOutcome::Failed(IoFailure::Io {
                os_code: Some(EINVAL),
            });
        }
        let full = self
            .faults
            .capacity_bytes
            .is_some_and(|cap| self.used_bytes().saturating_add(size) > cap);
        let failure = if full {
            self.stats.injected.enospc += 1;
            Some(IoFailure::NoSpace)
        } else {
            self.inject(DiskOp::Create)
        };
        if let Some(failure) = failure {
            // The adapter's O_EXCL open may have succeeded before the zero
            // fill ran out of space: an empty file, not mapped, left for the
            // core's follow-up unlink.
            if self.files_backed() && self.rng.coin() {
                self.files.insert(name.clone(), SimFile::zeroed(0));
                self.log_dir(DirOp::Create(name));
            }
            return IoOutcome::Failed(failure);
        }
        let mut f = SimFile::zeroed(len);
        f.mapped = true;
        self.files.insert(name.clone(), f);
        self.log_dir(DirOp::Create(name));
        IoOutcome::Done
    }

    fn install_header(&mut self, gen: SegmentGen, base_fsn: Fsn) -> IoOutcome {
        let injected = self.inject(DiskOp::InstallHeader);
        let Some(file) = self.files.get_mut(&gen.file_name()).filter(|f| f.mapped) else {
            return IoOutcome::Failed(IoFailure::Io {
                os_code: Some(ENOENT),
            });
        };
        if let Some(f) = injected {
            return IoOutcome::Failed(f);
        }
        match SegmentHeader::new(base_fsn, self.created_micros) {
            Ok(h) => {
                file.write(0, &h.encode());
                IoOutcome::Done
            }
            Err(_) => IoOutcome::Failed(IoFailure::Io {
                os_code: Some(EINVAL),
            }),
        }
    }

    fn sync(&mut self, name: SegmentName, from: u64, upto: u64, rewrite: bool) -> IoOutcome {
        self.stats.syncs += 1;
        if !self.files_backed() {
            return IoOutcome::Synced { upto_offset: upto };
        }
        let key = name.file_name();
        let Some(len) = self.files.get(&key).map(|f| f.len() as u64) else {
            return IoOutcome::Failed(IoFailure::Io {
                os_code: Some(ENOENT),
            });
        };
        if from > upto || upto > len {
            return IoOutcome::Failed(IoFailure::Io {
                os_code: Some(EINVAL),
            });
        }
        // Both fit usize: they are at most the file's length.
        let (from_u, upto_u) = (from as usize, upto as usize);
        let failed = self.inject(DiskOp::Sync);
        let partial = if failed.is_none() && upto > from {
            self.inject(DiskOp::PartialSync)
                .map(|_| self.rng.range_inclusive(from, upto - 1))
        } else {
            None
        };
        let Some(file) = self.files.get_mut(&key) else {
            return IoOutcome::Failed(IoFailure::Io {
                os_code: Some(ENOENT),
            });
        };
        if rewrite {
            // L5: the adapter writes the range again from its mapping.
            file.mark_dirty(from_u..upto_u);
        }
        if let Some(failure) = failed {
            file.fail_range(from_u, upto_u);
            return IoOutcome::Failed(failure);
        }
        let reached = partial.unwrap_or(upto);
        file.sync_range(from_u, reached as usize);
        if !file.metadata_synced {
            // The adapter's first sync of a file in a session: `sync_all`
            // of the file, then an fsync of the directory.
            file.sync_all();
            file.metadata_synced = true;
            self.dir_log.clear();
        }
        IoOutcome::Synced {
            upto_offset: reached,
        }
    }

    fn unlink(&mut self, name: SegmentName) -> IoOutcome {
        let key = name.file_name();
        if !self.files_backed() {
            self.files.remove(&key);
            return IoOutcome::Done;
        }
        if let Some(failure) = self.inject(DiskOp::Unlink) {
            // The adapter unmaps first; only the removal failed.
            if let Some(f) = self.files.get_mut(&key) {
                f.mapped = false;
            }
            return IoOutcome::Failed(failure);
        }
        if let Some(mut f) = self.files.remove(&key) {
            f.mapped = false;
            self.log_dir(DirOp::Remove(key, f));
        }
        IoOutcome::Done
    }

    fn persist_watermark(&mut self, fsn: Fsn, durable: bool) -> IoOutcome {
        let Ok(bytes) = encode_watermark(fsn) else {
            return IoOutcome::Failed(IoFailure::Io {
                os_code: Some(EINVAL),
            });
        };
        if let Some(failure) = self.inject(DiskOp::PersistWatermark) {
            return IoOutcome::Failed(failure);
        }
        let name = ACK_WATERMARK_FILE_NAME.to_string();
        let exists = self.files.contains_key(&name);
        if !exists {
            self.files
                .insert(name.clone(), SimFile::zeroed(ACK_WATERMARK_LEN));
            self.log_dir(DirOp::Create(name.clone()));
        }
        if let Some(f) = self.files.get_mut(&name) {
            if f.len() != ACK_WATERMARK_LEN {
                // set_len(16): a resize, modelled as a fresh image.
                let mut g = SimFile::zeroed(ACK_WATERMARK_LEN);
                g.write(
                    0,
                    f.volatile()
                        .get(..ACK_WATERMARK_LEN.min(f.len()))
                        .unwrap_or(&[]),
                );
                *f = g;
            }
            f.write(0, &bytes);
            if durable {
                // The adapter's `sync_data` of the file. A creation may
                // still be undone by a host crash: no file is no stale
                // watermark, which is safe.
                f.sync_all();
            }
        }
        IoOutcome::Done
    }

    fn remove_watermark(&mut self, durable: bool) -> IoOutcome {
        if let Some(failure) = self.inject(DiskOp::RemoveWatermark) {
            return IoOutcome::Failed(failure);
        }
        if let Some(f) = self.files.remove(ACK_WATERMARK_FILE_NAME) {
            self.log_dir(DirOp::Remove(ACK_WATERMARK_FILE_NAME.to_string(), f));
        }
        if durable {
            // The adapter's directory fsync commits every change so far.
            self.dir_log.clear();
        }
        IoOutcome::Done
    }
}
