//! One WebSocket connection: the upgrade, then message numbering, decoding
//! with the connection's symbol dictionary, commits, responses, durable
//! ACKs and the per-message fault switches.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use qwp_proto::decoder::ConnectionDecoder;
use qwp_proto::response::{DurableAckFrame, ErrorFrame, OkFrame, TableSeqTxn};
use qwp_proto::status::STATUS_PARSE_ERROR;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use crate::config::DurableAckMode;
use crate::faults::{CloseAction, CloseAfter, ErrorOn, MessageIndex, OkDelivery, RejectUpgrades};
use crate::handshake::{self, Accepted, Policy};
use crate::row::ConnectionId;
use crate::server::{lock, Shared};

/// How long a closing connection waits for the peer's close reply.
const CLOSE_DRAIN: Duration = Duration::from_secs(5);

/// A byte stream a connection can be served over (a TCP socket, or any
/// other transport handed to [`crate::Server::serve`]).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

type Ws<S> = WebSocketStream<S>;

/// Serves one connection until it ends.
pub(crate) async fn run<S: Io>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let config = WebSocketConfig::default()
        .max_message_size(Some(shared.max_message_bytes))
        .max_frame_size(Some(shared.max_message_bytes));
    let mut accepted = None;
    // tungstenite's upgrade callback must return its `ErrorResponse`.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let policy_reject = take_reject(&shared, req);
        let faults = lock(&shared.faults).faults.clone();
        let policy = Policy {
            auth: shared.auth.as_ref(),
            durable_supported: shared.durable_mode != DurableAckMode::Off,
            reject: policy_reject,
            version_header: faults.version_header,
            omit_durable_echo: faults.omit_durable_echo,
        };
        match handshake::decide(req, resp, &policy) {
            Ok((acc, resp)) => {
                accepted = Some(acc);
                Ok(resp)
            }
            Err(e) => {
                tracing::info!(%peer, path = %req.uri(), status = %e.status(), "upgrade refused");
                shared.update_stats(|s| s.upgrades_rejected += 1);
                Err(e)
            }
        }
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await;
    let (ws, accepted) = match (ws, accepted) {
        (Ok(ws), Some(acc)) => (ws, acc),
        (Err(e), _) => {
            tracing::debug!(%peer, error = %e, "upgrade did not complete");
            return;
        }
        (Ok(_), None) => return,
    };
    let id = shared.next_connection_id();
    tracing::info!(connection = %id, %peer, version = accepted.version, durable = accepted.durable, "connection open");
    shared.update_stats(|s| {
        s.connections += 1;
        s.open_connections += 1;
    });
    let mut conn = Connection::new(Arc::clone(&shared), id, accepted);
    let reason = conn.serve(ws, shutdown).await;
    tracing::info!(connection = %id, messages = conn.next_seq, %reason, "connection closed");
    shared.update_stats(|s| {
        s.open_connections = s.open_connections.saturating_sub(1);
        s.closed_connections += 1;
    });
}

/// Consumes one injected upgrade reject if any remain; requests to other
/// paths never do.
fn take_reject(shared: &Shared, req: &Request) -> Option<crate::faults::UpgradeReject> {
    if !handshake::is_ingest_path(req) {
        return None;
    }
    let mut state = lock(&shared.faults);
    let RejectUpgrades { count, with } = state.faults.reject_upgrades.clone()?;
    if state.upgrades_rejected < count {
        state.upgrades_rejected += 1;
        Some(with)
    } else {
        None
    }
}

/// A commit awaiting durability on this connection.
#[derive(Debug)]
struct PendingDurable {
    commit: u64,
    at: Instant,
    tables: Vec<TableSeqTxn>,
}

/// What a processed message asks the loop to do next.
enum Next {
    Continue,
    Close(CloseAction),
}

