//! Producer append latency percentiles (DESIGN §7: a 512-byte frame p50
//! ≤ 100 ns, p99.9 ≤ 5 µs on the producer thread in memory durability).
//!
//! Criterion reports means, not tails, so this is a plain `main` that times
//! every append on its own with `std::time::Instant` and prints a table.
//!
//! Part 1 is the producer path of `src/sender/` without the encoder and the
//! network: the engine and the segments behind one mutex, the producer
//! doing `begin_append` + `SegmentWriter::write_frame` + `publish` +
//! `commit_append` under it, and a background thread in the role of the
//! I/O task (drains the engine's outputs under the same lock, creates and
//! pre-faults spares and unlinks segments with the lock released, and
//! answers every `Send` with a cumulative OK so the ring keeps rotating).
//! Part 2 goes through the public `Sender` (one ~512-byte frame per
//! `flush()`, memory durability) against the in-process reference server.
//!
//! Run: `cargo bench -p sf-io-tokio --bench append_latency`
//! (`APPEND_FRAMES=n` overrides the frame count of part 1).

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qwp_proto::response::{OkFrame, Response};
use sf_core::engine::{Engine, EngineConfig, Input, Output};
use sf_core::recovery::RecoveredSlot;
use sf_core::ring::SegmentName;
use sf_core::segment::SegmentHeader;
use sf_core::storage::{
    AppendDecision, Backing, IoOutcome, StorageConfig, StorageOutput, WaitReason,
};
use sf_io_tokio::fs::{MemorySegment, SegmentBuffer, SegmentFile, SegmentReader, SegmentWriter};

const PAYLOAD: usize = 512;
const SEGMENT: u64 = 4 << 20;

/// Percentiles of a set of samples in nanoseconds.
struct Summary {
    n: usize,
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
    mean: f64,
}

fn summarize(mut ns: Vec<u64>) -> Summary {
    ns.sort_unstable();
    let n = ns.len();
    let at = |q: f64| ns[((n as f64 * q) as usize).min(n - 1)];
    Summary {
        n,
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        max: ns[n - 1],
        mean: ns.iter().sum::<u64>() as f64 / n as f64,
    }
}

fn print_header() {
    println!(
        "{:<44} {:>8} {:>9} {:>9} {:>9} {:>11} {:>9}",
        "case", "n", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "mean ns"
    );
}

fn print_row(name: &str, s: &Summary) {
    println!(
        "{:<44} {:>8} {:>9} {:>9} {:>9} {:>11} {:>9.0}",
        name, s.n, s.p50, s.p99, s.p999, s.max, s.mean
    );
}

struct Segment {
    writer: SegmentWriter,
    reader: SegmentReader,
}

struct Inner {
    engine: Engine,
    segments: BTreeMap<SegmentName, Segment>,
}

/// What the background thread saw, for the table's footnotes.
#[derive(Default, Debug)]
struct Observed {
    creates: u64,
    installs: u64,
    unlinks: u64,
    sends: u64,
    acks: u64,
}

fn now_ns(origin: Instant) -> sf_core::Instant {
    sf_core::Instant(origin.elapsed().as_nanos() as u64)
}

fn create(dir: Option<&Path>, gen: sf_core::SegmentGen, size: u64) -> Segment {
    let (writer, reader) = match dir {
        Some(dir) => SegmentFile::create_spare(dir, gen, size)
            .unwrap()
            .into_split(0)
            .unwrap(),
        None => {
            let mut m = MemorySegment::new(gen, size).unwrap();
            let image = m.image_mut();
            for i in (0..image.len()).step_by(4096) {
                image[i] = 0;
            }
            m.into_split(0).unwrap()
        }
    };
    Segment { writer, reader }
}

