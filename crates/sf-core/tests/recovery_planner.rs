//! The recovery planner's rules (S1, S2, S3, S8) and the regression
//! catalogue items it owns (DESIGN §6 items 4, 10, 13).

use std::collections::HashMap;

use sf_core::recovery::{
    plan, plan_reads, ListingEntry, ListingError, RecoveredSlot, RecoveryError, RecoveryPlan,
    RecoveryWarning, SegmentRead, WatermarkRead, LEGACY_INITIAL_SEGMENT,
};
use sf_core::segment::{write_frame, HeaderError, SegmentHeader, SEGMENT_HEADER_LEN};
use sf_core::watermark::{encode_watermark, WatermarkError};
use sf_core::{Fsn, SegmentGen};

const SIZE: usize = 512;

fn payload(i: usize) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend(std::iter::repeat_n(i as u8, 5 + i % 7));
    p
}

/// A segment of `SIZE` bytes with `frames` frames from `base`.
fn seg(base: u64, frames: usize) -> Vec<u8> {
    let mut img = vec![0u8; SIZE];
    img[..SEGMENT_HEADER_LEN].copy_from_slice(&SegmentHeader::new(Fsn(base), 0).unwrap().encode());
    let mut at = SEGMENT_HEADER_LEN;
    for i in 0..frames {
        at = write_frame(&mut img, at, &payload(i)).unwrap();
    }
    img
}

/// End offset of the last frame of a `seg(_, frames)` image.
fn end_of(frames: usize) -> usize {
    SEGMENT_HEADER_LEN + (0..frames).map(|i| 8 + payload(i).len()).sum::<usize>()
}

fn name(gen: u64) -> String {
    SegmentGen(gen).file_name()
}

fn run_with(files: &[(String, Vec<u8>)], wm: WatermarkRead) -> Result<RecoveryPlan, RecoveryError> {
    let listing = files
        .iter()
        .map(|(n, img)| ListingEntry::new(n.clone(), img.len() as u64))
        .collect();
    let rp = plan_reads(Ok(listing))?;
    let images: HashMap<&str, &[u8]> = files
        .iter()
        .map(|(n, i)| (n.as_str(), i.as_slice()))
        .collect();
    let reads = rp
        .segment_files()
        .iter()
        .map(|f| SegmentRead::from_image(images[f.name.as_str()]))
        .collect();
    plan(rp, reads, wm)
}

fn run(files: &[(String, Vec<u8>)]) -> Result<RecoveryPlan, RecoveryError> {
    run_with(files, WatermarkRead::Absent)
}

fn bases(p: &RecoveryPlan) -> Vec<(Option<u64>, u64, u64)> {
    p.slot
        .segments
        .iter()
        .map(|s| (s.gen.map(|g| g.get()), s.base_fsn.get(), s.frame_count()))
        .collect()
}

#[test]
fn s1_empty_slot_starts_at_zero() {
    let p = run(&[]).unwrap();
    assert_eq!(p.slot, RecoveredSlot::empty());
    assert!(p.warnings.is_empty());
}

#[test]
fn non_segment_names_are_ignored_and_unknown_sfa_warns() {
    let files = vec![
        (".lock".to_string(), vec![]),
        (".lock.pid".to_string(), b"42\n".to_vec()),
        (".failed".to_string(), b"gave up".to_vec()),
        ("notes.txt".to_string(), vec![1, 2]),
        ("sf-00000000000000FF.sfa".to_string(), seg(0, 1)),
        (name(3), seg(7, 2)),
    ];
    let p = run(&files).unwrap();
    assert_eq!(bases(&p), vec![(Some(3), 7, 2)]);
    assert_eq!(p.slot.next_gen, SegmentGen(4));
    assert_eq!(
        p.warnings,
        vec![RecoveryWarning::UnknownSegmentName {
            name: "sf-00000000000000FF.sfa".into()
        }]
    );
}

