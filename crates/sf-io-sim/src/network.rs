//! The simulated network: links from one or more clients to one or more
//! simulated hosts ([`SimServer`]), with latency, a virtual event queue and
//! every network and server fault of DESIGN §5.
//!
//! # Driving it
//!
//! The world performs the engine's network outputs with [`SimNetwork::connect`]
//! (`Output::Connect`), [`SimNetwork::send`] (`Output::Send`, the frame's
//! bytes), [`SimNetwork::ping`] (`Output::Ping`) and [`SimNetwork::close`]
//! (`Output::CloseConnection`), wakes at [`SimNetwork::next_event_at`], and
//! feeds every [`NetEvent`] from [`SimNetwork::poll_event`] to
//! `Engine::handle_input` (see [`NetEvent::header_refs`] for `Connected`).
//! After `close`, nothing more about that connection is reported, as
//! `Output::CloseConnection` requires.
//!
//! # Several clients
//!
//! Several engines (a foreground sender and orphan drainers) can share the
//! hosts, each as its own [`ClientId`] with its own current connection:
//! [`SimNetwork::connect_from`], [`SimNetwork::send_from`],
//! [`SimNetwork::ping_from`], [`SimNetwork::close_from`] and
//! [`SimNetwork::poll_client_event`], which names the client each event is
//! for. The single-client methods above are client `ClientId(0)` and draw
//! from the random streams exactly as they did before clients existed, so
//! a single-client run is unchanged. Hosts, restarts, seqTxns, durability,
//! random faults, violations and counters are shared by every client; the
//! random streams are drawn in the (deterministic) order the clients act.
//! Per-client faults for scenarios: [`SimNetwork::script_connect_for`],
//! [`SimNetwork::partition_client`], and [`SimNetwork::forget_client`] for a
//! client whose process died.
//!
//! # Model
//!
//! - Each direction of a connection is FIFO (a TCP stream): a message
//!   arrives at `max(previous arrival, now + latency)`.
//! - The server handles a connection's inbound messages in order; with a
//!   `service_time` (a slow server) each message that has arrived also
//!   waits for the host to finish the previous one, so responses fall
//!   behind and the client's in-flight window fills (backpressure). A
//!   client close is noticed when it arrives: the connection's messages
//!   still waiting for service are dropped (a server drops unread input of
//!   a socket it found closed), so an abandoned connection's backlog does
//!   not delay the next connection forever.
//! - The server decodes every frame with a decoder scoped to the connection
//!   (as a real server does) **and** on its own: a stored frame must be
//!   self-sufficient (sf-client §12), since any frame can be the first one
//!   replayed on a fresh connection. A frame that fails either decode is
//!   answered with PARSE_ERROR and recorded as a [`NetViolation`].
//! - Commits are recorded in [`SimNetwork::accepted`] with every row's
//!   `row_id`; each becomes durable (object-store upload) after a delay, and
//!   a DURABLE_ACK goes out on inbound activity only (a message or a PING),
//!   like the reference server.
//!
//! # Faults
//!
//! Random faults are drawn per connect attempt and per message from
//! [`NetFaults`] (rates per million); named scenarios queue exact faults
//! with [`SimNetwork::script_connect`] and [`SimNetwork::script_message`],
//! which take precedence over random draws, and poison rows with
//! [`SimNetwork::poison_row`]. Decisions where the spec is silent:
//! - A **future-sequence OK** ("an OK for a sequence never sent") names a
//!   sequence beyond its message only if, at the instant it reaches the
//!   client, the server has numbered every frame the client sent on the
//!   connection; otherwise it goes out as a plain OK. A client that clamps
//!   (W2) then trims exactly what the server handled; one that does not
//!   trims published frames it never sent. Were frames still in flight, the
//!   clamp itself would cover them and a later drop would lose them: a
//!   server lie no client survives, which would make swarm runs report
//!   client bugs that are not there.
//! - A **coalesced OK** is held back and merged (per-table seqTxns
//!   max-merged) into the next OK of the connection, or sent alone after
//!   `coalesce_window`; an error frame or a close frame first flushes it so
//!   responses stay in sequence order.
//! - **Losing un-durable commits on restart** is drawn only for a host whose
//!   connections all asked for durable ACKs: with OK-driven trimming a
//!   committed-then-lost row is a server failure no client can repair.
//! - A **DURABLE_ACK before its OK**: the host's pending uploads complete at
//!   once and the DURABLE_ACK covering the message is sent ahead of its OK.
//! - A **stale DURABLE_ACK** repeats a reported table one seqTxn lower; a
//!   **partial** one reports only the first advanced table (the rest go out
//!   on the next inbound activity).

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use qwp_proto::decoder::decode;
use qwp_proto::response::{OkFrame, Response, TableSeqTxn};
use qwp_proto::status::{
    STATUS_INTERNAL_ERROR, STATUS_PARSE_ERROR, STATUS_SCHEMA_MISMATCH, STATUS_SECURITY_ERROR,
    STATUS_WRITE_ERROR, TERMINAL_CLOSE_CODES,
};
use qwp_proto::upgrade::{
    accept_headers, durable_ack_requested, HEADER_MAX_VERSION, HEADER_ROLE, HEADER_VERSION,
    ROLE_PRIMARY_CATCHUP, STATUS_MISDIRECTED_REQUEST, STATUS_SWITCHING_PROTOCOLS,
};
use sf_core::Instant;

use crate::rng::SimRng;
use crate::server::{AcceptedTable, SimServer};

/// Fault rates and timing of the network and servers. Rates are integers
/// per million: per connect attempt (`*_connect`, `*_reject`, `bad_version`,
/// `omit_durable_echo`), per message the server handles (errors, drops,
/// closes, OK faults, restarts) or per DURABLE_ACK (partial, stale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetFaults {
    /// Shortest one-way latency.
    pub latency_min: Duration,
    /// Longest one-way latency.
    pub latency_max: Duration,
    /// Time the server spends on each message (0 = instant): a slow server.
    pub service_time: Duration,
    /// Shortest time from commit to durable upload.
    pub durable_delay_min: Duration,
    /// Longest time from commit to durable upload.
    pub durable_delay_max: Duration,
    /// The connect fails before any HTTP answer (connection refused).
    pub refuse_connect: u32,
    /// The connect never answers (the client's connect timeout must end it).
    pub hang_connect: u32,
    /// `421` with a role (`PRIMARY_CATCHUP`, `REPLICA`, `PRIMARY`) or none.
    pub role_reject: u32,
    /// `401`/`403`: terminal for the client.
    pub auth_reject: u32,
    /// Another non-101 status (400, 404, 426, 500, 503).
    pub status_reject: u32,
    /// `101` with an `X-QWP-Version` outside `[1, client max]` or unparsable.
    pub bad_version: u32,
    /// `101` without the `X-QWP-Durable-Ack: enabled` echo.
    pub omit_durable_echo: u32,
    /// An error frame whose default policy is DROP_AND_CONTINUE
    /// (SCHEMA_MISMATCH, WRITE_ERROR).
    pub error_continue: u32,
    /// An error frame whose default policy is HALT (PARSE_ERROR,
    /// INTERNAL_ERROR, SECURITY_ERROR, unknown `01`/`04`/`07`).
    pub error_halt: u32,
    /// The connection resets before the message reaches the server (it is
    /// lost: client → server drop).
    pub drop_before: u32,
    /// The message commits, then the connection resets before its answer
    /// (server → client drop).
    pub drop_after: u32,
    /// After answering, the server closes with a reconnect-class code.
    pub close_reconnect: u32,
    /// After answering, the server closes with a terminal code (1002, …).
    pub close_terminal: u32,
    /// The OK is held back and merged into a later one.
    pub coalesce_ok: u32,
    /// How long a coalesced OK waits for a later one at most.
    pub coalesce_window: Duration,
    /// The OK is delayed (and everything after it on the connection).
    pub delay_ok: u32,
    /// The longest extra delay of a delayed OK.
    pub delay_ok_max: Duration,
    /// The OK names a sequence beyond anything the client sent.
    pub future_ok: u32,
    /// The DURABLE_ACK covering the message goes out before its OK.
    pub durable_before_ok: u32,
    /// The answer is sent twice.
    pub duplicate_response: u32,
    /// The host restarts right after committing the message (the answer is
    /// lost); connects are refused during a downtime.
    pub restart: u32,
    /// Of the restarts, those that forget un-durable commits (only drawn
    /// for a host whose clients all use durable ACKs).
    pub restart_loses_undurable: u32,
    /// The longest downtime of a restart.
    pub restart_downtime_max: Duration,
    /// A DURABLE_ACK reports only the first advanced table.
    pub partial_durable: u32,
    /// A DURABLE_ACK is followed by a stale one (a lower seqTxn).
    pub stale_durable: u32,
}

