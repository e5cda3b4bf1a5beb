//! The core's per-append cost under each S5 early-reclaim policy of a
//! file-backed slot: `begin_append` + `commit_append` of 512-byte frames
//! into 4 MiB segments, every 64 appends an acknowledgement of everything
//! and the completion of every storage output (as an I/O task would), so
//! acknowledgements always catch up. `at_once` replaces the active segment
//! at every catch-up (`reclaim_min_bytes = 0`), `half` (the default) once
//! it holds half a segment, `at_rotation` only when it is full. The figure
//! is the core's share only: the adapter's file creation and pre-faulting
//! of each fresh segment come on top (see `sf-io-tokio`'s
//! `sf_dir_throughput`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use sf_core::recovery::RecoveredSlot;
use sf_core::storage::{AppendDecision, IoOutcome, Storage, StorageConfig};
use sf_core::Instant;

/// Completes every queued storage output successfully.
fn answer_all(s: &mut Storage, now: Instant) {
    while let Some(o) = s.poll_output() {
        // Ids come straight from the engine; a refusal would be a bench bug
        // and only shows as a slower figure.
        let _ = s.io_done(now, o.id(), IoOutcome::Done);
    }
}

fn bench_policies(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage_reclaim");
    group.throughput(Throughput::Elements(1));
    let files = StorageConfig {
        spares: 2,
        ..StorageConfig::files()
    };
    let half = files.reclaim_min_bytes;
    for (name, reclaim_min_bytes) in [
        ("files_512B_seg4MiB_at_once", 0),
        ("files_512B_seg4MiB_half_default", half),
        ("files_512B_seg4MiB_at_rotation", u64::MAX),
    ] {
        let config = StorageConfig {
            reclaim_min_bytes,
            ..files.clone()
        };
        let now = Instant::ZERO;
        let mut s = Storage::open(config, RecoveredSlot::empty(), now).expect("open");
        answer_all(&mut s, now);
        let mut n: u64 = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                match s.begin_append(now, black_box(512)) {
                    Ok(AppendDecision::Place(p)) => {
                        let _ = black_box(s.commit_append(now, p, Ok(())));
                    }
                    _ => answer_all(&mut s, now),
                }
                n += 1;
                if n.is_multiple_of(64) {
                    if let Some(p) = s.published_fsn() {
                        s.acknowledge(now, p);
                    }
                    answer_all(&mut s, now);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_policies);
criterion_main!(benches);
