//! The fleet's loop: time jumps to the earliest thing due (an engine
//! timer, a network event of any client, a producer action, a scheduled
//! crash, restart, reopen, lock release or phase end); at that instant the
//! world routes every due network event to the node of its client, fires
//! due timers, carries out scheduled actions, lets producers act, ends
//! drainers that are done and starts new ones, then runs the fleet checks.

use core::time::Duration;

use sf_core::durability::DurabilityMode;
use sf_core::engine::Engine;
use sf_core::orphans::DrainEnd;
use sf_core::storage::Backing;
use sf_core::Instant;

use crate::check::CrashLoss;
use crate::disk::CrashKind;

use super::node::{Ending, ProducerAsk, Work};
use super::tree::wider;
use super::{Fleet, HistoryEnd, LockHolder, NodeId, Phase, ProcessId, Role, SPIN_LIMIT};

impl Fleet {
    /// The earliest instant something happens, if anything is scheduled.
    pub(super) fn next_wake(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        for n in self.nodes.values() {
            take(n.engine().and_then(Engine::poll_timeout));
            take(n.next_io_at());
            if self.autopilot {
                take(n.producer_wake());
            }
        }
        take(self.net.next_event_at());
        for p in self.processes.values() {
            if p.alive {
                // A reopen waits for the old foreground and its drainers
                // to be gone (the adapter's close joins its drainers), so
                // a new scan never runs beside the old scan's drainers.
                if p.foreground.is_none() && p.drainers.is_empty() {
                    take(p.reopen_at);
                }
                // A history end that fired is parked at the end of time.
                take(
                    p.history_end
                        .map(|h| h.0)
                        .filter(|t| *t != Instant(u64::MAX)),
                );
            }
        }
        take(self.partitions_due.iter().map(|p| p.0).min());
        take(self.restart_at);
        take(self.outside_release.as_ref().map(|o| o.0));
        if self.autopilot {
            take(self.next_crash);
            take(self.fault_end);
        }
        t
    }

