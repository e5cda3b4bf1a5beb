//! Opening a slot for recovery (sf-client §18.1), in order: take the lock,
//! list the directory, stat every entry, map and scan every segment file the
//! planner names, read `.ack-watermark`, and let `sf_core::recovery` decide.
//!
//! Every OS failure becomes a *value* handed to the planner — a listing
//! error, a size that could not be read, a segment that could not be mapped,
//! an unreadable watermark — and the planner refuses or warns (S3; DESIGN §6
//! item 4: a failed length read is never an empty segment). Nothing is
//! created, deleted or rewritten here apart from the lock's own files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sf_core::recovery::{
    self, ListingEntry, ListingError, RecoveryPlan, SegmentRead, WatermarkRead,
};
use sf_core::ring::SegmentName;
use sf_core::SegmentGen;

use super::error::{FsError, FsOp, SlotOpenError};
use super::lock::SlotLock;
use super::segment_buffer::SegmentBuffer;
use super::segment_file::SegmentFile;
use super::watermark_file::read_watermark;

/// A locked slot and what recovery made of it.
#[derive(Debug)]
pub struct OpenedSlot {
    /// The slot lock, held for the engine's life.
    pub lock: SlotLock,
    /// The recovered state (rebuild the ring from `plan.slot`) and the
    /// warnings already logged.
    pub plan: RecoveryPlan,
    /// The mapped files of every recovered log segment and leftover spare.
    /// None is pre-faulted: a leftover spare the ring reuses should get
    /// [`SegmentFile::prefault`] in the background first.
    pub segments: OpenedSegments,
}

/// Mapped segment files by generation, plus the legacy `sf-initial.sfa`.
#[derive(Debug, Default)]
pub struct OpenedSegments {
    by_gen: BTreeMap<SegmentGen, SegmentFile>,
    legacy: Option<SegmentFile>,
}

impl OpenedSegments {
    /// The file of segment `name` (a [`SegmentName`], or the
    /// `Option<SegmentGen>` of a recovered segment, `None` being the legacy
    /// `sf-initial.sfa`).
    pub fn get(&self, name: impl Into<SegmentName>) -> Option<&SegmentFile> {
        match name.into() {
            SegmentName::Gen(g) => self.by_gen.get(&g),
            SegmentName::LegacyInitial => self.legacy.as_ref(),
        }
    }

    /// The file of segment `name`, writable.
    pub fn get_mut(&mut self, name: impl Into<SegmentName>) -> Option<&mut SegmentFile> {
        match name.into() {
            SegmentName::Gen(g) => self.by_gen.get_mut(&g),
            SegmentName::LegacyInitial => self.legacy.as_mut(),
        }
    }

    /// Takes the file of segment `name` out (to split it for the ring, or
    /// to unlink it).
    pub fn take(&mut self, name: impl Into<SegmentName>) -> Option<SegmentFile> {
        match name.into() {
            SegmentName::Gen(g) => self.by_gen.remove(&g),
            SegmentName::LegacyInitial => self.legacy.take(),
        }
    }

    /// How many files are held.
    pub fn len(&self) -> usize {
        self.by_gen.len() + usize::from(self.legacy.is_some())
    }

    /// Whether no file is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert(&mut self, seg: SegmentFile) {
        match seg.gen() {
            Some(g) => {
                self.by_gen.insert(g, seg);
            }
            None => self.legacy = Some(seg),
        }
    }
}

/// Opens slot `<sf_dir>/<sender_id>/` for recovery (see the module doc).
pub fn open_slot(sf_dir: &Path, sender_id: &str) -> Result<OpenedSlot, SlotOpenError> {
    let lock = SlotLock::acquire(sf_dir, sender_id)?;
    recover_locked(lock)
}

/// Opens the slot directory `slot_dir` itself for recovery.
pub fn open_slot_dir(slot_dir: &Path) -> Result<OpenedSlot, SlotOpenError> {
    let lock = SlotLock::acquire_dir(slot_dir)?;
    recover_locked(lock)
}

fn recover_locked(lock: SlotLock) -> Result<OpenedSlot, SlotOpenError> {
    let dir = lock.slot_dir().to_path_buf();
    let refuse = |source| SlotOpenError::Recovery {
        slot: dir.clone(),
        source,
    };
    let read_plan = recovery::plan_reads(list_slot(&dir)).map_err(refuse)?;

    let mut files: Vec<Option<SegmentFile>> = Vec::with_capacity(read_plan.segment_files().len());
    let mut reads = Vec::with_capacity(read_plan.segment_files().len());
    for planned in read_plan.segment_files() {
        match SegmentFile::open_existing(&dir.join(&planned.name)) {
            Ok(seg) => {
                reads.push(SegmentRead::from_image(seg.image()));
                files.push(Some(seg));
            }
            Err(e) => {
                reads.push(SegmentRead::Failed(e.to_string()));
                files.push(None);
            }
        }
    }
    let watermark = if read_plan.reads_watermark() {
        read_watermark(&dir)
    } else {
        WatermarkRead::Absent
    };
    let plan = recovery::plan(read_plan, reads, watermark).map_err(refuse)?;
    for warning in &plan.warnings {
        tracing::warn!(slot = %dir.display(), "recovery: {warning}");
    }

    // Keep the mappings the ring will use; files recovery skipped (and left
    // on disk) are unmapped here.
    let mut all = OpenedSegments::default();
    files.into_iter().flatten().for_each(|f| all.insert(f));
    let mut segments = OpenedSegments::default();
    let kept = plan
        .slot
        .segments
        .iter()
        .map(|s| s.gen)
        .chain(plan.slot.leftover_spares.iter().map(|s| Some(s.gen)));
    for gen in kept {
        if let Some(seg) = all.take(gen) {
            segments.insert(seg);
        }
    }
    Ok(OpenedSlot {
        lock,
        plan,
        segments,
    })
}

/// Lists `slot_dir` for [`recovery::plan_reads`]: every entry with its size,
/// or why the size could not be read. An entry that is not a regular file
/// (a directory, a symlink, …) has no segment size: that is an error value
/// too, which refuses the slot if the name is a segment's (S3).
pub fn list_slot(slot_dir: &Path) -> Result<Vec<ListingEntry>, ListingError> {
    let listing_error = |e| ListingError(FsError::io(FsOp::List, slot_dir, e).to_string());
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(slot_dir).map_err(listing_error)? {
        let entry = entry.map_err(listing_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path: PathBuf = entry.path();
        let size = match entry.metadata() {
            Ok(meta) if meta.is_file() => Ok(meta.len()),
            Ok(meta) => Err(format!(
                "stat {}: not a regular file ({})",
                path.display(),
                if meta.is_dir() {
                    "a directory"
                } else if meta.file_type().is_symlink() {
                    "a symbolic link"
                } else {
                    "a special file"
                }
            )),
            Err(e) => Err(FsError::io(FsOp::Stat, &path, e).to_string()),
        };
        entries.push(ListingEntry { name, size });
    }
    Ok(entries)
}
