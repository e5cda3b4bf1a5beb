//! From keys and values to a validated [`Config`], and back.
//!
//! [`ConfigBuilder::set`] reads one key's value and checks what can be checked
//! alone (type, range, duplicates); [`ConfigBuilder::build`] checks what
//! involves several keys. The connect-string parser is a loop of `set` calls
//! followed by `build`, so a builder user gets exactly the same validation.

use core::num::NonZeroU64;
use core::time::Duration;

use super::addr::HostPort;
use super::error::ConfigError;
use super::lexer::{self, Lexer, NoEquals};
use super::values::{self, eq_kw, fmt_bool, fmt_size, is_off, out_of_range};
use super::{
    Auth, AutoFlush, Config, ErrorPolicy, InitialConnectRetry, ReconnectConfig, Secret,
    SenderLimits, StorageConfig, TlsConfig, TlsVerify, Transport, MAX_MILLIS,
    MAX_PREALLOCATED_SLOTS, MAX_SEGMENT_BYTES, MIN_ERROR_INBOX_CAPACITY, MIN_SEGMENT_BYTES,
};
use crate::durability::DurabilityMode;

/// Declares the key enum and its name table in one place, so a key cannot
/// be added to one and forgotten in the other.
macro_rules! keys {
    ($($variant:ident = $name:literal,)*) => {
        /// A connect-string key this client accepts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Key { $($variant,)* }

        /// Every accepted key name, in declaration (and output) order.
        pub(super) const KEY_NAMES: &[&str] = &[$($name,)*];

        impl Key {
            const ALL: &'static [Key] = &[$(Key::$variant,)*];

            fn name(self) -> &'static str {
                match self { $(Key::$variant => $name,)* }
            }
        }
    };
}

keys! {
    Addr = "addr",
    Username = "username",
    Password = "password",
    Token = "token",
    TlsVerify = "tls_verify",
    TlsRoots = "tls_roots",
    TlsRootsPassword = "tls_roots_password",
    AutoFlush = "auto_flush",
    AutoFlushRows = "auto_flush_rows",
    AutoFlushBytes = "auto_flush_bytes",
    AutoFlushInterval = "auto_flush_interval",
    InitBufSize = "init_buf_size",
    MaxBufSize = "max_buf_size",
    MaxNameLen = "max_name_len",
    InFlightWindow = "in_flight_window",
    MaxSchemasPerConnection = "max_schemas_per_connection",
    SfDir = "sf_dir",
    SenderId = "sender_id",
    SfMaxBytes = "sf_max_bytes",
    SfMaxTotalBytes = "sf_max_total_bytes",
    SfDurability = "sf_durability",
    SfAppendDeadlineMillis = "sf_append_deadline_millis",
    DrainOrphans = "drain_orphans",
    MaxBackgroundDrainers = "max_background_drainers",
    ReconnectMaxDurationMillis = "reconnect_max_duration_millis",
    ReconnectInitialBackoffMillis = "reconnect_initial_backoff_millis",
    ReconnectMaxBackoffMillis = "reconnect_max_backoff_millis",
    InitialConnectRetry = "initial_connect_retry",
    CloseFlushTimeoutMillis = "close_flush_timeout_millis",
    RequestDurableAck = "request_durable_ack",
    DurableAckKeepaliveIntervalMillis = "durable_ack_keepalive_interval_millis",
    ErrorInboxCapacity = "error_inbox_capacity",
    OnServerError = "on_server_error",
    OnSchemaError = "on_schema_error",
    OnParseError = "on_parse_error",
    OnInternalError = "on_internal_error",
    OnSecurityError = "on_security_error",
    OnWriteError = "on_write_error",
    AuthTimeoutMs = "auth_timeout_ms",
    AckTimeoutMillis = "ack_timeout_millis",
    Zone = "zone",
}

impl Key {
    /// Keys whose values never appear in errors or redacted output.
    fn is_secret(self) -> bool {
        matches!(self, Key::Password | Key::Token | Key::TlsRootsPassword)
    }

    /// The bit of this key in [`ConfigBuilder::seen`].
    fn bit(self) -> u64 {
        1u64 << (self as u32)
    }
}

