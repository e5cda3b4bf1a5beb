//! A live QWP WebSocket: one binary message per QWP frame out, response
//! frames, PONGs and the end of the connection in.
//!
//! The connection is split into a [`FrameSender`] and an [`EventReceiver`]
//! so that waiting for the next inbound event never blocks a send, and a
//! large send never stops inbound traffic from being read (see the module
//! docs of [`super`] for the task model).

use std::io;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use sf_core::config::HostPort;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::dial::BoxedStream;

/// The WebSocket over the dialed stream, plain or wrapped in TLS.
type WsStream = WebSocketStream<MaybeTlsStream<BoxedStream>>;

/// Close code of a clean close (RFC 6455 §7.4.1).
pub const CLOSE_NORMAL: u16 = 1000;

/// RFC 6455 §5.5: a control frame payload is at most 125 bytes, two of
/// which the close code takes.
const MAX_CLOSE_REASON_BYTES: usize = 123;

/// A live WebSocket after a `101`, to be split into its two halves.
#[derive(Debug)]
pub struct Connection {
    host: HostPort,
    // Boxed: the TLS state makes the stream large, and a `Connection`
    // travels inside `UpgradeResult` next to small variants.
    websocket: Box<WsStream>,
}

impl Connection {
    pub(crate) fn new(host: HostPort, websocket: WsStream) -> Connection {
        Connection {
            host,
            websocket: Box::new(websocket),
        }
    }

    /// The host this connection is to.
    pub fn host(&self) -> &HostPort {
        &self.host
    }

    /// The sending and the receiving half. They share the socket; each
    /// may be driven from its own task or both from one task.
    pub fn split(self) -> (FrameSender, EventReceiver) {
        let (sink, stream) = (*self.websocket).split();
        (
            FrameSender {
                host: self.host.clone(),
                sink,
                pings_sent: 0,
            },
            EventReceiver {
                host: self.host,
                stream,
                finished: false,
            },
        )
    }
}

/// A send on the connection failed: the connection is dead (a mid-stream
/// failure for the core); the receiving half reports how it ended.
#[derive(Debug, thiserror::Error)]
#[error("sending to {host} failed: {source}")]
pub struct SendError {
    /// The host of the connection.
    pub host: HostPort,
    /// The WebSocket error.
    #[source]
    pub source: WsError,
}

/// The sending half: QWP frames, PINGs and our close.
///
/// Its methods are not cancel-safe: a send dropped midway may leave the
/// message queued in the WebSocket's write buffer, so run each to
/// completion (or keep the future alive across `select!` iterations).
#[derive(Debug)]
pub struct FrameSender {
    host: HostPort,
    sink: SplitSink<WsStream, Message>,
    pings_sent: u16,
}

impl FrameSender {
    /// Sends one QWP frame as exactly one binary WebSocket message and
    /// flushes it. The bytes are copied (out of the segment mapping) into
    /// the message; no other framing is added.
    pub async fn send_frame(&mut self, frame: &[u8]) -> Result<(), SendError> {
        self.send(Message::Binary(Bytes::copy_from_slice(frame)))
            .await
    }

    /// Sends a WebSocket PING with a 2-byte payload (a wrapping counter,
    /// useful only when reading packet captures; PONG content is ignored)
    /// and flushes it.
    pub async fn ping(&mut self) -> Result<(), SendError> {
        let payload = self.pings_sent.to_be_bytes();
        self.pings_sent = self.pings_sent.wrapping_add(1);
        self.send(Message::Ping(Bytes::copy_from_slice(&payload)))
            .await
    }

    /// Sends our close frame with `code` ([`CLOSE_NORMAL`] on a clean
    /// close) and `reason` (cut to the 123 bytes a close frame can carry)
    /// and flushes it. The server's answering close arrives on the
    /// [`EventReceiver`] as [`NetEvent::Disconnected`].
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), SendError> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: truncate_to_char_boundary(reason, MAX_CLOSE_REASON_BYTES).into(),
        };
        self.send(Message::Close(Some(frame))).await
    }

    async fn send(&mut self, message: Message) -> Result<(), SendError> {
        self.sink.send(message).await.map_err(|source| SendError {
            host: self.host.clone(),
            source,
        })
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary.
fn truncate_to_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// What arrived on the connection; the I/O task hands each to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetEvent {
    /// One binary WebSocket message: one QWP response frame (not decoded
    /// here).
    Received(Bytes),
    /// A PONG (its payload is ignored, sf-client §11).
    Pong,
    /// The connection is over; nothing more will arrive.
    Disconnected {
        /// The code of the server's close frame; `None` when the
        /// connection ended without one (EOF, reset, protocol error) or
        /// the close frame carried no code.
        close_code: Option<u16>,
        /// How it ended.
        reason: DisconnectReason,
    },
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The server sent a close frame; its reason text (often empty).
    ServerClose(String),
    /// The TCP stream ended without a close frame.
    Eof,
    /// A socket error (reset, broken pipe, …).
    Io {
        /// The error kind.
        kind: io::ErrorKind,
        /// The error text.
        message: String,
    },
    /// The server sent a text message: QWP uses binary messages only
    /// (wire-ingress §3), so the stream cannot be trusted any more; a
    /// transient mid-stream failure.
    TextMessage,
    /// A WebSocket protocol violation (malformed frame, oversized
    /// message, …).
    Protocol(String),
    /// The connection had already ended (the close handshake completed, or
    /// an earlier event reported the end).
    Ended,
}

