//! A fleet run end to end ([`run_fleet_seed`]): a swarm-drawn history of
//! orphans, the main phase under faults, the liveness phase, the delivery
//! proof; and the step-level API the named scenarios use.

use core::time::Duration;

use sf_core::backoff::BackoffConfig;
use sf_core::engine::EngineError;
use sf_core::orphans::OwnSlots;
use sf_core::storage::Backing;
use sf_core::{Fsn, Instant};

use crate::check::{CheckStats, CrashLoss, DeliveryLog};
use crate::disk::CrashKind;
use crate::run::{fault_rates, FaultKind, Report, SimOptions, SimStats};
use crate::workload::random_config;
use crate::SimRng;

use super::{Fleet, HistoryEnd, LockHolder, NodeId, Phase, ProcessId, MAX_LIVENESS_RESCANS};

/// Families whose faults never make an engine latch a terminal error: with
/// only these, a foreground that latches one was hit by something of
/// another engine (ORPHAN-ISOLATION).
const FOREGROUND_SAFE: [FaultKind; 6] = [
    FaultKind::ProcessCrash,
    FaultKind::HostCrash,
    FaultKind::PartialSync,
    FaultKind::UnlinkFail,
    FaultKind::WatermarkFail,
    FaultKind::ListingFail,
];

/// Where [`Fleet::corrupt`] flips a bit: inside the first frame's
/// payload, behind the segment and frame headers.
const CORRUPT_AT: u64 =
    (sf_core::segment::SEGMENT_HEADER_LEN + sf_core::segment::FRAME_HEADER_LEN + 4) as u64;

/// Sibling names a history may leave: pool-like, plain, a non-canonical
/// index, and one that is never a valid `sender_id`.
const NAMES: [&str; 9] = [
    "app-1", "app-2", "app-5", "app-01", "ingest", "node-7", "legacy", "w-0", "bad..dir",
];

/// Runs one fleet seed end to end: history, main phase under faults for
/// [`SimOptions::max_duration`], liveness, delivery proof.
pub fn run_fleet_seed(seed: u64, options: &SimOptions) -> Report {
    let mut fleet = Fleet::new(seed, options);
    fleet.run_workload();
    fleet.finish()
}

impl Fleet {
    /// A swarm-drawn fleet for `seed`: one file-backed configuration for
    /// every engine (durability, segment sizes, durable ACK as
    /// [`random_config`] draws them, a reconnect budget short enough for a
    /// partitioned drainer to give up), 1–4 drainers per process, faults
    /// per `options`. [`Fleet::run_workload`] builds the history and runs.
    pub fn new(seed: u64, options: &SimOptions) -> Fleet {
        let mut cfg_rng = SimRng::new(seed).fork("fleet-config");
        let mut config = random_config(&mut cfg_rng);
        config.storage.backing = Backing::Files;
        if config.storage.reclaim_min_bytes == u64::MAX {
            // Drawn for memory backing: give the forced file backing the
            // files default (half a segment) rather than memory's "never".
            config.storage = config
                .storage
                .clone()
                .with_segment_bytes(config.storage.segment_bytes);
        }
        let max_outage = Duration::from_millis(cfg_rng.range_inclusive(2_000, 30_000));
        let max_backoff = Duration::from_millis(cfg_rng.range_inclusive(200, 5_000));
        if let Ok(b) = BackoffConfig::new(Duration::from_millis(100), max_backoff, max_outage) {
            config.backoff = b;
        }
        let max_drainers = cfg_rng.range_inclusive(1, 4) as usize;
        let io_latency = match cfg_rng.below(3) {
            0 => Duration::ZERO,
            1 => Duration::from_micros(cfg_rng.range_inclusive(10, 500)),
            _ => Duration::from_millis(cfg_rng.range_inclusive(1, 20)),
        };
        let mut fleet = Fleet::with_config(seed, options, config, max_drainers);
        fleet.set_io_latency(io_latency);
        let mut fault_rng = SimRng::new(seed).fork("fleet-faults");
        let quiet = options.faults.is_none() && fault_rng.below(3) == 0;
        let enabled: Vec<FaultKind> = match &options.faults {
            Some(list) => list.clone(),
            None => FaultKind::ALL
                .iter()
                .copied()
                .filter(|k| !quiet || FOREGROUND_SAFE.contains(k))
                .filter(|_| fault_rng.coin())
                .collect(),
        };
        let (disk, net) = fault_rates(&mut fault_rng, &enabled);
        if enabled.contains(&FaultKind::ProcessCrash) {
            fleet.crash_kinds.push(CrashKind::Process);
        }
        if enabled.contains(&FaultKind::HostCrash) || enabled.contains(&FaultKind::BitFlip) {
            fleet.crash_kinds.push(CrashKind::Host);
        }
        fleet.crash_mean = Duration::from_millis(fault_rng.range_inclusive(2_000, 15_000));
        fleet.quiet_foreground = enabled.iter().all(|k| FOREGROUND_SAFE.contains(k));
        fleet.stats.faults = enabled;
        fleet.set_faults(disk, net);
        fleet.random_drainer_faults = true;
        fleet
    }

