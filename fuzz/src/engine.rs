//! Target `engine`: the sans-IO [`Engine`] fed an arbitrary sequence of
//! operations, with the simulator's invariant checkers
//! ([`sf_io_sim::Checker`]) watching every input, output and step.
//!
//! The input is structure-aware ([`arbitrary`]): a small configuration
//! (memory or files, durability, tiny segments and caps so rotation, the cap
//! and reclaim happen within a few appends, durable-ACK mode, hosts, timeouts),
//! an empty or a small recovered slot (built by the real recovery planner from
//! real segment images), then operations: appends (whose write may fail),
//! flushes, close, time advances and timer expiries, connect results of every
//! kind, server frames (OK at plausible and implausible sequences, DURABLE_ACK,
//! error frames, raw bytes), disconnects with any close code, PONGs, and the
//! completion of the oldest pending storage operation as success, failure or
//! a partial sync, plus completions nobody asked for.
//!
//! The driver answers the engine like an adapter: storage operations complete
//! in the order they were asked for (when an operation says so), connect
//! results name the host being connected when the operation says
//! "plausible". Properties: no panic; no checker violation (S1, S6, S8, W1,
//! W2, L1, C1); the engine never refuses a plausible input (its own storage
//! completion, the result of the connect it asked for). An implausible input
//! may be refused (the engine is then unchanged and the checker does not see
//! it) or ignored.

use std::collections::VecDeque;
use std::num::NonZeroUsize;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use qwp_proto::response::{DurableAckFrame, ErrorFrame, OkFrame, Response, TableSeqTxn};
use qwp_proto::upgrade::{DURABLE_ACK_ENABLED, HEADER_DURABLE_ACK, HEADER_ROLE, HEADER_VERSION};
use sf_core::ack::InFlightWindow;
use sf_core::durability::{BatchTicket, DurabilityMode};
use sf_core::engine::{Engine, EngineConfig, Input, Output};
use sf_core::recovery::{self, ListingEntry, RecoveredSlot, SegmentRead, WatermarkRead};
use sf_core::storage::{
    AppendDecision, Backing, IoFailure, IoId, IoOutcome, StorageConfig, StorageOutput,
};
use sf_core::watermark::encode_watermark;
use sf_core::{Fsn, Instant, SegmentGen};
use sf_io_sim::{Checker, CrashLoss};

use crate::seeds::segment_image;
use crate::Outcome;

/// The whole fuzz input.
#[derive(Debug, Arbitrary)]
pub struct EngineInput {
    /// The configuration.
    pub config: ConfigInput,
    /// The slot the engine opens.
    pub slot: SlotInput,
    /// Seed of the backoff jitter.
    pub jitter_seed: u64,
    /// What happens, in order.
    pub ops: Vec<Op>,
}

/// A small engine configuration.
#[derive(Debug, Arbitrary)]
pub struct ConfigInput {
    /// Memory backing instead of files.
    pub memory: bool,
    /// `sf_durability` (files only): 0 memory, 1 flush, 2 append.
    pub durability: u8,
    /// Segment size = 64 + 16 × this.
    pub segment: u8,
    /// Cap = segment size × (1 + this % 4).
    pub cap_segments: u8,
    /// `sf_append_deadline_millis`.
    pub append_deadline_ms: u8,
    /// Spares = 1 + this % 3.
    pub spares: u8,
    /// Reclaim threshold; `None` keeps the backing's default.
    pub reclaim_min_bytes: Option<u16>,
    /// Hosts = 1 + this % 3.
    pub hosts: u8,
    /// `request_durable_ack=on`.
    pub durable_ack: bool,
    /// In-flight window = 1 + this % 16.
    pub window: u8,
    /// `close_flush_timeout_millis`; `None` skips the drain.
    pub close_timeout_ms: Option<u16>,
    /// `ack_timeout_millis`; `None` disables it.
    pub ack_timeout_ms: Option<u16>,
    /// Durable-ACK keepalive; `None` disables it.
    pub keepalive_ms: Option<u8>,
    /// Complete every storage operation as soon as it is asked for (as the
    /// simulator does), with the fault armed by [`Op::ArmIoFault`] if any;
    /// otherwise operations wait for [`Op::CompleteIo`].
    pub auto_io: bool,
}

