//! Orphan drain at the core level (sf-client §18.2: a drainer "opens its
//! own engine + WebSocket connection"): a drainer engine and the
//! foreground engine share nothing. Each has its own reconnect loop,
//! backoff jitter stream, host tracker and outage budget, so host failures
//! fed to one never change what the other does.

mod engine_harness;

use engine_harness::{config, World};
use sf_core::engine::{ConnectionState, EngineConfig, Output};
use sf_core::reconnect::InitialConnectRetry;
use sf_core::recovery::RecoveredSlot;

/// The drainer's configuration: two hosts, first connect retried in the
/// background (as `Config::for_orphan_drainer` sets it).
fn drainer_config() -> EngineConfig {
    let mut c = config(2);
    c.initial_connect_retry = InitialConnectRetry::Async;
    c
}

/// What a run of the drainer did: every connect as (virtual ns, host),
/// until its outage budget ends it.
type Schedule = Vec<(u64, usize)>;

/// One step of a world whose every connect fails: answers the connects it
/// asked for, or fires its next timer. Records the connects in `sched`.
/// Returns false once the engine has latched a terminal error.
fn step_failing(w: &mut World, sched: &mut Schedule) -> bool {
    if w.engine.last_terminal_error().is_some() {
        return false;
    }
    let outs = w.take();
    let hosts = World::connects(&outs);
    if hosts.is_empty() {
        assert!(w.fire_next_timeout(), "W5: no connect and no timer");
    }
    for h in hosts {
        sched.push((w.now.as_nanos(), h));
        w.connect_failed(h);
    }
    true
}

/// Runs a drainer alone until its budget ends it.
fn drainer_alone(seed: u64) -> Schedule {
    let mut d = World::with_slot(drainer_config(), RecoveredSlot::empty(), seed);
    let mut sched = Schedule::new();
    let mut steps = 0;
    while step_failing(&mut d, &mut sched) {
        steps += 1;
        assert!(steps < 100_000, "the outage budget never ended the drainer");
    }
    sched
}

/// §18.2: a drainer whose hosts all fail walks its own backoff and
/// exhausts its own budget (→ `.failed` in the adapter) while the
/// foreground, interleaved step by step with it and fed its own failures,
/// keeps its own tracker state and connects.
#[test]
fn s18_2_drainer_and_foreground_reconnect_loops_are_independent() {
    // The schedule depends on the jitter stream, so the equality below
    // would notice a stream shared with (and advanced by) the foreground.
    assert_ne!(drainer_alone(1), drainer_alone(7));
    for seed in [1u64, 7, 42, 0xdead_beef] {
        let alone = drainer_alone(seed);
        assert!(alone.len() > 2, "several rounds before the budget ends");

        let mut d = World::with_slot(drainer_config(), RecoveredSlot::empty(), seed);
        // The foreground: same seed on purpose (a shared jitter stream or
        // tracker would show up as a changed drainer schedule).
        let mut f = World::with_slot(drainer_config(), RecoveredSlot::empty(), seed);
        let mut beside = Schedule::new();
        let mut fg_failures = 0;
        let mut steps = 0;
        while step_failing(&mut d, &mut beside) {
            steps += 1;
            assert!(steps < 100_000);
            // The foreground fails its first three connects, then stays up.
            if !matches!(
                f.engine.connection_state(),
                ConnectionState::Connected { .. }
            ) {
                let outs = f.take();
                match World::connects(&outs).first() {
                    Some(&h) if fg_failures < 3 => {
                        fg_failures += 1;
                        f.connect_failed(h);
                    }
                    Some(&h) => f.accept(h),
                    None => assert!(f.fire_next_timeout()),
                }
            }
        }
        assert_eq!(
            beside, alone,
            "seed {seed}: the foreground's failures changed the drainer's schedule"
        );
        assert!(d.engine.last_terminal_error().is_some(), "drainer gave up");
        // The drainer's give-up is not the foreground's.
        assert!(f.engine.last_terminal_error().is_none());
        assert!(matches!(
            f.engine.connection_state(),
            ConnectionState::Connected { .. }
        ));
        assert_eq!(fg_failures, 3);
        // And the foreground still moves data.
        let fsn = f.append(1)[0];
        f.take();
        f.ok(0, &[("t", 1)]);
        assert_eq!(f.acked(), Some(fsn.get()));
    }
}

/// A drainer's give-up does not consume anything of a later drainer: a
/// fresh engine on the same slot starts with a full budget and a fresh
/// tracker (first connect at once, to host 0).
#[test]
fn s18_2_a_new_drainer_starts_with_fresh_reconnect_state() {
    let first = drainer_alone(3);
    let mut d = World::with_slot(drainer_config(), RecoveredSlot::empty(), 3);
    let outs = d.take();
    assert_eq!(World::connects(&outs), vec![0]);
    assert!(d.take().iter().all(|o| !matches!(o, Output::Notify(_))));
    assert_eq!(d.engine.total_reconnect_attempts(), 0);
    assert_eq!(first.first().map(|&(_, h)| h), Some(0));
}