    /// Builds the swarm's history: earlier senders on 1–6 slots whose data
    /// stays unacknowledged, then the corruptions, `.failed` sentinels,
    /// host crash and outside lock the seed draws. Returns the main
    /// process's slot and ownership.
    fn build_history(&mut self) -> (String, OwnSlots) {
        let mut r = SimRng::new(self.seed).fork("fleet-shape");
        let (fg, own) = if r.coin() {
            ("app".to_owned(), OwnSlots::Single("app".into()))
        } else {
            let max = r.range_inclusive(1, 3) as u32;
            (
                "app-0".to_owned(),
                OwnSlots::Pool {
                    base: "app".into(),
                    max,
                },
            )
        };
        let mut names: Vec<String> = Vec::new();
        let n = r.range_inclusive(1, 6);
        for _ in 0..n {
            if let Some(name) = r.pick(&NAMES) {
                if !names.iter().any(|x| x == name) {
                    names.push((*name).to_owned());
                }
            }
        }
        if r.coin() {
            names.push(fg.clone());
        }
        self.trace.record(
            self.now,
            "history",
            format_args!("own={own:?} fg={fg} slots={names:?}"),
        );
        for name in &names {
            let partition = Duration::from_millis(r.range_inclusive(0, 800));
            let end_after = Duration::from_millis(r.range_inclusive(300, 3_000));
            let how = if r.coin() {
                HistoryEnd::Crash
            } else {
                HistoryEnd::Close
            };
            let end = self.now.saturating_add(end_after);
            self.start_history_sender(name, Some(partition), Some((end, how)));
        }
        self.autopilot = true;
        let limit = self.now.saturating_add(Duration::from_secs(60));
        while self.history_running() && self.step(limit) {}
        self.autopilot = false;
        let valid: Vec<String> = names
            .iter()
            .filter(|n| **n != fg && !n.contains(".."))
            .cloned()
            .collect();
        if !valid.is_empty() && r.below(4) == 0 {
            let i = r.below(valid.len() as u64) as usize;
            if let Some(name) = valid.get(i) {
                self.corrupt(name);
            }
        }
        if !valid.is_empty() && r.below(4) == 0 {
            let i = r.below(valid.len() as u64) as usize;
            if let Some(name) = valid.get(i) {
                self.mark_failed(name, "left by an earlier drainer");
            }
        }
        if r.below(4) == 0 {
            self.host_crash_idle();
        }
        if !valid.is_empty() && r.below(3) == 0 {
            let i = r.below(valid.len() as u64) as usize;
            if let Some(name) = valid.get(i).cloned() {
                let max = u64::try_from(self.options.max_duration.as_nanos()).unwrap_or(u64::MAX);
                let hold = Duration::from_nanos(r.range_inclusive(0, max));
                if self.hold_lock_outside(&name) {
                    self.outside_release = Some((self.now.saturating_add(hold), name));
                }
            }
        }
        (fg, own)
    }

    fn history_running(&self) -> bool {
        self.processes
            .values()
            .any(|p| p.alive && p.history_end.is_some())
    }

