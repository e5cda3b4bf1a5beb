//! The I/O task: performs what the engine asks (storage, connect, send,
//! ping, close), feeds back every outcome, and sleeps until the engine's
//! next deadline or the next event. It decides nothing itself (DESIGN §2):
//! every retry, trim, wait and give-up comes from the engine's outputs.
//!
//! One loop iteration: drain `poll_output()` under the lock (cheap outputs
//! such as a header install or a memory segment are done right there; a
//! frame to send is copied out of its segment), perform the slow ones with
//! the lock released (sockets await, file work goes to the blocking pool
//! and reports back through a channel), then `select!` over the producer's
//! wake-up, storage completions, the connection, a connect in flight and
//! the engine's timer.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use sf_core::engine::{EngineWarning, Input, Output};
use sf_core::ring::SegmentName;
use sf_core::segment::SegmentHeader;
use sf_core::storage::{IoFailure, IoId, IoOutcome, StorageOutput};
use sf_core::{Fsn, SegmentGen};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::callbacks::{Event, EventSender};
use super::shared::{io_failure, CloseOutcome, Inner, Segment, Shared};
use crate::fs::{unlink_segment, MemorySegment, SegmentFile, SegmentReader, WatermarkFile};
use crate::net::{
    connect, ConnectError, ConnectSettings, EventReceiver, FrameSender, NetEvent, UpgradeResult,
};
use sf_core::config::HostPort;

type ConnectFuture =
    Pin<Box<dyn Future<Output = (usize, Result<UpgradeResult, ConnectError>)> + Send>>;

/// Where the segment files live (SF mode) or `None` (memory mode).
#[derive(Debug)]
pub(crate) struct SlotFiles {
    pub dir: PathBuf,
    /// `.ack-watermark`, opened on the first request (opening creates an
    /// empty file, which a removal asked for at open then deletes).
    pub watermark: Option<WatermarkFile>,
}

/// Everything the I/O task owns.
pub(crate) struct Driver {
    pub shared: Arc<Shared>,
    pub hosts: Vec<HostPort>,
    pub settings: ConnectSettings,
    pub slot: Option<SlotFiles>,
    pub events: EventSender,
}

/// Work that needs the lock released: sockets and blocking file calls.
enum Action {
    Connect {
        host: usize,
    },
    /// Send the frame at `offset` of `reader`'s segment: read without the
    /// lock (it lies below the published end) and copied once, into the
    /// WebSocket message.
    Send {
        fsn: Fsn,
        reader: Option<SegmentReader>,
        offset: u64,
    },
    Ping,
    Close {
        code: u16,
    },
    Create {
        id: IoId,
        gen: SegmentGen,
        size: u64,
    },
    Sync {
        id: IoId,
        name: SegmentName,
        from: u64,
        upto: u64,
        rewrite: bool,
    },
    Unlink {
        id: IoId,
        name: SegmentName,
        file: Option<SegmentReader>,
    },
    /// Persist `Some(fsn)`, or remove the file (`None`); with `durable`,
    /// fsync the file (or the directory after the removal) before done.
    Watermark {
        id: IoId,
        fsn: Option<Fsn>,
        durable: bool,
    },
}

/// A live connection: its receiving half, polled by the loop, and the
/// queue of its writer task.
struct Link {
    /// Distinguishes this connection's failures from a previous one's.
    id: u64,
    out: mpsc::UnboundedSender<Outgoing>,
    rx: EventReceiver,
}

/// What the writer task of a connection sends, in order.
enum Outgoing {
    Frame {
        fsn: Fsn,
        reader: Option<SegmentReader>,
        offset: u64,
    },
    Ping,
    Close(u16),
}

