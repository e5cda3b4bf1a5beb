//! The world: one seed, a virtual clock, the simulated disk and network, and
//! a driver that runs the real [`Engine`] (the code the tokio adapter
//! drives) by performing its outputs and feeding back every outcome.
//!
//! # The loop
//!
//! Time jumps to the earliest of the engine's [`Engine::poll_timeout`], the
//! network's [`SimNetwork::next_event_at`], the producer's next action, the
//! next scheduled crash or restart, and the end of the fault phase. At that
//! instant the world delivers every due network event, fires the engine's
//! timer, restarts or crashes the engine if due, and lets the producer act.
//! After every input it drains [`Engine::poll_output`]: storage outputs are
//! performed on the [`SimDisk`] and their outcome fed back at once (the
//! simulated disk has no latency), network outputs go to the
//! [`SimNetwork`], whose answers come back later as events. The
//! [`Checker`] sees every input, every output and the engine after every
//! step.
//!
//! # Two ways to drive it
//!
//! * [`Sim::run_workload`] (what [`crate::run_seed`] does): the producer
//!   appends batches of rows, flushes, closes and reopens; crashes come at
//!   random; then faults stop and the liveness phase waits for everything
//!   published to be acknowledged.
//! * Step by step, for named scenarios: [`Sim::append_rows`],
//!   [`Sim::flush`], [`Sim::run_for`], [`Sim::run_until`],
//!   [`Sim::run_until_idle`], [`Sim::crash`], [`Sim::close`] and
//!   [`Sim::reopen`], with [`Sim::disk_mut`] and [`Sim::network_mut`] to
//!   script faults.
//!
//! # What the world decides on its own (the adapter's part, nothing more)
//!
//! A producer whose engine latched a terminal error closes it and opens a
//! new one after a pause, as an application would. A recovery refused for a
//! transient reason (listing, size or read failure) is retried; one refused
//! for what the slot holds (corruption, FSN gap) is wiped, as an operator
//! would, which the checker records as a loss (and as an S2 violation when
//! no host crash or bit flip can explain it).

use core::time::Duration;
use std::collections::BTreeMap;

use qwp_proto::upgrade::request_headers;
use sf_core::durability::{BatchTicket, DurabilityMode};
use sf_core::engine::{Engine, EngineConfig, EngineError, Input, Output};
use sf_core::errors::SenderError;
use sf_core::recovery::{RecoveredSlot, RecoveryError};
use sf_core::storage::{AppendDecision, AppendError, Backing, IoId, IoOutcome};
use sf_core::{Fsn, Instant};

use crate::check::{Checker, CrashLoss, DeliveryLog, Violation};
use crate::disk::{CrashKind, DiskFaults, SimDisk};
use crate::network::{NetEvent, NetFaults, SimNetwork};
use crate::run::{fault_rates, FaultKind, Report, SimOptions, SimStats};
use crate::trace::Trace;
use crate::workload::{random_config, EncodedFrame, RowSource, WorkloadShape};
use crate::SimRng;

/// Steps at one virtual instant before the world calls it a spin (W5: a
/// timer that never moves forward).
const SPIN_LIMIT: u64 = 100_000;

/// Where the producer is.
#[derive(Debug, Clone)]
enum Producer {
    /// Acts at `next_at` (`None`: never again, the liveness phase's end).
    Idle { next_at: Option<Instant> },
    /// Has a frame to place; retries on every step (the engine's timer
    /// covers the append deadline) or, after a failed write, at `retry_at`.
    Appending {
        frame: EncodedFrame,
        retry_at: Option<Instant>,
    },
    /// Waits for its `flush()` (C1).
    Flushing { ticket: BatchTicket },
    /// Called `close()`; waits for `Closed`.
    Closing,
    /// No engine (crashed, closed); a restart is scheduled.
    Down,
}

/// The phase of a workload run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The workload runs under faults.
    Faults,
    /// Faults are off; everything published must be acknowledged.
    Liveness,
}

