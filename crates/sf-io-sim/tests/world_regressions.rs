//! Seeds of the sweep that found sf-core bugs, kept as regressions. Each
//! runs with every fault family on, as the sweep ran it; the comment says
//! what broke.

use sf_io_sim::{run_seed, FaultKind, SimOptions};

fn all_faults() -> SimOptions {
    SimOptions {
        faults: Some(FaultKind::ALL.to_vec()),
        ..SimOptions::default()
    }
}

/// L5: in flush durability a header-only sync of a fresh segment failed;
/// its retry rewrote only the 24 header bytes, the failed fsync had also
/// dropped the frame written beside them in the same page, and the next
/// sync of that frame went out without `rewrite`. `flush()` returned, a
/// host crash lost the frame, and recovery's acknowledgement passed it
/// (S8). Fixed by keeping the rewrite owed until a sync covers everything
/// written to the segment.
#[test]
fn l5_a_partial_rewrite_after_a_failed_sync_keeps_the_rest_owed() {
    let r = run_seed(13704, &all_faults());
    assert!(r.passed(), "{:#?}", r.violations);
    assert!(r.stats.host_crashes > 0, "the scenario needs host crashes");
}