    /// Runs the next due instant if it is at or before `limit`; `false`
    /// when nothing is due by then (the clock is not moved).
    pub(super) fn step(&mut self, limit: Instant) -> bool {
        if self.stuck {
            return false;
        }
        let Some(t) = self.next_wake() else {
            return false;
        };
        if t > limit {
            return false;
        }
        if t <= self.now {
            self.same_instant_steps += 1;
            if self.same_instant_steps > SPIN_LIMIT {
                let detail = format!(
                    "{SPIN_LIMIT} steps at t={}ns without time moving",
                    self.now.as_nanos()
                );
                self.violate("W5", detail);
                self.stuck = true;
                return false;
            }
        } else {
            self.same_instant_steps = 0;
            self.now = t;
        }
        self.stats.steps += 1;
        let now = self.now;
        while let Some((client, event)) = self.net.poll_client_event(now) {
            match self.clients.get(&client).copied() {
                Some(id) => self.with_node(id, |n, cx| n.feed_net(cx, event)),
                None => self
                    .trace
                    .record(now, "net-drop", format_args!("c{} {event:?}", client.0)),
            }
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        for id in &ids {
            self.with_node(*id, |n, cx| {
                n.deliver_io(cx);
                n.fire_timer(cx);
            });
        }
        self.reap();
        self.scheduled(now);
        self.drive_producers();
        self.drive_drainers();
        self.reap();
        let procs: Vec<ProcessId> = self.processes.keys().copied().collect();
        for p in procs {
            self.start_drainers(p);
        }
        self.fleet_checks();
        true
    }

    /// Scheduled actions due now.
    fn scheduled(&mut self, now: Instant) {
        let due: Vec<_> = self
            .partitions_due
            .iter()
            .filter(|p| p.0 <= now)
            .map(|p| p.1)
            .collect();
        self.partitions_due.retain(|p| p.0 > now);
        for c in due {
            self.net.partition_client(c, now, Some(Instant(u64::MAX)));
        }
        if self.outside_release.as_ref().is_some_and(|o| o.0 <= now) {
            if let Some((_, slot)) = self.outside_release.take() {
                self.trace
                    .record(now, "outside", format_args!("releases {slot}"));
                self.tree.release(&slot, LockHolder::Outside);
            }
        }
        let procs: Vec<ProcessId> = self.processes.keys().copied().collect();
        for p in procs {
            let Some(pr) = self.processes.get(&p) else {
                continue;
            };
            if !pr.alive {
                continue;
            }
            if let Some((at, how)) = pr.history_end {
                if at <= now {
                    if let Some(pr) = self.processes.get_mut(&p) {
                        pr.history_end = Some((Instant(u64::MAX), how));
                    }
                    match how {
                        HistoryEnd::Crash => self.crash_process(p, CrashKind::Process),
                        HistoryEnd::Close => self.close_sender(p, None),
                    }
                    continue;
                }
            }
            if pr.reopen_at.is_some_and(|r| r <= now)
                && pr.foreground.is_none()
                && pr.drainers.is_empty()
            {
                if let Some(pr) = self.processes.get_mut(&p) {
                    pr.reopen_at = None;
                }
                self.open_foreground(p);
            }
        }
        if self.restart_at.is_some_and(|r| r <= now) {
            self.restart_at = None;
            self.start_main_process();
        }
        if self.autopilot {
            if self.fault_end.is_some_and(|e| e <= now) {
                self.fault_end = None;
                self.start_liveness();
            }
            if self.next_crash.is_some_and(|c| c <= now) {
                self.next_crash = None;
                let kinds = self.crash_kinds.clone();
                if let Some(&kind) = self.rng.pick(&kinds) {
                    if let Some(m) = self.main {
                        if self.processes.get(&m).is_some_and(|p| p.alive) {
                            self.crash_process(m, kind);
                            let pause = self.rng.range_inclusive(1_000_000, 2_000_000_000);
                            self.restart_at =
                                Some(self.now.saturating_add(Duration::from_nanos(pause)));
                        }
                    }
                }
                self.schedule_crash();
            }
        }
    }

    pub(super) fn schedule_crash(&mut self) {
        if self.crash_kinds.is_empty() || self.phase != Phase::Faults {
            return;
        }
        let mean = u64::try_from(self.crash_mean.as_nanos()).unwrap_or(u64::MAX);
        let d = self.rng.range_inclusive(1, mean.saturating_mul(2));
        self.next_crash = Some(self.now.saturating_add(Duration::from_nanos(d)));
    }

    /// Lets every foreground producer act.
    fn drive_producers(&mut self) {
        let ids: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| !n.is_drainer())
            .map(|n| n.id)
            .collect();
        for id in ids {
            let Some(node) = self.nodes.get_mut(&id) else {
                continue;
            };
            let is_main = Some(node.process) == self.main;
            if !self.autopilot {
                continue;
            }
            let Some(slot) = self.tree.get_mut(&node.slot) else {
                continue;
            };
            let mut cx = super::node::Ctx {
                now: self.now,
                slot,
                net: &mut self.net,
                trace: &mut self.trace,
                violations: &mut self.violations,
            };
            let mut work = Work {
                rows: &mut self.rows,
                rng: &mut self.work_rng,
                shape: &self.shape,
                winding_down: self.phase == Phase::Liveness,
                may_close: is_main && self.phase == Phase::Faults,
                stats: &mut self.stats,
            };
            let ask = node.drive_producer(&mut cx, &mut work);
            if ask == ProducerAsk::Close {
                self.stats.closes += 1;
                let process = node.process;
                let pause = self.rng.range_inclusive(1_000_000, 1_000_000_000);
                self.close_sender(
                    process,
                    Some(self.now.saturating_add(Duration::from_nanos(pause))),
                );
            }
        }
    }

