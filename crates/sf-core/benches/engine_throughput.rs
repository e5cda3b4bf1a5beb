//! Per-frame cost of the composed engine on the hot path: place, commit,
//! send, and one OK per 64 frames, with the fake adapter answering storage
//! requests inline (memory backing).

use std::hint::black_box;
use std::num::NonZeroUsize;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qwp_proto::response::{OkFrame, Response};
use sf_core::engine::{Engine, EngineConfig, Input, Output};
use sf_core::recovery::RecoveredSlot;
use sf_core::storage::{AppendDecision, IoOutcome, StorageConfig};
use sf_core::Instant;

const FRAMES: u64 = 10_000;
const OK_EVERY: u64 = 64;

fn drain(e: &mut Engine, now: Instant) -> u64 {
    let mut sends = 0;
    while let Some(o) = e.poll_output() {
        match o {
            Output::Storage(s) => {
                let id = s.id();
                let input = Input::Io {
                    id,
                    outcome: IoOutcome::Done,
                };
                e.handle_input(now, input).expect("completion accepted");
            }
            Output::Send { .. } => sends += 1,
            _ => {}
        }
    }
    sends
}

fn connected_engine() -> Engine {
    let storage = StorageConfig {
        segment_bytes: 1 << 20,
        max_total_bytes: 64 << 20,
        ..StorageConfig::memory()
    };
    let config = EngineConfig::new(storage, NonZeroUsize::MIN);
    let now = Instant(0);
    let mut e = Engine::new(config, RecoveredSlot::empty(), now, 1).expect("builds");
    drain(&mut e, now);
    let headers: [(&str, &[u8]); 1] = [("X-QWP-Version", b"1")];
    e.handle_input(
        now,
        Input::Connected {
            host: 0,
            status: 101,
            headers: &headers,
        },
    )
    .expect("connect accepted");
    drain(&mut e, now);
    e
}

fn append_send_ok(c: &mut Criterion) {
    let oks: Vec<Vec<u8>> = (0..FRAMES / OK_EVERY)
        .map(|i| {
            let mut b = Vec::new();
            let seq = i64::try_from((i + 1) * OK_EVERY - 1).expect("small");
            Response::Ok(OkFrame {
                sequence: seq,
                tables: Vec::new(),
            })
            .encode_into(&mut b)
            .expect("encodes");
            b
        })
        .collect();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(FRAMES));
    g.bench_function("append+commit+send, OK every 64 (x10k)", |b| {
        b.iter_batched(
            connected_engine,
            |mut e| {
                let now = Instant(1);
                let mut sent = 0;
                for i in 0..FRAMES {
                    let AppendDecision::Place(p) = e.begin_append(now, 512).expect("room") else {
                        panic!("the bench sizes the cap so appends never wait");
                    };
                    e.commit_append(now, p, Ok(())).expect("commit");
                    sent += drain(&mut e, now);
                    if (i + 1) % OK_EVERY == 0 {
                        let ok = &oks[usize::try_from(i / OK_EVERY).expect("small")];
                        e.handle_input(now, Input::Received(ok)).expect("ok");
                        drain(&mut e, now);
                    }
                }
                black_box(sent)
            },
            criterion::BatchSize::LargeInput,
        );
    });
    g.finish();
}

criterion_group!(benches, append_send_ok);
criterion_main!(benches);
