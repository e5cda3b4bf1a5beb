//! One connection attempt to one host: TCP, optional TLS, then the HTTP
//! upgrade to `/write/v4`. Policy-free: the outcome is either the server's
//! HTTP answer (any status, with its headers, for the core to classify) or
//! a transport failure tagged with the stage that failed.

use core::fmt;
use core::time::Duration;
use std::io;

use rustls::pki_types::ServerName;
use sf_core::config::HostPort;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderMap;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::MaybeTlsStream;

use super::connection::Connection;
use super::dial::BoxedStream;
use super::settings::ConnectSettings;

/// The fixed bound on the TLS handshake (failover.md: TCP connect uses the
/// OS timeout, TLS a fixed 5 s, and `auth_timeout_ms` bounds only the wait
/// for the upgrade response).
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The stage of a connection attempt that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectStage {
    /// Name resolution or the TCP connect (refused, unreachable, OS
    /// timeout); with another [`Dialer`](super::Dialer), its failure to
    /// open the stream.
    Tcp,
    /// The TLS handshake (certificate rejected, alert, reset, or not done
    /// within [`TLS_HANDSHAKE_TIMEOUT`]).
    Tls,
    /// The HTTP upgrade failed at the transport or protocol level (reset,
    /// EOF, a malformed response, a `101` that breaks RFC 6455). A
    /// well-formed non-`101` answer is not a failure: see
    /// [`UpgradeResult::Rejected`].
    Upgrade,
    /// No upgrade response within `auth_timeout_ms`.
    Timeout,
}

impl ConnectStage {
    /// The stage as a short lower-case word for logs (`tcp`, `tls`,
    /// `upgrade`, `timeout`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectStage::Tcp => "tcp",
            ConnectStage::Tls => "tls",
            ConnectStage::Upgrade => "upgrade",
            ConnectStage::Timeout => "timeout",
        }
    }
}

impl fmt::Display for ConnectStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A connection attempt that failed below HTTP: the I/O task reports it to
/// the core as `ConnectFailed { host, reason }`.
#[derive(Debug, thiserror::Error)]
#[error("connecting to {host} failed at the {stage} stage: {cause}")]
pub struct ConnectError {
    /// The host tried.
    pub host: HostPort,
    /// Where it failed.
    pub stage: ConnectStage,
    /// What went wrong.
    #[source]
    pub cause: ConnectCause,
}

/// The underlying reason of a [`ConnectError`].
#[derive(Debug, thiserror::Error)]
pub enum ConnectCause {
    /// A socket or TLS error (TLS failures arrive as I/O errors wrapping a
    /// `rustls::Error`).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The WebSocket handshake failed (malformed HTTP, a `101` without a
    /// valid `Sec-WebSocket-Accept`, …).
    #[error("{0}")]
    WebSocket(#[from] WsError),
    /// The host cannot be a TLS server name.
    #[error("{host:?} is not a valid TLS server name")]
    InvalidServerName {
        /// The host as configured.
        host: String,
    },
    /// The stage did not finish within its bound.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

/// The server's HTTP answer to the upgrade request, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeResponse {
    /// The host that answered.
    pub host: HostPort,
    /// The HTTP status (`101` on success).
    pub status: u16,
    /// The response headers in arrival order (names lower-case, values as
    /// raw bytes); repeated headers keep every occurrence.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl UpgradeResponse {
    fn new(host: &HostPort, status: u16, headers: &HeaderMap) -> UpgradeResponse {
        UpgradeResponse {
            host: host.clone(),
            status,
            headers: headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
                .collect(),
        }
    }

    /// The headers as `(name, value)` pairs, the shape
    /// `qwp_proto::upgrade::classify_upgrade` takes.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone {
        self.headers.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }
}

/// The outcome of an upgrade that reached HTTP: the I/O task reports the
/// response to the core as `Connected { host, status, headers }` and the
/// core decides what it means.
#[derive(Debug)]
pub enum UpgradeResult {
    /// `101 Switching Protocols` with a valid WebSocket handshake: the
    /// connection is live. The core may still refuse it (version out of
    /// range, durable ACK not echoed); the I/O task then closes it.
    Switched {
        /// The `101` and its headers.
        response: UpgradeResponse,
        /// The live WebSocket.
        connection: Connection,
    },
    /// Any other status (401, 403, 421, 503, …): no connection.
    Rejected(UpgradeResponse),
}

