//! Reproducer for the cost of the segment scan's corruption-evidence search
//! on a crafted image (not a test: it measures time, and tests never do).
//!
//! The image is a valid header, then 8-byte units `[len i32][QWP1]` to the
//! end. The first frame fails (its CRC is the previous unit's `QWP1`), so the
//! scan looks for evidence at every QWP1 anchor; every candidate's length
//! fits, so each costs a CRC over `len` bytes: (size / 8) × len bytes of CRC,
//! quadratic in the image size.
//!
//! `cargo run --release -p qwp-sf-fuzz --example scan_evidence_cost`

use sf_core::segment::{scan_segment, ScanOutcome};

fn main() {
    for (size, len) in [
        (256usize << 10, 64u32 << 10),
        (1 << 20, 256 << 10),
        (4 << 20, 1 << 20),
    ] {
        let mut img = qwp_sf_fuzz::seeds::segment_image(0, &[], &[], 0);
        while img.len() < size {
            img.extend_from_slice(&len.to_le_bytes());
            img.extend_from_slice(b"QWP1");
        }
        let start = std::time::Instant::now();
        let outcome = match scan_segment(&img) {
            Ok(ScanOutcome::Segment(s)) => format!("{:?}", s.tail).chars().take(40).collect(),
            other => format!("{other:?}"),
        };
        println!(
            "image {} KiB, candidate length {} KiB: {:?} ({outcome}…)",
            size >> 10,
            len >> 10,
            start.elapsed()
        );
    }
}
