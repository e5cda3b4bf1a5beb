//! Every state a process crash (SIGKILL; the page cache survives) can leave
//! while a segment is created and installed, built directly on a temp dir
//! and opened, with no child process and no timing.
//!
//! The sequence under test is the adapter's: [`SegmentFile::create`]
//! (`open(O_CREAT|O_EXCL)`, `set_len`, zero-fill, map), `prefault`, then at
//! install time the 24-byte header store into the mapping, then frames
//! (length, payload, CRC last). There is no temporary name and no rename;
//! `sync_range` (msync, the first one also `fsync` of the file and of the
//! directory) changes nothing a process crash can see, so the states after
//! a sync equal the states before it.
//!
//! For each state the slot must open (S3: a crash at any instant leaves a
//! slot the next open accepts), every frame written before the crash must be
//! recovered contiguously from FSN 0 (S1), nothing on disk may change (S3),
//! the interrupted generation is never handed out again (S1 for names), and
//! only the interrupted file may draw a warning. These tests also pin which
//! warning each state draws: `fs_crash.rs` (the SIGKILL test) accepts
//! exactly those.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sf_core::recovery::RecoveryWarning;
use sf_core::segment::{
    write_frame, HeaderError, SegmentHeader, SEGMENT_HEADER_LEN, SEGMENT_MAGIC, SEGMENT_VERSION,
};
use sf_core::{Fsn, SegmentGen};
use sf_io_tokio::fs::{open_slot_dir, segment_path, SegmentBuffer, SegmentFile};

const SEG: u64 = 4096;
/// `createdMicros` of the interrupted header: non-zero like the adapter's
/// wall clock, so a store of bytes 16..24 alone is visible.
const CREATED_MICROS: i64 = 1_700_000_000_123_456;

fn payload(fsn: u64) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend_from_slice(&fsn.to_le_bytes());
    p.resize(12 + (fsn % 29) as usize, (fsn % 251) as u8 | 1);
    p
}

/// Where the crash happens.
#[derive(Debug, Clone, Copy)]
enum Context {
    /// The first segment of a new slot (gen 0, `baseSeq` 0).
    Fresh,
    /// A rotation: gen 0 sealed with FSNs 0..12, gen 1 holding 12..20, and
    /// gen 2 being created and installed with `baseSeq` 20 (also the state
    /// of a spare pre-provisioned while gen 1 is still active: recovery
    /// sees the same files).
    Rotating,
}

/// A slot directory in the given context; returns it with the log's end
/// (the interrupted segment's `baseSeq`) and the interrupted generation.
fn slot_in(ctx: Context) -> (tempfile::TempDir, PathBuf, Fsn, SegmentGen) {
    let dir = tempfile::tempdir().unwrap();
    let slot = dir.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    match ctx {
        Context::Fresh => (dir, slot, Fsn(0), SegmentGen(0)),
        Context::Rotating => {
            log_segment(&slot, 0, 0, 12);
            log_segment(&slot, 1, 12, 8);
            (dir, slot, Fsn(20), SegmentGen(2))
        }
    }
}

/// Segment `gen` holding frames `base..base + n`, written the adapter's way.
fn log_segment(slot: &Path, gen: u64, base: u64, n: u64) {
    let mut seg = SegmentFile::create_spare(slot, SegmentGen(gen), SEG).unwrap();
    seg.write_header(&SegmentHeader::new(Fsn(base), CREATED_MICROS).unwrap())
        .unwrap();
    let mut at = SEGMENT_HEADER_LEN as u64;
    for fsn in base..base + n {
        at = seg.write_frame(at, &payload(fsn)).unwrap();
    }
    seg.sync_range(0, at).unwrap();
}

fn header_bytes(base: Fsn) -> [u8; SEGMENT_HEADER_LEN] {
    SegmentHeader::new(base, CREATED_MICROS).unwrap().encode()
}

/// A created, zero-filled, pre-faulted spare (the state right before the
/// header store), unmapped again.
fn spare(slot: &Path, gen: SegmentGen) {
    drop(SegmentFile::create_spare(slot, gen, SEG).unwrap());
}