// The duplicate-key set is a u64 bitmask.
const _: () = assert!(Key::ALL.len() <= 64);

/// Keys of the egress query client (failover.md §1.3): recognised so the
/// error can say why they are refused.
fn is_egress_key(key: &str) -> bool {
    matches!(key, "target" | "lb_strategy" | "failover") || key.starts_with("failover_")
}

/// Maps a key as written to a [`Key`], or says why it is not one.
fn resolve_key(key: &str) -> Result<Key, ConfigError> {
    if !lexer::is_identifier(key) {
        return Err(ConfigError::InvalidKey {
            key: key.to_owned(),
        });
    }
    if let Some(k) = Key::ALL.iter().copied().find(|k| k.name() == key) {
        return Ok(k);
    }
    if is_egress_key(key) {
        return Err(ConfigError::EgressOnlyKey {
            key: key.to_owned(),
        });
    }
    Err(ConfigError::UnknownKey {
        key: key.to_owned(),
    })
}

/// Builds a [`Config`] key by key, with the connect-string parser's rules.
///
/// Start from [`Config::builder`], add servers with [`ConfigBuilder::addr`]
/// or `set("addr", …)`, set other keys with [`ConfigBuilder::set`] (a key may
/// be set once, like in a connect string), then [`ConfigBuilder::build`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    transport: Transport,
    /// Keys already set, one bit per [`Key`].
    seen: u64,
    addrs: Vec<HostPort>,
    username: Option<String>,
    password: Option<Secret>,
    token: Option<Secret>,
    tls_verify: TlsVerify,
    tls_roots: Option<String>,
    tls_roots_password: Option<Secret>,
    auto_flush_on: bool,
    auto_flush: AutoFlush,
    limits: SenderLimits,
    storage: StorageConfig,
    /// `sf_max_total_bytes` as given; the default depends on the mode, which
    /// is only known once every key is in.
    sf_max_total_bytes: Option<u64>,
    reconnect: ReconnectConfig,
    close_flush_timeout: Option<Duration>,
    durable_ack: super::DurableAckConfig,
    errors: super::ErrorHandling,
}

impl ConfigBuilder {
    /// Every key at its default, no server yet.
    pub(super) fn new(transport: Transport) -> ConfigBuilder {
        let d = Config::defaults(transport, Vec::new());
        ConfigBuilder {
            transport,
            seen: 0,
            addrs: Vec::new(),
            username: None,
            password: None,
            token: None,
            tls_verify: TlsVerify::On,
            tls_roots: None,
            tls_roots_password: None,
            auto_flush_on: true,
            auto_flush: d.auto_flush.unwrap_or_default(),
            limits: d.limits,
            storage: d.storage,
            sf_max_total_bytes: None,
            reconnect: d.reconnect,
            close_flush_timeout: d.close_flush_timeout,
            durable_ack: d.durable_ack,
            errors: d.errors,
        }
    }

    /// Appends a server to the `addr` list.
    pub fn addr(&mut self, addr: HostPort) -> &mut Self {
        self.addrs.push(addr);
        self
    }

    /// Sets `key` from its connect-string spelling `value` (unescaped: a
    /// literal `;`, not `;;`). `addr` appends; every other key may be set
    /// once.
    pub fn set(&mut self, key: &str, value: &str) -> Result<&mut Self, ConfigError> {
        let key = resolve_key(key)?;
        self.apply(key, value)?;
        Ok(self)
    }

    fn apply(&mut self, key: Key, value: &str) -> Result<(), ConfigError> {
        let name = key.name();
        if value.is_empty() {
            return Err(ConfigError::MissingValue {
                key: name.to_owned(),
            });
        }
        if value.chars().any(lexer::is_forbidden_control) {
            return Err(ConfigError::ControlCharacter {
                key: name.to_owned(),
            });
        }
        if key != Key::Addr && self.seen & key.bit() != 0 {
            return Err(ConfigError::DuplicateKey {
                key: name.to_owned(),
            });
        }
        if matches!(key, Key::TlsVerify | Key::TlsRoots | Key::TlsRootsPassword)
            && self.transport == Transport::Ws
        {
            return Err(ConfigError::TlsKeyWithoutTls {
                key: name.to_owned(),
            });
        }
        self.apply_value(key, value)?;
        self.seen |= key.bit();
        Ok(())
    }

