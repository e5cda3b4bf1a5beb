//! The producer API: local durability modes (C1), auto-flush triggers,
//! handlers, counters, Drop.

mod sender_support;

use std::sync::mpsc;

use qwp_server::ServerConfig;
use sender_support::*;
use sf_core::Fsn;
use sf_io_tokio::{Error, Sender, SenderBuilder};

fn sf(dir: &tempfile::TempDir, extra: &str) -> String {
    format!("sf_dir={};sender_id=api;{extra}", dir.path().display())
}

/// C1 + L1: with `sf_durability=flush`, `flush()` returns only once its
/// frame is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_flush_durability_returns_once_fsynced() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local()).await;
    let mut s = Sender::from_conf(&conf(
        &srv,
        &sf(&dir, "sf_durability=flush;auto_flush=off;"),
    ))
    .unwrap();
    for k in 0..3 {
        write_rows(&mut s, "t", k * 10, (k + 1) * 10);
        let f = s.flush().unwrap().unwrap();
        let c = s.counters();
        assert!(c.durable_fsn >= Some(f), "L1/C1: {c:?} after flush of {f}");
        assert!(
            c.durable_fsn <= c.published_fsn,
            "L1: durable never exceeds published"
        );
    }
    s.close().unwrap();
}

/// C1: with `sf_durability=append` every frame is durable before its
/// append returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_append_durability_returns_once_fsynced() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local()).await;
    let mut s = Sender::from_conf(&conf(&srv, &sf(&dir, "sf_durability=append;"))).unwrap();
    write_rows(&mut s, "t", 0, 2000);
    let published = s.counters().published_fsn.unwrap();
    assert_eq!(published, Fsn(1), "two auto-flushed frames");
    assert!(s.counters().durable_fsn >= Some(published));
    assert_eq!(s.flush().unwrap(), None);
    s.close().unwrap();
}

/// Auto-flush by bytes: a tiny threshold flushes after every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_flush_by_bytes_flushes_on_the_row_that_crosses_it() {
    let srv = server(ServerConfig::local()).await;
    let mut s = Sender::from_conf(&conf(&srv, "auto_flush_rows=off;auto_flush_bytes=16;")).unwrap();
    write_rows(&mut s, "t", 0, 3);
    assert_eq!(s.pending_rows(), 0);
    assert_eq!(s.counters().published_fsn, Some(Fsn(2)));
    s.close().unwrap();
    assert_eq!(server_ns(&srv, "t"), vec![0, 1, 2]);
}

/// Auto-flush is off: rows stay pending until `flush()`; close() flushes
/// them and drains (C2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_close_flushes_pending_rows_and_drains() {
    let srv = server(ServerConfig::local()).await;
    let mut s = Sender::from_conf(&conf(&srv, "auto_flush=off;")).unwrap();
    write_rows(&mut s, "t", 0, 7);
    assert_eq!(s.counters().published_fsn, None);
    s.close().unwrap();
    assert_eq!(server_ns(&srv, "t"), (0..7).collect::<Vec<_>>());
}

/// C2: a row left half-built does not keep `close()` from flushing the
/// completed rows before it; the partial row (which cannot be sent) is
/// dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_close_with_a_row_in_progress_flushes_the_completed_rows() {
    let srv = server(ServerConfig::local()).await;
    let mut s = Sender::from_conf(&conf(&srv, "auto_flush=off;")).unwrap();
    write_rows(&mut s, "t", 0, 5);
    s.table("t").unwrap().column_i64("n", 99).unwrap();
    s.close().unwrap();
    assert_eq!(server_ns(&srv, "t"), (0..5).collect::<Vec<_>>());
}

/// Drop without close() still drains (bounded by close_flush_timeout) and
/// releases the slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_drop_closes_and_releases_the_slot() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local()).await;
    let c = conf(&srv, &sf(&dir, "auto_flush=off;"));
    {
        let mut s = Sender::from_conf(&c).unwrap();
        write_rows(&mut s, "t", 0, 4);
        s.flush().unwrap();
    }
    assert_eq!(server_ns(&srv, "t"), (0..4).collect::<Vec<_>>());
    Sender::from_conf(&c).unwrap().close().unwrap();
}

