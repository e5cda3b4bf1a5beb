//! Property tests of the segment scan (S2): frames written with the codec,
//! then damaged by truncation, bit flips and zeroed ranges.
//!
//! Reference rule the scan must match (every payload starts with `QWP1`, as
//! QWP messages do):
//! - the scan verifies exactly the longest prefix of written frames whose
//!   bytes are unchanged, and each verified frame is byte-identical to what
//!   was written;
//! - the tail is **Corrupt** iff some written frame that starts after
//!   `last_good` is still byte-identical; its evidence is such a frame;
//! - otherwise it is **Clean** iff every byte after `last_good` is zero, and
//!   **Torn** with `bytes` = distance to the last non-zero byte + 1.
//!
//! (A damaged frame that still passes CRC32C would break the rule; the odds
//! are 2⁻³² per damaged frame.)

use proptest::prelude::*;
use sf_core::segment::{
    read_frame, scan_segment, write_frame, HeaderError, ScanError, ScanOutcome, SegmentHeader,
    TailState, SEGMENT_HEADER_LEN,
};
use sf_core::Fsn;

#[derive(Debug, Clone)]
enum Damage {
    /// XOR a non-zero mask into one byte.
    Flip { at: usize, mask: u8 },
    /// Zero a range (a lost sector, an unwritten page).
    Zero { at: usize, len: usize },
    /// Cut the image short.
    Truncate { at: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        (any::<usize>(), 1usize..600).prop_map(|(at, len)| Damage::Zero { at, len }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
    ]
}

fn payloads() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(
        prop::collection::vec(any::<u8>(), 0..120).prop_map(|body| {
            let mut p = b"QWP1".to_vec();
            p.extend(body);
            p
        }),
        0..12,
    )
}

struct Written {
    image: Vec<u8>,
    offsets: Vec<usize>,
    payloads: Vec<Vec<u8>>,
}

fn write_segment(base: u64, payloads: Vec<Vec<u8>>, slack: usize) -> Written {
    let size = SEGMENT_HEADER_LEN + payloads.iter().map(|p| p.len() + 8).sum::<usize>() + slack;
    let mut image = vec![0u8; size];
    image[..SEGMENT_HEADER_LEN]
        .copy_from_slice(&SegmentHeader::new(Fsn(base), 1).unwrap().encode());
    let mut offsets = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    for p in &payloads {
        offsets.push(at);
        at = write_frame(&mut image, at, p).unwrap();
    }
    Written {
        image,
        offsets,
        payloads,
    }
}

