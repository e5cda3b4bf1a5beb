//! Recovery planning: from a slot's directory listing and each segment's scan,
//! decide the recovered state or refuse with a precise error (S1, S3, S8).
//!
//! The output types below are the contract between recovery and the ring
//! ([`crate::ring`], [`crate::storage`]): the ring is rebuilt from a
//! [`RecoveredSlot`] and nothing else.
//!
//! # How the adapter drives it (two pure steps, no I/O here)
//!
//! 1. List the slot directory and stat each entry; pass the listing to
//!    [`plan_reads`]. A listing error or a size that cannot be read refuses
//!    (S3; DESIGN §6 item 4: a length read error is never an empty segment).
//! 2. Read every file in [`ReadPlan::segment_files`], in that order, turning
//!    each into a [`SegmentRead`] (normally [`SegmentRead::from_image`], which
//!    runs [`scan_segment`]); read `.ack-watermark` if
//!    [`ReadPlan::reads_watermark`]; call [`plan`].
//!
//! # Rules (decisions where the spec is silent are marked *decision*)
//!
//! - Segment files are `sf-<16 lowercase hex>.sfa` and the legacy
//!   `sf-initial.sfa`. Other `*.sfa` names are ignored with a warning; lock,
//!   pid, `.failed`, watermark and unknown names are ignored.
//! - A header with bad magic, an unknown version, an out-of-range `baseSeq`,
//!   or a file shorter than the header: skipped with a warning, kept on disk.
//! - *Decision*: a version-1 header with non-zero flags or reserved bits, and
//!   an all-zero header followed by non-zero bytes, refuse (S3): the file
//!   claims to be ours but we cannot say what its frames mean.
//! - *Decision*: the image length must equal the listed size; a short read
//!   is a read error, not a shorter segment.
//! - An all-zero image is a spare the ring created but never installed: a
//!   [`LeftoverSpare`].
//! - Segments with frames form the log: sorted by `baseSeq` (one
//!   `O(n log n)` sort, DESIGN §6 item 10) and checked for contiguity; a gap
//!   or an overlap refuses, naming both files.
//! - A zero-frame segment with a valid header is the *active* segment when
//!   its `baseSeq` equals the end of the log and its generation is above
//!   every log segment's (the ring installed it, then the process stopped
//!   before the first append). With no log at all, the end of the log is the
//!   highest zero-frame `baseSeq`: the ring writes a header only when it
//!   installs a segment, with `baseSeq` = the next FSN, so that value is
//!   where FSNs continue (S1, DESIGN §6 item 13). Among several candidates
//!   the highest generation wins. Other clean zero-frame segments are
//!   [`LeftoverSpare`]s.
//! - *Decision*: a zero-frame segment whose `baseSeq` lies beyond the end of
//!   the log is a gap (FSNs below its `baseSeq` were assigned but their frames
//!   are gone) and refuses.
//! - *Decision*: a zero-frame segment that is not active and has a torn tail
//!   is ignored with a warning and left on disk (S3), not offered as a spare,
//!   so the ring never reuses a file that still holds garbage.
//! - A corrupt tail anywhere refuses. A torn tail is accepted in the active
//!   segment and, *decision*, also in a sealed one: the ring seals a segment
//!   with a torn tail and rotates instead of appending beside the garbage
//!   (see [`RecoveredSegment::torn_tail_bytes`]), so a sealed torn segment is
//!   a state the ring itself produces. What a torn sealed tail could hide —
//!   lost committed frames at its end — is caught by the contiguity check,
//!   because the next segment's `baseSeq` records how many frames the sealed
//!   one really held. Every torn tail is reported as a warning.
//! - `next_gen` = max generation over all `sf-<gen>.sfa` names seen
//!   (skipped and spare files included) + 1; `sf-initial.sfa` does not count.
//! - `acked` (S8) = `max(lowestBaseSeq − 1, watermark)`; a watermark above
//!   the recovered published FSN (`next_fsn − 1`) is ignored with a warning,
//!   as is an unreadable or malformed one.

use crate::segment::{scan_segment, HeaderError, ScanError, ScanOutcome, SegmentScan, TailState};
use crate::watermark::{decode_watermark, WatermarkError, ACK_WATERMARK_FILE_NAME};
use crate::{Fsn, SegmentGen};
use thiserror::Error;

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