/// Stores `bytes[range]` at the same offsets of the file, for each range:
/// the stores of an interrupted memcpy that did land.
fn store(slot: &Path, gen: SegmentGen, bytes: &[u8], ranges: &[(usize, usize)]) {
    let file = OpenOptions::new()
        .write(true)
        .open(segment_path(slot, gen))
        .unwrap();
    for &(from, to) in ranges {
        file.write_all_at(&bytes[from..to], from as u64).unwrap();
    }
}

fn snapshot(slot: &Path) -> BTreeMap<String, (usize, u64)> {
    std::fs::read_dir(slot)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            let mut h = DefaultHasher::new();
            bytes.hash(&mut h);
            (
                e.file_name().into_string().unwrap(),
                (bytes.len(), h.finish()),
            )
        })
        .filter(|(n, _)| n != ".lock" && n != ".lock.pid")
        .collect()
}

/// What recovery made of the interrupted file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fate {
    /// Skipped with a `SegmentSkipped` warning for this reason, kept.
    Skipped(HeaderError),
    /// Offered to the ring as a leftover spare (no warning).
    LeftoverSpare,
    /// The active segment: `frames` frames, `torn` torn bytes (a
    /// `TornTail` warning exactly when `torn > 0`).
    Active { frames: u64, torn: u64 },
}

/// Opens the slot and checks what holds at every crash point (module doc);
/// returns the fate of `crashed` and the recovered `next_fsn`.
fn open_after_crash(slot: &Path, crashed: SegmentGen, log_end: Fsn, what: &str) -> (Fate, Fsn) {
    let before = snapshot(slot);
    let opened = open_slot_dir(slot)
        .unwrap_or_else(|e| panic!("S3: {what}: a crash state was refused: {e}"));
    let s = &opened.plan.slot;

    // S1: every frame written before the crash, contiguously from 0, bytes
    // intact.
    let mut expect = 0u64;
    for rs in &s.segments {
        assert_eq!(rs.base_fsn, Fsn(expect), "S1: {what}");
        let file = opened.segments.get(rs.gen).unwrap();
        for &off in &rs.frame_offsets {
            assert_eq!(
                file.read_frame(off).unwrap(),
                payload(expect),
                "S1: {what}: FSN {expect}"
            );
            expect += 1;
        }
    }
    assert!(
        expect >= log_end.get(),
        "S1: {what}: lost FSNs below {log_end}"
    );
    assert_eq!(s.next_fsn, Fsn(expect), "S1: {what}");
    assert_eq!(s.acked, None, "{what}");
    // S1 for names: the interrupted generation is counted, so the next
    // session's `create_new` of `next_gen` cannot collide with it.
    assert_eq!(s.next_gen, SegmentGen(crashed.get() + 1), "{what}");

    let name = crashed.file_name();
    let mut fates = Vec::new();
    let mut torn_warning = None;
    for w in &opened.plan.warnings {
        match w {
            RecoveryWarning::SegmentSkipped { name: n, reason } if *n == name => {
                fates.push(Fate::Skipped(reason.clone()));
            }
            RecoveryWarning::TornTail {
                name: n,
                bytes,
                active: true,
            } if *n == name => torn_warning = Some(*bytes),
            other => panic!("{what}: a warning about a file the crash did not touch: {other}"),
        }
    }
    if s.leftover_spares.iter().any(|sp| sp.gen == crashed) {
        fates.push(Fate::LeftoverSpare);
    }
    if let Some(last) = s.segments.last().filter(|l| l.gen == Some(crashed)) {
        assert_eq!(
            torn_warning,
            (last.torn_tail_bytes > 0).then_some(last.torn_tail_bytes),
            "S2: {what}: a torn tail is reported exactly when there is one"
        );
        fates.push(Fate::Active {
            frames: last.frame_count(),
            torn: last.torn_tail_bytes,
        });
    } else {
        assert_eq!(torn_warning, None, "{what}");
    }
    assert_eq!(
        fates.len(),
        1,
        "{what}: the interrupted file's fate: {fates:?}"
    );
    let next_fsn = s.next_fsn;
    drop(opened);
    // S3: nothing created, deleted or rewritten (the interrupted file is
    // still there, byte for byte).
    assert_eq!(snapshot(slot), before, "S3: {what}");
    (fates.remove(0), next_fsn)
}

