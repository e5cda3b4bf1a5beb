//! The connect string (`ws::addr=…;sf_dir=…;…`): a pure parser into a typed,
//! validated configuration (sf-client §4, failover.md keys).
//!
//! # Grammar
//!
//! `scheme::key=value;key=value;…` where
//! - the scheme is `ws` (plain WebSocket) or `wss` (WebSocket over TLS), case
//!   sensitive; every other scheme is rejected because only the WebSocket
//!   transports carry store-and-forward;
//! - keys are ASCII letters, digits and `_`, case sensitive (canonical form is
//!   lower-case snake case);
//! - a value runs to the next single `;`; a literal `;` inside a value is
//!   written `;;`; control characters (U+0000–U+001F, U+007F–U+009F) are not
//!   allowed; the trailing `;` is optional;
//! - whitespace is never trimmed: it is part of the key (and so makes the key
//!   invalid) or of the value (where a path may legitimately hold spaces, and
//!   a number or keyword with spaces is rejected);
//! - keywords (`on`, `off`, `true`, `false`, enum values) match ASCII
//!   case-insensitively; [`Config::to_conf_string`] writes them in lower case;
//! - every key may be given once, except `addr`, whose entries accumulate in
//!   order across comma lists and repeated keys.
//!
//! # Values
//!
//! Sizes are an integer number of bytes or an integer followed by `K`, `M`,
//! `G` or `T` (either case; binary multipliers). `KB`, `MiB` and the like are
//! rejected rather than guessed. Millisecond values must fit the core's
//! nanosecond clock ([`MAX_MILLIS`]).
//!
//! # Decisions where the spec is silent
//!
//! - `addr` entries without a port use [`DEFAULT_PORT`] (9000).
//! - `tls_verify`, `tls_roots` and `tls_roots_password` on `ws::` are errors:
//!   they would silently do nothing, and the user most likely meant `wss::`.
//! - `sf_durability=flush|append` and `drain_orphans=on` need `sf_dir`:
//!   memory mode has no files to fsync or orphans to adopt.
//! - `request_durable_ack` accepts only `on` / `off` (wire brief §9: "any
//!   other value is an error"); other booleans also accept `true` / `false`.
//! - `on_server_error` sets the policy of every overridable category; a
//!   category's own key (`on_schema_error`, …) wins over it, whatever the
//!   order in the string. PROTOCOL_VIOLATION and UNKNOWN are always HALT.
//! - `zone` is accepted and ignored (ingress is zone-blind, failover.md);
//!   the egress keys `target`, `lb_strategy` and `failover*` are rejected with
//!   [`ConfigError::EgressOnlyKey`], as QuestDB's own ingress parser rejects
//!   them.
//! - `ack_timeout_millis` is this client's extension: with unacknowledged
//!   frames in flight and no OK for this long, the connection is treated as
//!   dead and the reconnect loop runs (default 30 s, `off` disables).

mod addr;
mod builder;
mod error;
mod lexer;
mod values;

use core::fmt;
use core::num::NonZeroU64;
use core::time::Duration;

pub use addr::{HostPort, DEFAULT_PORT};
pub use builder::ConfigBuilder;
pub use error::ConfigError;
pub use qwp_proto::status::{ErrorCategory, ErrorPolicy};

use crate::durability::DurabilityMode;
use crate::errors::ErrorPolicies;
pub use crate::reconnect::InitialConnectRetry;

/// Every key a connect string may hold, in the order
/// [`Config::to_conf_string`] writes them.
pub const KEYS: &[&str] = builder::KEY_NAMES;