struct Connection {
    shared: Arc<Shared>,
    id: ConnectionId,
    durable: bool,
    decoder: ConnectionDecoder,
    /// The next message's wire sequence (= messages received so far).
    next_seq: i64,
    /// Responses waiting for their time (FIFO; only non-empty when OKs are
    /// delayed).
    outbox: VecDeque<(Instant, Message, Kind)>,
    pending_durable: VecDeque<PendingDurable>,
    durable_sent: HashMap<String, i64>,
}

/// Which counter a sent frame bumps.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Ok,
    Error,
}

impl Connection {
    fn new(shared: Arc<Shared>, id: ConnectionId, accepted: Accepted) -> Connection {
        Connection {
            shared,
            id,
            durable: accepted.durable,
            decoder: ConnectionDecoder::new(),
            next_seq: 0,
            outbox: VecDeque::new(),
            pending_durable: VecDeque::new(),
            durable_sent: HashMap::new(),
        }
    }

    /// Runs the connection; returns why it ended.
    async fn serve<S: Io>(&mut self, mut ws: Ws<S>, mut shutdown: watch::Receiver<bool>) -> String {
        if let Some(action) = self.close_due() {
            return close(&mut ws, action).await;
        }
        loop {
            let due = self.outbox.front().map(|(at, _, _)| *at);
            tokio::select! {
                // An error means the server is gone: stop too.
                _ = async { shutdown.wait_for(|stop| *stop).await.is_ok() } => {
                    return close(&mut ws, CloseAction::Code(u16::from(CloseCode::Away))).await;
                }
                () = sleep_until(due), if due.is_some() => {
                    if let Err(e) = self.send_due(&mut ws).await {
                        return format!("send failed: {e}");
                    }
                }
                inbound = ws.next() => {
                    let next = match inbound {
                        None => return "peer disconnected".to_owned(),
                        Some(Err(tungstenite::Error::Capacity(e))) => {
                            tracing::warn!(connection = %self.id, error = %e, "message too big");
                            return close(&mut ws, CloseAction::Code(u16::from(CloseCode::Size))).await;
                        }
                        Some(Err(e)) => return format!("read failed: {e}"),
                        Some(Ok(Message::Binary(bytes))) => self.on_message(&bytes),
                        Some(Ok(Message::Text(_))) => self.on_text(),
                        Some(Ok(Message::Ping(_))) => Next::Continue,
                        Some(Ok(Message::Close(frame))) => {
                            // tungstenite has queued the close reply; flush it.
                            let _ = ws.flush().await;
                            drain(&mut ws).await;
                            return format!("closed by peer ({:?})", frame.map(|f| u16::from(f.code)));
                        }
                        Some(Ok(Message::Pong(_) | Message::Frame(_))) => continue,
                    };
                    // Every binary/text message and PING is inbound activity.
                    if let Err(e) = self.send_due(&mut ws).await {
                        return format!("send failed: {e}");
                    }
                    if let Err(e) = self.flush_durable(&mut ws).await {
                        return format!("send failed: {e}");
                    }
                    if let Next::Close(action) = next {
                        return close(&mut ws, action).await;
                    }
                }
            }
        }
    }

    /// Numbers, decodes, commits and answers one binary message.
    fn on_message(&mut self, bytes: &[u8]) -> Next {
        let seq = self.next_seq;
        self.next_seq += 1;
        let (faults, global) = {
            let mut state = lock(&self.shared.faults);
            let global = state.messages;
            state.messages += 1;
            (state.faults.clone(), global)
        };
        self.shared.update_stats(|s| s.messages += 1);
        let response = match self.decoder.decode(bytes) {
            Err(e) => {
                tracing::warn!(connection = %self.id, seq, error = %e, "message does not decode");
                error_frame(STATUS_PARSE_ERROR, seq, &format!("parse error: {e}"))
            }
            Ok((message, _)) => match injected_error(&faults, seq, global) {
                Some(status) => error_frame(
                    status,
                    seq,
                    &format!("injected fault: status {status:#04x} on message {seq}"),
                ),
                None => {
                    let committed = lock(&self.shared.store).commit(self.id, seq, &message);
                    match committed {
                        Ok(commit) => {
                            self.shared.update_stats(|s| s.rows += commit.rows);
                            if self.durable && !commit.tables.is_empty() {
                                self.pending_durable.push_back(PendingDurable {
                                    commit: commit.number,
                                    at: Instant::now(),
                                    tables: commit.tables.clone(),
                                });
                            }
                            Reply::Ok(OkFrame {
                                sequence: seq,
                                tables: commit.tables,
                            })
                        }
                        Err(e) => {
                            tracing::warn!(connection = %self.id, seq, error = %e, "message rejected");
                            error_frame(e.status(), seq, &e.to_string())
                        }
                    }
                }
            },
        };
        self.enqueue(response, faults.ok_delivery);
        match faults.close_after {
            Some(CloseAfter { messages, action }) if self.next_seq as u64 >= messages => {
                Next::Close(action)
            }
            _ => Next::Continue,
        }
    }