    /// Runs the swarm: history, the main phase under faults, then the
    /// liveness phase (faults off; everything must end drained or
    /// `.failed`, the foreground's data acknowledged, within
    /// [`SimOptions::liveness_bound`]).
    pub fn run_workload(&mut self) {
        let (fg, own) = self.build_history();
        self.start_foreground(&fg, own);
        self.autopilot = true;
        self.fault_end = Some(self.now.saturating_add(self.options.max_duration));
        self.schedule_crash();
        while self.phase == Phase::Faults && self.step(Instant(u64::MAX)) {}
        if self.phase == Phase::Faults {
            self.start_liveness();
        }
        let start = self.now;
        let deadline = self.now.saturating_add(self.options.liveness_bound);
        loop {
            if self.liveness_reached() {
                self.stats.liveness_time = Some(self.now.saturating_duration_since(start));
                self.trace.record(self.now, "phase", format_args!("live"));
                break;
            }
            if self.wants_rescan() {
                if self.liveness_rescans >= MAX_LIVENESS_RESCANS {
                    self.report_rescans_exhausted();
                    break;
                }
                self.liveness_rescans += 1;
                if let Some(m) = self.main {
                    let at = self.now.saturating_add(Duration::from_millis(100));
                    self.close_sender(m, Some(at));
                }
                continue;
            }
            if !self.step(deadline) {
                if self.stuck {
                    break;
                }
                self.report_stuck();
                break;
            }
        }
        self.autopilot = false;
    }

    /// The application would reopen its sender (and so rescan): the
    /// foreground settled, nothing running or queued, and an adoptable
    /// orphan whose lock is free is not drained yet.
    fn wants_rescan(&self) -> bool {
        let Some(p) = self.main.and_then(|m| self.processes.get(&m)) else {
            return false;
        };
        if !p.alive || !p.drainers.is_empty() || p.reopen_at.is_some() {
            return false;
        }
        if p.scheduler.as_ref().is_some_and(|s| !s.is_idle()) {
            return false;
        }
        self.foreground_settled()
            && self.undone_orphans().iter().any(|(name, _)| {
                self.tree.get(name).is_some_and(|s| s.lock().is_none()) && !self.draining(name)
            })
    }

    /// The rescans the liveness phase allows did not settle the orphans:
    /// ORPHAN-LIVENESS for each one left, with how its last drainer ended.
    fn report_rescans_exhausted(&mut self) {
        for (slot, state) in self.undone_orphans() {
            let last = self
                .last_end
                .get(&slot)
                .cloned()
                .unwrap_or_else(|| "no drainer ever ended on it".to_owned());
            let detail = format!(
                "orphan {slot} still undone after {MAX_LIVENESS_RESCANS} rescans with faults off (last drainer: {last}): {state}"
            );
            self.violate("ORPHAN-LIVENESS", detail);
        }
    }

    /// The liveness bound passed (or nothing more was due) without the
    /// liveness goal: always at least one violation, saying what is left.
    fn report_stuck(&mut self) {
        let before = self.violations.len();
        let undone = self.undone_orphans();
        if !self.foreground_settled() {
            let state = match self.foreground_node() {
                None => "no foreground engine".to_owned(),
                Some(n) => match n.engine() {
                    None => "closed".into(),
                    Some(e) => format!(
                        "acked {:?} published {:?} durable {:?} connection {:?} terminal {:?} producer done {}",
                        e.acked_fsn(),
                        e.published_fsn(),
                        e.durable_fsn(),
                        e.connection_state(),
                        e.last_terminal_error().map(ToString::to_string),
                        n.producer_done()
                    ),
                },
            };
            let detail = format!(
                "the foreground was not acknowledged within {:?} after the faults stopped: {state}",
                self.options.liveness_bound
            );
            self.violate("LIVENESS", detail);
        }
        for (slot, state) in undone {
            let detail = format!(
                "orphan {slot} neither drained nor .failed within {:?} after the faults stopped: {state}",
                self.options.liveness_bound
            );
            self.violate("ORPHAN-LIVENESS", detail);
        }
        if self.violations.len() == before {
            // Only drainers still running or a scheduler not idle stand in
            // the way: say which.
            let detail = match self.main.and_then(|m| self.processes.get(&m)) {
                None => "no main process".to_owned(),
                Some(p) => {
                    let drainers: Vec<String> = p
                        .drainers
                        .iter()
                        .filter_map(|d| self.nodes.get(d))
                        .map(|n| format!("n{} on {} ({:?})", n.id.0, n.slot, n.role))
                        .collect();
                    let sched = p.scheduler.as_ref().map(|s| {
                        (
                            s.active().map(str::to_owned).collect::<Vec<_>>(),
                            s.queued(),
                            s.counters(),
                        )
                    });
                    format!(
                        "alive {} drainers {drainers:?} scheduler (active, queued, counters) {sched:?} reopen_at {:?}",
                        p.alive, p.reopen_at
                    )
                }
            };
            self.violate(
                "ORPHAN-LIVENESS",
                format!(
                    "the drains did not settle within {:?} after the faults stopped: {detail}",
                    self.options.liveness_bound
                ),
            );
        }
    }

