//! A process crash at the file level: a child writes frames into mapped
//! segments (rotating through several files), prints each FSN once its
//! `sync_range` returned, and is killed with SIGKILL after a random number of
//! lines. Reopening the slot must recover every printed FSN, contiguously
//! from 0 (S1), with at most a torn tail (S2) or the one file whose creation
//! the kill interrupted, skipped and kept, and without touching a file (S3).

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use sf_core::recovery::{RecoveryPlan, RecoveryWarning};
use sf_core::segment::{HeaderError, SegmentHeader, SEGMENT_HEADER_LEN};
use sf_core::{Fsn, SegmentGen};
use sf_io_tokio::fs::{open_slot_dir, SegmentBuffer, SegmentFile};

const CHILD_SLOT_ENV: &str = "QWP_FS_CRASH_CHILD_SLOT";
/// Small segments so a run rotates through many files.
const SEGMENT_BYTES: u64 = 8 * 1024;
/// Frames the child writes before it idles (waiting to be killed).
const CHILD_FRAMES: u64 = 400;

fn payload(fsn: u64) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend_from_slice(&fsn.to_le_bytes());
    let len = 12 + (fsn.wrapping_mul(0x9e37_79b9) % 700) as usize;
    p.resize(len, (fsn % 251) as u8 | 1);
    p
}

/// Child-process helper for `s1_s2_s3_every_synced_fsn_survives_sigkill`:
/// appends frames into a slot, rotating segments like the ring does (a
/// spare created off the path, its header written at install), syncing each
/// frame and printing its FSN. Ignored so that only the parent runs it.
#[test]
#[ignore = "child-process helper, spawned by s1_s2_s3_every_synced_fsn_survives_sigkill"]
fn child_appends_and_syncs_frames() {
    let Ok(slot) = std::env::var(CHILD_SLOT_ENV) else {
        return;
    };
    let opened = open_slot_dir(Path::new(&slot)).unwrap();
    assert_eq!(
        opened.plan.slot.next_fsn,
        Fsn::ZERO,
        "the child starts fresh"
    );
    let mut gen = 0u64;
    let mut seg =
        SegmentFile::create_spare(Path::new(&slot), SegmentGen(gen), SEGMENT_BYTES).unwrap();
    seg.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap())
        .unwrap();
    seg.sync_range(0, 24).unwrap();
    let mut at = 24u64;
    for fsn in 0..CHILD_FRAMES {
        let p = payload(fsn);
        if at + 8 + p.len() as u64 > SEGMENT_BYTES {
            gen += 1;
            seg = SegmentFile::create_spare(Path::new(&slot), SegmentGen(gen), SEGMENT_BYTES)
                .unwrap();
            seg.write_header(&SegmentHeader::new(Fsn(fsn), 0).unwrap())
                .unwrap();
            at = 24;
        }
        let start = at;
        at = seg.write_frame(at, &p).unwrap();
        seg.sync_range(if start == 24 { 0 } else { start }, at)
            .unwrap();
        println!("@@FSN {fsn}");
    }
    println!("@@DONE");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
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

/// Runs the child and kills it after `kill_after` printed FSNs; returns the
/// highest FSN it printed.
fn run_child_and_kill(slot: &Path, kill_after: u64) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_appends_and_syncs_frames",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_SLOT_ENV, slot)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(at) = line.find("@@FSN ") {
            printed.push(line[at + 6..].trim().parse::<u64>().unwrap());
        }
        if line.contains("@@DONE") || printed.len() as u64 >= kill_after {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!printed.is_empty(), "the child printed nothing");
    let expected: Vec<u64> = (0..printed.len() as u64).collect();
    assert_eq!(printed, expected, "the child printed FSNs out of order");
    *printed.last().unwrap()
}

/// S2: nothing worse than a torn tail was tolerated, apart from the one file
/// a kill inside segment creation legitimately leaves unreadable (see
/// [`interrupted_creation`]).
fn check_warnings(slot: &Path, plan: &RecoveryPlan, ctx: &str) {
    let mut skipped = 0;
    for w in &plan.warnings {
        match w {
            RecoveryWarning::TornTail { .. } => {}
            RecoveryWarning::SegmentSkipped { name, reason } => {
                skipped += 1;
                interrupted_creation(slot, name, reason, plan.slot.next_fsn, ctx);
            }
            other => panic!("{ctx}: {other}"),
        }
    }
    assert!(skipped <= 1, "{ctx}: one kill interrupts one creation");
}

/// Asserts that segment `name`, which recovery skipped for `reason`, is the
/// file the kill interrupted while the child created or installed it, and
/// holds no frame. A SIGKILL between `create_new` and `set_len` leaves a
/// 0-byte file; one in the middle of the header store can leave a header
/// without its magic (depending on the order the memcpy stores in). Both
/// are skipped with a warning and kept (`fs_crash_points.rs` pins every
/// crash point); any other skipped file is a failure.
fn interrupted_creation(slot: &Path, name: &str, reason: &HeaderError, next_fsn: Fsn, ctx: &str) {
    let newest = std::fs::read_dir(slot)
        .unwrap()
        .filter_map(|e| SegmentGen::parse_file_name(e.unwrap().file_name().to_str()?))
        .max()
        .unwrap();
    assert_eq!(
        name,
        newest.file_name(),
        "{ctx}: skipped a file that is not the one being created ({reason})"
    );
    let bytes = std::fs::read(slot.join(name)).unwrap();
    if bytes.is_empty() {
        assert_eq!(reason, &HeaderError::TooShort { len: 0 }, "{ctx}");
        return;
    }
    assert_eq!(bytes.len() as u64, SEGMENT_BYTES, "{ctx}: {name}: {reason}");
    let (header, body) = bytes.split_at(SEGMENT_HEADER_LEN);
    assert!(
        body.iter().all(|&b| b == 0),
        "{ctx}: skipped {name} ({reason}) holds bytes past its header"
    );
    // The header it was being given: `baseSeq` where FSNs continue.
    let expected = SegmentHeader::new(next_fsn, 0).unwrap().encode();
    assert!(
        header
            .iter()
            .zip(expected)
            .all(|(&got, want)| got == 0 || got == want),
        "{ctx}: skipped {name} ({reason}) is not a partly stored header: {header:02x?}"
    );
}

