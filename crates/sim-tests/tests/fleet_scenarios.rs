//! Named orphan-drain scenarios (sf-client §18.2, §5.2, §20) through the
//! fleet's step-level API: real engines, real (simulated) disks and
//! network, one `sf_dir`, the pure `sf_core::orphans::DrainScheduler`
//! deciding. Every scenario ends by asserting that no checker fired.

use std::num::NonZeroUsize;
use std::time::Duration;

use sf_core::backoff::BackoffConfig;
use sf_core::engine::EngineConfig;
use sf_core::orphans::OwnSlots;
use sf_core::storage::StorageConfig;
use sf_io_sim::disk::DiskOp;
use sf_io_sim::fleet::{DrainerFault, HistoryEnd, LockHolder};
use sf_io_sim::{CrashKind, DiskFaults, Fleet, NetFaults, SimOptions};

fn config() -> EngineConfig {
    let mut storage = StorageConfig::files().with_segment_bytes(4096);
    storage.max_total_bytes = 4096 * 16;
    let mut c = EngineConfig::new(storage, NonZeroUsize::MIN);
    c.backoff = BackoffConfig::new(
        Duration::from_millis(100),
        Duration::from_millis(800),
        Duration::from_secs(3),
    )
    .unwrap();
    c
}

fn fleet(seed: u64, max_drainers: usize) -> Fleet {
    Fleet::with_config(seed, &SimOptions::default(), config(), max_drainers)
}

fn own() -> OwnSlots {
    OwnSlots::Single("app".into())
}

/// Ends the run with the full delivery proof (`finish`) and asserts that
/// no checker fired.
fn assert_clean(f: Fleet) {
    let report = f.finish();
    assert!(
        report.violations.is_empty(),
        "violations: {:#?}",
        report.violations
    );
}

fn all_acked(f: &Fleet, slot: &str) -> bool {
    f.tree().get(slot).is_some_and(|s| s.checker.all_acked())
}

fn failed(f: &Fleet, slot: &str) -> bool {
    f.tree().get(slot).is_some_and(|s| s.failed().is_some())
}

#[test]
fn s18_2_held_lock_is_skipped_then_drained_on_a_later_scan() {
    let mut f = fleet(1, 2);
    assert!(f.add_orphan("o1", 3, 2, HistoryEnd::Crash));
    assert!(!all_acked(&f, "o1"), "the orphan holds unacknowledged data");
    assert!(f.hold_lock_outside("o1"));
    f.start_foreground("app", own());
    assert!(f.run_until_drains_settle(Duration::from_secs(10)));
    let c = f.drain_counters().unwrap();
    assert_eq!((c.skipped, c.succeeded, c.failed), (1, 0, 0), "{c:?}");
    assert!(!failed(&f, "o1"), "a held lock is not a give-up");
    assert_eq!(
        f.tree().get("o1").unwrap().lock(),
        Some(LockHolder::Outside)
    );
    assert!(!all_acked(&f, "o1"));

    f.release_outside("o1");
    f.rescan();
    assert!(f.run_until_drains_settle(Duration::from_secs(30)));
    let c = f.drain_counters().unwrap();
    assert_eq!((c.succeeded, c.failed), (1, 0), "{c:?}");
    assert!(all_acked(&f, "o1"));
    assert_eq!(f.tree().get("o1").unwrap().lock(), None);
    assert_clean(f);
}

#[test]
fn s5_2_partitioned_drainer_gives_up_with_failed_while_the_foreground_ingests() {
    let mut f = fleet(2, 2);
    // Only the drainer's own client is faulted: a foreground halt would be
    // another engine's traffic reaching it (ORPHAN-ISOLATION).
    f.set_quiet_foreground(true);
    assert!(f.add_orphan("o1", 4, 2, HistoryEnd::Close));
    f.script_drainer("o1", DrainerFault::Partition(Duration::from_secs(600)));
    f.start_foreground("app", own());
    // The foreground keeps ingesting while its drainer retries and runs
    // out of its reconnect budget (3 s).
    let mut flushed = 0;
    for _ in 0..40 {
        f.append_rows(3).unwrap();
        f.flush().unwrap();
        flushed += 1;
        f.run_for(Duration::from_millis(200));
        if failed(&f, "o1") {
            break;
        }
    }
    assert!(failed(&f, "o1"), "the budget ran out: .failed written");
    assert!(flushed > 5, "the foreground ingested meanwhile");
    let fg = f.foreground().unwrap();
    assert!(fg.last_terminal_error().is_none(), "ORPHAN-ISOLATION");
    assert_eq!(fg.acked_fsn(), fg.published_fsn());
    let c = f.drain_counters().unwrap();
    assert_eq!((c.failed, c.succeeded), (1, 0), "{c:?}");
    assert_eq!(
        f.tree().get("o1").unwrap().lock(),
        None,
        "released after .failed"
    );
    assert!(!all_acked(&f, "o1"), "the data stays for an operator");

    // The next scan respects .failed: no drainer starts on it.
    let started = f.fleet_stats().drainers_started;
    f.rescan();
    assert!(f.run_until_drains_settle(Duration::from_secs(10)));
    assert_eq!(f.fleet_stats().drainers_started, started);
    f.append_rows(1).unwrap();
    f.flush().unwrap();
    assert_clean(f);
}