/// The slot the engine is built over.
#[derive(Debug, Arbitrary)]
pub enum SlotInput {
    /// A fresh slot.
    Empty,
    /// A slot recovered from real segment images (files backing only).
    Recovered {
        /// Frames in the log (`% 32`).
        frames: u8,
        /// Frames per segment (`1 + % 8`, capped by the segment size).
        per_segment: u8,
        /// An `.ack-watermark` at this FSN.
        watermark: Option<u8>,
        /// FSN of the first recovered frame (an earlier life trimmed below).
        base: u8,
    },
}

/// One thing that happens.
#[derive(Debug, Arbitrary)]
pub enum Op {
    /// The producer appends a frame of this payload length; `write_fails`
    /// makes the adapter's write fail (`Some(true)`: no space).
    Append {
        /// Payload length.
        len: u8,
        /// The write fails.
        write_fails: Option<bool>,
    },
    /// The producer flushes (closes the batch).
    Flush,
    /// The producer closes the sender.
    Close,
    /// Time passes without an event.
    Advance {
        /// Milliseconds.
        millis: u16,
    },
    /// Time jumps to the engine's timeout and the timer fires.
    FireTimer,
    /// A timer fires at the current time, whether or not it was due.
    EarlyTimeout,
    /// The oldest pending storage operation completes.
    CompleteIo(IoResult),
    /// Every pending storage operation completes successfully.
    CompleteAllIo,
    /// With `auto_io`, the next storage operation ends this way.
    ArmIoFault(IoResult),
    /// A completion for an operation that was never asked for.
    StrayIo {
        /// Its id.
        id: u16,
        /// Its outcome.
        result: IoResult,
    },
    /// The connect gets an HTTP answer.
    Connected {
        /// Name the host being connected (`true`) or any host.
        plausible: bool,
        /// The host when not plausible.
        host: u8,
        /// The HTTP status.
        status: UpgradeStatus,
        /// `X-QWP-Version`.
        version: VersionChoice,
        /// `X-QWP-Durable-Ack: enabled`.
        echo: bool,
    },
    /// The connect fails before an HTTP answer.
    ConnectFailed {
        /// Name the host being connected (`true`) or any host.
        plausible: bool,
        /// The host when not plausible.
        host: u8,
    },
    /// The server sends an OK.
    ReceiveOk {
        /// Its sequence.
        seq: SeqChoice,
        /// Tables that committed `(table index % 3, seqTxn)`.
        tables: Vec<(u8, i8)>,
    },
    /// The server sends a DURABLE_ACK.
    ReceiveDurableAck {
        /// `(table index % 3, seqTxn)`.
        tables: Vec<(u8, i8)>,
    },
    /// The server sends an error frame.
    ReceiveError {
        /// Its status byte (OK and DURABLE_ACK statuses become 0x05).
        status: u8,
        /// Its sequence.
        seq: SeqChoice,
    },
    /// The server sends arbitrary bytes.
    ReceiveRaw(Vec<u8>),
    /// The connection ends.
    Disconnected {
        /// The close code, `None` for a transport failure.
        close_code: Option<CloseChoice>,
    },
    /// A PONG arrives.
    Pong,
}

/// How a storage operation ends.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum IoResult {
    /// Success.
    Done,
    /// ENOSPC.
    NoSpace,
    /// EIO.
    Io,
    /// A sync that reached only part of the request (`upto × n / 255`);
    /// success for other operations.
    PartialSync(u8),
}

/// The upgrade response status.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum UpgradeStatus {
    /// 101.
    Switching,
    /// 401.
    Unauthorized,
    /// 403.
    Forbidden,
    /// 421 with `X-QuestDB-Role: PRIMARY_CATCHUP`.
    RoleCatchup,
    /// 421 with `X-QuestDB-Role: REPLICA`.
    RoleReplica,
    /// 421 without a role.
    RoleMissing,
    /// Any status.
    Other(u16),
}

/// The `X-QWP-Version` header of an upgrade response.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum VersionChoice {
    /// `1`, the version this client speaks.
    Good,
    /// No header.
    Missing,
    /// Any number.
    Raw(u8),
}

/// An OK or error frame's sequence.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum SeqChoice {
    /// The last frame sent on this connection.
    Last,
    /// Frame `n % sent` of this connection.
    Nth(u8),
    /// `n + 1` beyond the last sent (W2 clamps it).
    Ahead(u8),
    /// Any value.
    Raw(i64),
}