/// The simulated world. See the module docs.
#[derive(Debug)]
pub struct Sim {
    seed: u64,
    options: SimOptions,
    now: Instant,
    rng: SimRng,
    work_rng: SimRng,
    config: EngineConfig,
    shape: WorkloadShape,
    disk: SimDisk,
    network: SimNetwork,
    net_faults: NetFaults,
    crash_kinds: Vec<CrashKind>,
    crash_mean: Duration,
    next_crash: Option<Instant>,
    restart_at: Option<Instant>,
    fault_end: Option<Instant>,
    phase: Phase,
    engine: Option<Engine>,
    checker: Checker,
    trace: Trace,
    rows: RowSource,
    producer: Producer,
    /// Frames committed since the last flush, and how many the current
    /// batch wants.
    batch_open: u32,
    batch_target: u32,
    autopilot: bool,
    headers: Vec<(String, String)>,
    /// A host crash or a bit flip happened since the slot was last wiped:
    /// a structural recovery refusal is explicable.
    damage_in_epoch: bool,
    same_instant_steps: u64,
    stuck: bool,
    /// The frame the engine published but the disk cannot give back: the
    /// connection is dropped after the current drain.
    unreadable_send: bool,
    /// Storage completions not yet delivered (the disk acted at once; the
    /// engine hears later), by delivery time and order of issue.
    io_queue: BTreeMap<(Instant, u64), (IoId, IoOutcome)>,
    io_seq: u64,
    /// Feed every event due at an instant before draining outputs.
    batch_inputs: bool,
    /// Set while a batch of inputs is fed: `feed` does not drain.
    defer_pump: bool,
    /// Injected watermark write and read failures seen at the last open.
    watermark_faults_seen: u64,
    /// Longest delay of a storage completion (zero: delivered at once).
    io_latency: Duration,
    /// The last `Closed` output: its result and whether it drained.
    last_closed: Option<(Result<(), SenderError>, bool)>,
    violations: Vec<Violation>,
    stats: SimStats,
}

impl Sim {
    /// A world for `seed`: a swarm-drawn engine configuration and workload
    /// shape, faults per `options`, an engine over an empty slot.
    pub fn new(seed: u64, options: &SimOptions) -> Sim {
        let mut root = SimRng::new(seed);
        let mut cfg_rng = root.fork("config");
        let config = random_config(&mut cfg_rng);
        let io_latency = match cfg_rng.below(3) {
            0 => Duration::ZERO,
            1 => Duration::from_micros(cfg_rng.range_inclusive(10, 500)),
            _ => Duration::from_millis(cfg_rng.range_inclusive(1, 20)),
        };
        let batch_inputs = cfg_rng.coin();
        let mut sim = Sim::build(seed, options, config, root, io_latency);
        sim.batch_inputs = batch_inputs;
        sim
    }

    /// A world for `seed` running `config` (scenarios pick their own).
    /// Storage completions arrive at once; see [`Sim::set_io_latency`].
    pub fn with_config(seed: u64, options: &SimOptions, config: EngineConfig) -> Sim {
        let mut root = SimRng::new(seed);
        let _ = root.fork("config");
        Sim::build(seed, options, config, root, Duration::ZERO)
    }

    /// With `on`, every event due at one instant is fed before the outputs
    /// are drained, as the tokio adapter does with the inputs it collected
    /// while it slept: outputs decided for a connection can then still be
    /// queued when its disconnect arrives.
    pub fn set_batch_inputs(&mut self, on: bool) {
        self.batch_inputs = on;
    }

    /// Storage completions arrive up to `max` after the request (uniform),
    /// so the engine sees syncs, creations and unlinks in flight.
    pub fn set_io_latency(&mut self, max: Duration) {
        self.io_latency = max;
    }

    fn build(
        seed: u64,
        options: &SimOptions,
        config: EngineConfig,
        mut root: SimRng,
        io_latency: Duration,
    ) -> Sim {
        let mut fault_rng = root.fork("faults");
        let enabled: Vec<FaultKind> = match &options.faults {
            Some(list) => list.clone(),
            None => FaultKind::ALL
                .iter()
                .copied()
                .filter(|_| fault_rng.coin())
                .collect(),
        };
        let (disk_faults, net_faults) = fault_rates(&mut fault_rng, &enabled);
        let mut crash_kinds = Vec::new();
        if enabled.contains(&FaultKind::ProcessCrash) {
            crash_kinds.push(CrashKind::Process);
        }
        if enabled.contains(&FaultKind::HostCrash) || enabled.contains(&FaultKind::BitFlip) {
            crash_kinds.push(CrashKind::Host);
        }
        let crash_mean = Duration::from_millis(fault_rng.range_inclusive(1_000, 15_000));
        let disk = SimDisk::new(root.fork("disk"), disk_faults.clone())
            .with_backing(config.storage.backing);
        let network = SimNetwork::new(root.fork("net"), config.hosts.get(), net_faults.clone());
        let mut work_rng = root.fork("workload");
        let shape = WorkloadShape::random(&mut work_rng);
        let rng = root.fork("world");
        let headers = request_headers("", config.request_durable_ack)
            .unwrap_or_default()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        let rows = RowSource::new(config.storage.max_payload_len());
        let stats = SimStats {
            faults: enabled,
            config: format!("{config:?}"),
            ..SimStats::default()
        };
        let mut sim = Sim {
            seed,
            options: options.clone(),
            now: Instant::ZERO,
            rng,
            work_rng,
            checker: Checker::new(&config),
            config,
            shape,
            disk,
            network,
            net_faults,
            crash_kinds,
            crash_mean,
            next_crash: None,
            restart_at: None,
            fault_end: None,
            phase: Phase::Faults,
            engine: None,
            trace: Trace::new(options.keep_trace),
            rows,
            producer: Producer::Down,
            batch_open: 0,
            batch_target: 1,
            autopilot: false,
            headers,
            damage_in_epoch: false,
            same_instant_steps: 0,
            stuck: false,
            unreadable_send: false,
            io_queue: BTreeMap::new(),
            io_seq: 0,
            watermark_faults_seen: 0,
            batch_inputs: false,
            defer_pump: false,
            io_latency,
            last_closed: None,
            violations: Vec::new(),
            stats,
        };
        sim.trace.record(
            Instant::ZERO,
            "start",
            format_args!(
                "seed={seed} faults={:?} config={}",
                sim.stats.faults, sim.stats.config
            ),
        );
        sim.start_engine(RecoveredSlot::empty());
        sim
    }

