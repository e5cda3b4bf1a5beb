//! DESIGN §6 item 10: ordering segments at open was quadratic, so 16K
//! segments took seconds. We never assert wall time; we count the planner's
//! `baseSeq` comparisons on a shuffled directory and require them to stay
//! within a small multiple of n·log₂n (a quadratic sort needs ~n²/4, i.e.
//! about 67 million here, against a bound under one million).

use sf_core::recovery::{plan, plan_reads, ListingEntry, SegmentRead, WatermarkRead};
use sf_core::segment::{write_frame, SegmentHeader, SEGMENT_HEADER_LEN};
use sf_core::{Fsn, SegmentGen};

const SEGMENTS: u64 = 16_384;
const FRAMES_PER_SEGMENT: u64 = 2;

fn image(base: u64) -> Vec<u8> {
    let mut img = vec![0u8; 80];
    img[..SEGMENT_HEADER_LEN].copy_from_slice(&SegmentHeader::new(Fsn(base), 0).unwrap().encode());
    let mut at = SEGMENT_HEADER_LEN;
    for _ in 0..FRAMES_PER_SEGMENT {
        at = write_frame(&mut img, at, b"QWP1\x01\x0c\0\0\0\0\0\0").unwrap();
    }
    img
}

/// A deterministic Fisher–Yates shuffle driven by a fixed xorshift seed.
fn shuffle<T>(v: &mut [T]) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

#[test]
fn regression_item10_opening_16384_segments_is_a_sort_not_quadratic() {
    // Generation i holds FSNs [i*2, i*2+2); listed in shuffled order.
    let mut gens: Vec<u64> = (0..SEGMENTS).collect();
    shuffle(&mut gens);
    let listing = gens
        .iter()
        .map(|&g| ListingEntry::new(SegmentGen(g).file_name(), 80))
        .collect();
    let rp = plan_reads(Ok(listing)).unwrap();
    let reads = rp
        .segment_files()
        .iter()
        .map(|f| {
            let gen = f.gen.unwrap().get();
            SegmentRead::from_image(&image(gen * FRAMES_PER_SEGMENT))
        })
        .collect();
    let p = plan(rp, reads, WatermarkRead::Absent).unwrap();

    assert_eq!(p.slot.segments.len() as u64, SEGMENTS);
    assert_eq!(p.slot.next_fsn, Fsn(SEGMENTS * FRAMES_PER_SEGMENT));
    assert_eq!(p.slot.next_gen, SegmentGen(SEGMENTS));
    for (i, s) in p.slot.segments.iter().enumerate() {
        assert_eq!(s.base_fsn, Fsn(i as u64 * FRAMES_PER_SEGMENT));
    }
    let n = SEGMENTS;
    let log2n = 64 - u64::from(n.leading_zeros()) - 1;
    let bound = 4 * n * log2n;
    assert!(
        p.stats.sort_comparisons <= bound,
        "{} baseSeq comparisons for {n} segments (bound {bound}): ordering is not O(n log n)",
        p.stats.sort_comparisons
    );
    assert!(
        p.stats.sort_comparisons >= n - 1,
        "the log was not sorted at all"
    );
}