fn apply(image: &mut Vec<u8>, d: &Damage) {
    if image.is_empty() {
        return;
    }
    match *d {
        Damage::Flip { at, mask } => {
            let i = at % image.len();
            image[i] ^= mask;
        }
        Damage::Zero { at, len } => {
            let i = at % image.len();
            let end = (i + len).min(image.len());
            image[i..end].fill(0);
        }
        Damage::Truncate { at } => {
            let keep = at % (image.len() + 1);
            image.truncate(keep);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn s2_scan_matches_reference_rule(
        base in 0u64..=(i64::MAX as u64),
        payloads in payloads(),
        slack in 0usize..200,
        damages in prop::collection::vec(damage(), 0..4),
        // Keep the header intact in most cases so the frame rules get exercised.
        spare_header in any::<bool>(),
    ) {
        let w = write_segment(base, payloads, slack);
        let mut image = w.image.clone();
        for d in &damages {
            apply(&mut image, d);
            if spare_header && image.len() >= SEGMENT_HEADER_LEN {
                image[..SEGMENT_HEADER_LEN].copy_from_slice(&w.image[..SEGMENT_HEADER_LEN]);
            }
        }
        let scan = match scan_segment(&image) {
            Ok(ScanOutcome::Segment(s)) => s,
            Ok(ScanOutcome::Blank { image_len }) => {
                prop_assert!(image.iter().all(|&b| b == 0));
                prop_assert_eq!(image_len, image.len() as u64);
                return Ok(());
            }
            Err(ScanError::Header(HeaderError::TooShort { len })) => {
                prop_assert!(image.len() < SEGMENT_HEADER_LEN);
                prop_assert_eq!(len, image.len() as u64);
                return Ok(());
            }
            Err(_) => {
                prop_assert!(image[..SEGMENT_HEADER_LEN] != w.image[..SEGMENT_HEADER_LEN]);
                return Ok(());
            }
        };
        let header_intact = image[..SEGMENT_HEADER_LEN] == w.image[..SEGMENT_HEADER_LEN];
        if header_intact {
            prop_assert_eq!(scan.header.base_fsn(), Fsn(base));
        }
        let base = scan.header.base_fsn().get();

        let intact: Vec<bool> = w
            .offsets
            .iter()
            .zip(&w.payloads)
            .map(|(&o, p)| {
                let end = o + 8 + p.len();
                end <= image.len() && image[o..end] == w.image[o..end]
            })
            .collect();
        let prefix = intact.iter().take_while(|&&ok| ok).count();
        prop_assert_eq!(scan.frame_offsets.len(), prefix);
        for (i, f) in scan.frames().enumerate() {
            prop_assert_eq!(f.offset, w.offsets[i] as u64);
            prop_assert_eq!(f.fsn, Fsn(base + i as u64));
            prop_assert_eq!(f.payload_len, w.payloads[i].len() as u64);
            prop_assert_eq!(read_frame(&image, f.offset).unwrap(), &w.payloads[i][..]);
        }

        let lg = scan.last_good;
        let surviving_after: Vec<u64> = w
            .offsets
            .iter()
            .zip(&intact)
            .filter(|(&o, &ok)| ok && o as u64 > lg)
            .map(|(&o, _)| o as u64)
            .collect();
        let last_nonzero = image.iter().rposition(|&b| b != 0).filter(|&i| i as u64 >= lg);
        match &scan.tail {
            TailState::Corrupt { bad_frame_offset, evidence_offset, .. } => {
                prop_assert_eq!(*bad_frame_offset, lg);
                prop_assert!(surviving_after.contains(evidence_offset),
                    "evidence {} not an intact frame after {}", evidence_offset, lg);
            }
            TailState::Torn { bytes, .. } => {
                prop_assert!(surviving_after.is_empty(), "torn but frames survive at {:?}", surviving_after);
                prop_assert_eq!(Some(lg + bytes - 1), last_nonzero.map(|i| i as u64));
            }
            TailState::Clean => {
                prop_assert!(surviving_after.is_empty());
                prop_assert_eq!(last_nonzero, None);
            }
        }
    }

    #[test]
    fn s2_scan_of_arbitrary_bytes_never_panics(
        base in any::<u64>(),
        body in prop::collection::vec(
            prop_oneof![Just(0u8), Just(0x51), Just(0x57), Just(0x50), Just(0x31), any::<u8>()],
            0..400,
        ),
    ) {
        let mut image = vec![0u8; SEGMENT_HEADER_LEN];
        image[..4].copy_from_slice(&0x3130_4653u32.to_le_bytes());
        image[4] = 1;
        image[8..16].copy_from_slice(&base.to_le_bytes());
        image.extend(body);
        if let Ok(ScanOutcome::Segment(s)) = scan_segment(&image) {
            prop_assert!(s.last_good <= image.len() as u64);
            for f in s.frames() {
                prop_assert!(read_frame(&image, f.offset).is_ok());
            }
            if let TailState::Corrupt { evidence_offset, .. } = s.tail {
                prop_assert!(evidence_offset > s.last_good);
                prop_assert!(read_frame(&image, evidence_offset).is_ok());
            }
        } else {
            prop_assert!(base > i64::MAX as u64);
        }
    }
}
