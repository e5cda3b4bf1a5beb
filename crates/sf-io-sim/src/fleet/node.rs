//! One engine of the fleet: its slot, its network client, its own
//! configuration and jitter seed, driven exactly as [`crate::Sim`] drives
//! its engine (outputs drained after every input, storage performed on the
//! slot's [`SimDisk`](crate::SimDisk) and fed back at once, network outputs
//! sent from its own [`ClientId`]).

use core::time::Duration;

use sf_core::durability::BatchTicket;
use sf_core::engine::{Engine, EngineError, Input, Output};
use sf_core::errors::SenderError;
use std::collections::BTreeMap;

use sf_core::storage::{AppendDecision, AppendError, StorageOutput};
use sf_core::{Fsn, Instant};

use crate::check::Violation;
use crate::network::ClientId;
use crate::network::{NetEvent, SimNetwork};
use crate::run::SimStats;
use crate::trace::Trace;
use crate::workload::{EncodedFrame, RowSource, WorkloadShape};
use crate::SimRng;

use super::tree::SlotDir;
use super::{NodeId, ProcessId};

/// What a node is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The application's own sender, with a producer.
    Foreground,
    /// A background drainer of an orphan slot: done when `target` (the
    /// highest FSN it recovered) is acknowledged; it then closes, and the
    /// engine's own close settles the `.ack-watermark` (no wait of the
    /// world's own).
    Drainer {
        /// The highest recovered FSN (`None`: nothing to send).
        target: Option<Fsn>,
    },
}

/// Where a foreground producer is.
#[derive(Debug, Clone)]
pub(crate) enum Producer {
    /// Acts at `next_at` (`None`: never again).
    Idle { next_at: Option<Instant> },
    /// Has a frame to place; retries at `retry_at` or on every step.
    Appending {
        frame: EncodedFrame,
        retry_at: Option<Instant>,
    },
    /// Waits for its `flush()` (C1).
    Flushing { ticket: BatchTicket },
    /// Called `close()`; waits for `Closed`.
    Closing,
}

/// Why a node's engine is being closed (a drainer's end, once `Closed`).
#[derive(Debug, Clone)]
pub(crate) enum Ending {
    /// Everything published was acknowledged.
    Drained,
    /// The engine latched this terminal error.
    Terminal(SenderError),
    /// The owner stopped it.
    Stopped,
}

/// One engine of the fleet.
#[derive(Debug)]
pub struct Node {
    /// Its id.
    pub id: NodeId,
    /// The process it belongs to.
    pub process: ProcessId,
    /// The slot it owns.
    pub slot: String,
    /// Its network endpoint.
    pub client: ClientId,
    /// Foreground or drainer.
    pub role: Role,
    pub(crate) engine: Option<Engine>,
    pub(crate) producer: Producer,
    pub(crate) batch_open: u32,
    pub(crate) batch_target: u32,
    pub(crate) headers: Vec<(String, String)>,
    /// Set when the engine said `Closed`.
    pub(crate) closed: Option<Result<(), SenderError>>,
    /// Set when the world asked the engine to close, and why.
    pub(crate) ending: Option<Ending>,
    /// Connect outputs this node's engine emitted.
    pub(crate) connects: u64,
    /// Connect answers routed to this node (ORPHAN-ISOLATION: never more
    /// than it asked for).
    pub(crate) connect_answers: u64,
    unreadable_send: bool,
    /// Longest delay of a storage completion (zero: delivered at once).
    pub(crate) io_latency: Duration,
    /// Draws the delays.
    pub(crate) io_rng: Option<SimRng>,
    /// Storage requests in flight, by completion time and order of issue:
    /// the disk performs each one only when it completes (so a crash before
    /// then loses it, as a process crash loses an un-issued write), and the
    /// engine hears the outcome at that instant. Completion times never
    /// decrease (one I/O queue per engine, in order).
    io_queue: BTreeMap<(Instant, u64), StorageOutput>,
    io_seq: u64,
    /// When the last queued request completes (FIFO bound).
    io_last_at: Instant,
    /// A per-client fault was given to this node (drainers).
    pub(crate) had_fault: bool,
    /// Started during the liveness phase: no fault of any kind can touch
    /// it, so a terminal error of it is a violation.
    pub(crate) started_in_liveness: bool,
}

