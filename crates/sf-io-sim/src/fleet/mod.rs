//! The multi-engine world: a foreground sender and its background orphan
//! drainers (sf-client §18.2, §5.2, §20), each a real [`Engine`] with its
//! own slot, network client, reconnect loop and host tracker, over ONE
//! simulated `sf_dir` ([`SlotTree`]) and ONE set of simulated servers
//! ([`SimNetwork`] with one [`ClientId`] per engine).
//!
//! # Shape of a run ([`Fleet::run_workload`])
//!
//! * **History**: earlier senders (each its own process) wrote into 1–6
//!   slots while their own client was partitioned, then crashed or closed
//!   fast, so their data stays unacknowledged: the orphans. Optionally one
//!   slot is corrupted at rest, one already carries `.failed`, and the host
//!   crashes at the end.
//! * **Main**: the foreground process opens its own slot with orphan drain
//!   on; its [`DrainScheduler`] (the pure policy in `sf-core`, the same
//!   code the tokio adapter runs) decides which siblings to drain and how
//!   many at once; the world starts a drainer [`Node`] per
//!   [`DrainScheduler::poll_start`] and reports each end through
//!   [`DrainScheduler::handle_end`], carrying out the [`DrainAction`].
//!   Swarm faults, per-client faults on drainers, process and host crashes.
//! * **Liveness**: faults off; every adoptable orphan must end drained or
//!   `.failed`, and the foreground's data acknowledged.
//!
//! # What the world decides on its own (the adapter's part)
//!
//! Lock tries, `.failed` writes under the lock, the watermark wait before
//! a drained slot is released, an application that reopens its sender
//! (which rescans) after a halt, a close, or when orphans are left over.

mod check;
mod node;
mod run;
mod step;
mod tree;

pub use node::{Node, Role};
pub use run::run_fleet_seed;
pub use tree::{LockHolder, SlotDir, SlotTree, LOCK_FILE};

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

use qwp_proto::upgrade::request_headers;
use sf_core::engine::{Engine, EngineConfig};
use sf_core::orphans::{
    judge, DrainAction, DrainCounters, DrainEnd, DrainScheduler, OwnSlots, Verdict,
};
use sf_core::reconnect::InitialConnectRetry;
use sf_core::recovery::RecoveryError;
use sf_core::Instant;

use crate::check::Violation;
use crate::disk::{CrashKind, DiskFaults};
use crate::network::{ClientId, ConnectFault, NetFaults, SimNetwork};
use crate::run::{SimOptions, SimStats};
use crate::trace::Trace;
use crate::workload::{RowSource, WorkloadShape};
use crate::SimRng;

use node::Ctx;

/// Steps at one virtual instant before the world calls it a spin (W5).
const SPIN_LIMIT: u64 = 100_000;

/// Most sender reopens (rescans) the liveness phase may use: once faults
/// are off, one rescan picks up every orphan a halted or busy scan left
/// (a second covers a lock an outside holder released meanwhile); needing
/// more is ORPHAN-LIVENESS.
const MAX_LIVENESS_RESCANS: u32 = 2;

/// Most passes of [`Fleet::start_drainers`] at one instant: every pass
/// starts a drainer or ends a queued slot, so hitting it means the
/// scheduler keeps handing out slots (ORPHAN-LIVENESS).
const START_PASSES: u32 = 1024;

/// One engine of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// One client process (a foreground sender and its drainers die together).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId(pub u32);

/// A per-client fault given to the next drainer of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainerFault {
    /// The drainer's client is partitioned for this long from its start.
    Partition(Duration),
    /// The drainer's first `n` connect attempts are refused.
    RefuseConnects(u32),
}

/// How a history sender ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryEnd {
    /// Its process dies.
    Crash,
    /// It closes without waiting for acknowledgements.
    Close,
}

