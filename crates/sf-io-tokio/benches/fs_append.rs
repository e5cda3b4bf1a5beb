//! Filling a 4 MiB mapped segment with 512-byte frames, the producer's side
//! of the file layer (DESIGN §7): into a pre-faulted spare versus into a
//! segment that was only created (every page faulted in by the producer),
//! plus the background cost of creating a spare and of one small sync.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sf_core::segment::SegmentHeader;
use sf_core::{Fsn, SegmentGen};
use sf_io_tokio::fs::{SegmentBuffer, SegmentFile};

const SEGMENT: u64 = 4 << 20;

fn payload() -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend((0..508u32).map(|i| (i * 31) as u8));
    p
}

/// Writes frames until the segment is full; returns how many.
fn fill(seg: &mut SegmentFile, p: &[u8]) -> u64 {
    seg.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap())
        .unwrap();
    let mut at = 24;
    let mut n = 0;
    while let Ok(end) = seg.write_frame(at, black_box(p)) {
        at = end;
        n += 1;
    }
    n
}

fn append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let p = payload();
    let frames = (SEGMENT - 24) / (8 + p.len() as u64);
    let mut gen = 0u64;
    let mut next = move || {
        gen += 1;
        SegmentGen(gen)
    };
    let mut g = c.benchmark_group("fs_append");
    g.sample_size(20);
    g.throughput(Throughput::Elements(frames));
    for (name, prefault) in [("fill_4MiB_prefaulted", true), ("fill_4MiB_cold", false)] {
        g.bench_function(name, |b| {
            // Only the fill is timed; creating and unlinking each segment
            // happens outside the clock, and unlinking keeps the disk use to
            // one segment however many iterations criterion asks for.
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let gen = next();
                    let mut seg = if prefault {
                        SegmentFile::create_spare(dir.path(), gen, SEGMENT).unwrap()
                    } else {
                        SegmentFile::create(dir.path(), gen, SEGMENT).unwrap()
                    };
                    let started = Instant::now();
                    black_box(fill(&mut seg, &p));
                    total += started.elapsed();
                    seg.unlink().unwrap();
                }
                total
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("fs_background");
    g.sample_size(20);
    g.bench_function("create_spare_4MiB", |b| {
        b.iter_batched(
            &mut next,
            |gen| {
                SegmentFile::create_spare(dir.path(), gen, SEGMENT)
                    .unwrap()
                    .unlink()
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    let mut seg = SegmentFile::create_spare(dir.path(), next(), SEGMENT).unwrap();
    seg.write_header(&SegmentHeader::new(Fsn(0), 0).unwrap())
        .unwrap();
    let mut at = 24;
    seg.sync_range(0, 24).unwrap();
    g.bench_function("append_512_and_sync", |b| {
        b.iter(|| {
            let start = at;
            at = seg.write_frame(at, &p).unwrap_or(24);
            seg.sync_range(start.min(at), at).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, append);
criterion_main!(benches);