#[test]
fn s3_listing_error_refuses() {
    let err = plan_reads(Err(ListingError("EIO".into()))).unwrap_err();
    assert_eq!(
        err,
        RecoveryError::Listing {
            reason: "EIO".into()
        }
    );
}

#[test]
fn regression_item4_size_read_error_is_not_an_empty_segment() {
    // DESIGN §6 item 4: a length read error (-1) was taken as an empty
    // segment, so its frames vanished and FSNs were reused.
    let listing = vec![
        ListingEntry::new(name(0), SIZE as u64),
        ListingEntry {
            name: name(1),
            size: Err("stat: EIO".into()),
        },
    ];
    assert_eq!(
        plan_reads(Ok(listing)).unwrap_err(),
        RecoveryError::SizeUnreadable {
            name: name(1),
            reason: "stat: EIO".into()
        }
    );
}

#[test]
fn s3_short_read_is_not_a_shorter_segment() {
    let rp = plan_reads(Ok(vec![ListingEntry::new(name(0), SIZE as u64)])).unwrap();
    let img = seg(0, 3);
    let reads = vec![SegmentRead::from_image(&img[..100])];
    assert_eq!(
        plan(rp, reads, WatermarkRead::Absent).unwrap_err(),
        RecoveryError::SizeMismatch {
            name: name(0),
            listed: SIZE as u64,
            read: 100
        }
    );
}

#[test]
fn s3_segment_read_error_refuses() {
    let rp = plan_reads(Ok(vec![ListingEntry::new(name(0), 10)])).unwrap();
    let err = plan(
        rp,
        vec![SegmentRead::Failed("EIO".into())],
        WatermarkRead::Absent,
    )
    .unwrap_err();
    assert_eq!(
        err,
        RecoveryError::ReadFailed {
            name: name(0),
            reason: "EIO".into()
        }
    );
}

#[test]
fn reads_must_match_the_plan() {
    let rp = plan_reads(Ok(vec![ListingEntry::new(name(0), 10)])).unwrap();
    assert_eq!(
        plan(rp, vec![], WatermarkRead::Absent).unwrap_err(),
        RecoveryError::ReadCountMismatch {
            expected: 1,
            got: 0
        }
    );
}

