//! `qwp-sf sim` through the built binary: one contract line per seed, the
//! same hash for the same seed (D1), and argument errors.

mod cli_support;

use cli_support::*;

fn check_line(line: &str, seed: u64) {
    let rest = line
        .strip_prefix(&format!("seed={seed} hash="))
        .unwrap_or_else(|| panic!("{line}"));
    let (hex, verdict) = rest.split_once(' ').unwrap();
    assert_eq!(hex.len(), 16, "{line}");
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{line}"
    );
    assert!(verdict == "ok" || verdict.starts_with("FAIL "), "{line}");
}

#[test]
fn d1_sim_prints_one_line_per_seed_and_replays_the_same_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(
        tmp.path(),
        &["sim", "--seeds", "3..5", "--faults", "drop,connect-fail"],
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    check_line(lines[0], 3);
    check_line(lines[1], 4);
    let all_ok = lines.iter().all(|l| l.ends_with(" ok"));
    assert_eq!(
        out.status.success(),
        all_ok,
        "exit status follows the verdicts"
    );

    // Replaying one seed gives the same line, byte for byte.
    let again = run_in(
        tmp.path(),
        &["sim", "--seed", "4", "--faults", "drop,connect-fail"],
    );
    assert_eq!(stdout(&again), format!("{}\n", lines[1]));
}

#[test]
fn sim_trace_goes_to_stderr_and_keeps_stdout_to_the_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(
        tmp.path(),
        &["sim", "--seed", "2", "--faults", "none", "--trace"],
    );
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    check_line(text.trim_end(), 2);
    assert!(!stderr(&out).is_empty(), "the trace is on stderr");
}

#[test]
fn sim_refuses_an_unknown_fault_and_a_bad_range() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(tmp.path(), &["sim", "--faults", "gremlins"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);
    let out = run_in(tmp.path(), &["sim", "--seeds", "9..2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    // One line per seed: a seed with no exclusive end is refused, not
    // silently skipped with exit 0.
    let out = run_in(tmp.path(), &["sim", "--seed", "18446744073709551615"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
}

#[test]
fn d1_sim_fleet_prints_the_contract_line_and_replays_the_same_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(tmp.path(), &["sim", "--fleet", "--seeds", "1..3"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    check_line(lines[0], 1);
    check_line(lines[1], 2);
    let all_ok = lines.iter().all(|l| l.ends_with(" ok"));
    assert_eq!(
        out.status.success(),
        all_ok,
        "exit status follows the verdicts"
    );
    let again = run_in(tmp.path(), &["sim", "--fleet", "--seed", "2"]);
    assert_eq!(stdout(&again), format!("{}\n", lines[1]));
    // The fleet world is another world: its hash is not the single engine's.
    let single = run_in(tmp.path(), &["sim", "--seed", "2"]);
    assert_ne!(stdout(&single), stdout(&again));
}
