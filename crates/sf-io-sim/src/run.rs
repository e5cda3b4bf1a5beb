//! The library entry point: [`run_seed`] builds a [`Sim`] for a seed, runs
//! the workload under faults, then the liveness phase, proves delivery and
//! returns a [`Report`] (the CLI's `sim` command and the seed sweep call it).

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use crate::check::{CheckStats, Violation};
use crate::disk::{DiskFaults, DiskStats};
use crate::network::{NetFaults, NetStats};
use crate::world::Sim;
use crate::SimRng;

/// A family of faults, for `--faults LIST` and for swarm testing (each
/// seed enables a random subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The client process dies; the page cache survives.
    ProcessCrash,
    /// The client machine dies; only synced bytes are sure.
    HostCrash,
    /// ENOSPC when creating a segment.
    DiskFull,
    /// EIO on frame writes, header installs and fsyncs.
    DiskIo,
    /// A sync that makes less durable than asked (page granularity).
    PartialSync,
    /// An unlink that fails.
    UnlinkFail,
    /// A failed `.ack-watermark` write or removal.
    WatermarkFail,
    /// Directory listing, size and read failures at recovery.
    ListingFail,
    /// Rare bit flips at rest (with host crashes).
    BitFlip,
    /// Latency, a slow server, slow durable uploads.
    SlowNet,
    /// Refused, hung and non-101 connects.
    ConnectFail,
    /// `421` role rejects.
    RoleReject,
    /// `401` / `403` upgrades (terminal for the client).
    Auth,
    /// An out-of-range `X-QWP-Version`, a missing durable-ACK echo.
    Handshake,
    /// Error frames of every status.
    ErrorFrame,
    /// Connections dropped mid-stream in either direction.
    Drop,
    /// Server close codes (reconnect-class and terminal).
    CloseCode,
    /// Coalesced and delayed OKs, DURABLE_ACK before its OK, partial and
    /// stale DURABLE_ACKs.
    AckTiming,
    /// An OK for a sequence never sent.
    FutureOk,
    /// Duplicated server messages.
    Duplicate,
    /// A server restart that forgets its state (and un-durable rows).
    ServerRestart,
}

