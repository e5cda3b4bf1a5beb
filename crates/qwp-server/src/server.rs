//! The server: [`Server::bind`] starts it on the current tokio runtime and
//! returns a [`ServerHandle`] to inspect, steer and stop it.
//! [`Server::serve`] does the same over any [`Listener`] (a simulated
//! network, a Unix socket, an in-memory transport) instead of a TCP port.
//!
//! Behaviour where the spec leaves a choice:
//! - **Wire sequence**: every binary message takes the next sequence, from 0
//!   per connection, whatever its fate (OK, PARSE_ERROR, injected error), so
//!   that the client's `fsn = fsnAtZero + seq` mapping holds. A text message
//!   is not QWP: it takes a sequence too and is answered with PARSE_ERROR.
//! - **seqTxn**: one counter per table, server-wide, starting at 1. A
//!   message advances it by one for each table it has at least one row for
//!   (several blocks of one table count once); the OK lists those tables
//!   in order of first appearance. A message with no rows gets an empty OK.
//!   Rejected messages (parse errors, injected errors, invalid table names
//!   → WRITE_ERROR, persistence failures → INTERNAL_ERROR) advance nothing.
//! - **DURABLE_ACK**: tracked per connection. Each OK'd commit becomes
//!   durable after [`DurableAckMode::After`] or on
//!   [`ServerHandle::release_durable`]; on inbound activity (a binary
//!   message — after its own response — or a PING) the connection sends
//!   one frame with the cumulative seqTxn of every table whose durable
//!   watermark advanced. A CLOSE from the client cannot trigger one:
//!   tungstenite forbids writing after a close frame was received.
//! - **Shutdown** closes every connection with 1001 and waits up to
//!   [`SHUTDOWN_GRACE`] for clients to answer the close handshake.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{Auth, DurableAckMode, ServerConfig};
use crate::faults::{FaultError, Faults};
use crate::persist::Persister;
use crate::row::{ConnectionId, Row};
use crate::store::Store;

/// How long shutdown waits for connections to finish their close handshake.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Counters of what the server has done since it was bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Upgrades accepted.
    pub connections: u64,
    /// Connections currently open.
    pub open_connections: u64,
    /// Connections closed (by either side, after an accepted upgrade).
    pub closed_connections: u64,
    /// Upgrade requests refused (injected rejects, auth, bad path or version).
    pub upgrades_rejected: u64,
    /// Binary (and text) messages received.
    pub messages: u64,
    /// Rows accepted.
    pub rows: u64,
    /// OK frames sent.
    pub oks_sent: u64,
    /// OK frames withheld by [`OkDelivery::Withhold`](crate::OkDelivery::Withhold).
    pub oks_withheld: u64,
    /// Error frames sent (any status).
    pub errors_sent: u64,
    /// DURABLE_ACK frames sent.
    pub durable_acks_sent: u64,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A fault switch is invalid.
    #[error("invalid fault switch: {0}")]
    Faults(#[from] FaultError),
    /// A wait ended before its condition held.
    #[error(transparent)]
    Timeout(#[from] WaitTimeout),
}

/// A [`ServerHandle::wait_for`] deadline passed first; carries the stats
/// at that moment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("condition not reached within {timeout:?}; stats: {stats:?}")]
pub struct WaitTimeout {
    /// The wait's timeout.
    pub timeout: Duration,
    /// The stats when it expired.
    pub stats: Stats,
}

/// Fault switches plus the counters that make them deterministic.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub(crate) faults: Faults,
    /// Upgrades rejected since the faults were set.
    pub(crate) upgrades_rejected: u64,
    /// Messages received since the faults were set.
    pub(crate) messages: u64,
}

/// State shared by the accept loop, the connections and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) auth: Option<Auth>,
    pub(crate) durable_mode: DurableAckMode,
    pub(crate) max_message_bytes: usize,
    pub(crate) store: Mutex<Store>,
    pub(crate) faults: Mutex<FaultState>,
    pub(crate) stats: watch::Sender<Stats>,
    next_connection: AtomicU64,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the
/// state stays consistent: every critical section only appends or counts).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn next_connection_id(&self) -> ConnectionId {
        ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn update_stats(&self, f: impl FnOnce(&mut Stats)) {
        self.stats.send_modify(f);
    }
}

/// A source of incoming connections the server can accept from: a TCP
/// listener by default, any other transport through [`Server::serve`].
pub trait Listener: Send + 'static {
    /// One accepted connection's byte stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection: its stream and the peer's address
    /// (for logs). An error is logged and accepting goes on after a short
    /// pause, as for a TCP listener out of descriptors.
    fn accept(
        &mut self,
    ) -> impl Future<Output = std::io::Result<(Self::Stream, SocketAddr)>> + Send;

    /// The address the listener is bound to.
    fn local_addr(&self) -> std::io::Result<SocketAddr>;
}