/// A WebSocket close code.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum CloseChoice {
    /// 1000.
    Normal,
    /// 1001.
    GoingAway,
    /// A terminal code (1002, 1003, 1007, 1008, 1009, 1010).
    Terminal(u8),
    /// Any code.
    Raw(u16),
}

const TABLES: [&str; 3] = ["trades", "quotes", "ticks"];

/// Runs the body on `data`.
pub fn run(data: &[u8]) -> Outcome {
    let Ok(input) = EngineInput::arbitrary_take_rest(Unstructured::new(data)) else {
        return "unparsed";
    };
    run_input(input)
}

/// Runs the body on a structured input.
pub fn run_input(input: EngineInput) -> Outcome {
    let config = engine_config(&input.config);
    let slot = match config.storage.backing {
        Backing::Memory => RecoveredSlot::empty(),
        Backing::Files => recovered_slot(&input.slot, config.storage.segment_bytes),
    };
    let now = Instant::ZERO;
    let mut checker = Checker::new(&config);
    if slot != RecoveredSlot::empty() {
        // A slot with history unknown to this checker: start its epoch at
        // what recovery found.
        checker.on_crash(now, CrashLoss::Corrupted);
        checker.on_restart(now, &slot);
    }
    let engine = match Engine::new(config, slot, now, input.jitter_seed) {
        Ok(e) => e,
        Err(e) => {
            let _ = e.to_string();
            return "build_error";
        }
    };
    let mut d = Driver {
        engine,
        checker,
        now,
        io: VecDeque::new(),
        connecting: None,
        sent: 0,
        tickets: Vec::new(),
        next_row: 0,
        closed: false,
        auto_io: input.config.auto_io,
        armed: None,
        progressed: false,
    };
    d.pump();
    for op in input.ops {
        d.step(op);
        if d.closed {
            break;
        }
    }
    // Settle: every storage operation still pending completes.
    d.step(Op::CompleteAllIo);
    let violations = d.checker.take_violations();
    assert!(
        violations.is_empty(),
        "engine: invariant violations:\n{}",
        violations
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    if d.closed {
        "closed"
    } else if d.checker.halted() {
        "halted"
    } else if d.progressed {
        "acked"
    } else if d.engine.published_fsn().is_some() {
        "published"
    } else {
        "idle"
    }
}

fn engine_config(c: &ConfigInput) -> EngineConfig {
    let segment_bytes = 64 + 16 * u64::from(c.segment);
    let mut storage = if c.memory {
        StorageConfig::memory()
    } else {
        StorageConfig::files()
    };
    storage.segment_bytes = segment_bytes;
    storage.max_total_bytes = segment_bytes * (1 + u64::from(c.cap_segments % 4));
    storage.append_deadline = Duration::from_millis(u64::from(c.append_deadline_ms));
    storage.spares = 1 + usize::from(c.spares % 3);
    if let Some(r) = c.reclaim_min_bytes {
        storage.reclaim_min_bytes = u64::from(r);
    }
    if !c.memory {
        storage.durability = match c.durability % 3 {
            0 => DurabilityMode::Memory,
            1 => DurabilityMode::Flush,
            _ => DurabilityMode::Append,
        };
    }
    let hosts = NonZeroUsize::new(1 + usize::from(c.hosts % 3)).unwrap_or(NonZeroUsize::MIN);
    let mut config = EngineConfig::new(storage, hosts);
    config.request_durable_ack = c.durable_ack;
    if let Ok(w) = InFlightWindow::new(1 + u32::from(c.window % 16)) {
        config.in_flight_window = w;
    }
    config.close_flush_timeout = c
        .close_timeout_ms
        .map(|ms| Duration::from_millis(u64::from(ms)));
    config.ack_timeout = c
        .ack_timeout_ms
        .map(|ms| Duration::from_millis(u64::from(ms) + 1));
    config.keepalive_interval = c
        .keepalive_ms
        .map(|ms| Duration::from_millis(u64::from(ms) + 1));
    config
}

/// A slot recovered by the real planner from real segment images, or the
/// empty slot when the input does not make one.
fn recovered_slot(input: &SlotInput, segment_bytes: u64) -> RecoveredSlot {
    let SlotInput::Recovered {
        frames,
        per_segment,
        watermark,
        base,
    } = *input
    else {
        return RecoveredSlot::empty();
    };
    const PAYLOAD: &[u8] = b"QWP1\x01\x00\x00\x00";
    let capacity = segment_bytes.saturating_sub(24) / (8 + PAYLOAD.len() as u64);
    let per_segment = u64::from(1 + per_segment % 8).min(capacity).max(1);
    let frames = u64::from(frames % 32);
    let mut images = Vec::new();
    let mut fsn = u64::from(base);
    let mut left = frames;
    while left > 0 {
        let n = left.min(per_segment);
        let payloads = vec![PAYLOAD; n as usize];
        let used = 24 + n * (8 + PAYLOAD.len() as u64);
        let pad = segment_bytes.saturating_sub(used) as usize;
        images.push(segment_image(fsn, &payloads, &[], pad));
        fsn += n;
        left -= n;
    }
    let listing: Vec<ListingEntry> = images
        .iter()
        .enumerate()
        .map(|(g, img)| ListingEntry::new(SegmentGen(g as u64).file_name(), img.len() as u64))
        .chain(watermark.map(|_| ListingEntry::new(".ack-watermark", 16)))
        .collect();
    let Ok(read_plan) = recovery::plan_reads(Ok(listing)) else {
        return RecoveredSlot::empty();
    };
    let reads: Vec<SegmentRead> = read_plan
        .segment_files()
        .iter()
        .map(|f| {
            let g = f.gen.map_or(usize::MAX, |g| g.get() as usize);
            images
                .get(g)
                .map_or(SegmentRead::Failed("missing".into()), |i| {
                    SegmentRead::from_image(i)
                })
        })
        .collect();
    let wm = match watermark.and_then(|w| encode_watermark(Fsn(u64::from(w))).ok()) {
        Some(b) => WatermarkRead::Bytes(b.to_vec()),
        None => WatermarkRead::Absent,
    };
    recovery::plan(read_plan, reads, wm).map_or_else(|_| RecoveredSlot::empty(), |p| p.slot)
}

/// The adapter the fuzzer plays.
struct Driver {
    engine: Engine,
    checker: Checker,
    now: Instant,
    /// Storage operations asked for and not yet completed, oldest first.
    io: VecDeque<StorageOutput>,
    /// The host whose connect is in flight.
    connecting: Option<usize>,
    /// Frames sent on the current connection.
    sent: u64,
    /// Flushes (and append-durability appends) not yet returned.
    tickets: Vec<BatchTicket>,
    next_row: i64,
    closed: bool,
    /// Complete storage operations at once.
    auto_io: bool,
    /// The outcome of the next auto-completed storage operation.
    armed: Option<IoResult>,
    /// A `Progress` output was seen.
    progressed: bool,
}

fn io_id(op: &StorageOutput) -> IoId {
    op.id()
}

fn outcome_for(op: Option<&StorageOutput>, r: IoResult) -> IoOutcome {
    match r {
        IoResult::Done => IoOutcome::Done,
        IoResult::NoSpace => IoOutcome::Failed(IoFailure::NoSpace),
        IoResult::Io => IoOutcome::Failed(IoFailure::Io { os_code: Some(5) }),
        IoResult::PartialSync(n) => match op {
            Some(StorageOutput::Sync {
                from_offset,
                upto_offset,
                ..
            }) => {
                let span = upto_offset.saturating_sub(*from_offset);
                IoOutcome::Synced {
                    upto_offset: from_offset + span * u64::from(n) / 255,
                }
            }
            _ => IoOutcome::Done,
        },
    }
}

impl Driver {
    /// Feeds a plausible input: the engine must take it.
    fn feed(&mut self, input: Input<'_>) {
        let described = format!("{input:?}");
        match self.engine.handle_input(self.now, input) {
            Ok(()) => self.checker.on_input(self.now, &input),
            Err(e) => panic!("engine refused a plausible input {described}: {e}"),
        }
        self.pump();
    }

    /// Feeds an implausible input: refused (engine unchanged, the checker
    /// does not see it) or taken.
    fn feed_any(&mut self, input: Input<'_>) -> bool {
        let taken = self.engine.handle_input(self.now, input).is_ok();
        if taken {
            self.checker.on_input(self.now, &input);
        }
        self.pump();
        taken
    }

    /// Takes every output, as an adapter would, then lets the checker look.
    fn pump(&mut self) {
        self.drain_outputs();
        // Auto-completions may ask for more; bounded so a loop shows.
        for _ in 0..10_000 {
            if !self.auto_io || self.closed {
                break;
            }
            let Some(op) = self.io.pop_front() else { break };
            let outcome = outcome_for(Some(&op), self.armed.take().unwrap_or(IoResult::Done));
            let input = Input::Io {
                id: io_id(&op),
                outcome,
            };
            let described = format!("{input:?}");
            match self.engine.handle_input(self.now, input) {
                Ok(()) => self.checker.on_input(self.now, &input),
                Err(e) => panic!("engine refused its own I/O completion {described}: {e}"),
            }
            self.drain_outputs();
        }
        if !self.closed {
            self.checker.after_step(self.now, &self.engine);
        }
        self.settle_tickets();
    }

    /// Takes every output, as an adapter would.
    fn drain_outputs(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            self.checker.on_output(self.now, &out);
            match out {
                Output::Storage(op) => self.io.push_back(op),
                Output::Connect { host } => self.connecting = Some(host),
                Output::Send { .. } => self.sent += 1,
                Output::CloseConnection { .. } => {
                    self.connecting = None;
                    self.sent = 0;
                }
                Output::Notify(e) => {
                    let _ = e.to_string();
                }
                Output::Closed { .. } => self.closed = true,
                Output::Progress { .. } => self.progressed = true,
                Output::Ping | Output::Warn(_) | Output::Released => {}
            }
        }
    }

    /// Reports every flush that has returned (C1).
    fn settle_tickets(&mut self) {
        let mut i = 0;
        while let Some(&t) = self.tickets.get(i) {
            match self.engine.is_flushed(t) {
                Ok(true) => {
                    let durable = self.engine.durable_fsn();
                    self.checker
                        .on_flush_returned(self.now, t.last_fsn, durable);
                    self.tickets.swap_remove(i);
                }
                Ok(false) => i += 1,
                Err(_) => {
                    self.tickets.swap_remove(i);
                }
            }
        }
    }

    fn seq(&self, c: SeqChoice) -> i64 {
        let sent = i64::try_from(self.sent).unwrap_or(i64::MAX);
        match c {
            SeqChoice::Last => sent - 1,
            SeqChoice::Nth(n) if sent > 0 => i64::from(n) % sent,
            SeqChoice::Nth(_) => 0,
            SeqChoice::Ahead(n) => sent.saturating_add(i64::from(n)),
            SeqChoice::Raw(v) => v,
        }
    }

    fn receive(&mut self, resp: Response) {
        let mut bytes = Vec::new();
        if resp.encode_into(&mut bytes).is_ok() {
            self.feed_any(Input::Received(&bytes));
        }
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Append { len, write_fails } => self.append(len, write_fails),
            Op::Flush => {
                if let Ok(t) = self.engine.flush(self.now) {
                    self.tickets.push(t);
                }
                self.pump();
            }
            Op::Close => {
                let _ = self.engine.close(self.now);
                self.pump();
            }
            Op::Advance { millis } => {
                self.now = self
                    .now
                    .saturating_add(Duration::from_millis(u64::from(millis)));
                self.pump();
            }
            Op::FireTimer => {
                if let Some(t) = self.engine.poll_timeout() {
                    self.now = self.now.max(t);
                    self.feed(Input::Timeout);
                }
            }
            Op::EarlyTimeout => {
                self.feed_any(Input::Timeout);
            }
            Op::CompleteIo(r) => {
                if let Some(op) = self.io.pop_front() {
                    let outcome = outcome_for(Some(&op), r);
                    self.feed(Input::Io {
                        id: io_id(&op),
                        outcome,
                    });
                }
            }
            Op::CompleteAllIo => {
                // Completing one may ask for more; bounded so a loop shows.
                for _ in 0..10_000 {
                    let Some(op) = self.io.pop_front() else { break };
                    self.feed(Input::Io {
                        id: io_id(&op),
                        outcome: IoOutcome::Done,
                    });
                }
            }
            Op::ArmIoFault(r) => self.armed = Some(r),
            Op::StrayIo { id, result } => {
                let id = IoId(u64::from(id) + (1 << 40));
                self.feed_any(Input::Io {
                    id,
                    outcome: outcome_for(None, result),
                });
            }
            Op::Connected {
                plausible,
                host,
                status,
                version,
                echo,
            } => self.connected(plausible, host, status, version, echo),
            Op::ConnectFailed { plausible, host } => {
                let input = Input::ConnectFailed {
                    host: self.host(plausible, host),
                    reason: "connection refused",
                };
                if plausible && self.connecting.take().is_some() {
                    self.feed(input);
                } else if self.feed_any(input) {
                    // It named the host being connected after all.
                    self.connecting = None;
                }
            }
            Op::ReceiveOk { seq, tables } => {
                let tables = table_list(&tables);
                self.receive(Response::Ok(OkFrame {
                    sequence: self.seq(seq),
                    tables,
                }));
            }
            Op::ReceiveDurableAck { tables } => {
                let tables = table_list(&tables);
                self.receive(Response::DurableAck(DurableAckFrame { tables }));
            }
            Op::ReceiveError { status, seq } => {
                let status = if status == 0 || status == 2 {
                    5
                } else {
                    status
                };
                if let Ok(e) = ErrorFrame::new(status, self.seq(seq), "rejected by the fuzzer") {
                    self.receive(Response::Error(e));
                }
            }
            Op::ReceiveRaw(bytes) => {
                self.feed_any(Input::Received(&bytes));
            }
            Op::Disconnected { close_code } => {
                let close_code = close_code.map(|c| match c {
                    CloseChoice::Normal => 1000,
                    CloseChoice::GoingAway => 1001,
                    CloseChoice::Terminal(i) => {
                        qwp_proto::status::TERMINAL_CLOSE_CODES[usize::from(i) % 6]
                    }
                    CloseChoice::Raw(c) => c,
                });
                self.sent = 0;
                self.connecting = None;
                self.feed_any(Input::Disconnected {
                    close_code,
                    reason: "peer went away",
                });
            }
            Op::Pong => {
                self.feed_any(Input::Pong);
            }
        }
    }

    fn host(&self, plausible: bool, host: u8) -> usize {
        match (plausible, self.connecting) {
            (true, Some(h)) => h,
            _ => usize::from(host % 4),
        }
    }

    fn connected(
        &mut self,
        plausible: bool,
        host: u8,
        status: UpgradeStatus,
        version: VersionChoice,
        echo: bool,
    ) {
        let version = match version {
            VersionChoice::Good => Some("1".to_string()),
            VersionChoice::Missing => None,
            VersionChoice::Raw(v) => Some(v.to_string()),
        };
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if let Some(v) = &version {
            headers.push((HEADER_VERSION, v.as_bytes()));
        }
        if echo {
            headers.push((HEADER_DURABLE_ACK, DURABLE_ACK_ENABLED.as_bytes()));
        }
        let status = match status {
            UpgradeStatus::Switching => 101,
            UpgradeStatus::Unauthorized => 401,
            UpgradeStatus::Forbidden => 403,
            UpgradeStatus::RoleCatchup => {
                headers.push((HEADER_ROLE, b"PRIMARY_CATCHUP"));
                421
            }
            UpgradeStatus::RoleReplica => {
                headers.push((HEADER_ROLE, b"REPLICA"));
                421
            }
            UpgradeStatus::RoleMissing => 421,
            UpgradeStatus::Other(s) => s,
        };
        let input = Input::Connected {
            host: self.host(plausible, host),
            status,
            headers: &headers,
        };
        self.sent = 0;
        if plausible && self.connecting.take().is_some() {
            self.feed(input);
        } else if self.feed_any(input) {
            // It named the host being connected after all.
            self.connecting = None;
        }
    }

    fn append(&mut self, len: u8, write_fails: Option<bool>) {
        let decision = self.engine.begin_append(self.now, u64::from(len));
        let Ok(AppendDecision::Place(p)) = decision else {
            self.pump();
            return;
        };
        let result = match write_fails {
            None => Ok(()),
            Some(true) => Err(IoFailure::NoSpace),
            Some(false) => Err(IoFailure::Io { os_code: Some(5) }),
        };
        if let Ok(c) = self.engine.commit_append(self.now, p, result) {
            self.checker.on_commit(self.now, c.fsn, self.next_row, 1);
            self.next_row += 1;
            if let Some(t) = c.ticket {
                self.tickets.push(t);
            }
        }
        self.pump();
    }
}

fn table_list(tables: &[(u8, i8)]) -> Vec<TableSeqTxn> {
    tables
        .iter()
        .take(8)
        .map(|&(t, s)| TableSeqTxn::new(TABLES[usize::from(t) % 3], i64::from(s)))
        .collect()
}