const CONTEXTS: [Context; 2] = [Context::Fresh, Context::Rotating];

#[test]
fn s1_s3_crash_after_create_new_leaves_an_empty_file_skipped_kept_and_counted() {
    // SIGKILL between `open(O_CREAT|O_EXCL)` and `set_len`: a 0-byte file.
    // This is the state the flaky SIGKILL run captured ("skipping segment
    // sf-0000000000000002.sfa: segment image is 0 bytes, shorter than the
    // 24-byte header", killed after 44 FSNs, every printed FSN recovered).
    for ctx in CONTEXTS {
        let (_d, slot, end, gen) = slot_in(ctx);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(segment_path(&slot, gen))
            .unwrap();
        let (fate, next) = open_after_crash(&slot, gen, end, &format!("{ctx:?} create_new"));
        assert_eq!(
            fate,
            Fate::Skipped(HeaderError::TooShort { len: 0 }),
            "{ctx:?}"
        );
        assert_eq!(next, end, "{ctx:?}");
    }
}

#[test]
fn s1_crash_after_set_len_or_mid_zero_fill_leaves_a_leftover_spare() {
    // SIGKILL after `set_len` (a sparse full-size file) or part-way through
    // the zero-fill: every byte reads as zero, a spare never installed.
    for ctx in CONTEXTS {
        for zeroed in [0, SEG / 2, SEG] {
            let (_d, slot, end, gen) = slot_in(ctx);
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(segment_path(&slot, gen))
                .unwrap();
            file.set_len(SEG).unwrap();
            file.write_all_at(&vec![0u8; zeroed as usize], 0).unwrap();
            drop(file);
            let what = format!("{ctx:?} set_len, {zeroed} bytes zero-filled");
            let (fate, next) = open_after_crash(&slot, gen, end, &what);
            assert_eq!(fate, Fate::LeftoverSpare, "{what}");
            assert_eq!(next, end, "{what}");
        }
    }
}

#[test]
fn s1_crash_after_map_and_prefault_leaves_a_leftover_spare() {
    // SIGKILL after `create_spare` returned (mapped, pre-faulted, header
    // not yet stored): pre-faulting stores each page's byte back unchanged.
    for ctx in CONTEXTS {
        let (_d, slot, end, gen) = slot_in(ctx);
        spare(&slot, gen);
        let (fate, next) = open_after_crash(&slot, gen, end, &format!("{ctx:?} prefault"));
        assert_eq!(fate, Fate::LeftoverSpare, "{ctx:?}");
        assert_eq!(next, end, "{ctx:?}");
    }
}

/// The fate a partly stored header must get, from the rules alone: no
/// header byte stored is a blank spare; a wrong magic or version is
/// skipped; a readable header whose `baseSeq` is the log's end is the
/// (empty) active segment, any lower `baseSeq` a leftover spare.
fn expected_header_fate(h: &[u8; SEGMENT_HEADER_LEN], end: Fsn) -> Fate {
    if h.iter().all(|&b| b == 0) {
        return Fate::LeftoverSpare;
    }
    let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    if magic != SEGMENT_MAGIC {
        return Fate::Skipped(HeaderError::BadMagic { found: magic });
    }
    if h[4] != SEGMENT_VERSION {
        return Fate::Skipped(HeaderError::UnsupportedVersion { found: h[4] });
    }
    let mut base = [0u8; 8];
    base.copy_from_slice(&h[8..16]);
    if Fsn(u64::from_le_bytes(base)) == end {
        Fate::Active { frames: 0, torn: 0 }
    } else {
        Fate::LeftoverSpare
    }
}

