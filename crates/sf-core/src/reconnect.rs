//! The ingress reconnect loop (sf-client §13.6, failover.md §2–§3) as a pure
//! state machine.
//!
//! [`ReconnectLoop`] owns a [`HostTracker`], the [`OutageState`] and its own
//! `previousIdx`. The driver asks [`ReconnectLoop::next_action`] what to do
//! at `now` and reports what happened through
//! [`ReconnectLoop::on_connect_result`] and
//! [`ReconnectLoop::on_mid_stream_failure`]; the loop never reads a clock or
//! sleeps, it answers `SleepUntil(deadline)`.
//!
//! The rules, in the order §13.6 applies them on each iteration:
//! 1. A host that failed mid-stream is demoted (Healthy → TransportError)
//!    **before** the next pick, so sticky-healthy cannot keep it first.
//! 2. Pick the best untried host and connect to it; within a round there is
//!    no sleep between hosts.
//! 3. When the round is exhausted, pay exactly one sleep and then begin a
//!    forgetting round: if the last error was a role reject, sleep
//!    `min(initial, remaining)`, give up if the budget is then spent, and
//!    reset `attempt` (role rejects never double, but they do consume the
//!    budget); otherwise take `NextBackoffOrGiveUp` and count the attempt.
//! 4. An auth error (401/403) is terminal at once, without touching the
//!    budget. Any other connect error is terminal only on the very first
//!    connect with `initial_connect_retry=off`.
//! 5. A success resets the backoff and the outage clock; the clock starts
//!    at the first failure (a failed connect or a mid-stream failure).
//!
//! Decisions where the spec is silent:
//! - A role reject on the first connect with `initial_connect_retry=off` is
//!   not terminal: §13.6 applies the first-connect rule to "other" errors
//!   only, and a role reject says the cluster is reachable and configured.
//! - `initial_connect_retry=async` and `on` behave identically here; whether
//!   the constructor blocks is the adapter's business.
//! - Terminal outcomes other than auth report
//!   [`ErrorCategory::ProtocolViolation`]: the budget case is specified
//!   (sf-client §13.3); a failed first connect with `off` has no specified
//!   category and is likewise a connection-level HALT.

use core::num::NonZeroUsize;
use core::time::Duration;

use qwp_proto::status::ErrorCategory;
use qwp_proto::upgrade::{FailoverClass, UpgradeOutcome};

use crate::backoff::{BackoffConfig, BackoffDecision, JitterSource, OutageState};
use crate::hosts::{HostTracker, UnknownHost};
use crate::time::Instant;

/// `initial_connect_retry`: what a failure of the very first connect means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialConnectRetry {
    /// `off` (alias `false`, the default): the first connect failure is
    /// terminal.
    #[default]
    Off,
    /// `on` (aliases `sync`, `true`): retry like a reconnect; the
    /// constructor blocks.
    On,
    /// `async`: retry like a reconnect; the constructor returns at once.
    Async,
}

impl InitialConnectRetry {
    /// Whether a failed first connect enters the retry loop.
    pub fn retries(self) -> bool {
        !matches!(self, InitialConnectRetry::Off)
    }
}

/// Configuration of one reconnect loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectConfig {
    /// Number of configured `addr` entries.
    pub hosts: NonZeroUsize,
    /// Backoff knobs and the per-outage budget.
    pub backoff: BackoffConfig,
    /// First-connect policy.
    pub initial_connect_retry: InitialConnectRetry,
}

/// The result of one connect attempt, as the loop classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectOutcome {
    /// The upgrade succeeded and the connection is usable.
    Success,
    /// HTTP 401/403 on the upgrade.
    AuthError,
    /// HTTP 421 with a non-empty role.
    RoleReject {
        /// `PRIMARY_CATCHUP` versus any other role.
        transient: bool,
    },
    /// Anything else: TCP/TLS, timeouts, other statuses, a version outside
    /// the client's range, a missing durable-ACK echo.
    TransportError,
}

impl From<&UpgradeOutcome> for ConnectOutcome {
    fn from(outcome: &UpgradeOutcome) -> ConnectOutcome {
        match outcome.failover_class() {
            FailoverClass::Success => ConnectOutcome::Success,
            FailoverClass::Terminal(_) => ConnectOutcome::AuthError,
            FailoverClass::Topology { transient } => ConnectOutcome::RoleReject { transient },
            FailoverClass::Transient => ConnectOutcome::TransportError,
        }
    }
}

