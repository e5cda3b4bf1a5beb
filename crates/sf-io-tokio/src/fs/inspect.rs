//! A read-only look at a slot for operators (`qwp-sf inspect`): the same
//! listing, scans, watermark read and recovery plan that [`open_slot`]
//! performs, without taking the slot lock and without opening any file for
//! writing.
//!
//! Why a separate path: [`open_slot`] takes the exclusive lock (which writes
//! `.lock.pid`) and maps segments read-write, so running it against a slot a
//! live sender holds would fail, and running it against an idle slot would
//! change files an operator is trying to diagnose. Here every file is opened
//! read-only and read with plain `read`, the lock is only probed
//! ([`lock_holder`]), and the verdict comes from the very planner
//! ([`recovery::plan`]) the engine uses, so "openable" here means the engine
//! would open it.
//!
//! [`open_slot`]: super::open_slot

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use sf_core::recovery::{self, RecoveryError, RecoveryPlan, SegmentRead, WatermarkRead};
use sf_core::SegmentGen;

use super::error::{FsError, FsOp};
use super::lock::{lock_holder, LockProbe};
use super::slot::list_slot;
use super::watermark_file::read_watermark;

/// One segment file as the inspection read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectedSegment {
    /// The file name in the slot directory.
    pub name: String,
    /// Its generation, `None` for the legacy `sf-initial.sfa`.
    pub gen: Option<SegmentGen>,
    /// Its size as listed.
    pub listed_size: u64,
    /// What reading and scanning it gave (the value handed to the planner).
    pub read: SegmentRead,
}

/// Everything an operator needs to judge a slot, gathered without changing
/// anything.
#[derive(Debug)]
pub struct SlotInspection {
    /// The slot directory.
    pub slot_dir: PathBuf,
    /// The lock probe (who holds the slot, if anyone).
    pub lock: Result<LockProbe, FsError>,
    /// Every segment-named file recovery would read, in the planner's order.
    pub segments: Vec<InspectedSegment>,
    /// What `.ack-watermark` held (`Absent` when the listing had none).
    pub watermark: WatermarkRead,
    /// The planner's verdict: the state recovery would open with, or the
    /// exact reason it would refuse (S3).
    pub recovery: Result<RecoveryPlan, RecoveryError>,
}

/// Inspects the slot directory `slot_dir` read-only (see the module docs).
/// Never fails as a whole: every failure is part of the answer.
pub fn inspect_slot(slot_dir: &Path) -> SlotInspection {
    let lock = lock_holder(slot_dir);
    let read_plan = match recovery::plan_reads(list_slot(slot_dir)) {
        Ok(p) => p,
        Err(e) => {
            return SlotInspection {
                slot_dir: slot_dir.to_path_buf(),
                lock,
                segments: Vec::new(),
                watermark: WatermarkRead::Absent,
                recovery: Err(e),
            }
        }
    };
    let mut segments = Vec::with_capacity(read_plan.segment_files().len());
    let mut reads = Vec::with_capacity(read_plan.segment_files().len());
    for planned in read_plan.segment_files() {
        let read = match read_segment_image(&slot_dir.join(&planned.name), planned.size) {
            Ok(image) => SegmentRead::from_image(&image),
            Err(e) => SegmentRead::Failed(e.to_string()),
        };
        segments.push(InspectedSegment {
            name: planned.name.clone(),
            gen: planned.gen,
            listed_size: planned.size,
            read: read.clone(),
        });
        reads.push(read);
    }
    let watermark = if read_plan.reads_watermark() {
        read_watermark(slot_dir)
    } else {
        WatermarkRead::Absent
    };
    let recovery = recovery::plan(read_plan, reads, watermark.clone());
    SlotInspection {
        slot_dir: slot_dir.to_path_buf(),
        lock,
        segments,
        watermark,
        recovery,
    }
}

/// Reads a whole segment file through a read-only handle. `listed_size` is
/// the size the listing reported: at most one byte more is read, so a file
/// that grew since is seen as longer (the planner reports the mismatch)
/// without reading an unbounded amount.
pub fn read_segment_image(path: &Path, listed_size: u64) -> Result<Vec<u8>, FsError> {
    let file = File::open(path).map_err(|e| FsError::io(FsOp::Open, path, e))?;
    let mut image = Vec::new();
    io::Read::take(file, listed_size.saturating_add(1))
        .read_to_end(&mut image)
        .map_err(|e| FsError::io(FsOp::Read, path, e))?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_core::segment::{write_frame, SegmentHeader, SEGMENT_HEADER_LEN};
    use sf_core::Fsn;

    fn segment(base: u64, frames: &[&[u8]], size: usize) -> Vec<u8> {
        let mut image = vec![0u8; size];
        let header = SegmentHeader::new(Fsn(base), 1).unwrap().encode();
        image[..SEGMENT_HEADER_LEN].copy_from_slice(&header);
        let mut off = SEGMENT_HEADER_LEN;
        for f in frames {
            off = write_frame(&mut image, off, f).unwrap();
        }
        image
    }

    #[test]
    fn s3_inspection_reports_the_planners_refusal_of_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sf-0000000000000000.sfa"),
            segment(0, &[b"a"], 256),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sf-0000000000000001.sfa"),
            segment(5, &[b"b"], 256),
        )
        .unwrap();
        let inspection = inspect_slot(dir.path());
        assert!(matches!(
            inspection.recovery,
            Err(RecoveryError::Gap { .. })
        ));
        assert_eq!(inspection.segments.len(), 2);
        assert!(matches!(inspection.lock, Ok(LockProbe::NeverLocked)));
    }

    #[test]
    fn inspection_of_a_clean_slot_plans_like_open_and_creates_no_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sf-0000000000000000.sfa"),
            segment(0, &[b"a", b"bc"], 256),
        )
        .unwrap();
        let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        let inspection = inspect_slot(dir.path());
        let plan = inspection.recovery.unwrap();
        assert_eq!(plan.slot.next_fsn, Fsn(2));
        let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(before.len(), after.len(), "no .lock or .lock.pid created");
    }
}