/// Default `sender_id`.
pub const DEFAULT_SENDER_ID: &str = "default";
/// Default `sf_max_bytes`: 4 MiB per segment.
pub const DEFAULT_SF_MAX_BYTES: u64 = crate::storage::DEFAULT_SEGMENT_BYTES;
/// Default `sf_max_total_bytes` in memory mode (no `sf_dir`): 128 MiB.
pub const DEFAULT_MEMORY_MAX_TOTAL_BYTES: u64 = crate::storage::DEFAULT_MAX_TOTAL_BYTES_MEMORY;
/// Default `sf_max_total_bytes` with `sf_dir`: 10 GiB.
pub const DEFAULT_SF_MAX_TOTAL_BYTES: u64 = crate::storage::DEFAULT_MAX_TOTAL_BYTES_FILES;
/// Smallest `sf_max_bytes`: the 24-byte segment header, one 8-byte frame
/// header and the smallest QWP message (its 12-byte header).
pub const MIN_SEGMENT_BYTES: u64 = (crate::segment::SEGMENT_HEADER_LEN
    + crate::segment::FRAME_HEADER_LEN
    + qwp_proto::types::HEADER_LEN) as u64;
/// Largest `sf_max_bytes` (and `max_buf_size`): 2 GiB, so every offset in a
/// segment fits a `u32` and every frame length fits the format's `i32`.
pub const MAX_SEGMENT_BYTES: u64 = 2 << 30;
/// Default `sf_append_deadline_millis`.
pub const DEFAULT_APPEND_DEADLINE: Duration = crate::storage::DEFAULT_APPEND_DEADLINE;
/// Default `max_background_drainers`.
pub const DEFAULT_MAX_BACKGROUND_DRAINERS: u32 = 4;
/// Default `reconnect_max_duration_millis`: the per-outage budget.
pub const DEFAULT_RECONNECT_MAX_DURATION: Duration = Duration::from_millis(300_000);
/// Default `reconnect_initial_backoff_millis`.
pub const DEFAULT_RECONNECT_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Default `reconnect_max_backoff_millis`.
pub const DEFAULT_RECONNECT_MAX_BACKOFF: Duration = Duration::from_millis(5_000);
/// Default `close_flush_timeout_millis`.
pub const DEFAULT_CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Default `durable_ack_keepalive_interval_millis`.
pub const DEFAULT_DURABLE_ACK_KEEPALIVE: Duration =
    Duration::from_millis(crate::durable_ack::DEFAULT_KEEPALIVE_INTERVAL_MILLIS as u64);
/// Default `error_inbox_capacity`.
pub const DEFAULT_ERROR_INBOX_CAPACITY: u32 = crate::errors::DEFAULT_ERROR_INBOX_CAPACITY as u32;
/// Smallest `error_inbox_capacity` (sf-client §4.4).
pub const MIN_ERROR_INBOX_CAPACITY: u32 = 16;
/// Default `auth_timeout_ms`: the bound on the wait for the upgrade response.
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_millis(15_000);
/// Default `ack_timeout_millis` (this client's extension).
pub const DEFAULT_ACK_TIMEOUT: Duration = Duration::from_millis(30_000);
/// Default `auto_flush_rows`.
pub const DEFAULT_AUTO_FLUSH_ROWS: u64 = 1_000;
/// Default `auto_flush_interval`.
pub const DEFAULT_AUTO_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Default `init_buf_size`: 64 KiB.
pub const DEFAULT_INIT_BUF_SIZE: u64 = 64 << 10;
/// Default `max_buf_size`: 100 MiB.
pub const DEFAULT_MAX_BUF_SIZE: u64 = 100 << 20;
/// Default `in_flight_window`.
pub const DEFAULT_IN_FLIGHT_WINDOW: u32 = crate::ack::DEFAULT_IN_FLIGHT_WINDOW;
/// Default `max_schemas_per_connection`.
pub const DEFAULT_MAX_SCHEMAS_PER_CONNECTION: u32 = 65_535;
/// Upper bound of `in_flight_window` and `error_inbox_capacity`: both size
/// structures allocated up front, so a typo must not reserve gigabytes.
pub const MAX_PREALLOCATED_SLOTS: u32 = 1 << 20;
/// Largest millisecond value any key accepts: the most milliseconds whose
/// nanoseconds fit the core's `u64` [`crate::Instant`].
pub const MAX_MILLIS: u64 = u64::MAX / 1_000_000;

/// The transport, from the connect string's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// `ws::` — WebSocket over plain TCP.
    Ws,
    /// `wss::` — WebSocket over TLS.
    Wss,
}

