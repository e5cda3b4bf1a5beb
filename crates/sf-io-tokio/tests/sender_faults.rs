//! Each fault switch of the reference server → the documented outcome
//! (sf-client §13-§15, failover.md), plus durable-ACK mode end to end (W4).

mod sender_support;

use std::sync::mpsc;

use qwp_proto::status::{ErrorCategory, ErrorPolicy};
use qwp_server::{
    CloseAction, CloseAfter, DurableAckMode, ErrorOn, Faults, MessageIndex, RejectUpgrades,
    ServerConfig, UpgradeReject,
};
use sender_support::*;
use sf_core::errors::SenderError;
use sf_core::Fsn;
use sf_io_tokio::{Error, Sender, SenderBuilder};

/// A sender whose error handler forwards every notification to a channel.
fn sender_with_errors(conf: &str) -> (Sender, mpsc::Receiver<SenderError>) {
    let (tx, rx) = mpsc::channel();
    let s = SenderBuilder::from_conf(conf)
        .unwrap()
        .on_error(move |e| {
            let _ = tx.send(e.clone());
        })
        .build()
        .unwrap();
    (s, rx)
}

fn ten_rows_per_flush(s: &mut Sender, frames: i64) -> Fsn {
    let mut last = None;
    for k in 0..frames {
        write_rows(s, "t", k * 10, (k + 1) * 10);
        last = s.flush().unwrap();
    }
    last.unwrap()
}

/// W3: SCHEMA_MISMATCH defaults to DROP_AND_CONTINUE: the frame is
/// acknowledged as dropped, the handler hears of it, the next frame lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w3_schema_mismatch_drops_the_frame_and_continues() {
    let srv = server(ServerConfig::local().with_faults(Faults {
        error_on: Some(ErrorOn {
            message: MessageIndex::PerConnection(0),
            status: qwp_proto::status::STATUS_SCHEMA_MISMATCH,
        }),
        ..Faults::default()
    }))
    .await;
    let (mut s, errors) = sender_with_errors(&conf(&srv, "auto_flush=off;"));
    let last = ten_rows_per_flush(&mut s, 2);
    s.wait_acked(last, WAIT).unwrap();
    let e = errors.recv_timeout(WAIT).unwrap();
    assert_eq!(e.category(), ErrorCategory::SchemaMismatch);
    assert_eq!(e.policy(), ErrorPolicy::DropAndContinue);
    assert_eq!(s.counters().total_server_errors, 1);
    assert_eq!(server_ns(&srv, "t"), (10..20).collect::<Vec<_>>());
    s.close().unwrap();
}

/// W3: PARSE_ERROR defaults to HALT: the error is latched, every producer
/// call and close() return it, and the handler hears of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w3_parse_error_halts_and_every_call_returns_it() {
    let srv = server(ServerConfig::local().with_faults(Faults {
        error_on: Some(ErrorOn {
            message: MessageIndex::PerConnection(0),
            status: qwp_proto::status::STATUS_PARSE_ERROR,
        }),
        ..Faults::default()
    }))
    .await;
    let (mut s, errors) = sender_with_errors(&conf(&srv, "auto_flush=off;"));
    let f = ten_rows_per_flush(&mut s, 1);
    match s.wait_acked(f, WAIT) {
        Err(Error::Terminal(e)) => assert_eq!(e.category(), ErrorCategory::ParseError),
        other => panic!("expected HALT, got {other:?}"),
    }
    let e = errors.recv_timeout(WAIT).unwrap();
    assert_eq!(e.policy(), ErrorPolicy::Halt);
    assert!(matches!(s.table("t"), Err(Error::Terminal(_))));
    assert!(matches!(s.close(), Err(Error::Terminal(_))));
}

/// sf-client §15: close code 1008 is terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_close_code_1008_halts() {
    let srv = server(ServerConfig::local().with_faults(Faults {
        close_after: Some(CloseAfter {
            messages: 1,
            action: CloseAction::Code(1008),
        }),
        ..Faults::default()
    }))
    .await;
    let (mut s, errors) = sender_with_errors(&conf(&srv, "auto_flush=off;"));
    let last = ten_rows_per_flush(&mut s, 3);
    match s.wait_acked(last, WAIT) {
        Err(Error::Terminal(e)) => assert!(e.message().contains("1008"), "{e}"),
        other => panic!("expected a terminal close, got {other:?}"),
    }
    assert!(errors
        .recv_timeout(WAIT)
        .unwrap()
        .message()
        .contains("1008"));
    assert!(matches!(s.close(), Err(Error::Terminal(_))));
}

