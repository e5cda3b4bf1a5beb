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
    self, classify_file_name, ListingEntry, ListingError, NonFileKind, RecoveryError, RecoveryPlan,
    SegmentRead, SlotFile, WatermarkRead,
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
/// A refusal releases the lock.
pub fn open_slot(sf_dir: &Path, sender_id: &str) -> Result<OpenedSlot, SlotOpenError> {
    let lock = SlotLock::acquire(sf_dir, sender_id)?;
    recover_slot(lock).map_err(SlotOpenError::from)
}

/// Opens the slot directory `slot_dir` itself for recovery. A refusal
/// releases the lock.
pub fn open_slot_dir(slot_dir: &Path) -> Result<OpenedSlot, SlotOpenError> {
    let lock = SlotLock::acquire_dir(slot_dir)?;
    recover_slot(lock).map_err(SlotOpenError::from)
}

/// A slot recovery refused, with its lock still held: the caller decides
/// what happens before the release (an orphan drainer writes `.failed`
/// under it; dropping this value releases it).
#[derive(Debug)]
pub struct RefusedSlot {
    /// The slot lock, still held.
    pub lock: SlotLock,
    /// Why recovery refused (S3); nothing on disk was changed.
    pub error: RecoveryError,
}

impl From<RefusedSlot> for SlotOpenError {
    /// The lock is released here: the error outlives no lock.
    fn from(r: RefusedSlot) -> SlotOpenError {
        SlotOpenError::Recovery {
            slot: r.lock.slot_dir().to_path_buf(),
            source: r.error,
        }
    }
}

/// The second step of a two-step open: recovers the slot `lock` holds.
/// A refusal hands the lock back inside [`RefusedSlot`], so the caller can
/// act on the slot without ever letting go of it.
pub fn recover_slot(lock: SlotLock) -> Result<OpenedSlot, RefusedSlot> {
    let dir = lock.slot_dir().to_path_buf();
    let listing = match list_entries(&dir) {
        Ok((_, Some(error))) => return Err(RefusedSlot { lock, error }),
        Ok((entries, None)) => Ok(entries),
        Err(e) => Err(e),
    };
    match recovery::plan_reads(listing) {
        Ok(read_plan) => recover_planned(lock, read_plan),
        Err(error) => Err(RefusedSlot { lock, error }),
    }
}

/// What `t` is when it is not a regular file.
fn non_file_kind(t: &std::fs::Metadata) -> Option<NonFileKind> {
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some(NonFileKind::Directory)
    } else if t.file_type().is_symlink() {
        Some(NonFileKind::Symlink)
    } else {
        Some(NonFileKind::Special)
    }
}

fn recover_planned(
    lock: SlotLock,
    read_plan: recovery::ReadPlan,
) -> Result<OpenedSlot, RefusedSlot> {
    let dir = lock.slot_dir().to_path_buf();

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
    let plan = match recovery::plan(read_plan, reads, watermark) {
        Ok(p) => p,
        Err(error) => return Err(RefusedSlot { lock, error }),
    };
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
    list_entries(slot_dir).map(|(entries, _)| entries)
}

/// [`list_slot`], plus the first entry named like a segment that is not a
/// regular file, as a permanent refusal ([`RecoveryError::NotAFile`]): the
/// planner alone would see only an unreadable size (transient), and an
/// orphan drainer would retry such a slot on every start, forever.
fn list_entries(
    slot_dir: &Path,
) -> Result<(Vec<ListingEntry>, Option<RecoveryError>), ListingError> {
    let listing_error = |e| ListingError(FsError::io(FsOp::List, slot_dir, e).to_string());
    let mut entries = Vec::new();
    let mut not_a_file = None;
    for entry in std::fs::read_dir(slot_dir).map_err(listing_error)? {
        let entry = entry.map_err(listing_error)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path: PathBuf = entry.path();
        // `DirEntry::metadata` does not follow a symbolic link.
        let size = match entry.metadata() {
            Ok(meta) => match non_file_kind(&meta) {
                None => Ok(meta.len()),
                Some(kind) => {
                    let segment_named = matches!(
                        classify_file_name(&name),
                        SlotFile::Segment(_) | SlotFile::LegacySegment
                    );
                    if segment_named && not_a_file.is_none() {
                        not_a_file = Some(RecoveryError::NotAFile {
                            name: name.clone(),
                            kind,
                        });
                    }
                    Err(format!(
                        "stat {}: not a regular file ({kind})",
                        path.display()
                    ))
                }
            },
            Err(e) => Err(FsError::io(FsOp::Stat, &path, e).to_string()),
        };
        entries.push(ListingEntry { name, size });
    }
    Ok((entries, not_a_file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::{lock_holder, LockProbe};

    /// An entry under a segment name that cannot be one: the slot is
    /// refused as `NotAFile` (permanent), not as an unreadable size.
    #[test]
    fn s3_a_fifo_under_a_segment_name_is_not_a_file() {
        let sf = tempfile::tempdir().unwrap();
        let slot = sf.path().join("s");
        std::fs::create_dir_all(&slot).unwrap();
        let fifo = slot.join("sf-0000000000000000.sfa");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let refused = recover_slot(SlotLock::acquire_dir(&slot).unwrap()).unwrap_err();
        assert_eq!(
            refused.error,
            RecoveryError::NotAFile {
                name: "sf-0000000000000000.sfa".into(),
                kind: NonFileKind::Special,
            }
        );
        assert!(!refused.error.is_transient());
    }

    /// A refusal hands the lock back still held (an orphan drainer writes
    /// `.failed` under it); dropping the refusal releases it, and the
    /// one-step open releases it at once.
    #[test]
    fn s5_2_a_refusal_keeps_the_lock_until_dropped() {
        let sf = tempfile::tempdir().unwrap();
        let slot = sf.path().join("s");
        std::fs::create_dir_all(&slot).unwrap();
        // A header of all zeros followed by data: refused (permanent).
        let mut bytes = vec![0u8; 4096];
        bytes[100] = 1;
        std::fs::write(slot.join("sf-0000000000000000.sfa"), &bytes).unwrap();
        let refused = recover_slot(SlotLock::acquire_dir(&slot).unwrap()).unwrap_err();
        assert!(!refused.error.is_transient(), "{}", refused.error);
        assert!(
            matches!(lock_holder(&slot).unwrap(), LockProbe::Held(_)),
            "still held by the refusal"
        );
        assert!(SlotLock::acquire_dir(&slot).is_err(), "nobody else gets it");
        drop(refused);
        assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free);
        assert!(matches!(
            open_slot_dir(&slot),
            Err(SlotOpenError::Recovery { .. })
        ));
        assert_eq!(
            lock_holder(&slot).unwrap(),
            LockProbe::Free,
            "the one-step open releases on refusal"
        );
    }
}