impl Transport {
    /// The scheme as written in a connect string (`ws` or `wss`).
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Wss => "wss",
        }
    }
}

/// A credential that must not leak into logs: `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the upgrade request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the upgrade request authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// HTTP Basic (`username` + `password`).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// Bearer token (`token`).
    Bearer {
        /// The token.
        token: Secret,
    },
}

/// Whether the server certificate is verified (`tls_verify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVerify {
    /// `on`: verify the chain and the host name (default).
    On,
    /// `unsafe_off`: accept any certificate. For tests only.
    UnsafeOff,
}

/// TLS settings; present exactly when the transport is `wss`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// `tls_verify`.
    pub verify: TlsVerify,
    /// `tls_roots`: a custom CA trust store instead of the system's.
    pub roots: Option<String>,
    /// `tls_roots_password`: the trust store's password (only with `roots`).
    pub roots_password: Option<Secret>,
}

/// Auto-flush triggers (`auto_flush=on`); `None` in a trigger means that
/// trigger is `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoFlush {
    /// `auto_flush_rows`: flush once the batch holds this many rows.
    pub rows: Option<NonZeroU64>,
    /// `auto_flush_bytes`: flush once the encoded batch reaches this size.
    pub bytes: Option<NonZeroU64>,
    /// `auto_flush_interval`: flush on the next row or `flush()` once this
    /// much time has passed since the batch's first row. Never zero.
    pub interval: Option<Duration>,
}

impl Default for AutoFlush {
    fn default() -> Self {
        AutoFlush {
            rows: NonZeroU64::new(DEFAULT_AUTO_FLUSH_ROWS),
            bytes: None,
            interval: Some(DEFAULT_AUTO_FLUSH_INTERVAL),
        }
    }
}

/// Encoder buffer and protocol limits (sf-client §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderLimits {
    /// `init_buf_size`: initial encode buffer capacity, bytes.
    pub init_buf_size: u64,
    /// `max_buf_size`: largest encode buffer, bytes (≥ `init_buf_size`).
    pub max_buf_size: u64,
    /// `max_name_len`: local cap on table and column names, UTF-8 bytes.
    pub max_name_len: usize,
    /// `in_flight_window`: most unacknowledged batches on the wire (≥ 2).
    pub in_flight_window: u32,
    /// `max_schemas_per_connection`: per-connection schema ceiling.
    pub max_schemas_per_connection: u32,
}

impl Default for SenderLimits {
    fn default() -> Self {
        SenderLimits {
            init_buf_size: DEFAULT_INIT_BUF_SIZE,
            max_buf_size: DEFAULT_MAX_BUF_SIZE,
            max_name_len: qwp_proto::types::MAX_NAME_LEN,
            in_flight_window: DEFAULT_IN_FLIGHT_WINDOW,
            max_schemas_per_connection: DEFAULT_MAX_SCHEMAS_PER_CONNECTION,
        }
    }
}

/// Where and how frames are stored (sf-client §4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// `sf_dir`: the group root; `None` is memory mode.
    pub sf_dir: Option<String>,
    /// `sender_id`: the slot directory under `sf_dir`; a single path
    /// component.
    pub sender_id: String,
    /// `sf_max_bytes`: size of one segment, bytes.
    pub sf_max_bytes: u64,
    /// `sf_max_total_bytes`: cap on resident bytes (≥ `sf_max_bytes`); its
    /// default depends on the mode.
    pub sf_max_total_bytes: u64,
    /// `sf_durability`: `flush` and `append` only with `sf_dir`.
    pub durability: DurabilityMode,
    /// `sf_append_deadline_millis`: how long a producer waits at the cap.
    pub append_deadline: Duration,
    /// `drain_orphans`: adopt sibling slots with unacknowledged data.
    pub drain_orphans: bool,
    /// `max_background_drainers`: most orphan drainers at once.
    pub max_background_drainers: u32,
}

impl StorageConfig {
    /// Whether frames live only in memory (no `sf_dir`).
    pub fn is_memory_mode(&self) -> bool {
        self.sf_dir.is_none()
    }