impl Listener for TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> std::io::Result<(Self::Stream, SocketAddr)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        // Responses are small and latency-sensitive.
        let _ = stream.set_nodelay(true);
        Ok((stream, peer))
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        TcpListener::local_addr(self)
    }
}

/// Entry point.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Binds `config.bind` and starts accepting on the current tokio runtime.
    pub async fn bind(config: ServerConfig) -> Result<ServerHandle, ServerError> {
        let listener =
            TcpListener::bind(config.bind)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.bind,
                    source,
                })?;
        Server::serve(listener, config).await
    }

    /// Serves the connections `listener` accepts, on the current tokio
    /// runtime, with `config` (whose `bind` is not used). Everything else
    /// (upgrade, numbering, responses, faults, shutdown) is as for
    /// [`Server::bind`].
    pub async fn serve<L: Listener>(
        listener: L,
        config: ServerConfig,
    ) -> Result<ServerHandle, ServerError> {
        config.faults.validate()?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.bind,
            source,
        })?;
        let persister = match &config.data_dir {
            Some(dir) => Some(Persister::open(dir).map_err(|source| ServerError::DataDir {
                path: dir.clone(),
                source,
            })?),
            None => None,
        };
        let shared = Arc::new(Shared {
            auth: config.auth,
            durable_mode: config.durable_ack,
            max_message_bytes: config.max_message_bytes,
            store: Mutex::new(Store::new(persister, config.retain_rows)),
            faults: Mutex::new(FaultState {
                faults: config.faults,
                ..FaultState::default()
            }),
            stats: watch::Sender::new(Stats::default()),
            next_connection: AtomicU64::new(0),
        });
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), shutdown_rx));
        tracing::info!(%local_addr, "qwp-server listening");
        Ok(ServerHandle {
            local_addr,
            shared,
            shutdown: shutdown_tx,
            task: Some(task),
        })
    }
}

async fn accept_loop<L: Listener>(
    mut listener: L,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            // An error means the handle is gone: stop too.
            _ = async { stop.wait_for(|stop| *stop).await.is_ok() } => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(crate::connection::run(
                        Arc::clone(&shared),
                        stream,
                        peer,
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    // Out of descriptors and the like: do not spin on it.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "connections did not close in time; aborting them"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    tracing::info!("qwp-server stopped");
}

/// A running server. Dropping it stops the server without waiting; call
/// [`ServerHandle::shutdown`] to wait for a clean stop.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `ws://<addr>/write/v4`.
    pub fn url(&self) -> String {
        format!(
            "ws://{}{}",
            self.local_addr,
            qwp_proto::upgrade::PATH_WRITE_V4
        )
    }

    /// The rows of `table` in acceptance order (empty if unknown).
    pub fn rows(&self, table: &str) -> Vec<Row> {
        lock(&self.shared.store).rows(table)
    }

    /// Every table's rows, in acceptance order per table.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<Row>> {
        lock(&self.shared.store).snapshot()
    }

    /// The last seqTxn assigned to `table` (0 if none).
    pub fn seq_txn(&self, table: &str) -> i64 {
        lock(&self.shared.store).seq_txn(table)
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        *self.shared.stats.borrow()
    }

    /// Replaces the fault switches; the message and upgrade counters of
    /// [`faults`](crate::faults) restart from 0. Open connections see the
    /// new switches from their next message.
    pub fn set_faults(&self, faults: Faults) -> Result<(), FaultError> {
        faults.validate()?;
        *lock(&self.shared.faults) = FaultState {
            faults,
            ..FaultState::default()
        };
        Ok(())
    }

    /// [`DurableAckMode::Manual`]: every commit so far becomes durable; the
    /// frames go out on each connection's next inbound activity.
    pub fn release_durable(&self) {
        lock(&self.shared.store).release_durable();
    }

    /// Waits until `condition` holds for the stats, or `timeout` passes.
    /// Event-driven (no polling): every stats change re-checks it.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Stats) -> bool,
    ) -> Result<Stats, WaitTimeout> {
        let mut rx = self.shared.stats.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|s| condition(s)))
            .await
            .ok()
            .and_then(|r| r.ok().map(|stats| *stats));
        reached.ok_or_else(|| WaitTimeout {
            timeout,
            stats: self.stats(),
        })
    }

    /// Waits until at least `rows` rows were accepted (over all tables).
    pub async fn wait_for_rows(&self, rows: u64, timeout: Duration) -> Result<Stats, WaitTimeout> {
        self.wait_for(timeout, |s| s.rows >= rows).await
    }

    /// Stops accepting, closes every connection with 1001 and waits for the
    /// connections to finish (at most [`SHUTDOWN_GRACE`]).
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