#[test]
fn s1_s2_s3_every_synced_fsn_survives_sigkill() {
    let seed = RandomState::new().hash_one(std::process::id());
    for round in 0..3u64 {
        let kill_after = 1 + (seed.rotate_left(round as u32 * 21) % (CHILD_FRAMES - 1));
        let sf = tempfile::tempdir().unwrap();
        let slot = sf.path().join("s");
        let last_printed = run_child_and_kill(&slot, kill_after);
        let ctx = format!("seed {seed:#x} round {round}: killed after {kill_after} FSNs");
        let before = snapshot(&slot);

        let opened = open_slot_dir(&slot).unwrap_or_else(|e| panic!("{ctx}: refused: {e}"));
        let s = &opened.plan.slot;
        // S1: contiguous from 0, and every printed FSN is there.
        assert_eq!(
            s.segments.first().map(|g| g.base_fsn),
            Some(Fsn(0)),
            "{ctx}"
        );
        let mut expect = 0u64;
        for rs in &s.segments {
            assert_eq!(rs.base_fsn, Fsn(expect), "{ctx}");
            let file = opened.segments.get(rs.gen).unwrap();
            for &off in &rs.frame_offsets {
                assert_eq!(
                    file.read_frame(off).unwrap(),
                    payload(expect),
                    "{ctx}: FSN {expect}"
                );
                expect += 1;
            }
        }
        assert_eq!(s.next_fsn, Fsn(expect), "{ctx}");
        assert!(
            expect > last_printed,
            "{ctx}: printed FSN {last_printed} lost, recovered up to {expect}"
        );
        assert_eq!(s.acked, None, "{ctx}: nothing was acknowledged");
        check_warnings(&slot, &opened.plan, &ctx);
        drop(opened);
        // S3: recovery changed nothing on disk.
        assert_eq!(snapshot(&slot), before, "{ctx}");
    }
}

/// A slot as the child leaves it after `frames` synced FSNs in gen 0, with
/// `newest` (a file name and its bytes) written beside it.
fn killed_slot(frames: u64, extra: &[(u64, Vec<u8>)]) -> tempfile::TempDir {
    let sf = tempfile::tempdir().unwrap();
    let mut seg = SegmentFile::create_spare(sf.path(), SegmentGen(0), SEGMENT_BYTES).unwrap();
    seg.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap())
        .unwrap();
    let mut at = SEGMENT_HEADER_LEN as u64;
    for fsn in 0..frames {
        at = seg.write_frame(at, &payload(fsn)).unwrap();
    }
    for (gen, bytes) in extra {
        std::fs::write(sf.path().join(SegmentGen(*gen).file_name()), bytes).unwrap();
    }
    sf
}

#[test]
fn s2_sigkill_check_accepts_the_captured_interrupted_creation() {
    // The state of the captured flake (`create_new` done, `set_len` not),
    // and a header store that lost its first 8 bytes.
    let mut no_magic = vec![0u8; SEGMENT_BYTES as usize];
    no_magic[8..16].copy_from_slice(&3u64.to_le_bytes());
    for newest in [Vec::new(), no_magic] {
        let sf = killed_slot(3, &[(1, newest)]);
        let opened = open_slot_dir(sf.path()).unwrap();
        assert_eq!(opened.plan.warnings.len(), 1);
        check_warnings(sf.path(), &opened.plan, "captured");
    }
}

#[test]
#[should_panic(expected = "not the one being created")]
fn s2_sigkill_check_rejects_a_skipped_file_that_is_not_the_newest() {
    let mut later = vec![0u8; SEGMENT_BYTES as usize];
    later[..SEGMENT_HEADER_LEN].copy_from_slice(&SegmentHeader::new(Fsn(3), 0).unwrap().encode());
    let sf = killed_slot(3, &[(1, Vec::new()), (2, later)]);
    let opened = open_slot_dir(sf.path()).unwrap();
    check_warnings(sf.path(), &opened.plan, "older skip");
}

#[test]
#[should_panic(expected = "holds bytes past its header")]
fn s1_sigkill_check_rejects_a_skipped_file_that_holds_frames() {
    // A header without its magic in front of a frame: skipping it would
    // lose that frame, which no crash point of the child can produce.
    let mut image = vec![0u8; SEGMENT_BYTES as usize];
    image[8..16].copy_from_slice(&3u64.to_le_bytes());
    sf_core::segment::write_frame(&mut image, SEGMENT_HEADER_LEN, &payload(3)).unwrap();
    let sf = killed_slot(3, &[(1, image)]);
    let opened = open_slot_dir(sf.path()).unwrap();
    check_warnings(sf.path(), &opened.plan, "frames");
}

#[test]
#[should_panic(expected = "not a partly stored header")]
fn s2_sigkill_check_rejects_a_header_that_is_not_the_one_being_stored() {
    // `baseSeq` 9 where FSNs continue at 3: not a prefix of the install.
    let mut image = vec![0u8; SEGMENT_BYTES as usize];
    image[8..16].copy_from_slice(&9u64.to_le_bytes());
    let sf = killed_slot(3, &[(1, image)]);
    let opened = open_slot_dir(sf.path()).unwrap();
    check_warnings(sf.path(), &opened.plan, "foreign header");
}