    /// The `sf_max_total_bytes` default for a mode.
    pub fn default_max_total_bytes(memory_mode: bool) -> u64 {
        if memory_mode {
            DEFAULT_MEMORY_MAX_TOTAL_BYTES
        } else {
            DEFAULT_SF_MAX_TOTAL_BYTES
        }
    }
}

/// Longest `sender_id`: a directory name on common file systems.
pub const MAX_SENDER_ID_LEN: usize = 255;

/// Why `sender_id` cannot name a slot directory directly under `sf_dir`, or
/// `None` when it can (sf-client §4.6). The one rule for every place that
/// turns a sender id into a path: the connect string and the slot lock.
pub fn sender_id_problem(v: &str) -> Option<&'static str> {
    if v.is_empty() {
        Some("it is empty")
    } else if v.contains(['/', '\\']) {
        Some("it must be a single directory name, without `/` or `\\`")
    } else if v.contains("..") || v == "." {
        Some("`.` and `..` could point outside `sf_dir`")
    } else if v.contains('\0') {
        Some("it contains a NUL byte")
    } else if v.len() > MAX_SENDER_ID_LEN {
        Some("it is longer than 255 bytes")
    } else {
        None
    }
}

/// Reconnect, backoff and connection timeouts (sf-client §4.2, failover.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectConfig {
    /// `reconnect_initial_backoff_millis`: first backoff base (> 0).
    pub initial_backoff: Duration,
    /// `reconnect_max_backoff_millis`: backoff ceiling (≥ initial).
    pub max_backoff: Duration,
    /// `reconnect_max_duration_millis`: per-outage budget.
    pub max_outage: Duration,
    /// `initial_connect_retry`.
    pub initial_connect_retry: InitialConnectRetry,
    /// `auth_timeout_ms`: bound on the wait for the upgrade response (> 0).
    pub auth_timeout: Duration,
    /// `ack_timeout_millis` (extension): no acknowledgement for this long
    /// while frames are in flight means the connection is dead. `None` is
    /// `off`.
    pub ack_timeout: Option<Duration>,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial_backoff: DEFAULT_RECONNECT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_RECONNECT_MAX_BACKOFF,
            max_outage: DEFAULT_RECONNECT_MAX_DURATION,
            initial_connect_retry: InitialConnectRetry::Off,
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
            ack_timeout: Some(DEFAULT_ACK_TIMEOUT),
        }
    }
}

/// Durable-ACK mode (sf-client §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurableAckConfig {
    /// `request_durable_ack`: trim only on DURABLE_ACK.
    pub request: bool,
    /// `durable_ack_keepalive_interval_millis`: PING cadence while durable
    /// confirmations are pending; `None` (0 or negative) disables it.
    pub keepalive_interval: Option<Duration>,
}

impl Default for DurableAckConfig {
    fn default() -> Self {
        DurableAckConfig {
            request: false,
            keepalive_interval: Some(DEFAULT_DURABLE_ACK_KEEPALIVE),
        }
    }
}

/// Error inbox and per-category policy overrides (sf-client §4.4, §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorHandling {
    /// `error_inbox_capacity` (≥ 16).
    pub inbox_capacity: u32,
    /// `on_server_error`: policy for every overridable category without its
    /// own key.
    pub on_server_error: Option<ErrorPolicy>,
    /// `on_schema_error`: SCHEMA_MISMATCH.
    pub on_schema_error: Option<ErrorPolicy>,
    /// `on_parse_error`: PARSE_ERROR.
    pub on_parse_error: Option<ErrorPolicy>,
    /// `on_internal_error`: INTERNAL_ERROR.
    pub on_internal_error: Option<ErrorPolicy>,
    /// `on_security_error`: SECURITY_ERROR.
    pub on_security_error: Option<ErrorPolicy>,
    /// `on_write_error`: WRITE_ERROR.
    pub on_write_error: Option<ErrorPolicy>,
}