impl FaultKind {
    /// Every family, in a fixed order.
    pub const ALL: [FaultKind; 21] = [
        FaultKind::ProcessCrash,
        FaultKind::HostCrash,
        FaultKind::DiskFull,
        FaultKind::DiskIo,
        FaultKind::PartialSync,
        FaultKind::UnlinkFail,
        FaultKind::WatermarkFail,
        FaultKind::ListingFail,
        FaultKind::BitFlip,
        FaultKind::SlowNet,
        FaultKind::ConnectFail,
        FaultKind::RoleReject,
        FaultKind::Auth,
        FaultKind::Handshake,
        FaultKind::ErrorFrame,
        FaultKind::Drop,
        FaultKind::CloseCode,
        FaultKind::AckTiming,
        FaultKind::FutureOk,
        FaultKind::Duplicate,
        FaultKind::ServerRestart,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::ProcessCrash => "process-crash",
            FaultKind::HostCrash => "host-crash",
            FaultKind::DiskFull => "disk-full",
            FaultKind::DiskIo => "disk-io",
            FaultKind::PartialSync => "partial-sync",
            FaultKind::UnlinkFail => "unlink-fail",
            FaultKind::WatermarkFail => "watermark-fail",
            FaultKind::ListingFail => "listing-fail",
            FaultKind::BitFlip => "bit-flip",
            FaultKind::SlowNet => "slow-net",
            FaultKind::ConnectFail => "connect-fail",
            FaultKind::RoleReject => "role-reject",
            FaultKind::Auth => "auth",
            FaultKind::Handshake => "handshake",
            FaultKind::ErrorFrame => "error-frame",
            FaultKind::Drop => "drop",
            FaultKind::CloseCode => "close-code",
            FaultKind::AckTiming => "ack-timing",
            FaultKind::FutureOk => "future-ok",
            FaultKind::Duplicate => "duplicate",
            FaultKind::ServerRestart => "server-restart",
        }
    }

    /// Parses a comma-separated list (`all` and `none` allowed).
    pub fn parse_list(list: &str) -> Result<Vec<FaultKind>, UnknownFault> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "all" => out.extend(FaultKind::ALL),
                "none" => {}
                other => out.push(other.parse()?),
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault name that is not one of [`FaultKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault kind {0:?} (known: all, none, {known})", known = known_names())]
pub struct UnknownFault(pub String);

fn known_names() -> String {
    FaultKind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for FaultKind {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<FaultKind, UnknownFault> {
        FaultKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

/// The fault rates a set of enabled families gives, drawn from `rng`.
pub fn fault_rates(rng: &mut SimRng, enabled: &[FaultKind]) -> (DiskFaults, NetFaults) {
    let on = |k: FaultKind| enabled.contains(&k);
    let d = DiskFaults::random(rng);
    let pick = |k: FaultKind, v: u32| if on(k) { v } else { 0 };
    let disk = DiskFaults {
        create_enospc: pick(FaultKind::DiskFull, d.create_enospc),
        capacity_bytes: None,
        write_eio: pick(FaultKind::DiskIo, d.write_eio),
        sync_eio: pick(FaultKind::DiskIo, d.sync_eio),
        partial_sync: pick(FaultKind::PartialSync, d.partial_sync),
        unlink_fail: pick(FaultKind::UnlinkFail, d.unlink_fail),
        watermark_fail: pick(FaultKind::WatermarkFail, d.watermark_fail),
        listing_fail: pick(FaultKind::ListingFail, d.listing_fail),
        stat_fail: pick(FaultKind::ListingFail, d.stat_fail),
        read_fail: pick(FaultKind::ListingFail, d.read_fail),
        bit_flip: pick(FaultKind::BitFlip, d.bit_flip),
        sector_kept: d.sector_kept,
        sector_torn: d.sector_torn,
    };
    let n = NetFaults::random(rng);
    let quiet = NetFaults::none();
    let net = NetFaults {
        latency_min: if on(FaultKind::SlowNet) {
            n.latency_min
        } else {
            quiet.latency_min
        },
        latency_max: if on(FaultKind::SlowNet) {
            n.latency_max
        } else {
            quiet.latency_max
        },
        service_time: if on(FaultKind::SlowNet) {
            n.service_time
        } else {
            quiet.service_time
        },
        durable_delay_min: if on(FaultKind::SlowNet) {
            n.durable_delay_min
        } else {
            quiet.durable_delay_min
        },
        durable_delay_max: if on(FaultKind::SlowNet) {
            n.durable_delay_max
        } else {
            quiet.durable_delay_max
        },
        refuse_connect: pick(FaultKind::ConnectFail, n.refuse_connect),
        hang_connect: pick(FaultKind::ConnectFail, n.hang_connect),
        status_reject: pick(FaultKind::ConnectFail, n.status_reject),
        role_reject: pick(FaultKind::RoleReject, n.role_reject),
        auth_reject: pick(FaultKind::Auth, n.auth_reject),
        bad_version: pick(FaultKind::Handshake, n.bad_version),
        omit_durable_echo: pick(FaultKind::Handshake, n.omit_durable_echo),
        error_continue: pick(FaultKind::ErrorFrame, n.error_continue),
        error_halt: pick(FaultKind::ErrorFrame, n.error_halt),
        drop_before: pick(FaultKind::Drop, n.drop_before),
        drop_after: pick(FaultKind::Drop, n.drop_after),
        close_reconnect: pick(FaultKind::CloseCode, n.close_reconnect),
        close_terminal: pick(FaultKind::CloseCode, n.close_terminal),
        coalesce_ok: pick(FaultKind::AckTiming, n.coalesce_ok),
        delay_ok: pick(FaultKind::AckTiming, n.delay_ok),
        durable_before_ok: pick(FaultKind::AckTiming, n.durable_before_ok),
        partial_durable: pick(FaultKind::AckTiming, n.partial_durable),
        stale_durable: pick(FaultKind::AckTiming, n.stale_durable),
        future_ok: pick(FaultKind::FutureOk, n.future_ok),
        duplicate_response: pick(FaultKind::Duplicate, n.duplicate_response),
        restart: pick(FaultKind::ServerRestart, n.restart),
        restart_loses_undurable: pick(FaultKind::ServerRestart, n.restart_loses_undurable),
        ..n
    };
    (disk, net)
}

/// How a run is shaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOptions {
    /// The fault families to enable; `None` is swarm testing (each seed
    /// enables a random subset at random rates).
    pub faults: Option<Vec<FaultKind>>,
    /// How long (virtual time) the workload runs under faults.
    pub max_duration: Duration,
    /// Keep every trace line in the report (`--trace`).
    pub keep_trace: bool,
    /// After the faults stop, everything published must be acknowledged
    /// within this much virtual time (the liveness phase).
    pub liveness_bound: Duration,
}

impl Default for SimOptions {
    /// Swarm faults, 20 s of workload, a 120 s liveness bound, no trace.
    fn default() -> Self {
        SimOptions {
            faults: None,
            max_duration: Duration::from_secs(20),
            keep_trace: false,
            liveness_bound: Duration::from_secs(120),
        }
    }
}

/// Counters of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Virtual time simulated.
    pub virtual_time: Duration,
    /// Trace events.
    pub events: u64,
    /// World steps.
    pub steps: u64,
    /// Rows the producer committed.
    pub rows: u64,
    /// Frames and sends, from the checker's ledger.
    pub check: CheckStats,
    /// Engine lives (the first one plus every restart).
    pub lives: u64,
    /// Process crashes.
    pub process_crashes: u64,
    /// Host crashes.
    pub host_crashes: u64,
    /// `close()` calls by the workload.
    pub closes: u64,
    /// Terminal errors the engine latched.
    pub halts: u64,
    /// Recoveries the planner refused (the slot was then wiped if the
    /// refusal was structural).
    pub recovery_refusals: u64,
    /// Slots wiped after a structural refusal.
    pub slot_wipes: u64,
    /// Appends refused (write failure, backpressure at the deadline).
    pub append_errors: u64,
    /// Errors delivered to the handler.
    pub notifications: u64,
    /// The enabled fault families.
    pub faults: Vec<FaultKind>,
    /// The engine configuration, as `Debug` (to reproduce by hand).
    pub config: String,
    /// Disk counters.
    pub disk: DiskStats,
    /// Network counters.
    pub net: NetStats,
    /// How long the liveness phase took to acknowledge everything.
    pub liveness_time: Option<Duration>,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// The trace hash (D1).
    pub hash: u64,
    /// Every broken invariant, in order.
    pub violations: Vec<Violation>,
    /// Counters.
    pub stats: SimStats,
    /// The trace lines, if [`SimOptions::keep_trace`].
    pub trace: Vec<String>,
}

impl Report {
    /// Whether no invariant broke.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// One line: seed, verdict, hash and the main counters.
    pub fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "seed={} {} hash={:016x} virtual={:.3}s events={} rows={} frames={} flushed={} sends={} resends={} lives={} crashes={}p/{}h closes={} halts={} wipes={} liveness={}",
            self.seed,
            if self.passed() {
                "PASS".to_owned()
            } else {
                format!("FAIL({})", self.violations.len())
            },
            self.hash,
            s.virtual_time.as_secs_f64(),
            s.events,
            s.rows,
            s.check.frames,
            s.check.flushed,
            s.check.sends,
            s.check.resends,
            s.lives,
            s.process_crashes,
            s.host_crashes,
            s.closes,
            s.halts,
            s.slot_wipes,
            s.liveness_time
                .map_or_else(|| "not reached".to_owned(), |d| format!("{:.3}s", d.as_secs_f64())),
        )
    }
}

/// Runs one seed end to end: workload under faults for
/// [`SimOptions::max_duration`], then the liveness phase, then the delivery
/// proof.
pub fn run_seed(seed: u64, options: &SimOptions) -> Report {
    let mut sim = Sim::new(seed, options);
    sim.run_workload();
    sim.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(k.as_str().parse::<FaultKind>(), Ok(k));
        }
        assert!("nope".parse::<FaultKind>().is_err());
        assert_eq!(
            FaultKind::parse_list("drop, host-crash,drop"),
            Ok(vec![FaultKind::HostCrash, FaultKind::Drop])
        );
        assert_eq!(FaultKind::parse_list("all").map(|v| v.len()), Ok(21));
        assert_eq!(FaultKind::parse_list("none"), Ok(vec![]));
    }

    #[test]
    fn disabled_families_inject_nothing() {
        let mut rng = SimRng::new(5);
        for _ in 0..50 {
            let (d, n) = fault_rates(&mut rng, &[]);
            assert_eq!(
                DiskFaults {
                    sector_kept: 0,
                    sector_torn: 0,
                    ..d
                },
                DiskFaults {
                    sector_kept: 0,
                    sector_torn: 0,
                    ..DiskFaults::none()
                }
            );
            assert_eq!(
                NetFaults {
                    coalesce_window: Duration::ZERO,
                    delay_ok_max: Duration::ZERO,
                    restart_downtime_max: Duration::ZERO,
                    ..n
                },
                NetFaults {
                    coalesce_window: Duration::ZERO,
                    delay_ok_max: Duration::ZERO,
                    restart_downtime_max: Duration::ZERO,
                    ..NetFaults::none()
                }
            );
        }
    }
}