    /// Closes drainers that are done (everything they recovered is
    /// acknowledged) or latched a terminal error. The engine's close
    /// settles the owed `.ack-watermark` itself; the lock goes when
    /// `Closed` arrives (see [`Fleet::reap`]).
    fn drive_drainers(&mut self) {
        let ids: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.is_drainer())
            .map(|n| n.id)
            .collect();
        for id in ids {
            let Some(node) = self.nodes.get_mut(&id) else {
                continue;
            };
            if node.ending.is_some() {
                continue;
            }
            let Some(engine) = node.engine() else {
                continue;
            };
            if let Some(e) = engine.last_terminal_error() {
                let e = e.clone();
                self.with_node(id, |n, cx| n.begin_close(cx, Ending::Terminal(e)));
                continue;
            }
            let Role::Drainer { target } = node.role else {
                continue;
            };
            if target.is_none_or(|t| engine.acked_fsn() >= Some(t)) {
                self.with_node(id, |n, cx| n.begin_close(cx, Ending::Drained));
            }
        }
    }

    /// Handles nodes whose engine said `Closed`: the slot is released
    /// (a drainer's end is reported to its scheduler first, so `.failed`
    /// is written under the lock).
    pub(super) fn reap(&mut self) {
        // Reaping a foreground stops its drainers, whose `Closed` may come
        // at once: reap until none is left, so no closed node lingers with
        // nothing due to reap it (a reopen waits for the drainers).
        loop {
            let closed: Vec<NodeId> = self
                .nodes
                .values()
                .filter(|n| n.closed.is_some())
                .map(|n| n.id)
                .collect();
            if closed.is_empty() {
                return;
            }
            self.reap_nodes(closed);
        }
    }

    fn reap_nodes(&mut self, closed: Vec<NodeId>) {
        for id in closed {
            let Some(node) = self.nodes.remove(&id) else {
                continue;
            };
            self.clients.remove(&node.client);
            let now = self.now;
            self.net.close_from(node.client, now, 1000);
            self.trace.record(
                now,
                &format!("n{}:closed", id.0),
                format_args!(
                    "slot={} {:?} ending={:?} io_in_flight={}",
                    node.slot,
                    node.closed,
                    node.ending,
                    node.io_in_flight()
                ),
            );
            let loss = match self.config.storage.backing {
                Backing::Files => CrashLoss::Nothing,
                Backing::Memory => CrashLoss::Unacked,
            };
            if let Some(s) = self.tree.get_mut(&node.slot) {
                s.disk.crash(CrashKind::Process);
                s.checker.on_clean_shutdown(now);
                s.pending_loss = Some(loss);
            }
            let p = node.process;
            if matches!(node.ending, Some(Ending::Terminal(_))) {
                self.stats.halts += 1;
            }
            let is_main_fg = Some(p) == self.main
                && self
                    .processes
                    .get(&p)
                    .is_some_and(|pr| pr.foreground == Some(id));
            if let (true, true, Some(Ending::Terminal(e))) =
                (is_main_fg, self.quiet_foreground, &node.ending)
            {
                let detail = format!(
                    "the foreground on {} latched a terminal error its own traffic cannot explain: {e}",
                    node.slot
                );
                self.violate("ORPHAN-ISOLATION", detail);
                // Reported once per run.
                self.quiet_foreground = false;
            }
            if node.is_drainer() {
                let end = match (node.ending, &node.closed) {
                    // The adapter's rule: a drained slot whose close
                    // failed was not released cleanly; its data stays.
                    (Some(Ending::Drained), Some(Err(_))) => DrainEnd::Stopped,
                    (Some(Ending::Drained), _) => DrainEnd::Drained,
                    (Some(Ending::Terminal(e)), _) => DrainEnd::Terminal(e),
                    (Some(Ending::Stopped) | None, _) => DrainEnd::Stopped,
                };
                if let DrainEnd::Terminal(e) = &end {
                    if self.phase == Phase::Liveness && node.started_in_liveness && !node.had_fault
                    {
                        let detail = format!(
                            "drainer n{} on {} started after the faults stopped, had no per-client fault, and latched a terminal error (.failed follows): {e}",
                            id.0, node.slot
                        );
                        self.violate("ORPHAN-LIVENESS", detail);
                    }
                }
                if let Some(pr) = self.processes.get_mut(&p) {
                    pr.drainers.remove(&id);
                }
                self.end_drainer(p, id, &node.slot, end);
            } else if let Some(pr) = self.processes.get_mut(&p) {
                pr.foreground = None;
                if pr.history_end.is_some() {
                    pr.alive = false;
                } else if pr.reopen_at.is_none() && self.autopilot {
                    // A halted sender: the application closes it and
                    // opens a new one after a pause.
                    let pause = self.rng.range_inclusive(1_000_000, 1_000_000_000);
                    if let Some(pr) = self.processes.get_mut(&p) {
                        pr.reopen_at = Some(now.saturating_add(Duration::from_nanos(pause)));
                        if let Some(s) = pr.scheduler.as_mut() {
                            s.stop();
                        }
                    }
                    self.stop_drainers(p);
                }
            }
            self.tree.release(&node.slot, LockHolder::Node(id));
        }
    }

    fn stop_drainers(&mut self, p: ProcessId) {
        let drainers: Vec<NodeId> = self
            .processes
            .get(&p)
            .map(|pr| pr.drainers.iter().copied().collect())
            .unwrap_or_default();
        for d in drainers {
            self.with_node(d, |n, cx| n.begin_close(cx, Ending::Stopped));
        }
    }

    /// The application closes process `p`'s sender: its scheduler stops
    /// (nothing more starts, the queue is dropped), its drainers close
    /// with their data left on disk, the foreground closes; with `reopen`
    /// a new sender (a new scan) opens then.
    pub fn close_sender(&mut self, p: ProcessId, reopen: Option<Instant>) {
        self.trace
            .record(self.now, "app", format_args!("p{} closes its sender", p.0));
        let fg = match self.processes.get_mut(&p) {
            Some(pr) => {
                if let Some(s) = pr.scheduler.as_mut() {
                    s.stop();
                }
                pr.reopen_at = reopen;
                pr.foreground
            }
            None => return,
        };
        self.stop_drainers(p);
        if let Some(fg) = fg {
            self.with_node(fg, |n, cx| n.begin_close(cx, Ending::Stopped));
        }
        self.reap();
    }

    /// Process `p` dies (`kind`: the process or the whole host): every
    /// node of it vanishes (its client forgotten, its lock released); a
    /// host crash also hits every other slot's disk and the outside lock.
    pub fn crash_process(&mut self, p: ProcessId, kind: CrashKind) {
        let now = self.now;
        self.trace
            .record(now, "crash", format_args!("p{} {}", p.0, kind.as_str()));
        match kind {
            CrashKind::Process => self.stats.process_crashes += 1,
            CrashKind::Host => self.stats.host_crashes += 1,
        }
        let ids: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.process == p)
            .map(|n| n.id)
            .collect();
        let mut live_slots = Vec::new();
        for id in &ids {
            let Some(node) = self.nodes.remove(id) else {
                continue;
            };
            self.clients.remove(&node.client);
            self.net.forget_client(node.client, now);
            if node.is_drainer() {
                self.fleet_stats.stopped += 1;
            }
            if let Some(s) = self.tree.get_mut(&node.slot) {
                let flips = s.disk.stats().injected.bit_flips;
                s.disk.crash(kind);
                let flipped = s.disk.stats().injected.bit_flips > flips;
                let loss = if flipped {
                    s.damaged = true;
                    CrashLoss::Corrupted
                } else {
                    if kind == CrashKind::Host {
                        s.damaged = true;
                    }
                    CrashLoss::for_crash(kind == CrashKind::Host, &self.config)
                };
                s.checker.on_crash(now, loss);
                s.pending_loss = Some(wider(None, loss));
            }
            live_slots.push(node.slot);
        }
        self.tree.release_all(&ids);
        if let Some(pr) = self.processes.get_mut(&p) {
            pr.alive = false;
            pr.foreground = None;
            pr.drainers.clear();
            pr.scheduler = None;
        }
        if kind == CrashKind::Host {
            // Every process on the host dies.
            let others: Vec<ProcessId> = self
                .processes
                .iter()
                .filter(|(q, pr)| **q != p && pr.alive)
                .map(|(q, _)| *q)
                .collect();
            for q in others {
                self.crash_process_nodes_only(q, &mut live_slots);
            }
            self.tree.host_crash_idle(now, &self.config, &live_slots);
            if self.outside_release.is_some() {
                self.outside_release = None;
            }
        }
    }

    fn crash_process_nodes_only(&mut self, q: ProcessId, live_slots: &mut Vec<String>) {
        let now = self.now;
        let ids: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.process == q)
            .map(|n| n.id)
            .collect();
        for id in &ids {
            if let Some(node) = self.nodes.remove(id) {
                self.clients.remove(&node.client);
                self.net.forget_client(node.client, now);
                if let Some(s) = self.tree.get_mut(&node.slot) {
                    let flips = s.disk.stats().injected.bit_flips;
                    s.disk.crash(CrashKind::Host);
                    s.damaged = true;
                    let loss = if s.disk.stats().injected.bit_flips > flips {
                        CrashLoss::Corrupted
                    } else {
                        CrashLoss::for_crash(true, &self.config)
                    };
                    s.checker.on_crash(now, loss);
                    s.pending_loss = Some(loss);
                }
                live_slots.push(node.slot);
            }
        }
        self.tree.release_all(&ids);
        if let Some(pr) = self.processes.get_mut(&q) {
            pr.alive = false;
            pr.foreground = None;
            pr.drainers.clear();
            pr.scheduler = None;
        }
    }

    /// A new main process: the foreground opens its slot and scans.
    pub(super) fn start_main_process(&mut self) {
        let Some((slot, own)) = self.main_own.clone() else {
            return;
        };
        let p = self.new_process(&slot, own);
        self.main = Some(p);
        self.trace.record(
            self.now,
            "process",
            format_args!("p{} starts on {slot}", p.0),
        );
        self.open_foreground(p);
    }

    pub(super) fn start_liveness(&mut self) {
        self.phase = Phase::Liveness;
        self.next_crash = None;
        self.trace
            .record(self.now, "phase", format_args!("liveness"));
        for (_, s) in self.tree.iter_mut() {
            s.disk.set_faults(crate::disk::DiskFaults::none());
        }
        self.net.set_faults(self.net_faults.timing_only());
        self.drainer_faults.clear();
        let clients: Vec<_> = self.clients.keys().copied().collect();
        for c in clients {
            self.net.partition_client(c, self.now, None);
            self.net.clear_client_script(c);
        }
        if let Some((_, slot)) = self.outside_release.take() {
            self.tree.release(&slot, LockHolder::Outside);
        }
        let now = self.now;
        for n in self.nodes.values_mut() {
            n.wake_producer(now);
        }
        if self
            .main
            .is_none_or(|m| !self.processes.get(&m).is_some_and(|p| p.alive))
            && self.restart_at.is_none()
        {
            self.restart_at = Some(now);
        }
    }

    /// Whether the main process's foreground has everything it published
    /// acknowledged (and durable where the configuration promises it).
    pub(super) fn foreground_settled(&self) -> bool {
        let Some(node) = self.foreground_node() else {
            return false;
        };
        let Some(engine) = node.engine() else {
            return false;
        };
        if engine.last_terminal_error().is_some() || !node.producer_done() {
            return false;
        }
        let published = engine.published_fsn();
        let durable_ok = self.config.storage.backing == Backing::Memory
            || self.config.storage.durability == DurabilityMode::Memory
            || engine.durable_fsn() >= published;
        engine.acked_fsn() >= published && durable_ok
    }
}