impl Default for ErrorHandling {
    fn default() -> Self {
        ErrorHandling {
            inbox_capacity: DEFAULT_ERROR_INBOX_CAPACITY,
            on_server_error: None,
            on_schema_error: None,
            on_parse_error: None,
            on_internal_error: None,
            on_security_error: None,
            on_write_error: None,
        }
    }
}

impl ErrorHandling {
    /// The policy for `category`: forced HALT for the categories that cannot
    /// be overridden (PROTOCOL_VIOLATION, UNKNOWN); otherwise the category's
    /// own key, else `on_server_error`, else the spec default (§14.3).
    pub fn policy_for(&self, category: ErrorCategory) -> ErrorPolicy {
        self.policies().resolve(category)
    }

    /// These overrides as the policy table the error handler applies.
    pub fn policies(&self) -> ErrorPolicies {
        let mut p = ErrorPolicies::new();
        if let Some(policy) = self.on_server_error {
            p.set_server_default(policy);
        }
        let own = [
            (ErrorCategory::SchemaMismatch, self.on_schema_error),
            (ErrorCategory::ParseError, self.on_parse_error),
            (ErrorCategory::InternalError, self.on_internal_error),
            (ErrorCategory::SecurityError, self.on_security_error),
            (ErrorCategory::WriteError, self.on_write_error),
        ];
        for (category, policy) in own {
            if let Some(policy) = policy {
                // Every category listed here is overridable.
                let _ = p.set(category, policy);
            }
        }
        p
    }
}

/// A parsed, validated connect string.
///
/// Built by [`Config::from_conf`], [`Config::for_addr`] or a
/// [`ConfigBuilder`]; every one of these runs the same validation, so a
/// `Config` always holds a consistent set of values. Fields are read through
/// the accessors; their types carry the remaining invariants (TLS settings
/// exist only for `wss`, auto-flush triggers only when auto-flush is on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    transport: Transport,
    addrs: Vec<HostPort>,
    auth: Auth,
    tls: Option<TlsConfig>,
    auto_flush: Option<AutoFlush>,
    limits: SenderLimits,
    storage: StorageConfig,
    reconnect: ReconnectConfig,
    close_flush_timeout: Option<Duration>,
    durable_ack: DurableAckConfig,
    errors: ErrorHandling,
}

impl Config {
    /// Parses and validates a connect string.
    pub fn from_conf(conf: &str) -> Result<Config, ConfigError> {
        builder::parse(conf)
    }

    /// The default configuration for one server: every key at its default,
    /// memory mode. The Sender builder starts here.
    pub fn for_addr(transport: Transport, addr: HostPort) -> Config {
        Config::defaults(transport, vec![addr])
    }

    /// Every key at its default, with the given servers (the builder starts
    /// from an empty list and checks it before returning a `Config`).
    fn defaults(transport: Transport, addrs: Vec<HostPort>) -> Config {
        Config {
            transport,
            addrs,
            auth: Auth::None,
            tls: match transport {
                Transport::Ws => None,
                Transport::Wss => Some(TlsConfig {
                    verify: TlsVerify::On,
                    roots: None,
                    roots_password: None,
                }),
            },
            auto_flush: Some(AutoFlush::default()),
            limits: SenderLimits::default(),
            storage: StorageConfig {
                sf_dir: None,
                sender_id: DEFAULT_SENDER_ID.to_owned(),
                sf_max_bytes: DEFAULT_SF_MAX_BYTES,
                sf_max_total_bytes: DEFAULT_MEMORY_MAX_TOTAL_BYTES,
                durability: DurabilityMode::Memory,
                append_deadline: DEFAULT_APPEND_DEADLINE,
                drain_orphans: false,
                max_background_drainers: DEFAULT_MAX_BACKGROUND_DRAINERS,
            },
            reconnect: ReconnectConfig::default(),
            close_flush_timeout: Some(DEFAULT_CLOSE_FLUSH_TIMEOUT),
            durable_ack: DurableAckConfig::default(),
            errors: ErrorHandling::default(),
        }
    }

    /// A builder for `transport` with every key at its default and no
    /// address yet; set keys with [`ConfigBuilder::set`] and finish with
    /// [`ConfigBuilder::build`].
    pub fn builder(transport: Transport) -> ConfigBuilder {
        ConfigBuilder::new(transport)
    }