/// sf-client §15: close code 1011 reconnects; everything arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_close_code_1011_replays_and_all_arrive() {
    let srv = server(ServerConfig::local().with_faults(Faults {
        close_after: Some(CloseAfter {
            messages: 2,
            action: CloseAction::Code(1011),
        }),
        ..Faults::default()
    }))
    .await;
    let mut s = Sender::from_conf(&conf(&srv, "auto_flush=off;")).unwrap();
    let last = ten_rows_per_flush(&mut s, 7);
    s.wait_acked_async(last).await.unwrap();
    let mut ns = server_ns(&srv, "t");
    ns.sort_unstable();
    ns.dedup();
    assert_eq!(ns, (0..70).collect::<Vec<_>>());
    assert!(s.counters().total_reconnects_succeeded >= 3);
    s.close().unwrap();
}

/// failover.md: 401 on the upgrade is terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_401_is_terminal() {
    let srv = server(ServerConfig::local().with_faults(Faults {
        reject_upgrades: Some(RejectUpgrades {
            count: 10,
            with: UpgradeReject::Unauthorized,
        }),
        ..Faults::default()
    }))
    .await;
    // `async`: the constructor returns at once and the halt arrives later,
    // even though a failed first connect would otherwise be retried.
    let (mut s, errors) =
        sender_with_errors(&conf(&srv, "auto_flush=off;initial_connect_retry=async;"));
    assert_eq!(
        errors.recv_timeout(WAIT).unwrap().policy(),
        ErrorPolicy::Halt
    );
    assert!(matches!(s.table("t"), Err(Error::Terminal(_))));
    assert_eq!(srv.stats().upgrades_rejected, 1, "no retry after 401");
    assert!(matches!(s.close(), Err(Error::Terminal(_))));
}

/// failover.md: 421 with a role walks on; once the server accepts, all
/// rows arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_421_role_reject_walks_on_then_delivers() {
    let srv = server(ServerConfig::local().with_faults(Faults {
        reject_upgrades: Some(RejectUpgrades {
            count: 2,
            with: UpgradeReject::Role("PRIMARY_CATCHUP".into()),
        }),
        ..Faults::default()
    }))
    .await;
    let mut s = Sender::from_conf(&conf(&srv, "auto_flush=off;initial_connect_retry=on;")).unwrap();
    let f = ten_rows_per_flush(&mut s, 2);
    s.wait_acked(f, WAIT).unwrap();
    assert_eq!(srv.stats().upgrades_rejected, 2);
    assert_eq!(server_ns(&srv, "t"), (0..20).collect::<Vec<_>>());
    s.close().unwrap();
}

/// W4: with `request_durable_ack=on` an OK does not acknowledge; the
/// DURABLE_ACK does (released by the server on demand; the keepalive PING
/// lets it out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w4_durable_ack_mode_trims_only_on_durable_ack() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local().with_durable_ack(DurableAckMode::Manual)).await;
    let mut s = Sender::from_conf(&conf(
        &srv,
        &format!(
            "auto_flush=off;request_durable_ack=on;sf_dir={};sender_id=d;",
            dir.path().display()
        ),
    ))
    .unwrap();
    let f = ten_rows_per_flush(&mut s, 3);
    srv.wait_for(WAIT, |st| st.oks_sent >= 3).await.unwrap();
    assert_eq!(s.acked_fsn(), None, "W4: OK frames do not trim");
    srv.release_durable();
    s.wait_acked_async(f).await.unwrap();
    srv.wait_for(WAIT, |st| st.durable_acks_sent >= 1)
        .await
        .unwrap();
    assert_eq!(server_ns(&srv, "t"), (0..30).collect::<Vec<_>>());
    s.close().unwrap();
}

/// W4: a server that does not echo `X-QWP-Durable-Ack: enabled` is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn w4_missing_durable_echo_is_refused() {
    let srv = server(
        ServerConfig::local()
            .with_durable_ack(DurableAckMode::Manual)
            .with_faults(Faults {
                omit_durable_echo: true,
                ..Faults::default()
            }),
    )
    .await;
    // initial_connect_retry=off (default): the constructor waits for the
    // first connect, whose refusal is terminal.
    match Sender::from_conf(&conf(&srv, "auto_flush=off;request_durable_ack=on;")) {
        Err(Error::Terminal(e)) => assert_eq!(e.policy(), ErrorPolicy::Halt),
        other => panic!("expected the constructor to fail, got {other:?}"),
    }
    assert_eq!(srv.stats().rows, 0, "nothing sent on a refused connection");
}

/// `initial_connect_retry=off`: the constructor waits for the first
/// connect and a 401 fails the constructor itself; the slot is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_connect_off_constructor_fails_on_401() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(ServerConfig::local().with_faults(Faults {
        reject_upgrades: Some(RejectUpgrades {
            count: 1,
            with: UpgradeReject::Unauthorized,
        }),
        ..Faults::default()
    }))
    .await;
    let c = conf(&srv, &format!("sf_dir={};", dir.path().display()));
    assert!(matches!(Sender::from_conf(&c), Err(Error::Terminal(_))));
    // The reject is spent and the failed constructor released the slot.
    let s = Sender::from_conf(&c).unwrap();
    assert_eq!(s.counters().last_terminal_error, None);
    s.close().unwrap();
}
