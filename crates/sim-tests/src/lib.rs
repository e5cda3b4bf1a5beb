//! Seed sweeps, named regression scenarios from the DESIGN §6 catalogue,
//! determinism checks and end-to-end tests of the real network path under a
//! simulated network.
//!
//! The tests live under `tests/`; this library holds only what they share:
//! which seeds to run (environment variables for soak runs), which fault mix
//! a seed runs under, how to run a sweep and how to print a failure so it
//! can be replayed with one command.
//!
//! * `QWP_SIM_SEED=N` runs seed `N` alone;
//! * `QWP_SIM_SEEDS=COUNT` runs seeds `0..COUNT`, `QWP_SIM_SEEDS=A..B` runs
//!   `A..B`;
//! * otherwise the test's default range.

use std::ops::Range;
use std::time::{Duration, Instant};

use sf_io_sim::{run_fleet_seed, run_seed, FaultKind, Report, SimOptions};

/// Seeds in the default CI sweep (and in the determinism check, which runs
/// each of them twice).
pub const DEFAULT_SWEEP_SEEDS: u64 = 2000;

/// The seeds to run: from `QWP_SIM_SEED` / `QWP_SIM_SEEDS`, else `default`.
/// An unparsable variable is an error, not a silent fallback.
pub fn seeds_from_env(default: Range<u64>) -> Result<Vec<u64>, String> {
    if let Ok(one) = std::env::var("QWP_SIM_SEED") {
        let n = one
            .trim()
            .parse::<u64>()
            .map_err(|e| format!("QWP_SIM_SEED={one:?}: {e}"))?;
        return Ok(vec![n]);
    }
    match std::env::var("QWP_SIM_SEEDS") {
        Ok(spec) => parse_seeds(&spec).map(Iterator::collect),
        Err(_) => Ok(default.collect()),
    }
}

/// Parses `COUNT` (seeds `0..COUNT`) or `A..B`.
pub fn parse_seeds(spec: &str) -> Result<Range<u64>, String> {
    let spec = spec.trim();
    let num = |s: &str| {
        s.trim()
            .parse::<u64>()
            .map_err(|e| format!("QWP_SIM_SEEDS={spec:?}: {e}"))
    };
    match spec.split_once("..") {
        Some((a, b)) => {
            let (a, b) = (num(a)?, num(b)?);
            if a > b {
                return Err(format!("QWP_SIM_SEEDS={spec:?}: empty range"));
            }
            Ok(a..b)
        }
        None => Ok(0..num(spec)?),
    }
}

/// The fault mix seed `seed` runs under in the sweep. Most seeds are swarm
/// runs (each enables a random subset of fault families at random rates);
/// one in eight enables every family, and one in eight a single family
/// (cycling through [`FaultKind::ALL`]), so each family is also seen alone.
pub fn faults_for_seed(seed: u64) -> Option<Vec<FaultKind>> {
    match seed % 8 {
        0 => Some(FaultKind::ALL.to_vec()),
        1 => {
            let i = (seed / 8) as usize % FaultKind::ALL.len();
            FaultKind::ALL.get(i).map(|k| vec![*k])
        }
        _ => None,
    }
}

/// The options seed `seed` runs with in the sweep.
pub fn options_for_seed(seed: u64) -> SimOptions {
    SimOptions {
        faults: faults_for_seed(seed),
        ..SimOptions::default()
    }
}

/// The commands that replay `seed` exactly as the sweep ran it.
pub fn replay_commands(seed: u64, options: &SimOptions) -> String {
    let faults = match &options.faults {
        None => String::new(),
        Some(list) => format!(
            " --faults {}",
            if list.is_empty() {
                "none".to_owned()
            } else {
                list.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            }
        ),
    };
    format!(
        "  QWP_SIM_SEED={seed} cargo test -p sim-tests --test sweep -- --nocapture\n  cargo run -p sf-cli -- sim --seed {seed}{faults}"
    )
}

/// A failure, printed for a human: the seed, how to replay it, the first
/// violations and the run's configuration.
pub fn describe_failure(report: &Report, options: &SimOptions) -> String {
    let mut s = format!(
        "seed={} FAILED with {} violation(s) (trace hash {:016x}); replay with:\n{}\n",
        report.seed,
        report.violations.len(),
        report.hash,
        replay_commands(report.seed, options)
    );
    for v in report.violations.iter().take(8) {
        s.push_str(&format!("  {v}\n"));
    }
    if report.violations.len() > 8 {
        s.push_str(&format!("  … {} more\n", report.violations.len() - 8));
    }
    s.push_str(&format!(
        "  faults: {:?}\n  config: {}\n",
        report
            .stats
            .faults
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>(),
        report.stats.config
    ));
    s
}