#[test]
fn s5_2_corrupt_orphan_ends_failed() {
    let mut f = fleet(3, 2);
    assert!(f.add_orphan("o1", 3, 2, HistoryEnd::Crash));
    assert!(f.add_orphan("o2", 3, 2, HistoryEnd::Crash));
    assert!(f.corrupt("o1"));
    f.start_foreground("app", own());
    assert!(f.run_until_drains_settle(Duration::from_secs(30)));
    assert!(failed(&f, "o1"), "a permanent refusal gives up");
    assert!(!failed(&f, "o2"));
    assert!(all_acked(&f, "o2"), "the healthy sibling drains");
    let c = f.drain_counters().unwrap();
    assert_eq!((c.failed, c.succeeded), (1, 1), "{c:?}");
    assert_clean(f);
}

#[test]
fn transient_refusal_is_retried_and_never_marks_failed() {
    let mut f = fleet(4, 1);
    assert!(f.add_orphan("o1", 3, 2, HistoryEnd::Crash));
    f.tree_mut()
        .get_mut("o1")
        .unwrap()
        .disk
        .fail_next(DiskOp::List);
    f.start_foreground("app", own());
    assert!(f.run_until_drains_settle(Duration::from_secs(30)));
    assert_eq!(f.fleet_stats().drain_refusals, 1, "the listing failed once");
    assert!(!failed(&f, "o1"), "a transient refusal is not a give-up");
    assert!(all_acked(&f, "o1"), "retried and drained");
    assert_clean(f);
}

fn drain_many(cap: usize) {
    let mut f = fleet(10 + cap as u64, cap);
    let names = ["o1", "o2", "o3", "o4", "o5", "app-3"];
    for n in names {
        assert!(f.add_orphan(n, 5, 2, HistoryEnd::Crash));
    }
    // Slow acknowledgements so drainers overlap.
    f.set_faults(
        DiskFaults::none(),
        NetFaults {
            service_time: Duration::from_millis(20),
            ..NetFaults::none()
        },
    );
    f.start_foreground("app", own());
    let mut most = 0;
    let settled = f.run_until(
        |f| {
            most = most.max(f.active_drainers());
            f.active_drainers() == 0 && f.drain_counters().is_some_and(|c| c.succeeded == 6)
        },
        Duration::from_secs(60),
    );
    assert!(settled, "{:?}", f.drain_counters());
    assert!(most <= cap, "ORPHAN-CAP: {most} > {cap}");
    assert_eq!(most, cap.min(names.len()), "the cap is used");
    for n in names {
        assert!(all_acked(&f, n), "{n}");
        assert!(!failed(&f, n), "{n}");
    }
    assert_clean(f);
}

#[test]
fn orphan_cap_1_drains_every_slot_one_at_a_time() {
    drain_many(1);
}

#[test]
fn orphan_cap_4_drains_every_slot_four_at_a_time() {
    drain_many(4);
}

#[test]
fn drainers_run_their_own_reconnect_loops() {
    let mut f = fleet(5, 2);
    assert!(f.add_orphan("o1", 3, 2, HistoryEnd::Crash));
    assert!(f.add_orphan("o2", 3, 2, HistoryEnd::Crash));
    f.script_drainer("o1", DrainerFault::RefuseConnects(5));
    f.start_foreground("app", own());
    let (mut c1, mut c2) = (0, 0);
    let settled = f.run_until(
        |f| {
            if let Some(n) = f.node_on("o1") {
                c1 = c1.max(n.connects());
            }
            if let Some(n) = f.node_on("o2") {
                c2 = c2.max(n.connects());
            }
            f.drain_counters().is_some_and(|c| c.succeeded == 2)
        },
        Duration::from_secs(30),
    );
    assert!(settled, "{:?}", f.drain_counters());
    assert_eq!(c1, 6, "five refusals, then a connect that worked");
    assert_eq!(c2, 1, "the other drainer's schedule is its own");
    let fg = f.foreground_node().unwrap();
    assert_eq!(fg.connects(), 1, "the foreground saw none of it");
    assert!(all_acked(&f, "o1") && all_acked(&f, "o2"));
    assert_clean(f);
}