    // ----- accessors -----------------------------------------------------------

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The engine configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The engine, `None` between a crash or close and the restart.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// The simulated disk.
    pub fn disk(&self) -> &SimDisk {
        &self.disk
    }

    /// The simulated disk, to script faults.
    pub fn disk_mut(&mut self) -> &mut SimDisk {
        &mut self.disk
    }

    /// The simulated network and servers.
    pub fn network(&self) -> &SimNetwork {
        &self.network
    }

    /// The simulated network, to script faults.
    pub fn network_mut(&mut self) -> &mut SimNetwork {
        &mut self.network
    }

    /// The checker.
    pub fn checker(&self) -> &Checker {
        &self.checker
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        let mut s = self.stats.clone();
        s.virtual_time = Duration::from_nanos(self.now.as_nanos());
        s.events = self.trace.len();
        s.check = self.checker.stats();
        s.disk = self.disk.stats();
        s.net = self.network.stats().clone();
        s
    }

    /// Every violation found so far: the checker's, the world's and the
    /// server's, in time order.
    pub fn violations(&self) -> Vec<Violation> {
        let mut v: Vec<Violation> = self
            .checker
            .violations()
            .iter()
            .chain(self.violations.iter())
            .cloned()
            .chain(self.network.violations().iter().map(|n| Violation {
                invariant: n.invariant,
                detail: format!("server: {}", n.detail),
                at: n.at,
            }))
            .collect();
        v.sort_by_key(|x| x.at);
        v
    }

    fn violate(&mut self, invariant: &'static str, detail: String) {
        self.trace
            .record(self.now, "violation", format_args!("{invariant}: {detail}"));
        self.violations.push(Violation {
            invariant,
            detail,
            at: self.now,
        });
    }

    // ----- the engine's life ----------------------------------------------------

    fn start_engine(&mut self, slot: RecoveredSlot) {
        let seed = self.rng.next_u64();
        self.trace.record(
            self.now,
            "open",
            format_args!(
                "next_fsn={} acked={:?} segments={} spares={}",
                slot.next_fsn,
                slot.acked,
                slot.segments.len(),
                slot.leftover_spares.len()
            ),
        );
        if self.stats.lives > 0 {
            let injected = self.disk.stats().injected;
            let watermark_faults = injected.watermark_fail + injected.read_fail;
            if watermark_faults > self.watermark_faults_seen {
                self.checker.distrust_watermark();
            }
            self.watermark_faults_seen = watermark_faults;
            self.checker.on_restart(self.now, &slot);
        }
        match Engine::new(self.config.clone(), slot, self.now, seed) {
            Ok(engine) => {
                self.engine = Some(engine);
                self.stats.lives += 1;
                self.producer = Producer::Idle {
                    next_at: Some(self.now),
                };
                self.batch_open = 0;
                self.pump();
            }
            Err(e) => {
                self.violate(
                    "S3",
                    format!("the engine refused the slot recovery produced: {e}"),
                );
                self.engine = None;
                self.producer = Producer::Down;
            }
        }
    }

    /// Opens the slot again through `disk.recover()` and builds a new
    /// engine. A refusal is retried later (transient) or the slot is wiped
    /// (structural); `Err` carries the refusal.
    pub fn reopen(&mut self) -> Result<(), RecoveryError> {
        if self.engine.is_some() {
            return Ok(());
        }
        match self.disk.recover() {
            Ok(plan) => {
                self.start_engine(plan.slot);
                Ok(())
            }
            Err(e) => {
                self.stats.recovery_refusals += 1;
                self.trace
                    .record(self.now, "recover-refused", format_args!("{e}"));
                // The same classification the orphan drain policy uses: a
                // misread (ReadCountMismatch) is transient there too, and
                // here it is also a violation of the simulated adapter.
                let transient = e.is_transient();
                if matches!(e, RecoveryError::ReadCountMismatch { .. }) {
                    self.violate("S3", format!("the simulated adapter misread the slot: {e}"));
                }
                if transient {
                    let pause = self.rng.range_inclusive(1_000_000, 500_000_000);
                    self.restart_at = Some(self.now.saturating_add(Duration::from_nanos(pause)));
                } else {
                    if !self.damage_in_epoch {
                        self.violate(
                            "S2",
                            format!(
                                "recovery refused a slot that no host crash or bit flip touched: {e}"
                            ),
                        );
                    }
                    self.wipe_slot();
                }
                Err(e)
            }
        }
    }