/// Starts the writer of connection `id`: sends run there, so a peer that
/// stops reading never blocks the loop (W5: the engine's deadlines keep
/// firing), and frames are read below the published end without the lock
/// and copied once, into the message. A failure is reported once on
/// `failures`; dropping the queue ends the task.
fn spawn_writer(
    id: u64,
    mut tx: FrameSender,
    failures: mpsc::UnboundedSender<(u64, String)>,
) -> mpsc::UnboundedSender<Outgoing> {
    let (out, mut queue) = mpsc::unbounded_channel::<Outgoing>();
    tokio::spawn(async move {
        while let Some(item) = queue.recv().await {
            let failure = match item {
                Outgoing::Frame {
                    fsn,
                    reader,
                    offset,
                } => match reader.as_ref().map(|r| r.read_frame(offset)) {
                    Some(Ok(payload)) => match tx.send_frame(payload).await {
                        Ok(()) => None,
                        Err(e) => Some(format!("send failed: {e}")),
                    },
                    // The bytes the engine published cannot be read back:
                    // the connection cannot carry on in FSN order. Drop
                    // it; the engine decides what next.
                    Some(Err(e)) => {
                        error!(%fsn, error = %e, "frame to send is unreadable");
                        Some(format!("frame {fsn} unreadable: {e}"))
                    }
                    None => {
                        error!(%fsn, "frame to send is in no segment held");
                        Some(format!("frame {fsn} is in no segment held"))
                    }
                },
                Outgoing::Ping => tx.ping().await.err().map(|e| format!("ping failed: {e}")),
                Outgoing::Close(code) => {
                    let _ = tx.close(code, "").await;
                    return;
                }
            };
            if let Some(reason) = failure {
                let _ = tx.close(sf_core::engine::CLOSE_GOING_AWAY, "").await;
                let _ = failures.send((id, reason));
                return;
            }
        }
    });
    out
}

/// The reconnect logging rule: one WARN per outage, not per attempt.
#[derive(Default)]
struct OutageLog {
    warned: bool,
    ever_connected: bool,
}

