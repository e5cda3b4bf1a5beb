//! End-to-end runs of the world: a fault-free seed passes every checker, and
//! the same seed gives the same trace hash (D1).

use std::time::Duration;

use sf_io_sim::{run_seed, SimOptions};

fn quiet() -> SimOptions {
    SimOptions {
        faults: Some(vec![]),
        max_duration: Duration::from_secs(5),
        ..SimOptions::default()
    }
}

#[test]
fn fault_free_seeds_pass_and_deliver_every_row() {
    for seed in 0..20 {
        let r = run_seed(seed, &quiet());
        assert!(
            r.passed(),
            "seed={seed}: {:#?}\n{}",
            r.violations,
            r.stats.config
        );
        assert!(r.stats.rows > 0, "seed={seed}: the workload wrote nothing");
        assert!(r.stats.liveness_time.is_some(), "seed={seed}");
    }
}

#[test]
fn d1_same_seed_same_hash() {
    let opts = SimOptions {
        max_duration: Duration::from_secs(5),
        ..SimOptions::default()
    };
    for seed in [1, 7, 42] {
        assert_eq!(
            run_seed(seed, &opts).hash,
            run_seed(seed, &opts).hash,
            "seed={seed}"
        );
    }
}

#[test]
fn the_summary_names_the_seed_and_the_verdict() {
    let r = run_seed(3, &quiet());
    let line = r.summary();
    assert!(line.starts_with("seed=3 PASS hash="), "{line}");
    assert!(line.contains(&format!("{:016x}", r.hash)), "{line}");
}