impl Default for NetFaults {
    /// [`NetFaults::none`].
    fn default() -> Self {
        NetFaults::none()
    }
}

impl NetFaults {
    /// A well-behaved network: 50 µs one way, an instant server, uploads
    /// durable at commit, no fault.
    pub fn none() -> NetFaults {
        NetFaults {
            latency_min: Duration::from_micros(50),
            latency_max: Duration::from_micros(50),
            service_time: Duration::ZERO,
            durable_delay_min: Duration::ZERO,
            durable_delay_max: Duration::ZERO,
            refuse_connect: 0,
            hang_connect: 0,
            role_reject: 0,
            auth_reject: 0,
            status_reject: 0,
            bad_version: 0,
            omit_durable_echo: 0,
            error_continue: 0,
            error_halt: 0,
            drop_before: 0,
            drop_after: 0,
            close_reconnect: 0,
            close_terminal: 0,
            coalesce_ok: 0,
            coalesce_window: Duration::from_millis(5),
            delay_ok: 0,
            delay_ok_max: Duration::from_millis(50),
            future_ok: 0,
            durable_before_ok: 0,
            duplicate_response: 0,
            restart: 0,
            restart_loses_undurable: 0,
            restart_downtime_max: Duration::from_millis(500),
            partial_durable: 0,
            stale_durable: 0,
        }
    }

    /// A random mix for swarm testing: each fault family is switched on
    /// with some probability at a random rate. Faults that end the client
    /// for good (auth, HALT statuses, terminal close codes) are rarer and
    /// lower, so most runs keep going; [`NetFaults::without_terminal`]
    /// removes them.
    pub fn random(rng: &mut SimRng) -> NetFaults {
        fn rate(rng: &mut SimRng, on_per_million: u32, max: u64) -> u32 {
            if rng.chance(on_per_million) {
                u32::try_from(rng.range_inclusive(1, max)).unwrap_or(u32::MAX)
            } else {
                0
            }
        }
        let lat_min = rng.range_inclusive(10, 2_000);
        let lat_max = lat_min + rng.below(5_000);
        let durable_max = rng.below(200_000);
        NetFaults {
            latency_min: Duration::from_micros(lat_min),
            latency_max: Duration::from_micros(lat_max),
            service_time: if rng.chance(200_000) {
                Duration::from_micros(rng.range_inclusive(100, 20_000))
            } else {
                Duration::ZERO
            },
            durable_delay_min: Duration::from_micros(durable_max / 4),
            durable_delay_max: Duration::from_micros(durable_max),
            refuse_connect: rate(rng, 400_000, 300_000),
            hang_connect: rate(rng, 150_000, 100_000),
            role_reject: rate(rng, 300_000, 300_000),
            auth_reject: rate(rng, 30_000, 20_000),
            status_reject: rate(rng, 300_000, 200_000),
            bad_version: rate(rng, 200_000, 100_000),
            omit_durable_echo: rate(rng, 200_000, 100_000),
            error_continue: rate(rng, 300_000, 20_000),
            error_halt: rate(rng, 30_000, 2_000),
            drop_before: rate(rng, 400_000, 20_000),
            drop_after: rate(rng, 400_000, 20_000),
            close_reconnect: rate(rng, 300_000, 20_000),
            close_terminal: rate(rng, 30_000, 2_000),
            coalesce_ok: rate(rng, 400_000, 300_000),
            coalesce_window: Duration::from_micros(rng.range_inclusive(100, 20_000)),
            delay_ok: rate(rng, 300_000, 100_000),
            delay_ok_max: Duration::from_micros(rng.range_inclusive(100, 200_000)),
            future_ok: rate(rng, 300_000, 50_000),
            durable_before_ok: rate(rng, 300_000, 200_000),
            duplicate_response: rate(rng, 300_000, 50_000),
            restart: rate(rng, 200_000, 5_000),
            restart_loses_undurable: rate(rng, 500_000, 1_000_000),
            restart_downtime_max: Duration::from_micros(rng.range_inclusive(0, 2_000_000)),
            partial_durable: rate(rng, 300_000, 500_000),
            stale_durable: rate(rng, 300_000, 300_000),
        }
    }

    /// These faults without the ones that end the client for good: auth
    /// rejects, HALT statuses and terminal close codes.
    pub fn without_terminal(self) -> NetFaults {
        NetFaults {
            auth_reject: 0,
            error_halt: 0,
            close_terminal: 0,
            ..self
        }
    }

    /// Only the timing of these faults (latency, service time, upload
    /// delay), every fault rate zero: what a liveness phase runs under.
    pub fn timing_only(&self) -> NetFaults {
        NetFaults {
            latency_min: self.latency_min,
            latency_max: self.latency_max,
            service_time: self.service_time,
            durable_delay_min: self.durable_delay_min,
            durable_delay_max: self.durable_delay_max,
            ..NetFaults::none()
        }
    }
}

/// How the next connect attempt is answered (a scripted fault, or what a
/// random draw chose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectFault {
    /// No fault: the host answers as it would (101, or 421 if it has a
    /// role).
    Accept,
    /// Connection refused: [`NetEvent::ConnectFailed`].
    Refuse,
    /// No answer ever; the client's connect timeout must end the attempt.
    Hang,
    /// `421`; with `X-QuestDB-Role: <role>` unless the role is empty.
    Role(String),
    /// Any other HTTP status without QWP headers (401, 403, 404, 503, …).
    Status(u16),
    /// `101` with this `X-QWP-Version` value.
    BadVersion(String),
    /// `101` without the durable-ACK echo even when it was requested.
    OmitDurableEcho,
}

/// What happens to the next message the server handles (a scripted fault,
/// or what a random draw chose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageFault {
    /// No fault.
    None,
    /// Reject it with an error frame of this status (not 00/02).
    Error(u8),
    /// Reset the connection before the message reaches the server.
    DropBefore,
    /// Commit the message, then reset the connection before its answer.
    DropAfter,
    /// Answer, then close the connection with this code.
    Close(u16),
    /// Hold the OK back and merge it into a later one.
    CoalesceOk,
    /// Send the OK this much later than normal.
    DelayOk(Duration),
    /// Answer with an OK for this many sequences beyond the message (only
    /// if nothing the client sent is in flight when it arrives; otherwise a
    /// plain OK).
    FutureOk(u64),
    /// Make every pending upload durable and send the DURABLE_ACK before
    /// the OK.
    DurableBeforeOk,
    /// Send the answer twice.
    DuplicateResponse,
    /// Commit, then restart the host before answering.
    Restart {
        /// Forget commits that are not durable yet.
        lose_undurable: bool,
        /// Connects are refused for this long.
        downtime: Duration,
    },
}

/// One client of the simulated network: one engine's connection endpoint.
/// The single-client methods ([`SimNetwork::connect`], ...) act as
/// `ClientId(0)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ClientId(pub u32);

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "client {}", self.0)
    }
}

/// A connect attempt in flight: its connection number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectAttempt {
    /// The connection number (network-wide, from 0, one per attempt).
    pub connection: u64,
}