/// One entry of the slot directory listing, as the adapter saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingEntry {
    /// The file name inside the slot directory.
    pub name: String,
    /// The file's size, or why it could not be read. An error is a value,
    /// never an empty file (DESIGN §6 item 4).
    pub size: Result<u64, String>,
}

impl ListingEntry {
    /// An entry whose size was read.
    pub fn new(name: impl Into<String>, size: u64) -> ListingEntry {
        ListingEntry {
            name: name.into(),
            size: Ok(size),
        }
    }
}

/// The slot directory could not be listed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct ListingError(pub String);

/// What a name in the slot directory is (sf-client §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotFile {
    /// `sf-<gen>.sfa`.
    Segment(SegmentGen),
    /// The legacy `sf-initial.sfa`.
    LegacySegment,
    /// `.ack-watermark`.
    AckWatermark,
    /// `.lock`, `.lock.pid` or `.failed`: not recovery's business.
    SlotControl,
    /// A `*.sfa` name that is not a valid segment name.
    UnknownSegmentName,
    /// Anything else.
    Other,
}

/// Classifies a slot directory entry by name.
pub fn classify_file_name(name: &str) -> SlotFile {
    if let Some(gen) = SegmentGen::parse_file_name(name) {
        return SlotFile::Segment(gen);
    }
    match name {
        LEGACY_INITIAL_SEGMENT => SlotFile::LegacySegment,
        ACK_WATERMARK_FILE_NAME => SlotFile::AckWatermark,
        ".lock" | ".lock.pid" | ".failed" => SlotFile::SlotControl,
        _ if name.ends_with(".sfa") => SlotFile::UnknownSegmentName,
        _ => SlotFile::Other,
    }
}

/// A segment file the adapter must read and scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFile {
    /// Its name in the slot directory.
    pub name: String,
    /// Its generation, `None` for `sf-initial.sfa`.
    pub gen: Option<SegmentGen>,
    /// Its listed size.
    pub size: u64,
}

/// Step one's answer: which files to read, plus what the listing already
/// told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPlan {
    files: Vec<SegmentFile>,
    reads_watermark: bool,
    max_gen: Option<SegmentGen>,
    warnings: Vec<RecoveryWarning>,
}

impl ReadPlan {
    /// The segment files to read, in the order [`plan`] expects their reads.
    pub fn segment_files(&self) -> &[SegmentFile] {
        &self.files
    }

    /// Whether `.ack-watermark` exists and should be read.
    pub fn reads_watermark(&self) -> bool {
        self.reads_watermark
    }
}

/// What the adapter got when it read one segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentRead {
    /// The whole file was read and scanned.
    Scanned {
        /// Bytes actually read (must equal the listed size).
        image_len: u64,
        /// The scan of those bytes.
        result: Result<ScanOutcome, ScanError>,
    },
    /// Reading the file failed.
    Failed(String),
}

impl SegmentRead {
    /// Scans a whole file image.
    pub fn from_image(image: &[u8]) -> SegmentRead {
        SegmentRead::Scanned {
            image_len: image.len() as u64,
            result: scan_segment(image),
        }
    }
}

/// What the adapter got for `.ack-watermark`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatermarkRead {
    /// No such file.
    Absent,
    /// The file's bytes.
    Bytes(Vec<u8>),
    /// The file exists but could not be read.
    Failed(String),
}

