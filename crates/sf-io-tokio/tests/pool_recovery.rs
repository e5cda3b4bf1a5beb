//! Issue 8 pool rule 6: the pool's construction-time recovery of its own
//! in-range slots runs in the background, at most `max_background_drainers`
//! at once, never lends an index under recovery, and stops at `close()`.
//!
//! "Construction does not wait" is shown structurally: the server is down
//! and every recovery may wait ten minutes (`close_flush_timeout_millis`),
//! so a `build()` that waited for any of them could not have returned while
//! the counters still show them all pending. No test sleeps or times.

mod pool_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use pool_support::*;
use qwp_server::{ServerConfig, ServerHandle};
use sf_io_tokio::fs::{lock_holder, LockProbe};
use sf_io_tokio::{PoolConfig, PoolError, SenderPool};

/// Rows per stranded frame are 10; each slot gets this many frames.
const FRAMES: i64 = 2;

fn sizes(max: u32) -> PoolConfig {
    PoolConfig {
        min: 0,
        max,
        idle_timeout: Duration::from_secs(600),
        borrow_timeout: Duration::from_millis(200),
    }
}

/// A pool connect string whose recoveries wait up to ten minutes for a
/// server (so none gives up during a test) and reconnect quickly once it
/// is up; `cap` recoveries at once.
fn conf(addr: SocketAddr, sf: &Path, cap: u32, extra: &str) -> String {
    format!(
        "ws::addr={addr};sf_dir={};sender_id=w;auto_flush=off;\
         close_flush_timeout_millis=600000;reconnect_initial_backoff_millis=10;\
         reconnect_max_backoff_millis=50;max_background_drainers={cap};{extra}",
        sf.display()
    )
}

/// Strands `FRAMES` frames in each of `w-0..w-{n-1}` (table `t<i>`).
fn strand_slots(sf: &Path, n: u32) {
    for i in 0..n {
        strand(sf, &format!("w-{i}"), &format!("t{i}"), FRAMES);
    }
}

fn held(sf: &Path, i: u32) -> bool {
    matches!(
        lock_holder(&sf.join(format!("w-{i}"))).unwrap(),
        LockProbe::Held(_)
    )
}

/// Every stranded row of `w-0..w-{n-1}` reached the server exactly once.
fn assert_delivered_once(srv: &ServerHandle, n: u32) {
    for i in 0..n {
        assert_eq!(
            server_ns(srv, &format!("t{i}")),
            (0..FRAMES * 10).collect::<Vec<_>>(),
            "w-{i}: every recovered row exactly once"
        );
    }
}

#[test]
fn rule6_construction_does_not_wait_for_an_unreachable_server() {
    let sf = tempfile::tempdir().unwrap();
    strand_slots(sf.path(), 3);
    let addr = dead_addr();
    let pool = SenderPool::new(&conf(addr, sf.path(), 4, ""), sizes(3)).unwrap();
    // Built while the server is down: nothing recovered, nothing given up,
    // every stranded slot still pending (running or about to).
    let c = pool.counters();
    assert_eq!((c.recovered_slots, c.recoveries_given_up), (0, 0), "{c:?}");
    assert_eq!(c.recovering + c.recoveries_queued, 3, "{c:?}");
    // `created` counts a recovery's sender once it is open (slot locked).
    assert!(
        pool.wait_for(WAIT, |c| c.recovering == 3 && c.created == 3),
        "{:?}",
        pool.counters()
    );
    for i in 0..3 {
        assert!(has_segments(&sf.path().join(format!("w-{i}"))));
        assert!(held(sf.path(), i), "w-{i} is locked by its recovery");
    }
    // The server comes up: every recovery delivers, exactly once.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(server(ServerConfig::new(addr)));
    assert!(
        pool.wait_for(WAIT, |c| c.recovered_slots == 3 && c.recovering == 0),
        "{:?}",
        pool.counters()
    );
    assert_delivered_once(&srv, 3);
    let c = pool.counters();
    assert_eq!((c.recoveries_given_up, c.capacity), (0, 3));
    for i in 0..3 {
        assert!(!held(sf.path(), i), "w-{i} released after its recovery");
    }
    pool.close();
}