    /// A text message is not a QWP message: it takes a sequence and gets
    /// PARSE_ERROR.
    fn on_text(&mut self) -> Next {
        let seq = self.next_seq;
        self.next_seq += 1;
        lock(&self.shared.faults).messages += 1;
        self.shared.update_stats(|s| s.messages += 1);
        tracing::warn!(connection = %self.id, seq, "text frame instead of a binary QWP message");
        let faults = lock(&self.shared.faults).faults.clone();
        self.enqueue(
            error_frame(
                STATUS_PARSE_ERROR,
                seq,
                "parse error: text frame; QWP messages are binary",
            ),
            OkDelivery::Send,
        );
        match faults.close_after {
            Some(CloseAfter { messages, action }) if self.next_seq as u64 >= messages => {
                Next::Close(action)
            }
            _ => Next::Continue,
        }
    }

    /// The close switch already due before any message (`messages: 0`).
    fn close_due(&self) -> Option<CloseAction> {
        match lock(&self.shared.faults).faults.close_after {
            Some(CloseAfter {
                messages: 0,
                action,
            }) => Some(action),
            _ => None,
        }
    }

    /// Queues a response according to the OK delivery switch, keeping FIFO
    /// order.
    fn enqueue(&mut self, response: Reply, delivery: OkDelivery) {
        let now = Instant::now();
        let after_queue = self.outbox.back().map_or(now, |(at, _, _)| (*at).max(now));
        let (frame, kind, at) = match response {
            Reply::Ok(ok) => match delivery {
                OkDelivery::Withhold => {
                    self.shared.update_stats(|s| s.oks_withheld += 1);
                    return;
                }
                OkDelivery::Send => (encode_ok(&ok), Kind::Ok, after_queue),
                OkDelivery::Delay(d) => match now.checked_add(d) {
                    Some(due) => (encode_ok(&ok), Kind::Ok, after_queue.max(due)),
                    // A delay beyond the clock's range never elapses.
                    None => {
                        self.shared.update_stats(|s| s.oks_withheld += 1);
                        return;
                    }
                },
            },
            Reply::Error(frame) => {
                let mut out = Vec::new();
                frame.encode_into(&mut out);
                (out, Kind::Error, after_queue)
            }
        };
        self.outbox.push_back((at, Message::binary(frame), kind));
    }

    /// Sends every queued response whose time has come.
    async fn send_due<S: Io>(
        &mut self,
        ws: &mut Ws<S>,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let now = Instant::now();
        while self.outbox.front().is_some_and(|(at, _, _)| *at <= now) {
            let Some((_, message, kind)) = self.outbox.pop_front() else {
                break;
            };
            ws.send(message).await?;
            self.shared.update_stats(|s| match kind {
                Kind::Ok => s.oks_sent += 1,
                Kind::Error => s.errors_sent += 1,
            });
        }
        Ok(())
    }

