//! Recovery planning over 16,384 segments listed in shuffled order (DESIGN
//! §6 item 10, §7 target: reopening such a slot in under 1 s). The scans are
//! synthetic (small images scanned once in setup); only planning is timed.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use sf_core::recovery::{plan, plan_reads, ListingEntry, ReadPlan, SegmentRead, WatermarkRead};
use sf_core::segment::{write_frame, SegmentHeader, SEGMENT_HEADER_LEN};
use sf_core::{Fsn, SegmentGen};

const SEGMENTS: u64 = 16_384;
const FRAMES: u64 = 4;
const IMAGE: usize = 256;

fn image(base: u64) -> Vec<u8> {
    let mut img = vec![0u8; IMAGE];
    img[..SEGMENT_HEADER_LEN].copy_from_slice(&SegmentHeader::new(Fsn(base), 0).unwrap().encode());
    let mut at = SEGMENT_HEADER_LEN;
    for _ in 0..FRAMES {
        at = write_frame(&mut img, at, b"QWP1\x01\x0c\0\0\0\0\0\0").unwrap();
    }
    img
}

fn inputs() -> (ReadPlan, Vec<SegmentRead>) {
    let mut gens: Vec<u64> = (0..SEGMENTS).collect();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for i in (1..gens.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        gens.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let listing = gens
        .iter()
        .map(|&g| ListingEntry::new(SegmentGen(g).file_name(), IMAGE as u64))
        .collect();
    let rp = plan_reads(Ok(listing)).unwrap();
    let reads = rp
        .segment_files()
        .iter()
        .map(|f| SegmentRead::from_image(&image(f.gen.unwrap().get() * FRAMES)))
        .collect();
    (rp, reads)
}

fn planning(c: &mut Criterion) {
    let prepared = inputs();
    c.bench_function("recovery/plan_16384_shuffled", |b| {
        b.iter_batched(
            || prepared.clone(),
            |(rp, reads)| black_box(plan(rp, reads, WatermarkRead::Absent).unwrap()),
            BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, planning);
criterion_main!(benches);
