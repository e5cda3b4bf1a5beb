//! Server configuration: where to listen, where to persist, auth and the
//! durable-ACK behaviour.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::faults::Faults;

/// Credentials the server demands on the upgrade request; a missing or
/// different `Authorization` header is answered with `401`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// HTTP Basic: `Authorization: Basic base64(username:password)`.
    Basic {
        /// The expected user name.
        username: String,
        /// The expected password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The expected token.
        token: String,
    },
}

/// Whether and when the server confirms durability with DURABLE_ACK frames.
///
/// Whatever the mode, frames go out only on a connection whose client sent
/// `X-QWP-Request-Durable-Ack: true` (and got the `enabled` echo), and only
/// when that connection shows inbound activity (a binary message or a
/// PING), as the real server does (sf-client §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DurableAckMode {
    /// No durable-ACK support: the request header is ignored and not echoed,
    /// like an OSS server.
    #[default]
    Off,
    /// A commit becomes durable this long after it was OK'd.
    After(Duration),
    /// A commit becomes durable only when the test calls
    /// [`ServerHandle::release_durable`](crate::ServerHandle::release_durable):
    /// deterministic, no clock involved.
    Manual,
}

/// Everything [`Server::bind`](crate::Server::bind) needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port
    /// (read it back with [`ServerHandle::local_addr`](crate::ServerHandle::local_addr)).
    pub bind: SocketAddr,
    /// When set, every accepted row is appended to `<data_dir>/<table>.jsonl`
    /// (see [`json`](crate::json)); the directory is created if missing.
    pub data_dir: Option<PathBuf>,
    /// Credentials to demand; `None` accepts everyone.
    pub auth: Option<Auth>,
    /// Durable-ACK behaviour.
    pub durable_ack: DurableAckMode,
    /// Fault switches in force from the start (change them at runtime with
    /// [`ServerHandle::set_faults`](crate::ServerHandle::set_faults)).
    pub faults: Faults,
    /// Keep accepted rows in memory for [`ServerHandle::rows`](crate::ServerHandle::rows)
    /// (default). Off for benchmarks and long local runs: memory then stays
    /// flat, and rows are only counted (and persisted when `data_dir` is set).
    pub retain_rows: bool,
    /// Largest WebSocket message (and frame) accepted; a bigger one closes
    /// the connection with 1009 (Message Too Big), which the client treats
    /// as terminal. Defaults to the 16 MiB QWP batch limit plus
    /// the 12-byte header.
    pub max_message_bytes: usize,
}

impl ServerConfig {
    /// Listen on `bind` with every option at its default.
    pub fn new(bind: SocketAddr) -> ServerConfig {
        ServerConfig {
            bind,
            data_dir: None,
            auth: None,
            durable_ack: DurableAckMode::Off,
            faults: Faults::default(),
            retain_rows: true,
            max_message_bytes: qwp_proto::types::DEFAULT_MAX_BATCH_BYTES
                + qwp_proto::types::HEADER_LEN,
        }
    }

    /// `127.0.0.1:0`: a free loopback port, for tests.
    pub fn local() -> ServerConfig {
        ServerConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
    }

    /// Sets [`ServerConfig::data_dir`].
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> ServerConfig {
        self.data_dir = Some(dir.into());
        self
    }

    /// Sets [`ServerConfig::auth`].
    pub fn with_auth(mut self, auth: Auth) -> ServerConfig {
        self.auth = Some(auth);
        self
    }

    /// Sets [`ServerConfig::durable_ack`].
    pub fn with_durable_ack(mut self, mode: DurableAckMode) -> ServerConfig {
        self.durable_ack = mode;
        self
    }

    /// Sets [`ServerConfig::retain_rows`].
    pub fn with_retain_rows(mut self, retain: bool) -> ServerConfig {
        self.retain_rows = retain;
        self
    }

    /// Sets [`ServerConfig::faults`].
    pub fn with_faults(mut self, faults: Faults) -> ServerConfig {
        self.faults = faults;
        self
    }
}