/// What a node needs from the world for one step.
pub(crate) struct Ctx<'a> {
    pub now: Instant,
    pub slot: &'a mut SlotDir,
    pub net: &'a mut SimNetwork,
    pub trace: &'a mut Trace,
    pub violations: &'a mut Vec<Violation>,
}

impl Ctx<'_> {
    pub(crate) fn violate(&mut self, invariant: &'static str, detail: String) {
        self.trace
            .record(self.now, "violation", format_args!("{invariant}: {detail}"));
        self.violations.push(Violation {
            invariant,
            detail,
            at: self.now,
        });
    }
}

impl Node {
    pub(crate) fn new(
        id: NodeId,
        process: ProcessId,
        slot: String,
        client: ClientId,
        role: Role,
        engine: Engine,
        now: Instant,
    ) -> Node {
        Node {
            id,
            process,
            slot,
            client,
            role,
            engine: Some(engine),
            producer: Producer::Idle { next_at: Some(now) },
            batch_open: 0,
            batch_target: 1,
            headers: Vec::new(),
            closed: None,
            ending: None,
            connects: 0,
            connect_answers: 0,
            unreadable_send: false,
            io_latency: Duration::ZERO,
            io_rng: None,
            io_queue: BTreeMap::new(),
            io_seq: 0,
            io_last_at: now,
            had_fault: false,
            started_in_liveness: false,
        }
    }

    /// The engine, `None` once it closed.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// Connect attempts this node's engine made.
    pub fn connects(&self) -> u64 {
        self.connects
    }

    /// Whether this is a drainer.
    pub fn is_drainer(&self) -> bool {
        matches!(self.role, Role::Drainer { .. })
    }

    fn tag(&self, what: &str) -> String {
        format!("n{}:{what}", self.id.0)
    }

    /// Feeds one input, then drains the outputs.
    pub(crate) fn feed(&mut self, cx: &mut Ctx<'_>, input: Input<'_>) {
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        cx.trace.record(
            cx.now,
            &format!("n{}:in", self.id.0),
            format_args!("{input:?}"),
        );
        cx.slot.checker.on_input(cx.now, &input);
        if let Err(e) = engine.handle_input(cx.now, input) {
            cx.violate(
                "DRIVER",
                format!("node {} refused an input from the world: {e}", self.id.0),
            );
        }
        self.pump(cx);
    }

    /// Feeds one network event of this node's client.
    pub(crate) fn feed_net(&mut self, cx: &mut Ctx<'_>, event: NetEvent) {
        match &event {
            NetEvent::Connected { host, status, .. } => {
                self.connect_answers += 1;
                let refs = event.header_refs();
                self.feed(
                    cx,
                    Input::Connected {
                        host: *host,
                        status: *status,
                        headers: &refs,
                    },
                );
            }
            NetEvent::ConnectFailed { host, reason } => {
                self.connect_answers += 1;
                self.feed(
                    cx,
                    Input::ConnectFailed {
                        host: *host,
                        reason,
                    },
                )
            }
            NetEvent::Received(bytes) => self.feed(cx, Input::Received(bytes)),
            NetEvent::Disconnected { close_code, reason } => self.feed(
                cx,
                Input::Disconnected {
                    close_code: *close_code,
                    reason,
                },
            ),
            NetEvent::Pong => self.feed(cx, Input::Pong),
        }
    }

    /// When the next delayed storage completion is due.
    pub(crate) fn next_io_at(&self) -> Option<Instant> {
        self.io_queue.keys().next().map(|k| k.0)
    }

    /// Storage requests still in flight (dropped if the node dies now).
    pub(crate) fn io_in_flight(&self) -> usize {
        self.io_queue.len()
    }

    /// Performs the storage requests that complete by now on the slot's
    /// disk and delivers their outcomes.
    pub(crate) fn deliver_io(&mut self, cx: &mut Ctx<'_>) {
        while let Some(entry) = self.io_queue.first_entry() {
            if entry.key().0 > cx.now || self.engine.is_none() {
                break;
            }
            let op = entry.remove();
            let outcome = cx.slot.disk.perform(&op);
            self.feed(
                cx,
                Input::Io {
                    id: op.id(),
                    outcome,
                },
            );
        }
    }