/// One process of the fleet.
#[derive(Debug)]
struct Process {
    foreground: Option<NodeId>,
    fg_slot: String,
    own: OwnSlots,
    scheduler: Option<DrainScheduler>,
    /// The names the last scan judged adoptable (ORPHAN-SKIP).
    adoptable: BTreeSet<String>,
    drainers: BTreeSet<NodeId>,
    /// The foreground sender is reopened (and rescans) at this instant.
    reopen_at: Option<Instant>,
    /// A history sender: how and when it ends.
    history_end: Option<(Instant, HistoryEnd)>,
    alive: bool,
}

/// The phase of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    History,
    Faults,
    Liveness,
}

/// Counters of the fleet beyond [`SimStats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetStats {
    /// Drainer engines started.
    pub drainers_started: u64,
    /// Drainers that ended drained.
    pub drained: u64,
    /// `.failed` sentinels written by drainers.
    pub failed_written: u64,
    /// Drainers skipped because the lock was held.
    pub lock_skips: u64,
    /// Recovery refusals of a drainer.
    pub drain_refusals: u64,
    /// Drainers stopped by their owner or a crash.
    pub stopped: u64,
    /// Sender reopens (each a new scan).
    pub rescans: u64,
}

/// The multi-engine simulated world. See the module docs.
#[derive(Debug)]
pub struct Fleet {
    seed: u64,
    options: SimOptions,
    now: Instant,
    rng: SimRng,
    work_rng: SimRng,
    fault_rng: SimRng,
    config: EngineConfig,
    drainer_config: EngineConfig,
    history_config: EngineConfig,
    max_drainers: usize,
    shape: WorkloadShape,
    tree: SlotTree,
    net: SimNetwork,
    disk_faults: DiskFaults,
    net_faults: NetFaults,
    crash_kinds: Vec<CrashKind>,
    crash_mean: Duration,
    next_crash: Option<Instant>,
    restart_at: Option<Instant>,
    fault_end: Option<Instant>,
    outside_release: Option<(Instant, String)>,
    phase: Phase,
    autopilot: bool,
    /// The foreground must never latch a terminal error (no shared fault
    /// that could cause one is enabled): ORPHAN-ISOLATION.
    quiet_foreground: bool,
    nodes: BTreeMap<NodeId, Node>,
    clients: BTreeMap<ClientId, NodeId>,
    processes: BTreeMap<ProcessId, Process>,
    main: Option<ProcessId>,
    /// The main process's configuration, reused at every restart.
    main_own: Option<(String, OwnSlots)>,
    next_node: u32,
    next_client: u32,
    next_process: u32,
    drainer_faults: BTreeMap<String, Vec<DrainerFault>>,
    random_drainer_faults: bool,
    /// History clients partitioned at a later instant.
    partitions_due: Vec<(Instant, ClientId)>,
    rows: RowSource,
    headers: Vec<(String, String)>,
    /// Longest delay of a storage completion for every engine.
    io_latency: Duration,
    trace: Trace,
    violations: Vec<Violation>,
    stats: SimStats,
    fleet_stats: FleetStats,
    same_instant_steps: u64,
    stuck: bool,
    liveness_rescans: u32,
    /// How the last drainer of each slot ended (ORPHAN-LIVENESS reports).
    last_end: BTreeMap<String, String>,
}

