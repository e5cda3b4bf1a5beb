//! A tiny in-test WebSocket server on 127.0.0.1 for the `net_*` tests: it
//! records the upgrade request, answers it with a chosen status and headers,
//! and then runs a per-test script on the accepted WebSocket.

#![allow(dead_code)] // each test file uses a different subset

use std::future::Future;
use std::sync::Arc;

use sf_core::config::{Config, HostPort};
use sf_io_tokio::net::{connect, ConnectSettings, EventReceiver, FrameSender, UpgradeResult};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue, StatusCode};
use tokio_tungstenite::WebSocketStream;

/// What the test server saw in the upgrade request.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The request path.
    pub path: String,
    /// Every header, names lower-case, values lossily decoded.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// How the test server answers the upgrade.
#[derive(Debug, Clone)]
pub enum Answer {
    /// `101` with these extra headers.
    Accept(Vec<(&'static str, &'static str)>),
    /// This status (not 101) with these headers.
    Reject(u16, Vec<(&'static str, &'static str)>),
}

/// A listener on an ephemeral 127.0.0.1 port.
pub async fn listener() -> (TcpListener, HostPort) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, HostPort::new("127.0.0.1", port).unwrap())
}

/// Serves one connection on a plain TCP listener: records the request,
/// answers with `answer`, and on a `101` runs `script` on the WebSocket.
pub async fn serve_one<F, Fut>(
    answer: Answer,
    script: F,
) -> (HostPort, oneshot::Receiver<RecordedRequest>)
where
    F: FnOnce(WebSocketStream<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (listener, host) = listener().await;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        handshake_and_run(tcp, answer, tx, script).await;
    });
    (host, rx)
}

/// Serves one connection over TLS with `server_config`.
pub async fn serve_one_tls<F, Fut>(
    server_config: Arc<rustls::ServerConfig>,
    script: F,
) -> (HostPort, oneshot::Receiver<RecordedRequest>)
where
    F: FnOnce(WebSocketStream<tokio_rustls::server::TlsStream<TcpStream>>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (listener, host) = listener().await;
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        // A client that refuses our certificate aborts the handshake:
        // nothing more to serve then.
        let Ok(tls) = tokio_rustls::TlsAcceptor::from(server_config)
            .accept(tcp)
            .await
        else {
            return;
        };
        handshake_and_run(tls, Answer::Accept(vec![]), tx, script).await;
    });
    (host, rx)
}

// The callback's error type is tungstenite's `ErrorResponse`, not ours.
#[allow(clippy::result_large_err)]
async fn handshake_and_run<S, F, Fut>(
    stream: S,
    answer: Answer,
    record: oneshot::Sender<RecordedRequest>,
    script: F,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(WebSocketStream<S>) -> Fut,
    Fut: Future<Output = ()>,
{
    let callback = move |request: &Request, mut response: Response| {
        let _ = record.send(RecordedRequest {
            path: request.uri().path().to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
        });
        match answer {
            Answer::Accept(headers) => {
                for (name, value) in headers {
                    response.headers_mut().append(
                        HeaderName::from_static(name),
                        HeaderValue::from_static(value),
                    );
                }
                Ok(response)
            }
            Answer::Reject(status, headers) => {
                let mut error = ErrorResponse::new(Some("rejected".to_owned()));
                *error.status_mut() = StatusCode::from_u16(status).unwrap();
                for (name, value) in headers {
                    error.headers_mut().append(
                        HeaderName::from_static(name),
                        HeaderValue::from_static(value),
                    );
                }
                Err(error)
            }
        }
    };
    if let Ok(websocket) = tokio_tungstenite::accept_hdr_async(stream, callback).await {
        script(websocket).await;
    }
}

/// Settings from a connect string.
pub fn settings(conf: &str) -> ConnectSettings {
    ConnectSettings::from_config(&Config::from_conf(conf).unwrap(), "rust-test/0.1").unwrap()
}

/// Connects and expects a `101`; returns the two halves.
pub async fn connect_ok(
    host: &HostPort,
    settings: &ConnectSettings,
) -> (FrameSender, EventReceiver) {
    match connect(host, settings).await.unwrap() {
        UpgradeResult::Switched {
            response,
            connection,
        } => {
            assert_eq!(response.status, 101);
            connection.split()
        }
        UpgradeResult::Rejected(response) => panic!("upgrade rejected: {response:?}"),
    }
}