/// An event for the engine, one `Input` each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// The upgrade got an HTTP answer (`Input::Connected`).
    Connected {
        /// The host index.
        host: usize,
        /// The HTTP status.
        status: u16,
        /// The response headers.
        headers: Vec<(String, Vec<u8>)>,
    },
    /// The connect failed before an HTTP answer (`Input::ConnectFailed`).
    ConnectFailed {
        /// The host index.
        host: usize,
        /// Why, for diagnostics.
        reason: String,
    },
    /// One server message (`Input::Received`).
    Received(Vec<u8>),
    /// The connection ended (`Input::Disconnected`): a close frame's code,
    /// or `None` for a reset.
    Disconnected {
        /// The close code, if a close frame arrived.
        close_code: Option<u16>,
        /// The close reason or a description.
        reason: String,
    },
    /// A PONG (`Input::Pong`).
    Pong,
}

impl NetEvent {
    /// The headers of [`NetEvent::Connected`] in the shape `Input::Connected`
    /// takes (empty for other events).
    pub fn header_refs(&self) -> Vec<(&str, &[u8])> {
        match self {
            NetEvent::Connected { headers, .. } => headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A message the server committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedMessage {
    /// Network-wide commit number, increasing.
    pub id: u64,
    /// The client whose connection carried it.
    pub client: ClientId,
    /// The host.
    pub host: usize,
    /// The connection number.
    pub connection: u64,
    /// Its wire sequence on that connection.
    pub wire_seq: u64,
    /// When the server committed it.
    pub at: Instant,
    /// The tables with rows, their seqTxn and row ids.
    pub tables: Vec<AcceptedTable>,
    /// When the upload makes (or made) it durable. A restart that forgets
    /// un-durable commits removes them from the list, so every message
    /// listed is durable from this time on.
    pub durable_at: Instant,
}

impl AcceptedMessage {
    /// Whether it is durable at `now`.
    pub fn durable_by(&self, now: Instant) -> bool {
        self.durable_at <= now
    }

    /// Every row id it carries, table by table.
    pub fn row_ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.tables.iter().flat_map(|t| t.row_ids.iter().copied())
    }
}

/// A message the server answered with an error frame (nothing committed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedMessage {
    /// The client whose connection carried it.
    pub client: ClientId,
    /// The host.
    pub host: usize,
    /// The connection number.
    pub connection: u64,
    /// Its wire sequence on that connection.
    pub wire_seq: u64,
    /// When it was rejected.
    pub at: Instant,
    /// The status byte sent.
    pub status: u8,
    /// The row ids it carried (empty if it did not decode).
    pub row_ids: Vec<i64>,
}

/// Something the server saw that a correct client never does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetViolation {
    /// The rule: `"SELF_SUFFICIENT"` (a frame that does not decode on a
    /// fresh connection; regression 14).
    pub invariant: &'static str,
    /// What happened.
    pub detail: String,
    /// When.
    pub at: Instant,
}

/// Counters of the network and servers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Connect attempts.
    pub connects: u64,
    /// Connects answered `101` and opened on the server.
    pub connects_opened: u64,
    /// Frames the client sent.
    pub frames_sent: u64,
    /// Frames the server numbered.
    pub messages_received: u64,
    /// Frames lost (sent on a connection the server no longer had).
    pub frames_lost: u64,
    /// OK frames sent.
    pub oks_sent: u64,
    /// Error frames sent.
    pub errors_sent: u64,
    /// DURABLE_ACK frames sent.
    pub durable_acks_sent: u64,
    /// PINGs the server received.
    pub pings: u64,
    /// Rows committed.
    pub rows_committed: u64,
    /// Rows forgotten by restarts.
    pub rows_lost: u64,
    /// Host restarts.
    pub restarts: u64,
    /// A connect while another connection was current (the world should
    /// have closed it first).
    pub implicit_closes: u64,
    /// Injected faults by name.
    pub injected: BTreeMap<&'static str, u64>,
}

/// One client's side of the network.
#[derive(Debug, Default)]
struct ClientState {
    /// Its current connection (connecting or open).
    current: Option<u64>,
    /// Answers of its coming connect attempts, ahead of the shared script.
    connect_script: VecDeque<ConnectFault>,
    /// Every connect is refused before this time (a partition of this
    /// client alone).
    partitioned_until: Option<Instant>,
}

/// An event of another client that [`SimNetwork::poll_event`] (client 0's
/// view) came across: resolved at its arrival, handed out later by
/// [`SimNetwork::poll_client_event`].
#[derive(Debug)]
struct Stashed {
    at: Instant,
    client: ClientId,
    connection: u64,
    event: NetEvent,
}

/// Both directions of one connection.
#[derive(Debug)]
struct Link {
    /// The client that opened it.
    client: ClientId,
    /// Whether the client got the upgrade answer (so a partition ends the
    /// connection, not the connect attempt).
    answered: bool,
    /// Cut by a partition of its client: whatever the client still sends
    /// on it is lost without a random draw.
    cut: bool,
    host: usize,
    /// Last arrival time at the server (client → server FIFO).
    c2s_last: Instant,
    /// Last delivery time at the client (server → client FIFO).
    s2c_last: Instant,
    /// Frames the client sent on it.
    sent: u64,
    /// A coalesced OK waiting to be merged or sent.
    held_ok: Option<OkFrame>,
}

/// What reaches the server.
#[derive(Debug, Clone)]
enum Inbound {
    Message(Vec<u8>),
    Ping,
    Close,
}

/// What travels from a server to the client.
#[derive(Debug, Clone)]
enum Outgoing {
    /// Delivered as is.
    Event(NetEvent),
    /// An OK that names `ahead` sequences more than it should, decided on
    /// arrival (see the module docs).
    FutureOk { ok: OkFrame, ahead: u64 },
}

/// An entry of the virtual event queue.
#[derive(Debug, Clone)]
enum Event {
    /// Deliver to the client if the connection is still current.
    Deliver { connection: u64, event: Outgoing },
    /// The server handles inbound traffic.
    Arrive { connection: u64, inbound: Inbound },
    /// A slow host's turn for a message that arrived earlier.
    Serve { connection: u64, inbound: Inbound },
    /// A coalesced OK's window ended.
    FlushHeld { connection: u64 },
}

/// One simulated host and its scheduling state.
#[derive(Debug)]
struct Host {
    server: SimServer,
    /// When the host finishes the message it is working on.
    busy_until: Instant,
    /// Connects are refused before this time (restart downtime).
    down_until: Instant,
}

/// Simulated hosts and the links to them. See the module docs.
#[derive(Debug)]
pub struct SimNetwork {
    link_rng: SimRng,
    connect_rng: SimRng,
    message_rng: SimRng,
    durable_rng: SimRng,
    faults: NetFaults,
    hosts: Vec<Host>,
    queue: BTreeMap<(Instant, u64), Event>,
    next_event: u64,
    next_connection: u64,
    next_commit: u64,
    clients: BTreeMap<ClientId, ClientState>,
    stash: VecDeque<Stashed>,
    links: BTreeMap<u64, Link>,
    accepted: Vec<AcceptedMessage>,
    lost: Vec<AcceptedMessage>,
    rejected: Vec<RejectedMessage>,
    violations: Vec<NetViolation>,
    stats: NetStats,
    connect_script: VecDeque<ConnectFault>,
    message_script: VecDeque<MessageFault>,
    poison: BTreeMap<i64, u8>,
}

impl SimNetwork {
    /// `hosts` fresh hosts (at least one) behind links with `faults`; all
    /// randomness comes from `rng`.
    pub fn new(mut rng: SimRng, hosts: usize, faults: NetFaults) -> SimNetwork {
        SimNetwork {
            link_rng: rng.fork("net.link"),
            connect_rng: rng.fork("net.connect"),
            message_rng: rng.fork("net.message"),
            durable_rng: rng.fork("net.durable"),
            faults,
            hosts: (0..hosts.max(1))
                .map(|_| Host {
                    server: SimServer::new(),
                    busy_until: Instant::ZERO,
                    down_until: Instant::ZERO,
                })
                .collect(),
            queue: BTreeMap::new(),
            next_event: 0,
            next_connection: 0,
            next_commit: 0,
            clients: BTreeMap::new(),
            stash: VecDeque::new(),
            links: BTreeMap::new(),
            accepted: Vec::new(),
            lost: Vec::new(),
            rejected: Vec::new(),
            violations: Vec::new(),
            stats: NetStats::default(),
            connect_script: VecDeque::new(),
            message_script: VecDeque::new(),
            poison: BTreeMap::new(),
        }
    }