    /// Fires the engine's timer if it is due.
    pub(crate) fn fire_timer(&mut self, cx: &mut Ctx<'_>) {
        if self
            .engine
            .as_ref()
            .and_then(Engine::poll_timeout)
            .is_some_and(|d| d <= cx.now)
        {
            self.feed(cx, Input::Timeout);
        }
    }

    /// Drains the engine's outputs: storage on the slot's disk (fed back at
    /// once), network from this node's client; then the checker looks at
    /// the engine.
    pub(crate) fn pump(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        let out_tag = self.tag("out");
        let in_tag = self.tag("in");
        while let Some(output) = self.engine.as_mut().and_then(Engine::poll_output) {
            cx.trace.record(now, &out_tag, format_args!("{output:?}"));
            cx.slot.checker.on_output(now, &output);
            match output {
                Output::Storage(op) => {
                    if let (false, Some(rng)) = (self.io_latency.is_zero(), self.io_rng.as_mut()) {
                        let max = u64::try_from(self.io_latency.as_nanos()).unwrap_or(u64::MAX);
                        let at = now
                            .saturating_add(Duration::from_nanos(rng.below(max)))
                            .max(self.io_last_at);
                        self.io_last_at = at;
                        self.io_seq += 1;
                        self.io_queue.insert((at, self.io_seq), op);
                        continue;
                    }
                    let outcome = cx.slot.disk.perform(&op);
                    let input = Input::Io {
                        id: op.id(),
                        outcome,
                    };
                    cx.trace.record(now, &in_tag, format_args!("{input:?}"));
                    cx.slot.checker.on_input(now, &input);
                    let fed = self
                        .engine
                        .as_mut()
                        .map(|engine| engine.handle_input(now, input));
                    if let Some(Err(e)) = fed {
                        cx.violate(
                            "DRIVER",
                            format!("node {} refused its own I/O completion: {e}", self.id.0),
                        );
                    }
                }
                Output::Connect { host } => {
                    self.connects += 1;
                    cx.net.connect_from(self.client, now, host, &self.headers);
                }
                Output::Send { fsn, location } => match cx.slot.disk.frame_bytes(&location) {
                    Some(bytes) => cx.net.send_from(self.client, now, bytes),
                    None => {
                        cx.violate(
                            "S2",
                            format!(
                                "slot {}: published frame {fsn} cannot be read back at {location:?}",
                                self.slot
                            ),
                        );
                        self.unreadable_send = true;
                    }
                },
                Output::Ping => cx.net.ping_from(self.client, now),
                Output::CloseConnection { code } => cx.net.close_from(self.client, now, code),
                Output::Progress { .. }
                | Output::Warn(_)
                | Output::Released
                | Output::Notify(_) => {}
                Output::Closed { result, .. } => {
                    self.closed = Some(result);
                }
            }
        }
        if self.closed.is_some() {
            self.engine = None;
            return;
        }
        if let Some(engine) = &self.engine {
            cx.slot.checker.after_step(now, engine);
        }
        if std::mem::take(&mut self.unreadable_send) && self.engine.is_some() {
            cx.net.close_from(self.client, now, 1001);
            self.feed(
                cx,
                Input::Disconnected {
                    close_code: None,
                    reason: "frame unreadable",
                },
            );
        }
    }

    /// Asks the engine to close (for `why`); the `Closed` output follows.
    pub(crate) fn begin_close(&mut self, cx: &mut Ctx<'_>, why: Ending) {
        if self.ending.is_none() {
            self.ending = Some(why);
        }
        let tag = self.tag("close");
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        if engine.is_closing() || engine.is_released() {
            return;
        }
        cx.trace
            .record(cx.now, &tag, format_args!("{:?}", self.ending));
        let _ = engine.close(cx.now);
        self.producer = Producer::Closing;
        self.pump(cx);
    }
}

/// What the producer needs besides the node: the fleet's row source and
/// workload randomness.
pub(crate) struct Work<'a> {
    pub rows: &'a mut RowSource,
    pub rng: &'a mut SimRng,
    pub shape: &'a WorkloadShape,
    /// Faults stopped: flush what is open, then stop producing.
    pub winding_down: bool,
    /// The application may close its sender at random.
    pub may_close: bool,
    pub stats: &'a mut SimStats,
}

