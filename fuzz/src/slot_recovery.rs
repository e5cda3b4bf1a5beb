//! Target `slot_recovery`: recovery planning over an arbitrary slot directory
//! of arbitrary files, fed to [`plan_reads`] and [`plan`] the way the tokio
//! adapter's `fs/slot.rs` feeds them (list and stat, read every planned file
//! in plan order, read `.ack-watermark` only when planned).
//!
//! The input is structure-aware ([`arbitrary`]): entries have segment names,
//! slot control names or junk names; contents are raw bytes, blank spares, or
//! synthesised segments with CRC-valid frames (so the fuzzer reaches the log
//! checks without having to forge CRCs) plus torn or garbage tails and bit
//! flips; sizes and reads can fail or come up short.
//!
//! Properties: the planner either refuses with a typed [`RecoveryError`] or
//! returns a plan where
//! - S1: recovered segments are contiguous in FSN, ascending, `next_fsn` is
//!   one past the last recovered frame, and no FSN at or above `next_fsn` was
//!   already used by any file with a valid header;
//! - S2: every recovered frame offset verifies in its file and frames are
//!   contiguous from the header to `append_offset`;
//! - S3: a listing error, an unreadable size of a segment-named entry or a
//!   failed read of a planned file always refuses; everything recovered or
//!   offered as a spare is a listed segment file, named once;
//! - S8: `acked = max(lowest baseSeq − 1, watermark)`, a watermark above the
//!   published FSN ignored;
//! - `next_gen` is above every listed generation.

use std::collections::{BTreeMap, HashSet};

use arbitrary::{Arbitrary, Unstructured};
use sf_core::recovery::{
    classify_file_name, plan, plan_reads, ListingEntry, ListingError, RecoveryError, RecoveryPlan,
    SegmentRead, SlotFile, WatermarkRead,
};
use sf_core::segment::{
    read_frame, scan_segment, write_frame, ScanOutcome, SegmentHeader, FRAME_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};
use sf_core::watermark::{decode_watermark, encode_watermark, ACK_WATERMARK_FILE_NAME};
use sf_core::{Fsn, SegmentGen};

use crate::Outcome;

/// A whole slot directory as the fuzzer describes it.
#[derive(Debug, Arbitrary)]
pub struct SlotInput {
    /// The directory listing itself fails.
    pub listing_fails: bool,
    /// The entries, in listing order.
    pub entries: Vec<EntryInput>,
    /// The `.ack-watermark` file.
    pub watermark: WatermarkInput,
}

/// One directory entry.
#[derive(Debug, Arbitrary)]
pub struct EntryInput {
    /// Its name.
    pub name: NameInput,
    /// Its bytes.
    pub content: ContentInput,
    /// What stat and read report.
    pub io: IoInput,
}

/// How an entry is named.
#[derive(Debug, Arbitrary)]
pub enum NameInput {
    /// `sf-<gen>.sfa` with the next generation in listing order.
    NextGen,
    /// `sf-<gen>.sfa` with a small generation.
    SmallGen(u8),
    /// `sf-<gen>.sfa` with any generation.
    AnyGen(u64),
    /// `sf-initial.sfa`.
    Legacy,
    /// `.lock`.
    Lock,
    /// `.lock.pid`.
    LockPid,
    /// `.failed`.
    Failed,
    /// Any name (including malformed `*.sfa` names).
    Other(String),
}

/// What an entry's bytes are.
#[derive(Debug, Arbitrary)]
pub enum ContentInput {
    /// Arbitrary bytes.
    Raw(Vec<u8>),
    /// All zero, this long.
    Blank(u16),
    /// A segment with CRC-valid frames.
    Segment(SegmentInput),
}

/// A synthesised segment image.
#[derive(Debug, Arbitrary)]
pub struct SegmentInput {
    /// Its `baseSeq`.
    pub base: BaseInput,
    /// `createdMicros`.
    pub created_micros: i64,
    /// Payloads of its frames (each prefixed with the QWP1 magic when
    /// `qwp1_payloads`).
    pub frames: Vec<Vec<u8>>,
    /// Prefix each payload with `QWP1`, as real frames are.
    pub qwp1_payloads: bool,
    /// Bytes after the last frame.
    pub tail: TailInput,
    /// Zero bytes of preallocation after everything.
    pub zero_pad: u16,
    /// Bit flips `(offset, mask)` applied last (offset modulo the length).
    pub flips: Vec<(u16, u8)>,
}

/// Where a synthesised segment's FSNs start.
#[derive(Debug, Arbitrary)]
pub enum BaseInput {
    /// Right after the previous synthesised segment's last frame.
    Continue,
    /// Overlapping the previous one by this many frames (saturating).
    Back(u8),
    /// After a gap of this many frames.
    Skip(u8),
    /// A small absolute value.
    Small(u8),
    /// Any value (out-of-range ones make the header invalid).
    Any(u64),
}