impl Driver {
    /// Runs until the engine reports `Closed` (or the sender is gone).
    pub(crate) async fn run(mut self) {
        let (io_tx, mut io_rx) = mpsc::unbounded_channel::<(IoId, IoOutcome)>();
        let mut link: Option<Link> = None;
        let (fail_tx, mut fail_rx) = mpsc::unbounded_channel::<(u64, String)>();
        let mut next_link_id = 0u64;
        let mut connecting: Option<ConnectFuture> = None;
        let mut outage = OutageLog::default();
        let watermark = self
            .slot
            .take()
            .map(|s| (s.dir, Arc::new(std::sync::Mutex::new(s.watermark))));
        let mut pending_inputs: Vec<OwnedInput> = Vec::new();
        // Blocking file work in flight: awaited before the slot is released
        // so the last watermark, sync or unlink the engine asked for lands
        // before the lock goes (a reopen must not replay acknowledged
        // frames because a watermark write was cut off).
        let mut blocking: Vec<tokio::task::JoinHandle<()>> = Vec::new();

        loop {
            // 1. Feed what happened, drain what the engine wants.
            let (actions, timeout, closed) = {
                let mut g = self.shared.lock();
                let now = self.shared.clock.now();
                for input in pending_inputs.drain(..) {
                    feed(&mut g, now, input);
                }
                let (actions, closed) = self.drain_outputs(&mut g, &mut outage);
                (actions, g.engine.poll_timeout(), closed)
            };
            self.shared.notify_waiters();
            blocking.retain(|h| !h.is_finished());

            // 2. Perform the slow work with the lock released.
            for action in actions {
                match action {
                    Action::Connect { host } => {
                        let Some(addr) = self.hosts.get(host).cloned() else {
                            pending_inputs.push(OwnedInput::ConnectFailed {
                                host,
                                reason: format!("no addr entry {host}"),
                            });
                            continue;
                        };
                        let settings = self.settings.clone();
                        connecting = Some(Box::pin(async move {
                            let r = connect(&addr, &settings).await;
                            (host, r)
                        }));
                    }
                    Action::Send {
                        fsn,
                        reader,
                        offset,
                    } => {
                        if let Some(l) = link.as_ref() {
                            let _ = l.out.send(Outgoing::Frame {
                                fsn,
                                reader,
                                offset,
                            });
                        }
                    }
                    Action::Ping => {
                        if let Some(l) = link.as_ref() {
                            let _ = l.out.send(Outgoing::Ping);
                        }
                    }
                    Action::Close { code } => {
                        connecting = None;
                        // The engine has moved on from that socket: nothing
                        // more is reported about it (its writer's failure,
                        // if any, carries a stale id and is ignored).
                        if let Some(l) = link.take() {
                            let _ = l.out.send(Outgoing::Close(code));
                        }
                    }
                    Action::Create { id, gen, size } => {
                        let tx = io_tx.clone();
                        let shared = Arc::clone(&self.shared);
                        let dir = watermark.as_ref().map(|(d, _)| d.clone());
                        blocking.push(tokio::task::spawn_blocking(move || {
                            // Created and pre-faulted here, off the
                            // producer's path (DESIGN §7: a first touch
                            // costs 400-1200 ns per frame).
                            let created = match dir {
                                Some(dir) => SegmentFile::create_spare(&dir, gen, size)
                                    .and_then(|file| Segment::file(file, 0)),
                                None => MemorySegment::new(gen, size)
                                    .map(prefault_memory)
                                    .and_then(Segment::memory),
                            };
                            let outcome = match created {
                                Ok(seg) => {
                                    shared.lock().segments.insert(SegmentName::Gen(gen), seg);
                                    IoOutcome::Done
                                }
                                Err(e) => {
                                    warn!(error = %e, "creating segment failed");
                                    IoOutcome::Failed(io_failure(&e))
                                }
                            };
                            let _ = tx.send((id, outcome));
                            shared.wake_driver.notify_one();
                        }));
                    }
                    Action::Sync {
                        id,
                        name,
                        from,
                        upto,
                        rewrite,
                    } => {
                        let tx = io_tx.clone();
                        let shared = Arc::clone(&self.shared);
                        // A reader of its own: the sync runs without the
                        // lock, below the published end the producer never
                        // writes again.
                        let reader = self
                            .shared
                            .lock()
                            .segments
                            .get(&name)
                            .map(|seg| seg.writer.reader());
                        blocking.push(tokio::task::spawn_blocking(move || {
                            let outcome = match reader {
                                Some(reader) => {
                                    let r = if rewrite {
                                        reader.resync_range(from, upto)
                                    } else {
                                        reader.sync_range(from, upto)
                                    };
                                    match r {
                                        Ok(upto_offset) => IoOutcome::Synced { upto_offset },
                                        Err(e) => {
                                            warn!(error = %e, "segment sync failed");
                                            IoOutcome::Failed(io_failure(&e))
                                        }
                                    }
                                }
                                None => IoOutcome::Failed(IoFailure::Io { os_code: None }),
                            };
                            let _ = tx.send((id, outcome));
                            shared.wake_driver.notify_one();
                        }));
                    }
                    Action::Unlink { id, name, file } => {
                        let tx = io_tx.clone();
                        let shared = Arc::clone(&self.shared);
                        let dir = watermark.as_ref().map(|(d, _)| d.clone());
                        blocking.push(tokio::task::spawn_blocking(move || {
                            let r = match (file, dir) {
                                (Some(f), _) => f.unlink(),
                                (None, Some(dir)) => unlink_segment(&dir, name),
                                (None, None) => Ok(()),
                            };
                            let outcome = match r {
                                Ok(()) => IoOutcome::Done,
                                Err(e) => {
                                    warn!(error = %e, "unlinking segment failed");
                                    IoOutcome::Failed(io_failure(&e))
                                }
                            };
                            let _ = tx.send((id, outcome));
                            shared.wake_driver.notify_one();
                        }));
                    }
                    Action::Watermark { id, fsn, durable } => {
                        let tx = io_tx.clone();
                        let shared = Arc::clone(&self.shared);
                        let Some((dir, wm)) = watermark.as_ref() else {
                            let _ = tx.send((id, IoOutcome::Done));
                            continue;
                        };
                        let (dir, wm) = (dir.clone(), Arc::clone(wm));
                        blocking.push(tokio::task::spawn_blocking(move || {
                            let mut slot = wm.lock().unwrap_or_else(|p| p.into_inner());
                            let r = (|| {
                                let file = match slot.as_mut() {
                                    Some(file) => file,
                                    None => slot.insert(WatermarkFile::open(&dir)?),
                                };
                                match fsn {
                                    Some(fsn) => {
                                        file.persist(fsn)?;
                                        if durable {
                                            file.sync()?;
                                        }
                                        Ok(())
                                    }
                                    None => {
                                        file.remove()?;
                                        if durable {
                                            crate::fs::sync_dir(&dir)?;
                                        }
                                        Ok(())
                                    }
                                }
                            })();
                            drop(slot);
                            let outcome = match r {
                                Ok(_) => IoOutcome::Done,
                                Err(e) => {
                                    warn!(error = %e, "persisting the ack watermark failed");
                                    IoOutcome::Failed(io_failure(&e))
                                }
                            };
                            let _ = tx.send((id, outcome));
                            shared.wake_driver.notify_one();
                        }));
                    }
                }
            }
            if let Some(outcome) = closed {
                for h in blocking.drain(..) {
                    let _ = h.await;
                }
                {
                    let mut g = self.shared.lock();
                    g.segments.clear();
                    g.lock = None;
                    g.closed = Some(outcome);
                }
                self.shared.notify_waiters();
                break;
            }
            if !pending_inputs.is_empty() {
                continue;
            }

            // 3. Sleep until something happens or the engine's deadline.
            let sleep_until =
                timeout.map(|t| tokio::time::Instant::from_std(self.shared.clock.to_std(t)));
            tokio::select! {
                biased;
                _ = self.shared.wake_driver.notified() => {}
                Some((id, outcome)) = io_rx.recv() => {
                    pending_inputs.push(OwnedInput::Io { id, outcome });
                    while let Ok((id, outcome)) = io_rx.try_recv() {
                        pending_inputs.push(OwnedInput::Io { id, outcome });
                    }
                }
                Some((id, reason)) = fail_rx.recv() => {
                    if link.as_ref().is_some_and(|l| l.id == id) {
                        link = None;
                        outage.lost(&reason);
                        pending_inputs.push(OwnedInput::Disconnected { close_code: None, reason });
                    }
                }
                event = next_event(&mut link) => {
                    match event {
                        NetEvent::Received(bytes) => pending_inputs.push(OwnedInput::Received(bytes.to_vec())),
                        NetEvent::Pong => {}
                        NetEvent::Disconnected { close_code, reason } => {
                            link = None;
                            outage.lost(&reason.to_string());
                            pending_inputs.push(OwnedInput::Disconnected { close_code, reason: reason.to_string() });
                        }
                    }
                }
                (host, result) = poll_connect(&mut connecting) => {
                    connecting = None;
                    match result {
                        Ok(UpgradeResult::Switched { response, connection }) => {
                            let (tx, rx) = connection.split();
                            next_link_id += 1;
                            let out = spawn_writer(next_link_id, tx, fail_tx.clone());
                            link = Some(Link { id: next_link_id, out, rx });
                            pending_inputs.push(OwnedInput::Connected { host, status: response.status, headers: response.headers });
                        }
                        Ok(UpgradeResult::Rejected(response)) => {
                            pending_inputs.push(OwnedInput::Connected { host, status: response.status, headers: response.headers });
                        }
                        Err(e) => {
                            outage.attempt_failed(&e.to_string());
                            pending_inputs.push(OwnedInput::ConnectFailed { host, reason: e.to_string() });
                        }
                    }
                }
                _ = sleep_opt(sleep_until) => {
                    pending_inputs.push(OwnedInput::Timeout);
                }
            }
        }
        drop(link);
        drop(connecting);
    }

