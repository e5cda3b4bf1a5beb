//! Target `segment_scan`: a segment image of arbitrary bytes through
//! [`scan_segment`].
//!
//! Properties (S2): every frame the scan reports verified reads back through
//! [`read_frame`]; frames start right after the header and are contiguous;
//! `last_good` is the end of the last verified frame and no frame verifies
//! there; the tail classification agrees with the bytes (clean = all zero,
//! torn = ends at the last non-zero byte, corrupt = names a later frame that
//! verifies). A blank image is all zero; headerless data names a non-zero
//! byte behind a zero header.

use sf_core::segment::{
    read_frame, scan_segment, ScanError, ScanOutcome, SegmentScan, TailState, FRAME_HEADER_LEN,
    SEGMENT_HEADER_LEN,
};

use crate::Outcome;

/// Runs the body on `data`.
pub fn run(data: &[u8]) -> Outcome {
    match scan_segment(data) {
        Ok(ScanOutcome::Blank { image_len }) => {
            assert_eq!(image_len, data.len() as u64, "scan: blank image_len");
            assert!(
                data.iter().all(|&b| b == 0),
                "scan: a blank image holds a non-zero byte"
            );
            "blank"
        }
        Ok(ScanOutcome::Segment(scan)) => check_scan(data, &scan),
        Err(ScanError::HeaderlessData { first_nonzero }) => {
            let at = usize::try_from(first_nonzero).ok();
            assert!(
                data.get(..SEGMENT_HEADER_LEN)
                    .is_some_and(|h| h.iter().all(|&b| b == 0)),
                "scan: headerless data reported behind a non-zero header"
            );
            assert!(
                at.and_then(|i| data.get(SEGMENT_HEADER_LEN..=i))
                    .is_some_and(|s| s
                        .split_last()
                        .is_some_and(|(l, r)| *l != 0 && r.iter().all(|&b| b == 0))),
                "scan: first_nonzero {first_nonzero} is not the first non-zero body byte"
            );
            "headerless"
        }
        Err(ScanError::Header(e)) => {
            let _ = e.to_string();
            "header_error"
        }
    }
}

/// Checks a scan of `data` against the bytes (S2).
fn check_scan(data: &[u8], scan: &SegmentScan) -> Outcome {
    assert_eq!(scan.image_len, data.len() as u64, "scan: image_len");
    let mut expected = SEGMENT_HEADER_LEN as u64;
    for (i, frame) in scan.frames().enumerate() {
        assert_eq!(
            frame.offset, expected,
            "S2: verified frame {i} is not contiguous with the one before"
        );
        let payload = read_frame(data, frame.offset)
            .unwrap_or_else(|e| panic!("S2: frame {i} reported verified does not read back: {e}"));
        assert_eq!(
            payload.len() as u64,
            frame.payload_len,
            "scan: payload length of frame {i}"
        );
        assert_eq!(
            frame.fsn,
            scan.header.base_fsn().plus(i as u64),
            "scan: FSN of frame {i}"
        );
        expected = frame.offset + (FRAME_HEADER_LEN + payload.len()) as u64;
    }
    assert_eq!(
        scan.last_good, expected,
        "S2: last_good is not the end of the last verified frame"
    );
    assert!(scan.last_good <= scan.image_len, "scan: last_good past end");
    assert!(
        read_frame(data, scan.last_good).is_err(),
        "S2: a valid frame at last_good was not taken"
    );
    let start = usize::try_from(scan.last_good).unwrap_or(usize::MAX);
    let rest = data.get(start..).unwrap_or(&[]);
    match &scan.tail {
        TailState::Clean => {
            assert!(
                rest.iter().all(|&b| b == 0),
                "S2: clean tail holds non-zero bytes"
            );
            "segment/clean"
        }
        TailState::Torn { bytes, .. } => {
            let last = rest.iter().rposition(|&b| b != 0).map(|i| i as u64 + 1);
            assert_eq!(
                last,
                Some(*bytes),
                "S2: torn tail length is not the span to the last non-zero byte"
            );
            "segment/torn"
        }
        TailState::Corrupt {
            bad_frame_offset,
            evidence_offset,
            ..
        } => {
            assert_eq!(*bad_frame_offset, scan.last_good, "S2: bad frame offset");
            assert!(
                evidence_offset > bad_frame_offset,
                "S2: corruption evidence before the bad frame"
            );
            assert!(
                read_frame(data, *evidence_offset).is_ok(),
                "S2: corruption evidence at {evidence_offset} does not verify"
            );
            "segment/corrupt"
        }
    }
}
