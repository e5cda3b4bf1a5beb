//! Each fault switch produces its documented outcome, seen by a real client.

mod support;

use std::time::Duration;

use qwp_proto::response::{OkFrame, Response, TableSeqTxn};
use qwp_proto::status::{STATUS_SCHEMA_MISMATCH, STATUS_WRITE_ERROR};
use qwp_proto::upgrade::{classify_upgrade, UpgradeFailure, UpgradeOutcome};
use qwp_server::{
    CloseAction, CloseAfter, DurableAckMode, ErrorOn, Faults, MessageIndex, OkDelivery,
    RejectUpgrades, Server, ServerConfig, UpgradeReject,
};
use support::*;

fn ok(sequence: i64, tables: &[(&str, i64)]) -> Response {
    Response::Ok(OkFrame {
        sequence,
        tables: tables
            .iter()
            .map(|(n, s)| TableSeqTxn::new(*n, *s))
            .collect(),
    })
}

async fn server_with(faults: Faults) -> qwp_server::ServerHandle {
    Server::bind(ServerConfig::local().with_faults(faults))
        .await
        .unwrap()
}

#[tokio::test]
async fn close_after_n_messages_sends_the_code_after_answering_them() {
    for code in [1011u16, 1008] {
        let server = server_with(Faults {
            close_after: Some(CloseAfter {
                messages: 2,
                action: CloseAction::Code(code),
            }),
            ..Faults::default()
        })
        .await;
        let mut ws = connect(&server.url()).await;
        send(&mut ws, longs("t", &[1])).await;
        send(&mut ws, longs("t", &[2])).await;
        assert_eq!(next_frame(&mut ws).await, ok(0, &[("t", 1)]));
        assert_eq!(next_frame(&mut ws).await, ok(1, &[("t", 2)]));
        assert!(matches!(next_event(&mut ws).await, Event::Close(Some(c)) if c == code));
        drop(ws);
        server.shutdown().await;
    }
}

#[tokio::test]
async fn close_after_zero_closes_right_after_the_upgrade() {
    let server = server_with(Faults {
        close_after: Some(CloseAfter {
            messages: 0,
            action: CloseAction::Code(1013),
        }),
        ..Faults::default()
    })
    .await;
    let mut ws = connect(&server.url()).await;
    assert!(matches!(
        next_event(&mut ws).await,
        Event::Close(Some(1013))
    ));
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn close_action_drop_ends_the_stream_without_a_close_frame() {
    let server = server_with(Faults {
        close_after: Some(CloseAfter {
            messages: 1,
            action: CloseAction::Drop,
        }),
        ..Faults::default()
    })
    .await;
    let mut ws = connect(&server.url()).await;
    send(&mut ws, longs("t", &[1])).await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("t", 1)]));
    assert!(matches!(next_event(&mut ws).await, Event::Gone));
    server.shutdown().await;
}

#[tokio::test]
async fn error_on_per_connection_message_n_rejects_it_on_every_connection() {
    let server = server_with(Faults {
        error_on: Some(ErrorOn {
            message: MessageIndex::PerConnection(1),
            status: STATUS_WRITE_ERROR,
        }),
        ..Faults::default()
    })
    .await;
    for conn in 0..2 {
        let mut ws = connect(&server.url()).await;
        for v in 0..3 {
            send(&mut ws, longs("t", &[v])).await;
        }
        let base = conn * 2;
        assert_eq!(next_frame(&mut ws).await, ok(0, &[("t", base + 1)]));
        match next_frame(&mut ws).await {
            Response::Error(e) => assert_eq!((e.status(), e.sequence()), (STATUS_WRITE_ERROR, 1)),
            other => panic!("expected WRITE_ERROR on message 1, got {other:?}"),
        }
        // The rejected message advanced no seqTxn.
        assert_eq!(next_frame(&mut ws).await, ok(2, &[("t", base + 2)]));
    }
    let values: Vec<i64> = server.rows("t").iter().map(|r| r.wire_seq).collect();
    assert_eq!(values, [0, 2, 0, 2]);
    server.shutdown().await;
}