    /// Ends the run: the full delivery proof for every slot whose data is
    /// all acknowledged; for every other slot (`.failed`, stuck, a pool's
    /// own) the duplicate rule and the rows of every acknowledged frame;
    /// then the report.
    pub fn finish(mut self) -> Report {
        let log = self.delivery_log();
        let now = self.now;
        let mut found = Vec::new();
        for (name, s) in self.tree.iter_mut() {
            if s.checker.all_acked() {
                s.checker.check_delivery(now, &log);
            } else {
                s.checker.check_duplicates(now, &log);
            }
            // An acknowledged frame is promised whether or not its flush
            // returned: the server said it has the rows (unless a server
            // restart forgot them, which the server side judges).
            let acked = s.checker.acked();
            for rec in s.checker.ledger().values() {
                if acked.is_none_or(|a| rec.fsn > a) || rec.dropped || rec.excused {
                    continue;
                }
                let missing = (0..rec.rows)
                    .map(|i| rec.first_row + i64::from(i))
                    .find(|r| {
                        log.counts.get(r).is_none_or(|c| *c == 0) && !log.forgotten.contains(r)
                    });
                if let Some(row) = missing {
                    found.push(crate::check::Violation {
                        invariant: "C1",
                        detail: format!(
                            "slot {name}: frame {} was acknowledged but row {row} never reached the server",
                            rec.fsn
                        ),
                        at: now,
                    });
                }
            }
        }
        self.violations.extend(found);
        let violations = self.violations();
        let stats = self.stats();
        let hash = self.trace.hash();
        Report {
            seed: self.seed,
            hash,
            violations,
            stats,
            trace: self.trace.take_lines(),
        }
    }

    /// Every row id the servers committed, with how often, and the rows
    /// a server restart forgot before making them durable (the client is
    /// not asked for those; the servers judge durable-ACK mode).
    pub fn delivery_log(&self) -> DeliveryLog {
        let mut log = DeliveryLog::default();
        for m in self.net.accepted() {
            for t in &m.tables {
                for &id in &t.row_ids {
                    *log.counts.entry(id).or_insert(0) += 1;
                }
            }
        }
        for m in self.net.lost() {
            for t in &m.tables {
                log.forgotten.extend(t.row_ids.iter().copied());
            }
        }
        log
    }

    /// The counters so far (checker counters summed over the slots).
    pub fn stats(&self) -> SimStats {
        let mut s = self.stats.clone();
        s.virtual_time = Duration::from_nanos(self.now.as_nanos());
        s.events = self.trace.len();
        let mut c = CheckStats::default();
        for (_, slot) in self.tree.iter() {
            let x = slot.checker.stats();
            c.frames += x.frames;
            c.flushed += x.flushed;
            c.dropped += x.dropped;
            c.excused_lost += x.excused_lost;
            c.sends += x.sends;
            c.resends += x.resends;
            c.ack_jumps += x.ack_jumps;
        }
        s.check = c;
        s.net = self.net.stats().clone();
        s
    }

    // ----- step-level control (scenarios) --------------------------------------

