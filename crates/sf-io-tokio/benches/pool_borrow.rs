//! Cost of one borrow + return of an idle pooled sender (the per-request
//! overhead a service pays), SF mode, against the in-process reference
//! server; and of one borrow + write + flush + return.
//!
//! Run: `cargo bench -p sf-io-tokio --bench pool_borrow -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use qwp_server::{Server, ServerConfig};
use sf_io_tokio::{PoolConfig, SenderPool};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt
        .block_on(Server::bind(ServerConfig::local().with_retain_rows(false)))
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pool = SenderPool::new(
        &format!(
            "ws::addr={};sf_dir={};sender_id=b;auto_flush=off;",
            srv.local_addr(),
            tmp.path().display()
        ),
        PoolConfig {
            min: 1,
            max: 2,
            idle_timeout: Duration::from_secs(3600),
            borrow_timeout: Duration::from_secs(10),
        },
    )
    .unwrap();
    let mut g = c.benchmark_group("pool");
    g.bench_function("borrow_return_idle", |b| {
        b.iter(|| drop(pool.borrow().unwrap()));
    });
    let mut n = 0i64;
    g.bench_function("borrow_write10_flush_return", |b| {
        b.iter(|| {
            let mut s = pool.borrow().unwrap();
            for _ in 0..10 {
                n += 1;
                s.table("t").unwrap().column_i64("n", n).unwrap();
                s.at_micros(n).unwrap();
            }
            s.flush().unwrap();
        });
    });
    g.finish();
    pool.close();
}

criterion_group!(benches, bench);
criterion_main!(benches);
