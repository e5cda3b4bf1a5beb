//! Producer append latency (one row encoded and flushed as one frame) in
//! memory and sf_dir mode, and end-to-end loopback rows/s, against the
//! reference server.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qwp_server::{Server, ServerConfig, ServerHandle};
use sf_io_tokio::Sender;

fn start_server(rt: &tokio::runtime::Runtime) -> ServerHandle {
    rt.block_on(Server::bind(ServerConfig::local()))
        .expect("bind")
}

fn row(s: &mut Sender, i: i64) {
    s.table("bench")
        .unwrap()
        .symbol("sym", "abc")
        .unwrap()
        .column_f64("a", i as f64)
        .unwrap()
        .column_f64("b", 0.5)
        .unwrap();
    s.at_micros(1_700_000_000_000_000 + i).unwrap();
}

fn bench_append(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = start_server(&rt);
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("sender_flush_one_row");
    for (name, extra) in [
        ("memory", String::new()),
        (
            "sf_dir",
            format!("sf_dir={};sender_id=b;", dir.path().display()),
        ),
    ] {
        let mut s = Sender::from_conf(&format!(
            "ws::addr={};auto_flush=off;{extra}",
            srv.local_addr()
        ))
        .unwrap();
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                row(&mut s, i);
                s.flush().unwrap()
            })
        });
        s.close().unwrap();
    }
    g.finish();

    let mut g = c.benchmark_group("sender_end_to_end");
    const ROWS: i64 = 20_000;
    g.throughput(Throughput::Elements(ROWS as u64));
    g.sample_size(10);
    for (name, extra) in [
        ("memory", String::new()),
        (
            "sf_dir",
            format!("sf_dir={};sender_id=e;", dir.path().display()),
        ),
    ] {
        let mut s = Sender::from_conf(&format!("ws::addr={};{extra}", srv.local_addr())).unwrap();
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..ROWS {
                    i += 1;
                    row(&mut s, i);
                }
                s.flush().unwrap();
                let f = s.counters().published_fsn.unwrap();
                s.wait_acked(f, Duration::from_secs(30)).unwrap();
            })
        });
        s.close().unwrap();
    }
    g.finish();
}

criterion_group!(benches, bench_append);
criterion_main!(benches);