/// The bytes after a synthesised segment's last frame.
#[derive(Debug, Arbitrary)]
pub enum TailInput {
    /// Nothing.
    None,
    /// An append interrupted before its CRC: length and payload, zero CRC.
    Torn(Vec<u8>),
    /// Arbitrary bytes.
    Garbage(Vec<u8>),
    /// A frame with a wrong CRC followed by a valid frame (corruption).
    BadThenGood(Vec<u8>, Vec<u8>),
}

/// What stat and read report for an entry.
#[derive(Debug, Arbitrary)]
pub enum IoInput {
    /// Size and read both succeed.
    Fine,
    /// The size cannot be read.
    SizeUnreadable,
    /// The read fails.
    ReadFails,
    /// The read returns fewer bytes than listed.
    ShortRead(u8),
}

/// The `.ack-watermark` file.
#[derive(Debug, Arbitrary)]
pub enum WatermarkInput {
    /// No file.
    Absent,
    /// A valid watermark at a small FSN.
    Small(u8),
    /// A valid watermark at any FSN (may not encode).
    Any(u64),
    /// Arbitrary bytes.
    Bytes(Vec<u8>),
    /// The file exists but cannot be read.
    Unreadable,
}

/// One file as the adapter would see it.
struct File {
    name: String,
    image: Vec<u8>,
    io: IoInput,
}

/// Runs the body on `data`.
pub fn run(data: &[u8]) -> Outcome {
    let Ok(input) = SlotInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return "unparsed";
    };
    run_input(input)
}

/// Runs the body on a structured input.
pub fn run_input(input: SlotInput) -> Outcome {
    let files = materialise(input.entries);
    let stamped = |f: u64| encode_watermark(Fsn(f)).ok().map(|b| Ok(b.to_vec()));
    let watermark_file: Option<Result<Vec<u8>, String>> = match input.watermark {
        WatermarkInput::Absent => None,
        WatermarkInput::Small(f) => stamped(u64::from(f)),
        WatermarkInput::Any(f) => stamped(f),
        WatermarkInput::Bytes(b) => Some(Ok(b)),
        WatermarkInput::Unreadable => Some(Err("EIO reading .ack-watermark".to_string())),
    };

    // Step 1: list and stat, as `list_slot` does.
    let listing = if input.listing_fails {
        Err(ListingError("EIO listing the slot".to_string()))
    } else {
        let mut entries: Vec<ListingEntry> = files
            .iter()
            .map(|f| ListingEntry {
                name: f.name.clone(),
                size: match f.io {
                    IoInput::SizeUnreadable => Err("EIO on stat".to_string()),
                    _ => Ok(f.image.len() as u64),
                },
            })
            .collect();
        if watermark_file.is_some() {
            entries.push(ListingEntry::new(ACK_WATERMARK_FILE_NAME, 16));
        }
        Ok(entries)
    };
    let size_unreadable = files.iter().any(|f| {
        matches!(f.io, IoInput::SizeUnreadable)
            && matches!(
                classify_file_name(&f.name),
                SlotFile::Segment(_) | SlotFile::LegacySegment
            )
    });
    let read_plan = match plan_reads(listing) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    assert!(
        !input.listing_fails && !size_unreadable,
        "S3: plan_reads accepted a listing error or an unreadable segment size"
    );

    // Step 2: read every planned file, in plan order.
    let by_name: BTreeMap<&str, &File> = files.iter().map(|f| (f.name.as_str(), f)).collect();
    let mut read_failed = false;
    let mut reads = Vec::new();
    for planned in read_plan.segment_files() {
        let Some(file) = by_name.get(planned.name.as_str()) else {
            panic!("S3: plan_reads asked for {:?}, not listed", planned.name);
        };
        reads.push(match file.io {
            IoInput::ReadFails => {
                read_failed = true;
                SegmentRead::Failed("EIO mapping the segment".to_string())
            }
            IoInput::ShortRead(n) if n > 0 && !file.image.is_empty() => {
                read_failed = true;
                let keep = file.image.len().saturating_sub(usize::from(n));
                SegmentRead::from_image(file.image.get(..keep).unwrap_or(&[]))
            }
            _ => SegmentRead::from_image(&file.image),
        });
    }
    let watermark = match (&watermark_file, read_plan.reads_watermark()) {
        (Some(Ok(bytes)), true) => WatermarkRead::Bytes(bytes.clone()),
        (Some(Err(reason)), true) => WatermarkRead::Failed(reason.clone()),
        _ => WatermarkRead::Absent,
    };
    let wm_bytes = match &watermark {
        WatermarkRead::Bytes(b) => Some(b.clone()),
        _ => None,
    };
    let recovered = match plan(read_plan, reads, watermark) {
        Ok(p) => p,
        Err(e) => return refused(e),
    };
    assert!(
        !read_failed,
        "S3: plan accepted a failed or short segment read"
    );
    check_plan(&recovered, &files, wm_bytes.as_deref());
    if recovered.slot.segments.is_empty() {
        "planned/empty_log"
    } else if recovered.slot.segments.len() > 1 {
        "planned/multi_segment_log"
    } else if recovered.warnings.is_empty() {
        "planned/log"
    } else {
        "planned/log_with_warnings"
    }
}

