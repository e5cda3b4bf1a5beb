//! Decode throughput for the DESIGN §7 reference row (symbol, two doubles,
//! designated timestamp), built by hand so the bench does not depend on
//! the encoder.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qwp_proto::decoder::{decode, ConnectionDecoder};
use qwp_proto::{gorilla, varint};

fn string(out: &mut Vec<u8>, s: &str) {
    varint::write(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// One message: `rows` rows of (SYMBOL host, DOUBLE a, DOUBLE b, designated
/// TIMESTAMP), flags `0c`, 16 distinct symbols declared from id 0.
fn reference_message(rows: usize) -> Vec<u8> {
    let mut p = Vec::new();
    varint::write(&mut p, 0);
    varint::write(&mut p, 16);
    for i in 0..16 {
        string(&mut p, &format!("host-{i}"));
    }
    string(&mut p, "cpu");
    varint::write(&mut p, rows as u64);
    varint::write(&mut p, 4);
    for (name, code) in [("host", 0x09u8), ("a", 0x07), ("b", 0x07), ("", 0x0a)] {
        string(&mut p, name);
        p.push(code);
    }
    p.push(0x00);
    for r in 0..rows {
        varint::write(&mut p, (r % 16) as u64);
    }
    for scale in [1.0f64, 0.5] {
        p.push(0x00);
        for r in 0..rows {
            p.extend_from_slice(&(r as f64 * scale).to_le_bytes());
        }
    }
    p.push(0x00);
    let ts: Vec<i64> = (0..rows as i64)
        .map(|r| 1_700_000_000_000_000 + r * 1_000 + (r % 3))
        .collect();
    gorilla::encode(&ts, &mut p);
    let mut m = b"QWP1".to_vec();
    m.extend_from_slice(&[1, 0x0c, 1, 0]);
    m.extend_from_slice(&(p.len() as u32).to_le_bytes());
    m.extend(p);
    m
}

fn bench(c: &mut Criterion) {
    let rows = 1000;
    let msg = reference_message(rows);
    assert_eq!(decode(&msg).unwrap().tables[0].row_count(), rows);
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(rows as u64));
    g.bench_function("reference_1000_rows_standalone", |b| {
        b.iter(|| decode(std::hint::black_box(&msg)).unwrap())
    });
    g.bench_function("reference_1000_rows_connection", |b| {
        let mut dec = ConnectionDecoder::new();
        b.iter(|| dec.decode(std::hint::black_box(&msg)).unwrap())
    });
    g.bench_function("reference_1000_rows_decode_and_iterate", |b| {
        b.iter(|| {
            let m = decode(std::hint::black_box(&msg)).unwrap();
            m.tables[0].rows().count()
        })
    });
    g.finish();

    // The same decode, reported as bytes per second.
    let mut g = c.benchmark_group("decode_bytes");
    g.throughput(Throughput::Bytes(msg.len() as u64));
    g.bench_function("reference_1000_rows_standalone", |b| {
        b.iter(|| decode(std::hint::black_box(&msg)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
