//! The core's per-append overhead: `begin_append` + `commit_append` (no
//! memcpy, no CRC), memory durability, over many rotations. Trim and spare
//! provisioning run every 64 appends (as an I/O task would) and are
//! amortised into the figure. `reclaim0` acknowledges everything each time,
//! so the fully acknowledged active segment is replaced every 64 appends
//! (S5 with `reclaim_min_bytes = 0`); `noreclaim` rotates only when full.
//!
//! `full_append_512B_warm` is the whole producer path into warm memory
//! segments: placement, header on rotation, memcpy + CRC32C with the segment
//! codec, and commit (DESIGN §7 budget: p50 ≤ 100 ns).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use std::collections::HashMap;

use sf_core::recovery::RecoveredSlot;
use sf_core::segment::{write_frame, SegmentHeader};
use sf_core::storage::{AppendDecision, IoOutcome, Storage, StorageConfig, StorageOutput};
use sf_core::Instant;

fn complete_all(s: &mut Storage, now: Instant) {
    while let Some(o) = s.poll_output() {
        let id = o.id();
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

/// Memory segments the bench owns, created when the core asks; buffers are
/// reused so the measured path runs over warm memory.
#[derive(Default)]
struct Buffers {
    live: HashMap<u64, Vec<u8>>,
    free: Vec<Vec<u8>>,
}

impl Buffers {
    fn serve(&mut self, s: &mut Storage, now: Instant) {
        while let Some(o) = s.poll_output() {
            let id = match o {
                StorageOutput::CreateSegment { id, gen, size } => {
                    let mut buf = self.free.pop().unwrap_or_default();
                    buf.clear();
                    buf.resize(size as usize, 0);
                    self.live.insert(gen.get(), buf);
                    id
                }
                StorageOutput::Unlink { id, name } => {
                    if let Some(buf) = name.gen().and_then(|g| self.live.remove(&g.get())) {
                        self.free.push(buf);
                    }
                    id
                }
                StorageOutput::InstallHeader { id, gen, base_fsn } => {
                    let h = SegmentHeader::new(base_fsn, 0).expect("header").encode();
                    if let Some(buf) = self.live.get_mut(&gen.get()) {
                        buf[..h.len()].copy_from_slice(&h);
                    }
                    id
                }
                StorageOutput::Sync { id, .. }
                | StorageOutput::PersistAckWatermark { id, .. }
                | StorageOutput::RemoveAckWatermark { id, .. } => id,
            };
            let _ = s.io_done(now, id, IoOutcome::Done);
        }
    }
}

fn bench_full_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("storage");
    group.throughput(Throughput::Elements(1));
    for (name, reclaim_min_bytes) in [
        ("full_append_512B_warm_files_default_reclaim0", 0),
        ("full_append_512B_warm_memory_default_noreclaim", u64::MAX),
    ] {
        let config = StorageConfig {
            spares: 2,
            reclaim_min_bytes,
            ..StorageConfig::memory()
        };
        let now = Instant::ZERO;
        let mut s = Storage::open(config, RecoveredSlot::empty(), now).expect("open");
        let mut bufs = Buffers::default();
        bufs.serve(&mut s, now);
        let payload = vec![0x5au8; 512];
        let mut n: u64 = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                match s.begin_append(now, black_box(payload.len() as u64)) {
                    Ok(AppendDecision::Place(p)) => {
                        let buf = bufs
                            .live
                            .get_mut(&p.gen.get())
                            .expect("placed in a live segment");
                        if let Some(h) = p.header {
                            let h = SegmentHeader::new(h.base_fsn, 0).expect("header").encode();
                            buf[..h.len()].copy_from_slice(&h);
                        }
                        let r = write_frame(buf, p.offset as usize, black_box(&payload));
                        let _ = black_box(
                            s.commit_append(
                                now,
                                p,
                                r.map(|_| ())
                                    .map_err(|_| sf_core::storage::IoFailure::Io { os_code: None }),
                            ),
                        );
                    }
                    _ => bufs.serve(&mut s, now),
                }
                n += 1;
                if n.is_multiple_of(64) {
                    if let Some(p) = s.published_fsn() {
                        s.acknowledge(now, p);
                    }
                    bufs.serve(&mut s, now);
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_append, bench_full_append);
criterion_main!(benches);