/// A refusal: typed, and displayable.
fn refused(e: RecoveryError) -> Outcome {
    let _ = e.to_string();
    match e {
        RecoveryError::Listing { .. } => "refused/listing",
        RecoveryError::SizeUnreadable { .. } => "refused/size_unreadable",
        RecoveryError::ReadFailed { .. } => "refused/read_failed",
        RecoveryError::ReadCountMismatch { .. } => {
            panic!("recovery: read count mismatch although every planned file was read")
        }
        RecoveryError::SizeMismatch { .. } => "refused/size_mismatch",
        RecoveryError::HeaderNotUnderstood { .. } => "refused/header_not_understood",
        RecoveryError::HeaderlessData { .. } => "refused/headerless",
        RecoveryError::Corrupt { .. } => "refused/corrupt",
        RecoveryError::Gap { .. } => "refused/gap",
        RecoveryError::Overlap { .. } => "refused/overlap",
        RecoveryError::FsnOverflow { .. } => "refused/fsn_overflow",
        RecoveryError::GenerationExhausted => "refused/generation_exhausted",
        // Raised by the adapter's listing for a segment name that is not a
        // regular file; every entry this harness lists is a file.
        RecoveryError::NotAFile { .. } => {
            panic!("recovery: not-a-file refusal although every entry is a regular file")
        }
    }
}

/// Turns entries into named images; a name already listed is dropped (a
/// directory never lists a name twice).
fn materialise(entries: Vec<EntryInput>) -> Vec<File> {
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    let mut next_gen = 0u64;
    let mut next_base = 0u64;
    for e in entries {
        let name = match e.name {
            NameInput::NextGen => {
                let g = next_gen;
                next_gen = next_gen.saturating_add(1);
                SegmentGen(g).file_name()
            }
            NameInput::SmallGen(g) => SegmentGen(u64::from(g)).file_name(),
            NameInput::AnyGen(g) => SegmentGen(g).file_name(),
            NameInput::Legacy => "sf-initial.sfa".to_string(),
            NameInput::Lock => ".lock".to_string(),
            NameInput::LockPid => ".lock.pid".to_string(),
            NameInput::Failed => ".failed".to_string(),
            NameInput::Other(s) => s,
        };
        if name == ACK_WATERMARK_FILE_NAME || !seen.insert(name.clone()) {
            continue;
        }
        let image = match e.content {
            ContentInput::Raw(b) => b,
            ContentInput::Blank(n) => vec![0; usize::from(n)],
            ContentInput::Segment(s) => synthesise(s, &mut next_base),
        };
        files.push(File {
            name,
            image,
            io: e.io,
        });
    }
    files
}

/// Builds a segment image; `next_base` is where the previous one ended.
fn synthesise(s: SegmentInput, next_base: &mut u64) -> Vec<u8> {
    let base = match s.base {
        BaseInput::Continue => *next_base,
        BaseInput::Back(n) => next_base.saturating_sub(u64::from(n)),
        BaseInput::Skip(n) => next_base.saturating_add(u64::from(n)),
        BaseInput::Small(n) => u64::from(n),
        BaseInput::Any(n) => n,
    };
    let mut image = match SegmentHeader::new(Fsn(base), s.created_micros) {
        Ok(h) => h.encode().to_vec(),
        // Out of range for a header: write the raw value anyway.
        Err(_) => {
            let mut h = SegmentHeader::new(Fsn::ZERO, s.created_micros)
                .map(|h| h.encode().to_vec())
                .unwrap_or_else(|_| vec![0; SEGMENT_HEADER_LEN]);
            if let Some(b) = h.get_mut(8..16) {
                b.copy_from_slice(&base.to_le_bytes());
            }
            h
        }
    };
    let payload = |p: &[u8]| -> Vec<u8> {
        if s.qwp1_payloads {
            let mut v = b"QWP1".to_vec();
            v.extend_from_slice(p);
            v
        } else {
            p.to_vec()
        }
    };
    let mut frames = 0u64;
    for p in &s.frames {
        append_frame(&mut image, &payload(p));
        frames += 1;
    }
    *next_base = base.saturating_add(frames);
    match s.tail {
        TailInput::None => {}
        TailInput::Torn(p) => {
            let p = payload(&p);
            let len = i32::try_from(p.len()).unwrap_or(i32::MAX);
            image.extend_from_slice(&[0; 4]);
            image.extend_from_slice(&len.to_le_bytes());
            image.extend_from_slice(&p);
        }
        TailInput::Garbage(g) => image.extend_from_slice(&g),
        TailInput::BadThenGood(bad, good) => {
            let start = image.len();
            append_frame(&mut image, &payload(&bad));
            if let Some(crc) = image.get_mut(start) {
                *crc ^= 0x5a;
            }
            append_frame(&mut image, &payload(&good));
        }
    }
    image.resize(image.len() + usize::from(s.zero_pad), 0);
    let len = image.len();
    if len > 0 {
        for (at, mask) in s.flips {
            if let Some(b) = image.get_mut(usize::from(at) % len) {
                *b ^= mask;
            }
        }
    }
    image
}