    /// The operator's answer to a slot recovery refuses for what it holds:
    /// a fresh slot (a new disk), the loss recorded by the checker.
    fn wipe_slot(&mut self) {
        self.stats.slot_wipes += 1;
        self.trace.record(self.now, "wipe", format_args!("slot"));
        self.disk = SimDisk::new(self.rng.fork("wiped-disk"), self.disk.faults().clone())
            .with_backing(self.config.storage.backing);
        self.checker.on_slot_wiped(self.now);
        self.damage_in_epoch = false;
        self.watermark_faults_seen = 0;
        self.restart_at = Some(self.now);
    }

    /// Crashes the engine (process or host) and restarts it at once
    /// through `disk.recover()`.
    pub fn crash(&mut self, kind: CrashKind) -> Result<(), RecoveryError> {
        self.crash_only(kind);
        self.restart_at = None;
        self.reopen()
    }

    fn crash_only(&mut self, kind: CrashKind) {
        if self.engine.is_none() {
            return;
        }
        self.trace
            .record(self.now, "crash", format_args!("{}", kind.as_str()));
        match kind {
            CrashKind::Process => self.stats.process_crashes += 1,
            CrashKind::Host => {
                self.stats.host_crashes += 1;
                self.damage_in_epoch = true;
            }
        }
        self.engine = None;
        self.io_queue.clear();
        self.network.close(self.now, 1006);
        let flips = self.disk.stats().injected.bit_flips;
        self.disk.crash(kind);
        let flipped = self.disk.stats().injected.bit_flips > flips;
        let loss = if flipped {
            self.damage_in_epoch = true;
            CrashLoss::Corrupted
        } else {
            CrashLoss::for_crash(kind == CrashKind::Host, &self.config)
        };
        self.checker.on_crash(self.now, loss);
        self.producer = Producer::Down;
        self.batch_open = 0;
    }

    /// The engine said `Closed`: the slot is released (the process may
    /// exit; memory backing loses what it held).
    fn on_closed(&mut self) {
        self.engine = None;
        self.io_queue.clear();
        self.network.close(self.now, 1000);
        self.disk.crash(CrashKind::Process);
        self.checker.on_clean_shutdown(self.now);
        self.producer = Producer::Down;
        self.batch_open = 0;
        if self.autopilot {
            let pause = self.rng.range_inclusive(1_000_000, 1_000_000_000);
            self.restart_at = Some(self.now.saturating_add(Duration::from_nanos(pause)));
        }
    }

    // ----- driving the engine -------------------------------------------------

    /// Feeds one input, then drains the outputs.
    fn feed(&mut self, input: Input<'_>) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        self.trace.record(self.now, "in", format_args!("{input:?}"));
        self.checker.on_input(self.now, &input);
        if let Err(e) = engine.handle_input(self.now, input) {
            let detail = format!("the engine refused an input from the world: {e}");
            self.violate("DRIVER", detail);
        }
        if !self.defer_pump {
            self.pump();
        }
    }

    fn feed_net(&mut self, event: NetEvent) {
        match &event {
            NetEvent::Connected { host, status, .. } => {
                let refs = event.header_refs();
                self.feed(Input::Connected {
                    host: *host,
                    status: *status,
                    headers: &refs,
                });
            }
            NetEvent::ConnectFailed { host, reason } => self.feed(Input::ConnectFailed {
                host: *host,
                reason,
            }),
            NetEvent::Received(bytes) => self.feed(Input::Received(bytes)),
            NetEvent::Disconnected { close_code, reason } => self.feed(Input::Disconnected {
                close_code: *close_code,
                reason,
            }),
            NetEvent::Pong => self.feed(Input::Pong),
        }
    }