    /// Drains the engine's outputs. Cheap ones are done here under the lock
    /// (their completions are fed straight back, which may queue more);
    /// the rest become actions. Returns the close outcome once the engine
    /// said `Closed`.
    fn drain_outputs(
        &self,
        g: &mut Inner,
        outage: &mut OutageLog,
    ) -> (Vec<Action>, Option<CloseOutcome>) {
        let mut actions = Vec::new();
        let mut closed = None;
        // Before any notification goes out: a handler that hears of a halt
        // and calls the sender must already be refused.
        self.shared.mark_stopped(g);
        // Bounded: each completion fed back is one the engine asked for.
        while let Some(output) = g.engine.poll_output() {
            match output {
                Output::Storage(op) => self.storage_op(g, op, &mut actions),
                Output::Connect { host } => actions.push(Action::Connect { host }),
                Output::Send { fsn, location } => actions.push(Action::Send {
                    fsn,
                    reader: g.segments.get(&location.name).map(|s| s.writer.reader()),
                    offset: location.offset,
                }),
                Output::Ping => actions.push(Action::Ping),
                Output::CloseConnection { code } => actions.push(Action::Close { code }),
                Output::Notify(e) => {
                    // Logging rule: an ERROR for every terminal error and
                    // every dropped batch.
                    error!(category = ?e.category(), policy = ?e.policy(), "{e}");
                    let _ = self.events.send(Event::Error(e));
                }
                Output::Progress { acked } => {
                    let _ = self.events.send(Event::Progress(acked));
                }
                Output::Warn(w) => match w {
                    EngineWarning::ConnectRejected { .. }
                    | EngineWarning::ConnectTimedOut { .. } => {
                        outage.attempt_failed(&format!("{w:?}"));
                    }
                    other => warn!(warning = ?other, "qwp-sf sender"),
                },
                // The mappings and the lock go once the file work the
                // engine asked for before release has finished (see `run`).
                Output::Released => {}
                // Published to waiters only once the slot is released (C2:
                // `close()` returns with the lock and mappings gone).
                Output::Closed { result, drained } => {
                    closed = Some(CloseOutcome { result, drained });
                }
            }
        }
        if matches!(
            g.engine.connection_state(),
            sf_core::engine::ConnectionState::Connected { .. }
        ) {
            outage.connected();
        }
        (actions, closed)
    }

