//! The step-level API named scenarios build on: append, flush, crash and
//! restart through recovery, close and reopen, with every checker on and
//! the delivery proof at the end.

use std::num::NonZeroUsize;
use std::time::Duration;

use sf_core::durability::DurabilityMode;
use sf_core::engine::EngineConfig;
use sf_core::storage::StorageConfig;
use sf_core::Fsn;
use sf_io_sim::{CrashKind, Sim, SimOptions};

fn quiet() -> SimOptions {
    SimOptions {
        faults: Some(vec![]),
        ..SimOptions::default()
    }
}

fn files(durability: DurabilityMode) -> EngineConfig {
    let storage = StorageConfig {
        segment_bytes: 4096,
        max_total_bytes: 4 * 4096,
        durability,
        ..StorageConfig::files()
    };
    EngineConfig::new(storage, NonZeroUsize::MIN)
}

fn assert_clean(sim: Sim) {
    let report = sim.finish();
    assert!(report.passed(), "{:#?}", report.violations);
}

#[test]
fn c1_flushed_rows_survive_a_process_crash_and_reach_the_server() {
    let mut sim = Sim::with_config(1, &quiet(), files(DurabilityMode::Memory));
    // Appended and flushed before any connection: only the log holds them.
    for _ in 0..5 {
        sim.append_rows(3).expect("append");
    }
    assert_eq!(sim.flush().expect("flush"), Some(Fsn(4)));
    sim.crash(CrashKind::Process).expect("the slot reopens");
    assert_eq!(
        sim.engine().and_then(|e| e.published_fsn()),
        Some(Fsn(4)),
        "S1: a process crash loses nothing over files"
    );
    assert!(sim.run_until_idle(), "replayed and acknowledged");
    let rows = sim.delivery_log().counts.len();
    assert_eq!(rows, 15, "every row reached the server");
    assert_clean(sim);
}

#[test]
fn l1_flush_durability_survives_a_host_crash() {
    let mut sim = Sim::with_config(2, &quiet(), files(DurabilityMode::Flush));
    sim.set_io_latency(Duration::from_millis(3));
    for _ in 0..4 {
        sim.append_rows(2).expect("append");
    }
    sim.flush().expect("flush");
    let durable = sim.engine().and_then(|e| e.durable_fsn());
    assert_eq!(durable, Some(Fsn(3)), "C1: flush returned once synced");
    sim.crash(CrashKind::Host).expect("the slot reopens");
    assert!(
        sim.engine().and_then(|e| e.published_fsn()) >= Some(Fsn(3)),
        "L1: durable frames survive a host crash"
    );
    assert!(sim.run_until_idle());
    assert_clean(sim);
}

#[test]
fn c2_close_drains_and_reopen_continues_fsns() {
    let mut sim = Sim::with_config(3, &quiet(), files(DurabilityMode::Memory));
    assert!(sim.run_until(
        |s| s.engine().is_some_and(|e| matches!(
            e.connection_state(),
            sf_core::engine::ConnectionState::Connected { .. }
        )),
        Duration::from_secs(5)
    ));
    sim.append_rows(2).expect("append");
    sim.flush().expect("flush");
    let (result, drained) = sim.close().expect("an engine was open");
    assert!(result.is_ok() && drained, "C2: drained before release");
    assert!(sim.engine().is_none());
    sim.reopen().expect("reopens");
    assert_eq!(
        sim.append_rows(1).expect("append"),
        Fsn(1),
        "S1: FSNs continue after a clean close"
    );
    sim.flush().expect("flush");
    assert!(sim.run_until_idle());
    assert_clean(sim);
}

#[test]
fn memory_backing_restarts_empty_and_the_checker_excuses_the_loss() {
    let config = EngineConfig::new(StorageConfig::memory(), NonZeroUsize::MIN);
    let mut sim = Sim::with_config(4, &quiet(), config);
    sim.append_rows(2).expect("append");
    sim.flush().expect("flush");
    sim.crash(CrashKind::Process).expect("memory reopens empty");
    assert_eq!(sim.engine().and_then(|e| e.published_fsn()), None);
    assert_clean(sim);
}