/// What the producer asks the world to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProducerAsk {
    /// Nothing.
    Nothing,
    /// The application closes its sender (and so its drainers).
    Close,
}

impl Node {
    fn pause(now: Instant, work: &mut Work<'_>) -> Instant {
        now.saturating_add(work.shape.pause(work.rng))
    }

    /// Wakes a producer that waits for its next action (phase change).
    pub(crate) fn wake_producer(&mut self, now: Instant) {
        if let Producer::Idle { next_at } = &mut self.producer {
            *next_at = Some(now);
        }
    }

    /// When the producer acts next on its own (a due instant), if ever.
    pub(crate) fn producer_wake(&self) -> Option<Instant> {
        if self.engine.is_none() || self.is_drainer() {
            return None;
        }
        match &self.producer {
            Producer::Idle { next_at } => *next_at,
            Producer::Appending {
                retry_at: Some(r), ..
            } => Some(*r),
            _ => None,
        }
    }

    /// Whether the producer has nothing left to do.
    pub(crate) fn producer_done(&self) -> bool {
        matches!(self.producer, Producer::Idle { next_at: None })
    }

    /// Moves the producer on as far as it can at this instant.
    pub(crate) fn drive_producer(&mut self, cx: &mut Ctx<'_>, work: &mut Work<'_>) -> ProducerAsk {
        if self.is_drainer() {
            return ProducerAsk::Nothing;
        }
        // Bounded: every pass either waits or moves the producer on.
        for _ in 0..16 {
            let now = cx.now;
            let Some(engine) = self.engine.as_mut() else {
                return ProducerAsk::Nothing;
            };
            if let Some(e) = engine.last_terminal_error() {
                if !matches!(self.producer, Producer::Closing) {
                    let e = e.clone();
                    self.begin_close(cx, Ending::Terminal(e));
                }
                return ProducerAsk::Nothing;
            }
            match std::mem::replace(&mut self.producer, Producer::Closing) {
                Producer::Idle { next_at } => {
                    if next_at.is_none_or(|t| t > now) {
                        self.producer = Producer::Idle { next_at };
                        return ProducerAsk::Nothing;
                    }
                    if work.winding_down {
                        if self.batch_open > 0 {
                            self.start_flush(cx);
                        } else {
                            self.producer = Producer::Idle { next_at: None };
                            return ProducerAsk::Nothing;
                        }
                    } else if work.may_close && work.rng.chance(work.shape.close_per_million) {
                        self.producer = Producer::Idle { next_at: None };
                        return ProducerAsk::Close;
                    } else {
                        if self.batch_open == 0 {
                            self.batch_target = work
                                .rng
                                .range_inclusive(1, u64::from(work.shape.max_frames_per_batch))
                                as u32;
                        }
                        let rows = work
                            .rng
                            .range_inclusive(1, u64::from(work.shape.max_rows_per_frame))
                            as u32;
                        match work.rows.frame(work.rng, rows, work.shape.max_pad) {
                            Some(frame) => {
                                self.producer = Producer::Appending {
                                    frame,
                                    retry_at: None,
                                }
                            }
                            None => {
                                cx.violate(
                                    "DRIVER",
                                    "not even one row fits a frame of this configuration".into(),
                                );
                                self.producer = Producer::Idle { next_at: None };
                                return ProducerAsk::Nothing;
                            }
                        }
                    }
                }
                Producer::Appending { frame, retry_at } => {
                    if retry_at.is_some_and(|t| t > now) {
                        self.producer = Producer::Appending { frame, retry_at };
                        return ProducerAsk::Nothing;
                    }
                    if !self.try_append(cx, work, frame) {
                        return ProducerAsk::Nothing;
                    }
                }
                Producer::Flushing { ticket } => {
                    if !self.check_flush(cx, work, ticket) {
                        return ProducerAsk::Nothing;
                    }
                }
                Producer::Closing => {
                    self.producer = Producer::Closing;
                    return ProducerAsk::Nothing;
                }
            }
        }
        ProducerAsk::Nothing
    }

