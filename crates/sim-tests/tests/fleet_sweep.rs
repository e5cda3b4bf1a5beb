//! The fleet sweep: seeds of the multi-engine world (a foreground sender
//! and its orphan drainers over one `sf_dir`, one set of servers), every
//! per-slot checker and the fleet checks (C3, ORPHAN-*) on; each failure
//! printed with the commands that replay it.
//!
//! `QWP_SIM_SEEDS=COUNT` (or `A..B`) runs a soak; `QWP_SIM_SEED=N` replays
//! one seed.

use sim_tests::{describe_fleet_failure, run_fleet_sweep, seeds_from_env, DEFAULT_FLEET_SEEDS};

#[test]
fn fleet_sweep_every_seed_keeps_every_invariant() {
    let seeds = seeds_from_env(0..DEFAULT_FLEET_SEEDS).expect("seed selection");
    let sweep = run_fleet_sweep(&seeds);
    println!("fleet sweep: {}", sweep.summary());
    for (report, _) in &sweep.failures {
        println!("{}", describe_fleet_failure(report));
    }
    assert!(
        sweep.failures.is_empty(),
        "{} of {} fleet seeds broke an invariant; failing seeds: {:?}",
        sweep.failures.len(),
        sweep.seeds,
        sweep
            .failures
            .iter()
            .map(|(r, _)| r.seed)
            .collect::<Vec<_>>()
    );
}

#[test]
fn d1_fleet_same_seed_same_hash() {
    let seeds = seeds_from_env(1000..1030).expect("seed selection");
    let a = run_fleet_sweep(&seeds);
    let b = run_fleet_sweep(&seeds);
    assert_eq!(a.hashes, b.hashes, "a fleet seed replayed differently");
    let distinct: std::collections::BTreeSet<u64> = a.hashes.iter().map(|h| h.1).collect();
    assert!(
        seeds.len() < 2 || distinct.len() > 1,
        "every seed gave the same hash: the seed does not reach the run"
    );
}
