//! `RecoveryError::is_transient`: which recovery refusals an orphan drainer
//! may retry (no `.failed`) and which give the slot up (sf-client §5.2,
//! §18.2).

use sf_core::recovery::RecoveryError;
use sf_core::segment::{FrameReadError, HeaderError};
use sf_core::Fsn;

fn fsn(n: u64) -> Fsn {
    Fsn::ZERO.plus(n)
}

#[test]
fn s18_2_io_refusals_are_transient() {
    let transient = [
        RecoveryError::Listing {
            reason: "EMFILE".into(),
        },
        RecoveryError::SizeUnreadable {
            name: "sf-0000000000000001.sfa".into(),
            reason: "EACCES".into(),
        },
        RecoveryError::ReadFailed {
            name: "sf-0000000000000001.sfa".into(),
            reason: "EIO".into(),
        },
        RecoveryError::ReadCountMismatch {
            expected: 2,
            got: 1,
        },
        RecoveryError::SizeMismatch {
            name: "sf-0000000000000001.sfa".into(),
            listed: 4096,
            read: 100,
        },
    ];
    for e in transient {
        assert!(e.is_transient(), "{e}");
    }
}

#[test]
fn s5_2_refusals_about_the_bytes_are_permanent() {
    let name = || "sf-0000000000000001.sfa".to_string();
    let permanent = [
        RecoveryError::HeaderNotUnderstood {
            name: name(),
            source: HeaderError::NonZeroFlags { flags: 1 },
        },
        RecoveryError::HeaderlessData {
            name: name(),
            first_nonzero: 30,
        },
        RecoveryError::Corrupt {
            name: name(),
            bad_frame_offset: 24,
            reason: FrameReadError::NegativeLength {
                offset: 24,
                len: -1,
            },
            evidence_offset: 64,
        },
        RecoveryError::Gap {
            prev: name(),
            prev_end: fsn(10),
            next: "sf-0000000000000002.sfa".into(),
            next_base: fsn(12),
        },
        RecoveryError::Overlap {
            prev: name(),
            prev_end: fsn(10),
            next: "sf-0000000000000002.sfa".into(),
            next_base: fsn(8),
        },
        RecoveryError::FsnOverflow { name: name() },
        RecoveryError::GenerationExhausted,
        RecoveryError::NotAFile {
            name: name(),
            kind: sf_core::recovery::NonFileKind::Directory,
        },
    ];
    for e in permanent {
        assert!(!e.is_transient(), "{e}");
    }
}