    /// Leaves an orphan on slot `name`: a sender in its own process whose
    /// client is partitioned from the start commits `frames` frames of
    /// `rows` rows, then ends per `end` (crash, or close without waiting).
    /// `false` if the slot could not be opened or not every frame was
    /// committed.
    pub fn add_orphan(&mut self, name: &str, frames: u32, rows: u32, end: HistoryEnd) -> bool {
        let Some(id) = self.start_history_sender(name, Some(Duration::ZERO), None) else {
            return false;
        };
        let mut committed = 0;
        for _ in 0..frames {
            if self.append_rows_on(id, rows).is_err() {
                break;
            }
            committed += 1;
        }
        let Some(p) = self.nodes.get(&id).map(|n| n.process) else {
            return false;
        };
        match end {
            HistoryEnd::Crash => self.crash_process(p, CrashKind::Process),
            HistoryEnd::Close => {
                self.close_sender(p, None);
                let limit = self.now.saturating_add(Duration::from_secs(60));
                while self.nodes.contains_key(&id) && self.step(limit) {}
                if let Some(pr) = self.processes.get_mut(&p) {
                    pr.alive = false;
                }
            }
        }
        committed == frames
    }

    /// Starts the main process: its foreground opens slot `slot` with orphan
    /// drain on for `own`, and its scheduler scans. The main phase's faults
    /// (see [`Fleet::set_faults`]) apply from now on.
    pub fn start_foreground(&mut self, slot: &str, own: OwnSlots) -> Option<ProcessId> {
        self.phase = Phase::Faults;
        let disk = self.disk_faults.clone();
        for (_, s) in self.tree.iter_mut() {
            s.disk.set_faults(disk.clone());
        }
        let net = self.net_faults.clone();
        self.net.set_faults(net);
        self.main_own = Some((slot.to_owned(), own));
        self.start_main_process();
        self.main
    }

    /// The main process.
    pub fn main_process(&self) -> Option<ProcessId> {
        self.main
    }