    /// The connect string that parses back to this configuration. Keys at
    /// their defaults are left out; `;` in values is doubled.
    ///
    /// The result holds the password and token in clear: use
    /// [`Config::to_redacted_conf_string`] for logs.
    pub fn to_conf_string(&self) -> String {
        builder::write_conf(self, true)
    }

    /// [`Config::to_conf_string`] with every secret replaced by `<redacted>`:
    /// safe to log, not meant to be parsed back.
    pub fn to_redacted_conf_string(&self) -> String {
        builder::write_conf(self, false)
    }

    /// The transport (`ws` or `wss`).
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The servers, in `addr` order; never empty.
    pub fn addrs(&self) -> &[HostPort] {
        &self.addrs
    }

    /// Credentials for the upgrade request.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// TLS settings; `Some` exactly when the transport is `wss`.
    pub fn tls(&self) -> Option<&TlsConfig> {
        self.tls.as_ref()
    }

    /// Auto-flush triggers; `None` when `auto_flush=off`.
    pub fn auto_flush(&self) -> Option<&AutoFlush> {
        self.auto_flush.as_ref()
    }

    /// Encoder buffer and protocol limits.
    pub fn limits(&self) -> &SenderLimits {
        &self.limits
    }

    /// Storage mode and caps.
    pub fn storage(&self) -> &StorageConfig {
        &self.storage
    }

    /// Reconnect and timeout settings.
    pub fn reconnect(&self) -> &ReconnectConfig {
        &self.reconnect
    }

    /// `close_flush_timeout_millis`: how long `close()` drains; `None` (0 or
    /// −1) skips the drain and the pre-drain error check.
    pub fn close_flush_timeout(&self) -> Option<Duration> {
        self.close_flush_timeout
    }

    /// Durable-ACK settings.
    pub fn durable_ack(&self) -> &DurableAckConfig {
        &self.durable_ack
    }

    /// Error inbox and policies.
    pub fn errors(&self) -> &ErrorHandling {
        &self.errors
    }

    /// The same configuration for another slot under the same `sf_dir`:
    /// `sender_id` replaced (validated like the connect-string key) and
    /// `drain_orphans` off, since a sender opened on behalf of a pool or a
    /// drainer never runs an orphan scan of its own (the owner of the scan
    /// does).
    pub fn for_slot(&self, sender_id: &str) -> Result<Config, ConfigError> {
        if let Some(reason) = sender_id_problem(sender_id) {
            return Err(ConfigError::InvalidSenderId {
                value: sender_id.to_owned(),
                reason,
            });
        }
        let mut c = self.clone();
        c.storage.sender_id = sender_id.to_owned();
        c.storage.drain_orphans = false;
        Ok(c)
    }

    /// [`Config::for_slot`] for a background orphan drainer: the first
    /// connect retried in the background within the reconnect budget
    /// (`initial_connect_retry=async`, so an unreachable server exhausts the
    /// budget instead of failing the first round), and no drain at close
    /// (the drainer waits for the acknowledgements itself and must stop
    /// promptly when its foreground closes).
    pub fn for_orphan_drainer(&self, sender_id: &str) -> Result<Config, ConfigError> {
        let mut c = self.for_slot(sender_id)?;
        c.reconnect.initial_connect_retry = InitialConnectRetry::Async;
        c.close_flush_timeout = None;
        Ok(c)
    }

    /// The largest encoded message this configuration can send: it must fit
    /// the encode buffer, the protocol's default batch limit, and one segment
    /// after the segment and frame headers.
    pub fn max_frame_bytes(&self) -> u64 {
        let segment_room = self.storage.sf_max_bytes.saturating_sub(
            (crate::segment::SEGMENT_HEADER_LEN + crate::segment::FRAME_HEADER_LEN) as u64,
        );
        self.limits
            .max_buf_size
            .min(qwp_proto::types::DEFAULT_MAX_BATCH_BYTES as u64)
            .min(segment_room)
    }
}
