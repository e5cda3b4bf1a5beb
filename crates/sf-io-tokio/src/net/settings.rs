//! What every connection attempt of one sender shares: the transport, the
//! upgrade request headers (QWP and auth), the TLS configuration and the
//! `auth_timeout_ms` bound, checked and built once from a [`Config`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use core::time::Duration;

use qwp_proto::upgrade::{self, UpgradeError};
use sf_core::config::{Auth, Config, Transport};
use tokio_tungstenite::tungstenite::http::header::{self, HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::dial::{Dialer, SharedDialer};
use super::tls::{TlsSetup, TlsSetupError};

/// Why [`ConnectSettings`] could not be built from a configuration.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The client id cannot be sent as a header.
    #[error("invalid client id: {0}")]
    ClientId(#[from] UpgradeError),
    /// The credentials cannot be sent as an `Authorization` header.
    #[error("{0}")]
    Credentials(CredentialsError),
    /// A QWP header from `qwp_proto::upgrade` is not a valid HTTP header
    /// (a defect in those constants, kept as an error rather than a panic).
    #[error("header {name} cannot be sent in an HTTP request")]
    InvalidHeader {
        /// The header name.
        name: &'static str,
    },
    /// The TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] TlsSetupError),
}

/// Why the credentials cannot go into an `Authorization` header. The
/// offending value is never printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// RFC 7617 forbids `:` in the user id: the server would split there.
    #[error("username contains ':', which HTTP Basic auth cannot carry")]
    ColonInUsername,
    /// A control character (CR, LF, …) would break or inject headers, and
    /// a non-ASCII character is not allowed in a header value.
    #[error("{0} contains a control or non-ASCII character, which an HTTP header cannot carry")]
    UnsendableCharacter(&'static str),
}

/// The per-sender connection settings: everything [`super::connect`] needs
/// besides the host.
///
/// Built once by [`ConnectSettings::from_config`]; building validates the
/// client id and credentials, and loads the TLS roots, so a connection
/// attempt can only fail for reasons of the network or the server.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    pub(crate) transport: Transport,
    pub(crate) path: &'static str,
    /// QWP headers, then `Authorization` (marked sensitive) if any.
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) tls: Option<TlsSetup>,
    pub(crate) auth_timeout: Duration,
    pub(crate) durable_ack_requested: bool,
    pub(crate) websocket: WebSocketConfig,
    /// Opens each attempt's byte stream ([`super::TcpDialer`] unless
    /// replaced).
    pub(crate) dialer: SharedDialer,
}

impl ConnectSettings {
    /// Settings for `config`'s transport, auth, TLS, durable-ACK request and
    /// `auth_timeout_ms`, sending `client_id` as `X-QWP-Client-Id` (empty:
    /// header omitted).
    ///
    /// Reads the `tls_roots` file or the system trust store for `wss::`:
    /// blocking file I/O, meant for sender construction, not the I/O loop.
    pub fn from_config(config: &Config, client_id: &str) -> Result<ConnectSettings, SettingsError> {
        let durable_ack_requested = config.durable_ack().request;
        let mut headers = Vec::new();
        for (name, value) in upgrade::request_headers(client_id, durable_ack_requested)? {
            // `request_headers` already refused every byte outside visible
            // ASCII and space, so these conversions cannot fail.
            let invalid = |_| SettingsError::InvalidHeader { name };
            let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(invalid)?;
            let value =
                HeaderValue::from_str(&value).map_err(|_| SettingsError::InvalidHeader { name })?;
            headers.push((header_name, value));
        }
        if let Some(value) = authorization(config.auth()).map_err(SettingsError::Credentials)? {
            headers.push((header::AUTHORIZATION, value));
        }
        let tls = match config.tls() {
            Some(tls) if config.transport() == Transport::Wss => Some(TlsSetup::new(tls)?),
            _ => None,
        };
        Ok(ConnectSettings {
            transport: config.transport(),
            path: upgrade::PATH_WRITE_V4,
            headers,
            tls,
            auth_timeout: config.reconnect().auth_timeout,
            durable_ack_requested,
            websocket: WebSocketConfig::default(),
            dialer: SharedDialer::default(),
        })
    }

    /// These settings with every attempt's byte stream opened by `dialer`
    /// instead of a TCP connect; TLS (for `wss::`) and the upgrade run over
    /// the stream it returns.
    pub fn with_dialer(self, dialer: impl Dialer) -> ConnectSettings {
        self.with_shared_dialer(std::sync::Arc::new(dialer))
    }

    /// [`ConnectSettings::with_dialer`] with a dialer already shared.
    pub fn with_shared_dialer(mut self, dialer: std::sync::Arc<dyn Dialer>) -> ConnectSettings {
        self.dialer = SharedDialer(dialer);
        self
    }

    /// Whether the upgrade asks for durable ACKs (the core needs this to
    /// classify the answer).
    pub fn durable_ack_requested(&self) -> bool {
        self.durable_ack_requested
    }

    /// The bound on the wait for the upgrade response (`auth_timeout_ms`).
    pub fn auth_timeout(&self) -> Duration {
        self.auth_timeout
    }

    /// The transport (`ws` or `wss`).
    pub fn transport(&self) -> Transport {
        self.transport
    }
}

