//! Replay across reopen, server restart and connection drops (W1, S1, S8,
//! C2, C3), end to end against the reference server.

mod sender_support;

use std::collections::BTreeMap;

use qwp_server::{CloseAction, CloseAfter, Faults, OkDelivery, ServerConfig};
use sender_support::*;
use sf_core::recovery::WatermarkRead;
use sf_core::watermark::decode_watermark;
use sf_core::Fsn;
use sf_io_tokio::fs::{read_watermark, LockError, LockHolder, SlotOpenError};
use sf_io_tokio::{Error, Sender};

fn sf_conf(srv: &qwp_server::ServerHandle, dir: &std::path::Path, extra: &str) -> String {
    conf(
        srv,
        &format!(
            "sf_dir={};sender_id=slot1;auto_flush=off;{extra}",
            dir.display()
        ),
    )
}

fn counts(ns: &[i64]) -> BTreeMap<i64, usize> {
    let mut m = BTreeMap::new();
    for n in ns {
        *m.entry(*n).or_insert(0) += 1;
    }
    m
}

/// C2 + S1 + S8 + W1: close with an unacknowledged tail (OKs withheld, drain
/// skipped), reopen over the same `sf_dir`: the tail is replayed under its
/// original FSN and nothing acknowledged is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_reopen_replays_unacked_tail_and_never_resends_acked() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local()).await;
    let c = sf_conf(&srv, dir.path(), "close_flush_timeout_millis=0;");

    let mut s1 = Sender::from_conf(&c).unwrap();
    write_rows(&mut s1, "t", 0, 50);
    let acked = s1.flush().unwrap().unwrap();
    s1.wait_acked(acked, WAIT).unwrap();

    srv.set_faults(Faults {
        ok_delivery: OkDelivery::Withhold,
        ..Faults::default()
    })
    .unwrap();
    write_rows(&mut s1, "t", 50, 80);
    let tail = s1.flush().unwrap().unwrap();
    assert_eq!(tail, Fsn(1));
    srv.wait_for(WAIT, |s| s.oks_withheld >= 1).await.unwrap();
    assert_eq!(s1.acked_fsn(), Some(acked), "the tail's OK was withheld");
    s1.close().unwrap();

    // S8: the acknowledged FSN was persisted before close() returned.
    match read_watermark(&dir.path().join("slot1")) {
        WatermarkRead::Bytes(b) => assert_eq!(decode_watermark(&b).unwrap(), acked),
        other => panic!("no watermark: {other:?}"),
    }

    srv.set_faults(Faults::default()).unwrap();
    let s2 = Sender::from_conf(&c).unwrap();
    let before = s2.counters();
    assert_eq!(
        before.published_fsn,
        Some(tail),
        "S1: FSNs survive the reopen"
    );
    s2.wait_acked(tail, WAIT).unwrap();
    assert!(s2.counters().total_frames_replayed >= 1);
    s2.close().unwrap();

    let seen = counts(&server_ns(&srv, "t"));
    for n in 0..50 {
        assert_eq!(seen.get(&n), Some(&1), "acknowledged row {n} was resent");
    }
    for n in 50..80 {
        assert_eq!(
            seen.get(&n),
            Some(&2),
            "tail row {n}: once withheld, once replayed"
        );
    }
    check_row_contents(&srv, "t");
}

/// C3: a second sender on a held slot fails and names the holder's PID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c3_second_sender_on_a_slot_names_the_holder_pid() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local()).await;
    let c = sf_conf(&srv, dir.path(), "");
    let first = Sender::from_conf(&c).unwrap();
    match Sender::from_conf(&c) {
        Err(Error::Slot(SlotOpenError::Lock(LockError::Held { holder, .. }))) => {
            assert_eq!(holder, LockHolder::Pid(std::process::id()));
        }
        other => panic!("expected the slot to be held, got {other:?}"),
    }
    let err = Sender::from_conf(&c).unwrap_err().to_string();
    assert!(err.contains(&std::process::id().to_string()), "{err}");
    first.close().unwrap();
    // C2: close released the lock, so the slot opens again.
    Sender::from_conf(&c).unwrap().close().unwrap();
}

/// W1 + W5: the server goes away mid-stream and comes back on the same
/// port; everything published arrives and the replay is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w1_server_restart_mid_stream_everything_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local()).await;
    let addr = srv.local_addr();
    let c = sf_conf(&srv, dir.path(), "");
    let mut s = Sender::from_conf(&c).unwrap();
    write_rows(&mut s, "t", 0, 100);
    let f0 = s.flush().unwrap().unwrap();
    s.wait_acked(f0, WAIT).unwrap();
    let first = server_ns(&srv, "t");
    srv.shutdown().await;

    // Published while the server is down: flush returns once written (C1).
    let mut last = f0;
    for k in 1..5 {
        write_rows(&mut s, "t", k * 100, (k + 1) * 100);
        last = s.flush().unwrap().unwrap();
    }
    let srv2 = server(ServerConfig::new(addr)).await;
    s.wait_acked_async(last).await.unwrap();
    let c2 = s.counters();
    assert!(c2.total_reconnects_succeeded >= 1, "{c2:?}");
    assert!(c2.total_frames_replayed >= 4, "{c2:?}");
    s.close().unwrap();

    let mut all = first;
    all.extend(server_ns(&srv2, "t"));
    let seen = counts(&all);
    for n in 0..500 {
        assert!(seen.contains_key(&n), "row {n} lost");
    }
    check_row_contents(&srv2, "t");
}

/// W3-adjacent: the connection drops without a close frame after every
/// third message; the sender reconnects and replays until all is acked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w1_connection_drops_every_third_message_all_rows_arrive() {
    let srv = server(ServerConfig::local().with_faults(Faults {
        close_after: Some(CloseAfter {
            messages: 3,
            action: CloseAction::Drop,
        }),
        ..Faults::default()
    }))
    .await;
    let mut s = Sender::from_conf(&conf(&srv, "auto_flush=off;")).unwrap();
    let mut last = None;
    for k in 0..10 {
        write_rows(&mut s, "t", k * 10, (k + 1) * 10);
        last = s.flush().unwrap();
    }
    s.wait_acked_async(last.unwrap()).await.unwrap();
    let seen = counts(&server_ns(&srv, "t"));
    assert_eq!(seen.len(), 100);
    assert!(s.counters().total_reconnects_succeeded >= 3);
    s.close().unwrap();
}

/// C2 + W5: a quiet server (OKs withheld) cannot hold close() beyond
/// `close_flush_timeout_millis`; the slot is released and the unacked
/// frame is replayed by the next sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_close_drain_ends_at_its_deadline_when_the_server_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local().with_faults(Faults {
        ok_delivery: OkDelivery::Withhold,
        ..Faults::default()
    }))
    .await;
    let c = sf_conf(&srv, dir.path(), "close_flush_timeout_millis=50;");
    let mut s = Sender::from_conf(&c).unwrap();
    write_rows(&mut s, "t", 0, 10);
    let f = s.flush().unwrap().unwrap();
    srv.wait_for(WAIT, |st| st.oks_withheld >= 1).await.unwrap();
    s.close().unwrap();

    srv.set_faults(Faults::default()).unwrap();
    let s2 = Sender::from_conf(&c).unwrap();
    s2.wait_acked(f, WAIT).unwrap();
    s2.close().unwrap();
    assert_eq!(
        counts(&server_ns(&srv, "t")).values().copied().max(),
        Some(2)
    );
}
