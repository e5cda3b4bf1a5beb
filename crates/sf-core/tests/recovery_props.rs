//! Property tests of the recovery planner: any contiguous log, listed in any
//! order and mixed with spares, is rebuilt exactly (S1, S8); arbitrary file
//! contents never make the planner panic.

use proptest::prelude::*;
use sf_core::recovery::{plan, plan_reads, ListingEntry, RecoveryPlan, SegmentRead, WatermarkRead};
use sf_core::segment::{write_frame, SegmentHeader, SEGMENT_HEADER_LEN};
use sf_core::watermark::encode_watermark;
use sf_core::{Fsn, SegmentGen};

const SIZE: usize = 160;

fn image(base: u64, frames: usize) -> Vec<u8> {
    let mut img = vec![0u8; SIZE];
    img[..SEGMENT_HEADER_LEN].copy_from_slice(&SegmentHeader::new(Fsn(base), 0).unwrap().encode());
    let mut at = SEGMENT_HEADER_LEN;
    for i in 0..frames {
        at = write_frame(&mut img, at, &[b'Q', b'W', b'P', b'1', i as u8]).unwrap();
    }
    img
}

fn run(files: Vec<(String, Vec<u8>)>, wm: WatermarkRead) -> RecoveryPlan {
    let listing = files
        .iter()
        .map(|(n, i)| ListingEntry::new(n.clone(), i.len() as u64))
        .collect();
    let rp = plan_reads(Ok(listing)).unwrap();
    let reads = rp
        .segment_files()
        .iter()
        .map(|f| {
            let img = &files.iter().find(|(n, _)| *n == f.name).unwrap().1;
            SegmentRead::from_image(img)
        })
        .collect();
    plan(rp, reads, wm).unwrap()
}

proptest! {
    #[test]
    fn s1_s8_any_contiguous_log_in_any_listing_order_is_rebuilt(
        first in 0u64..1_000_000,
        counts in prop::collection::vec(1usize..5, 0..10),
        active_empty in any::<bool>(),
        blank_spares in 0usize..3,
        order_seed in any::<u64>(),
        // Relative to the first FSN, so it lands below, inside and just past the log.
        watermark_delta in prop::option::of(-3i64..40),
    ) {
        // Generations in FSN order, with the spares after them.
        let mut files = Vec::new();
        let mut base = first;
        let mut gen = 0u64;
        for &c in &counts {
            files.push((SegmentGen(gen).file_name(), image(base, c)));
            base += c as u64;
            gen += 1;
        }
        let end = base;
        if active_empty || counts.is_empty() {
            files.push((SegmentGen(gen).file_name(), image(end, 0)));
            gen += 1;
        }
        for _ in 0..blank_spares {
            files.push((SegmentGen(gen).file_name(), vec![0u8; SIZE]));
            gen += 1;
        }
        // Deterministic shuffle of the listing.
        let mut x = order_seed | 1;
        for i in (1..files.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            files.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let watermark = watermark_delta.map(|d| first.saturating_add_signed(d));
        let wm = match watermark {
            Some(w) => WatermarkRead::Bytes(encode_watermark(Fsn(w)).unwrap().to_vec()),
            None => WatermarkRead::Absent,
        };
        let p = run(files, wm);

        prop_assert_eq!(p.slot.next_fsn, Fsn(end));
        prop_assert_eq!(p.slot.next_gen, SegmentGen(gen));
        prop_assert_eq!(p.slot.leftover_spares.len(), blank_spares);
        let got: Vec<u64> = p.slot.segments.iter().map(|s| s.frame_count()).collect();
        let mut want: Vec<u64> = counts.iter().map(|&c| c as u64).collect();
        if active_empty || counts.is_empty() {
            want.push(0);
        }
        prop_assert_eq!(got, want);
        let mut next = first;
        for s in &p.slot.segments {
            prop_assert_eq!(s.base_fsn, Fsn(next));
            next += s.frame_count();
        }
        let seed = first.checked_sub(1);
        let published = end.checked_sub(1);
        let expected = match watermark {
            Some(w) if published.is_some_and(|p| w <= p) => seed.max(Some(w)),
            _ => seed,
        };
        prop_assert_eq!(p.slot.acked, expected.map(Fsn));
        if let Some(a) = p.slot.acked {
            prop_assert!(a < p.slot.next_fsn, "S8: acked beyond every recovered frame");
        }
    }

    #[test]
    fn planner_never_panics_on_arbitrary_files(
        files in prop::collection::vec(
            (0u64..6, prop::collection::vec(
                prop_oneof![Just(0u8), Just(1u8), Just(0x46), Just(0x53), Just(0x30), Just(0x31), any::<u8>()],
                0..80,
            )),
            0..6,
        ),
        wm in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let mut named: Vec<(String, Vec<u8>)> = Vec::new();
        for (g, mut img) in files {
            // Half the files get a plausible header so deeper rules run.
            if g % 2 == 0 && img.len() >= SEGMENT_HEADER_LEN {
                let header = SegmentHeader::new(Fsn(u64::from(img[9])), 0).unwrap();
                img[..SEGMENT_HEADER_LEN].copy_from_slice(&header.encode());
            }
            let name = SegmentGen(g).file_name();
            if !named.iter().any(|(n, _)| *n == name) {
                named.push((name, img));
            }
        }
        let listing = named
            .iter()
            .map(|(n, i)| ListingEntry::new(n.clone(), i.len() as u64))
            .collect();
        let rp = plan_reads(Ok(listing)).unwrap();
        let reads = named.iter().map(|(_, i)| SegmentRead::from_image(i)).collect();
        if let Ok(p) = plan(rp, reads, WatermarkRead::Bytes(wm)) {
            if let Some(a) = p.slot.acked {
                prop_assert!(a < p.slot.next_fsn);
            }
            let mut next = p.slot.segments.first().map(|s| s.base_fsn);
            for s in &p.slot.segments {
                prop_assert_eq!(Some(s.base_fsn), next);
                next = Some(s.base_fsn.plus(s.frame_count()));
            }
            prop_assert_eq!(next.unwrap_or(Fsn::ZERO), p.slot.next_fsn);
        }
    }
}