    /// The faults in force.
    pub fn faults(&self) -> &NetFaults {
        &self.faults
    }

    /// Replaces the faults (e.g. [`NetFaults::timing_only`] for the
    /// liveness phase). Scripted faults stay queued.
    pub fn set_faults(&mut self, faults: NetFaults) {
        self.faults = faults;
    }

    /// Number of hosts.
    pub fn hosts(&self) -> usize {
        self.hosts.len()
    }

    /// Host `host`'s server state (`None` past the last host).
    pub fn server(&self, host: usize) -> Option<&SimServer> {
        self.hosts.get(host).map(|h| &h.server)
    }

    /// Makes host `host` answer every upgrade with `421` and this role
    /// (`None` accepts again).
    pub fn set_role(&mut self, host: usize, role: Option<String>) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.server.set_role(role);
        }
    }

    /// Queues the answer of a coming connect attempt of any client (FIFO,
    /// ahead of random draws; a client's own script from
    /// [`SimNetwork::script_connect_for`] goes first).
    pub fn script_connect(&mut self, fault: ConnectFault) {
        self.connect_script.push_back(fault);
    }

    /// Queues the answer of `client`'s next connect attempt (FIFO, ahead of
    /// the shared script of [`SimNetwork::script_connect`] and of random
    /// draws). Like the shared script, it is consumed only by an attempt
    /// that reaches an up host.
    pub fn script_connect_for(&mut self, client: ClientId, fault: ConnectFault) {
        self.clients
            .entry(client)
            .or_default()
            .connect_script
            .push_back(fault);
    }

    /// Drops every answer still queued for `client` by
    /// [`SimNetwork::script_connect_for`] (the shared script and random
    /// draws are untouched): when faults stop, a client's scripted refusals
    /// must not outlive them. Returns how many were dropped.
    pub fn clear_client_script(&mut self, client: ClientId) -> usize {
        self.clients.get_mut(&client).map_or(0, |state| {
            let n = state.connect_script.len();
            state.connect_script.clear();
            n
        })
    }

    /// Partitions `client` alone from every host until `until` (`None`
    /// lifts a partition): each of its connect attempts before then fails
    /// with [`NetEvent::ConnectFailed`] after the shortest latency (no
    /// random draw), and its current connection resets at `now`. A reset
    /// connection is forgotten by its server at once; what was in flight on
    /// it in either direction is lost, and the client gets
    /// [`NetEvent::Disconnected`] (without a close code) at `now`, or
    /// [`NetEvent::ConnectFailed`] if its upgrade answer had not arrived
    /// yet. Other clients are not affected.
    pub fn partition_client(&mut self, client: ClientId, now: Instant, until: Option<Instant>) {
        let state = self.clients.entry(client).or_default();
        state.partitioned_until = until;
        if until.is_some_and(|until| now < until) {
            if let Some(connection) = state.current {
                self.count("client_partition");
                self.cut(now, connection, "network unreachable (client partitioned)");
            }
        }
    }

    /// `client`'s process died at `now`: its current connection (or
    /// connect in flight) vanishes and nothing more is reported to it about
    /// any connection it had. Frames it already sent still reach the
    /// server, which may commit them, and the server then sees the socket
    /// close (as after [`SimNetwork::close_from`]). Its connect script and
    /// partition stay: a new process may connect again as the same client.
    pub fn forget_client(&mut self, client: ClientId, now: Instant) {
        self.stash.retain(|s| s.client != client);
        let current = self
            .clients
            .get_mut(&client)
            .and_then(|state| state.current.take());
        if let Some(connection) = current {
            self.inbound(now, connection, Inbound::Close);
        }
    }

    /// Queues the fault of a coming message the servers handle, from any
    /// client (FIFO, ahead of random draws; [`MessageFault::None`] keeps a
    /// message clean).
    pub fn script_message(&mut self, fault: MessageFault) {
        self.message_script.push_back(fault);
    }

    /// Every message carrying row `row_id` is rejected with `status`, on
    /// every connection of every client and every resend: the same bytes
    /// are refused forever (a poisoned frame, W3).
    pub fn poison_row(&mut self, row_id: i64, status: u8) {
        self.poison.insert(row_id, status);
    }

    /// Messages the servers committed, in commit order.
    pub fn accepted(&self) -> &[AcceptedMessage] {
        &self.accepted
    }

    /// Messages a restart forgot because they were not durable yet (moved
    /// out of [`SimNetwork::accepted`]), in the order they were forgotten.
    pub fn lost(&self) -> &[AcceptedMessage] {
        &self.lost
    }

    /// Messages the servers rejected with an error frame, in order.
    pub fn rejected(&self) -> &[RejectedMessage] {
        &self.rejected
    }

    /// Rule breaks the servers saw (frames that are not self-sufficient).
    pub fn violations(&self) -> &[NetViolation] {
        &self.violations
    }

    /// The counters.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// The current connection's number of client `ClientId(0)`, if it has
    /// one (connecting or open).
    pub fn current_connection(&self) -> Option<u64> {
        self.current_connection_of(ClientId(0))
    }

    /// `client`'s current connection number, if it has one (connecting or
    /// open).
    pub fn current_connection_of(&self, client: ClientId) -> Option<u64> {
        self.clients.get(&client).and_then(|state| state.current)
    }

    /// [`SimNetwork::connect_from`] of client `ClientId(0)`.
    pub fn connect(
        &mut self,
        now: Instant,
        host: usize,
        request_headers: &[(String, String)],
    ) -> ConnectAttempt {
        self.connect_from(ClientId(0), now, host, request_headers)
    }

    /// Starts a connect of `client` to `host` with the upgrade
    /// `request_headers`. The answer arrives later as
    /// [`NetEvent::Connected`] or [`NetEvent::ConnectFailed`] (or never, for
    /// a hung connect). The client's current connection is closed first;
    /// other clients' connections are not touched.
    pub fn connect_from(
        &mut self,
        client: ClientId,
        now: Instant,
        host: usize,
        request_headers: &[(String, String)],
    ) -> ConnectAttempt {
        if self.current_connection_of(client).is_some() {
            self.stats.implicit_closes += 1;
            self.close_from(client, now, 1000);
        }
        let connection = self.next_connection;
        self.next_connection += 1;
        self.stats.connects += 1;
        let state = self.clients.entry(client).or_default();
        state.current = Some(connection);
        if state.partitioned_until.is_some_and(|until| now < until) {
            // No random draw: a partitioned client's attempts must not
            // shift the streams the other clients' faults come from.
            let at = now.saturating_add(self.faults.latency_min);
            self.links.insert(
                connection,
                Link {
                    client,
                    answered: false,
                    cut: true,
                    host,
                    c2s_last: at,
                    s2c_last: at,
                    sent: 0,
                    held_ok: None,
                },
            );
            self.count("connect_partitioned");
            self.deliver_at(
                connection,
                at,
                NetEvent::ConnectFailed {
                    host,
                    reason: "network unreachable (client partitioned)".to_owned(),
                },
            );
            return ConnectAttempt { connection };
        }
        let request_at = now.saturating_add(self.latency());
        let answer_at = request_at.saturating_add(self.latency());
        self.links.insert(
            connection,
            Link {
                client,
                answered: false,
                cut: false,
                host,
                c2s_last: request_at,
                s2c_last: answer_at,
                sent: 0,
                held_ok: None,
            },
        );
        let Some(h) = self.hosts.get(host) else {
            self.deliver_at(
                connection,
                request_at,
                NetEvent::ConnectFailed {
                    host,
                    reason: format!("no host {host}"),
                },
            );
            return ConnectAttempt { connection };
        };
        if request_at < h.down_until {
            self.count("connect_refused_restarting");
            self.deliver_at(
                connection,
                request_at,
                NetEvent::ConnectFailed {
                    host,
                    reason: "connection refused (server restarting)".to_owned(),
                },
            );
            return ConnectAttempt { connection };
        }
        let role = h.server.role().map(str::to_owned);
        let scripted = self
            .clients
            .get_mut(&client)
            .and_then(|state| state.connect_script.pop_front())
            .or_else(|| self.connect_script.pop_front());
        let fault = match scripted {
            Some(f) => f,
            None => self.draw_connect_fault(),
        };
        let answer = |status: u16, headers: Vec<(String, Vec<u8>)>| NetEvent::Connected {
            host,
            status,
            headers,
        };
        let event = match (fault, role) {
            (ConnectFault::Refuse, _) => {
                self.count("connect_refused");
                self.deliver_at(
                    connection,
                    request_at,
                    NetEvent::ConnectFailed {
                        host,
                        reason: "connection refused".to_owned(),
                    },
                );
                return ConnectAttempt { connection };
            }
            (ConnectFault::Hang, _) => {
                self.count("connect_hang");
                return ConnectAttempt { connection };
            }
            // A host with a role refuses every upgrade, whatever else the
            // draw chose for the 101 it will not send.
            (ConnectFault::Role(role), _)
            | (
                ConnectFault::Accept | ConnectFault::BadVersion(_) | ConnectFault::OmitDurableEcho,
                Some(role),
            ) => {
                self.count("role_reject");
                let headers = if role.is_empty() {
                    Vec::new()
                } else {
                    vec![(HEADER_ROLE.to_owned(), role.into_bytes())]
                };
                answer(STATUS_MISDIRECTED_REQUEST, headers)
            }
            (ConnectFault::Status(status), _) => {
                self.count("status_reject");
                answer(status, Vec::new())
            }
            (fault, _) => {
                let refs: Vec<(&str, &[u8])> = request_headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_bytes()))
                    .collect();
                let requested = durable_ack_requested(refs.iter().copied());
                let client_max = request_headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(HEADER_MAX_VERSION))
                    .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                    .unwrap_or(1);
                let version = u8::try_from(client_max.clamp(1, 1)).unwrap_or(1);
                let omit = fault == ConnectFault::OmitDurableEcho;
                if omit {
                    self.count("omit_durable_echo");
                }
                let durable = requested && !omit;
                let mut headers: Vec<(String, Vec<u8>)> = accept_headers(version, durable)
                    .into_iter()
                    .map(|(n, v)| (n.to_owned(), v.into_bytes()))
                    .collect();
                if let ConnectFault::BadVersion(v) = &fault {
                    self.count("bad_version");
                    for (n, value) in &mut headers {
                        if n == HEADER_VERSION {
                            *value = v.clone().into_bytes();
                        }
                    }
                }
                if let Some(h) = self.hosts.get_mut(host) {
                    h.server.open(connection, durable);
                }
                self.stats.connects_opened += 1;
                answer(STATUS_SWITCHING_PROTOCOLS, headers)
            }
        };
        self.deliver_at(connection, answer_at, event);
        ConnectAttempt { connection }
    }

    /// [`SimNetwork::send_from`] of client `ClientId(0)`.
    pub fn send(&mut self, now: Instant, frame: &[u8]) {
        self.send_from(ClientId(0), now, frame);
    }

    /// `client` sends one binary message on its current connection. A
    /// frame sent on a connection the server no longer has is lost (the
    /// client learns of the drop from its [`NetEvent::Disconnected`]).
    pub fn send_from(&mut self, client: ClientId, now: Instant, frame: &[u8]) {
        self.stats.frames_sent += 1;
        let Some(connection) = self.current_connection_of(client) else {
            self.stats.frames_lost += 1;
            return;
        };
        if let Some(link) = self.links.get_mut(&connection) {
            link.sent += 1;
        }
        self.inbound(now, connection, Inbound::Message(frame.to_vec()));
    }

    /// [`SimNetwork::ping_from`] of client `ClientId(0)`.
    pub fn ping(&mut self, now: Instant) {
        self.ping_from(ClientId(0), now);
    }

    /// `client` sends a PING on its current connection; the server answers
    /// PONG and flushes durable ACKs (inbound activity).
    pub fn ping_from(&mut self, client: ClientId, now: Instant) {
        if let Some(connection) = self.current_connection_of(client) {
            self.inbound(now, connection, Inbound::Ping);
        }
    }

    /// [`SimNetwork::close_from`] of client `ClientId(0)`.
    pub fn close(&mut self, now: Instant, code: u16) {
        self.close_from(ClientId(0), now, code);
    }

    /// `client` closes its current connection (or abandons the connect in
    /// flight) with `code`. Nothing more about it is reported; frames
    /// already on their way still reach the server, which may commit them.
    pub fn close_from(&mut self, client: ClientId, now: Instant, code: u16) {
        let _ = code;
        let current = self
            .clients
            .get_mut(&client)
            .and_then(|state| state.current.take());
        if let Some(connection) = current {
            self.inbound(now, connection, Inbound::Close);
        }
    }

    /// Restarts host `host` at `now`: every connection to it resets, its
    /// connection state is forgotten, connects are refused for `downtime`,
    /// and with `lose_undurable` every commit not yet durable is forgotten
    /// (removed from [`SimNetwork::accepted`]).
    pub fn restart(&mut self, now: Instant, host: usize, lose_undurable: bool, downtime: Duration) {
        self.advance_durability(now);
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        self.stats.restarts += 1;
        h.down_until = now.saturating_add(downtime);
        h.busy_until = now;
        let outcome = h.server.restart(lose_undurable);
        for connection in outcome.connections {
            self.reset(now, connection, "server restarted");
        }
        if !outcome.lost_commits.is_empty() {
            let lost: std::collections::BTreeSet<u64> = outcome.lost_commits.into_iter().collect();
            let (gone, kept): (Vec<AcceptedMessage>, Vec<AcceptedMessage>) =
                std::mem::take(&mut self.accepted)
                    .into_iter()
                    .partition(|m| lost.contains(&m.id));
            self.accepted = kept;
            self.stats.rows_lost += gone
                .iter()
                .flat_map(|m| &m.tables)
                .map(|t| t.row_ids.len() as u64 + t.rows_without_id)
                .sum::<u64>();
            self.lost.extend(gone);
        }
    }

    /// When the next event is due (the world should call
    /// [`SimNetwork::poll_event`] or [`SimNetwork::poll_client_event`]
    /// then). An event of another client that [`SimNetwork::poll_event`]
    /// kept aside counts, at the instant it arrived.
    pub fn next_event_at(&self) -> Option<Instant> {
        let queued = self.queue.keys().next().map(|(at, _)| *at);
        match self.stash.front() {
            // Everything still queued is due no earlier than a kept event.
            Some(kept) => Some(kept.at),
            None => queued,
        }
    }

    /// Runs the servers up to `now` and returns the next event for client
    /// `ClientId(0)` due by then, if any. Call until it returns `None`.
    ///
    /// With several clients, prefer [`SimNetwork::poll_client_event`]: the
    /// events of other clients that come due here are not lost but kept
    /// aside in order (as they were at their arrival) and handed out first
    /// by the next [`SimNetwork::poll_client_event`];
    /// [`SimNetwork::next_event_at`] keeps reporting them until then.
    pub fn poll_event(&mut self, now: Instant) -> Option<NetEvent> {
        self.poll_queue(now, Some(ClientId(0)))
            .map(|(_, event)| event)
    }

    /// Runs the servers up to `now` and returns the next event due by then
    /// for any client, with the client it is for. Each client's events come
    /// in order, and a client gets only events of its current connection.
    /// Call until it returns `None`.
    pub fn poll_client_event(&mut self, now: Instant) -> Option<(ClientId, NetEvent)> {
        while let Some(kept) = self.stash.pop_front() {
            if let Some(event) = self.take_delivery(kept.client, kept.connection, kept.event) {
                return Some((kept.client, event));
            }
        }
        self.poll_queue(now, None)
    }

    // ---- internals ----

    /// Runs the queue up to `now` until a delivery for `only` (any client
    /// with `None`); deliveries for other clients are kept aside.
    fn poll_queue(&mut self, now: Instant, only: Option<ClientId>) -> Option<(ClientId, NetEvent)> {
        loop {
            let key = match self.queue.keys().next() {
                Some(&key) if key.0 <= now => key,
                _ => break,
            };
            let Some(event) = self.queue.remove(&key) else {
                break;
            };
            let at = key.0;
            self.advance_durability(at);
            match event {
                Event::Deliver { connection, event } => {
                    let Some(client) = self.links.get(&connection).map(|l| l.client) else {
                        continue;
                    };
                    if self.current_connection_of(client) != Some(connection) {
                        continue;
                    }
                    let event = self.resolve(connection, event);
                    if only.is_some_and(|only| only != client) {
                        self.stash.push_back(Stashed {
                            at,
                            client,
                            connection,
                            event,
                        });
                        continue;
                    }
                    if let Some(event) = self.take_delivery(client, connection, event) {
                        return Some((client, event));
                    }
                }
                Event::Arrive {
                    connection,
                    inbound,
                } => self.arrive(at, connection, inbound),
                Event::Serve {
                    connection,
                    inbound,
                } => self.serve(at, connection, inbound),
                Event::FlushHeld { connection } => self.flush_held(at, connection),
            }
        }
        self.advance_durability(now);
        None
    }

    /// Hands `event` of `connection` to `client` if that is still its
    /// current connection; an event that ends the connection makes it no
    /// longer current.
    fn take_delivery(
        &mut self,
        client: ClientId,
        connection: u64,
        event: NetEvent,
    ) -> Option<NetEvent> {
        let state = self.clients.get_mut(&client)?;
        if state.current != Some(connection) {
            return None;
        }
        // A refused upgrade ends the attempt like a failed connect: there
        // is no socket left to close.
        let ended = match &event {
            NetEvent::Disconnected { .. } | NetEvent::ConnectFailed { .. } => true,
            NetEvent::Connected { status, .. } => *status != STATUS_SWITCHING_PROTOCOLS,
            NetEvent::Received(_) | NetEvent::Pong => false,
        };
        if ended {
            state.current = None;
        }
        if matches!(event, NetEvent::Connected { .. }) {
            if let Some(link) = self.links.get_mut(&connection) {
                link.answered = true;
            }
        }
        Some(event)
    }

    /// The client whose connection `connection` is.
    fn client_of(&self, connection: u64) -> ClientId {
        self.links
            .get(&connection)
            .map_or(ClientId(0), |link| link.client)
    }

    /// Cuts `connection` at `now` (a partition): its server forgets it,
    /// whatever is in flight on it is lost, and its client learns of it at
    /// once.
    fn cut(&mut self, now: Instant, connection: u64, reason: &str) {
        let Some(link) = self.links.get_mut(&connection) else {
            return;
        };
        link.held_ok = None;
        link.cut = true;
        let (host, answered) = (link.host, link.answered);
        if let Some(h) = self.hosts.get_mut(host) {
            h.server.close(connection);
        }
        self.queue.retain(
            |_, event| !matches!(event, Event::Deliver { connection: c, .. } if *c == connection),
        );
        self.stash.retain(|kept| kept.connection != connection);
        self.release_service(now, host);
        let event = if answered {
            NetEvent::Disconnected {
                close_code: None,
                reason: reason.to_owned(),
            }
        } else {
            NetEvent::ConnectFailed {
                host,
                reason: reason.to_owned(),
            }
        };
        self.deliver_at(connection, now, event);
    }

    fn count(&mut self, name: &'static str) {
        *self.stats.injected.entry(name).or_insert(0) += 1;
    }

    fn latency(&mut self) -> Duration {
        let lo = u64::try_from(self.faults.latency_min.as_nanos()).unwrap_or(u64::MAX);
        let hi = u64::try_from(self.faults.latency_max.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.link_rng.range_inclusive(lo, hi))
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        let n = self.next_event;
        self.next_event += 1;
        self.queue.insert((at, n), event);
    }

    fn deliver_at(&mut self, connection: u64, at: Instant, event: NetEvent) {
        self.schedule(
            at,
            Event::Deliver {
                connection,
                event: Outgoing::Event(event),
            },
        );
    }

    /// The event a delivery becomes on arrival: a future-sequence OK only
    /// if every frame the client sent has been numbered by the server.
    fn resolve(&mut self, connection: u64, event: Outgoing) -> NetEvent {
        match event {
            Outgoing::Event(e) => e,
            Outgoing::FutureOk { mut ok, ahead } => {
                let caught_up = self.links.get(&connection).is_some_and(|l| {
                    self.hosts
                        .get(l.host)
                        .and_then(|h| h.server.received(connection))
                        .is_some_and(|received| received == l.sent)
                });
                if caught_up {
                    self.count("future_ok");
                    let ahead = i64::try_from(ahead).unwrap_or(i64::MAX);
                    ok.sequence = ok.sequence.saturating_add(ahead);
                }
                NetEvent::Received(encode(&Response::Ok(ok)))
            }
        }
    }

    /// Queues a server → client message in FIFO order after `extra`.
    fn send_to_client(&mut self, at: Instant, connection: u64, event: NetEvent, extra: Duration) {
        self.send_outgoing(at, connection, Outgoing::Event(event), extra);
    }

    /// Queues a server → client message in FIFO order after `extra`.
    fn send_outgoing(&mut self, at: Instant, connection: u64, event: Outgoing, extra: Duration) {
        let latency = self.latency();
        let Some(link) = self.links.get_mut(&connection) else {
            return;
        };
        let when = link
            .s2c_last
            .max(at.saturating_add(latency).saturating_add(extra));
        link.s2c_last = when;
        self.schedule(when, Event::Deliver { connection, event });
    }

    /// Queues client → server traffic in FIFO order (service time is taken
    /// on arrival, see [`SimNetwork::arrive`]).
    fn inbound(&mut self, now: Instant, connection: u64, inbound: Inbound) {
        // A partitioned client's traffic goes nowhere and draws nothing, so
        // it cannot shift the faults of the other clients.
        if self.links.get(&connection).is_some_and(|l| l.cut) {
            if matches!(inbound, Inbound::Message(_)) {
                self.stats.frames_lost += 1;
            }
            return;
        }
        let latency = self.latency();
        let Some(link) = self.links.get_mut(&connection) else {
            return;
        };
        let when = link.c2s_last.max(now.saturating_add(latency));
        link.c2s_last = when;
        self.schedule(
            when,
            Event::Arrive {
                connection,
                inbound,
            },
        );
    }

    /// Completes every upload due by `now` on every host, so DURABLE_ACKs
    /// and restarts see the durability of their own instant.
    fn advance_durability(&mut self, now: Instant) {
        for h in &mut self.hosts {
            h.server.advance(now);
        }
    }

    /// Records that the commits `ids` became durable at `at` (earlier than
    /// planned).
    fn mark_durable(&mut self, ids: Vec<u64>, at: Instant) {
        for id in ids {
            if let Ok(i) = self.accepted.binary_search_by_key(&id, |m| m.id) {
                if let Some(m) = self.accepted.get_mut(i) {
                    m.durable_at = m.durable_at.min(at);
                }
            }
        }
    }

    fn host_of(&self, connection: u64) -> Option<usize> {
        let host = self.links.get(&connection)?.host;
        let h = self.hosts.get(host)?;
        h.server.is_open(connection).then_some(host)
    }

    /// Inbound traffic reaches the server at `at`. A close is handled at
    /// once; messages and pings wait for the host's turn on a slow server,
    /// in arrival order.
    fn arrive(&mut self, at: Instant, connection: u64, inbound: Inbound) {
        let service = self.faults.service_time;
        let cost = match inbound {
            Inbound::Message(_) => service,
            Inbound::Ping => Duration::ZERO,
            Inbound::Close => return self.serve(at, connection, inbound),
        };
        let host = self.host_of(connection);
        let Some(h) = host.and_then(|i| self.hosts.get_mut(i)) else {
            return self.serve(at, connection, inbound);
        };
        if cost.is_zero() && h.busy_until <= at {
            return self.serve(at, connection, inbound);
        }
        let when = at.max(h.busy_until).saturating_add(cost);
        h.busy_until = when;
        self.schedule(
            when,
            Event::Serve {
                connection,
                inbound,
            },
        );
    }

    /// After a connection to `host` closed, its queued messages will be
    /// dropped unserved; the host is busy only until the last message still
    /// queued for an open connection.
    fn release_service(&mut self, at: Instant, host: usize) {
        let mut busy = at;
        for (&(when, _), event) in &self.queue {
            if let Event::Serve { connection, .. } = event {
                if self.host_of(*connection) == Some(host) {
                    busy = busy.max(when);
                }
            }
        }
        if let Some(h) = self.hosts.get_mut(host) {
            h.busy_until = h.busy_until.min(busy);
        }
    }

    /// The server handles inbound traffic at `at`.
    fn serve(&mut self, at: Instant, connection: u64, inbound: Inbound) {
        let Some(host) = self.host_of(connection) else {
            if matches!(inbound, Inbound::Message(_)) {
                self.stats.frames_lost += 1;
            }
            return;
        };
        match inbound {
            Inbound::Close => {
                if let Some(h) = self.hosts.get_mut(host) {
                    h.server.close(connection);
                }
                if let Some(link) = self.links.get_mut(&connection) {
                    link.held_ok = None;
                }
                self.release_service(at, host);
            }
            Inbound::Ping => {
                self.stats.pings += 1;
                self.send_to_client(at, connection, NetEvent::Pong, Duration::ZERO);
                self.flush_durable(at, host, connection);
            }
            Inbound::Message(frame) => self.message(at, host, connection, &frame),
        }
    }

    fn draw_connect_fault(&mut self) -> ConnectFault {
        let f = &self.faults;
        let (refuse, hang, role, auth, status, version, omit) = (
            f.refuse_connect,
            f.hang_connect,
            f.role_reject,
            f.auth_reject,
            f.status_reject,
            f.bad_version,
            f.omit_durable_echo,
        );
        let r = &mut self.connect_rng;
        if r.chance(refuse) {
            ConnectFault::Refuse
        } else if r.chance(hang) {
            ConnectFault::Hang
        } else if r.chance(role) {
            let roles = [ROLE_PRIMARY_CATCHUP, "REPLICA", "PRIMARY", ""];
            ConnectFault::Role(r.pick(&roles).copied().unwrap_or("").to_owned())
        } else if r.chance(auth) {
            ConnectFault::Status(r.pick(&[401u16, 403]).copied().unwrap_or(401))
        } else if r.chance(status) {
            ConnectFault::Status(
                r.pick(&[400u16, 404, 426, 500, 503])
                    .copied()
                    .unwrap_or(503),
            )
        } else if r.chance(version) {
            ConnectFault::BadVersion(
                r.pick(&["0", "2", "99", "one", ""])
                    .copied()
                    .unwrap_or("2")
                    .to_owned(),
            )
        } else if r.chance(omit) {
            ConnectFault::OmitDurableEcho
        } else {
            ConnectFault::Accept
        }
    }

    fn draw_message_fault(&mut self, host: usize) -> MessageFault {
        let f = self.faults.clone();
        let lose_allowed = self
            .hosts
            .get(host)
            .is_some_and(|h| h.server.only_durable_clients());
        let r = &mut self.message_rng;
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        if r.chance(f.error_continue) {
            MessageFault::Error(
                r.pick(&[STATUS_SCHEMA_MISMATCH, STATUS_WRITE_ERROR])
                    .copied()
                    .unwrap_or(STATUS_WRITE_ERROR),
            )
        } else if r.chance(f.error_halt) {
            MessageFault::Error(
                r.pick(&[
                    STATUS_PARSE_ERROR,
                    STATUS_INTERNAL_ERROR,
                    STATUS_SECURITY_ERROR,
                    0x01,
                    0x04,
                    0x07,
                ])
                .copied()
                .unwrap_or(STATUS_INTERNAL_ERROR),
            )
        } else if r.chance(f.drop_before) {
            MessageFault::DropBefore
        } else if r.chance(f.drop_after) {
            MessageFault::DropAfter
        } else if r.chance(f.close_reconnect) {
            MessageFault::Close(
                r.pick(&[1000u16, 1001, 1011, 1012, 1013, 4000])
                    .copied()
                    .unwrap_or(1011),
            )
        } else if r.chance(f.close_terminal) {
            MessageFault::Close(r.pick(&TERMINAL_CLOSE_CODES).copied().unwrap_or(1002))
        } else if r.chance(f.restart) {
            MessageFault::Restart {
                lose_undurable: lose_allowed && r.chance(f.restart_loses_undurable),
                downtime: Duration::from_nanos(r.below(nanos(f.restart_downtime_max))),
            }
        } else if r.chance(f.coalesce_ok) {
            MessageFault::CoalesceOk
        } else if r.chance(f.delay_ok) {
            MessageFault::DelayOk(Duration::from_nanos(r.below(nanos(f.delay_ok_max))))
        } else if r.chance(f.future_ok) {
            MessageFault::FutureOk(r.range_inclusive(1, 3))
        } else if r.chance(f.durable_before_ok) {
            MessageFault::DurableBeforeOk
        } else if r.chance(f.duplicate_response) {
            MessageFault::DuplicateResponse
        } else {
            MessageFault::None
        }
    }

    /// Numbers, decodes, commits and answers one message, applying its
    /// fault.
    fn message(&mut self, at: Instant, host: usize, connection: u64, frame: &[u8]) {
        let fault = match self.message_script.pop_front() {
            Some(f) => f,
            None => self.draw_message_fault(host),
        };
        if fault == MessageFault::DropBefore {
            self.count("drop_before");
            self.stats.frames_lost += 1;
            self.reset(at, connection, "connection reset");
            return;
        }
        let Some((seq, decoded)) = self
            .hosts
            .get_mut(host)
            .and_then(|h| h.server.receive(connection, frame))
        else {
            return;
        };
        self.stats.messages_received += 1;
        // Self-sufficiency: the frame must also decode with no connection
        // state at all, since it may be the first frame of a replay.
        let alone = decode(frame);
        let message = match (decoded, alone) {
            (Ok(m), Ok(_)) => Ok(m),
            (Ok(_), Err(e)) => Err(format!(
                "frame {seq} on connection {connection} decodes only with the connection's \
                 earlier messages: {e}"
            )),
            (Err(e), _) => Err(format!(
                "frame {seq} on connection {connection} does not decode: {e}"
            )),
        };
        let message = match message {
            Ok(m) => m,
            Err(detail) => {
                self.violations.push(NetViolation {
                    invariant: "SELF_SUFFICIENT",
                    detail: detail.clone(),
                    at,
                });
                self.reject(
                    at,
                    host,
                    connection,
                    seq,
                    STATUS_PARSE_ERROR,
                    &detail,
                    Vec::new(),
                );
                return;
            }
        };
        let ids: Vec<i64> = message
            .tables
            .iter()
            .filter_map(|t| t.column(crate::server::ROW_ID_COLUMN))
            .flat_map(|c| c.iter())
            .filter_map(|v| match v {
                Some(qwp_proto::decoder::Value::Long(id)) => Some(id),
                _ => None,
            })
            .collect();
        if let Some(status) = ids.iter().find_map(|id| self.poison.get(id).copied()) {
            self.count("poisoned_row");
            let detail = format!("poisoned row in message {seq}");
            self.reject(at, host, connection, seq, status, &detail, ids);
            self.flush_durable(at, host, connection);
            return;
        }
        if let MessageFault::Error(status) = fault {
            self.count("error_status");
            let detail = format!("injected fault: status {status:#04x} on message {seq}");
            self.reject(at, host, connection, seq, status, &detail, ids);
            self.flush_durable(at, host, connection);
            return;
        }
        // Commit.
        let id = self.next_commit;
        self.next_commit += 1;
        let lo = u64::try_from(self.faults.durable_delay_min.as_nanos()).unwrap_or(u64::MAX);
        let hi = u64::try_from(self.faults.durable_delay_max.as_nanos()).unwrap_or(u64::MAX);
        let durable_at = at.saturating_add(Duration::from_nanos(
            self.durable_rng.range_inclusive(lo, hi),
        ));
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        let commit = h.server.commit(id, connection, &message, durable_at);
        self.stats.rows_committed += commit
            .tables
            .iter()
            .map(|t| t.row_ids.len() as u64 + t.rows_without_id)
            .sum::<u64>();
        let ok = OkFrame {
            sequence: i64::try_from(seq).unwrap_or(i64::MAX),
            tables: commit.ok_tables(),
        };
        let client = self.client_of(connection);
        self.accepted.push(AcceptedMessage {
            id,
            client,
            host,
            connection,
            wire_seq: seq,
            at,
            tables: commit.tables,
            durable_at: commit.durable_at,
        });
        self.advance_durability(at);
        match fault {
            MessageFault::DropAfter => {
                self.count("drop_after");
                self.reset(at, connection, "connection reset");
            }
            MessageFault::Restart {
                lose_undurable,
                downtime,
            } => {
                self.count(if lose_undurable {
                    "restart_losing_undurable"
                } else {
                    "restart"
                });
                self.restart(at, host, lose_undurable, downtime);
            }
            MessageFault::Close(code) => {
                self.count("server_close");
                self.send_ok(at, connection, ok, Duration::ZERO);
                self.flush_durable(at, host, connection);
                self.flush_held(at, connection);
                if let Some(h) = self.hosts.get_mut(host) {
                    h.server.close(connection);
                }
                self.send_to_client(
                    at,
                    connection,
                    NetEvent::Disconnected {
                        close_code: Some(code),
                        reason: "closed by server (injected fault)".to_owned(),
                    },
                    Duration::ZERO,
                );
            }
            MessageFault::CoalesceOk => {
                self.count("coalesce_ok");
                let window = self.faults.coalesce_window;
                if let Some(link) = self.links.get_mut(&connection) {
                    link.held_ok = Some(merge_ok(link.held_ok.take(), ok));
                }
                self.schedule(at.saturating_add(window), Event::FlushHeld { connection });
                self.flush_durable(at, host, connection);
            }
            MessageFault::DelayOk(extra) => {
                self.count("delay_ok");
                self.send_ok(at, connection, ok, extra);
                self.flush_durable(at, host, connection);
            }
            MessageFault::FutureOk(ahead) => {
                let held = self
                    .links
                    .get_mut(&connection)
                    .and_then(|l| l.held_ok.take());
                self.stats.oks_sent += 1;
                self.send_outgoing(
                    at,
                    connection,
                    Outgoing::FutureOk {
                        ok: merge_ok(held, ok),
                        ahead,
                    },
                    Duration::ZERO,
                );
                self.flush_durable(at, host, connection);
            }
            MessageFault::DurableBeforeOk => {
                self.count("durable_before_ok");
                if let Some(h) = self.hosts.get_mut(host) {
                    let ids = h.server.make_all_durable(at);
                    self.mark_durable(ids, at);
                }
                self.flush_durable(at, host, connection);
                self.send_ok(at, connection, ok, Duration::ZERO);
            }
            MessageFault::DuplicateResponse => {
                self.count("duplicate_response");
                self.send_ok(at, connection, ok.clone(), Duration::ZERO);
                self.send_ok(at, connection, ok, Duration::ZERO);
                self.flush_durable(at, host, connection);
            }
            MessageFault::None | MessageFault::Error(_) | MessageFault::DropBefore => {
                self.send_ok(at, connection, ok, Duration::ZERO);
                self.flush_durable(at, host, connection);
            }
        }
    }

    /// Sends an OK, merged with a held (coalesced) one if any.
    fn send_ok(&mut self, at: Instant, connection: u64, ok: OkFrame, extra: Duration) {
        let held = self
            .links
            .get_mut(&connection)
            .and_then(|l| l.held_ok.take());
        let ok = merge_ok(held, ok);
        self.stats.oks_sent += 1;
        self.send_to_client(
            at,
            connection,
            NetEvent::Received(encode(&Response::Ok(ok))),
            extra,
        );
    }

    /// Sends a held OK whose window ended (or before an error or close).
    fn flush_held(&mut self, at: Instant, connection: u64) {
        if self.host_of(connection).is_none() {
            return;
        }
        let held = self
            .links
            .get_mut(&connection)
            .and_then(|l| l.held_ok.take());
        if let Some(ok) = held {
            self.stats.oks_sent += 1;
            self.send_to_client(
                at,
                connection,
                NetEvent::Received(encode(&Response::Ok(ok))),
                Duration::ZERO,
            );
        }
    }

    /// Answers with an error frame and records the reject.
    #[allow(clippy::too_many_arguments)]
    fn reject(
        &mut self,
        at: Instant,
        host: usize,
        connection: u64,
        seq: u64,
        status: u8,
        detail: &str,
        row_ids: Vec<i64>,
    ) {
        self.flush_held(at, connection);
        let frame = qwp_proto::response::ErrorFrame::new(
            status,
            i64::try_from(seq).unwrap_or(i64::MAX),
            detail,
        )
        .or_else(|_| qwp_proto::response::ErrorFrame::new(STATUS_PARSE_ERROR, 0, detail));
        let Ok(frame) = frame else {
            return;
        };
        let client = self.client_of(connection);
        self.rejected.push(RejectedMessage {
            client,
            host,
            connection,
            wire_seq: seq,
            at,
            status: frame.status(),
            row_ids,
        });
        self.stats.errors_sent += 1;
        self.send_to_client(
            at,
            connection,
            NetEvent::Received(encode(&Response::Error(frame))),
            Duration::ZERO,
        );
    }

    /// On inbound activity: the connection's DURABLE_ACK, if one is due,
    /// partial or followed by a stale one per the faults.
    fn flush_durable(&mut self, at: Instant, host: usize, connection: u64) {
        let partial = self.durable_rng.chance(self.faults.partial_durable);
        let stale = self.durable_rng.chance(self.faults.stale_durable);
        let pick = self.durable_rng.next_u64();
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        let Some(ack) = h.server.durable_ack(connection, |i| !partial || i == 0) else {
            return;
        };
        let stale_ack = if stale {
            h.server.stale_durable_ack(connection, pick)
        } else {
            None
        };
        if partial {
            self.count("partial_durable");
        }
        self.stats.durable_acks_sent += 1;
        self.send_to_client(
            at,
            connection,
            NetEvent::Received(encode(&Response::DurableAck(ack))),
            Duration::ZERO,
        );
        if let Some(stale_ack) = stale_ack {
            self.count("stale_durable");
            self.stats.durable_acks_sent += 1;
            self.send_to_client(
                at,
                connection,
                NetEvent::Received(encode(&Response::DurableAck(stale_ack))),
                Duration::ZERO,
            );
        }
    }

    /// The connection resets at `at` (no close frame): the server forgets
    /// it, a held OK is lost, and the client learns of it after the
    /// answers already on their way.
    fn reset(&mut self, at: Instant, connection: u64, reason: &str) {
        if let Some(link) = self.links.get(&connection) {
            if let Some(h) = self.hosts.get_mut(link.host) {
                h.server.close(connection);
            }
        }
        if let Some(link) = self.links.get_mut(&connection) {
            link.held_ok = None;
        }
        self.send_to_client(
            at,
            connection,
            NetEvent::Disconnected {
                close_code: None,
                reason: reason.to_owned(),
            },
            Duration::ZERO,
        );
    }
}

/// `later` covering `earlier` too: the later sequence, per-table seqTxns
/// max-merged (in order of first appearance).
fn merge_ok(earlier: Option<OkFrame>, later: OkFrame) -> OkFrame {
    let Some(earlier) = earlier else {
        return later;
    };
    let mut tables: Vec<TableSeqTxn> = earlier.tables;
    for t in later.tables {
        match tables.iter_mut().find(|e| e.name == t.name) {
            Some(e) => e.seq_txn = e.seq_txn.max(t.seq_txn),
            None => tables.push(t),
        }
    }
    OkFrame {
        sequence: later.sequence.max(earlier.sequence),
        tables,
    }
}

/// Encodes a response; table names are ≤ 127 bytes, so it cannot fail, and
/// an empty OK is the fallback that still answers.
fn encode(response: &Response) -> Vec<u8> {
    let mut out = Vec::new();
    if response.encode_into(&mut out).is_err() {
        out.clear();
    }
    out
}
