//! The core's per-append overhead: `begin_append` + `commit_append` (no
//! memcpy, no CRC), memory durability, over many rotations. Trim and spare
//! provisioning run every 64 appends (as an I/O task would) and are
//! amortised into the figure. `reclaim0` acknowledges everything each time,
//! so the fully acknowledged active segment is replaced every 64 appends
//! (S5 with `reclaim_min_bytes = 0`); `noreclaim` rotates only when full.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use sf_core::recovery::RecoveredSlot;
use sf_core::storage::{AppendDecision, IoOutcome, Storage, StorageConfig, StorageOutput};
use sf_core::Instant;

fn complete_all(s: &mut Storage, now: Instant) {
    while let Some(o) = s.poll_output() {
        let id = match o {
            StorageOutput::CreateSegment { id, .. }
            | StorageOutput::InstallHeader { id, .. }
            | StorageOutput::Sync { id, .. }
            | StorageOutput::Unlink { id, .. }
            | StorageOutput::PersistAckWatermark { id, .. }
            | StorageOutput::RemoveAckWatermark { id } => id,
        };
        // The bench's own bookkeeping cannot fail on a live id.
        let _ = s.io_done(now, id, IoOutcome::Done);
    }
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage");
    group.throughput(Throughput::Elements(1));
    let cases = [
        ("append_512B_seg4MiB_noreclaim", 4u64 << 20, u64::MAX),
        ("append_512B_seg64KiB_noreclaim", 64 << 10, u64::MAX),
        ("append_512B_seg4MiB_reclaim0", 4 << 20, 0),
    ];
    for (name, segment_bytes, reclaim_min_bytes) in cases {
        let config = StorageConfig {
            segment_bytes,
            spares: 2,
            reclaim_min_bytes,
            ..StorageConfig::memory()
        };
        let now = Instant::ZERO;
        let mut s = Storage::open(config, RecoveredSlot::empty(), now).expect("open");
        complete_all(&mut s, now);
        let mut n: u64 = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                match s.begin_append(now, black_box(512)) {
                    Ok(AppendDecision::Place(p)) => {
                        let _ = black_box(s.commit_append(now, p, Ok(())));
                    }
                    _ => complete_all(&mut s, now),
                }
                n += 1;
                if n.is_multiple_of(64) {
                    if let Some(p) = s.published_fsn() {
                        s.acknowledge(now, p);
                    }
                    complete_all(&mut s, now);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