/// Why the loop stopped for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUpReason {
    /// A host answered 401/403.
    AuthError {
        /// The host that refused.
        host: usize,
    },
    /// The per-outage budget is spent.
    BudgetExhausted {
        /// Backoffs consumed in the outage.
        attempt: u32,
        /// Time since the outage started.
        elapsed: Duration,
    },
    /// The very first connect failed with `initial_connect_retry=off`.
    InitialConnectFailed {
        /// The host that failed.
        host: usize,
    },
}

impl GiveUpReason {
    /// The category the terminal error is reported under: SECURITY_ERROR for
    /// auth, PROTOCOL_VIOLATION otherwise.
    pub fn category(&self) -> ErrorCategory {
        match self {
            GiveUpReason::AuthError { .. } => ErrorCategory::SecurityError,
            GiveUpReason::BudgetExhausted { .. } | GiveUpReason::InitialConnectFailed { .. } => {
                ErrorCategory::ProtocolViolation
            }
        }
    }
}

/// What the driver should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Connect to host `host` (an index into the `addr` list) and report
    /// the outcome with [`ReconnectLoop::on_connect_result`].
    Connect {
        /// Host index.
        host: usize,
    },
    /// Ask again at this instant (always later than the `now` asked with).
    SleepUntil(Instant),
    /// A connect is in flight or the connection is up: nothing to do until
    /// the driver reports an event.
    Wait,
    /// Terminal; every later call answers the same.
    GiveUp(GiveUpReason),
}

/// An event the loop cannot accept in its current phase. The loop's state
/// is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconnectError {
    /// A connect result for a host the loop did not ask to connect to.
    #[error("connect result for host {host}, but the loop awaits {awaiting:?}")]
    UnexpectedConnectResult {
        /// The host reported.
        host: usize,
        /// The host whose connect is in flight, if any.
        awaiting: Option<usize>,
    },
    /// A mid-stream failure while no connection is up.
    #[error("mid-stream failure reported while not connected")]
    NotConnected,
    /// The loop has given up.
    #[error("reconnect loop is terminal: {0:?}")]
    Terminal(GiveUpReason),
    /// A host index outside the tracker (an internal inconsistency).
    #[error(transparent)]
    UnknownHost(#[from] UnknownHost),
}

/// What the sleep at a round boundary leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RoundSleep {
    /// A role-reject round: re-check the budget after sleeping.
    RoleReject,
    /// A backoff round: the attempt was counted when the sleep was chosen.
    Backoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Pick a host (or end the round) on the next `next_action`.
    Ready,
    /// A connect to `host` is in flight.
    Connecting { host: usize },
    /// Connected to `host`.
    Connected { host: usize },
    /// Sleeping at a round boundary.
    Sleeping { until: Instant, kind: RoundSleep },
    /// Given up.
    Terminal(GiveUpReason),
}

/// The kind of the last connect error in the current round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastError {
    RoleReject,
    Transport,
}

/// The reconnect loop of one caller (the I/O loop or one drainer).
#[derive(Debug, Clone)]
pub struct ReconnectLoop<J> {
    config: ReconnectConfig,
    jitter: J,
    tracker: HostTracker,
    outage: OutageState,
    phase: Phase,
    previous_idx: Option<usize>,
    last_error: Option<LastError>,
    seen_first_connect: bool,
}

impl<J: JitterSource> ReconnectLoop<J> {
    /// A loop that has not connected yet; its first action is a connect to
    /// the first host.
    pub fn new(config: ReconnectConfig, jitter: J) -> ReconnectLoop<J> {
        ReconnectLoop {
            tracker: HostTracker::new(config.hosts.get()),
            config,
            jitter,
            outage: OutageState::new(),
            phase: Phase::Ready,
            previous_idx: None,
            last_error: None,
            seen_first_connect: false,
        }
    }