#[test]
fn s1_s3_crash_mid_header_store_never_refuses_and_never_loses_a_frame() {
    // SIGKILL lands between two instructions of the 24-byte memcpy into the
    // mapping: the file holds the stores that retired, in whatever order
    // the copy made them. Modelled: every subset of three 8-byte stores,
    // glibc's two overlapping 16-byte stores in either order, and a byte
    // loop going up or down. Zeroing bytes of a little-endian `baseSeq`
    // never raises it, so a partial one is never beyond the log (no gap
    // refusal); a header without its magic is skipped and kept.
    let mut states: Vec<(String, Vec<(usize, usize)>)> = Vec::new();
    for mask in 0u8..8 {
        let stores = (0..3)
            .filter(|i| mask & (1 << i) != 0)
            .map(|i| (i * 8, i * 8 + 8))
            .collect();
        states.push((format!("8-byte stores {mask:03b}"), stores));
    }
    states.push(("16-byte store 0..16".into(), vec![(0, 16)]));
    states.push(("16-byte store 8..24".into(), vec![(8, 24)]));
    for n in 1..SEGMENT_HEADER_LEN {
        states.push((format!("bytes 0..{n}"), vec![(0, n)]));
        states.push((
            format!("bytes {}..24", SEGMENT_HEADER_LEN - n),
            vec![(SEGMENT_HEADER_LEN - n, SEGMENT_HEADER_LEN)],
        ));
    }
    let mut seen_skip = false;
    for ctx in CONTEXTS {
        for (label, stores) in &states {
            let (_d, slot, end, gen) = slot_in(ctx);
            spare(&slot, gen);
            let full = header_bytes(end);
            store(&slot, gen, &full, stores);
            let mut landed = [0u8; SEGMENT_HEADER_LEN];
            for &(from, to) in stores {
                landed[from..to].copy_from_slice(&full[from..to]);
            }
            let what = format!("{ctx:?} header {label}");
            let (fate, next) = open_after_crash(&slot, gen, end, &what);
            assert_eq!(fate, expected_header_fate(&landed, end), "{what}");
            assert_eq!(next, end, "S1: {what}: no frame was written yet");
            seen_skip |= matches!(fate, Fate::Skipped(_));
        }
    }
    assert!(
        seen_skip,
        "the model covers a header stored without its magic"
    );
}

#[test]
fn s1_crash_after_header_store_recovers_the_empty_active_segment() {
    // SIGKILL after the header store (before or after its sync): the
    // installed, empty segment is where FSNs continue.
    for ctx in CONTEXTS {
        let (_d, slot, end, gen) = slot_in(ctx);
        let mut seg = SegmentFile::create_spare(&slot, gen, SEG).unwrap();
        seg.write_header(&SegmentHeader::new(end, CREATED_MICROS).unwrap())
            .unwrap();
        drop(seg);
        let (fate, next) = open_after_crash(&slot, gen, end, &format!("{ctx:?} header"));
        assert_eq!(fate, Fate::Active { frames: 0, torn: 0 }, "{ctx:?}");
        assert_eq!(next, end, "{ctx:?}");
    }
}

#[test]
fn s2_crash_mid_first_frame_is_a_torn_tail_of_the_active_segment() {
    // SIGKILL inside the first `write_frame` of the new segment, whose
    // program order is length, payload, CRC: every prefix of those stores.
    // Until the CRC lands the frame is a torn tail of the active segment
    // (TornTail, the FSN not recovered: it was never synced nor reported);
    // once it lands the frame is whole.
    for ctx in CONTEXTS {
        let end = slot_in(ctx).2;
        let p = payload(end.get());
        let mut frame = vec![0u8; 8 + p.len()];
        write_frame(&mut frame, 0, &p).unwrap();
        assert_ne!(
            &frame[..4],
            &[0u8; 4],
            "a CRC of 0 would hide the last store"
        );
        let at = SEGMENT_HEADER_LEN;
        let mut prefixes = vec![vec![(at + 4, at + 8)]];
        for k in 1..=p.len() {
            prefixes.push(vec![(at + 4, at + 8), (at + 8, at + 8 + k)]);
        }
        prefixes.push(vec![(at, at + 8 + p.len())]);
        for (i, stores) in prefixes.iter().enumerate() {
            let (_d, slot, end, gen) = slot_in(ctx);
            let mut seg = SegmentFile::create_spare(&slot, gen, SEG).unwrap();
            seg.write_header(&SegmentHeader::new(end, CREATED_MICROS).unwrap())
                .unwrap();
            drop(seg);
            let mut image = vec![0u8; at + frame.len()];
            image[at..].copy_from_slice(&frame);
            store(&slot, gen, &image, stores);
            let what = format!("{ctx:?} first frame, store prefix {i}");
            let (fate, next) = open_after_crash(&slot, gen, end, &what);
            if i + 1 == prefixes.len() {
                assert_eq!(fate, Fate::Active { frames: 1, torn: 0 }, "{what}");
                assert_eq!(next, Fsn(end.get() + 1), "{what}");
            } else {
                let Fate::Active { frames: 0, torn } = fate else {
                    panic!("{what}: {fate:?}");
                };
                assert!(torn > 0, "{what}");
                assert_eq!(next, end, "{what}");
            }
        }
    }
}

