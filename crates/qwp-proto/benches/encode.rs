//! Encoder throughput: rows/s for building and encoding messages of 1000
//! rows, with a reused builder and output buffer (the producer's steady
//! state).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qwp_proto::encoder::MessageBuilder;

const ROWS: usize = 1000;
const HOSTS: [&str; 8] = [
    "server-01",
    "server-02",
    "server-03",
    "server-04",
    "server-05",
    "server-06",
    "server-07",
    "server-08",
];

fn four_columns(b: &mut MessageBuilder, out: &mut Vec<u8>, t0: i64) {
    for i in 0..ROWS {
        b.table("cpu")
            .unwrap()
            .symbol("host", HOSTS[i % HOSTS.len()])
            .unwrap()
            .column_f64("usage_user", i as f64 * 0.5)
            .unwrap()
            .column_f64("usage_system", i as f64 * 0.25)
            .unwrap()
            .at_micros(t0 + i as i64 * 1000)
            .unwrap();
    }
    out.clear();
    b.encode_into(out).unwrap();
}

fn twelve_columns(b: &mut MessageBuilder, out: &mut Vec<u8>, t0: i64) {
    for i in 0..ROWS {
        let x = i as f64;
        b.table("trades")
            .unwrap()
            .symbol("venue", HOSTS[i % 4])
            .unwrap()
            .symbol("pair", HOSTS[i % 8])
            .unwrap()
            .column_i64("id", i as i64)
            .unwrap()
            .column_i32("qty", i as i32)
            .unwrap()
            .column_f64("bid", x)
            .unwrap()
            .column_f64("ask", x + 0.5)
            .unwrap()
            .column_f64("last", x + 0.25)
            .unwrap()
            .column_bool("buy", i % 2 == 0)
            .unwrap()
            .column_str("note", "filled")
            .unwrap()
            .column_ts_micros("exch_ts", t0 + i as i64 * 997)
            .unwrap()
            .column_uuid("order", 0x550e8400_e29b_41d4_a716_446655440000 + i as u128)
            .unwrap()
            .at_micros(t0 + i as i64 * 1000)
            .unwrap();
    }
    out.clear();
    b.encode_into(out).unwrap();
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(ROWS as u64));
    let t0 = 1_700_000_000_000_000;
    let mut b = MessageBuilder::new();
    let mut out = Vec::new();
    g.bench_function("4col_rows", |bench| {
        bench.iter(|| {
            four_columns(&mut b, &mut out, t0);
            black_box(out.len())
        })
    });
    g.bench_function("12col_rows", |bench| {
        bench.iter(|| {
            twelve_columns(&mut b, &mut out, t0);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