    fn apply_value(&mut self, key: Key, v: &str) -> Result<(), ConfigError> {
        let name = key.name();
        match key {
            Key::Addr => {
                // Parse the whole list before appending, so a bad entry
                // leaves the builder unchanged.
                let mut parsed = Vec::new();
                for entry in v.split(',') {
                    if entry.is_empty() {
                        return Err(ConfigError::EmptyAddrEntry {
                            value: v.to_owned(),
                        });
                    }
                    parsed.push(HostPort::parse(entry)?);
                }
                self.addrs.extend(parsed);
            }
            Key::Username => self.username = Some(v.to_owned()),
            Key::Password => self.password = Some(Secret::new(v)),
            Key::Token => self.token = Some(Secret::new(v)),
            Key::TlsVerify => {
                self.tls_verify = if eq_kw(v, "on") {
                    TlsVerify::On
                } else if eq_kw(v, "unsafe_off") {
                    TlsVerify::UnsafeOff
                } else {
                    return Err(invalid(name, v, "`on` or `unsafe_off`"));
                }
            }
            Key::TlsRoots => self.tls_roots = Some(v.to_owned()),
            Key::TlsRootsPassword => self.tls_roots_password = Some(Secret::new(v)),
            Key::AutoFlush => self.auto_flush_on = values::parse_bool(name, v)?,
            Key::AutoFlushRows => self.auto_flush.rows = count_or_off(name, v)?,
            Key::AutoFlushBytes => {
                self.auto_flush.bytes = if is_off(v) {
                    None
                } else {
                    NonZeroU64::new(values::parse_size(name, v)?)
                }
            }
            Key::AutoFlushInterval => {
                self.auto_flush.interval = if is_off(v) {
                    None
                } else {
                    Some(millis(name, v, 0)?).filter(|d| !d.is_zero())
                }
            }
            Key::InitBufSize => self.limits.init_buf_size = buf_size(name, v)?,
            Key::MaxBufSize => self.limits.max_buf_size = buf_size(name, v)?,
            Key::MaxNameLen => {
                self.limits.max_name_len = int_in(name, v, 1, u16::MAX.into())? as usize;
            }
            Key::InFlightWindow => {
                self.limits.in_flight_window =
                    int_in(name, v, 2, MAX_PREALLOCATED_SLOTS.into())? as u32;
            }
            Key::MaxSchemasPerConnection => {
                self.limits.max_schemas_per_connection =
                    int_in(name, v, 1, i32::MAX.into())? as u32;
            }
            Key::SfDir => self.storage.sf_dir = Some(v.to_owned()),
            Key::SenderId => {
                check_sender_id(v)?;
                self.storage.sender_id = v.to_owned();
            }
            Key::SfMaxBytes => {
                let n = values::parse_size(name, v)?;
                if !(MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&n) {
                    return Err(out_of_range(
                        name,
                        v,
                        format!(
                            "a segment must hold its 24-byte header and at least one frame \
                             ({MIN_SEGMENT_BYTES} bytes) and at most 2G so offsets fit in 32 bits"
                        ),
                    ));
                }
                self.storage.sf_max_bytes = n;
            }
            Key::SfMaxTotalBytes => {
                self.sf_max_total_bytes = Some(values::parse_size(name, v)?);
            }
            Key::SfDurability => {
                self.storage.durability = if eq_kw(v, "memory") {
                    DurabilityMode::Memory
                } else if eq_kw(v, "flush") {
                    DurabilityMode::Flush
                } else if eq_kw(v, "append") {
                    DurabilityMode::Append
                } else {
                    return Err(invalid(name, v, "`memory`, `flush` or `append`"));
                }
            }
            Key::SfAppendDeadlineMillis => self.storage.append_deadline = millis(name, v, 0)?,
            Key::DrainOrphans => self.storage.drain_orphans = values::parse_bool(name, v)?,
            Key::MaxBackgroundDrainers => {
                self.storage.max_background_drainers = int_in(name, v, 1, 1024)? as u32;
            }
            Key::ReconnectMaxDurationMillis => self.reconnect.max_outage = millis(name, v, 0)?,
            Key::ReconnectInitialBackoffMillis => {
                self.reconnect.initial_backoff = millis(name, v, 1)?;
            }
            Key::ReconnectMaxBackoffMillis => self.reconnect.max_backoff = millis(name, v, 1)?,
            Key::InitialConnectRetry => {
                self.reconnect.initial_connect_retry = if eq_kw(v, "off") || eq_kw(v, "false") {
                    InitialConnectRetry::Off
                } else if eq_kw(v, "on") || eq_kw(v, "sync") || eq_kw(v, "true") {
                    InitialConnectRetry::On
                } else if eq_kw(v, "async") {
                    InitialConnectRetry::Async
                } else {
                    return Err(invalid(
                        name,
                        v,
                        "`off` (or `false`), `on` (or `sync`, `true`) or `async`",
                    ));
                }
            }
            Key::CloseFlushTimeoutMillis => {
                // 0 and -1 both mean "skip the drain" (sf-client §17); any
                // other negative is more likely a mistake than a wish.
                let n = values::parse_i64(name, v)?;
                self.close_flush_timeout = match n {
                    -1 | 0 => None,
                    n if n < -1 || n as u64 > MAX_MILLIS => {
                        return Err(out_of_range(
                            name,
                            v,
                            format!("expected -1, 0 (skip the drain) or 1..={MAX_MILLIS}"),
                        ))
                    }
                    n => Some(Duration::from_millis(n as u64)),
                };
            }
            Key::RequestDurableAck => {
                // Wire brief §9: `on` or `off`; "any other value is an error".
                self.durable_ack.request = if eq_kw(v, "on") {
                    true
                } else if eq_kw(v, "off") {
                    false
                } else {
                    return Err(invalid(name, v, "`on` or `off`"));
                }
            }
            Key::DurableAckKeepaliveIntervalMillis => {
                // "0 or negative disables" (sf-client §4.3).
                let n = values::parse_i64(name, v)?;
                if n > 0 && n as u64 > MAX_MILLIS {
                    return Err(out_of_range(
                        name,
                        v,
                        format!("expected at most {MAX_MILLIS} (0 or negative disables)"),
                    ));
                }
                self.durable_ack.keepalive_interval =
                    (n > 0).then(|| Duration::from_millis(n as u64));
            }
            Key::ErrorInboxCapacity => {
                self.errors.inbox_capacity = int_in(
                    name,
                    v,
                    MIN_ERROR_INBOX_CAPACITY.into(),
                    MAX_PREALLOCATED_SLOTS.into(),
                )? as u32;
            }
            Key::OnServerError => self.errors.on_server_error = Some(policy(name, v)?),
            Key::OnSchemaError => self.errors.on_schema_error = Some(policy(name, v)?),
            Key::OnParseError => self.errors.on_parse_error = Some(policy(name, v)?),
            Key::OnInternalError => self.errors.on_internal_error = Some(policy(name, v)?),
            Key::OnSecurityError => self.errors.on_security_error = Some(policy(name, v)?),
            Key::OnWriteError => self.errors.on_write_error = Some(policy(name, v)?),
            Key::AuthTimeoutMs => self.reconnect.auth_timeout = millis(name, v, 1)?,
            Key::AckTimeoutMillis => {
                self.reconnect.ack_timeout = if is_off(v) {
                    None
                } else {
                    Some(millis(name, v, 1)?)
                }
            }
            // Ingress is zone-blind (failover.md): accepted so one string can
            // configure both directions, and ignored.
            Key::Zone => {}
        }
        Ok(())
    }