#[tokio::test]
async fn error_on_global_message_n_fires_once_across_connections() {
    let server = server_with(Faults::default()).await;
    server
        .set_faults(Faults {
            error_on: Some(ErrorOn {
                message: MessageIndex::Global(1),
                status: 0x01,
            }),
            ..Faults::default()
        })
        .unwrap();
    let mut a = connect(&server.url()).await;
    let mut b = connect(&server.url()).await;
    send(&mut a, longs("t", &[1])).await;
    assert_eq!(next_frame(&mut a).await, ok(0, &[("t", 1)]));
    send(&mut b, longs("t", &[2])).await;
    match next_frame(&mut b).await {
        // An unknown status byte goes out as is: the client must HALT on it.
        Response::Error(e) => assert_eq!((e.status(), e.sequence()), (0x01, 0)),
        other => panic!("expected status 01, got {other:?}"),
    }
    send(&mut b, longs("t", &[3])).await;
    assert_eq!(next_frame(&mut b).await, ok(1, &[("t", 2)]));
    drop((a, b));
    server.shutdown().await;
}

#[tokio::test]
async fn faulted_message_still_feeds_the_connection_dictionary() {
    let server = server_with(Faults {
        error_on: Some(ErrorOn {
            message: MessageIndex::PerConnection(0),
            status: STATUS_SCHEMA_MISMATCH,
        }),
        ..Faults::default()
    })
    .await;
    let mut ws = connect(&server.url()).await;
    send(
        &mut ws,
        Msg::new()
            .delta(0, &["x"])
            .table("t", 1, vec![symbol("s", &[Some(0)])])
            .build(),
    )
    .await;
    send(
        &mut ws,
        Msg::new()
            .table("t", 1, vec![symbol("s", &[Some(0)])])
            .build(),
    )
    .await;
    assert!(
        matches!(next_frame(&mut ws).await, Response::Error(e) if e.status() == STATUS_SCHEMA_MISMATCH)
    );
    assert_eq!(next_frame(&mut ws).await, ok(1, &[("t", 1)]));
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn withheld_oks_are_never_sent_but_rows_are_committed() {
    let server = server_with(Faults {
        ok_delivery: OkDelivery::Withhold,
        ..Faults::default()
    })
    .await;
    let mut ws = connect(&server.url()).await;
    send(&mut ws, longs("t", &[1])).await;
    send(&mut ws, b"junk".to_vec()).await;
    send(&mut ws, longs("t", &[2])).await;
    server
        .wait_for(BOUND, |s| s.oks_withheld == 2 && s.errors_sent == 1)
        .await
        .unwrap();
    let frames = close_and_collect(&mut ws).await;
    assert!(
        matches!(frames.as_slice(), [Response::Error(e)] if e.sequence() == 1),
        "{frames:?}"
    );
    assert_eq!(server.rows("t").len(), 2);
    assert_eq!(server.stats().oks_sent, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn delayed_oks_arrive_in_order_with_errors_behind_them() {
    let server = server_with(Faults {
        ok_delivery: OkDelivery::Delay(Duration::from_millis(20)),
        ..Faults::default()
    })
    .await;
    let mut ws = connect(&server.url()).await;
    send(&mut ws, longs("t", &[1])).await;
    send(&mut ws, b"junk".to_vec()).await;
    send(&mut ws, longs("t", &[2])).await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("t", 1)]));
    assert!(matches!(next_frame(&mut ws).await, Response::Error(e) if e.sequence() == 1));
    assert_eq!(next_frame(&mut ws).await, ok(2, &[("t", 2)]));
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn first_k_upgrades_get_421_with_the_role_then_succeed() {
    let server = server_with(Faults {
        reject_upgrades: Some(RejectUpgrades {
            count: 2,
            with: UpgradeReject::Role("PRIMARY_CATCHUP".into()),
        }),
        ..Faults::default()
    })
    .await;
    for _ in 0..2 {
        let resp = refused(&server.url(), &[]).await;
        assert_eq!(resp.status(), 421);
        let headers: Vec<_> = resp
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_bytes()))
            .collect();
        assert_eq!(
            classify_upgrade(421, headers.iter().copied(), 1, false),
            UpgradeOutcome::RoleReject {
                transient: true,
                role: "PRIMARY_CATCHUP".into()
            }
        );
    }
    let (ws, _) = try_connect(&server.url(), &[]).await.unwrap();
    assert_eq!(server.stats().upgrades_rejected, 2);
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn first_k_upgrades_get_401_then_succeed_and_set_faults_rearms() {
    let reject = Faults {
        reject_upgrades: Some(RejectUpgrades {
            count: 1,
            with: UpgradeReject::Unauthorized,
        }),
        ..Faults::default()
    };
    let server = server_with(reject.clone()).await;
    // A wrong path does not consume the reject.
    let wrong = format!("ws://{}/nope", server.local_addr());
    assert_eq!(refused(&wrong, &[]).await.status(), 404);
    assert_eq!(refused(&server.url(), &[]).await.status(), 401);
    assert!(try_connect(&server.url(), &[]).await.is_ok());
    server.set_faults(reject).unwrap();
    assert_eq!(refused(&server.url(), &[]).await.status(), 401);
    assert!(try_connect(&server.url(), &[]).await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn forced_version_header_is_answered_and_out_of_range_for_the_client() {
    let server = server_with(Faults {
        version_header: Some("2".into()),
        ..Faults::default()
    })
    .await;
    let (ws, resp) = try_connect(&server.url(), &[("X-QWP-Max-Version", "1")])
        .await
        .unwrap();
    assert_eq!(resp.headers().get("X-QWP-Version").unwrap(), "2");
    let headers: Vec<_> = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    assert_eq!(
        classify_upgrade(101, headers.iter().copied(), 1, false),
        UpgradeOutcome::TransportError(UpgradeFailure::VersionOutOfRange {
            version: 2,
            client_max: 1
        })
    );
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn omitted_durable_echo_means_no_header_and_no_durable_frames() {
    let cfg = ServerConfig::local()
        .with_durable_ack(DurableAckMode::After(Duration::ZERO))
        .with_faults(Faults {
            omit_durable_echo: true,
            ..Faults::default()
        });
    let server = Server::bind(cfg).await.unwrap();
    let (mut ws, resp) = try_connect(&server.url(), &[("X-QWP-Request-Durable-Ack", "true")])
        .await
        .unwrap();
    assert!(resp.headers().get("X-QWP-Durable-Ack").is_none());
    send(&mut ws, longs("t", &[1])).await;
    assert_eq!(close_and_collect(&mut ws).await, vec![ok(0, &[("t", 1)])]);
    assert_eq!(server.stats().durable_acks_sent, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_fault_switches_are_refused_at_bind_and_at_runtime() {
    let bad = Faults {
        close_after: Some(CloseAfter {
            messages: 1,
            action: CloseAction::Code(1006),
        }),
        ..Faults::default()
    };
    assert!(Server::bind(ServerConfig::local().with_faults(bad.clone()))
        .await
        .is_err());
    let server = server_with(Faults::default()).await;
    assert!(server.set_faults(bad).is_err());
    server.shutdown().await;
}

/// A server restart forgets everything: a fresh server on the same port
/// numbers seqTxns from 1 again and has no rows.
#[tokio::test]
async fn restart_on_the_same_port_forgets_state() {
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let addr = server.local_addr();
    let mut ws = connect(&server.url()).await;
    send(&mut ws, longs("t", &[1])).await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("t", 1)]));
    let (code, ()) = tokio::join!(
        async {
            let c = next_event(&mut ws).await;
            let _ = next_event(&mut ws).await; // answer the close handshake
            c
        },
        server.shutdown()
    );
    assert!(matches!(code, Event::Close(Some(1001))));

    let again = Server::bind(ServerConfig::new(addr)).await.unwrap();
    let mut ws = connect(&again.url()).await;
    send(&mut ws, longs("t", &[2])).await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("t", 1)]));
    assert_eq!(again.rows("t").len(), 1);
    drop(ws);
    again.shutdown().await;
}

#[tokio::test]
async fn unreachable_delays_never_deliver_and_never_panic() {
    let cfg = ServerConfig::local()
        .with_durable_ack(DurableAckMode::After(Duration::MAX))
        .with_faults(Faults {
            ok_delivery: OkDelivery::Delay(Duration::MAX),
            ..Faults::default()
        });
    let server = Server::bind(cfg).await.unwrap();
    let (mut ws, _) = try_connect(&server.url(), &[("X-QWP-Request-Durable-Ack", "true")])
        .await
        .unwrap();
    send(&mut ws, longs("t", &[1])).await;
    send(&mut ws, longs("t", &[2])).await;
    assert!(close_and_collect(&mut ws).await.is_empty());
    let stats = server.stats();
    assert_eq!(
        (stats.oks_withheld, stats.oks_sent, stats.durable_acks_sent),
        (2, 0, 0)
    );
    assert_eq!(server.rows("t").len(), 2);
    server.shutdown().await;
}
