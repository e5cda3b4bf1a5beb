//! D1: every seed of the sweep, run twice, gives the same trace hash.

use sf_io_sim::run_seed;
use sim_tests::{options_for_seed, seeds_from_env, DEFAULT_SWEEP_SEEDS};

#[test]
fn d1_every_sweep_seed_replays_to_the_same_hash() {
    let seeds = seeds_from_env(0..DEFAULT_SWEEP_SEEDS).expect("seed selection");
    let mut differing = Vec::new();
    for &seed in &seeds {
        let options = options_for_seed(seed);
        let a = run_seed(seed, &options);
        let b = run_seed(seed, &options);
        if a.hash != b.hash || a.stats != b.stats {
            differing.push((seed, a.hash, b.hash));
        }
    }
    assert!(
        differing.is_empty(),
        "D1: seeds whose two runs differ (seed, hash, hash): {differing:?}"
    );
}

#[test]
fn d1_different_seeds_give_different_traces() {
    let a = run_seed(1, &options_for_seed(1));
    let b = run_seed(2, &options_for_seed(2));
    assert_ne!(a.hash, b.hash, "the hash must depend on what happened");
}