impl Fleet {
    /// A fleet for `seed` running `config` for every engine (drainers get
    /// the drainer variant of it), at most `max_drainers` drainers per
    /// process, an empty `sf_dir`, quiet faults. Scenarios build the
    /// history with [`Fleet::add_orphan`] and start the foreground with
    /// [`Fleet::start_foreground`].
    pub fn with_config(
        seed: u64,
        options: &SimOptions,
        config: EngineConfig,
        max_drainers: usize,
    ) -> Fleet {
        let mut root = SimRng::new(seed);
        let _ = root.fork("config");
        // The same mapping as `Config::for_orphan_drainer` (sf-core keeps
        // the two in step).
        let drainer_config = config.for_orphan_drainer();
        let mut history_config = config.clone();
        history_config.close_flush_timeout = None;
        // A history sender keeps writing while it cannot connect (that is
        // how its data ends up orphaned), so its first connect is retried
        // in the background rather than failing the build.
        history_config.initial_connect_retry = InitialConnectRetry::Async;
        let net = SimNetwork::new(root.fork("net"), config.hosts.get(), NetFaults::none());
        let mut work_rng = root.fork("workload");
        let shape = WorkloadShape::random(&mut work_rng);
        let headers = request_headers("", config.request_durable_ack)
            .unwrap_or_default()
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
        let stats = SimStats {
            config: format!("{config:?}"),
            ..SimStats::default()
        };
        let mut fleet = Fleet {
            seed,
            options: options.clone(),
            now: Instant::ZERO,
            rng: root.fork("world"),
            fault_rng: root.fork("drainer-faults"),
            work_rng,
            rows: RowSource::new(config.storage.max_payload_len()),
            config,
            drainer_config,
            history_config,
            max_drainers: max_drainers.max(1),
            shape,
            tree: SlotTree::new(),
            net,
            disk_faults: DiskFaults::none(),
            net_faults: NetFaults::none(),
            crash_kinds: Vec::new(),
            crash_mean: Duration::from_secs(10),
            next_crash: None,
            restart_at: None,
            fault_end: None,
            outside_release: None,
            phase: Phase::History,
            autopilot: false,
            quiet_foreground: false,
            nodes: BTreeMap::new(),
            clients: BTreeMap::new(),
            processes: BTreeMap::new(),
            main: None,
            main_own: None,
            next_node: 0,
            next_client: 0,
            next_process: 0,
            drainer_faults: BTreeMap::new(),
            random_drainer_faults: false,
            partitions_due: Vec::new(),
            headers,
            io_latency: Duration::ZERO,
            trace: Trace::new(options.keep_trace),
            violations: Vec::new(),
            stats,
            fleet_stats: FleetStats::default(),
            same_instant_steps: 0,
            stuck: false,
            liveness_rescans: 0,
            last_end: BTreeMap::new(),
        };
        fleet.trace.record(
            Instant::ZERO,
            "start",
            format_args!(
                "fleet seed={seed} max_drainers={max_drainers} config={}",
                fleet.stats.config
            ),
        );
        fleet
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

    /// The foreground configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The simulated `sf_dir`.
    pub fn tree(&self) -> &SlotTree {
        &self.tree
    }

    /// The simulated `sf_dir`, to script disk faults per slot.
    pub fn tree_mut(&mut self) -> &mut SlotTree {
        &mut self.tree
    }

    /// The simulated network.
    pub fn network(&self) -> &SimNetwork {
        &self.net
    }

    /// The simulated network, to script faults.
    pub fn network_mut(&mut self) -> &mut SimNetwork {
        &mut self.net
    }

    /// The trace so far.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// The fleet counters.
    pub fn fleet_stats(&self) -> &FleetStats {
        &self.fleet_stats
    }

    /// Every live node, by id.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// The live node that owns `slot`, if any.
    pub fn node_on(&self, slot: &str) -> Option<&Node> {
        self.nodes.values().find(|n| n.slot == slot)
    }

    /// The main process's foreground engine.
    pub fn foreground(&self) -> Option<&Engine> {
        let p = self.processes.get(&self.main?)?;
        self.nodes.get(&p.foreground?)?.engine()
    }

    /// The main process's foreground node.
    pub fn foreground_node(&self) -> Option<&Node> {
        let p = self.processes.get(&self.main?)?;
        self.nodes.get(&p.foreground?)
    }

    /// The drain counters of the main process's current scan.
    pub fn drain_counters(&self) -> Option<DrainCounters> {
        let p = self.processes.get(&self.main?)?;
        p.scheduler.as_ref().map(DrainScheduler::counters)
    }

    /// Live drainer nodes of the main process.
    pub fn active_drainers(&self) -> usize {
        self.main
            .and_then(|m| self.processes.get(&m))
            .map_or(0, |p| p.drainers.len())
    }

    /// Every violation so far: the slot checkers', the world's and the
    /// servers', in time order.
    pub fn violations(&self) -> Vec<Violation> {
        let mut v: Vec<Violation> = self
            .tree
            .iter()
            .flat_map(|(name, s)| {
                s.checker.violations().iter().map(move |x| Violation {
                    invariant: x.invariant,
                    detail: format!("slot {name}: {}", x.detail),
                    at: x.at,
                })
            })
            .chain(self.violations.iter().cloned())
            .chain(self.net.violations().iter().map(|n| Violation {
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

    /// Sets the disk and network faults of the main phase (scenarios).
    pub fn set_faults(&mut self, disk: DiskFaults, net: NetFaults) {
        self.disk_faults = disk;
        self.net_faults = net;
    }

    /// Storage completions of engines opened from now on arrive up to
    /// `max` after the request (uniform), so engines see syncs, creations
    /// and watermark writes in flight (a drainer waits for its watermark).
    pub fn set_io_latency(&mut self, max: Duration) {
        self.io_latency = max;
    }

    /// Declares that no enabled fault can make the main foreground latch a
    /// terminal error, so one that does is ORPHAN-ISOLATION (another
    /// engine's traffic reached it).
    pub fn set_quiet_foreground(&mut self, quiet: bool) {
        self.quiet_foreground = quiet;
    }

    /// Gives the next drainer of `slot` a per-client fault (FIFO per slot).
    pub fn script_drainer(&mut self, slot: &str, fault: DrainerFault) {
        self.drainer_faults
            .entry(slot.to_owned())
            .or_default()
            .push(fault);
    }

    // ----- running a node ------------------------------------------------------

    fn new_client(&mut self) -> ClientId {
        let c = ClientId(self.next_client);
        self.next_client += 1;
        c
    }

    fn new_process(&mut self, fg_slot: &str, own: OwnSlots) -> ProcessId {
        let id = ProcessId(self.next_process);
        self.next_process += 1;
        self.processes.insert(
            id,
            Process {
                foreground: None,
                fg_slot: fg_slot.to_owned(),
                own,
                scheduler: None,
                adoptable: BTreeSet::new(),
                drainers: BTreeSet::new(),
                reopen_at: None,
                history_end: None,
                alive: true,
            },
        );
        id
    }

    /// Runs `f` on node `id` with its slot, the network and the trace.
    fn with_node(&mut self, id: NodeId, f: impl FnOnce(&mut Node, &mut Ctx<'_>)) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(slot) = self.tree.get_mut(&node.slot) else {
            return;
        };
        let mut cx = Ctx {
            now: self.now,
            slot,
            net: &mut self.net,
            trace: &mut self.trace,
            violations: &mut self.violations,
        };
        f(node, &mut cx);
    }

    /// Opens `slot` (whose lock `id` already holds) through its disk's
    /// recovery and builds an engine; the refusal if recovery refused.
    fn open_node(
        &mut self,
        id: NodeId,
        process: ProcessId,
        slot_name: &str,
        role: Role,
        client: ClientId,
    ) -> Result<NodeId, RecoveryError> {
        let now = self.now;
        let config = match role {
            Role::Foreground if self.phase == Phase::History => self.history_config.clone(),
            Role::Foreground => self.config.clone(),
            Role::Drainer { .. } => self.drainer_config.clone(),
        };
        let jitter = self.rng.next_u64();
        let Some(slot) = self.tree.get_mut(slot_name) else {
            return Err(RecoveryError::Listing {
                reason: format!("sim: no slot {slot_name}"),
            });
        };
        let holder = slot.lock();
        if holder != Some(LockHolder::Node(id)) {
            let detail = format!(
                "node {} opens slot {slot_name} whose lock is held by {holder:?}",
                id.0
            );
            self.violate("ORPHAN-SKIP", detail);
            return Err(RecoveryError::Listing {
                reason: "sim: lock not held".into(),
            });
        }
        let slot = self.tree.get_mut(slot_name).ok_or(RecoveryError::Listing {
            reason: "sim: slot vanished".into(),
        })?;
        match slot.disk.recover() {
            Ok(plan) => {
                if slot.lives > 0 || slot.pending_loss.is_some() {
                    let injected = slot.disk.stats().injected;
                    let wm = injected.watermark_fail + injected.read_fail;
                    if wm > slot.watermark_faults_seen {
                        slot.checker.distrust_watermark();
                    }
                    slot.watermark_faults_seen = wm;
                    slot.checker.on_restart(now, &plan.slot);
                }
                slot.pending_loss = None;
                slot.lives += 1;
                let recovered = plan.slot;
                self.trace.record(
                    now,
                    &format!("n{}:open", id.0),
                    format_args!(
                        "slot={slot_name} role={role:?} next_fsn={} acked={:?} segments={}",
                        recovered.next_fsn,
                        recovered.acked,
                        recovered.segments.len()
                    ),
                );
                match Engine::new(config, recovered, now, jitter) {
                    Ok(engine) => {
                        let role = match role {
                            Role::Drainer { .. } => Role::Drainer {
                                target: engine.published_fsn(),
                            },
                            r => r,
                        };
                        let mut node =
                            Node::new(id, process, slot_name.to_owned(), client, role, engine, now);
                        node.headers = self.headers.clone();
                        node.started_in_liveness = self.phase == Phase::Liveness;
                        if !self.io_latency.is_zero() {
                            node.io_latency = self.io_latency;
                            node.io_rng = Some(self.rng.fork("io"));
                        }
                        self.stats.lives += 1;
                        self.nodes.insert(id, node);
                        self.clients.insert(client, id);
                        self.with_node(id, |n, cx| n.pump(cx));
                        Ok(id)
                    }
                    Err(e) => {
                        self.violate(
                            "S3",
                            format!("the engine refused the slot recovery produced for {slot_name}: {e}"),
                        );
                        Err(RecoveryError::Listing {
                            reason: format!("sim: engine refused: {e}"),
                        })
                    }
                }
            }
            Err(e) => {
                self.stats.recovery_refusals += 1;
                let damaged = slot.damaged;
                self.trace.record(
                    now,
                    &format!("n{}:refused", id.0),
                    format_args!("slot={slot_name} {e}"),
                );
                if matches!(e, RecoveryError::ReadCountMismatch { .. }) {
                    self.violate(
                        "S3",
                        format!("the simulated adapter misread slot {slot_name}: {e}"),
                    );
                } else if !e.is_transient() && !damaged {
                    self.violate(
                        "S2",
                        format!("recovery refused slot {slot_name}, which no host crash or bit flip touched: {e}"),
                    );
                }
                Err(e)
            }
        }
    }

    fn next_node_id(&mut self) -> NodeId {
        let id = NodeId(self.next_node);
        self.next_node += 1;
        id
    }

    /// Opens the foreground of process `p` (lock, recovery, engine); a
    /// refusal is retried later (transient) or the slot is wiped.
    fn open_foreground(&mut self, p: ProcessId) {
        let Some(proc_) = self.processes.get(&p) else {
            return;
        };
        let slot = proc_.fg_slot.clone();
        let id = self.next_node_id();
        let mut rng = self.rng.fork("slot");
        self.tree
            .create(&slot, &mut rng, self.current_disk_faults(), &self.config);
        if let Err(holder) = self.tree.try_lock(&slot, LockHolder::Node(id)) {
            // Someone else holds our own slot: the application's build
            // fails; it tries again later.
            self.trace.record(
                self.now,
                "fg-locked",
                format_args!("slot={slot} holder={holder:?}"),
            );
            if let Some(pr) = self.processes.get_mut(&p) {
                pr.reopen_at = Some(self.now.saturating_add(Duration::from_millis(500)));
            }
            return;
        }
        let client = self.new_client();
        match self.open_node(id, p, &slot, Role::Foreground, client) {
            Ok(id) => {
                if let Some(pr) = self.processes.get_mut(&p) {
                    pr.foreground = Some(id);
                }
                self.scan(p);
            }
            Err(e) => {
                self.tree.release(&slot, LockHolder::Node(id));
                let retry = if e.is_transient() {
                    Duration::from_millis(self.rng.range_inclusive(1, 500))
                } else {
                    self.wipe_slot(&slot);
                    Duration::ZERO
                };
                if let Some(pr) = self.processes.get_mut(&p) {
                    pr.reopen_at = Some(self.now.saturating_add(retry));
                }
            }
        }
    }

    /// The operator's answer to the foreground's own slot refusing: a
    /// fresh slot, the loss recorded by its checker.
    fn wipe_slot(&mut self, name: &str) {
        self.stats.slot_wipes += 1;
        self.trace
            .record(self.now, "wipe", format_args!("slot={name}"));
        let faults = self.current_disk_faults();
        let disk_rng = self.rng.fork("wiped-disk");
        let now = self.now;
        let backing = self.config.storage.backing;
        if let Some(s) = self.tree.get_mut(name) {
            s.disk = crate::disk::SimDisk::new(disk_rng, faults).with_backing(backing);
            s.checker.on_slot_wiped(now);
            s.damaged = false;
            s.pending_loss = None;
            s.watermark_faults_seen = 0;
        }
    }

    fn current_disk_faults(&self) -> DiskFaults {
        match self.phase {
            Phase::Faults => self.disk_faults.clone(),
            Phase::History | Phase::Liveness => DiskFaults::none(),
        }
    }

    /// A new scan of process `p` (at every open of its foreground sender
    /// with drain on): a fresh scheduler fed the listing of `sf_dir`.
    fn scan(&mut self, p: ProcessId) {
        let Some(proc_) = self.processes.get_mut(&p) else {
            return;
        };
        if proc_.history_end.is_some() {
            return;
        }
        self.fleet_stats.rescans += 1;
        let mut sched = DrainScheduler::new(proc_.own.clone(), self.max_drainers);
        let mut adoptable = BTreeSet::new();
        let mut seen = Vec::new();
        for (name, entries) in self.tree.listing() {
            let verdict = sched.handle_sibling(&name, entries.iter().map(String::as_str));
            if judge(&proc_.own, &name, entries.iter().map(String::as_str)) == Verdict::Adopt {
                adoptable.insert(name.clone());
            }
            seen.push(format!("{name}:{verdict:?}"));
        }
        self.trace.record(
            self.now,
            "scan",
            format_args!("p{} {}", p.0, seen.join(" ")),
        );
        proc_.scheduler = Some(sched);
        proc_.adoptable = adoptable;
        self.start_drainers(p);
    }

    /// Starts drainers while the scheduler of `p` allows.
    fn start_drainers(&mut self, p: ProcessId) {
        // Bounded: every pass ends a queued slot or starts a drainer.
        for pass in 0..=START_PASSES {
            if pass == START_PASSES {
                let (active, queued) = self
                    .processes
                    .get(&p)
                    .and_then(|pr| pr.scheduler.as_ref())
                    .map(|s| {
                        (
                            s.active().map(str::to_owned).collect::<Vec<_>>(),
                            s.queued(),
                        )
                    })
                    .unwrap_or_default();
                self.violate(
                    "ORPHAN-LIVENESS",
                    format!(
                        "process {} was handed {START_PASSES} drainer starts at one instant (active {active:?}, queued {queued})",
                        p.0
                    ),
                );
                return;
            }
            let Some(proc_) = self.processes.get_mut(&p) else {
                return;
            };
            if !proc_.alive {
                return;
            }
            let Some(sched) = proc_.scheduler.as_mut() else {
                return;
            };
            let Some(name) = sched.poll_start() else {
                return;
            };
            let own = proc_.own.clone();
            let was_adoptable = proc_.adoptable.contains(&name);
            let id = self.next_node_id();
            let entries = self
                .tree
                .get(&name)
                .map(SlotDir::entries)
                .unwrap_or_default();
            // The world's own notion (not `judge`, which is under test):
            // the process's own slots, and names no sender may carry.
            let owned = world_owns(&own, &name);
            let invalid = !world_valid_name(&name);
            if !was_adoptable || owned || invalid {
                self.violate(
                    "ORPHAN-SKIP",
                    format!(
                        "process {} starts a drainer on {name} (own {owned}, invalid name {invalid}, adoptable at scan: {was_adoptable}, {} entries)",
                        p.0,
                        entries.len()
                    ),
                );
            }
            self.trace.record(
                self.now,
                &format!("n{}:drain", id.0),
                format_args!("p{} slot={name}", p.0),
            );
            if let Err(holder) = self.tree.try_lock(&name, LockHolder::Node(id)) {
                self.fleet_stats.lock_skips += 1;
                self.trace.record(
                    self.now,
                    &format!("n{}:skip", id.0),
                    format_args!("slot={name} lock held by {holder:?}"),
                );
                self.end_drainer(p, id, &name, DrainEnd::LockHeld);
                continue;
            }
            // As the adapter does: `.failed` is re-checked under the lock
            // (another process may have written it after the scan).
            if self.tree.get(&name).is_some_and(|s| s.failed().is_some()) {
                self.trace.record(
                    self.now,
                    &format!("n{}:skip", id.0),
                    format_args!("slot={name} .failed found under the lock"),
                );
                self.end_drainer(p, id, &name, DrainEnd::AlreadyFailed);
                self.tree.release(&name, LockHolder::Node(id));
                continue;
            }
            // The client's faults are in place before its first connect.
            let client = self.new_client();
            let role = Role::Drainer { target: None };
            let had_fault = self.apply_drainer_faults(id, client, &name);
            match self.open_node(id, p, &name, role, client) {
                Ok(id) => {
                    if let Some(n) = self.nodes.get_mut(&id) {
                        n.had_fault = had_fault;
                    }
                    self.fleet_stats.drainers_started += 1;
                    if let Some(pr) = self.processes.get_mut(&p) {
                        pr.drainers.insert(id);
                    }
                }
                Err(e) => {
                    self.fleet_stats.drain_refusals += 1;
                    self.end_drainer(p, id, &name, DrainEnd::RecoveryRefused(e));
                    self.tree.release(&name, LockHolder::Node(id));
                }
            }
        }
    }

    /// Per-client faults for a new drainer: scripted ones for its slot,
    /// or (swarm) a random one during the fault phase. Whether it got one.
    fn apply_drainer_faults(&mut self, id: NodeId, client: ClientId, slot: &str) -> bool {
        let mut faults = Vec::new();
        if let Some(list) = self.drainer_faults.get_mut(slot) {
            if !list.is_empty() {
                faults.push(list.remove(0));
            }
        }
        if faults.is_empty() && self.random_drainer_faults && self.phase == Phase::Faults {
            match self.fault_rng.below(4) {
                0 => {
                    let max = self.config.backoff.max_outage();
                    let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
                    let d = self
                        .fault_rng
                        .range_inclusive(1, max.saturating_mul(2).max(1));
                    faults.push(DrainerFault::Partition(Duration::from_nanos(d)));
                }
                1 => {
                    let n = self.fault_rng.range_inclusive(1, 12) as u32;
                    faults.push(DrainerFault::RefuseConnects(n));
                }
                _ => {}
            }
        }
        let had = !faults.is_empty();
        for f in faults {
            self.trace
                .record(self.now, &format!("n{}:fault", id.0), format_args!("{f:?}"));
            match f {
                DrainerFault::Partition(d) => {
                    let until = self.now.saturating_add(d);
                    self.net.partition_client(client, self.now, Some(until));
                }
                DrainerFault::RefuseConnects(n) => {
                    for _ in 0..n {
                        self.net.script_connect_for(client, ConnectFault::Refuse);
                    }
                }
            }
        }
        had
    }

    /// Reports a drainer's end to its scheduler and carries out the
    /// action; the caller releases the lock after.
    fn end_drainer(&mut self, p: ProcessId, id: NodeId, slot: &str, end: DrainEnd) {
        let permanent = match &end {
            DrainEnd::Terminal(_) => true,
            DrainEnd::RecoveryRefused(e) => !e.is_transient(),
            DrainEnd::LockHeld
            | DrainEnd::AlreadyFailed
            | DrainEnd::Drained
            | DrainEnd::Stopped => false,
        };
        let end_text = format!("{end:?}");
        self.last_end.insert(
            slot.to_owned(),
            format!("n{} ended {end_text} at {}ns", id.0, self.now.as_nanos()),
        );
        match &end {
            DrainEnd::Drained => self.fleet_stats.drained += 1,
            DrainEnd::Stopped => self.fleet_stats.stopped += 1,
            _ => {}
        }
        let action = match self
            .processes
            .get_mut(&p)
            .and_then(|pr| pr.scheduler.as_mut())
        {
            Some(sched) => sched.handle_end(slot, end),
            None => DrainAction::Done,
        };
        self.trace.record(
            self.now,
            &format!("n{}:end", id.0),
            format_args!("slot={slot} {end_text} -> {action:?}"),
        );
        if let DrainAction::MarkFailed { reason } = action {
            let holder = self.tree.get(slot).and_then(SlotDir::lock);
            if holder != Some(LockHolder::Node(id)) {
                self.violate(
                    "ORPHAN-FAILED",
                    format!("node {} writes .failed on {slot} without holding its lock (holder {holder:?})", id.0),
                );
                if let Some(s) = self
                    .processes
                    .get_mut(&p)
                    .and_then(|pr| pr.scheduler.as_mut())
                {
                    s.mark_failed_done(slot, false);
                }
                return;
            }
            if !permanent {
                self.violate(
                    "ORPHAN-FAILED",
                    format!("node {} writes .failed on {slot} for a reason that is not permanent: {end_text}", id.0),
                );
            }
            self.fleet_stats.failed_written += 1;
            self.tree.write_failed(slot, &reason);
            // The scheduler counts the give-up (and frees the drainer)
            // only once the write is reported.
            if let Some(s) = self
                .processes
                .get_mut(&p)
                .and_then(|pr| pr.scheduler.as_mut())
            {
                s.mark_failed_done(slot, true);
            }
        }
    }

    // ----- building history (scenarios and the swarm) ---------------------------

    /// Starts a history sender on slot `name` (created if absent) in its
    /// own process; its client is partitioned from `partition_at` on (None:
    /// never). Its producer runs on the autopilot until `end_at`.
    pub fn start_history_sender(
        &mut self,
        name: &str,
        partition_at: Option<Duration>,
        end_at: Option<(Instant, HistoryEnd)>,
    ) -> Option<NodeId> {
        let mut rng = self.rng.fork("slot");
        self.tree
            .create(name, &mut rng, DiskFaults::none(), &self.config);
        let p = self.new_process(name, OwnSlots::Single(name.to_owned()));
        let id = self.next_node_id();
        self.tree.try_lock(name, LockHolder::Node(id)).ok()?;
        let saved = self.phase;
        self.phase = Phase::History;
        let client = self.new_client();
        if partition_at.is_some_and(|d| d.is_zero()) {
            self.net
                .partition_client(client, self.now, Some(Instant(u64::MAX)));
        }
        let opened = self.open_node(id, p, name, Role::Foreground, client);
        self.phase = saved;
        match opened {
            Ok(id) => {
                if let Some(d) = partition_at.filter(|d| !d.is_zero()) {
                    self.partitions_due
                        .push((self.now.saturating_add(d), client));
                }
                if let Some(pr) = self.processes.get_mut(&p) {
                    pr.foreground = Some(id);
                    pr.history_end = end_at;
                }
                Some(id)
            }
            Err(_) => {
                self.tree.release(name, LockHolder::Node(id));
                None
            }
        }
    }
}

/// Whether `name` is one of the slots `own` names, by the world's own
/// reading of the configuration: the single sender's slot, or `base-i`
/// with `i < max` for a pool.
fn world_owns(own: &OwnSlots, name: &str) -> bool {
    match own {
        OwnSlots::Single(s) => s == name,
        OwnSlots::Pool { base, max } => (0..*max).any(|i| name == format!("{base}-{i}")),
    }
}

/// The world's notion of a name a sender may carry: the histories only
/// ever use letters, digits and `-`, and `bad..dir` stands for every
/// invalid one.
fn world_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