/// Something recovery tolerated but the operator should hear about.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecoveryWarning {
    /// A `*.sfa` file whose name is not a segment name; ignored.
    #[error("ignoring {name}: not a segment file name")]
    UnknownSegmentName {
        /// The file name.
        name: String,
    },
    /// A segment whose header is unusable; left on disk, not recovered.
    #[error("skipping segment {name}: {reason}")]
    SegmentSkipped {
        /// The file name.
        name: String,
        /// What is wrong with its header.
        reason: HeaderError,
    },
    /// A recovered segment ends in a torn tail (an interrupted append).
    #[error("segment {name} ({role}) has a torn tail of {bytes} bytes", role = if *.active { "active" } else { "sealed" })]
    TornTail {
        /// The file name.
        name: String,
        /// Torn bytes after the last good frame.
        bytes: u64,
        /// Whether it is the active (last) segment.
        active: bool,
    },
    /// A zero-frame segment that is not the active one holds a torn tail;
    /// left on disk, neither recovered nor offered as a spare.
    #[error("ignoring {name}: no frames, not active, torn tail of {bytes} bytes")]
    TornEmptySegmentIgnored {
        /// The file name.
        name: String,
        /// Torn bytes after its header.
        bytes: u64,
    },
    /// `sf-initial.sfa` holds no frames and is not active; it cannot be a
    /// spare (it has no generation), so it is left alone.
    #[error("ignoring {name}: legacy segment with no frames")]
    LegacyEmptyIgnored {
        /// The file name.
        name: String,
    },
    /// `.ack-watermark` exists but could not be read; not used.
    #[error("ack watermark unreadable, not used: {reason}")]
    WatermarkUnreadable {
        /// The adapter's error.
        reason: String,
    },
    /// `.ack-watermark` is malformed; not used.
    #[error("ack watermark unusable: {reason}")]
    WatermarkUnusable {
        /// Why.
        reason: WatermarkError,
    },
    /// The watermark is above every recovered frame: treated as corrupt
    /// and not used (S8).
    #[error(
        "ack watermark {watermark} is above the recovered published FSN {published:?}; ignored"
    )]
    WatermarkAboveLog {
        /// The watermark's FSN.
        watermark: Fsn,
        /// The highest recovered FSN, `None` when there is none.
        published: Option<Fsn>,
    },
}

/// What a directory entry named like a segment is, when it is not a
/// regular file ([`RecoveryError::NotAFile`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonFileKind {
    /// A directory.
    Directory,
    /// A symbolic link (never followed: a segment is the slot's own file).
    Symlink,
    /// Anything else: a FIFO, a socket, a device.
    Special,
}

impl core::fmt::Display for NonFileKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            NonFileKind::Directory => "a directory",
            NonFileKind::Symlink => "a symbolic link",
            NonFileKind::Special => "a special file",
        })
    }
}

/// Why recovery refuses to open the slot (S3). Nothing was changed on disk.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecoveryError {
    /// The directory could not be listed.
    #[error("cannot list the slot directory: {reason}")]
    Listing {
        /// The adapter's error.
        reason: String,
    },
    /// A segment's size could not be read (never taken as an empty segment).
    #[error("cannot read the size of segment {name}: {reason}")]
    SizeUnreadable {
        /// The file name.
        name: String,
        /// The adapter's error.
        reason: String,
    },
    /// An entry named like a segment is not a regular file (a directory,
    /// a symbolic link, a FIFO, ...): the slot is structurally broken and
    /// refused on every attempt until an operator repairs it.
    #[error("segment {name} is not a regular file but {kind}")]
    NotAFile {
        /// The file name.
        name: String,
        /// What the entry is instead.
        kind: NonFileKind,
    },
    /// A segment could not be read.
    #[error("cannot read segment {name}: {reason}")]
    ReadFailed {
        /// The file name.
        name: String,
        /// The adapter's error.
        reason: String,
    },
    /// The adapter passed a different number of reads than files planned.
    #[error("{got} segment reads for {expected} planned files")]
    ReadCountMismatch {
        /// Files in the read plan.
        expected: usize,
        /// Reads passed.
        got: usize,
    },
    /// The bytes read differ in length from the listed size (a short read).
    #[error("segment {name}: listed at {listed} bytes but {read} bytes were read")]
    SizeMismatch {
        /// The file name.
        name: String,
        /// Listed size.
        listed: u64,
        /// Bytes read.
        read: u64,
    },
    /// A version-1 header with bits this implementation does not define.
    #[error("segment {name} has a header we do not understand: {source}")]
    HeaderNotUnderstood {
        /// The file name.
        name: String,
        /// What is wrong with it.
        source: HeaderError,
    },
    /// An all-zero header in front of non-zero bytes.
    #[error("segment {name} has no header but data at offset {first_nonzero}")]
    HeaderlessData {
        /// The file name.
        name: String,
        /// First non-zero byte.
        first_nonzero: u64,
    },
    /// Valid frames follow a bad one (S2).
    #[error("segment {name} is corrupt: bad frame at offset {bad_frame_offset} ({reason}) followed by a valid frame at offset {evidence_offset}")]
    Corrupt {
        /// The file name.
        name: String,
        /// Offset of the bad frame.
        bad_frame_offset: u64,
        /// Why it is bad.
        reason: crate::segment::FrameReadError,
        /// Offset of the valid frame after it.
        evidence_offset: u64,
    },
    /// FSNs missing between two segments.
    #[error("FSN gap: {prev} ends before FSN {prev_end}, but {next} starts at FSN {next_base}")]
    Gap {
        /// The earlier file.
        prev: String,
        /// One past its last FSN.
        prev_end: Fsn,
        /// The later file.
        next: String,
        /// Its `baseSeq`.
        next_base: Fsn,
    },
    /// Two segments claim the same FSNs.
    #[error("FSN overlap: {prev} runs up to FSN {prev_end} (exclusive), but {next} starts at FSN {next_base}")]
    Overlap {
        /// The earlier file.
        prev: String,
        /// One past its last FSN.
        prev_end: Fsn,
        /// The later file.
        next: String,
        /// Its `baseSeq`.
        next_base: Fsn,
    },
    /// `baseSeq` plus the frame count overflows.
    #[error("segment {name}: FSN range overflows")]
    FsnOverflow {
        /// The file name.
        name: String,
    },
    /// The highest generation is `u64::MAX`; no new file name is left.
    #[error("segment generations exhausted")]
    GenerationExhausted,
}

