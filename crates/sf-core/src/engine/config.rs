//! The engine's configuration: the storage half, the connection half, and the
//! lifecycle knobs, in the types the building blocks take.

use core::num::NonZeroUsize;
use core::time::Duration;

use crate::ack::{AckError, InFlightWindow};
use crate::backoff::{BackoffConfig, BackoffConfigError};
use crate::config::Config;
use crate::errors::{ErrorConfigError, ErrorPolicies, DEFAULT_ERROR_INBOX_CAPACITY};
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
/// directly. A parsed connect string converts with
/// `EngineConfig::try_from(&config)`.
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

    /// The engine configuration of an orphan drainer adopted by a sender
    /// with this configuration: exactly what
    /// [`Config::for_orphan_drainer`](crate::config::Config::for_orphan_drainer)
    /// changes, on the engine's side (its first connect is retried in the
    /// background; its close skips the drain). For a world that builds
    /// engines without a [`Config`](crate::config::Config) (the simulator).
    pub fn for_orphan_drainer(&self) -> EngineConfig {
        let mut c = self.clone();
        c.initial_connect_retry = InitialConnectRetry::Async;
        c.close_flush_timeout = None;
        c
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

/// Why a parsed connect string does not make an engine configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineConfigError {
    /// The connect string named no address.
    #[error("no addr configured")]
    NoHosts,
    /// The backoff knobs are unusable (a zero backoff would spin).
    #[error("reconnect backoff: {0}")]
    Backoff(#[from] BackoffConfigError),
    /// `in_flight_window` is zero.
    #[error("in_flight_window: {0}")]
    Window(#[from] AckError),
    /// The error-handling settings are invalid.
    #[error("error handling: {0}")]
    Errors(#[from] ErrorConfigError),
}

impl TryFrom<&Config> for EngineConfig {
    type Error = EngineConfigError;

    /// Maps every connect-string key the engine consumes; the others
    /// (transport, auth, TLS, auto-flush, buffer sizes, `sender_id`,
    /// orphan draining) belong to the adapter.
    fn try_from(c: &Config) -> Result<EngineConfig, EngineConfigError> {
        let s = c.storage();
        let defaults = if s.is_memory_mode() {
            StorageConfig::memory()
        } else {
            StorageConfig::files()
        };
        // `with_segment_bytes`: the early-reclaim threshold follows
        // `sf_max_bytes` (half a segment for files).
        let storage = StorageConfig {
            max_total_bytes: s.sf_max_total_bytes,
            append_deadline: s.append_deadline,
            durability: s.durability,
            ..defaults.with_segment_bytes(s.sf_max_bytes)
        };
        let hosts = NonZeroUsize::new(c.addrs().len()).ok_or(EngineConfigError::NoHosts)?;
        let r = c.reconnect();
        let backoff = BackoffConfig::new(r.initial_backoff, r.max_backoff, r.max_outage)?;
        let initial_connect_retry = r.initial_connect_retry;
        let e = c.errors();
        let error_policies = e.policies();
        Ok(EngineConfig {
            storage,
            hosts,
            backoff,
            initial_connect_retry,
            connect_timeout: r.auth_timeout,
            ack_timeout: r.ack_timeout,
            in_flight_window: InFlightWindow::new(c.limits().in_flight_window)?,
            request_durable_ack: c.durable_ack().request,
            keepalive_interval: c.durable_ack().keepalive_interval,
            close_flush_timeout: c.close_flush_timeout(),
            error_policies,
            error_inbox_capacity: usize::try_from(e.inbox_capacity).unwrap_or(usize::MAX),
            client_max_version: qwp_proto::upgrade::CLIENT_MAX_VERSION,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durability::DurabilityMode;
    use qwp_proto::status::{ErrorCategory, ErrorPolicy};

    #[test]
    fn defaults_follow_the_spec() {
        let c = EngineConfig::new(StorageConfig::memory(), NonZeroUsize::MIN);
        assert_eq!(c.close_flush_timeout, Some(Duration::from_millis(5000)));
        assert_eq!(c.keepalive_millis(), 200);
        assert_eq!(c.in_flight_window.get(), 128);
        assert_eq!(c.backoff, BackoffConfig::INGRESS_DEFAULT);
    }

    #[test]
    fn keepalive_below_a_millisecond_is_not_disabled() {
        let mut c = EngineConfig::new(StorageConfig::memory(), NonZeroUsize::MIN);
        c.keepalive_interval = Some(Duration::from_micros(10));
        assert_eq!(c.keepalive_millis(), 1);
        c.keepalive_interval = None;
        assert_eq!(c.keepalive_millis(), 0);
    }

    #[test]
    fn from_connect_string_maps_every_engine_key() {
        let conf = "ws::addr=h1:9000,h2:9001;sf_dir=/tmp/x;sf_max_bytes=1048576;\
            sf_max_total_bytes=8388608;sf_durability=flush;sf_append_deadline_millis=1234;\
            reconnect_initial_backoff_millis=50;reconnect_max_backoff_millis=800;\
            reconnect_max_duration_millis=9000;initial_connect_retry=async;\
            request_durable_ack=on;durable_ack_keepalive_interval_millis=0;\
            close_flush_timeout_millis=0;in_flight_window=7;error_inbox_capacity=32;\
            on_parse_error=drop_and_continue;on_server_error=halt;";
        let parsed = Config::from_conf(conf).expect("valid connect string");
        let c = EngineConfig::try_from(&parsed).expect("maps");
        assert_eq!(c.hosts.get(), 2);
        assert_eq!(c.storage.backing, crate::storage::Backing::Files);
        assert_eq!(c.storage.segment_bytes, 1 << 20);
        assert_eq!(
            c.storage.reclaim_min_bytes,
            512 << 10,
            "S5: files reclaim an acked active segment early from half of sf_max_bytes"
        );
        assert_eq!(c.storage.max_total_bytes, 8 << 20);
        assert_eq!(c.storage.durability, DurabilityMode::Flush);
        assert_eq!(c.storage.append_deadline, Duration::from_millis(1234));
        assert_eq!(c.backoff.initial(), Duration::from_millis(50));
        assert_eq!(c.backoff.max(), Duration::from_millis(800));
        assert_eq!(c.backoff.max_outage(), Duration::from_millis(9000));
        assert_eq!(c.initial_connect_retry, InitialConnectRetry::Async);
        assert!(c.request_durable_ack);
        assert_eq!(c.keepalive_millis(), 0);
        assert_eq!(c.close_flush_timeout, None);
        assert_eq!(c.in_flight_window.get(), 7);
        assert_eq!(c.error_inbox_capacity, 32);
        assert_eq!(
            c.error_policies.resolve(ErrorCategory::ParseError),
            ErrorPolicy::DropAndContinue
        );
        assert_eq!(
            c.error_policies.resolve(ErrorCategory::SchemaMismatch),
            ErrorPolicy::Halt,
            "on_server_error applies where no per-category key is set"
        );
    }

    #[test]
    fn memory_mode_without_sf_dir() {
        let parsed = Config::from_conf("ws::addr=h:9000;").expect("valid");
        let c = EngineConfig::try_from(&parsed).expect("maps");
        assert_eq!(c.storage.backing, crate::storage::Backing::Memory);
        assert_eq!(
            c.storage.reclaim_min_bytes,
            u64::MAX,
            "memory backing reclaims only at rotation"
        );
        assert_eq!(c.close_flush_timeout, Some(DEFAULT_CLOSE_FLUSH_TIMEOUT));
    }
}