/// The `Authorization` header for `auth`, marked sensitive so `http` never
/// prints it.
fn authorization(auth: &Auth) -> Result<Option<HeaderValue>, CredentialsError> {
    let value = match auth {
        Auth::None => return Ok(None),
        Auth::Basic { username, password } => {
            if username.contains(':') {
                return Err(CredentialsError::ColonInUsername);
            }
            check_no_controls(username, "username")?;
            check_no_controls(password.expose(), "password")?;
            let credentials = format!("{username}:{}", password.expose());
            format!("Basic {}", STANDARD.encode(credentials.as_bytes()))
        }
        Auth::Bearer { token } => {
            // Sent verbatim, so it must be visible ASCII (RFC 6750's
            // b64token is a subset); `http` would let raw UTF-8 through as
            // obs-text, which servers read differently.
            if !token.expose().bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                return Err(CredentialsError::UnsendableCharacter("token"));
            }
            format!("Bearer {}", token.expose())
        }
    };
    let mut value = HeaderValue::from_str(&value)
        .map_err(|_| CredentialsError::UnsendableCharacter("the Authorization header"))?;
    value.set_sensitive(true);
    Ok(Some(value))
}

fn check_no_controls(value: &str, what: &'static str) -> Result<(), CredentialsError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(CredentialsError::UnsendableCharacter(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_core::config::Secret;

    fn from_conf(conf: &str) -> Result<ConnectSettings, SettingsError> {
        ConnectSettings::from_config(&Config::from_conf(conf).unwrap(), "rust/0.1.0")
    }

    fn header<'a>(settings: &'a ConnectSettings, name: &str) -> Option<&'a HeaderValue> {
        settings
            .headers
            .iter()
            .find(|(n, _)| n.as_str().eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    #[test]
    fn basic_auth_is_base64_of_user_colon_pass_and_sensitive() {
        let s = from_conf("ws::addr=h;username=user;password=pass;").unwrap();
        let auth = header(&s, "authorization").unwrap();
        assert_eq!(auth.as_bytes(), b"Basic dXNlcjpwYXNz");
        assert!(auth.is_sensitive());
        // UTF-8 credentials are encoded as their bytes.
        let s = from_conf("ws::addr=h;username=jürgen;password=pässword;").unwrap();
        assert_eq!(
            header(&s, "authorization").unwrap().as_bytes(),
            format!("Basic {}", STANDARD.encode("jürgen:pässword".as_bytes())).as_bytes()
        );
    }

    #[test]
    fn bearer_auth_is_the_token_verbatim_and_sensitive() {
        let s = from_conf("ws::addr=h;token=abc.def-ghi;").unwrap();
        let auth = header(&s, "authorization").unwrap();
        assert_eq!(auth.as_bytes(), b"Bearer abc.def-ghi");
        assert!(auth.is_sensitive());
    }

    #[test]
    fn qwp_headers_follow_the_config_and_client_id() {
        let s = from_conf("ws::addr=h;request_durable_ack=on;auth_timeout_ms=1234;").unwrap();
        assert_eq!(header(&s, "x-qwp-max-version").unwrap(), "1");
        assert_eq!(header(&s, "x-qwp-client-id").unwrap(), "rust/0.1.0");
        assert_eq!(header(&s, "x-qwp-request-durable-ack").unwrap(), "true");
        assert!(header(&s, "authorization").is_none());
        assert!(s.durable_ack_requested());
        assert_eq!(s.auth_timeout(), Duration::from_millis(1234));
        assert!(s.tls.is_none());

        let s = from_conf("ws::addr=h;").unwrap();
        assert!(header(&s, "x-qwp-request-durable-ack").is_none());
        assert!(!s.durable_ack_requested());
    }

    #[test]
    fn colon_in_basic_username_is_refused() {
        let auth = Auth::Basic {
            username: "us:er".to_owned(),
            password: Secret::new("pass"),
        };
        assert_eq!(authorization(&auth), Err(CredentialsError::ColonInUsername));
    }

    #[test]
    fn header_breaking_credentials_are_refused_without_echoing_them() {
        let token = Auth::Bearer {
            token: Secret::new("abc\r\nX-Evil: 1"),
        };
        let err = authorization(&token).unwrap_err();
        assert_eq!(err, CredentialsError::UnsendableCharacter("token"));
        assert!(!err.to_string().contains("Evil"));
        // Non-ASCII cannot go into a header value verbatim (Bearer is not
        // encoded, unlike Basic).
        let token = Auth::Bearer {
            token: Secret::new("tökén"),
        };
        assert!(matches!(
            authorization(&token),
            Err(CredentialsError::UnsendableCharacter(_))
        ));
        let basic = Auth::Basic {
            username: "user".to_owned(),
            password: Secret::new("pa\nss"),
        };
        assert_eq!(
            authorization(&basic),
            Err(CredentialsError::UnsendableCharacter("password"))
        );
    }

    #[test]
    fn client_id_that_would_inject_headers_is_refused() {
        let config = Config::from_conf("ws::addr=h;").unwrap();
        assert!(matches!(
            ConnectSettings::from_config(&config, "id\r\nX-Evil: 1"),
            Err(SettingsError::ClientId(_))
        ));
    }
}