    fn storage_op(&self, g: &mut Inner, op: StorageOutput, actions: &mut Vec<Action>) {
        let now = self.shared.clock.now();
        match op {
            StorageOutput::CreateSegment { id, gen, size } => {
                actions.push(Action::Create { id, gen, size })
            }
            StorageOutput::InstallHeader { id, gen, base_fsn } => {
                let outcome = install_header(g, gen, base_fsn);
                feed(g, now, OwnedInput::Io { id, outcome });
            }
            StorageOutput::Sync {
                id,
                name,
                from_offset,
                upto_offset,
                rewrite,
            } => actions.push(Action::Sync {
                id,
                name,
                from: from_offset,
                upto: upto_offset,
                rewrite,
            }),
            StorageOutput::Unlink { id, name } => {
                let files = self.slot_is_files(g);
                match g.segments.remove(&name) {
                    // Files are unlinked, memory is freed when the last
                    // handle drops: both off the lock, on the blocking pool,
                    // so freeing a whole segment never stalls an append.
                    Some(seg) => actions.push(Action::Unlink {
                        id,
                        name,
                        file: Some(seg.reader),
                    }),
                    None if files => actions.push(Action::Unlink {
                        id,
                        name,
                        file: None,
                    }),
                    None => feed(
                        g,
                        now,
                        OwnedInput::Io {
                            id,
                            outcome: IoOutcome::Done,
                        },
                    ),
                }
            }
            StorageOutput::PersistAckWatermark { id, fsn, durable } => {
                actions.push(Action::Watermark {
                    id,
                    fsn: Some(fsn),
                    durable,
                })
            }
            StorageOutput::RemoveAckWatermark { id, durable } => actions.push(Action::Watermark {
                id,
                fsn: None,
                durable,
            }),
        }
    }

    fn slot_is_files(&self, g: &Inner) -> bool {
        g.engine.storage().config().backing == sf_core::storage::Backing::Files
    }
}

/// Touches every page of a fresh memory segment so the allocator's lazy
/// zero pages are real before the producer writes (the bytes stay zero).
fn prefault_memory(mut m: MemorySegment) -> MemorySegment {
    use crate::fs::SegmentBuffer;
    let image = m.image_mut();
    for i in (0..image.len()).step_by(4096) {
        if let Some(b) = image.get_mut(i) {
            *b = 0;
        }
    }
    std::hint::black_box(&mut *image);
    m
}