    fn was_set(&self, key: Key) -> bool {
        self.seen & key.bit() != 0
    }

    /// Runs the checks that involve several keys and returns the
    /// configuration.
    pub fn build(&self) -> Result<Config, ConfigError> {
        if self.addrs.is_empty() {
            return Err(ConfigError::MissingAddr);
        }
        let auth = match (&self.username, &self.password, &self.token) {
            (None, None, None) => Auth::None,
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(ConfigError::ConflictingAuth)
            }
            (None, None, Some(token)) => Auth::Bearer {
                token: token.clone(),
            },
            (Some(username), Some(password), None) => Auth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            (Some(_), None, None) => {
                return Err(ConfigError::IncompleteBasicAuth {
                    missing: "password",
                })
            }
            (None, Some(_), None) => {
                return Err(ConfigError::IncompleteBasicAuth {
                    missing: "username",
                })
            }
        };
        let tls = match self.transport {
            Transport::Ws => None,
            Transport::Wss => {
                if self.tls_roots_password.is_some() && self.tls_roots.is_none() {
                    return Err(ConfigError::Conflict {
                        key: "tls_roots_password",
                        other: "tls_roots",
                        detail: "a trust-store password needs a trust store (`tls_roots`)"
                            .to_owned(),
                    });
                }
                Some(TlsConfig {
                    verify: self.tls_verify,
                    roots: self.tls_roots.clone(),
                    roots_password: self.tls_roots_password.clone(),
                })
            }
        };
        let auto_flush = if self.auto_flush_on {
            Some(self.auto_flush)
        } else {
            // `auto_flush=off` with a trigger switched on is contradictory:
            // refuse it rather than pick one meaning.
            let triggers = [
                (Key::AutoFlushRows, self.auto_flush.rows.is_some()),
                (Key::AutoFlushBytes, self.auto_flush.bytes.is_some()),
                (Key::AutoFlushInterval, self.auto_flush.interval.is_some()),
            ];
            if let Some((key, _)) = triggers.iter().find(|(key, on)| *on && self.was_set(*key)) {
                return Err(ConfigError::Conflict {
                    key: key.name(),
                    other: "auto_flush",
                    detail: format!(
                        "`auto_flush=off` disables every trigger; remove `{}` or set it to `off`",
                        key.name()
                    ),
                });
            }
            None
        };
        if self.limits.init_buf_size > self.limits.max_buf_size {
            return Err(ConfigError::Conflict {
                key: "init_buf_size",
                other: "max_buf_size",
                detail: format!(
                    "the initial buffer ({}) is larger than the maximum ({})",
                    fmt_size(self.limits.init_buf_size),
                    fmt_size(self.limits.max_buf_size)
                ),
            });
        }
        let mut storage = self.storage.clone();
        let memory = storage.is_memory_mode();
        storage.sf_max_total_bytes = self
            .sf_max_total_bytes
            .unwrap_or_else(|| StorageConfig::default_max_total_bytes(memory));
        if storage.sf_max_total_bytes < storage.sf_max_bytes {
            return Err(ConfigError::Conflict {
                key: "sf_max_total_bytes",
                other: "sf_max_bytes",
                detail: format!(
                    "the total cap ({}) is smaller than one segment ({})",
                    fmt_size(storage.sf_max_total_bytes),
                    fmt_size(storage.sf_max_bytes)
                ),
            });
        }
        if memory {
            if storage.durability != DurabilityMode::Memory {
                return Err(ConfigError::RequiresSfDir {
                    key: "sf_durability".to_owned(),
                    value: durability_name(storage.durability).to_owned(),
                });
            }
            if storage.drain_orphans {
                return Err(ConfigError::RequiresSfDir {
                    key: "drain_orphans".to_owned(),
                    value: "on".to_owned(),
                });
            }
        }
        if self.reconnect.initial_backoff > self.reconnect.max_backoff {
            return Err(ConfigError::Conflict {
                key: "reconnect_initial_backoff_millis",
                other: "reconnect_max_backoff_millis",
                detail: format!(
                    "the initial backoff ({} ms) exceeds the maximum ({} ms)",
                    self.reconnect.initial_backoff.as_millis(),
                    self.reconnect.max_backoff.as_millis()
                ),
            });
        }
        Ok(Config {
            transport: self.transport,
            addrs: self.addrs.clone(),
            auth,
            tls,
            auto_flush,
            limits: self.limits,
            storage,
            reconnect: self.reconnect,
            close_flush_timeout: self.close_flush_timeout,
            durable_ack: self.durable_ack,
            errors: self.errors,
        })
    }
}

