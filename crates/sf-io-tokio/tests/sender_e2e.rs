//! End to end: the public `Sender` against the reference server over real
//! sockets on 127.0.0.1, with real files in temp dirs. No sleeps: waits end
//! on `wait_acked`, on server conditions, or on channels.

mod sender_support;

use std::time::Duration;

use qwp_server::ServerConfig;
use sender_support::*;
use sf_core::Fsn;
use sf_io_tokio::Sender;

/// C1 + W1: rows in memory mode reach the server exactly, in order; three
/// auto-flushed frames of 1000 rows plus the final flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_in_equal_rows_out_memory_mode() {
    let srv = server(ServerConfig::local()).await;
    let mut sender = Sender::from_conf(&conf(&srv, "")).unwrap();
    write_rows(&mut sender, "t", 0, 2500);
    assert_eq!(sender.pending_rows(), 500, "auto-flush every 1000 rows");
    let fsn = sender.flush().unwrap().expect("a frame");
    assert_eq!(fsn, Fsn(2));
    sender.wait_acked(fsn, WAIT).unwrap();
    assert_eq!(server_ns(&srv, "t"), (0..2500).collect::<Vec<_>>());
    check_row_contents(&srv, "t");
    let c = sender.counters();
    assert_eq!(c.acked_fsn, Some(Fsn(2)));
    assert_eq!(c.published_fsn, Some(Fsn(2)));
    sender.close().unwrap();
}

/// Same through segment files under `sf_dir`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_in_equal_rows_out_sf_dir_mode() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local()).await;
    let mut sender = Sender::from_conf(&conf(
        &srv,
        &format!("sf_dir={};sender_id=a;", dir.path().display()),
    ))
    .unwrap();
    write_rows(&mut sender, "t", 0, 2500);
    let fsn = sender.flush().unwrap().expect("a frame");
    sender.wait_acked_async(fsn).await.unwrap();
    assert_eq!(server_ns(&srv, "t"), (0..2500).collect::<Vec<_>>());
    check_row_contents(&srv, "t");
    sender.close().unwrap();
}

/// Plain synchronous code: the sender runs its own I/O thread.
#[test]
fn rows_from_plain_sync_code_use_the_senders_own_thread() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let srv = rt.block_on(server(ServerConfig::local()));
    let mut sender = Sender::from_conf(&conf(&srv, "auto_flush=off;")).unwrap();
    write_rows(&mut sender, "t", 0, 10);
    assert_eq!(sender.pending_rows(), 10);
    let fsn = sender.flush().unwrap().unwrap();
    assert_eq!(fsn, Fsn(0));
    sender.wait_acked(fsn, WAIT).unwrap();
    assert_eq!(sender.flush().unwrap(), None, "nothing pending");
    sender.close().unwrap();
    assert_eq!(server_ns(&srv, "t"), (0..10).collect::<Vec<_>>());
    let _ = Duration::ZERO;
}
