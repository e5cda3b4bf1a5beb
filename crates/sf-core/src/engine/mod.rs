//! The composed sans-IO engine: storage plus the connection half, the
//! close/flush lifecycle, and the counters of sf-client §20 (DESIGN §2).
//!
//! # Driving it
//!
//! * Feed every event with [`Engine::handle_input`] (`now` first): connect
//!   results with the upgrade response, server messages as raw bytes,
//!   disconnects with their close code, storage completions, timer expiry.
//! * Drain [`Engine::poll_output`] until `None` after every call, perform
//!   each [`Output`], and arm a timer for [`Engine::poll_timeout`].
//! * The producer calls [`Engine::begin_append`] / [`Engine::commit_append`],
//!   [`Engine::flush`] / [`Engine::is_flushed`] and [`Engine::close`]; once a
//!   terminal error is latched they return it.
//!
//! # What the engine decides
//!
//! * W1: at every connect the wire mapping starts at `acked + 1` with wire
//!   sequence 0 and frames go out strictly in FSN order, replay first.
//! * W2: OKs are clamped to what was sent on this connection.
//! * W3: an error frame is never transient; its policy drops (acknowledges)
//!   or halts. Only close codes and transport failures reconnect.
//! * W4: with `request_durable_ack=on` the connect is refused without the
//!   echo, OKs only queue, DURABLE_ACK coverage trims, a keepalive PING pokes
//!   the server while confirmations are pending.
//! * W5: every wait has a deadline in [`Engine::poll_timeout`]: the connect
//!   (`connect_timeout`), the backoff sleep, the in-flight window
//!   (`ack_timeout`), pending durable confirmations (keepalive), the append
//!   at the cap (`sf_append_deadline_millis`), the close drain, and the
//!   close's wait for the owed `.ack-watermark` write
//!   ([`CLOSE_WATERMARK_WAIT`]).
//! * S8 at close: every `close()`, draining or not, closes the connection
//!   and then waits for `.ack-watermark` to record what is acknowledged
//!   (issuing the write if it is owed) before it releases the slot, so a
//!   reopen does not replay acknowledged frames. Adapters never wait for
//!   the watermark themselves.
//! * D1: no clock, no global randomness (jitter comes from the seed), no
//!   hash-order iteration reaches an output.

mod config;
mod connection;
mod lifecycle;

pub use config::{
    EngineConfig, EngineConfigError, DEFAULT_ACK_TIMEOUT, DEFAULT_CLOSE_FLUSH_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE_INTERVAL,
};
pub use connection::ConnectionState;
pub use lifecycle::CLOSE_WATERMARK_WAIT;

use std::collections::VecDeque;
use std::time::Duration;

use qwp_proto::response::{Response, ResponseDecodeError, TableSeqTxn};
use qwp_proto::status::ErrorCategory;
use qwp_proto::upgrade::{classify_upgrade, UpgradeOutcome};

use crate::ack::{AckError, TrimDriver, WireMapping};
use crate::backoff::SplitMix64;
use crate::durability::BatchTicket;
use crate::durable_ack::DurableAckTracker;
use crate::errors::{
    CloseAction, ErrorAction, ErrorConfigError, FsnSpan, SenderError, ServerErrors,
};
use crate::reconnect::{Action, ConnectOutcome, GiveUpReason, ReconnectConfig, ReconnectLoop};
use crate::recovery::RecoveredSlot;
use crate::ring::FrameLocation;
use crate::storage::{
    AppendDecision, AppendError, Committed, IoFailure, IoId, IoOutcome, LinkState, Placement,
    Storage, StorageError, StorageOutput,
};
use crate::{Fsn, Instant, WireSeq};

use connection::{Conn, Session};
use lifecycle::{drain_end, fully_acked, DrainEnd, Lifecycle, Settle};