/// The I/O task's role: outputs drained under the lock, file work without
/// it, a cumulative OK for everything sent so far.
fn background(
    shared: Arc<Mutex<Inner>>,
    dir: Option<PathBuf>,
    origin: Instant,
    stop: Arc<AtomicBool>,
) -> Observed {
    let mut seen = Observed::default();
    let mut ok = Vec::new();
    let mut pending: Vec<(sf_core::storage::IoId, IoOutcome)> = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let mut creates = Vec::new();
        let mut unlinks = Vec::new();
        {
            let mut g = shared.lock().unwrap();
            let now = now_ns(origin);
            for (id, outcome) in pending.drain(..) {
                g.engine
                    .handle_input(now, Input::Io { id, outcome })
                    .unwrap();
            }
            if g.engine.poll_timeout().is_some_and(|t| t <= now) {
                g.engine.handle_input(now, Input::Timeout).unwrap();
            }
            let mut sent_now = 0;
            while let Some(out) = g.engine.poll_output() {
                match out {
                    Output::Connect { host } => {
                        let headers: [(&str, &[u8]); 1] = [("X-QWP-Version", b"1")];
                        g.engine
                            .handle_input(
                                now,
                                Input::Connected {
                                    host,
                                    status: 101,
                                    headers: &headers,
                                },
                            )
                            .unwrap();
                    }
                    Output::Send { .. } => sent_now += 1,
                    Output::Storage(StorageOutput::CreateSegment { id, gen, size }) => {
                        seen.creates += 1;
                        creates.push((id, gen, size));
                    }
                    Output::Storage(StorageOutput::InstallHeader { id, gen, base_fsn }) => {
                        seen.installs += 1;
                        let seg = g.segments.get_mut(&SegmentName::Gen(gen)).unwrap();
                        seg.writer
                            .write_header(&SegmentHeader::new(base_fsn, 0).unwrap())
                            .unwrap();
                        g.engine
                            .handle_input(
                                now,
                                Input::Io {
                                    id,
                                    outcome: IoOutcome::Done,
                                },
                            )
                            .unwrap();
                    }
                    Output::Storage(StorageOutput::Unlink { id, name }) => {
                        seen.unlinks += 1;
                        let seg = g.segments.remove(&name);
                        unlinks.push((id, seg));
                    }
                    Output::Storage(StorageOutput::Sync { id, .. })
                    | Output::Storage(StorageOutput::PersistAckWatermark { id, .. })
                    | Output::Storage(StorageOutput::RemoveAckWatermark { id, .. }) => {
                        // Memory durability asks for neither; answer anyway.
                        pending.push((id, IoOutcome::Done));
                    }
                    _ => {}
                }
            }
            if sent_now > 0 {
                seen.sends += sent_now;
                ok.clear();
                Response::Ok(OkFrame {
                    sequence: seen.sends as i64 - 1,
                    tables: Vec::new(),
                })
                .encode_into(&mut ok)
                .unwrap();
                seen.acks += 1;
                g.engine.handle_input(now, Input::Received(&ok)).unwrap();
            }
        }
        // Slow work with the lock released, as the adapter does.
        for (id, seg) in unlinks {
            if let Some(seg) = seg {
                let Segment { writer, reader } = seg;
                drop(writer);
                if dir.is_some() {
                    reader.unlink().unwrap();
                }
            }
            pending.push((id, IoOutcome::Done));
        }
        for (id, gen, size) in creates {
            let seg = create(dir.as_deref(), gen, size);
            shared
                .lock()
                .unwrap()
                .segments
                .insert(SegmentName::Gen(gen), seg);
            pending.push((id, IoOutcome::Done));
        }
        if pending.is_empty() {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    seen
}

fn engine_path(backing: Backing, frames: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let storage = StorageConfig {
        segment_bytes: SEGMENT,
        append_deadline: Duration::from_secs(30),
        ..match backing {
            Backing::Files => StorageConfig::files(),
            Backing::Memory => StorageConfig::memory(),
        }
    };
    let config = EngineConfig::new(storage, NonZeroUsize::new(1).unwrap());
    let origin = Instant::now();
    let engine = Engine::new(config, RecoveredSlot::empty(), now_ns(origin), 7).unwrap();
    let shared = Arc::new(Mutex::new(Inner {
        engine,
        segments: BTreeMap::new(),
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let dir = (backing == Backing::Files).then(|| tmp.path().to_path_buf());
    let bg = {
        let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
        std::thread::spawn(move || background(shared, dir, origin, stop))
    };

    let mut payload = b"QWP1".to_vec();
    payload.extend((0..(PAYLOAD - 4) as u32).map(|i| (i * 31) as u8));
    let mut samples = Vec::with_capacity(frames);
    let mut unstalled = Vec::with_capacity(frames);
    let (mut rotations, mut stalls) = (0u64, 0u64);
    let (mut no_spare, mut cap, mut other) = (0u64, 0u64, 0u64);
    for _ in 0..frames {
        let started = Instant::now();
        let mut stalled = false;
        loop {
            let mut g = shared.lock().unwrap();
            let now = now_ns(origin);
            match g.engine.begin_append(now, PAYLOAD as u64).unwrap() {
                AppendDecision::Place(p) => {
                    let seg = g.segments.get_mut(&SegmentName::Gen(p.gen)).unwrap();
                    if let Some(h) = p.header {
                        rotations += 1;
                        seg.writer
                            .write_header(&SegmentHeader::new(h.base_fsn, 0).unwrap())
                            .unwrap();
                    }
                    let end = seg.writer.write_frame(p.offset, &payload).unwrap();
                    seg.writer.publish(end).unwrap();
                    g.engine.commit_append(now, p, Ok(())).unwrap();
                    break;
                }
                AppendDecision::Wait { reason, .. } => {
                    if !stalled {
                        stalled = true;
                        stalls += 1;
                        match reason {
                            WaitReason::NoSpare { .. } => no_spare += 1,
                            WaitReason::Cap { .. } => cap += 1,
                            _ => other += 1,
                        }
                    }
                    drop(g);
                    std::thread::yield_now();
                }
            }
        }
        let ns = started.elapsed().as_nanos() as u64;
        samples.push(ns);
        if !stalled {
            unstalled.push(ns);
        }
    }
    stop.store(true, Ordering::Release);
    let seen = bg.join().unwrap();
    let name = match backing {
        Backing::Files => "engine+file segments",
        Backing::Memory => "engine+memory segments",
    };
    print_row(&format!("{name}, all"), &summarize(samples));
    print_row(&format!("{name}, not stalled"), &summarize(unstalled));
    println!(
        "    rotations into a spare: {rotations}, reclaims (header installs): {}, \
         segments created: {}, unlinked: {}, appends stalled: {stalls} \
         (no spare ready: {no_spare}, cap: {cap}, reclaim/other: {other}), frames sent: {}, OKs fed: {}",
        seen.installs, seen.creates, seen.unlinks, seen.sends, seen.acks
    );
}

fn sender_path(frames: usize) {
    use qwp_server::{Server, ServerConfig};
    use sf_io_tokio::Sender;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(Server::bind(ServerConfig::local())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // One row with a 440-char string encodes to a frame of about 512 bytes.
    let text: String = (0..440).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    for (name, extra) in [
        ("Sender flush() of 1 row (~512 B), memory", String::new()),
        (
            "Sender flush() of 1 row (~512 B), sf_dir",
            format!("sf_dir={};sender_id=lat;", tmp.path().display()),
        ),
    ] {
        let mut s = Sender::from_conf(&format!(
            "ws::addr={};auto_flush=off;{extra}",
            srv.local_addr()
        ))
        .unwrap();
        let mut samples = Vec::with_capacity(frames);
        for i in 0..frames as i64 {
            s.table("lat").unwrap().column_str("s", &text).unwrap();
            s.at_micros(1_700_000_000_000_000 + i).unwrap();
            let started = Instant::now();
            s.flush().unwrap();
            samples.push(started.elapsed().as_nanos() as u64);
        }
        let f = s.counters().published_fsn.unwrap();
        s.wait_acked(f, Duration::from_secs(60)).unwrap();
        s.close().unwrap();
        print_row(name, &summarize(samples));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let frames: usize = std::env::var("APPEND_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    println!(
        "producer append of {PAYLOAD}-byte frames, {} MiB segments, memory durability",
        SEGMENT >> 20
    );
    print_header();
    // What two `Instant::now()` reads cost by themselves: every sample
    // below includes it once.
    let overhead: Vec<u64> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(());
            t.elapsed().as_nanos() as u64
        })
        .collect();
    print_row("timer overhead (empty sample)", &summarize(overhead));
    engine_path(Backing::Files, frames);
    engine_path(Backing::Memory, frames);
    sender_path(frames / 4);
}
