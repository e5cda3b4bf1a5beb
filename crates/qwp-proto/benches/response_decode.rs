//! Decode and encode cost of response frames: the client decodes one OK (or
//! DURABLE_ACK) per frame it sends, so this is on the ACK path.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use qwp_proto::response::{DurableAckFrame, ErrorFrame, OkFrame, Response, TableSeqTxn};

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let enc = |r: Response| {
        let mut out = Vec::new();
        r.encode_into(&mut out).expect("encodable");
        out
    };
    vec![
        (
            "ok_empty",
            enc(Response::Ok(OkFrame {
                sequence: 12_345,
                tables: vec![],
            })),
        ),
        (
            "ok_1_table",
            enc(Response::Ok(OkFrame {
                sequence: 12_345,
                tables: vec![TableSeqTxn::new("trades", 42)],
            })),
        ),
        (
            "durable_ack_8_tables",
            enc(Response::DurableAck(DurableAckFrame {
                tables: (0..8)
                    .map(|i| TableSeqTxn::new(format!("table_{i}"), i))
                    .collect(),
            })),
        ),
        (
            "error_200b",
            enc(Response::Error(
                ErrorFrame::new(5, 7, "x".repeat(200)).expect("error status"),
            )),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("response");
    for (name, bytes) in frames() {
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| Response::decode(black_box(&bytes)))
        });
    }
    let ok = Response::Ok(OkFrame {
        sequence: 12_345,
        tables: vec![TableSeqTxn::new("trades", 42)],
    });
    let mut out = Vec::with_capacity(64);
    g.bench_function("encode/ok_1_table", |b| {
        b.iter(|| {
            out.clear();
            black_box(&ok).encode_into(&mut out)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