impl UpgradeResult {
    /// The server's answer, whatever the outcome.
    pub fn response(&self) -> &UpgradeResponse {
        match self {
            UpgradeResult::Switched { response, .. } | UpgradeResult::Rejected(response) => {
                response
            }
        }
    }

    /// The answer and, for a `101`, the connection.
    pub fn into_parts(self) -> (UpgradeResponse, Option<Connection>) {
        match self {
            UpgradeResult::Switched {
                response,
                connection,
            } => (response, Some(connection)),
            UpgradeResult::Rejected(response) => (response, None),
        }
    }
}

/// One connection attempt to `host`: the stream from the settings'
/// [`Dialer`](super::Dialer) (default: TCP connect, OS timeout), TLS for
/// `wss` (bounded by [`TLS_HANDSHAKE_TIMEOUT`]), then the upgrade to
/// `/write/v4` with the QWP and auth headers, the wait for its response
/// bounded by `auth_timeout_ms`.
///
/// No retry, no classification: any well-formed HTTP answer is returned as
/// an [`UpgradeResult`]; only transport failures are errors.
pub async fn connect(
    host: &HostPort,
    settings: &ConnectSettings,
) -> Result<UpgradeResult, ConnectError> {
    let fail = |stage, cause| ConnectError {
        host: host.clone(),
        stage,
        cause,
    };

    let tcp: BoxedStream = settings
        .dialer
        .0
        .dial(host)
        .await
        .map_err(|e| fail(ConnectStage::Tcp, e.into()))?;

    let stream = match &settings.tls {
        None => MaybeTlsStream::Plain(tcp),
        Some(tls) => {
            if tls.verify_off {
                tracing::warn!(
                    %host,
                    "tls_verify=unsafe_off: the server certificate is not verified"
                );
            }
            let server_name = ServerName::try_from(host.host().to_owned()).map_err(|_| {
                fail(
                    ConnectStage::Tls,
                    ConnectCause::InvalidServerName {
                        host: host.host().to_owned(),
                    },
                )
            })?;
            let handshake = TlsConnector::from(tls.client.clone()).connect(server_name, tcp);
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok(stream)) => MaybeTlsStream::Rustls(stream),
                Ok(Err(e)) => return Err(fail(ConnectStage::Tls, e.into())),
                Err(_) => {
                    return Err(fail(
                        ConnectStage::Tls,
                        ConnectCause::TimedOut(TLS_HANDSHAKE_TIMEOUT),
                    ))
                }
            }
        }
    };

    let url = format!("{}://{host}{}", settings.transport.scheme(), settings.path);
    let mut request = url
        .into_client_request()
        .map_err(|e| fail(ConnectStage::Upgrade, e.into()))?;
    for (name, value) in &settings.headers {
        request.headers_mut().append(name.clone(), value.clone());
    }

    let upgrade =
        tokio_tungstenite::client_async_with_config(request, stream, Some(settings.websocket));
    match tokio::time::timeout(settings.auth_timeout, upgrade).await {
        Err(_) => Err(fail(
            ConnectStage::Timeout,
            ConnectCause::TimedOut(settings.auth_timeout),
        )),
        Ok(Ok((websocket, response))) => Ok(UpgradeResult::Switched {
            response: UpgradeResponse::new(host, response.status().as_u16(), response.headers()),
            connection: Connection::new(host.clone(), websocket),
        }),
        // tungstenite turns every non-101 answer into `Error::Http`: that is
        // the server speaking, not a transport failure.
        Ok(Err(WsError::Http(response))) => Ok(UpgradeResult::Rejected(UpgradeResponse::new(
            host,
            response.status().as_u16(),
            response.headers(),
        ))),
        Ok(Err(e)) => Err(fail(ConnectStage::Upgrade, e.into())),
    }
}