/// Close code the engine asks for when it ends a connection normally
/// (`close()`, HALT).
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code for abandoning a connection that stopped answering (ACK
/// timeout, connect timeout).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a connection whose server sent bytes that are not a
/// response frame, or refused the durable-ACK echo.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;

/// An event fed to [`Engine::handle_input`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// The connect to `host` got an HTTP response to its upgrade request.
    /// The engine classifies it (101 accepted, 401/403 auth, 421 role
    /// reject, version range, durable-ACK echo).
    Connected {
        /// The `addr` index from [`Output::Connect`].
        host: usize,
        /// The HTTP status.
        status: u16,
        /// The response headers as received.
        headers: &'a [(&'a str, &'a [u8])],
    },
    /// The connect to `host` failed before an HTTP response (DNS, TCP, TLS,
    /// timeout): a transport error of that host.
    ConnectFailed {
        /// The `addr` index from [`Output::Connect`].
        host: usize,
        /// The adapter's description, for diagnostics only.
        reason: &'a str,
    },
    /// One binary WebSocket message from the server.
    Received(&'a [u8]),
    /// The connection ended: a close frame with its code, or `None` for a
    /// transport failure (reset, EOF, send or receive error).
    Disconnected {
        /// The WebSocket close code, if a close frame arrived.
        close_code: Option<u16>,
        /// The close reason or the adapter's description.
        reason: &'a str,
    },
    /// A PONG arrived. Ignored: the keepalive exists to make the server
    /// flush durable ACKs, not to measure liveness.
    Pong,
    /// A storage operation completed.
    Io {
        /// The id from the [`StorageOutput`].
        id: IoId,
        /// What happened.
        outcome: IoOutcome,
    },
    /// The instant from [`Engine::poll_timeout`] was reached.
    Timeout,
}

/// Something the engine wants done, or wants said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A storage operation; report it with [`Input::Io`].
    Storage(StorageOutput),
    /// Open a WebSocket connection to `addr` entry `host` and report
    /// [`Input::Connected`] or [`Input::ConnectFailed`].
    Connect {
        /// The `addr` index.
        host: usize,
    },
    /// Send the frame `fsn` (read at `location`) as the next binary message
    /// on the current connection. Always in FSN order; replay first.
    Send {
        /// The frame.
        fsn: Fsn,
        /// Where its bytes are.
        location: FrameLocation,
    },
    /// Send a WebSocket PING (durable-ACK keepalive, sf-client §11).
    Ping,
    /// Close the current connection (or abort the connect in flight) with
    /// `code`. The engine has already moved on: the adapter must not report
    /// anything more about that socket or attempt (no [`Input::Disconnected`],
    /// no connect result, no late message), since the next input of that
    /// kind is taken to be about the next connection.
    CloseConnection {
        /// The WebSocket close code to send.
        code: u16,
    },
    /// An error for the user's error handler (sf-client §14.6).
    Notify(SenderError),
    /// The acknowledged FSN advanced (progress handler; wakes waiters).
    Progress {
        /// Every frame up to this one is acknowledged.
        acked: Fsn,
    },
    /// Something worth a WARN line; the engine carries on.
    Warn(EngineWarning),
    /// `close()` is done with the slot: release the lock and the mappings.
    Released,
    /// `close()` finished; the last output.
    Closed {
        /// The latched terminal error, if any (C2).
        result: Result<(), SenderError>,
        /// Whether everything published was acknowledged before release;
        /// `false` means the drain was skipped, timed out, or halted.
        drained: bool,
    },
}

/// A condition to log at WARN; none of them stops the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineWarning {
    /// The upgrade to `host` was answered but not accepted (role reject,
    /// unexpected status, version out of range, durable-ACK echo missing).
    ConnectRejected {
        /// The `addr` index.
        host: usize,
        /// The classification.
        outcome: UpgradeOutcome,
    },
    /// The connect to `host` got no answer within `connect_timeout`.
    ConnectTimedOut {
        /// The `addr` index.
        host: usize,
    },
    /// A server message could not be decoded: a transient mid-stream error
    /// (failover.md §6), the connection is dropped and re-established.
    UndecodableResponse {
        /// Why.
        error: ResponseDecodeError,
    },
    /// An OK named a sequence beyond what was sent; it was clamped (W2).
    OkClamped {
        /// The sequence the server sent.
        sequence: i64,
        /// What it was clamped to.
        clamped_to: WireSeq,
    },
    /// An OK that names no frame sent on this connection was ignored.
    OkIgnored {
        /// Why it could not be placed.
        error: AckError,
    },
    /// A DURABLE_ACK arrived on a connection that did not negotiate durable
    /// ACKs; ignored.
    UnexpectedDurableAck,
    /// Frames were in flight with no answer for `ack_timeout`: the
    /// connection is dropped and re-established (sf-client §13.1).
    AckTimeout {
        /// Frames unanswered.
        in_flight: u64,
    },
    /// `close()` gave up draining at its deadline; unacknowledged frames
    /// stay on disk (SF) or are lost (memory backing).
    CloseDrainTimedOut {
        /// The acknowledged FSN at release.
        acked: Option<Fsn>,
        /// The published FSN at release.
        published: Option<Fsn>,
    },
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineBuildError {
    /// The storage refused the configuration or the recovered slot.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// The error-handling settings are invalid.
    #[error("error handling: {0}")]
    Errors(#[from] ErrorConfigError),
}

/// Why a producer call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// A terminal error is latched (HALT, terminal close code, auth, budget).
    #[error("sender halted: {0}")]
    Terminal(SenderError),
    /// `close()` was called.
    #[error("sender is closed")]
    Closed,
    /// The storage refused the append (frame too large, backpressure at the
    /// deadline, write failure).
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// A driver bug: an input that does not fit the engine's state. The engine
/// is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A connect result for a host the engine is not connecting to.
    #[error("connect result for host {host}, but the engine awaits {awaiting:?}")]
    UnexpectedConnectResult {
        /// The host reported.
        host: usize,
        /// The host whose connect is in flight, if any.
        awaiting: Option<usize>,
    },
    /// The storage refused a completion.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

/// The current outage, for the backpressure error (S6) and the counters.
#[derive(Debug, Clone, Copy)]
struct Outage {
    started: Instant,
    /// Connects asked for in this outage.
    attempts: u32,
}

/// The sender-lifetime counters (sf-client §20) kept by the engine itself.
#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    connects: u64,
    reconnect_attempts: u64,
    reconnects_succeeded: u64,
    /// Frames replayed on connections that already ended.
    replayed_before: u64,
    /// Connections whose upgrade was accepted.
    sessions: u64,
    backpressure_stalls: u64,
    /// Copies of the inbox counters: `ServerErrors::inbox` needs `&mut`, so
    /// they are refreshed whenever the inbox can change and read from here.
    inbox_dropped: u64,
    inbox_delivered: u64,
}