    /// Appends one frame of `rows` rows on node `id`, running the world
    /// while the engine makes the producer wait.
    pub fn append_rows_on(&mut self, id: NodeId, rows: u32) -> Result<Fsn, EngineError> {
        let mut rng = self.work_rng.fork("scenario-frame");
        let frame = self
            .rows
            .frame(&mut rng, rows, 0)
            .ok_or(EngineError::Closed)?;
        loop {
            let mut result = Err(EngineError::Closed);
            let mut stats = std::mem::take(&mut self.stats);
            self.with_node(id, |n, cx| result = n.append_now(cx, &mut stats, &frame));
            self.stats = stats;
            match result {
                Ok(Some(fsn)) => return Ok(fsn),
                Ok(None) => {
                    if !self.step(Instant(u64::MAX)) {
                        return Err(EngineError::Closed);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends one frame of `rows` rows on the main foreground.
    pub fn append_rows(&mut self, rows: u32) -> Result<Fsn, EngineError> {
        let id = self
            .foreground_node()
            .map(|n| n.id)
            .ok_or(EngineError::Closed)?;
        self.append_rows_on(id, rows)
    }

    /// A `flush()` of the main foreground: runs the world until it is
    /// done (C1); the batch's last FSN.
    pub fn flush(&mut self) -> Result<Option<Fsn>, EngineError> {
        let id = self
            .foreground_node()
            .map(|n| n.id)
            .ok_or(EngineError::Closed)?;
        let now = self.now;
        let ticket = {
            let node = self.nodes.get_mut(&id).ok_or(EngineError::Closed)?;
            let engine = node.engine.as_mut().ok_or(EngineError::Closed)?;
            engine.flush(now)?
        };
        self.with_node(id, |n, cx| n.pump(cx));
        loop {
            let node = self.nodes.get(&id).ok_or(EngineError::Closed)?;
            let engine = node.engine().ok_or(EngineError::Closed)?;
            if engine.is_flushed(ticket)? {
                let durable = engine.durable_fsn();
                let slot = node.slot.clone();
                let now = self.now;
                if let Some(s) = self.tree.get_mut(&slot) {
                    s.checker.on_flush_returned(now, ticket.last_fsn, durable);
                }
                return Ok(ticket.last_fsn);
            }
            if !self.step(Instant(u64::MAX)) {
                return Err(EngineError::Closed);
            }
        }
    }

    /// Runs the world for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now.saturating_add(d);
        while self.step(end) {}
        self.now = self.now.max(end);
    }

    /// Runs until `pred` holds or `limit` of virtual time passes; whether
    /// it held.
    pub fn run_until(&mut self, mut pred: impl FnMut(&Fleet) -> bool, limit: Duration) -> bool {
        let end = self.now.saturating_add(limit);
        loop {
            if pred(self) {
                return true;
            }
            if !self.step(end) {
                self.now = self.now.max(end);
                return pred(self);
            }
        }
    }

    /// Runs until the main process has no drainer running or queued.
    pub fn run_until_drains_settle(&mut self, limit: Duration) -> bool {
        self.run_until(
            |f| {
                f.main.and_then(|m| f.processes.get(&m)).is_some_and(|p| {
                    p.drainers.is_empty() && p.scheduler.as_ref().is_none_or(|s| s.is_idle())
                })
            },
            limit,
        )
    }

    /// A process outside the fleet takes `slot`'s lock (a live sender of
    /// another application); whether it got it.
    pub fn hold_lock_outside(&mut self, slot: &str) -> bool {
        let ok = self.tree.try_lock(slot, LockHolder::Outside).is_ok();
        self.trace
            .record(self.now, "outside", format_args!("locks {slot}: {ok}"));
        ok
    }

    /// The outside process releases `slot`'s lock.
    pub fn release_outside(&mut self, slot: &str) {
        self.trace
            .record(self.now, "outside", format_args!("releases {slot}"));
        self.tree.release(slot, LockHolder::Outside);
    }

    /// Flips a bit inside the first frame of the first segment of `slot`
    /// at rest (valid frames follow it), so recovery refuses the slot for
    /// what it holds; whether there was such a byte.
    pub fn corrupt(&mut self, slot: &str) -> bool {
        let now = self.now;
        let Some(s) = self.tree.get_mut(slot) else {
            return false;
        };
        let Some(seg) = s
            .disk
            .file_names()
            .into_iter()
            .find(|n| n.ends_with(".sfa"))
        else {
            return false;
        };
        let flipped = s.disk.flip_bit(&seg, CORRUPT_AT, 3);
        if flipped {
            s.damaged = true;
            s.pending_loss = Some(CrashLoss::Corrupted);
            s.checker.on_crash(now, CrashLoss::Corrupted);
        }
        self.trace
            .record(now, "corrupt", format_args!("{slot}/{seg}: {flipped}"));
        flipped
    }

    /// Writes `.failed` on `slot` outside any drainer (an earlier run's).
    pub fn mark_failed(&mut self, slot: &str, reason: &str) {
        self.trace.record(
            self.now,
            "failed",
            format_args!("{slot} (earlier): {reason}"),
        );
        self.tree.write_failed(slot, reason);
    }

    /// The host dies while no process runs: every slot disk loses what was
    /// not synced.
    pub fn host_crash_idle(&mut self) {
        self.trace
            .record(self.now, "crash", format_args!("host (idle)"));
        self.stats.host_crashes += 1;
        let config = self.config.clone();
        self.tree.host_crash_idle(self.now, &config, &[]);
    }

    /// The main process dies (`kind`); restart it with
    /// [`Fleet::restart_main`].
    pub fn crash_main(&mut self, kind: CrashKind) {
        if let Some(m) = self.main {
            self.crash_process(m, kind);
        }
    }

    /// A new main process (after a crash or a close): it reopens its slot
    /// and scans.
    pub fn restart_main(&mut self) {
        self.start_main_process();
    }

    /// The owner closes its sender for good: its drainers stop (data left
    /// on disk, locks released), the foreground closes; runs until every
    /// node of the main process is gone.
    pub fn close_main(&mut self) {
        let Some(m) = self.main else {
            return;
        };
        self.close_sender(m, None);
        let limit = self.now.saturating_add(Duration::from_secs(120));
        let _ = self.run_until(
            |f| !f.nodes.values().any(|n| n.process == m),
            limit.saturating_duration_since(self.now),
        );
    }

    /// The application reopens its sender (a new scan); runs until the new
    /// foreground is open.
    pub fn rescan(&mut self) {
        let Some(m) = self.main else {
            return;
        };
        let now = self.now;
        self.close_sender(m, Some(now));
        let _ = self.run_until(
            |f| f.foreground_node().is_some_and(|n| n.engine().is_some()),
            Duration::from_secs(120),
        );
    }

    /// Turns the main phase's faults off (the liveness phase) and lifts
    /// every per-client partition.
    pub fn stop_faults(&mut self) {
        self.start_liveness();
    }
}