#[test]
fn s3_an_empty_file_left_by_a_crash_never_blocks_a_later_open() {
    // Session 1 is killed right after `create_new` of gen 2; session 2
    // recovers (gen 2 skipped, next gen 3), appends in gen 3 and is killed
    // after `create_new` of gen 4. Session 3 must still open with both
    // empty files skipped and kept, and every frame there.
    let (_d, slot, end, gen) = slot_in(Context::Rotating);
    let empty = |g: SegmentGen| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(segment_path(&slot, g))
            .unwrap();
    };
    empty(gen);
    let first = open_slot_dir(&slot).unwrap();
    assert_eq!(first.plan.slot.next_gen, SegmentGen(3));
    drop(first);
    log_segment(&slot, 3, end.get(), 5);
    empty(SegmentGen(4));
    let before = snapshot(&slot);
    let opened = open_slot_dir(&slot).unwrap();
    let s = &opened.plan.slot;
    let segs: Vec<_> = s
        .segments
        .iter()
        .map(|g| (g.gen, g.base_fsn, g.frame_count()))
        .collect();
    assert_eq!(
        segs,
        [
            (Some(SegmentGen(0)), Fsn(0), 12),
            (Some(SegmentGen(1)), Fsn(12), 8),
            (Some(SegmentGen(3)), Fsn(20), 5),
        ]
    );
    assert_eq!(s.next_fsn, Fsn(25));
    assert_eq!(s.next_gen, SegmentGen(5));
    let too_short = HeaderError::TooShort { len: 0 };
    assert_eq!(
        opened.plan.warnings,
        [SegmentGen(2), SegmentGen(4)].map(|g| RecoveryWarning::SegmentSkipped {
            name: g.file_name(),
            reason: too_short.clone(),
        })
    );
    drop(opened);
    assert_eq!(snapshot(&slot), before, "S3");
}

#[test]
fn s2_s3_a_torn_empty_segment_a_later_session_rotated_past_is_ignored_not_refused() {
    // Session 1 is killed mid first frame of gen 2 (header base 20, torn
    // tail). Session 2 recovers gen 2 as the torn active segment, seals it
    // and rotates (the ring never appends beside a torn tail): gen 3 gets
    // base 20 too and frames 20..23. Session 3 sees two files claiming base
    // 20: gen 2 has no frames, so it is ignored with a warning and kept,
    // never a refusal and never offered as a spare.
    let (_d, slot, end, gen) = slot_in(Context::Rotating);
    let mut seg = SegmentFile::create_spare(&slot, gen, SEG).unwrap();
    seg.write_header(&SegmentHeader::new(end, CREATED_MICROS).unwrap())
        .unwrap();
    let at = SEGMENT_HEADER_LEN;
    seg.image_mut()[at + 4..at + 8].copy_from_slice(&40i32.to_le_bytes());
    seg.image_mut()[at + 8..at + 12].copy_from_slice(b"QWP1");
    drop(seg);
    let first = open_slot_dir(&slot).unwrap();
    assert!(matches!(
        first.plan.warnings.as_slice(),
        [RecoveryWarning::TornTail { active: true, .. }]
    ));
    drop(first);
    log_segment(&slot, 3, end.get(), 3);
    let before = snapshot(&slot);
    let opened = open_slot_dir(&slot).unwrap();
    let s = &opened.plan.slot;
    assert_eq!(s.next_fsn, Fsn(23));
    assert_eq!(s.segments.last().unwrap().gen, Some(SegmentGen(3)));
    assert!(s.leftover_spares.iter().all(|sp| sp.gen != gen));
    assert!(matches!(
        opened.plan.warnings.as_slice(),
        [RecoveryWarning::TornEmptySegmentIgnored { name, .. }] if *name == gen.file_name()
    ));
    drop(opened);
    assert_eq!(snapshot(&slot), before);
}