    /// What to do at `now`. Each `Connect` is answered once; until its
    /// result is reported the loop answers `Wait`, so a driver that polls
    /// never opens a second connection. `SleepUntil` and `GiveUp` repeat.
    pub fn next_action(&mut self, now: Instant) -> Action {
        loop {
            match self.phase {
                Phase::Terminal(reason) => return Action::GiveUp(reason),
                Phase::Connecting { .. } | Phase::Connected { .. } => return Action::Wait,
                Phase::Sleeping { until, .. } if now < until => return Action::SleepUntil(until),
                Phase::Sleeping { kind, .. } => {
                    if kind == RoundSleep::RoleReject
                        && self.outage.elapsed(now) >= self.config.backoff.max_outage()
                    {
                        self.give_up_budget(now);
                        continue;
                    }
                    self.tracker.begin_round(true);
                    self.last_error = None;
                    self.phase = Phase::Ready;
                }
                Phase::Ready => {
                    // Invariant (failover.md §2.3): demote before any pick or
                    // round reset.
                    if let Some(prev) = self.previous_idx.take() {
                        // `prev` came from our own tracker; ignoring an
                        // out-of-range error is impossible in practice.
                        let _ = self.tracker.record_mid_stream_failure(prev);
                    }
                    match self.tracker.pick_next() {
                        Some(host) => {
                            self.phase = Phase::Connecting { host };
                            return Action::Connect { host };
                        }
                        None => self.end_round(now),
                    }
                }
            }
        }
    }

    /// Chooses the one sleep of an exhausted round (or gives up).
    fn end_round(&mut self, now: Instant) {
        let backoff = self.config.backoff;
        if self.last_error == Some(LastError::RoleReject) {
            let sleep = backoff.initial().min(self.outage.remaining(now, &backoff));
            self.outage.reset_attempt();
            self.phase = Phase::Sleeping {
                until: now.saturating_add(sleep),
                kind: RoundSleep::RoleReject,
            };
        } else {
            match self.outage.next_backoff(now, &backoff, &mut self.jitter) {
                BackoffDecision::GiveUp => self.give_up_budget(now),
                BackoffDecision::Sleep(sleep) => {
                    self.outage.consume_backoff();
                    self.phase = Phase::Sleeping {
                        until: now.saturating_add(sleep),
                        kind: RoundSleep::Backoff,
                    };
                }
            }
        }
    }

    fn give_up_budget(&mut self, now: Instant) {
        self.phase = Phase::Terminal(GiveUpReason::BudgetExhausted {
            attempt: self.outage.attempt(),
            elapsed: self.outage.elapsed(now),
        });
    }

    /// Reports the outcome of the connect to `host` that the last
    /// [`Action::Connect`] asked for.
    pub fn on_connect_result(
        &mut self,
        now: Instant,
        host: usize,
        outcome: ConnectOutcome,
    ) -> Result<(), ReconnectError> {
        match self.phase {
            Phase::Connecting { host: h } if h == host => {}
            Phase::Terminal(reason) => return Err(ReconnectError::Terminal(reason)),
            Phase::Connecting { host: h } => {
                return Err(ReconnectError::UnexpectedConnectResult {
                    host,
                    awaiting: Some(h),
                })
            }
            _ => {
                return Err(ReconnectError::UnexpectedConnectResult {
                    host,
                    awaiting: None,
                })
            }
        }
        match outcome {
            ConnectOutcome::Success => {
                self.tracker.record_success(host)?;
                self.outage.reset();
                self.last_error = None;
                self.seen_first_connect = true;
                self.phase = Phase::Connected { host };
            }
            ConnectOutcome::AuthError => {
                // Terminal without consuming the budget: the outage clock is
                // not started for it.
                self.phase = Phase::Terminal(GiveUpReason::AuthError { host });
            }
            ConnectOutcome::RoleReject { transient } => {
                self.tracker.record_role_reject(host, transient)?;
                self.outage.record_failure(now);
                self.last_error = Some(LastError::RoleReject);
                self.phase = Phase::Ready;
            }
            ConnectOutcome::TransportError => {
                self.tracker.record_transport_error(host)?;
                self.outage.record_failure(now);
                self.last_error = Some(LastError::Transport);
                self.phase =
                    if !self.seen_first_connect && !self.config.initial_connect_retry.retries() {
                        Phase::Terminal(GiveUpReason::InitialConnectFailed { host })
                    } else {
                        Phase::Ready
                    };
            }
        }
        Ok(())
    }

    /// Reports that the live connection failed (send/recv error, a
    /// reconnect-class close code, a frame-decode error). The host is
    /// demoted before the next pick; no sleep unless the round is
    /// exhausted, and `attempt` does not advance.
    pub fn on_mid_stream_failure(&mut self, now: Instant) -> Result<(), ReconnectError> {
        match self.phase {
            Phase::Connected { host } => {
                self.previous_idx = Some(host);
                self.outage.record_failure(now);
                self.phase = Phase::Ready;
                Ok(())
            }
            Phase::Terminal(reason) => Err(ReconnectError::Terminal(reason)),
            _ => Err(ReconnectError::NotConnected),
        }
    }

    /// When the current outage started, if one is in progress.
    pub fn outage_started_at(&self) -> Option<Instant> {
        self.outage.started_at()
    }