/// Appends one CRC-valid frame carrying `payload` to `image`.
fn append_frame(image: &mut Vec<u8>, payload: &[u8]) {
    let start = image.len();
    image.resize(start + FRAME_HEADER_LEN + payload.len(), 0);
    // The buffer was just sized for the frame, so it always fits.
    let _ = write_frame(image, start, payload);
}

/// Checks an accepted plan against the files (S1, S2, S3, S8).
fn check_plan(p: &RecoveryPlan, files: &[File], watermark: Option<&[u8]>) {
    let slot = &p.slot;
    let by_name: BTreeMap<&str, &File> = files.iter().map(|f| (f.name.as_str(), f)).collect();

    // S3: only listed segment files, each at most once.
    let mut used = HashSet::new();
    for name in slot
        .segments
        .iter()
        .map(|s| s.file_name())
        .chain(slot.leftover_spares.iter().map(|s| s.gen.file_name()))
    {
        assert!(
            by_name.contains_key(name.as_str()),
            "S3: plan names {name:?}, which is not listed"
        );
        assert!(used.insert(name.clone()), "S3: plan uses {name:?} twice");
    }

    // S1 + S2: contiguous FSNs, verified contiguous frames.
    let mut expected_base: Option<Fsn> = None;
    for seg in &slot.segments {
        let name = seg.file_name();
        let image = by_name
            .get(name.as_str())
            .map(|f| f.image.as_slice())
            .unwrap_or_default();
        if let Some(b) = expected_base {
            assert_eq!(seg.base_fsn, b, "S1: FSN gap or overlap at {name:?}");
        }
        expected_base = Some(seg.base_fsn.plus(seg.frame_count()));
        assert_eq!(seg.file_size, image.len() as u64, "recovery: file size");
        let mut at = SEGMENT_HEADER_LEN as u64;
        for &off in &seg.frame_offsets {
            assert_eq!(off, at, "S2: frames of {name:?} not contiguous");
            let payload = read_frame(image, off)
                .unwrap_or_else(|e| panic!("S2: recovered frame of {name:?} invalid: {e}"));
            at = off + (FRAME_HEADER_LEN + payload.len()) as u64;
        }
        assert_eq!(seg.append_offset, at, "S2: append offset of {name:?}");
    }
    if let (Some(last), Some(end)) = (slot.segments.last(), expected_base) {
        let _ = last;
        assert_eq!(slot.next_fsn, end, "S1: next_fsn is not the end of the log");
    }

    // S1: no FSN at or above next_fsn was used by any file with a header.
    for f in files {
        if !matches!(
            classify_file_name(&f.name),
            SlotFile::Segment(_) | SlotFile::LegacySegment
        ) {
            continue;
        }
        if let Ok(ScanOutcome::Segment(scan)) = scan_segment(&f.image) {
            let end = scan
                .header
                .base_fsn()
                .get()
                .saturating_add(scan.frame_count());
            assert!(
                end <= slot.next_fsn.get(),
                "S1: {:?} holds FSNs up to {end} but next_fsn is {}",
                f.name,
                slot.next_fsn.get()
            );
        }
    }

    // next_gen above every listed generation.
    for f in files {
        if let SlotFile::Segment(g) = classify_file_name(&f.name) {
            assert!(
                slot.next_gen > g,
                "recovery: next_gen {:?} not above {g:?}",
                slot.next_gen
            );
        }
    }

    // S8.
    let seed = slot.segments.first().and_then(|s| s.base_fsn.prev());
    let published = slot.next_fsn.prev();
    let wm = watermark.and_then(|b| decode_watermark(b).ok());
    let expected = match wm {
        Some(w) if published.is_some_and(|p| w <= p) => seed.max(Some(w)),
        _ => seed,
    };
    assert_eq!(slot.acked, expected, "S8: acked FSN at open");
}
