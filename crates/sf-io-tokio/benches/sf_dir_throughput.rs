//! End-to-end loopback ingest, memory mode versus `sf_dir` (memory
//! durability), against the in-process reference server (DESIGN §7: sf_dir
//! at ≥ 90% of memory-mode throughput). A plain `main` so the segment churn,
//! the process CPU time and the page-cache traffic can be printed next to
//! the rate.
//!
//! By default each case runs all its rounds back to back (as criterion
//! does): alternating the cases (`E2E_ALTERNATE=1`) spreads the machine's
//! noise evenly but also hands the kernel writeback of the sf_dir cases'
//! dirty pages to whichever case runs next, which hides the sf_dir cost.
//!
//! Every round writes `ROWS` rows with the default auto-flush (1000 rows a
//! frame), flushes, and waits until the last frame is acknowledged. For the
//! sf_dir cases the slot directory is listed after the run: segment
//! generations are handed out one by one, so the highest generation on disk
//! is the number of segments created.
//!
//! `overall r/s` is all measured rows over all measured time (what a mean
//! such as criterion's reports, slow rounds weigh in); the median shows
//! the typical round. `stall/rnd` is the sender's `total_backpressure_stalls` per round:
//! appends that had to wait (cap, no spare ready, or a reclaim of the
//! active segment in progress).
//!
//! Run: `cargo bench -p sf-io-tokio --bench sf_dir_throughput`
//! (`E2E_ROWS=n`, `E2E_ROUNDS=n` override the defaults).

use std::path::Path;
use std::time::{Duration, Instant};

use qwp_server::{Server, ServerConfig};
use sf_core::SegmentGen;
use sf_io_tokio::Sender;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

/// The highest segment generation in a slot directory (0 if none).
fn highest_gen(slot: &Path) -> u64 {
    std::fs::read_dir(slot)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| SegmentGen::parse_file_name(&e.file_name().to_string_lossy()))
                .map(|g| g.0)
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Process CPU time (user + system) in clock ticks, from /proc/self/stat.
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) are 12 and 13 after the comm field.
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12)
}

/// (`write_bytes`, `cancelled_write_bytes`) of /proc/self/io: the bytes
/// this process dirtied for the storage layer and the part later dropped
/// (truncate or unlink before writeback).
fn io_bytes() -> (u64, u64) {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let get = |key: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (get("write_bytes:"), get("cancelled_write_bytes:"))
}

#[derive(Default, Clone, Copy)]
struct Cost {
    secs: f64,
    ticks: u64,
    written: u64,
    cancelled: u64,
    stalls: u64,
}

struct Case {
    name: String,
    sender: Sender,
    slot: Option<std::path::PathBuf>,
    rates: Vec<f64>,
    gens: Vec<u64>,
    next: i64,
    cost: Cost,
}

/// One round: `rows` rows, a flush, the wait for the last ACK.
fn round(c: &mut Case, rows: i64, measured: bool) {
    let gen_before = c.slot.as_deref().map_or(0, highest_gen);
    let (ticks, (w, x)) = (cpu_ticks(), io_bytes());
    let stalls = c.sender.counters().total_backpressure_stalls;
    let started = Instant::now();
    for _ in 0..rows {
        c.next += 1;
        row(&mut c.sender, c.next);
    }
    c.sender.flush().unwrap();
    let f = c.sender.counters().published_fsn.unwrap();
    c.sender.wait_acked(f, Duration::from_secs(120)).unwrap();
    let secs = started.elapsed().as_secs_f64();
    if measured {
        c.rates.push(rows as f64 / secs);
        let gen_after = c.slot.as_deref().map_or(0, highest_gen);
        c.gens.push(gen_after.saturating_sub(gen_before));
        let (w2, x2) = io_bytes();
        c.cost.secs += secs;
        c.cost.ticks += cpu_ticks() - ticks;
        c.cost.written += w2 - w;
        c.cost.cancelled += x2 - x;
        c.cost.stalls += c.sender.counters().total_backpressure_stalls - stalls;
    }
}