    /// On inbound activity: one DURABLE_ACK with every table whose durable
    /// watermark advanced on this connection.
    async fn flush_durable<S: Io>(
        &mut self,
        ws: &mut Ws<S>,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        if !self.durable || self.pending_durable.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let released = lock(&self.shared.store).released();
        let mode = self.shared.durable_mode;
        let mut advanced: BTreeMap<String, i64> = BTreeMap::new();
        while let Some(front) = self.pending_durable.front() {
            let ready = match mode {
                DurableAckMode::Off => false,
                // A delay beyond the clock's range never elapses.
                DurableAckMode::After(delay) => {
                    front.at.checked_add(delay).is_some_and(|t| t <= now)
                }
                DurableAckMode::Manual => front.commit <= released,
            };
            if !ready {
                break;
            }
            if let Some(entry) = self.pending_durable.pop_front() {
                for t in entry.tables {
                    let v = advanced.entry(t.name).or_insert(t.seq_txn);
                    *v = (*v).max(t.seq_txn);
                }
            }
        }
        let tables: Vec<TableSeqTxn> = advanced
            .into_iter()
            .filter(|(name, seq)| self.durable_sent.get(name).is_none_or(|sent| seq > sent))
            .map(|(name, seq)| TableSeqTxn::new(name, seq))
            .collect();
        if tables.is_empty() {
            return Ok(());
        }
        for t in &tables {
            self.durable_sent.insert(t.name.clone(), t.seq_txn);
        }
        let mut out = Vec::new();
        if (DurableAckFrame { tables }).encode_into(&mut out).is_err() {
            // Only over-long names or >65535 tables fail; QWP names are ≤ 127 bytes.
            return Ok(());
        }
        ws.send(Message::binary(out)).await?;
        self.shared.update_stats(|s| s.durable_acks_sent += 1);
        Ok(())
    }
}

/// A response before it is queued.
enum Reply {
    Ok(OkFrame),
    Error(ErrorFrame),
}

fn encode_ok(ok: &OkFrame) -> Vec<u8> {
    let mut out = Vec::new();
    if ok.encode_into(&mut out).is_err() {
        // Table names are at most 127 bytes and a message has at most
        // 65535 blocks, so this cannot happen; fall back to an empty OK
        // rather than leave the sequence unanswered.
        out.clear();
        let empty = OkFrame {
            sequence: ok.sequence,
            tables: Vec::new(),
        };
        let _ = empty.encode_into(&mut out);
    }
    out
}

fn error_frame(status: u8, seq: i64, message: &str) -> Reply {
    match ErrorFrame::new(status, seq, message) {
        Ok(f) => Reply::Error(f),
        // Faults are validated, so status is never 00/02; keep the
        // sequence answered with a PARSE_ERROR if it ever were.
        Err(_) => match ErrorFrame::new(STATUS_PARSE_ERROR, seq, message) {
            Ok(f) => Reply::Error(f),
            Err(_) => Reply::Ok(OkFrame {
                sequence: seq,
                tables: Vec::new(),
            }),
        },
    }
}

/// The status of an injected error for this message, if it is the one.
fn injected_error(faults: &crate::faults::Faults, seq: i64, global: u64) -> Option<u8> {
    let ErrorOn { message, status } = faults.error_on?;
    let hit = match message {
        MessageIndex::PerConnection(n) => u64::try_from(seq).is_ok_and(|s| s == n),
        MessageIndex::Global(n) => global == n,
    };
    hit.then_some(status)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Ends the connection as `action` says; returns the reason for the log.
async fn close<S: Io>(ws: &mut Ws<S>, action: CloseAction) -> String {
    match action {
        CloseAction::Drop => "dropped (fault)".to_owned(),
        CloseAction::Code(code) => {
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: match CloseCode::from(code) {
                    CloseCode::Away => "server shutting down".into(),
                    CloseCode::Size => "message too big".into(),
                    _ => "injected fault".into(),
                },
            };
            let _ = ws.send(Message::Close(Some(frame))).await;
            drain(ws).await;
            format!("closed by server with {code}")
        }
    }
}

/// Reads until the peer finishes the close handshake or [`CLOSE_DRAIN`]
/// passes.
async fn drain<S: Io>(ws: &mut Ws<S>) {
    let _ = tokio::time::timeout(CLOSE_DRAIN, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