fn invalid(key: &str, value: &str, expected: &'static str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        expected,
    }
}

fn int_in(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
    values::parse_int_in(key, value, min, max)
}

/// A count trigger: a positive integer, or `off` / `0` for no trigger (the
/// spec writes `auto_flush_bytes`'s default as "`0` (off)").
fn count_or_off(key: &str, value: &str) -> Result<Option<NonZeroU64>, ConfigError> {
    if is_off(value) {
        return Ok(None);
    }
    let n = values::parse_i64(key, value)?;
    if n < 0 {
        return Err(out_of_range(
            key,
            value,
            "expected a positive count, or `off` (`0` also means off)".to_owned(),
        ));
    }
    Ok(NonZeroU64::new(n as u64))
}

/// A millisecond value in `min..=MAX_MILLIS`.
fn millis(key: &str, value: &str, min: u64) -> Result<Duration, ConfigError> {
    let n = values::parse_i64(key, value)?;
    if n < 0 || (n as u64) < min || n as u64 > MAX_MILLIS {
        return Err(out_of_range(
            key,
            value,
            format!("expected {min}..={MAX_MILLIS} milliseconds"),
        ));
    }
    Ok(Duration::from_millis(n as u64))
}

/// An encode-buffer size: at least one QWP message header, at most
/// [`MAX_SEGMENT_BYTES`] (no frame can be larger).
fn buf_size(key: &str, value: &str) -> Result<u64, ConfigError> {
    let n = values::parse_size(key, value)?;
    let min = qwp_proto::types::HEADER_LEN as u64;
    if !(min..=MAX_SEGMENT_BYTES).contains(&n) {
        return Err(out_of_range(
            key,
            value,
            format!("expected {min} bytes..=2G (a frame cannot be larger than a segment)"),
        ));
    }
    Ok(n)
}

