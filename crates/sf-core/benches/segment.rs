//! Segment codec costs: appending a 512-byte frame into a warm buffer
//! (memcpy + CRC32C, DESIGN §7 budget ~60 ns) and scanning a full 4 MiB
//! segment of 512-byte frames (the per-segment cost of recovery), and the
//! worst crafted tail for the corruption-evidence search: a bad first frame
//! followed by a QWP1 anchor every 8 bytes, each claiming a 1 MiB frame.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sf_core::segment::{scan_segment, write_frame, SegmentHeader, SEGMENT_HEADER_LEN};
use sf_core::Fsn;

const SEGMENT: usize = 4 << 20;

fn payload() -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend((0..508u32).map(|i| (i * 31) as u8));
    p
}

fn write(c: &mut Criterion) {
    let p = payload();
    // Warm: every page touched before measuring, as a pre-faulted spare is.
    let mut buf = vec![1u8; SEGMENT];
    let mut at = SEGMENT_HEADER_LEN;
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Bytes(p.len() as u64));
    g.bench_function("write_frame_512", |b| {
        b.iter(|| {
            at = match write_frame(&mut buf, at, black_box(&p)) {
                Ok(end) => end,
                Err(_) => SEGMENT_HEADER_LEN,
            };
            black_box(at)
        })
    });
    g.finish();
}

fn scan(c: &mut Criterion) {
    let p = payload();
    let mut img = vec![0u8; SEGMENT];
    img[..SEGMENT_HEADER_LEN].copy_from_slice(&SegmentHeader::new(Fsn(0), 0).unwrap().encode());
    let mut at = SEGMENT_HEADER_LEN;
    while let Ok(end) = write_frame(&mut img, at, &p) {
        at = end;
    }
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Bytes(SEGMENT as u64));
    g.bench_function("scan_4mib_512b_frames", |b| {
        b.iter(|| black_box(scan_segment(black_box(&img))))
    });
    g.finish();
}

fn scan_decoys(c: &mut Criterion) {
    let mut img = vec![0u8; SEGMENT];
    img[..SEGMENT_HEADER_LEN].copy_from_slice(&SegmentHeader::new(Fsn(0), 0).unwrap().encode());
    // Period 8: `QWP1` then a length. Every `QWP1` is both a candidate's
    // CRC field and the previous candidate's anchor.
    let mut p = SEGMENT_HEADER_LEN;
    while p + 8 <= SEGMENT {
        img[p..p + 4].copy_from_slice(b"QWP1");
        img[p + 4..p + 8].copy_from_slice(&(1i32 << 20).to_le_bytes());
        p += 8;
    }
    let mut g = c.benchmark_group("segment");
    g.throughput(Throughput::Bytes(SEGMENT as u64));
    g.sample_size(10);
    g.bench_function("scan_4mib_decoy_anchors", |b| {
        b.iter(|| black_box(scan_segment(black_box(&img))))
    });
    g.finish();
}

criterion_group!(benches, write, scan, scan_decoys);
criterion_main!(benches);