    /// Drains the engine's outputs: storage on the disk (fed back at once),
    /// network to the network; then the checker looks at the engine.
    fn pump(&mut self) {
        let now = self.now;
        let mut closed = false;
        while let Some(output) = self.engine.as_mut().and_then(Engine::poll_output) {
            self.trace.record(now, "out", format_args!("{output:?}"));
            self.checker.on_output(now, &output);
            match output {
                Output::Storage(op) => {
                    let outcome = self.disk.perform(&op);
                    let id = op.id();
                    if !self.io_latency.is_zero() {
                        let max = u64::try_from(self.io_latency.as_nanos()).unwrap_or(u64::MAX);
                        let at = now.saturating_add(Duration::from_nanos(self.rng.below(max)));
                        self.io_seq += 1;
                        self.io_queue.insert((at, self.io_seq), (id, outcome));
                        continue;
                    }
                    let input = Input::Io { id, outcome };
                    self.trace.record(now, "in", format_args!("{input:?}"));
                    self.checker.on_input(now, &input);
                    let fed = self
                        .engine
                        .as_mut()
                        .map(|engine| engine.handle_input(now, input));
                    if let Some(Err(e)) = fed {
                        self.violations.push(Violation {
                            invariant: "DRIVER",
                            detail: format!("the engine refused its own I/O completion: {e}"),
                            at: now,
                        });
                    }
                }
                Output::Connect { host } => {
                    self.network.connect(now, host, &self.headers);
                }
                Output::Send { fsn, location } => match self.disk.frame_bytes(&location) {
                    Some(bytes) => self.network.send(now, bytes),
                    None => {
                        self.violations.push(Violation {
                            invariant: "S2",
                            detail: format!(
                                "published frame {fsn} cannot be read back at {location:?}"
                            ),
                            at: now,
                        });
                        self.unreadable_send = true;
                    }
                },
                Output::Ping => self.network.ping(now),
                Output::CloseConnection { code } => self.network.close(now, code),
                Output::Notify(e) => {
                    self.stats.notifications += 1;
                    if e.is_terminal() {
                        self.stats.halts += 1;
                    }
                }
                Output::Progress { .. } | Output::Warn(_) | Output::Released => {}
                Output::Closed { result, drained } => {
                    self.last_closed = Some((result, drained));
                    closed = true;
                }
            }
        }
        if closed {
            self.on_closed();
        } else if let Some(engine) = &self.engine {
            self.checker.after_step(now, engine);
        }
        if std::mem::take(&mut self.unreadable_send) && self.engine.is_some() {
            // What the adapter does when a frame cannot be read: drop the
            // connection; the engine decides what next.
            self.network.close(now, 1001);
            self.feed(Input::Disconnected {
                close_code: None,
                reason: "frame unreadable",
            });
        }
    }

    /// The earliest instant something happens, if anything is scheduled.
    fn next_wake(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        take(self.engine.as_ref().and_then(Engine::poll_timeout));
        take(self.network.next_event_at());
        take(self.io_queue.keys().next().map(|k| k.0));
        take(self.restart_at);
        if self.autopilot {
            take(self.next_crash);
            take(self.fault_end);
            match &self.producer {
                Producer::Idle { next_at } => take(*next_at),
                Producer::Appending {
                    retry_at: Some(r), ..
                } => take(Some(*r)),
                _ => {}
            }
        }
        t
    }