/// What a sweep did.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Seeds run.
    pub seeds: u64,
    /// The failing reports, with the options they ran under.
    pub failures: Vec<(Report, SimOptions)>,
    /// Trace hash per seed, in run order.
    pub hashes: Vec<(u64, u64)>,
    /// Virtual time simulated, all seeds.
    pub virtual_time: Duration,
    /// Wall time taken.
    pub wall: Duration,
    /// Rows written, all seeds.
    pub rows: u64,
    /// Crashes (process and host), all seeds.
    pub crashes: u64,
}

impl Sweep {
    /// Simulated seconds per wall second.
    pub fn speed(&self) -> f64 {
        self.virtual_time.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }

    /// Seeds per wall minute.
    pub fn seeds_per_minute(&self) -> f64 {
        self.seeds as f64 * 60.0 / self.wall.as_secs_f64().max(1e-9)
    }

    /// One line for the test log.
    pub fn summary(&self) -> String {
        format!(
            "{} seeds, {} failing; {:.1} s wall, {:.0} s virtual: {:.0} simulated s per wall s, {:.0} seeds/min; {} rows, {} crashes",
            self.seeds,
            self.failures.len(),
            self.wall.as_secs_f64(),
            self.virtual_time.as_secs_f64(),
            self.speed(),
            self.seeds_per_minute(),
            self.rows,
            self.crashes
        )
    }
}

/// Runs every seed with [`options_for_seed`].
pub fn run_sweep(seeds: &[u64]) -> Sweep {
    let start = Instant::now();
    let mut sweep = Sweep::default();
    for &seed in seeds {
        let options = options_for_seed(seed);
        let report = run_seed(seed, &options);
        sweep.seeds += 1;
        sweep.virtual_time += report.stats.virtual_time;
        sweep.rows += report.stats.rows;
        sweep.crashes += report.stats.process_crashes + report.stats.host_crashes;
        sweep.hashes.push((seed, report.hash));
        if !report.passed() {
            sweep.failures.push((report, options));
        }
    }
    sweep.wall = start.elapsed();
    sweep
}

/// Fleet seeds (a foreground sender and its orphan drainers, one
/// `sf_dir`) in the default CI sweep.
pub const DEFAULT_FLEET_SEEDS: u64 = 400;

/// The commands that replay fleet seed `seed` (fleet sweeps run the
/// default options: swarm faults).
pub fn fleet_replay_commands(seed: u64) -> String {
    format!(
        "  QWP_SIM_SEED={seed} cargo test -p sim-tests --test fleet_sweep -- --nocapture\n  cargo run -p sf-cli -- sim --fleet --seed {seed}"
    )
}

/// A fleet failure, printed for a human: the seed, how to replay it, the
/// first violations.
pub fn describe_fleet_failure(report: &Report) -> String {
    let mut s = format!(
        "fleet seed={} FAILED with {} violation(s) (trace hash {:016x}); replay with:\n{}\n",
        report.seed,
        report.violations.len(),
        report.hash,
        fleet_replay_commands(report.seed)
    );
    for v in report.violations.iter().take(8) {
        s.push_str(&format!("  {v}\n"));
    }
    if report.violations.len() > 8 {
        s.push_str(&format!("  … {} more\n", report.violations.len() - 8));
    }
    s.push_str(&format!(
        "  faults: {:?}\n  config: {}\n",
        report
            .stats
            .faults
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>(),
        report.stats.config
    ));
    s
}

/// Runs every fleet seed with the default options.
pub fn run_fleet_sweep(seeds: &[u64]) -> Sweep {
    let start = Instant::now();
    let mut sweep = Sweep::default();
    let options = SimOptions::default();
    for &seed in seeds {
        let report = run_fleet_seed(seed, &options);
        sweep.seeds += 1;
        sweep.virtual_time += report.stats.virtual_time;
        sweep.rows += report.stats.rows;
        sweep.crashes += report.stats.process_crashes + report.stats.host_crashes;
        sweep.hashes.push((seed, report.hash));
        if !report.passed() {
            sweep.failures.push((report, options.clone()));
        }
    }
    sweep.wall = start.elapsed();
    sweep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_specs_parse() {
        assert_eq!(parse_seeds("5"), Ok(0..5));
        assert_eq!(parse_seeds("10..20"), Ok(10..20));
        assert!(parse_seeds("x").is_err());
        assert!(parse_seeds("9..3").is_err());
    }

    #[test]
    fn every_family_runs_alone_somewhere_in_the_default_sweep() {
        for k in FaultKind::ALL {
            assert!(
                (0..DEFAULT_SWEEP_SEEDS).any(|s| faults_for_seed(s) == Some(vec![k])),
                "{k} never runs alone"
            );
        }
    }

    #[test]
    fn replay_commands_name_the_fault_mix() {
        let o = options_for_seed(8);
        assert!(replay_commands(8, &o).contains("--faults process-crash,"));
        let o = options_for_seed(3);
        assert!(replay_commands(3, &o).ends_with("sim --seed 3"));
    }
}
