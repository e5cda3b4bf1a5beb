//! Spares are pre-faulted off the producer's path (DESIGN §7): after
//! `create_spare` every page of the mapping is resident, so the producer's
//! first store to a fresh segment does not fault the page in.
//!
//! Alone in its own test binary because it reads this process's resident
//! file-backed memory, which other tests running in parallel would move.

use sf_core::SegmentGen;
use sf_io_tokio::fs::{SegmentBuffer, SegmentFile};

/// `RssFile` of this process in KiB (Linux).
fn rss_file_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("RssFile:"))
        .expect("RssFile in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
#[cfg(target_os = "linux")]
fn spare_is_resident_before_the_producer_touches_it() {
    const SIZE: u64 = 16 << 20;
    let dir = tempfile::tempdir().unwrap();

    // Control: a plain create maps the file without populating it.
    let before = rss_file_kib();
    let cold = SegmentFile::create(dir.path(), SegmentGen(0), SIZE).unwrap();
    let cold_growth = rss_file_kib().saturating_sub(before);
    assert!(
        cold_growth < (SIZE >> 10) / 2,
        "an unpopulated mapping already counts {cold_growth} KiB resident"
    );
    drop(cold);

    let before = rss_file_kib();
    let spare = SegmentFile::create_spare(dir.path(), SegmentGen(1), SIZE).unwrap();
    let growth = rss_file_kib().saturating_sub(before);
    assert!(
        growth >= SIZE >> 10,
        "pre-fault made only {growth} KiB of {} KiB resident",
        SIZE >> 10
    );
    assert!(
        spare.image().iter().all(|&b| b == 0),
        "pre-fault changed bytes"
    );
}