/// The composed sans-IO engine. See the module docs.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    storage: Storage,
    reconnect: ReconnectLoop<SplitMix64>,
    errors: ServerErrors,
    conn: Conn,
    lifecycle: Lifecycle,
    queue: VecDeque<Output>,
    outage: Option<Outage>,
    /// The append deadline while the producer waits (cap, spare).
    append_wait_until: Option<Instant>,
    /// Whether the current connect is a reconnect (counted as an attempt).
    connect_is_reconnect: bool,
    /// Frames published and unacknowledged when the slot was opened: what
    /// the first connection re-sends from an earlier run.
    recovered_unacked: u64,
    counters: Counters,
}

impl Engine {
    /// Builds the engine over a recovered slot ([`RecoveredSlot::empty`]
    /// for a fresh one or for memory backing). `jitter_seed` seeds the
    /// backoff jitter, so the same seed and inputs give the same outputs
    /// (D1). The first outputs are the storage's provisioning and a connect.
    pub fn new(
        config: EngineConfig,
        recovered: RecoveredSlot,
        now: Instant,
        jitter_seed: u64,
    ) -> Result<Engine, EngineBuildError> {
        let storage = Storage::open(config.storage.clone(), recovered, now)?;
        let recovered_unacked = FsnSpan::unacked(storage.acked_fsn(), storage.published_fsn())
            .map_or(0, |span| span.to().get() - span.from().get() + 1);
        let errors = ServerErrors::new(config.error_policies.clone(), config.error_inbox_capacity)?;
        let reconnect = ReconnectLoop::new(
            ReconnectConfig {
                hosts: config.hosts,
                backoff: config.backoff,
                initial_connect_retry: config.initial_connect_retry,
            },
            SplitMix64::new(jitter_seed),
        );
        let mut engine = Engine {
            config,
            storage,
            reconnect,
            errors,
            conn: Conn::Down { sleep_until: None },
            lifecycle: Lifecycle::Open,
            queue: VecDeque::new(),
            outage: Some(Outage {
                started: now,
                attempts: 0,
            }),
            append_wait_until: None,
            connect_is_reconnect: false,
            recovered_unacked,
            counters: Counters::default(),
        };
        engine.sync_link_state(now);
        engine.drive(now);
        Ok(engine)
    }

    // ----- inputs ------------------------------------------------------------

