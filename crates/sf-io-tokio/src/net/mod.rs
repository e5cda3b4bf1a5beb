//! The WebSocket connection: TCP or TLS, the `/write/v4` upgrade with QWP and
//! auth headers, and a framed binary-message connection the I/O task drives.
//!
//! # Shape
//!
//! - [`ConnectSettings::from_config`] checks and builds, once per sender,
//!   what every attempt shares: QWP headers, `Authorization`, the rustls
//!   configuration (`tls_verify`, `tls_roots`), `auth_timeout_ms`.
//! - [`connect`] makes one attempt at one host. A well-formed HTTP answer,
//!   whatever its status, is an [`UpgradeResult`] carrying the status and
//!   headers for the core to classify (401/403, 421 + role, version,
//!   durable-ACK echo); a transport failure is a [`ConnectError`] tagged
//!   with its [`ConnectStage`]. The I/O task maps them to the core's
//!   `Connected { host, status, headers }` and `ConnectFailed { host,
//!   reason }`.
//! - A `101` yields a [`Connection`], split into a [`FrameSender`] (one
//!   binary message per QWP frame, PING, our close) and an
//!   [`EventReceiver`] producing [`NetEvent`]s: `Received(bytes)`, `Pong`,
//!   `Disconnected { close_code, reason }`.
//!
//! # Transport
//!
//! The byte stream comes from a [`Dialer`]: [`TcpDialer`] by default, or
//! any other transport (Unix socket, proxy tunnel, simulated network) set
//! with [`ConnectSettings::with_dialer`] or the sender builder's
//! `dialer(...)`. TLS and the upgrade run over whatever stream it returns.
//!
//! # Task model
//!
//! The two halves share the socket through a lock taken only while one of
//! them is being polled, so they may run in two tasks or in one.
//! [`EventReceiver::next_event`] is cancel-safe and is meant to sit in the
//! I/O task's `select!` next to its command and timer branches;
//! [`FrameSender`]'s methods are not cancel-safe and are run to completion
//! (or their future is kept pinned across iterations). Server PINGs are
//! answered by the receiver as it reads, so the receiver must be polled
//! whenever the connection is up, which the `select!` model does. While a
//! send runs to completion in one task the receiver is not polled; that is
//! safe as long as the server can keep writing its (small) responses into
//! the socket buffers, and a design that must never stall inbound reads
//! can keep the pending send future alive inside the `select!` or give
//! each half its own task.
//!
//! # Timeouts
//!
//! Per failover.md, TCP connect uses the OS timeout, the TLS handshake a
//! fixed [`TLS_HANDSHAKE_TIMEOUT`] (5 s), and `auth_timeout_ms` bounds only
//! the upgrade (request write and response wait).
//!
//! # No policy
//!
//! Nothing here retries, backs off, or decides what a status or close code
//! means; those decisions are the core's.

mod connect;
mod connection;
mod dial;
mod settings;
mod tls;

pub use connect::{
    connect, ConnectCause, ConnectError, ConnectStage, UpgradeResponse, UpgradeResult,
    TLS_HANDSHAKE_TIMEOUT,
};
pub use connection::{
    Connection, DisconnectReason, EventReceiver, FrameSender, NetEvent, SendError, CLOSE_NORMAL,
};
pub use dial::{BoxedStream, DialFuture, DialedStream, Dialer, TcpDialer};
pub use settings::{ConnectSettings, CredentialsError, SettingsError};
pub use tls::TlsSetupError;
pub use tokio_tungstenite::tungstenite::Bytes;