#[test]
fn s8_process_crash_mid_drain_readopts_and_resends_nothing_acknowledged() {
    let mut f = fleet(6, 2);
    assert!(f.add_orphan("o1", 30, 3, HistoryEnd::Crash));
    f.set_faults(
        DiskFaults::none(),
        NetFaults {
            service_time: Duration::from_millis(30),
            ..NetFaults::none()
        },
    );
    f.start_foreground("app", own());
    let mid = f.run_until(
        |f| {
            f.node_on("o1")
                .and_then(|n| n.engine())
                .is_some_and(|e| e.acked_fsn().is_some_and(|a| a.get() >= 5))
        },
        Duration::from_secs(10),
    );
    assert!(mid, "the drainer made progress");
    assert!(!all_acked(&f, "o1"), "and is not done");
    f.crash_main(CrashKind::Process);
    assert_eq!(
        f.tree().get("o1").unwrap().lock(),
        None,
        "the lock died with the process"
    );
    f.restart_main();
    assert!(f.run_until_drains_settle(Duration::from_secs(30)));
    assert!(all_acked(&f, "o1"));
    assert_eq!(
        f.tree().get("o1").unwrap().lives(),
        3,
        "history, first drainer, second drainer"
    );
    // S8 (checked by the slot's checker at the re-adoption) and W1/C1 by
    // the delivery proof.
    let report = f.finish();
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}

#[test]
fn owner_close_stops_drainers_keeps_the_data_and_releases_the_locks() {
    let mut f = fleet(7, 4);
    let names = ["o1", "o2", "o3"];
    for n in names {
        assert!(f.add_orphan(n, 3, 2, HistoryEnd::Crash));
        f.script_drainer(n, DrainerFault::Partition(Duration::from_secs(600)));
    }
    f.start_foreground("app", own());
    f.run_for(Duration::from_millis(500));
    assert_eq!(f.active_drainers(), 3);
    f.close_main();
    assert_eq!(f.active_drainers(), 0);
    let c = f.drain_counters().unwrap();
    assert_eq!((c.stopped, c.failed, c.succeeded), (3, 0, 0), "{c:?}");
    for n in names {
        let s = f.tree().get(n).unwrap();
        assert_eq!(s.lock(), None, "{n}");
        assert!(s.failed().is_none(), "{n}: stopping is not a give-up");
        assert!(!s.checker.all_acked(), "{n}: the data stays");
        assert!(
            s.disk.file_names().iter().any(|x| x.ends_with(".sfa")),
            "{n}"
        );
    }
    assert_clean(f);
}

#[test]
fn own_failed_and_invalid_slots_are_never_opened() {
    let mut f = fleet(8, 4);
    for n in ["app", "bad..dir", "done", "ok"] {
        assert!(f.add_orphan(n, 2, 1, HistoryEnd::Crash));
    }
    f.mark_failed("done", "operator");
    f.start_foreground("app", own());
    assert!(f.run_until_drains_settle(Duration::from_secs(30)));
    assert_eq!(f.fleet_stats().drainers_started, 1, "only `ok`");
    assert!(all_acked(&f, "ok"));
    assert!(!all_acked(&f, "bad..dir") && !all_acked(&f, "done"));
    assert_eq!(f.tree().get("done").unwrap().lives(), 1);
    assert_eq!(f.tree().get("bad..dir").unwrap().lives(), 1);
    assert_clean(f);
}

#[test]
fn s8_a_drained_slot_is_released_after_its_watermark_so_a_rescan_resends_nothing() {
    let mut f = fleet(9, 2);
    // Watermark writes complete late: the drainer must wait for its own.
    f.set_io_latency(Duration::from_millis(20));
    assert!(f.add_orphan("o1", 6, 2, HistoryEnd::Crash));
    f.start_foreground("app", own());
    assert!(f.run_until_drains_settle(Duration::from_secs(30)));
    assert!(all_acked(&f, "o1"));
    let sends = f.stats().check.sends;
    assert!(sends >= 6, "the drainer sent the orphan's frames: {sends}");
    // The drained slot keeps its active segment, so the next scan adopts
    // it again; its recovery must find everything acknowledged.
    f.rescan();
    assert!(f.run_until_drains_settle(Duration::from_secs(30)));
    assert_eq!(f.fleet_stats().drained, 2);
    assert_eq!(f.stats().check.sends, sends, "nothing was sent again");
    assert_clean(f);
}

#[test]
fn orphan_isolation_quiet_foreground_that_halts_is_reported_once() {
    let mut f = fleet(11, 2);
    f.set_quiet_foreground(true);
    // The foreground's own first connect is refused for auth: a halt that
    // no quiet fault explains, so the check must fire (exactly once).
    f.network_mut()
        .script_connect(sf_io_sim::ConnectFault::Status(401));
    f.start_foreground("app", own());
    f.run_for(Duration::from_secs(2));
    let v = f.violations();
    let iso: Vec<_> = v
        .iter()
        .filter(|x| x.invariant == "ORPHAN-ISOLATION")
        .collect();
    assert_eq!(iso.len(), 1, "{v:#?}");
}