#[test]
fn rule6_recoveries_run_at_most_the_cap_at_once() {
    let sf = tempfile::tempdir().unwrap();
    strand_slots(sf.path(), 4);
    let addr = dead_addr();
    let pool = SenderPool::new(&conf(addr, sf.path(), 2, ""), sizes(4)).unwrap();
    assert!(
        pool.wait_for(WAIT, |c| c.recovering == 2
            && c.recoveries_queued == 2
            && c.created == 2),
        "{:?}",
        pool.counters()
    );
    // Lowest indices first; the queued ones are not even opened.
    let locked: Vec<bool> = (0..4).map(|i| held(sf.path(), i)).collect();
    assert_eq!(locked, [true, true, false, false]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(server(ServerConfig::new(addr)));
    assert!(
        pool.wait_for(WAIT, |c| c.recovered_slots == 4
            && c.recovering == 0
            && c.recoveries_queued == 0),
        "{:?}",
        pool.counters()
    );
    assert_eq!(
        pool.counters().recovering_peak,
        2,
        "never more than the cap"
    );
    assert_delivered_once(&srv, 4);
    pool.close();
}

#[test]
fn rule6_a_borrow_never_gets_an_index_under_recovery() {
    let sf = tempfile::tempdir().unwrap();
    strand_slots(sf.path(), 2);
    let addr = dead_addr();
    // `initial_connect_retry=async`: a borrow succeeds while the server is
    // down, so only the index decides what it gets.
    let pool = SenderPool::new(
        &conf(addr, sf.path(), 2, "initial_connect_retry=async;"),
        sizes(3),
    )
    .unwrap();
    assert!(
        pool.wait_for(WAIT, |c| c.recovering == 2),
        "{:?}",
        pool.counters()
    );
    let a = pool.borrow().unwrap();
    assert_eq!(
        a.slot_id().unwrap(),
        "w-2",
        "w-0 and w-1 are under recovery"
    );
    // No free index: the borrow waits its timeout, as when all are lent.
    match pool.borrow() {
        Err(PoolError::BorrowTimeout { capacity: 3, .. }) => {}
        other => panic!("expected a borrow timeout, got {other:?}"),
    }
    assert_eq!(pool.counters().recovering, 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(server(ServerConfig::new(addr)));
    assert!(
        pool.wait_for(WAIT, |c| c.recovered_slots == 2 && c.recovering == 0),
        "{:?}",
        pool.counters()
    );
    assert_delivered_once(&srv, 2);
    // The settled index is lent again, and its sender replays nothing.
    let mut b = pool.borrow().unwrap();
    assert_eq!(b.slot_id().unwrap(), "w-0");
    write_frame(&mut b, "t0", 100, 110);
    let fsn = b.counters().published_fsn.unwrap();
    b.wait_acked(fsn, WAIT).unwrap();
    let mut want: Vec<i64> = (0..FRAMES * 10).collect();
    want.extend(100..110);
    assert_eq!(server_ns(&srv, "t0"), want, "no recovered frame sent twice");
    drop((a, b));
    pool.close();
}

#[test]
fn rule6_close_stops_recoveries_and_releases_locks() {
    let sf = tempfile::tempdir().unwrap();
    strand_slots(sf.path(), 3);
    let pool = SenderPool::new(&conf(dead_addr(), sf.path(), 2, ""), sizes(3)).unwrap();
    assert!(
        pool.wait_for(WAIT, |c| c.recovering == 2 && c.recoveries_queued == 1),
        "{:?}",
        pool.counters()
    );
    // Each running recovery may wait ten minutes: a close that did not
    // stop them would not finish within the (generous) bound.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        pool.close();
        let _ = tx.send(());
    });
    rx.recv_timeout(WAIT)
        .expect("close() stops the recoveries instead of waiting for them");
    for i in 0..3 {
        let slot = sf.path().join(format!("w-{i}"));
        assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free, "w-{i}");
        assert!(has_segments(&slot), "w-{i}: the data stays on disk");
    }
    // The pool lock is released too, and the data was left intact: a new
    // pool with a server delivers all of it exactly once.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(server(ServerConfig::local()));
    let again = SenderPool::new(&conf(srv.local_addr(), sf.path(), 4, ""), sizes(3)).unwrap();
    assert!(
        again.wait_for(WAIT, |c| c.recovered_slots == 3 && c.recovering == 0),
        "{:?}",
        again.counters()
    );
    assert_delivered_once(&srv, 3);
    again.close();
}