fn main() {
    let rows = env("E2E_ROWS", 20_000) as i64;
    let rounds = env("E2E_ROUNDS", 60);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // A server per case: the reference server keeps every row in memory,
    // so a case run after millions of rows ingested by another one is
    // slowed by the server's growth, not by its own mode (the criterion
    // `sender_end_to_end` group shares one server and shows that bias).
    let mut servers = Vec::new();
    let tmp = tempfile::tempdir().unwrap();
    let mut cases: Vec<Case> = Vec::new();
    let specs: [(&str, Option<u64>); 4] = [
        ("memory", None),
        ("sf_dir 4 MiB segments", Some(4 << 20)),
        ("sf_dir 1 MiB segments", Some(1 << 20)),
        ("sf_dir 16 MiB segments", Some(16 << 20)),
    ];
    for (i, (name, seg)) in specs.into_iter().enumerate() {
        let (extra, slot) = match seg {
            None => (String::new(), None),
            Some(bytes) => (
                format!(
                    "sf_dir={};sender_id=e{i};sf_max_bytes={bytes};",
                    tmp.path().display()
                ),
                Some(tmp.path().join(format!("e{i}"))),
            ),
        };
        let srv = rt.block_on(Server::bind(ServerConfig::local())).unwrap();
        let sender = Sender::from_conf(&format!("ws::addr={};{extra}", srv.local_addr())).unwrap();
        servers.push(srv);
        cases.push(Case {
            name: name.to_owned(),
            sender,
            slot,
            rates: Vec::new(),
            gens: Vec::new(),
            next: 0,
            cost: Cost::default(),
        });
    }
    let alternate = std::env::var("E2E_ALTERNATE").is_ok_and(|v| v == "1");
    if alternate {
        for r in 0..=rounds {
            for c in cases.iter_mut() {
                round(c, rows, r > 0);
            }
        }
    } else {
        for c in cases.iter_mut() {
            for r in 0..=rounds {
                round(c, rows, r > 0);
            }
        }
    }
    println!(
        "{rows} rows per round, {rounds} rounds, auto_flush default (1000 rows/frame), {}",
        if alternate {
            "alternating"
        } else {
            "back to back"
        }
    );
    println!(
        "{:<24} {:>11} {:>7} {:>11} {:>11} {:>11} {:>7} {:>9} {:>9} {:>7} {:>10} {:>10}",
        "case",
        "overall r/s",
        "% mem",
        "median r/s",
        "min r/s",
        "max r/s",
        "% mem",
        "segs/rnd",
        "stall/rnd",
        "cpu %",
        "dirty MiB",
        "dropped"
    );
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let mem = median(&cases[0].rates);
    let overall = |c: &Case| (rows as f64 * c.rates.len() as f64) / c.cost.secs;
    let mem_overall = overall(&cases[0]);
    for c in cases {
        let m = median(&c.rates);
        let min = c.rates.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = c.rates.iter().cloned().fold(0.0, f64::max);
        let segs = if c.slot.is_some() {
            format!(
                "{:.1}",
                c.gens.iter().sum::<u64>() as f64 / c.gens.len() as f64
            )
        } else {
            "-".to_owned()
        };
        // Clock ticks are 1/100 s on Linux; CPU % of one core over the
        // measured rounds (all threads of the process, server included).
        let cpu = c.cost.ticks as f64 / 100.0 / c.cost.secs * 100.0;
        println!(
            "{:<24} {:>11.0} {:>6.1}% {:>11.0} {:>11.0} {:>11.0} {:>6.1}% {:>9} {:>9.1} {:>6.0}% {:>10.1} {:>10.1}",
            c.name,
            overall(&c),
            100.0 * overall(&c) / mem_overall,
            m,
            min,
            max,
            100.0 * m / mem,
            segs,
            c.cost.stalls as f64 / c.rates.len() as f64,
            cpu,
            c.cost.written as f64 / (1 << 20) as f64,
            c.cost.cancelled as f64 / (1 << 20) as f64
        );
        c.sender.close().unwrap();
    }
}