/// The progress handler sees the acknowledged FSN advance to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_handler_reports_the_acked_fsn() {
    let srv = server(ServerConfig::local()).await;
    let (tx, rx) = mpsc::channel();
    let mut s = SenderBuilder::from_conf(&conf(&srv, "auto_flush=off;"))
        .unwrap()
        .on_progress(move |f| {
            let _ = tx.send(f);
        })
        .build()
        .unwrap();
    let mut last = None;
    for k in 0..3 {
        write_rows(&mut s, "t", k, k + 1);
        last = s.flush().unwrap();
    }
    let last = last.unwrap();
    let mut seen = Vec::new();
    while seen.last() != Some(&last) {
        seen.push(rx.recv_timeout(WAIT).unwrap());
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "monotonic: {seen:?}");
    s.close().unwrap();
}

/// `wait_acked` ends at its timeout when no ACK comes, with the FSN state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_acked_times_out_without_an_ack() {
    let srv = server(ServerConfig::local().with_faults(qwp_server::Faults {
        ok_delivery: qwp_server::OkDelivery::Withhold,
        ..Default::default()
    }))
    .await;
    let mut s =
        Sender::from_conf(&conf(&srv, "auto_flush=off;close_flush_timeout_millis=0;")).unwrap();
    write_rows(&mut s, "t", 0, 1);
    let f = s.flush().unwrap().unwrap();
    srv.wait_for(WAIT, |st| st.oks_withheld >= 1).await.unwrap();
    match s.wait_acked(f, std::time::Duration::from_millis(1)) {
        Err(Error::AckTimeout { fsn, acked, .. }) => {
            assert_eq!(fsn, f);
            assert_eq!(acked, None);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    s.close().unwrap();
}

/// The async API end to end: flush_async, wait_acked_async, close_async.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_api_flush_wait_close() {
    let srv = server(ServerConfig::local()).await;
    let mut s = Sender::from_conf(&conf(&srv, "auto_flush=off;")).unwrap();
    write_rows(&mut s, "t", 0, 3);
    let f = s.flush_async().await.unwrap().unwrap();
    s.wait_acked_async(f).await.unwrap();
    write_rows(&mut s, "t", 3, 5);
    s.close_async().await.unwrap();
    assert_eq!(server_ns(&srv, "t"), (0..5).collect::<Vec<_>>());
}

/// W5-style liveness of the API: when the runtime that ran the I/O task
/// shuts down, waits end and close() reports it instead of hanging.
#[test]
fn io_task_gone_with_its_runtime_close_reports_it_and_does_not_hang() {
    let server_rt = tokio::runtime::Runtime::new().unwrap();
    let srv = server_rt.block_on(server(ServerConfig::local()));
    let sender_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut s = sender_rt
        .block_on(async { Sender::from_conf(&conf(&srv, "auto_flush=off;")) })
        .unwrap();
    write_rows(&mut s, "t", 0, 1);
    drop(sender_rt);
    assert!(matches!(s.flush(), Err(Error::Closed)));
    assert!(matches!(s.close(), Err(Error::IoTask(_))));
}

/// A server that withholds OKs, and a sender whose log caps at two 4 KiB
/// segments and waits at most 50 ms at the cap; `extra` adds keys.
async fn capped_sender_without_oks(extra: &str) -> (qwp_server::ServerHandle, Sender) {
    let srv = server(ServerConfig::local().with_faults(qwp_server::Faults {
        ok_delivery: qwp_server::OkDelivery::Withhold,
        ..Default::default()
    }))
    .await;
    let s = Sender::from_conf(&conf(
        &srv,
        &format!(
            "auto_flush=off;sf_max_bytes=4096;sf_max_total_bytes=8192;\
             sf_append_deadline_millis=50;{extra}"
        ),
    ))
    .unwrap();
    (srv, s)
}