impl core::fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DisconnectReason::ServerClose(reason) if reason.is_empty() => {
                f.write_str("closed by the server")
            }
            DisconnectReason::ServerClose(reason) => write!(f, "closed by the server: {reason}"),
            DisconnectReason::Eof => f.write_str("connection ended without a close frame"),
            DisconnectReason::Io { message, .. } => write!(f, "socket error: {message}"),
            DisconnectReason::TextMessage => {
                f.write_str("server sent a text message; QWP uses binary messages only")
            }
            DisconnectReason::Protocol(message) => {
                write!(f, "WebSocket protocol error: {message}")
            }
            DisconnectReason::Ended => f.write_str("connection already ended"),
        }
    }
}

/// The receiving half: response frames, PONGs and the end of the
/// connection. Server PINGs are answered here, never surfaced.
#[derive(Debug)]
pub struct EventReceiver {
    host: HostPort,
    stream: SplitStream<WsStream>,
    finished: bool,
}

impl EventReceiver {
    /// The next event. Cancel-safe: dropping the future loses nothing, so
    /// it can sit in a `select!` next to the I/O task's other wake-ups.
    ///
    /// After a [`NetEvent::Disconnected`] every later call returns
    /// `Disconnected { close_code: None, reason: Ended }` at once.
    pub async fn next_event(&mut self) -> NetEvent {
        if self.finished {
            return ended(DisconnectReason::Ended);
        }
        loop {
            let Some(item) = self.stream.next().await else {
                self.finished = true;
                return ended(DisconnectReason::Ended);
            };
            match item {
                Ok(Message::Binary(bytes)) => return NetEvent::Received(bytes),
                Ok(Message::Pong(_)) => return NetEvent::Pong,
                // tungstenite queued the PONG while reading the PING; the
                // next read (this loop going round) writes and flushes it
                // before waiting for more input.
                Ok(Message::Ping(_)) => continue,
                Ok(Message::Text(_)) => {
                    tracing::warn!(
                        host = %self.host,
                        "server sent a text WebSocket message; dropping the connection"
                    );
                    self.finished = true;
                    return ended(DisconnectReason::TextMessage);
                }
                Ok(Message::Close(frame)) => {
                    self.finished = true;
                    // tungstenite queued our answering close; one more
                    // non-blocking read flushes it (best effort: a full
                    // socket buffer leaves it to the dropped socket).
                    let _ = self.stream.next().now_or_never();
                    return match frame {
                        Some(frame) => NetEvent::Disconnected {
                            close_code: Some(u16::from(frame.code)),
                            reason: DisconnectReason::ServerClose(frame.reason.as_str().to_owned()),
                        },
                        None => ended(DisconnectReason::ServerClose(String::new())),
                    };
                }
                // Never produced by a read (only used to send raw frames).
                Ok(Message::Frame(_)) => continue,
                Err(error) => {
                    self.finished = true;
                    let reason = match error {
                        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                            DisconnectReason::Eof
                        }
                        WsError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            DisconnectReason::Eof
                        }
                        WsError::Io(e) => DisconnectReason::Io {
                            kind: e.kind(),
                            message: e.to_string(),
                        },
                        WsError::ConnectionClosed | WsError::AlreadyClosed => {
                            DisconnectReason::Ended
                        }
                        other => DisconnectReason::Protocol(other.to_string()),
                    };
                    return ended(reason);
                }
            }
        }
    }
}

fn ended(reason: DisconnectReason) -> NetEvent {
    NetEvent::Disconnected {
        close_code: None,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_to_char_boundary;

    #[test]
    fn close_reason_is_cut_on_a_char_boundary() {
        assert_eq!(truncate_to_char_boundary("short", 123), "short");
        let long = "é".repeat(100); // 200 bytes, 2 per char
        let cut = truncate_to_char_boundary(&long, 123);
        assert_eq!(cut.len(), 122);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate_to_char_boundary(&"a".repeat(200), 123).len(), 123);
    }
}