fn policy(key: &str, value: &str) -> Result<ErrorPolicy, ConfigError> {
    if eq_kw(value, "halt") {
        Ok(ErrorPolicy::Halt)
    } else if eq_kw(value, "drop_and_continue") {
        Ok(ErrorPolicy::DropAndContinue)
    } else {
        Err(invalid(key, value, "`halt` or `drop_and_continue`"))
    }
}

fn check_sender_id(v: &str) -> Result<(), ConfigError> {
    match super::sender_id_problem(v) {
        Some(reason) => Err(ConfigError::InvalidSenderId {
            value: v.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn durability_name(mode: DurabilityMode) -> &'static str {
    match mode {
        DurabilityMode::Memory => "memory",
        DurabilityMode::Flush => "flush",
        DurabilityMode::Append => "append",
    }
}

fn policy_name(p: ErrorPolicy) -> &'static str {
    match p {
        ErrorPolicy::Halt => "halt",
        ErrorPolicy::DropAndContinue => "drop_and_continue",
    }
}

/// How much of a malformed parameter an error quotes.
const FRAGMENT_QUOTE_CHARS: usize = 64;

/// Parses a whole connect string.
pub(super) fn parse(conf: &str) -> Result<Config, ConfigError> {
    let (scheme, params) = lexer::split_scheme(conf)?;
    let transport = match scheme {
        "ws" => Transport::Ws,
        "wss" => Transport::Wss,
        other => {
            return Err(ConfigError::UnsupportedScheme {
                scheme: other.to_owned(),
            })
        }
    };
    let mut builder = ConfigBuilder::new(transport);
    let mut lexer = Lexer::new(params);
    // A secret with an unescaped `;` spills into the next parameter. When
    // that parameter is not a known `key=` the error would quote part of the
    // secret, so it names the secret key instead. A known key after a secret
    // is taken at face value: its errors are reported as usual.
    let mut after_secret: Option<&'static str> = None;
    while let Some(param) = lexer.next_param() {
        let hide_if_secret = |e: ConfigError| match after_secret {
            Some(secret) => ConfigError::SecretNotEscaped { key: secret },
            None => e,
        };
        let param = param.map_err(|NoEquals { fragment }| {
            hide_if_secret(ConfigError::MissingEquals {
                fragment: fragment.chars().take(FRAGMENT_QUOTE_CHARS).collect(),
            })
        })?;
        let key = resolve_key(param.key).map_err(hide_if_secret)?;
        builder.apply(key, &param.value)?;
        after_secret = key.is_secret().then(|| key.name());
    }
    builder.build()
}

/// Writes `key=value;` with `value` escaped.
fn kv(out: &mut String, key: Key, value: &str) {
    out.push_str(key.name());
    out.push('=');
    lexer::push_escaped(out, value);
    out.push(';');
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

/// The connect string of `c`, leaving out keys at their defaults. With
/// `reveal_secrets` false, secrets are written as `<redacted>`.
pub(super) fn write_conf(c: &Config, reveal_secrets: bool) -> String {
    let secret = |s: &Secret| -> String {
        if reveal_secrets {
            s.expose().to_owned()
        } else {
            "<redacted>".to_owned()
        }
    };
    let defaults = Config::defaults(c.transport, Vec::new());
    let mut out = String::new();
    out.push_str(c.transport.scheme());
    out.push_str("::");
    let addrs: Vec<String> = c.addrs.iter().map(ToString::to_string).collect();
    kv(&mut out, Key::Addr, &addrs.join(","));
    match &c.auth {
        Auth::None => {}
        Auth::Basic { username, password } => {
            kv(&mut out, Key::Username, username);
            kv(&mut out, Key::Password, &secret(password));
        }
        Auth::Bearer { token } => kv(&mut out, Key::Token, &secret(token)),
    }
    if let Some(tls) = &c.tls {
        if tls.verify == TlsVerify::UnsafeOff {
            kv(&mut out, Key::TlsVerify, "unsafe_off");
        }
        if let Some(roots) = &tls.roots {
            kv(&mut out, Key::TlsRoots, roots);
        }
        if let Some(pw) = &tls.roots_password {
            kv(&mut out, Key::TlsRootsPassword, &secret(pw));
        }
    }
    match &c.auto_flush {
        None => kv(&mut out, Key::AutoFlush, fmt_bool(false)),
        Some(a) => {
            let d = AutoFlush::default();
            let count = |n: Option<NonZeroU64>| n.map_or("off".to_owned(), |n| n.to_string());
            if a.rows != d.rows {
                kv(&mut out, Key::AutoFlushRows, &count(a.rows));
            }
            if a.bytes != d.bytes {
                let bytes = a.bytes.map_or("off".to_owned(), |n| fmt_size(n.get()));
                kv(&mut out, Key::AutoFlushBytes, &bytes);
            }
            if a.interval != d.interval {
                kv(
                    &mut out,
                    Key::AutoFlushInterval,
                    &a.interval.map_or("off".to_owned(), ms),
                );
            }
        }
    }
    let (l, dl) = (&c.limits, &defaults.limits);
    if l.init_buf_size != dl.init_buf_size {
        kv(&mut out, Key::InitBufSize, &fmt_size(l.init_buf_size));
    }
    if l.max_buf_size != dl.max_buf_size {
        kv(&mut out, Key::MaxBufSize, &fmt_size(l.max_buf_size));
    }
    if l.max_name_len != dl.max_name_len {
        kv(&mut out, Key::MaxNameLen, &l.max_name_len.to_string());
    }
    if l.in_flight_window != dl.in_flight_window {
        kv(
            &mut out,
            Key::InFlightWindow,
            &l.in_flight_window.to_string(),
        );
    }
    if l.max_schemas_per_connection != dl.max_schemas_per_connection {
        kv(
            &mut out,
            Key::MaxSchemasPerConnection,
            &l.max_schemas_per_connection.to_string(),
        );
    }
    let (s, ds) = (&c.storage, &defaults.storage);
    if let Some(dir) = &s.sf_dir {
        kv(&mut out, Key::SfDir, dir);
    }
    if s.sender_id != ds.sender_id {
        kv(&mut out, Key::SenderId, &s.sender_id);
    }
    if s.sf_max_bytes != ds.sf_max_bytes {
        kv(&mut out, Key::SfMaxBytes, &fmt_size(s.sf_max_bytes));
    }
    if s.sf_max_total_bytes != StorageConfig::default_max_total_bytes(s.is_memory_mode()) {
        kv(
            &mut out,
            Key::SfMaxTotalBytes,
            &fmt_size(s.sf_max_total_bytes),
        );
    }
    if s.durability != ds.durability {
        kv(&mut out, Key::SfDurability, durability_name(s.durability));
    }
    if s.append_deadline != ds.append_deadline {
        kv(
            &mut out,
            Key::SfAppendDeadlineMillis,
            &ms(s.append_deadline),
        );
    }
    if s.drain_orphans != ds.drain_orphans {
        kv(&mut out, Key::DrainOrphans, fmt_bool(s.drain_orphans));
    }
    if s.max_background_drainers != ds.max_background_drainers {
        kv(
            &mut out,
            Key::MaxBackgroundDrainers,
            &s.max_background_drainers.to_string(),
        );
    }
    let (r, dr) = (&c.reconnect, &defaults.reconnect);
    if r.max_outage != dr.max_outage {
        kv(&mut out, Key::ReconnectMaxDurationMillis, &ms(r.max_outage));
    }
    if r.initial_backoff != dr.initial_backoff {
        kv(
            &mut out,
            Key::ReconnectInitialBackoffMillis,
            &ms(r.initial_backoff),
        );
    }
    if r.max_backoff != dr.max_backoff {
        kv(&mut out, Key::ReconnectMaxBackoffMillis, &ms(r.max_backoff));
    }
    if r.initial_connect_retry != dr.initial_connect_retry {
        let v = match r.initial_connect_retry {
            InitialConnectRetry::Off => "off",
            InitialConnectRetry::On => "on",
            InitialConnectRetry::Async => "async",
        };
        kv(&mut out, Key::InitialConnectRetry, v);
    }
    if c.close_flush_timeout != defaults.close_flush_timeout {
        kv(
            &mut out,
            Key::CloseFlushTimeoutMillis,
            &c.close_flush_timeout.map_or("0".to_owned(), ms),
        );
    }
    if c.durable_ack.request {
        kv(&mut out, Key::RequestDurableAck, fmt_bool(true));
    }
    if c.durable_ack.keepalive_interval != defaults.durable_ack.keepalive_interval {
        kv(
            &mut out,
            Key::DurableAckKeepaliveIntervalMillis,
            &c.durable_ack.keepalive_interval.map_or("0".to_owned(), ms),
        );
    }
    let e = &c.errors;
    if e.inbox_capacity != defaults.errors.inbox_capacity {
        kv(
            &mut out,
            Key::ErrorInboxCapacity,
            &e.inbox_capacity.to_string(),
        );
    }
    for (key, p) in [
        (Key::OnServerError, e.on_server_error),
        (Key::OnSchemaError, e.on_schema_error),
        (Key::OnParseError, e.on_parse_error),
        (Key::OnInternalError, e.on_internal_error),
        (Key::OnSecurityError, e.on_security_error),
        (Key::OnWriteError, e.on_write_error),
    ] {
        if let Some(p) = p {
            kv(&mut out, key, policy_name(p));
        }
    }
    if r.auth_timeout != dr.auth_timeout {
        kv(&mut out, Key::AuthTimeoutMs, &ms(r.auth_timeout));
    }
    if r.ack_timeout != dr.ack_timeout {
        kv(
            &mut out,
            Key::AckTimeoutMillis,
            &r.ack_timeout.map_or("off".to_owned(), ms),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table_has_unique_names_that_resolve_to_themselves() {
        for (i, k) in Key::ALL.iter().enumerate() {
            assert_eq!(KEY_NAMES[i], k.name());
            assert_eq!(resolve_key(k.name()), Ok(*k));
            assert_eq!(*k as usize, i, "bit index must be the table index");
        }
    }

    #[test]
    fn egress_keys_are_named_as_such() {
        for key in ["target", "lb_strategy", "failover", "failover_max_attempts"] {
            assert_eq!(
                resolve_key(key),
                Err(ConfigError::EgressOnlyKey {
                    key: key.to_owned()
                })
            );
        }
    }

    #[test]
    fn sender_id_rules() {
        for ok in ["default", "pool-3", "a.b", ".hidden", "ü"] {
            assert!(check_sender_id(ok).is_ok(), "{ok}");
        }
        for bad in ["a/b", "a\\b", "..", ".", "a..b", "/abs"] {
            assert!(check_sender_id(bad).is_err(), "{bad}");
        }
        assert!(check_sender_id(&"x".repeat(256)).is_err());
        assert!(check_sender_id(&"x".repeat(255)).is_ok());
    }
}