impl RecoveryError {
    /// Whether the refusal may go away by itself, so the slot may open on
    /// a later attempt: the adapter could not list or read what is there
    /// (a listing error, an unreadable size, a failed or short read, or
    /// reads that do not match the plan), which says nothing about the
    /// bytes on disk. A permanent refusal is about the bytes themselves
    /// (corruption, a header this build does not understand, headerless
    /// data, FSN gaps, overlaps or overflow, exhausted generations) or
    /// about the slot's structure (an entry named like a segment that is
    /// not a regular file): the same slot is refused again on every
    /// attempt. An orphan drainer
    /// gives up on a slot (`.failed`) only for a permanent refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            RecoveryError::Listing { .. }
            | RecoveryError::SizeUnreadable { .. }
            | RecoveryError::ReadFailed { .. }
            | RecoveryError::ReadCountMismatch { .. }
            | RecoveryError::SizeMismatch { .. } => true,
            RecoveryError::NotAFile { .. }
            | RecoveryError::HeaderNotUnderstood { .. }
            | RecoveryError::HeaderlessData { .. }
            | RecoveryError::Corrupt { .. }
            | RecoveryError::Gap { .. }
            | RecoveryError::Overlap { .. }
            | RecoveryError::FsnOverflow { .. }
            | RecoveryError::GenerationExhausted => false,
        }
    }
}

/// Counters from one planning run (for diagnostics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanStats {
    /// `baseSeq` comparisons made while ordering the log.
    pub sort_comparisons: u64,
}

/// The recovered state plus what the operator should be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// The state to rebuild the ring from.
    pub slot: RecoveredSlot,
    /// Tolerated oddities, in the order found.
    pub warnings: Vec<RecoveryWarning>,
    /// Planning counters.
    pub stats: PlanStats,
}

/// Step one: from the directory listing, the files to read. Refuses on a
/// listing error or an unreadable segment size (S3).
pub fn plan_reads(
    listing: Result<Vec<ListingEntry>, ListingError>,
) -> Result<ReadPlan, RecoveryError> {
    let entries = listing.map_err(|e| RecoveryError::Listing { reason: e.0 })?;
    let mut plan = ReadPlan {
        files: Vec::new(),
        reads_watermark: false,
        max_gen: None,
        warnings: Vec::new(),
    };
    for entry in entries {
        let gen = match classify_file_name(&entry.name) {
            SlotFile::Segment(gen) => Some(gen),
            SlotFile::LegacySegment => None,
            SlotFile::AckWatermark => {
                plan.reads_watermark = true;
                continue;
            }
            SlotFile::UnknownSegmentName => {
                plan.warnings
                    .push(RecoveryWarning::UnknownSegmentName { name: entry.name });
                continue;
            }
            SlotFile::SlotControl | SlotFile::Other => continue,
        };
        let size = match entry.size {
            Ok(size) => size,
            Err(reason) => {
                return Err(RecoveryError::SizeUnreadable {
                    name: entry.name,
                    reason,
                })
            }
        };
        plan.max_gen = plan.max_gen.max(gen);
        plan.files.push(SegmentFile {
            name: entry.name,
            gen,
            size,
        });
    }
    Ok(plan)
}

