//! The seed sweep: hundreds of seeds across fault mixes, every invariant
//! checker on, each failure printed with the commands that replay it.
//!
//! `QWP_SIM_SEEDS=COUNT` (or `A..B`) runs a soak; `QWP_SIM_SEED=N` replays
//! one seed. The default range is sized for CI (about two minutes at most
//! on the project's machines; it measured far less).

use sim_tests::{describe_failure, run_sweep, seeds_from_env, DEFAULT_SWEEP_SEEDS};

#[test]
fn sweep_every_seed_keeps_every_invariant() {
    let seeds = seeds_from_env(0..DEFAULT_SWEEP_SEEDS).expect("seed selection");
    let sweep = run_sweep(&seeds);
    println!("sweep: {}", sweep.summary());
    for (report, options) in &sweep.failures {
        println!("{}", describe_failure(report, options));
    }
    assert!(
        sweep.failures.is_empty(),
        "{} of {} seeds broke an invariant; failing seeds: {:?}",
        sweep.failures.len(),
        sweep.seeds,
        sweep
            .failures
            .iter()
            .map(|(r, _)| r.seed)
            .collect::<Vec<_>>()
    );
}
