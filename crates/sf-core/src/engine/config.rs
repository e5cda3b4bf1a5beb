//! The engine's configuration: the storage half, the connection half, and the
//! lifecycle knobs, in the types the building blocks take.

use core::num::NonZeroUsize;
use core::time::Duration;

use crate::ack::InFlightWindow;
use crate::backoff::BackoffConfig;
use crate::errors::{ErrorPolicies, DEFAULT_ERROR_INBOX_CAPACITY};
use crate::reconnect::InitialConnectRetry;
use crate::storage::StorageConfig;

/// `auth_timeout_ms` default: how long one connect (TCP, TLS, upgrade) may
/// take before the host counts as failed (failover.md §7).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(15_000);
/// `ack_timeout_millis` default: no answer for this long while frames are in
/// flight means the connection is dead.
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_millis(30_000);
/// `close_flush_timeout_millis` default (sf-client §17).
pub const DEFAULT_CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_millis(5_000);
/// `durable_ack_keepalive_interval_millis` default (sf-client §11).
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_millis(200);

/// Everything an [`crate::engine::Engine`] is built from.
///
/// [`EngineConfig::new`] gives the spec's defaults for everything but the
/// storage and the number of hosts; tests and adapters then set fields
/// directly. A connect string is turned into one with the adapter's
/// conversion from `sf_core::config::Config` once that lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The storage half (segment size, cap, append deadline, durability).
    pub storage: StorageConfig,
    /// Number of `addr` entries; hosts are named by index in
    /// [`crate::engine::Output::Connect`].
    pub hosts: NonZeroUsize,
    /// Reconnect backoff and the per-outage budget.
    pub backoff: BackoffConfig,
    /// `initial_connect_retry`.
    pub initial_connect_retry: InitialConnectRetry,
    /// `auth_timeout_ms`: a connect not answered within this long counts as
    /// a transport failure of that host (W5: the wait for a connect result
    /// never depends on a peer that may stay silent).
    pub connect_timeout: Duration,
    /// `ack_timeout_millis`: no answer for this long while frames are in
    /// flight drops the connection and reconnects. `None` disables it.
    pub ack_timeout: Option<Duration>,
    /// `in_flight_window`: frames sent and not yet answered.
    pub in_flight_window: InFlightWindow,
    /// `request_durable_ack=on`: trim on DURABLE_ACK coverage only (W4).
    pub request_durable_ack: bool,
    /// `durable_ack_keepalive_interval_millis`; `None` disables the PING.
    pub keepalive_interval: Option<Duration>,
    /// `close_flush_timeout_millis`; `None` is `0`/`-1`: skip the drain and
    /// the pre-drain error check.
    pub close_flush_timeout: Option<Duration>,
    /// The `on_*_error` overrides.
    pub error_policies: ErrorPolicies,
    /// `error_inbox_capacity`.
    pub error_inbox_capacity: usize,
    /// The highest QWP version the client offers in `X-QWP-Max-Version`.
    pub client_max_version: u8,
}

impl EngineConfig {
    /// The spec defaults over `storage` with `hosts` addresses.
    pub fn new(storage: StorageConfig, hosts: NonZeroUsize) -> EngineConfig {
        EngineConfig {
            storage,
            hosts,
            backoff: BackoffConfig::INGRESS_DEFAULT,
            initial_connect_retry: InitialConnectRetry::Off,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            ack_timeout: Some(DEFAULT_ACK_TIMEOUT),
            in_flight_window: InFlightWindow::default(),
            request_durable_ack: false,
            keepalive_interval: Some(DEFAULT_KEEPALIVE_INTERVAL),
            close_flush_timeout: Some(DEFAULT_CLOSE_FLUSH_TIMEOUT),
            error_policies: ErrorPolicies::new(),
            error_inbox_capacity: DEFAULT_ERROR_INBOX_CAPACITY,
            client_max_version: qwp_proto::upgrade::CLIENT_MAX_VERSION,
        }
    }

    /// The keepalive interval in the form the durable tracker takes
    /// (milliseconds, `<= 0` disabled). A sub-millisecond interval rounds up
    /// to 1 ms rather than silently disabling the PING.
    pub(crate) fn keepalive_millis(&self) -> i64 {
        match self.keepalive_interval {
            None => 0,
            Some(d) if d.is_zero() => 0,
            Some(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1),
        }
    }
}