/// A segment with a valid header, during planning.
struct Found {
    name: String,
    gen: Option<SegmentGen>,
    size: u64,
    scan: SegmentScan,
}

impl Found {
    fn base(&self) -> Fsn {
        self.scan.header.base_fsn()
    }

    /// One past its last FSN.
    fn end(&self) -> Result<Fsn, RecoveryError> {
        self.base()
            .get()
            .checked_add(self.scan.frame_count())
            .map(Fsn)
            .ok_or_else(|| RecoveryError::FsnOverflow {
                name: self.name.clone(),
            })
    }

    fn torn_bytes(&self) -> u64 {
        match self.scan.tail {
            TailState::Torn { bytes, .. } => bytes,
            TailState::Clean | TailState::Corrupt { .. } => 0,
        }
    }

    fn into_recovered(self) -> RecoveredSegment {
        let torn_tail_bytes = self.torn_bytes();
        RecoveredSegment {
            gen: self.gen,
            base_fsn: self.base(),
            frame_offsets: self.scan.frame_offsets,
            append_offset: self.scan.last_good,
            file_size: self.size,
            torn_tail_bytes,
        }
    }
}

/// Step two: from the read plan, one [`SegmentRead`] per
/// [`ReadPlan::segment_files`] entry (same order) and the watermark, the
/// recovered slot or a refusal. The rules are in the module doc.
pub fn plan(
    read_plan: ReadPlan,
    reads: Vec<SegmentRead>,
    watermark: WatermarkRead,
) -> Result<RecoveryPlan, RecoveryError> {
    let ReadPlan {
        files,
        max_gen,
        mut warnings,
        ..
    } = read_plan;
    if reads.len() != files.len() {
        return Err(RecoveryError::ReadCountMismatch {
            expected: files.len(),
            got: reads.len(),
        });
    }
    let next_gen = match max_gen {
        None => SegmentGen(0),
        Some(g) => g
            .get()
            .checked_add(1)
            .map(SegmentGen)
            .ok_or(RecoveryError::GenerationExhausted)?,
    };

    let mut log: Vec<Found> = Vec::new();
    let mut empties: Vec<Found> = Vec::new();
    let mut leftover_spares = Vec::new();
    for (file, read) in files.into_iter().zip(reads) {
        let (image_len, result) = match read {
            SegmentRead::Failed(reason) => {
                return Err(RecoveryError::ReadFailed {
                    name: file.name,
                    reason,
                })
            }
            SegmentRead::Scanned { image_len, result } => (image_len, result),
        };
        if image_len != file.size {
            return Err(RecoveryError::SizeMismatch {
                name: file.name,
                listed: file.size,
                read: image_len,
            });
        }
        match result {
            Err(ScanError::Header(
                source @ (HeaderError::NonZeroFlags { .. } | HeaderError::NonZeroReserved { .. }),
            )) => {
                return Err(RecoveryError::HeaderNotUnderstood {
                    name: file.name,
                    source,
                })
            }
            Err(ScanError::Header(reason)) => warnings.push(RecoveryWarning::SegmentSkipped {
                name: file.name,
                reason,
            }),
            Err(ScanError::HeaderlessData { first_nonzero }) => {
                return Err(RecoveryError::HeaderlessData {
                    name: file.name,
                    first_nonzero,
                })
            }
            Ok(ScanOutcome::Blank { .. }) => match file.gen {
                Some(gen) => leftover_spares.push(LeftoverSpare {
                    gen,
                    file_size: file.size,
                }),
                None => warnings.push(RecoveryWarning::LegacyEmptyIgnored { name: file.name }),
            },
            Ok(ScanOutcome::Segment(scan)) => {
                if let TailState::Corrupt {
                    bad_frame_offset,
                    reason,
                    evidence_offset,
                } = scan.tail
                {
                    return Err(RecoveryError::Corrupt {
                        name: file.name,
                        bad_frame_offset,
                        reason,
                        evidence_offset,
                    });
                }
                let found = Found {
                    name: file.name,
                    gen: file.gen,
                    size: file.size,
                    scan,
                };
                if found.scan.frame_offsets.is_empty() {
                    empties.push(found);
                } else {
                    log.push(found);
                }
            }
        }
    }

    // One comparison sort: O(n log n) however the directory was listed
    // (DESIGN §6 item 10).
    let mut sort_comparisons = 0u64;
    log.sort_unstable_by(|a, b| {
        sort_comparisons += 1;
        a.base().cmp(&b.base())
    });
    for pair in log.windows(2) {
        let [prev, next] = pair else { continue };
        let prev_end = prev.end()?;
        let next_base = next.base();
        if prev_end != next_base {
            let (prev, next) = (prev.name.clone(), next.name.clone());
            return Err(if prev_end < next_base {
                RecoveryError::Gap {
                    prev,
                    prev_end,
                    next,
                    next_base,
                }
            } else {
                RecoveryError::Overlap {
                    prev,
                    prev_end,
                    next,
                    next_base,
                }
            });
        }
    }

    let log_end = log.last().map(Found::end).transpose()?;
    if let (Some(end), Some(last)) = (log_end, log.last()) {
        if let Some(beyond) = empties.iter().find(|e| e.base() > end) {
            return Err(RecoveryError::Gap {
                prev: last.name.clone(),
                prev_end: end,
                next: beyond.name.clone(),
                next_base: beyond.base(),
            });
        }
    }
    // Where FSNs continue: the log's end, or with no frames at all the
    // highest installed header (S1, DESIGN §6 item 13).
    let end = log_end.or_else(|| empties.iter().map(Found::base).max());
    let log_max_gen = log.iter().map(|f| f.gen).max();
    let active_index = end.and_then(|end| {
        empties
            .iter()
            .enumerate()
            .filter(|(_, e)| e.base() == end && log_max_gen.is_none_or(|max| e.gen > max))
            .max_by_key(|(_, e)| e.gen)
            .map(|(i, _)| i)
    });
    let active = active_index.map(|i| empties.swap_remove(i));
    for e in empties {
        let bytes = e.torn_bytes();
        if bytes > 0 {
            warnings.push(RecoveryWarning::TornEmptySegmentIgnored {
                name: e.name,
                bytes,
            });
        } else if let Some(gen) = e.gen {
            leftover_spares.push(LeftoverSpare {
                gen,
                file_size: e.size,
            });
        } else {
            warnings.push(RecoveryWarning::LegacyEmptyIgnored { name: e.name });
        }
    }
    leftover_spares.sort_unstable_by_key(|s| s.gen);

    let ordered: Vec<Found> = log.into_iter().chain(active).collect();
    let count = ordered.len();
    for (i, f) in ordered.iter().enumerate() {
        let bytes = f.torn_bytes();
        if bytes > 0 {
            warnings.push(RecoveryWarning::TornTail {
                name: f.name.clone(),
                bytes,
                active: i + 1 == count,
            });
        }
    }
    let segments: Vec<RecoveredSegment> = ordered.into_iter().map(Found::into_recovered).collect();

    let next_fsn = end.unwrap_or(Fsn::ZERO);
    let acked = seed_acked(&segments, next_fsn, watermark, &mut warnings);
    Ok(RecoveryPlan {
        slot: RecoveredSlot {
            segments,
            leftover_spares,
            next_fsn,
            acked,
            next_gen,
        },
        warnings,
        stats: PlanStats { sort_comparisons },
    })
}

