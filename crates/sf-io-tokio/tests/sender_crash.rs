//! Crash test: a child process (this test binary re-executed) appends
//! through a `Sender` with no reachable server and is killed with SIGKILL at
//! a random point. The parent then reopens the slot and checks S1-S4 and
//! that every frame whose `flush()` returned is there, and finally replays
//! the slot into a live server to check the rows themselves.

mod sender_support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use qwp_server::ServerConfig;
use sender_support::*;
use sf_core::Fsn;
use sf_io_tokio::fs::open_slot;
use sf_io_tokio::Sender;

const CHILD_ENV: &str = "SENDER_CRASH_CHILD";
const ROWS_PER_FRAME: i64 = 5;

/// The child's body; a no-op unless re-executed by the parent.
#[test]
fn sender_crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, port) = spec.split_once('|').expect("dir|port");
    // Nothing listens on `port`: frames are only ever written locally.
    // Small segments so the kill can land around rotations too.
    let conf = format!(
        "ws::addr=127.0.0.1:{port};sf_dir={dir};sender_id=crash;auto_flush=off;\
         initial_connect_retry=async;sf_max_bytes=65536;close_flush_timeout_millis=0;"
    );
    let mut s = Sender::from_conf(&conf).unwrap();
    for i in 0..1_000_000i64 {
        write_rows(&mut s, "t", i * ROWS_PER_FRAME, (i + 1) * ROWS_PER_FRAME);
        let fsn = s.flush().unwrap().unwrap();
        println!("FLUSHED {}", fsn.get());
    }
}

/// S1-S4 + C1 after SIGKILL at a random point.
#[test]
fn s1_s4_sigkill_mid_append_keeps_every_flushed_frame() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let kill_after = 1 + seed % 400;
    eprintln!("crash seed {seed}: SIGKILL after {kill_after} flushes");

    let dir = tempfile::tempdir().unwrap();
    let dead_port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "sender_crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, format!("{}|{dead_port}", dir.path().display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut flushed: Vec<u64> = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        // The harness may print "test name ... " on the same line.
        if let Some((_, f)) = line.split_once("FLUSHED ") {
            flushed.push(f.parse().unwrap());
            if flushed.len() as u64 == kill_after {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    // Lines already written before the kill are flushes that returned too.
    for line in lines.map_while(Result::ok) {
        // A line cut by the kill is not a complete report; skip it.
        // (A cut "FLUSHED 85" of 855 would parse; it is never the next FSN.)
        match line
            .split_once("FLUSHED ")
            .and_then(|(_, f)| f.parse::<u64>().ok())
        {
            Some(f) if f == flushed.len() as u64 => flushed.push(f),
            _ => {}
        }
    }
    child.wait().unwrap();
    assert_eq!(
        flushed.len() as u64,
        flushed.last().unwrap() + 1,
        "S1: FSNs 0.. in order"
    );
    let max_flushed = Fsn(*flushed.last().unwrap());

    // Reopen the slot as recovery sees it.
    {
        let opened = open_slot(dir.path(), "crash").unwrap();
        let slot = &opened.plan.slot;
        assert_eq!(slot.acked, None, "nothing was ever acknowledged");
        let first = slot.segments.first().expect("segments survive");
        assert_eq!(
            first.base_fsn,
            Fsn(0),
            "S4: no segment unlinked without an ACK"
        );
        for w in slot.segments.windows(2) {
            assert_eq!(
                w[1].base_fsn,
                w[0].base_fsn.plus(w[0].frame_count()),
                "S1: contiguous FSNs across segments"
            );
        }
        assert!(
            slot.next_fsn > max_flushed,
            "C1: flushed frame {max_flushed} missing (next_fsn {})",
            slot.next_fsn
        );
    }

    // Replay into a live server: every flushed row arrives.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(server(ServerConfig::local()));
    let s = Sender::from_conf(&conf(
        &srv,
        &format!("sf_dir={};sender_id=crash;", dir.path().display()),
    ))
    .unwrap();
    let published = s.counters().published_fsn.unwrap();
    assert!(published >= max_flushed);
    s.wait_acked(published, WAIT).unwrap();
    s.close().unwrap();
    let ns = server_ns(&srv, "t");
    let expected: Vec<i64> = (0..(published.get() as i64 + 1) * ROWS_PER_FRAME).collect();
    assert_eq!(
        ns, expected,
        "every recovered frame replayed once, in order"
    );
    check_row_contents(&srv, "t");
}