#[test]
fn unusable_headers_are_skipped_with_a_warning_but_count_for_next_gen() {
    let mut bad_magic = seg(0, 1);
    bad_magic[0] = b'X';
    let mut bad_version = seg(0, 1);
    bad_version[4] = 2;
    let mut bad_base = seg(0, 1);
    bad_base[15] = 0x80;
    let files = vec![
        (name(1), bad_magic),
        (name(2), bad_version),
        (name(3), bad_base),
        (name(9), vec![1u8; 10]),
        (name(4), seg(0, 2)),
    ];
    let p = run(&files).unwrap();
    assert_eq!(bases(&p), vec![(Some(4), 0, 2)]);
    assert_eq!(p.slot.next_gen, SegmentGen(10));
    let skipped: Vec<_> = p
        .warnings
        .iter()
        .map(|w| match w {
            RecoveryWarning::SegmentSkipped { name, reason } => (name.clone(), reason.clone()),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(skipped.len(), 4);
    assert!(matches!(skipped[0].1, HeaderError::BadMagic { .. }));
    assert_eq!(skipped[1].1, HeaderError::UnsupportedVersion { found: 2 });
    assert!(matches!(
        skipped[2].1,
        HeaderError::BaseSeqOutOfRange { .. }
    ));
    assert_eq!(skipped[3], (name(9), HeaderError::TooShort { len: 10 }));
}

#[test]
fn s3_header_bits_we_do_not_understand_refuse() {
    let mut flagged = seg(0, 1);
    flagged[5] = 0x10;
    assert_eq!(
        run(&[(name(0), flagged)]).unwrap_err(),
        RecoveryError::HeaderNotUnderstood {
            name: name(0),
            source: HeaderError::NonZeroFlags { flags: 0x10 }
        }
    );
    let mut headerless = seg(0, 1);
    headerless[..SEGMENT_HEADER_LEN].fill(0);
    assert_eq!(
        run(&[(name(0), headerless)]).unwrap_err(),
        RecoveryError::HeaderlessData {
            name: name(0),
            first_nonzero: 24
        }
    );
}

#[test]
fn s1_segments_are_ordered_by_base_not_by_name_and_continue() {
    // Generations deliberately out of FSN order.
    let files = vec![
        (name(7), seg(5, 4)),
        (name(2), seg(9, 1)),
        (name(5), seg(0, 5)),
    ];
    let p = run(&files).unwrap();
    assert_eq!(
        bases(&p),
        vec![(Some(5), 0, 5), (Some(7), 5, 4), (Some(2), 9, 1)]
    );
    assert_eq!(p.slot.next_fsn, Fsn(10));
    assert_eq!(p.slot.next_gen, SegmentGen(8));
    assert_eq!(p.slot.acked, None);
    let last = p.slot.segments.last().unwrap();
    assert_eq!(last.append_offset, end_of(1) as u64);
    assert_eq!(last.file_size, SIZE as u64);
    assert_eq!(last.torn_tail_bytes, 0);
    let first = &p.slot.segments[0];
    assert_eq!(first.frame_offsets[0], 24);
    assert_eq!(first.frame_offsets[1], (24 + 8 + payload(0).len()) as u64);
}

#[test]
fn s3_fsn_gap_refuses_naming_both_files() {
    let files = vec![(name(1), seg(0, 3)), (name(2), seg(4, 1))];
    assert_eq!(
        run(&files).unwrap_err(),
        RecoveryError::Gap {
            prev: name(1),
            prev_end: Fsn(3),
            next: name(2),
            next_base: Fsn(4)
        }
    );
}

#[test]
fn s3_fsn_overlap_refuses_naming_both_files() {
    let files = vec![(name(1), seg(0, 3)), (name(2), seg(2, 1))];
    assert_eq!(
        run(&files).unwrap_err(),
        RecoveryError::Overlap {
            prev: name(1),
            prev_end: Fsn(3),
            next: name(2),
            next_base: Fsn(2)
        }
    );
    let same_base = vec![(name(1), seg(4, 1)), (name(2), seg(4, 1))];
    assert!(matches!(
        run(&same_base),
        Err(RecoveryError::Overlap { .. })
    ));
}

#[test]
fn s2_corrupt_segment_refuses() {
    let mut img = seg(0, 3);
    let second = 24 + 8 + payload(0).len();
    img[second + 10] ^= 1;
    let err = run(&[(name(0), seg(10, 1)), (name(1), img)]).unwrap_err();
    assert!(
        matches!(
            err,
            RecoveryError::Corrupt { ref name, bad_frame_offset, evidence_offset, .. }
                if *name == self::name(1)
                    && bad_frame_offset == second as u64
                    && evidence_offset == end_of(2) as u64
        ),
        "{err:?}"
    );
}

fn tear(img: &mut [u8], at: usize) {
    // An append interrupted after its length and part of its payload.
    img[at + 4..at + 8].copy_from_slice(&20i32.to_le_bytes());
    img[at + 8..at + 14].copy_from_slice(b"QWP1zz");
}

#[test]
fn s2_torn_tail_in_active_segment_is_recovered_and_reported() {
    let mut active = seg(3, 2);
    tear(&mut active, end_of(2));
    let p = run(&[(name(0), seg(0, 3)), (name(1), active)]).unwrap();
    assert_eq!(p.slot.next_fsn, Fsn(5));
    let last = p.slot.segments.last().unwrap();
    assert_eq!(last.torn_tail_bytes, 14);
    assert_eq!(last.append_offset, end_of(2) as u64);
    assert_eq!(
        p.warnings,
        vec![RecoveryWarning::TornTail {
            name: name(1),
            bytes: 14,
            active: true
        }]
    );
}

#[test]
fn s2_torn_tail_in_sealed_segment_is_accepted_when_contiguous() {
    // The ring seals a torn segment and rotates; the successor's baseSeq
    // proves no committed frame was lost.
    let mut sealed = seg(0, 3);
    tear(&mut sealed, end_of(3));
    let p = run(&[(name(0), sealed), (name(1), seg(3, 1))]).unwrap();
    assert_eq!(p.slot.segments[0].torn_tail_bytes, 14);
    assert_eq!(p.slot.next_fsn, Fsn(4));
    assert_eq!(
        p.warnings,
        vec![RecoveryWarning::TornTail {
            name: name(0),
            bytes: 14,
            active: false
        }]
    );
}

#[test]
fn s3_torn_sealed_segment_that_lost_frames_is_a_gap() {
    // The sealed segment held 3 frames, the third is now torn: the
    // successor starting at 3 exposes the missing FSN 2.
    let mut sealed = seg(0, 3);
    sealed[end_of(2)] ^= 0xff;
    let err = run(&[(name(0), sealed), (name(1), seg(3, 1))]).unwrap_err();
    assert_eq!(
        err,
        RecoveryError::Gap {
            prev: name(0),
            prev_end: Fsn(2),
            next: name(1),
            next_base: Fsn(3)
        }
    );
}

#[test]
fn zero_frame_segment_at_log_end_with_highest_gen_is_active() {
    // Rotation installed gen 2 at FSN 5, then the process stopped.
    let p = run(&[(name(1), seg(0, 5)), (name(2), seg(5, 0))]).unwrap();
    assert_eq!(bases(&p), vec![(Some(1), 0, 5), (Some(2), 5, 0)]);
    assert_eq!(p.slot.next_fsn, Fsn(5));
    assert_eq!(p.slot.segments[1].append_offset, 24);
    assert!(p.slot.leftover_spares.is_empty());
}

#[test]
fn zero_frame_segment_not_newer_than_log_is_a_leftover_spare() {
    // Same baseSeq as the log end, but an older generation than the log.
    let p = run(&[(name(3), seg(0, 5)), (name(2), seg(5, 0))]).unwrap();
    assert_eq!(bases(&p), vec![(Some(3), 0, 5)]);
    assert_eq!(p.slot.leftover_spares.len(), 1);
    assert_eq!(p.slot.leftover_spares[0].gen, SegmentGen(2));
    assert_eq!(p.slot.next_fsn, Fsn(5));
}

#[test]
fn zero_frame_segment_inside_log_range_is_a_leftover_spare() {
    let p = run(&[
        (name(1), seg(0, 5)),
        (name(4), seg(2, 0)),
        (name(5), seg(0, 0)),
    ])
    .unwrap();
    assert_eq!(bases(&p), vec![(Some(1), 0, 5)]);
    let gens: Vec<u64> = p.slot.leftover_spares.iter().map(|s| s.gen.get()).collect();
    assert_eq!(gens, vec![4, 5]);
    assert_eq!(p.slot.next_fsn, Fsn(5));
    assert_eq!(p.slot.next_gen, SegmentGen(6));
}

#[test]
fn s3_zero_frame_segment_beyond_log_end_is_a_gap() {
    let err = run(&[(name(1), seg(0, 5)), (name(2), seg(9, 0))]).unwrap_err();
    assert_eq!(
        err,
        RecoveryError::Gap {
            prev: name(1),
            prev_end: Fsn(5),
            next: name(2),
            next_base: Fsn(9)
        }
    );
}

#[test]
fn blank_file_is_an_uninstalled_spare() {
    let p = run(&[(name(1), seg(0, 2)), (name(2), vec![0u8; SIZE])]).unwrap();
    assert_eq!(p.slot.leftover_spares.len(), 1);
    assert_eq!(p.slot.leftover_spares[0].gen, SegmentGen(2));
    assert_eq!(p.slot.leftover_spares[0].file_size, SIZE as u64);
    assert_eq!(bases(&p), vec![(Some(1), 0, 2)]);
    assert!(p.warnings.is_empty());
}

#[test]
fn torn_zero_frame_segment_that_is_not_active_is_left_alone() {
    let mut torn_empty = seg(5, 0);
    tear(&mut torn_empty, 24);
    // gen 2 was sealed torn at its first append; gen 3 took over at FSN 5.
    let p = run(&[
        (name(1), seg(0, 5)),
        (name(2), torn_empty),
        (name(3), seg(5, 1)),
    ])
    .unwrap();
    assert_eq!(bases(&p), vec![(Some(1), 0, 5), (Some(3), 5, 1)]);
    assert!(p.slot.leftover_spares.is_empty());
    assert_eq!(
        p.warnings,
        vec![RecoveryWarning::TornEmptySegmentIgnored {
            name: name(2),
            bytes: 14
        }]
    );
}

#[test]
fn regression_item13_all_acked_slot_continues_at_the_spare_base() {
    // DESIGN §6 item 13 and the S5 reclaim: every frame was acknowledged,
    // the only segment left is the fresh spare installed at FSN 500.
    let p = run(&[(name(8), seg(500, 0)), (name(9), vec![0u8; SIZE])]).unwrap();
    assert_eq!(p.slot.next_fsn, Fsn(500));
    assert_eq!(p.slot.acked, Some(Fsn(499)));
    assert_eq!(bases(&p), vec![(Some(8), 500, 0)]);
    assert_eq!(p.slot.leftover_spares.len(), 1);
}

#[test]
fn regression_item13_highest_base_among_empty_segments_wins() {
    let p = run(&[(name(1), seg(300, 0)), (name(2), seg(500, 0))]).unwrap();
    assert_eq!(p.slot.next_fsn, Fsn(500));
    assert_eq!(bases(&p), vec![(Some(2), 500, 0)]);
    assert_eq!(p.slot.leftover_spares[0].gen, SegmentGen(1));
}

#[test]
fn regression_item13_sealed_segments_alone_still_continue() {
    // The active segment is gone (reclaimed); two sealed ones survive.
    let p = run(&[(name(4), seg(100, 3)), (name(3), seg(97, 3))]).unwrap();
    assert_eq!(p.slot.next_fsn, Fsn(103));
    assert_eq!(p.slot.acked, Some(Fsn(96)));
}

#[test]
fn legacy_initial_segment_is_recovered_without_a_generation() {
    let p = run(&[
        (LEGACY_INITIAL_SEGMENT.into(), seg(0, 2)),
        (name(0), seg(2, 0)),
    ])
    .unwrap();
    assert_eq!(bases(&p), vec![(None, 0, 2), (Some(0), 2, 0)]);
    assert_eq!(p.slot.segments[0].file_name(), LEGACY_INITIAL_SEGMENT);
    assert_eq!(p.slot.next_gen, SegmentGen(1));
    let only = run(&[(LEGACY_INITIAL_SEGMENT.into(), seg(0, 2))]).unwrap();
    assert_eq!(only.slot.next_gen, SegmentGen(0));
    assert_eq!(only.slot.next_fsn, Fsn(2));
}

#[test]
fn blank_legacy_file_is_ignored_with_a_warning() {
    let p = run(&[(LEGACY_INITIAL_SEGMENT.into(), vec![0u8; 64])]).unwrap();
    assert!(p.slot.leftover_spares.is_empty());
    assert_eq!(
        p.warnings,
        vec![RecoveryWarning::LegacyEmptyIgnored {
            name: LEGACY_INITIAL_SEGMENT.into()
        }]
    );
}

#[test]
fn generation_exhaustion_refuses() {
    let err = run(&[(name(u64::MAX), vec![0u8; 64])]).unwrap_err();
    assert_eq!(err, RecoveryError::GenerationExhausted);
}

fn wm(fsn: u64) -> WatermarkRead {
    WatermarkRead::Bytes(encode_watermark(Fsn(fsn)).unwrap().to_vec())
}

#[test]
fn s8_acked_is_lowest_base_minus_one_without_watermark() {
    let p = run(&[(name(1), seg(10, 5))]).unwrap();
    assert_eq!(p.slot.acked, Some(Fsn(9)));
    let p = run(&[(name(1), seg(0, 5))]).unwrap();
    assert_eq!(p.slot.acked, None);
}

#[test]
fn s8_watermark_inside_the_log_raises_acked() {
    let files = vec![(name(1), seg(10, 5)), (name(2), seg(15, 2))];
    let p = run_with(&files, wm(12)).unwrap();
    assert_eq!(p.slot.acked, Some(Fsn(12)));
    // The published FSN itself is a legal watermark.
    let p = run_with(&files, wm(16)).unwrap();
    assert_eq!(p.slot.acked, Some(Fsn(16)));
    assert!(p.warnings.is_empty());
}

#[test]
fn s8_stale_watermark_below_lowest_base_loses_to_it() {
    let p = run_with(&[(name(1), seg(10, 5))], wm(3)).unwrap();
    assert_eq!(p.slot.acked, Some(Fsn(9)));
    assert!(p.warnings.is_empty());
}

#[test]
fn s8_watermark_above_published_is_ignored_as_corrupt() {
    let p = run_with(&[(name(1), seg(10, 5))], wm(15)).unwrap();
    assert_eq!(p.slot.acked, Some(Fsn(9)));
    assert_eq!(
        p.warnings,
        vec![RecoveryWarning::WatermarkAboveLog {
            watermark: Fsn(15),
            published: Some(Fsn(14))
        }]
    );
    let empty = run_with(&[], wm(0)).unwrap();
    assert_eq!(empty.slot.acked, None);
    assert_eq!(
        empty.warnings,
        vec![RecoveryWarning::WatermarkAboveLog {
            watermark: Fsn(0),
            published: None
        }]
    );
}

#[test]
fn s8_unusable_watermark_falls_back_with_a_reason() {
    let files = vec![(name(1), seg(10, 5))];
    let p = run_with(&files, WatermarkRead::Bytes(vec![0u8; 16])).unwrap();
    assert_eq!(p.slot.acked, Some(Fsn(9)));
    assert!(
        p.warnings.is_empty(),
        "an unstamped file is the normal case"
    );
    let p = run_with(&files, WatermarkRead::Bytes(vec![1u8; 7])).unwrap();
    assert_eq!(
        p.warnings,
        vec![RecoveryWarning::WatermarkUnusable {
            reason: WatermarkError::WrongSize { len: 7 }
        }]
    );
    let p = run_with(&files, WatermarkRead::Failed("EACCES".into())).unwrap();
    assert_eq!(p.slot.acked, Some(Fsn(9)));
    assert_eq!(
        p.warnings,
        vec![RecoveryWarning::WatermarkUnreadable {
            reason: "EACCES".into()
        }]
    );
}

#[test]
fn plan_reads_asks_for_the_watermark_only_when_listed() {
    let rp = plan_reads(Ok(vec![ListingEntry::new(name(0), 64)])).unwrap();
    assert!(!rp.reads_watermark());
    let rp = plan_reads(Ok(vec![
        ListingEntry::new(".ack-watermark", 16),
        ListingEntry::new(name(0), 64),
    ]))
    .unwrap();
    assert!(rp.reads_watermark());
    assert_eq!(rp.segment_files().len(), 1);
}

#[test]
fn refusals_and_warnings_name_the_file_in_their_message() {
    let w = RecoveryWarning::TornTail {
        name: name(1),
        bytes: 14,
        active: true,
    };
    assert_eq!(
        w.to_string(),
        "segment sf-0000000000000001.sfa (active) has a torn tail of 14 bytes"
    );
    let e = RecoveryError::Gap {
        prev: name(1),
        prev_end: Fsn(3),
        next: name(2),
        next_base: Fsn(4),
    };
    assert_eq!(
        e.to_string(),
        "FSN gap: sf-0000000000000001.sfa ends before FSN 3, but sf-0000000000000002.sfa starts at FSN 4"
    );
}