    /// Appends `frame` now (scenarios); the FSN or the engine's refusal.
    /// `Ok(None)`: the engine makes the producer wait.
    pub(crate) fn append_now(
        &mut self,
        cx: &mut Ctx<'_>,
        stats: &mut SimStats,
        frame: &EncodedFrame,
    ) -> Result<Option<Fsn>, EngineError> {
        let now = cx.now;
        let engine = self.engine.as_mut().ok_or(EngineError::Closed)?;
        match engine.begin_append(now, frame.payload.len() as u64) {
            Ok(AppendDecision::Place(p)) => {
                let written = cx.slot.disk.write_frame(&p, &frame.payload);
                let committed = engine.commit_append(now, p, written);
                if let Ok(c) = &committed {
                    cx.trace.record(
                        now,
                        &self.tag("commit"),
                        format_args!("fsn={} rows={}+{}", c.fsn, frame.first_row, frame.rows),
                    );
                    cx.slot
                        .checker
                        .on_commit(now, c.fsn, frame.first_row, frame.rows);
                    stats.rows += u64::from(frame.rows);
                }
                self.pump(cx);
                committed.map(|c| Some(c.fsn))
            }
            Ok(AppendDecision::Wait { .. }) => {
                self.pump(cx);
                Ok(None)
            }
            Err(e) => {
                self.pump(cx);
                Err(e)
            }
        }
    }

    /// One append attempt of the producer's frame; `true` if the producer
    /// moved on (committed, refused), `false` if it waits.
    fn try_append(&mut self, cx: &mut Ctx<'_>, work: &mut Work<'_>, frame: EncodedFrame) -> bool {
        let now = cx.now;
        match self.append_now(cx, work.stats, &frame) {
            Ok(Some(_)) => {
                self.batch_open += 1;
                if self.batch_open >= self.batch_target {
                    self.start_flush(cx);
                } else {
                    self.producer = Producer::Idle {
                        next_at: Some(Node::pause(now, work)),
                    };
                }
                true
            }
            Ok(None) => {
                self.producer = Producer::Appending {
                    frame,
                    retry_at: None,
                };
                false
            }
            Err(EngineError::Append(AppendError::WriteFailed { .. })) => {
                // S7: nothing was published; keep the bytes, retry later.
                work.stats.append_errors += 1;
                self.producer = Producer::Appending {
                    frame,
                    retry_at: Some(now.saturating_add(Duration::from_millis(10))),
                };
                true
            }
            Err(EngineError::Terminal(_)) | Err(EngineError::Closed) => {
                self.producer = Producer::Idle { next_at: None };
                false
            }
            Err(e) => {
                work.stats.append_errors += 1;
                cx.trace
                    .record(now, &self.tag("append-failed"), format_args!("{e}"));
                self.producer = Producer::Idle {
                    next_at: Some(Node::pause(now, work)),
                };
                true
            }
        }
    }

    fn start_flush(&mut self, cx: &mut Ctx<'_>) {
        let now = cx.now;
        let Some(engine) = self.engine.as_mut() else {
            return;
        };
        match engine.flush(now) {
            Ok(ticket) => {
                cx.trace.record(
                    now,
                    &self.tag("flush"),
                    format_args!("{:?}", ticket.last_fsn),
                );
                self.pump(cx);
                self.producer = Producer::Flushing { ticket };
            }
            Err(_) => {
                self.pump(cx);
                self.producer = Producer::Idle { next_at: None };
            }
        }
    }

    /// `true` if the flush is settled (returned or failed).
    fn check_flush(&mut self, cx: &mut Ctx<'_>, work: &mut Work<'_>, ticket: BatchTicket) -> bool {
        let now = cx.now;
        let Some(engine) = self.engine.as_ref() else {
            return false;
        };
        match engine.is_flushed(ticket) {
            Ok(true) => {
                let durable = engine.durable_fsn();
                cx.trace.record(
                    now,
                    &self.tag("flushed"),
                    format_args!("{:?}", ticket.last_fsn),
                );
                cx.slot
                    .checker
                    .on_flush_returned(now, ticket.last_fsn, durable);
                self.batch_open = 0;
                self.producer = Producer::Idle {
                    next_at: Some(Node::pause(now, work)),
                };
                true
            }
            Ok(false) => {
                self.producer = Producer::Flushing { ticket };
                false
            }
            Err(_) => {
                self.producer = Producer::Idle { next_at: None };
                false
            }
        }
    }
}
