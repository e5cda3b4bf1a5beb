//! `qwp-sf sim`: run the deterministic simulation for one seed or a range
//! and print one line per seed (D1: the same seed and build give the same
//! hash).
//!
//! Output contract (stdout, one line per seed, in seed order):
//! - `seed=N hash=HEX ok`
//! - `seed=N hash=HEX FAIL <invariant> <detail>` (the first broken
//!   invariant; the detail on one line)
//!
//! With `--fleet` each seed runs the multi-engine world instead
//! (`sf_io_sim::run_fleet_seed`: a foreground sender and its orphan
//! drainers over one `sf_dir`), with the same line format.
//!
//! HEX is the trace hash as 16 lowercase hex digits. With `--trace` each
//! seed's trace lines go to stderr before its line, so stdout keeps the
//! contract. Exit 1 when any seed fails (with one `error:` line naming how
//! many), else 0.

use std::io::Write;
use std::ops::Range;

use sf_io_sim::{run_fleet_seed, run_seed, FaultKind, Report, SimOptions};

use crate::error::CliError;
use crate::Outcome;

/// Arguments of `qwp-sf sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Run this one seed (the default is seed 0).
    #[arg(long, value_name = "N", conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run seeds A up to B: `A..B` excludes B, `A..=B` includes it.
    #[arg(long, value_name = "A..B", value_parser = parse_seeds)]
    seeds: Option<Range<u64>>,
    /// Comma-separated fault families (`all`, `none`, or names such as
    /// `drop,host-crash`); without it each seed picks a random subset.
    #[arg(long, value_name = "LIST", value_parser = parse_faults)]
    faults: Option<FaultList>,
    /// Print each seed's trace on stderr.
    #[arg(long)]
    trace: bool,
    /// Run the multi-engine world (a foreground sender and its orphan
    /// drainers over one `sf_dir`) instead of the single-engine one.
    #[arg(long)]
    fleet: bool,
}

/// `A..B` (B excluded) or `A..=B` (B included).
pub fn parse_seeds(text: &str) -> Result<Range<u64>, String> {
    let bad = || format!("{text:?} is not a seed range A..B or A..=B");
    let (a, b, inclusive) = match text.split_once("..=") {
        Some((a, b)) => (a, b, true),
        None => {
            let (a, b) = text.split_once("..").ok_or_else(bad)?;
            (a, b, false)
        }
    };
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    let end = if inclusive {
        b.checked_add(1).ok_or_else(bad)?
    } else {
        b
    };
    if end <= a {
        return Err(format!("{text:?} is an empty seed range"));
    }
    Ok(a..end)
}

/// A parsed `--faults` list (a newtype: clap would take a bare `Vec` for
/// a repeated flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultList(pub Vec<FaultKind>);

fn parse_faults(text: &str) -> Result<FaultList, String> {
    FaultKind::parse_list(text)
        .map(FaultList)
        .map_err(|e| e.to_string())
}

/// Runs `sim`.
pub fn run(args: SimArgs) -> Result<Outcome, CliError> {
    let seeds = match (args.seed, args.seeds) {
        (_, Some(range)) => range,
        // u64::MAX has no exclusive end: refuse it rather than run nothing.
        (Some(s), None) => {
            s..s.checked_add(1).ok_or(CliError::Usage(
                "--seed must be below 18446744073709551615".to_owned(),
            ))?
        }
        (None, None) => 0..1,
    };
    let options = SimOptions {
        faults: args.faults.map(|f| f.0),
        keep_trace: args.trace,
        ..SimOptions::default()
    };
    let total = seeds.end - seeds.start;
    let mut failed = 0u64;
    for seed in seeds {
        let report = if args.fleet {
            run_fleet_seed(seed, &options)
        } else {
            run_seed(seed, &options)
        };
        if args.trace {
            let mut err = std::io::stderr().lock();
            for line in &report.trace {
                let _ = writeln!(err, "{line}");
            }
        }
        // The counters behind the verdict, for `-v` (stdout keeps the contract).
        tracing::info!("{}", report.summary());
        if !report.passed() {
            failed += 1;
            for v in report.violations.iter().skip(1) {
                tracing::warn!(seed, "also: {v}");
            }
        }
        crate::print_line(&seed_line(&report))?;
    }
    if failed > 0 {
        return Err(CliError::SimFailed { failed, total });
    }
    Ok(Outcome::Ok)
}

/// The contract line of one seed.
pub fn seed_line(report: &Report) -> String {
    let head = format!("seed={} hash={:016x}", report.seed, report.hash);
    match report.violations.first() {
        None => format!("{head} ok"),
        Some(v) => {
            let detail: String = v
                .detail
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            format!("{head} FAIL {} {detail}", v.invariant)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_exclusive_and_inclusive() {
        assert_eq!(parse_seeds("3..7"), Ok(3..7));
        assert_eq!(parse_seeds("3..=7"), Ok(3..8));
        assert!(parse_seeds("7..3").is_err());
        assert!(parse_seeds("5..5").is_err());
        assert!(parse_seeds("x..3").is_err());
        assert!(parse_seeds("3").is_err());
        assert!(parse_seeds("0..=18446744073709551615").is_err());
    }

    #[test]
    fn d1_seed_line_is_the_contract_format_and_deterministic() {
        let options = SimOptions {
            faults: Some(vec![]),
            ..SimOptions::default()
        };
        let a = run_seed(1, &options);
        let b = run_seed(1, &options);
        assert_eq!(seed_line(&a), seed_line(&b), "same seed, same line");
        let line = seed_line(&a);
        let hex = format!("{:016x}", a.hash);
        assert!(line.starts_with(&format!("seed=1 hash={hex} ")), "{line}");
        assert!(line.ends_with(" ok") || line.contains(" FAIL "), "{line}");
    }
}