/// Writes the header of spare `gen` (a memcpy into the mapping).
pub(crate) fn install_header(g: &mut Inner, gen: SegmentGen, base_fsn: Fsn) -> IoOutcome {
    let Some(seg) = g.segments.get_mut(&SegmentName::Gen(gen)) else {
        return IoOutcome::Failed(IoFailure::Io { os_code: None });
    };
    let header = match SegmentHeader::new(base_fsn, now_micros()) {
        Ok(h) => h,
        Err(_) => return IoOutcome::Failed(IoFailure::Io { os_code: None }),
    };
    match seg.writer.write_header(&header) {
        Ok(()) => IoOutcome::Done,
        Err(e) => IoOutcome::Failed(io_failure(&e)),
    }
}

/// Wall-clock microseconds for a segment header's `createdMicros`.
pub(crate) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An input with owned data, queued between the lock-free part of the loop
/// and the next time the lock is held.
#[derive(Debug)]
enum OwnedInput {
    Connected {
        host: usize,
        status: u16,
        headers: Vec<(String, Vec<u8>)>,
    },
    ConnectFailed {
        host: usize,
        reason: String,
    },
    Received(Vec<u8>),
    Disconnected {
        close_code: Option<u16>,
        reason: String,
    },
    Io {
        id: IoId,
        outcome: IoOutcome,
    },
    Timeout,
}

fn feed(g: &mut Inner, now: sf_core::Instant, input: OwnedInput) {
    let r = match &input {
        OwnedInput::Connected {
            host,
            status,
            headers,
        } => {
            let pairs: Vec<(&str, &[u8])> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            g.engine.handle_input(
                now,
                Input::Connected {
                    host: *host,
                    status: *status,
                    headers: &pairs,
                },
            )
        }
        OwnedInput::ConnectFailed { host, reason } => g.engine.handle_input(
            now,
            Input::ConnectFailed {
                host: *host,
                reason,
            },
        ),
        OwnedInput::Received(bytes) => g.engine.handle_input(now, Input::Received(bytes)),
        OwnedInput::Disconnected { close_code, reason } => g.engine.handle_input(
            now,
            Input::Disconnected {
                close_code: *close_code,
                reason,
            },
        ),
        OwnedInput::Io { id, outcome } => g.engine.handle_input(
            now,
            Input::Io {
                id: *id,
                outcome: *outcome,
            },
        ),
        OwnedInput::Timeout => g.engine.handle_input(now, Input::Timeout),
    };
    if let Err(e) = r {
        // A driver bug: the engine is unchanged; say so loudly.
        error!(error = %e, input = ?input, "engine refused an input");
    }
}

impl OutageLog {
    /// A live connection ended.
    fn lost(&mut self, why: &str) {
        if !self.warned {
            self.warned = true;
            warn!(
                reason = why,
                "qwp-sf connection lost; reconnecting (one warning per outage)"
            );
        }
    }

    /// A connect attempt failed.
    fn attempt_failed(&mut self, why: &str) {
        if !self.warned {
            self.warned = true;
            if self.ever_connected {
                warn!(
                    reason = why,
                    "qwp-sf reconnect attempt failed; retrying (one warning per outage)"
                );
            } else {
                warn!(
                    reason = why,
                    "qwp-sf connect failed; retrying (one warning per outage)"
                );
            }
        } else {
            debug!(reason = why, "connect attempt failed");
        }
    }

    /// The engine is connected: the outage, if any, is over.
    fn connected(&mut self) {
        if self.warned {
            info!("qwp-sf sender reconnected");
        }
        self.warned = false;
        self.ever_connected = true;
    }
}

async fn next_event(link: &mut Option<Link>) -> NetEvent {
    match link {
        Some(l) => l.rx.next_event().await,
        None => std::future::pending().await,
    }
}

async fn poll_connect(
    connecting: &mut Option<ConnectFuture>,
) -> (usize, Result<UpgradeResult, ConnectError>) {
    match connecting {
        Some(f) => f.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn sleep_opt(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
