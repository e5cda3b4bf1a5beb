//! Helpers shared by the pool and orphan-drain tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use qwp_proto::decoder::Value;
use qwp_server::{Server, ServerConfig, ServerHandle};
use sf_io_tokio::{DrainerEvent, Sender};

/// Generous bound for waits that end on an event; never a sleep.
pub const WAIT: Duration = Duration::from_secs(20);

/// Starts a reference server on 127.0.0.1 (any port).
pub async fn server(config: ServerConfig) -> ServerHandle {
    Server::bind(config).await.expect("bind qwp-server")
}

/// An address nothing listens on: connects are refused.
pub fn dead_addr() -> std::net::SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

/// Appends rows `from..to` to `table` (column `n` = i) and flushes them as
/// one frame.
pub fn write_frame(sender: &mut Sender, table: &str, from: i64, to: i64) {
    for i in from..to {
        sender
            .table(table)
            .unwrap()
            .symbol("s", "v")
            .unwrap()
            .column_i64("n", i)
            .unwrap();
        sender.at_micros(1_000_000 + i).unwrap();
    }
    sender.flush().unwrap();
}

/// Leaves `frames` unacknowledged frames of 10 rows each (table `table`,
/// `n` from 0) in slot `<sf_dir>/<sender_id>/`, as a crashed or closed
/// sender that never reached a server would.
pub fn strand(sf_dir: &Path, sender_id: &str, table: &str, frames: i64) {
    let conf = format!(
        "ws::addr={};sf_dir={};sender_id={sender_id};initial_connect_retry=async;\
         close_flush_timeout_millis=0;auto_flush=off;",
        dead_addr(),
        sf_dir.display()
    );
    let mut s = Sender::from_conf(&conf).unwrap();
    for k in 0..frames {
        write_frame(&mut s, table, k * 10, (k + 1) * 10);
    }
    s.close().unwrap();
    assert!(
        has_segments(&sf_dir.join(sender_id)),
        "stranded data on disk"
    );
}

/// Whether `slot` holds a segment file.
pub fn has_segments(slot: &Path) -> bool {
    std::fs::read_dir(slot)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().ends_with(".sfa"))
        })
        .unwrap_or(false)
}

/// The sorted `n` values the server holds for `table`.
pub fn server_ns(server: &ServerHandle, table: &str) -> Vec<i64> {
    let mut v: Vec<i64> = server
        .rows(table)
        .iter()
        .map(|r| match r.value("n") {
            Some(Value::Long(n)) => *n,
            other => panic!("row without n: {other:?}"),
        })
        .collect();
    v.sort_unstable();
    v
}

/// Drainer events collected from a listener.
pub struct Events {
    rx: mpsc::Receiver<DrainerEvent>,
    /// Every event seen so far.
    pub seen: Vec<DrainerEvent>,
}

/// A listener and the collector of its events.
pub fn events() -> (impl Fn(DrainerEvent) + Send + Sync + 'static, Events) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    (
        move |e| {
            let _ = tx.lock().unwrap().send(e);
        },
        Events {
            rx,
            seen: Vec::new(),
        },
    )
}

/// The slot directory an event is about.
pub fn slot_of(e: &DrainerEvent) -> &PathBuf {
    match e {
        DrainerEvent::Started { slot, .. }
        | DrainerEvent::Skipped { slot, .. }
        | DrainerEvent::Progress { slot, .. }
        | DrainerEvent::Succeeded { slot }
        | DrainerEvent::Failed { slot, .. }
        | DrainerEvent::Stopped { slot, .. } => slot,
    }
}

impl Events {
    /// Blocks (off the async workers) until an event matching `pred`
    /// arrives; panics after [`WAIT`].
    pub fn wait(&mut self, what: &str, pred: impl Fn(&DrainerEvent) -> bool) -> DrainerEvent {
        if let Some(e) = self.seen.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let e = block(|| self.rx.recv_timeout(left))
                .unwrap_or_else(|_| panic!("no drainer event {what}; saw {:?}", self.seen));
            self.seen.push(e.clone());
            if pred(&e) {
                return e;
            }
        }
    }

    /// Takes the events already delivered without waiting.
    pub fn drain(&mut self) -> &[DrainerEvent] {
        while let Ok(e) = self.rx.try_recv() {
            self.seen.push(e);
        }
        &self.seen
    }
}

/// Runs a blocking wait without stalling a multi-threaded runtime worker.
pub fn block<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => tokio::task::block_in_place(f),
        Err(_) => f(),
    }
}

/// Whether `e` is the final event `kind` for slot `name`.
pub fn is(e: &DrainerEvent, kind: &str, name: &str) -> bool {
    let k = match e {
        DrainerEvent::Started { .. } => "started",
        DrainerEvent::Skipped { .. } => "skipped",
        DrainerEvent::Progress { .. } => "progress",
        DrainerEvent::Succeeded { .. } => "succeeded",
        DrainerEvent::Failed { .. } => "failed",
        DrainerEvent::Stopped { .. } => "stopped",
    };
    k == kind && slot_of(e).file_name().is_some_and(|n| n == name)
}
