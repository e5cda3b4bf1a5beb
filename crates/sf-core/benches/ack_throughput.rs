//! Cost of the per-frame ACK bookkeeping on the I/O path: one send plus one
//! OK through the wire mapping, and the same with durable-ACK tracking.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sf_core::ack::{InFlightWindow, TrimDriver, WireMapping};
use sf_core::durable_ack::DurableAckTracker;
use sf_core::{Fsn, Instant};

const FRAMES: u64 = 10_000;

fn ok_driven(c: &mut Criterion) {
    c.bench_function("ack/send+ok x10k (OK trim)", |b| {
        b.iter(|| {
            let t = Instant(0);
            let published = Some(Fsn(FRAMES - 1));
            let mut m = WireMapping::connect(
                None,
                published,
                TrimDriver::Ok,
                InFlightWindow::default(),
                t,
            );
            let mut seq = 0i64;
            while let Some(fsn) = m.next_to_send(published) {
                m.on_sent(fsn, t).unwrap();
                black_box(m.on_ok(seq, &[("trades", seq)], t).unwrap());
                seq += 1;
            }
            m.acked()
        })
    });
}

fn durable_driven(c: &mut Criterion) {
    c.bench_function("ack/send+ok+durable x10k (durable trim)", |b| {
        b.iter(|| {
            let t = Instant(0);
            let published = Some(Fsn(FRAMES - 1));
            let mut m = WireMapping::connect(
                None,
                published,
                TrimDriver::DurableAck,
                InFlightWindow::default(),
                t,
            );
            let mut d = DurableAckTracker::new(200);
            let mut seq = 0i64;
            while let Some(fsn) = m.next_to_send(published) {
                m.on_sent(fsn, t).unwrap();
                let ok = m
                    .on_ok(seq, &[("trades", seq), ("quotes", seq)], t)
                    .unwrap();
                d.on_ok(ok.wire_seq, &[("trades", seq), ("quotes", seq)], t);
                // A durable ACK every 16 frames, as an uploader batching WAL segments would.
                if seq % 16 == 15 {
                    if let Some(c) = d.on_durable_ack(&[("trades", seq), ("quotes", seq)]) {
                        m.acknowledge_wire_seq(c);
                    }
                }
                seq += 1;
            }
            m.acked()
        })
    });
}

criterion_group!(benches, ok_driven, durable_driven);
criterion_main!(benches);
