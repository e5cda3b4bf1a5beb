//! Scans arbitrary bytes as a segment image: must never panic, and every
//! frame it reports verified must read back through `read_frame`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_core::segment::{read_frame, scan_segment, ScanOutcome};

fuzz_target!(|data: &[u8]| {
    if let Ok(ScanOutcome::Segment(scan)) = scan_segment(data) {
        for frame in scan.frames() {
            let payload = read_frame(data, frame.offset).expect("verified frame reads back");
            assert_eq!(payload.len() as u64, frame.payload_len);
        }
    }
});
