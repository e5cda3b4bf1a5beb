//! The connection half's state: one value per phase, so a frame can only be
//! sent with a wire mapping in hand and a durable tracker only exists while a
//! connection does (sf-client §10.3: reconnect drops all durable tracking).

use crate::ack::WireMapping;
use crate::durable_ack::DurableAckTracker;
use crate::Instant;

/// One live WebSocket connection (after an accepted upgrade).
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The `addr` index this connection went to.
    pub host: usize,
    /// FSN ↔ wire sequence, in-flight window, OK progress (W1, W2).
    pub mapping: WireMapping,
    /// Durable coverage; only fed when the trim driver is DURABLE_ACK, but
    /// always present because the error policy takes it by reference.
    pub durable: DurableAckTracker,
    /// When a frame or PING last went out: the keepalive clock (§11).
    pub last_send_or_ping: Instant,
    /// At most this many of the mapping's replays are re-sends (`None`:
    /// all of them).
    pub replay_cap: Option<u64>,
    /// `Send` outputs of this connection the adapter has taken with
    /// `poll_output`. The mapping counts a frame as sent when its `Send` is
    /// queued; a server sequence is limited to what was taken (W2), since
    /// a queued `Send` is not on the wire and a close discards it.
    pub handed: u64,
}

impl Session {
    /// W2 at the adapter's edge: `sequence` limited to the last frame the
    /// adapter has taken, or `None` when it has taken none (an answer then
    /// refers to nothing on the wire).
    pub(crate) fn limit_to_handed(&self, sequence: i64) -> Option<i64> {
        let last = self.handed.checked_sub(1)?;
        Some(sequence.min(i64::try_from(last).unwrap_or(i64::MAX)))
    }
}

impl Session {
    /// Frames this connection re-sent.
    pub(crate) fn replayed(&self) -> u64 {
        let n = self.mapping.frames_replayed();
        self.replay_cap.map_or(n, |cap| n.min(cap))
    }
}

/// Where the connection half is.
#[derive(Debug, Clone)]
pub(crate) enum Conn {
    /// No connection; the reconnect loop decides what is next. `sleep_until`
    /// is the round-boundary backoff, if one is being paid.
    Down {
        /// When the reconnect loop wants to be asked again.
        sleep_until: Option<Instant>,
    },
    /// A connect to `host` is in flight; it fails at `deadline` unless the
    /// adapter reports first.
    Connecting {
        /// The `addr` index.
        host: usize,
        /// `connect_timeout` after the connect was asked for.
        deadline: Instant,
    },
    /// Connected and pumping frames.
    Up(Box<Session>),
    /// A terminal error is latched: no more connects, no more sends.
    Halted,
    /// `close()` is done with the connection: its drain is over (the
    /// engine may still be waiting for the owed `.ack-watermark` write) or
    /// everything is released. Nothing connects again.
    Released,
}

/// The connection half's phase, as observers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// No connection and no connect in flight; `sleep_until` is the backoff
    /// being paid, if any.
    Down {
        /// When the next connect is due.
        sleep_until: Option<Instant>,
    },
    /// A connect to `host` is in flight.
    Connecting {
        /// The `addr` index.
        host: usize,
    },
    /// Connected to `host`.
    Connected {
        /// The `addr` index.
        host: usize,
        /// Whether DURABLE_ACK drives trim on this connection.
        durable_ack: bool,
    },
    /// Halted by a terminal error.
    Halted,
    /// Closed: the connection is gone for good (the slot is released, or
    /// is released once the owed `.ack-watermark` write settles).
    Released,
}

impl Conn {
    /// The observable phase.
    pub(crate) fn state(&self) -> ConnectionState {
        match self {
            Conn::Down { sleep_until } => ConnectionState::Down {
                sleep_until: *sleep_until,
            },
            Conn::Connecting { host, .. } => ConnectionState::Connecting { host: *host },
            Conn::Up(s) => ConnectionState::Connected {
                host: s.host,
                durable_ack: s.mapping.driver() == crate::ack::TrimDriver::DurableAck,
            },
            Conn::Halted => ConnectionState::Halted,
            Conn::Released => ConnectionState::Released,
        }
    }

    /// Whether the adapter holds a socket (or a socket attempt) for us.
    pub(crate) fn has_socket(&self) -> bool {
        matches!(self, Conn::Connecting { .. } | Conn::Up(_))
    }
}
