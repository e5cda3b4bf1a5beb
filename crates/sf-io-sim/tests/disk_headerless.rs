//! A process crash keeps the page cache, so recovery must always open
//! (S1, S3). These tests hold that for a frame write that fails while it
//! installs a segment: the adapter writes the header first and stops at
//! its failure, so no frame byte may land in a file whose header did not.

mod disk_support;

use disk_support::{config, Rig};
use sf_core::durability::DurabilityMode;
use sf_core::Fsn;
use sf_io_sim::disk::DiskOp;
use sf_io_sim::{CrashKind, DiskFaults, SimRng};

/// A failed install write whose unlink also failed leaves the file behind
/// at a process crash; it must hold either a header or nothing at all, so
/// the next life opens. Over many seeds, both sides of the simulator's
/// "did the header land" draw are taken.
#[test]
fn s3_process_crash_after_failed_install_write_opens() {
    let (mut header_lost, runs) = (0, 64);
    for seed in 0..runs {
        let mut rig = Rig::new(seed, DiskFaults::none(), config(DurabilityMode::Memory));
        rig.disk.fail_next(DiskOp::WriteFrame);
        rig.disk.fail_next(DiskOp::Unlink);
        assert!(
            rig.append(300).is_err(),
            "seed {seed}: the injected write fails"
        );
        // The first spare (gen 0) was being installed; its unlink failed
        // and the retry is still pending, so the crash finds the file.
        let image = rig
            .disk
            .volatile_image("sf-0000000000000000.sfa")
            .unwrap_or_else(|| panic!("seed {seed}: the failed spare is still there"));
        if image.iter().take(24).all(|&b| b == 0) {
            header_lost += 1;
        }
        rig.disk.crash(CrashKind::Process);
        rig.reopen()
            .unwrap_or_else(|e| panic!("seed {seed}: refused after a process crash: {e}"));
        rig.append(40).expect("the next life appends");
    }
    assert!(
        header_lost > 0 && header_lost < runs,
        "both sides of the header draw are taken ({header_lost} of {runs} lost it)"
    );
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Append(usize),
    Ack(u8),
    ProcessCrash,
    HostCrash,
}

/// The saved proptest case (disk_crash.proptest-regressions, seed
/// 11656584600231189059): at op 34 the first frame of the spare
/// `sf-…05.sfa` fails to write with its header not landed but its
/// length and payload landed, the unlink of that spare fails too, and
/// the process crash at op 35 found header-less data.
#[test]
fn s3_process_crash_after_failed_install_write_opens_saved_case() {
    use Op::*;
    let seed = 11_656_584_600_231_189_059_u64;
    let ops = [
        HostCrash,
        Append(993),
        Ack(0),
        Append(719),
        HostCrash,
        Append(952),
        ProcessCrash,
        Append(427),
        ProcessCrash,
        Append(385),
        Ack(0),
        Append(1410),
        Append(891),
        Ack(0),
        Append(1281),
        HostCrash,
        ProcessCrash,
        Append(12),
        HostCrash,
        Append(1145),
        Append(12),
        HostCrash,
        Append(12),
        Append(12),
        ProcessCrash,
        Append(12),
        Append(59),
        ProcessCrash,
        Append(12),
        Ack(110),
        Append(1160),
        Append(210),
        HostCrash,
        HostCrash,
        Append(12),
        ProcessCrash,
    ];
    let mut f = DiskFaults::random(&mut SimRng::new(seed));
    f.listing_fail = 0;
    f.stat_fail = 0;
    f.read_fail = 0;
    f.bit_flip = 0;
    let mut rig = Rig::new(seed, f, config(DurabilityMode::Memory));
    for (i, op) in ops.into_iter().enumerate() {
        match op {
            Append(len) => {
                let _ = rig.append(len);
            }
            Ack(frac) => {
                let Some(p) = rig.s.published_fsn() else {
                    continue;
                };
                let lo = rig.s.acked_fsn().map_or(0, |a| a.get() + 1);
                if lo <= p.get() {
                    rig.ack(Fsn(lo + (p.get() - lo) * u64::from(frac) / 255));
                }
            }
            ProcessCrash => {
                if let Err(e) = rig.crash_and_reopen(CrashKind::Process) {
                    panic!("op {i}: recovery refused after a process crash: {e}");
                }
            }
            HostCrash => {
                // This case's host crashes all reopen; were one refused,
                // the case would no longer reach its process crash.
                if let Err(e) = rig.crash_and_reopen(CrashKind::Host) {
                    panic!("op {i}: host crash refused, the case changed: {e}");
                }
            }
        }
    }
}