/// S8: `max(lowestBaseSeq − 1, watermark)`, with a watermark above the
/// published FSN ignored as corrupt.
fn seed_acked(
    segments: &[RecoveredSegment],
    next_fsn: Fsn,
    watermark: WatermarkRead,
    warnings: &mut Vec<RecoveryWarning>,
) -> Option<Fsn> {
    let seed = segments.first().and_then(|s| s.base_fsn.prev());
    let published = next_fsn.prev();
    let watermark = match watermark {
        WatermarkRead::Absent => None,
        WatermarkRead::Failed(reason) => {
            warnings.push(RecoveryWarning::WatermarkUnreadable { reason });
            None
        }
        WatermarkRead::Bytes(bytes) => match decode_watermark(&bytes) {
            Ok(fsn) => Some(fsn),
            // A created-but-never-written file: the normal first-session case.
            Err(WatermarkError::NotYetStamped) => None,
            Err(reason) => {
                warnings.push(RecoveryWarning::WatermarkUnusable { reason });
                None
            }
        },
    };
    match watermark {
        Some(w) if published.is_some_and(|p| w <= p) => seed.max(Some(w)),
        Some(w) => {
            warnings.push(RecoveryWarning::WatermarkAboveLog {
                watermark: w,
                published,
            });
            seed
        }
        None => seed,
    }
}