    /// Backoffs consumed in the current outage.
    pub fn attempt(&self) -> u32 {
        self.outage.attempt()
    }

    /// The host currently connected, if any.
    pub fn connected_host(&self) -> Option<usize> {
        match self.phase {
            Phase::Connected { host } => Some(host),
            _ => None,
        }
    }

    /// The reason the loop gave up, if it has.
    pub fn terminal(&self) -> Option<GiveUpReason> {
        match self.phase {
            Phase::Terminal(reason) => Some(reason),
            _ => None,
        }
    }

    /// The host tracker, for inspection.
    pub fn tracker(&self) -> &HostTracker {
        &self.tracker
    }

    /// The configuration.
    pub fn config(&self) -> &ReconnectConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backoff::SplitMix64;

    fn config(hosts: usize, retry: InitialConnectRetry) -> ReconnectConfig {
        ReconnectConfig {
            hosts: NonZeroUsize::new(hosts).unwrap(),
            backoff: BackoffConfig::INGRESS_DEFAULT,
            initial_connect_retry: retry,
        }
    }

    #[test]
    fn next_action_repeats_sleep_and_answers_wait_while_connecting() {
        let mut l = ReconnectLoop::new(config(2, InitialConnectRetry::On), SplitMix64::new(1));
        let t = Instant(5);
        assert_eq!(l.next_action(t), Action::Connect { host: 0 });
        assert_eq!(l.next_action(t), Action::Wait);
        l.on_connect_result(t, 0, ConnectOutcome::TransportError)
            .unwrap();
        assert_eq!(l.next_action(t), Action::Connect { host: 1 });
        l.on_connect_result(t, 1, ConnectOutcome::TransportError)
            .unwrap();
        let Action::SleepUntil(until) = l.next_action(t) else {
            panic!("round exhausted: one sleep");
        };
        assert!(until > t);
        assert_eq!(
            l.next_action(Instant(until.0 - 1)),
            Action::SleepUntil(until)
        );
        assert_eq!(l.next_action(until), Action::Connect { host: 0 });
        l.on_connect_result(until, 0, ConnectOutcome::Success)
            .unwrap();
        assert_eq!(l.next_action(until), Action::Wait);
    }

    #[test]
    fn out_of_phase_events_are_rejected_and_change_nothing() {
        let mut l = ReconnectLoop::new(config(2, InitialConnectRetry::On), SplitMix64::new(1));
        assert_eq!(
            l.on_connect_result(Instant(0), 0, ConnectOutcome::Success),
            Err(ReconnectError::UnexpectedConnectResult {
                host: 0,
                awaiting: None
            })
        );
        assert_eq!(
            l.on_mid_stream_failure(Instant(0)),
            Err(ReconnectError::NotConnected)
        );
        assert_eq!(l.next_action(Instant(0)), Action::Connect { host: 0 });
        assert_eq!(
            l.on_connect_result(Instant(0), 1, ConnectOutcome::Success),
            Err(ReconnectError::UnexpectedConnectResult {
                host: 1,
                awaiting: Some(0)
            })
        );
        assert_eq!(l.next_action(Instant(0)), Action::Wait);
        l.on_connect_result(Instant(0), 0, ConnectOutcome::Success)
            .unwrap();
        assert_eq!(l.connected_host(), Some(0));
        assert_eq!(l.outage_started_at(), None);
    }

    #[test]
    fn upgrade_outcomes_map_to_connect_outcomes() {
        use qwp_proto::upgrade::UpgradeFailure;
        let cases = [
            (
                UpgradeOutcome::Accepted {
                    version: 1,
                    durable_ack: true,
                },
                ConnectOutcome::Success,
            ),
            (
                UpgradeOutcome::AuthError { status: 403 },
                ConnectOutcome::AuthError,
            ),
            (
                UpgradeOutcome::RoleReject {
                    transient: true,
                    role: "PRIMARY_CATCHUP".into(),
                },
                ConnectOutcome::RoleReject { transient: true },
            ),
            (
                UpgradeOutcome::TransportError(UpgradeFailure::UnexpectedStatus(503)),
                ConnectOutcome::TransportError,
            ),
            (
                UpgradeOutcome::DurableAckNotEnabled { version: 1 },
                ConnectOutcome::TransportError,
            ),
        ];
        for (upgrade, want) in cases {
            assert_eq!(ConnectOutcome::from(&upgrade), want, "{upgrade:?}");
        }
    }
}
