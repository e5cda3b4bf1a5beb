//! `flush()` latency per durability mode, one small batch per flush, against
//! the in-process reference server: what a caller waits for C1 (published
//! in `memory`; fsynced in `flush` and `append`). A plain `main` that prints
//! percentiles, which criterion does not give.
//!
//! Run: `cargo bench -p sf-io-tokio --bench flush_latency`
//! (`FLUSH_ITERS=n` overrides the flush count of the fsync modes).

use std::time::{Duration, Instant};

use qwp_server::{Server, ServerConfig};
use sf_io_tokio::Sender;

const ROWS_PER_BATCH: i64 = 10;

fn percentile(sorted: &[u64], q: f64) -> u64 {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn main() {
    let iters: usize = std::env::var("FLUSH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(Server::bind(ServerConfig::local())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    println!("flush() of one {ROWS_PER_BATCH}-row batch, auto_flush=off");
    println!(
        "{:<28} {:>6} {:>10} {:>10} {:>10} {:>10}",
        "mode", "n", "p50 us", "p99 us", "max us", "mean us"
    );
    let cases = [
        ("memory (no sf_dir)", String::new(), iters * 10),
        (
            "sf_dir, sf_durability=memory",
            format!(
                "sf_dir={};sender_id=m;sf_durability=memory;",
                tmp.path().display()
            ),
            iters * 10,
        ),
        (
            "sf_dir, sf_durability=flush",
            format!(
                "sf_dir={};sender_id=f;sf_durability=flush;",
                tmp.path().display()
            ),
            iters,
        ),
        (
            "sf_dir, sf_durability=append",
            format!(
                "sf_dir={};sender_id=a;sf_durability=append;",
                tmp.path().display()
            ),
            iters,
        ),
    ];
    for (name, extra, n) in cases {
        let mut s = Sender::from_conf(&format!(
            "ws::addr={};auto_flush=off;{extra}",
            srv.local_addr()
        ))
        .unwrap();
        let mut ns = Vec::with_capacity(n);
        let mut ts = 1_700_000_000_000_000i64;
        // A few unmeasured flushes: the first connect and first segment.
        for round in 0..(n + 20) {
            for _ in 0..ROWS_PER_BATCH {
                ts += 1;
                s.table("flush_lat")
                    .unwrap()
                    .symbol("sym", "abc")
                    .unwrap()
                    .column_f64("a", ts as f64)
                    .unwrap()
                    .column_i64("b", ts)
                    .unwrap();
                s.at_micros(ts).unwrap();
            }
            let started = Instant::now();
            s.flush().unwrap();
            if round >= 20 {
                ns.push(started.elapsed().as_nanos() as u64);
            }
        }
        let f = s.counters().published_fsn.unwrap();
        s.wait_acked(f, Duration::from_secs(60)).unwrap();
        s.close().unwrap();
        let mean = ns.iter().sum::<u64>() as f64 / ns.len() as f64;
        ns.sort_unstable();
        println!(
            "{:<28} {:>6} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            name,
            ns.len(),
            percentile(&ns, 0.5) as f64 / 1e3,
            percentile(&ns, 0.99) as f64 / 1e3,
            ns[ns.len() - 1] as f64 / 1e3,
            mean / 1e3
        );
    }
}