/// S6 + W5: at the cap, with the server withholding OKs, the append waits
/// at most `sf_append_deadline_millis` and then fails with an error that
/// says the wire was up; nothing is published by the refused append (S7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_append_at_the_cap_fails_after_its_deadline_naming_the_wire_state() {
    let (_srv, mut s) = capped_sender_without_oks("close_flush_timeout_millis=0;").await;
    let mut refused = None;
    for k in 0..64 {
        write_rows(&mut s, "t", k * 20, (k + 1) * 20);
        match s.flush() {
            Ok(_) => {}
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let before = s.counters();
    match refused {
        Some(Error::Append(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("deadline"), "{msg}");
            assert!(msg.contains("wire is publishing"), "{msg}");
        }
        other => panic!("expected backpressure at the cap, got {other:?}"),
    }
    assert!(before.total_backpressure_stalls >= 1);
    assert_eq!(s.counters().published_fsn, before.published_fsn, "S7");
    // The refused batch is still pending (S7); close tries it once more,
    // still at the cap, and says so instead of dropping it silently.
    assert!(
        matches!(s.close(), Err(Error::Append(_))),
        "close must report the batch it could not append"
    );
}

/// S7 (DESIGN §6 items 1–2): a flush refused at the cap keeps its batch.
/// Once the server acknowledges again, the next flush appends the refused
/// frame first, so every row of every flush reaches the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s7_a_flush_refused_at_the_cap_keeps_its_rows_for_the_next_flush() {
    let (srv, mut s) = capped_sender_without_oks("ack_timeout_millis=200;").await;
    let mut written = 0;
    for k in 0..64 {
        write_rows(&mut s, "t", k * 20, (k + 1) * 20);
        written = (k + 1) * 20;
        if s.flush().is_err() {
            break;
        }
    }
    assert!(written < 64 * 20, "the cap never refused a flush");
    assert_eq!(s.pending_rows(), 20, "the refused batch is still pending");
    // OKs flow again; the ACK timeout makes the sender reconnect and replay
    // what the withheld OKs never acknowledged, which frees the cap.
    srv.set_faults(qwp_server::Faults::default()).unwrap();
    let mut last = None;
    for _ in 0..1000 {
        match s.flush() {
            Ok(fsn) => {
                last = fsn;
                break;
            }
            Err(Error::Append(_)) => continue,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let last = last.expect("the refused batch was appended once space freed");
    assert_eq!(s.pending_rows(), 0);
    s.wait_acked(last, std::time::Duration::from_secs(30))
        .unwrap();
    let mut got = server_ns(&srv, "t");
    got.sort_unstable();
    got.dedup();
    assert_eq!(got, (0..written).collect::<Vec<_>>(), "S7: a row was lost");
    s.close().unwrap();
}

/// A row that would overflow the frame limit is refused without a trace;
/// flushing and writing it again delivers every row exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_over_the_frame_limit_is_refused_and_recoverable() {
    let srv = server(ServerConfig::local()).await;
    let mut s = Sender::from_conf(&conf(
        &srv,
        "auto_flush=off;init_buf_size=1024;max_buf_size=2048;",
    ))
    .unwrap();
    let mut n = 0i64;
    let refused_at = loop {
        s.table("t").unwrap().column_i64("n", n).unwrap();
        match s.at_micros(1_000_000 + n) {
            Ok(()) => n += 1,
            Err(Error::Encode(qwp_proto::encoder::EncodeError::BatchFull { .. })) => break n,
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(n < 10_000, "the frame limit never applied");
    };
    assert_eq!(s.pending_rows() as i64, refused_at);
    s.flush().unwrap();
    s.table("t").unwrap().column_i64("n", refused_at).unwrap();
    s.at_micros(1_000_000 + refused_at).unwrap();
    s.close().unwrap();
    let ns: Vec<i64> = server_ns(&srv, "t");
    assert_eq!(ns, (0..=refused_at).collect::<Vec<_>>());
}