    /// Feeds one event. An input that does not fit the current state is a
    /// driver bug and is refused with the engine unchanged; events that
    /// merely arrive late (a message after a disconnect, a completion after
    /// release) are ignored.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), InputError> {
        match input {
            Input::Connected {
                host,
                status,
                headers,
            } => self.on_connected(now, host, status, headers)?,
            Input::ConnectFailed { host, reason: _ } => {
                self.check_connecting(host)?;
                self.on_connect_failed(now, host);
            }
            Input::Received(bytes) => self.on_received(now, bytes),
            Input::Disconnected { close_code, reason } => {
                self.on_disconnected(now, close_code, reason)
            }
            Input::Pong => {}
            Input::Io { id, outcome } => {
                if self.lifecycle != Lifecycle::Released {
                    self.storage.io_done(now, id, outcome)?;
                }
            }
            Input::Timeout => {
                if self.lifecycle != Lifecycle::Released {
                    self.storage.handle_timeout(now);
                }
            }
        }
        self.drive(now);
        Ok(())
    }

    /// Refuses a connect result the engine did not ask for. Results that
    /// arrive after a halt or release are late, not wrong.
    fn check_connecting(&self, host: usize) -> Result<(), InputError> {
        match self.conn {
            Conn::Connecting { host: h, .. } if h == host => Ok(()),
            Conn::Halted | Conn::Released => Ok(()),
            Conn::Connecting { host: h, .. } => Err(InputError::UnexpectedConnectResult {
                host,
                awaiting: Some(h),
            }),
            Conn::Down { .. } | Conn::Up(_) => Err(InputError::UnexpectedConnectResult {
                host,
                awaiting: None,
            }),
        }
    }

    fn on_connected(
        &mut self,
        now: Instant,
        host: usize,
        status: u16,
        headers: &[(&str, &[u8])],
    ) -> Result<(), InputError> {
        self.check_connecting(host)?;
        if !matches!(self.conn, Conn::Connecting { .. }) {
            // Late answer after a halt or release: the socket is ours to close.
            if status == qwp_proto::upgrade::STATUS_SWITCHING_PROTOCOLS {
                self.queue
                    .push_back(Output::CloseConnection { code: CLOSE_NORMAL });
            }
            return Ok(());
        }
        let outcome = classify_upgrade(
            status,
            headers.iter().copied(),
            self.config.client_max_version,
            self.config.request_durable_ack,
        );
        let class = ConnectOutcome::from(&outcome);
        // The loop awaits exactly this host (checked above), so it accepts.
        let _ = self.reconnect.on_connect_result(now, host, class);
        match outcome {
            UpgradeOutcome::Accepted { durable_ack, .. } => {
                let driver = if durable_ack {
                    TrimDriver::DurableAck
                } else {
                    TrimDriver::Ok
                };
                let mapping = WireMapping::connect(
                    self.storage.acked_fsn(),
                    self.storage.published_fsn(),
                    driver,
                    self.config.in_flight_window,
                    now,
                );
                // On the first connection only frames recovered from an
                // earlier run are re-sent; frames appended while it was
                // coming up go out for the first time (sf-client §20 counts
                // re-sent frames).
                let replay_cap = (self.counters.sessions == 0).then_some(self.recovered_unacked);
                self.counters.sessions += 1;
                self.conn = Conn::Up(Box::new(Session {
                    host,
                    mapping,
                    durable: DurableAckTracker::new(self.config.keepalive_millis()),
                    last_send_or_ping: now,
                    replay_cap,
                    handed: 0,
                }));
                if self.connect_is_reconnect {
                    self.counters.reconnects_succeeded += 1;
                }
                self.outage = None;
                self.sync_link_state(now);
            }
            UpgradeOutcome::AuthError { .. } => {
                // The loop is terminal now; `drive` latches its GiveUp.
                self.conn = Conn::Down { sleep_until: None };
            }
            other => {
                if status == qwp_proto::upgrade::STATUS_SWITCHING_PROTOCOLS {
                    // Upgraded but unusable (version, missing durable echo):
                    // the socket is open and must be closed.
                    self.queue.push_back(Output::CloseConnection {
                        code: CLOSE_PROTOCOL_ERROR,
                    });
                }
                self.queue
                    .push_back(Output::Warn(EngineWarning::ConnectRejected {
                        host,
                        outcome: other,
                    }));
                self.enter_outage(now);
            }
        }
        Ok(())
    }

    fn on_connect_failed(&mut self, now: Instant, host: usize) {
        if !matches!(self.conn, Conn::Connecting { .. }) {
            return;
        }
        let _ = self
            .reconnect
            .on_connect_result(now, host, ConnectOutcome::TransportError);
        self.enter_outage(now);
    }

    /// The connection is down (or never came up): the reconnect loop is
    /// asked what is next by `drive`.
    fn enter_outage(&mut self, now: Instant) {
        if let Conn::Up(session) = &self.conn {
            self.counters.replayed_before += session.replayed();
        }
        self.discard_queued_sends();
        self.conn = Conn::Down { sleep_until: None };
        if self.outage.is_none() {
            self.outage = Some(Outage {
                started: now,
                attempts: 0,
            });
        }
        self.sync_link_state(now);
    }

    /// A live connection failed (transport error, reconnect-class close
    /// code, undecodable message, ACK timeout): demote its host before the
    /// next pick and reconnect. `close` asks the adapter to close it first.
    fn fail_connection(&mut self, now: Instant, close: Option<u16>) {
        if !matches!(self.conn, Conn::Up(_)) {
            return;
        }
        let _ = self.reconnect.on_mid_stream_failure(now);
        if let Some(code) = close {
            self.queue.push_back(Output::CloseConnection { code });
        }
        self.enter_outage(now);
    }

    /// Drops `Send` and `Ping` outputs the adapter has not taken yet: they
    /// belong to a connection that is gone, and an adapter that performed
    /// them after the next `Connect` would put frames on the new connection
    /// out of FSN order (W1). Nothing is lost: the next connection replays
    /// from `acked + 1`.
    fn discard_queued_sends(&mut self) {
        self.queue
            .retain(|o| !matches!(o, Output::Send { .. } | Output::Ping));
    }

    /// Latches `error` (offering it to the inbox) and stops the loop.
    fn halt(&mut self, error: SenderError) {
        self.errors.latch_terminal(error);
        self.stop_loop();
    }

    /// Closes whatever socket is open (keeping the replay count of its
    /// session) and drops the sends queued for it.
    fn close_socket(&mut self) {
        if let Conn::Up(session) = &self.conn {
            self.counters.replayed_before += session.replayed();
        }
        self.discard_queued_sends();
        if self.conn.has_socket() {
            self.queue
                .push_back(Output::CloseConnection { code: CLOSE_NORMAL });
        }
    }

    /// Stops the loop after a latch: closes whatever socket is open.
    fn stop_loop(&mut self) {
        self.close_socket();
        if !matches!(self.conn, Conn::Released) {
            self.conn = Conn::Halted;
        }
    }

    fn on_disconnected(&mut self, now: Instant, close_code: Option<u16>, reason: &str) {
        match &self.conn {
            Conn::Connecting { host, .. } => {
                let host = *host;
                self.on_connect_failed(now, host);
            }
            Conn::Up(_) => match close_code {
                None => self.fail_connection(now, None),
                Some(code) => {
                    let action = self.errors.on_close(
                        code,
                        reason,
                        self.storage.acked_fsn(),
                        self.storage.published_fsn(),
                    );
                    match action {
                        CloseAction::Reconnect => self.fail_connection(now, None),
                        CloseAction::Halt(_) => {
                            // The server closed the socket; nothing to close.
                            if let Conn::Up(session) = &self.conn {
                                self.counters.replayed_before += session.replayed();
                            }
                            self.discard_queued_sends();
                            self.conn = Conn::Halted;
                        }
                    }
                }
            },
            Conn::Down { .. } | Conn::Halted | Conn::Released => {}
        }
    }

    fn on_received(&mut self, now: Instant, bytes: &[u8]) {
        if !matches!(self.conn, Conn::Up(_)) {
            return;
        }
        match Response::decode(bytes) {
            Err(error) => {
                self.queue
                    .push_back(Output::Warn(EngineWarning::UndecodableResponse { error }));
                self.fail_connection(now, Some(CLOSE_PROTOCOL_ERROR));
            }
            Ok(Response::Ok(ok)) => self.on_ok(now, ok.sequence, &ok.tables),
            Ok(Response::DurableAck(ack)) => self.on_durable_ack(now, &ack.tables),
            Ok(Response::Error(err)) => {
                self.on_error_frame(now, err.status(), err.sequence(), err.message())
            }
        }
    }

    fn on_ok(&mut self, now: Instant, sequence: i64, tables: &[TableSeqTxn]) {
        let Conn::Up(session) = &mut self.conn else {
            return;
        };
        let entries: Vec<(&str, i64)> = tables
            .iter()
            .map(|t| (t.name.as_str(), t.seq_txn))
            .collect();
        let Some(limited) = session.limit_to_handed(sequence) else {
            let error = AckError::NothingSent { sequence };
            self.queue
                .push_back(Output::Warn(EngineWarning::OkIgnored { error }));
            return;
        };
        let outcome = match session.mapping.on_ok(limited, &entries, now) {
            Ok(o) => o,
            Err(error) => {
                self.queue
                    .push_back(Output::Warn(EngineWarning::OkIgnored { error }));
                return;
            }
        };
        if outcome.clamped || limited != sequence {
            self.queue.push_back(Output::Warn(EngineWarning::OkClamped {
                sequence,
                clamped_to: outcome.wire_seq,
            }));
        }
        let acknowledge = match session.mapping.driver() {
            TrimDriver::Ok => outcome.acknowledge,
            TrimDriver::DurableAck => session
                .durable
                .on_ok(outcome.wire_seq, &entries, now)
                .and_then(|seq| session.mapping.acknowledge_wire_seq(seq)),
        };
        if let Some(fsn) = acknowledge {
            self.acknowledge(now, fsn);
        }
    }

    fn on_durable_ack(&mut self, now: Instant, tables: &[TableSeqTxn]) {
        let Conn::Up(session) = &mut self.conn else {
            return;
        };
        if session.mapping.driver() != TrimDriver::DurableAck {
            self.queue
                .push_back(Output::Warn(EngineWarning::UnexpectedDurableAck));
            return;
        }
        let entries: Vec<(&str, i64)> = tables
            .iter()
            .map(|t| (t.name.as_str(), t.seq_txn))
            .collect();
        let acknowledge = session
            .durable
            .on_durable_ack(&entries)
            .and_then(|seq| session.mapping.acknowledge_wire_seq(seq));
        if let Some(fsn) = acknowledge {
            self.acknowledge(now, fsn);
        }
    }

    fn on_error_frame(&mut self, now: Instant, status: u8, sequence: i64, message: &str) {
        let Conn::Up(session) = &mut self.conn else {
            return;
        };
        // An error naming a frame the adapter has not taken names the last
        // one it has (W2); with none taken it is passed on as is, for the
        // policy's own "nothing sent" handling.
        let sequence = session.limit_to_handed(sequence).unwrap_or(sequence);
        let verdict = self.errors.on_error_frame(
            status,
            sequence,
            message,
            &mut session.mapping,
            &mut session.durable,
            now,
        );
        match verdict.action {
            ErrorAction::Continue { acknowledge } => {
                if let Some(fsn) = acknowledge {
                    self.acknowledge(now, fsn);
                }
            }
            // Already latched and offered to the inbox by the policy.
            ErrorAction::Halt => self.stop_loop(),
        }
    }

    /// Trims storage up to `fsn` and reports progress if the watermark moved.
    fn acknowledge(&mut self, now: Instant, fsn: Fsn) {
        let before = self.storage.acked_fsn();
        self.storage.acknowledge(now, fsn);
        let after = self.storage.acked_fsn();
        if after > before {
            if let Some(acked) = after {
                self.queue.push_back(Output::Progress { acked });
            }
        }
    }

    fn sync_link_state(&mut self, now: Instant) {
        let link = match (&self.conn, self.outage) {
            (Conn::Up(_), _) => LinkState::Up,
            (_, Some(o)) => LinkState::Reconnecting {
                attempts: o.attempts,
                outage_started: o.started,
            },
            (_, None) => LinkState::Reconnecting {
                attempts: 0,
                outage_started: now,
            },
        };
        self.storage.set_link_state(now, link);
    }

    // ----- the step ----------------------------------------------------------

    /// Runs every decision due at `now`: connects, timeouts, sends, pings,
    /// the close drain.
    fn drive(&mut self, now: Instant) {
        if self.lifecycle == Lifecycle::Released {
            return;
        }
        if self.append_wait_until.is_some_and(|until| now >= until) {
            // The deadline fired: the adapter wakes the producer, which asks
            // again and gets its answer. A timer left in the past would make
            // the adapter spin.
            self.append_wait_until = None;
        }
        self.drive_connection(now);
        if let Lifecycle::Draining { deadline } = self.lifecycle {
            let halted = self.errors.terminal().is_some();
            if let Some(end) = drain_end(&self.storage, halted, deadline, now) {
                self.begin_settle(now, end, deadline);
            }
        }
        if let Lifecycle::Settling(settle) = self.lifecycle {
            if settle.is_over(&self.storage, now) {
                self.release(now, settle.end);
            }
        }
        self.refresh_inbox_counts();
    }

    fn refresh_inbox_counts(&mut self) {
        let inbox = self.errors.inbox();
        self.counters.inbox_dropped = inbox.dropped();
        self.counters.inbox_delivered = inbox.delivered();
    }

    fn drive_connection(&mut self, now: Instant) {
        // Bounded: each pass either returns or changes state toward Up,
        // Connecting, a sleep, or Halted; a failure of a live connection
        // moves to Down, which ends in Connecting or a sleep.
        for _ in 0..4 {
            match &mut self.conn {
                Conn::Halted | Conn::Released => return,
                Conn::Down { .. } => {
                    self.poll_reconnect(now);
                    return;
                }
                Conn::Connecting { host, deadline } => {
                    if now < *deadline {
                        return;
                    }
                    let host = *host;
                    self.queue.push_back(Output::CloseConnection {
                        code: CLOSE_GOING_AWAY,
                    });
                    self.queue
                        .push_back(Output::Warn(EngineWarning::ConnectTimedOut { host }));
                    self.on_connect_failed(now, host);
                }
                Conn::Up(session) => {
                    if let Some(timeout) = self.config.ack_timeout {
                        if session.mapping.is_stalled(now, timeout) {
                            let in_flight = session.mapping.in_flight();
                            self.queue
                                .push_back(Output::Warn(EngineWarning::AckTimeout { in_flight }));
                            self.fail_connection(now, Some(CLOSE_GOING_AWAY));
                            continue;
                        }
                    }
                    self.pump_sends(now);
                    return;
                }
            }
        }
    }

    /// Asks the reconnect loop what to do while down.
    fn poll_reconnect(&mut self, now: Instant) {
        match self.reconnect.next_action(now) {
            Action::Connect { host } => {
                self.counters.connects += 1;
                self.connect_is_reconnect = self.counters.connects > 1;
                if self.connect_is_reconnect {
                    self.counters.reconnect_attempts += 1;
                }
                if let Some(o) = &mut self.outage {
                    o.attempts = o.attempts.saturating_add(1);
                }
                self.conn = Conn::Connecting {
                    host,
                    deadline: now.saturating_add(self.config.connect_timeout),
                };
                self.queue.push_back(Output::Connect { host });
                self.sync_link_state(now);
            }
            Action::SleepUntil(until) => {
                self.conn = Conn::Down {
                    sleep_until: Some(until),
                };
            }
            // Only answered while a connect is in flight or up, which the
            // engine's own state already reflects.
            Action::Wait => {}
            Action::GiveUp(reason) => {
                let error = self.give_up_error(reason);
                self.halt(error);
            }
        }
    }

    fn give_up_error(&self, reason: GiveUpReason) -> SenderError {
        let span = FsnSpan::unacked(self.storage.acked_fsn(), self.storage.published_fsn());
        let message = match reason {
            GiveUpReason::AuthError { host } => {
                format!("upgrade to host {host} was refused with 401/403")
            }
            GiveUpReason::BudgetExhausted { attempt, elapsed } => format!(
                "reconnect budget exhausted after {} ms and {attempt} backoff(s)",
                elapsed.as_millis()
            ),
            GiveUpReason::InitialConnectFailed { host } => {
                format!("initial connect to host {host} failed and initial_connect_retry is off")
            }
        };
        SenderError::synthesized(reason.category(), &message, span)
    }

    /// Sends every published frame the window allows, in FSN order, then a
    /// keepalive PING if one is due.
    fn pump_sends(&mut self, now: Instant) {
        let published = self.storage.published_fsn();
        let Conn::Up(session) = &mut self.conn else {
            return;
        };
        let mut lost = None;
        while let Some(fsn) = session.mapping.next_to_send(published) {
            let Some(location) = self.storage.locate(fsn) else {
                lost = Some(fsn);
                break;
            };
            if session.mapping.on_sent(fsn, now).is_err() {
                break;
            }
            session.last_send_or_ping = now;
            self.queue.push_back(Output::Send { fsn, location });
        }
        if session.mapping.driver() == TrimDriver::DurableAck
            && session.durable.should_ping(now, session.last_send_or_ping)
        {
            session.last_send_or_ping = now;
            self.queue.push_back(Output::Ping);
        }
        if let Some(fsn) = lost {
            // A published, unacknowledged frame the storage cannot place is
            // a broken invariant; carrying on would skip it silently.
            let span = FsnSpan::unacked(self.storage.acked_fsn(), published);
            self.halt(SenderError::synthesized(
                ErrorCategory::Unknown,
                &format!("internal: storage cannot locate published frame {fsn}"),
                span,
            ));
        }
    }

    /// Ends the drain (or its skipping) as `end`: closes the connection so
    /// the acknowledged FSN stops moving, issues the owed `.ack-watermark`
    /// write at once (a retry backoff left from an earlier failure is not
    /// waited out), and starts the bounded wait for it (S8, W5). `drive`
    /// releases as soon as the wait is over, within the same call when
    /// nothing is owed.
    fn begin_settle(&mut self, now: Instant, end: DrainEnd, drain_deadline: Instant) {
        self.close_socket();
        if !matches!(self.conn, Conn::Halted) {
            self.conn = Conn::Released;
        }
        self.storage.expedite_ack_watermark(now);
        self.lifecycle =
            Lifecycle::Settling(Settle::begin(&self.storage, end, drain_deadline, now));
    }

    /// Releases the slot: closes the socket, flushes the inbox and pending
    /// storage requests into the queue, then `Released` and `Closed` (C2).
    fn release(&mut self, _now: Instant, end: DrainEnd) {
        if end == DrainEnd::TimedOut {
            self.queue
                .push_back(Output::Warn(EngineWarning::CloseDrainTimedOut {
                    acked: self.storage.acked_fsn(),
                    published: self.storage.published_fsn(),
                }));
        }
        self.close_socket();
        self.conn = Conn::Released;
        while let Some(e) = self.errors.inbox().pop() {
            self.queue.push_back(Output::Notify(e));
        }
        self.refresh_inbox_counts();
        while let Some(o) = self.storage.poll_output() {
            self.queue.push_back(Output::Storage(o));
        }
        self.queue.push_back(Output::Released);
        let result = match self.errors.terminal() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
        self.queue.push_back(Output::Closed {
            result,
            drained: end == DrainEnd::Drained,
        });
        self.lifecycle = Lifecycle::Released;
        self.append_wait_until = None;
    }

    // ----- outputs -----------------------------------------------------------

    /// The next thing to do. Errors for the handler come first (they are
    /// bounded by the inbox), then the engine's own outputs in the order they
    /// were decided, then storage requests.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.lifecycle != Lifecycle::Released {
            if let Some(e) = self.errors.inbox().pop() {
                self.refresh_inbox_counts();
                return Some(Output::Notify(e));
            }
        }
        if let Some(o) = self.queue.pop_front() {
            if let (Output::Send { .. }, Conn::Up(session)) = (&o, &mut self.conn) {
                session.handed += 1;
            }
            return Some(o);
        }
        if self.lifecycle == Lifecycle::Released {
            return None;
        }
        self.storage.poll_output().map(Output::Storage)
    }

    /// When to feed [`Input::Timeout`]: the earliest of the storage retries,
    /// the backoff sleep, the connect timeout, the ACK timeout, the keepalive
    /// PING, the append deadline and the close deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.lifecycle == Lifecycle::Released {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut take = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t: Instant| t.min(x)));
            }
        };
        take(self.storage.poll_timeout());
        take(self.append_wait_until);
        match &self.conn {
            Conn::Down { sleep_until } => take(*sleep_until),
            Conn::Connecting { deadline, .. } => take(Some(*deadline)),
            Conn::Up(session) => {
                if let Some(timeout) = self.config.ack_timeout {
                    take(session.mapping.ack_deadline(timeout));
                }
                if session.mapping.driver() == TrimDriver::DurableAck {
                    take(session.durable.ping_due(session.last_send_or_ping));
                }
            }
            Conn::Halted | Conn::Released => {}
        }
        match self.lifecycle {
            Lifecycle::Draining { deadline } => take(Some(deadline)),
            Lifecycle::Settling(settle) => take(Some(settle.deadline)),
            Lifecycle::Open | Lifecycle::Released => {}
        }
        t
    }

    // ----- producer ------------------------------------------------------------

    /// The error every producer call returns once halted or closed.
    fn refusal(&self) -> Option<EngineError> {
        if let Some(e) = self.errors.terminal() {
            return Some(EngineError::Terminal(e.clone()));
        }
        (self.lifecycle != Lifecycle::Open).then_some(EngineError::Closed)
    }

    /// Where the next frame of `payload_len` bytes goes, or how long to wait
    /// (cap, spare, reclaim; re-ask at `until` or after any progress). The
    /// append deadline is part of [`Engine::poll_timeout`] while waiting.
    pub fn begin_append(
        &mut self,
        now: Instant,
        payload_len: u64,
    ) -> Result<AppendDecision, EngineError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        match self.storage.begin_append(now, payload_len) {
            Ok(AppendDecision::Place(p)) => {
                self.append_wait_until = None;
                Ok(AppendDecision::Place(p))
            }
            Ok(AppendDecision::Wait { until, reason }) => {
                if self.append_wait_until.is_none() {
                    self.counters.backpressure_stalls += 1;
                }
                self.append_wait_until = Some(until);
                Ok(AppendDecision::Wait { until, reason })
            }
            Err(e) => {
                self.append_wait_until = None;
                Err(EngineError::Append(e))
            }
        }
    }

    /// Reports the write of a placed frame; on success the frame is
    /// published and goes out as soon as the window allows. This finishes an
    /// append begun before any halt, so it is not refused by one (the
    /// frame then stays in the log for a later sender to replay).
    pub fn commit_append(
        &mut self,
        now: Instant,
        placement: Placement,
        result: Result<(), IoFailure>,
    ) -> Result<Committed, EngineError> {
        if self.lifecycle == Lifecycle::Released {
            return Err(EngineError::Closed);
        }
        let committed = self.storage.commit_append(now, placement, result);
        self.drive(now);
        committed.map_err(EngineError::Append)
    }

    /// Closes the current batch (a user `flush()`); wait on the ticket with
    /// [`Engine::is_flushed`] (C1).
    pub fn flush(&mut self, now: Instant) -> Result<BatchTicket, EngineError> {
        if let Some(e) = self.refusal() {
            return Err(e);
        }
        let ticket = self.storage.end_batch(now);
        self.drive(now);
        Ok(ticket)
    }

    /// Whether the batch is done per the durability mode (C1): published in
    /// memory durability, fsynced in flush and append durability. A latched
    /// terminal error ends the wait with that error.
    pub fn is_flushed(&self, ticket: BatchTicket) -> Result<bool, EngineError> {
        if let Some(e) = self.errors.terminal() {
            return Err(EngineError::Terminal(e.clone()));
        }
        if self.lifecycle == Lifecycle::Released {
            return Err(EngineError::Closed);
        }
        Ok(self.storage.is_batch_done(ticket))
    }

    /// Starts `close()` (C2). With `close_flush_timeout` set and no terminal
    /// error latched, drains until everything published is acknowledged or
    /// the timeout passes; with `None` (`0`/`-1`), or with a terminal error
    /// already latched (the pre-drain check), skips the drain. Either way it
    /// then closes the connection and waits for the owed `.ack-watermark`
    /// write of what is acknowledged (S8), up to
    /// `max(drain deadline, drain end + `[`CLOSE_WATERMARK_WAIT`]`)`, and
    /// ends that wait early on the write's completion or failure (W5). A
    /// close that owes no write releases within this call. The outcome
    /// arrives as [`Output::Released`] then [`Output::Closed`], whose result
    /// is the latched terminal error if any. A second call is refused.
    pub fn close(&mut self, now: Instant) -> Result<(), EngineError> {
        if self.lifecycle != Lifecycle::Open {
            return Err(EngineError::Closed);
        }
        let halted = self.errors.terminal().is_some();
        match self.config.close_flush_timeout {
            Some(timeout) if !halted => {
                self.lifecycle = Lifecycle::Draining {
                    deadline: now.saturating_add(timeout),
                };
                self.drive(now);
            }
            _ => {
                let end = if fully_acked(&self.storage) {
                    DrainEnd::Drained
                } else {
                    DrainEnd::Halted
                };
                self.begin_settle(now, end, now);
                self.drive(now);
            }
        }
        Ok(())
    }

    // ----- getters -------------------------------------------------------------

    /// The connection half's phase.
    pub fn connection_state(&self) -> ConnectionState {
        self.conn.state()
    }

    /// Whether `close()` has released the slot.
    pub fn is_released(&self) -> bool {
        self.lifecycle == Lifecycle::Released
    }

    /// Whether `close()` was called and has not released the slot yet:
    /// it is draining or waiting for the owed `.ack-watermark` write.
    pub fn is_closing(&self) -> bool {
        matches!(
            self.lifecycle,
            Lifecycle::Draining { .. } | Lifecycle::Settling(_)
        )
    }

    /// The storage half, for inspection.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The highest acknowledged FSN.
    pub fn acked_fsn(&self) -> Option<Fsn> {
        self.storage.acked_fsn()
    }

    /// The highest published FSN.
    pub fn published_fsn(&self) -> Option<Fsn> {
        self.storage.published_fsn()
    }

    /// The locally durable FSN (L1).
    pub fn durable_fsn(&self) -> Option<Fsn> {
        self.storage.durable_fsn()
    }

    /// Frames sent on the current connection and not yet answered.
    pub fn in_flight_frames(&self) -> u64 {
        match &self.conn {
            Conn::Up(s) => s.mapping.in_flight(),
            _ => 0,
        }
    }

    /// How long the oldest OK has waited for durable coverage.
    pub fn oldest_pending_durable_age(&self, now: Instant) -> Option<Duration> {
        match &self.conn {
            Conn::Up(s) => s.durable.oldest_pending_age(now),
            _ => None,
        }
    }

    /// Connects asked for after the first one (`getTotalReconnectAttempts`).
    pub fn total_reconnect_attempts(&self) -> u64 {
        self.counters.reconnect_attempts
    }

    /// Of those, the ones whose upgrade was accepted
    /// (`getTotalReconnectsSucceeded`).
    pub fn total_reconnects_succeeded(&self) -> u64 {
        self.counters.reconnects_succeeded
    }

    /// Frames re-sent (`getTotalFramesReplayed`): on a reconnect, every
    /// frame published before it came up; on the first connection, the
    /// frames recovered unacknowledged from an earlier run.
    pub fn total_frames_replayed(&self) -> u64 {
        let current = match &self.conn {
            Conn::Up(s) => s.replayed(),
            _ => 0,
        };
        self.counters.replayed_before + current
    }

    /// Error frames received (`getTotalServerErrors`).
    pub fn total_server_errors(&self) -> u64 {
        self.errors.total_server_errors()
    }

    /// Error notifications dropped on inbox overflow
    /// (`getDroppedErrorNotifications`).
    pub fn dropped_error_notifications(&self) -> u64 {
        self.counters.inbox_dropped
    }

    /// Error notifications handed out as [`Output::Notify`]
    /// (`getTotalErrorNotificationsDelivered`).
    pub fn total_error_notifications_delivered(&self) -> u64 {
        self.counters.inbox_delivered
    }

    /// Appends that had to wait for space or a segment
    /// (`getTotalBackpressureStalls`).
    pub fn total_backpressure_stalls(&self) -> u64 {
        self.counters.backpressure_stalls
    }

    /// The latched terminal error (`getLastTerminalError`).
    pub fn last_terminal_error(&self) -> Option<&SenderError> {
        self.errors.terminal()
    }
}
