//! Logging rule: one WARN per reconnect outage, not per attempt; nothing
//! per frame. A process-wide counting subscriber (its own test binary, so
//! the global default is ours alone).

mod sender_support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use qwp_server::ServerConfig;
use sender_support::*;
use sf_io_tokio::SenderBuilder;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

#[derive(Default)]
struct Counts {
    warn: AtomicU64,
    error: AtomicU64,
}

struct Counting(Arc<Counts>);

impl Subscriber for Counting {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, e: &Event<'_>) {
        // Only the sender's own lines: the net layer logs on its own.
        if !e.metadata().target().starts_with("sf_io_tokio::sender") {
            return;
        }
        match *e.metadata().level() {
            Level::WARN => self.0.warn.fetch_add(1, Ordering::SeqCst),
            Level::ERROR => self.0.error.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Three refused attempts and one success make one outage: one WARN, no
/// ERROR, and none for the frames sent afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_warn_per_outage_not_per_attempt() {
    let counts = Arc::new(Counts::default());
    tracing::subscriber::set_global_default(Counting(Arc::clone(&counts))).unwrap();

    // A listener that takes three connections and drops each one before
    // the upgrade: three failed attempts, counted, no sleep.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut s = SenderBuilder::from_conf(&format!(
        "ws::addr={addr};initial_connect_retry=async;auto_flush=off;\
         reconnect_initial_backoff_millis=1;reconnect_max_backoff_millis=2;"
    ))
    .unwrap()
    .build()
    .unwrap();
    for _ in 0..3 {
        let (sock, _) = listener.accept().await.unwrap();
        drop(sock);
    }
    drop(listener);
    let srv = server(ServerConfig::new(addr)).await;
    let mut last = None;
    for k in 0..20 {
        write_rows(&mut s, "t", k, k + 1);
        last = s.flush().unwrap();
    }
    s.wait_acked_async(last.unwrap()).await.unwrap();
    s.close().unwrap();
    assert_eq!(server_ns(&srv, "t").len(), 20);
    assert_eq!(
        counts.warn.load(Ordering::SeqCst),
        1,
        "one WARN for the outage"
    );
    assert_eq!(counts.error.load(Ordering::SeqCst), 0);
}