    /// Runs the next due instant, if it is at or before `limit`; `false`
    /// when nothing is due by then (the clock is not moved).
    fn step(&mut self, limit: Instant) -> bool {
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
                self.violate(
                    "W5",
                    format!(
                        "{SPIN_LIMIT} steps at t={}ns without time moving: a timer that never moves forward",
                        self.now.as_nanos()
                    ),
                );
                self.stuck = true;
                return false;
            }
        } else {
            self.same_instant_steps = 0;
            self.now = t;
        }
        self.stats.steps += 1;
        let now = self.now;
        self.defer_pump = self.batch_inputs;
        while let Some(event) = self.network.poll_event(now) {
            self.feed_net(event);
        }
        while let Some(entry) = self.io_queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (id, outcome) = entry.remove();
            self.feed(Input::Io { id, outcome });
        }
        if std::mem::take(&mut self.defer_pump) {
            self.pump();
        }
        if self
            .engine
            .as_ref()
            .and_then(Engine::poll_timeout)
            .is_some_and(|d| d <= now)
        {
            self.feed(Input::Timeout);
        }
        if self.restart_at.is_some_and(|r| r <= now) {
            self.restart_at = None;
            let _ = self.reopen();
        }
        if self.autopilot {
            if self.fault_end.is_some_and(|e| e <= now) {
                self.fault_end = None;
                self.start_liveness();
            }
            if self.next_crash.is_some_and(|c| c <= now) {
                self.next_crash = None;
                if let Some(&kind) = self.rng.pick(&self.crash_kinds.clone()) {
                    if self.engine.is_some() {
                        self.crash_only(kind);
                        let pause = self.rng.range_inclusive(1_000_000, 2_000_000_000);
                        self.restart_at =
                            Some(self.now.saturating_add(Duration::from_nanos(pause)));
                    }
                }
                self.schedule_crash();
            }
            self.drive_producer();
        }
        true
    }

    fn schedule_crash(&mut self) {
        if self.crash_kinds.is_empty() || self.phase != Phase::Faults {
            return;
        }
        let mean = u64::try_from(self.crash_mean.as_nanos()).unwrap_or(u64::MAX);
        let d = self.rng.range_inclusive(1, mean.saturating_mul(2));
        self.next_crash = Some(self.now.saturating_add(Duration::from_nanos(d)));
    }

    // ----- the producer (autopilot) ------------------------------------------

    fn pause(&mut self) -> Instant {
        let d = self.shape.pause(&mut self.work_rng);
        self.now.saturating_add(d)
    }

    /// What an application does when the engine latched a terminal error:
    /// close it (released at once) and open a new one after a pause.
    fn close_halted(&mut self) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        if engine.is_closing() || engine.is_released() {
            return;
        }
        self.trace
            .record(self.now, "app", format_args!("close after halt"));
        let _ = engine.close(self.now);
        self.producer = Producer::Closing;
        self.pump();
    }

    fn drive_producer(&mut self) {
        // Bounded: every pass either waits or moves the producer on.
        for _ in 0..16 {
            let now = self.now;
            let Some(engine) = self.engine.as_mut() else {
                return;
            };
            if engine.last_terminal_error().is_some() && !matches!(self.producer, Producer::Closing)
            {
                self.close_halted();
                return;
            }
            match std::mem::replace(&mut self.producer, Producer::Down) {
                Producer::Idle { next_at } => {
                    if next_at.is_none_or(|t| t > now) {
                        self.producer = Producer::Idle { next_at };
                        return;
                    }
                    if self.phase == Phase::Liveness {
                        if self.batch_open > 0 {
                            self.start_flush();
                        } else {
                            self.producer = Producer::Idle { next_at: None };
                            return;
                        }
                    } else if self.work_rng.chance(self.shape.close_per_million) {
                        self.stats.closes += 1;
                        self.trace.record(now, "app", format_args!("close"));
                        let _ = engine.close(now);
                        self.producer = Producer::Closing;
                        self.pump();
                    } else {
                        if self.batch_open == 0 {
                            self.batch_target = self
                                .work_rng
                                .range_inclusive(1, u64::from(self.shape.max_frames_per_batch))
                                as u32;
                        }
                        let rows = self
                            .work_rng
                            .range_inclusive(1, u64::from(self.shape.max_rows_per_frame))
                            as u32;
                        match self
                            .rows
                            .frame(&mut self.work_rng, rows, self.shape.max_pad)
                        {
                            Some(frame) => {
                                self.producer = Producer::Appending {
                                    frame,
                                    retry_at: None,
                                }
                            }
                            None => {
                                self.violate(
                                    "DRIVER",
                                    "not even one row fits a frame of this configuration"
                                        .to_owned(),
                                );
                                self.producer = Producer::Idle { next_at: None };
                                return;
                            }
                        }
                    }
                }
                Producer::Appending { frame, retry_at } => {
                    if retry_at.is_some_and(|t| t > now) {
                        self.producer = Producer::Appending { frame, retry_at };
                        return;
                    }
                    if !self.try_append(frame) {
                        return;
                    }
                }
                Producer::Flushing { ticket } => {
                    if !self.check_flush(ticket) {
                        return;
                    }
                }
                p @ (Producer::Closing | Producer::Down) => {
                    self.producer = p;
                    return;
                }
            }
        }
    }

    /// One append attempt of the producer's frame; `true` if the producer
    /// moved on (committed, refused), `false` if it waits.
    fn try_append(&mut self, frame: EncodedFrame) -> bool {
        let now = self.now;
        let Some(engine) = self.engine.as_mut() else {
            return false;
        };
        let decision = engine.begin_append(now, frame.payload.len() as u64);
        match decision {
            Ok(AppendDecision::Place(p)) => {
                let written = self.disk.write_frame(&p, &frame.payload);
                let committed = engine.commit_append(now, p, written);
                match committed {
                    Ok(c) => {
                        self.trace.record(
                            now,
                            "commit",
                            format_args!("fsn={} rows={}+{}", c.fsn, frame.first_row, frame.rows),
                        );
                        self.checker
                            .on_commit(now, c.fsn, frame.first_row, frame.rows);
                        self.stats.rows += u64::from(frame.rows);
                        self.batch_open += 1;
                        self.pump();
                        if self.batch_open >= self.batch_target {
                            self.start_flush();
                        } else {
                            let next = self.pause();
                            self.producer = Producer::Idle {
                                next_at: Some(next),
                            };
                        }
                    }
                    Err(EngineError::Append(AppendError::WriteFailed { .. })) => {
                        // S7: nothing was published; the producer keeps
                        // the bytes and tries again on a fresh segment.
                        self.stats.append_errors += 1;
                        self.trace
                            .record(now, "append-failed", format_args!("write"));
                        self.pump();
                        let retry = now.saturating_add(Duration::from_millis(10));
                        self.producer = Producer::Appending {
                            frame,
                            retry_at: Some(retry),
                        };
                    }
                    Err(e) => {
                        self.stats.append_errors += 1;
                        self.trace.record(now, "append-failed", format_args!("{e}"));
                        self.pump();
                        let next = self.pause();
                        self.producer = Producer::Idle {
                            next_at: Some(next),
                        };
                    }
                }
                true
            }
            Ok(AppendDecision::Wait { .. }) => {
                self.pump();
                self.producer = Producer::Appending {
                    frame,
                    retry_at: None,
                };
                false
            }
            Err(EngineError::Append(AppendError::Backpressure(b))) => {
                // The caller got the error; the rows were never committed.
                self.stats.append_errors += 1;
                self.trace.record(now, "append-failed", format_args!("{b}"));
                self.pump();
                let next = self.pause();
                self.producer = Producer::Idle {
                    next_at: Some(next),
                };
                true
            }
            Err(EngineError::Terminal(_)) | Err(EngineError::Closed) => {
                self.pump();
                self.producer = Producer::Idle { next_at: None };
                self.close_halted();
                false
            }
            Err(EngineError::Append(e)) => {
                self.violate("DRIVER", format!("append refused: {e}"));
                self.producer = Producer::Idle { next_at: None };
                false
            }
        }
    }

    fn start_flush(&mut self) {
        let now = self.now;
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        match engine.flush(now) {
            Ok(ticket) => {
                self.trace
                    .record(now, "flush", format_args!("{:?}", ticket.last_fsn));
                self.pump();
                self.producer = Producer::Flushing { ticket };
            }
            Err(_) => {
                self.pump();
                self.producer = Producer::Idle { next_at: None };
                self.close_halted();
            }
        }
    }

    /// `true` if the flush is settled (returned or failed).
    fn check_flush(&mut self, ticket: BatchTicket) -> bool {
        let now = self.now;
        let Some(engine) = self.engine.as_ref() else {
            return false;
        };
        match engine.is_flushed(ticket) {
            Ok(true) => {
                let durable = engine.durable_fsn();
                self.trace
                    .record(now, "flushed", format_args!("{:?}", ticket.last_fsn));
                self.checker
                    .on_flush_returned(now, ticket.last_fsn, durable);
                self.batch_open = 0;
                let next = self.pause();
                self.producer = Producer::Idle {
                    next_at: Some(next),
                };
                true
            }
            Ok(false) => {
                self.producer = Producer::Flushing { ticket };
                false
            }
            Err(_) => {
                self.producer = Producer::Idle { next_at: None };
                self.close_halted();
                false
            }
        }
    }

    // ----- the workload run ---------------------------------------------------

    fn start_liveness(&mut self) {
        self.phase = Phase::Liveness;
        self.next_crash = None;
        self.trace
            .record(self.now, "phase", format_args!("liveness"));
        self.disk.set_faults(DiskFaults::none());
        self.network.set_faults(self.net_faults.timing_only());
        if self.engine.is_none() && self.restart_at.is_none() {
            self.restart_at = Some(self.now);
        }
        if let Producer::Idle { next_at } = &mut self.producer {
            *next_at = Some(self.now);
        }
    }

    /// Whether the liveness goal holds: an engine, no pending producer
    /// work, everything published acknowledged and (flush / append
    /// durability) durable.
    fn liveness_reached(&self) -> bool {
        let Some(engine) = &self.engine else {
            return false;
        };
        if engine.last_terminal_error().is_some() {
            return false;
        }
        if !matches!(self.producer, Producer::Idle { next_at: None }) {
            return false;
        }
        let published = engine.published_fsn();
        let durable_ok = self.config.storage.backing == Backing::Memory
            || self.config.storage.durability == DurabilityMode::Memory
            || engine.durable_fsn() >= published;
        engine.acked_fsn() >= published && durable_ok
    }

    fn stuck_state(&self) -> String {
        match &self.engine {
            None => format!(
                "no engine (restart at {:?}), producer {:?}",
                self.restart_at,
                producer_name(&self.producer)
            ),
            Some(e) => format!(
                "acked {:?} published {:?} durable {:?}, connection {:?}, in flight {}, engine timer {:?}, network event {:?}, producer {}, terminal {:?}",
                e.acked_fsn(),
                e.published_fsn(),
                e.durable_fsn(),
                e.connection_state(),
                e.in_flight_frames(),
                e.poll_timeout(),
                self.network.next_event_at(),
                producer_name(&self.producer),
                e.last_terminal_error().map(SenderError::to_string),
            ),
        }
    }

    /// Runs the workload: producer and crashes under faults for
    /// [`SimOptions::max_duration`], then the liveness phase (faults off,
    /// everything published must be acknowledged within
    /// [`SimOptions::liveness_bound`]).
    pub fn run_workload(&mut self) {
        self.autopilot = true;
        self.phase = Phase::Faults;
        if let Producer::Idle { next_at } = &mut self.producer {
            *next_at = Some(self.now);
        }
        self.fault_end = Some(self.now.saturating_add(self.options.max_duration));
        self.schedule_crash();
        while self.phase == Phase::Faults && self.step(Instant(u64::MAX)) {}
        if self.phase == Phase::Faults {
            // Nothing was scheduled at all: the engine and producer are idle.
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
            if !self.step(deadline) {
                if self.stuck {
                    break;
                }
                let state = self.stuck_state();
                if self.next_wake().is_none() {
                    self.violate(
                        "W5",
                        format!("nothing is scheduled and the work is not done: {state}"),
                    );
                } else {
                    self.violate(
                        "LIVENESS",
                        format!(
                            "not acknowledged within {:?} after the faults stopped: {state}",
                            self.options.liveness_bound
                        ),
                    );
                }
                break;
            }
        }
        self.autopilot = false;
    }

    /// Ends the run: the delivery proof (when everything is acknowledged)
    /// and the report.
    pub fn finish(mut self) -> Report {
        if self.checker.all_acked() && self.engine.is_some() {
            let log = self.delivery_log();
            self.checker.check_delivery(self.now, &log);
        }
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

    /// Every row id the servers committed, with how often.
    pub fn delivery_log(&self) -> DeliveryLog {
        let mut log = DeliveryLog::default();
        for m in self.network.accepted() {
            for t in &m.tables {
                for &id in &t.row_ids {
                    *log.counts.entry(id).or_insert(0) += 1;
                }
            }
        }
        log
    }

    // ----- step-level control (scenarios) --------------------------------------

    /// Runs the world for `d` of virtual time (no autonomous producer).
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now.saturating_add(d);
        while self.step(end) {}
        self.now = self.now.max(end);
    }

    /// Runs until `pred` holds or `limit` of virtual time passes; whether
    /// it held.
    pub fn run_until(&mut self, mut pred: impl FnMut(&Sim) -> bool, limit: Duration) -> bool {
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

    /// Runs until everything published is acknowledged (and durable in
    /// `flush` / `append` durability), within the liveness bound.
    pub fn run_until_idle(&mut self) -> bool {
        let bound = self.options.liveness_bound;
        let durable_needed = self.config.storage.backing == Backing::Files
            && self.config.storage.durability != DurabilityMode::Memory;
        self.run_until(
            |s| {
                s.engine.as_ref().is_some_and(|e| {
                    e.acked_fsn() >= e.published_fsn()
                        && (!durable_needed || e.durable_fsn() >= e.published_fsn())
                })
            },
            bound,
        )
    }

    /// Appends one frame of `rows` rows, running the world while the
    /// engine makes the producer wait; the frame's FSN, or the error the
    /// producer got.
    pub fn append_rows(&mut self, rows: u32) -> Result<Fsn, EngineError> {
        let frame = self
            .rows
            .frame(&mut self.work_rng, rows, 0)
            .ok_or(EngineError::Closed)?;
        loop {
            let now = self.now;
            let engine = self.engine.as_mut().ok_or(EngineError::Closed)?;
            match engine.begin_append(now, frame.payload.len() as u64) {
                Ok(AppendDecision::Place(p)) => {
                    let written = self.disk.write_frame(&p, &frame.payload);
                    let committed = engine.commit_append(now, p, written);
                    if let Ok(c) = &committed {
                        self.trace.record(
                            now,
                            "commit",
                            format_args!("fsn={} rows={}+{}", c.fsn, frame.first_row, frame.rows),
                        );
                        self.checker
                            .on_commit(now, c.fsn, frame.first_row, frame.rows);
                        self.stats.rows += u64::from(frame.rows);
                    }
                    self.pump();
                    return committed.map(|c| c.fsn);
                }
                Ok(AppendDecision::Wait { .. }) => {
                    self.pump();
                    if !self.step(Instant(u64::MAX)) {
                        return Err(EngineError::Closed);
                    }
                }
                Err(e) => {
                    self.pump();
                    return Err(e);
                }
            }
        }
    }

    /// A `flush()`: closes the batch and runs the world until it is done
    /// (C1); the batch's last FSN.
    pub fn flush(&mut self) -> Result<Option<Fsn>, EngineError> {
        let now = self.now;
        let engine = self.engine.as_mut().ok_or(EngineError::Closed)?;
        let ticket = engine.flush(now)?;
        self.pump();
        loop {
            let engine = self.engine.as_ref().ok_or(EngineError::Closed)?;
            if engine.is_flushed(ticket)? {
                let durable = engine.durable_fsn();
                self.checker
                    .on_flush_returned(self.now, ticket.last_fsn, durable);
                return Ok(ticket.last_fsn);
            }
            if !self.step(Instant(u64::MAX)) {
                return Err(EngineError::Closed);
            }
        }
    }

    /// `close()`: drains as the engine decides and releases the slot (C2);
    /// the `Closed` output's result and whether it drained, or `None` if
    /// no engine was open. Reopen with [`Sim::reopen`].
    pub fn close(&mut self) -> Option<(Result<(), SenderError>, bool)> {
        let now = self.now;
        let engine = self.engine.as_mut()?;
        engine.close(now).ok()?;
        self.last_closed = None;
        self.pump();
        while self.engine.is_some() && self.step(Instant(u64::MAX)) {}
        self.last_closed.take()
    }
}

fn producer_name(p: &Producer) -> &'static str {
    match p {
        Producer::Idle { next_at: None } => "done",
        Producer::Idle { .. } => "idle",
        Producer::Appending { .. } => "appending (waiting to place)",
        Producer::Flushing { .. } => "flushing (waiting for C1)",
        Producer::Closing => "closing",
        Producer::Down => "down",
    }
}
