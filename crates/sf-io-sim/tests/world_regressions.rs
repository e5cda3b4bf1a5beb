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

/// LIVENESS (a simulator model bug, not an engine one): on a slow host the
/// service slots of an abandoned connection's queued messages were kept, so
/// each new connection waited behind the previous one's backlog, hit the
/// ACK timeout before its first OK, and added its own window to the
/// backlog (110 timeouts in a row). A server drops the unread input of a
/// socket it found closed; the network now frees those slots on close.
#[test]
fn liveness_an_abandoned_connections_backlog_does_not_starve_the_next() {
    let r = run_seed(40672, &all_faults());
    assert!(r.passed(), "{:#?}", r.violations);
}

/// S8 across two host crashes: the first lost acknowledged but unsynced
/// frames, so FSNs were reused and the stale `.ack-watermark` (54) was
/// ignored as above the published FSN and rewritten to 40 at open, without
/// an fsync. The second host crash lost that rewrite while the new life's
/// frames 41..57 (synced, flush durability) survived; the stale 54 then
/// vouched for them and frames 41..54 would never have been sent. The open
/// rewrite is now durable (fsync, or a directory fsync after a removal).
#[test]
fn s8_the_open_watermark_rewrite_survives_a_second_host_crash() {
    let r = run_seed(135544, &SimOptions::default());
    assert!(r.passed(), "{:#?}", r.violations);
    assert!(
        r.stats.host_crashes > 1,
        "the scenario needs two host crashes"
    );
}
