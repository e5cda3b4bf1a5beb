//! Round trips over real sockets: numbering, seqTxn, rows, JSONL, the
//! connection dictionary, parse errors, auth, durable ACKs, shutdown.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use qwp_proto::decoder::Value;
use qwp_proto::response::{DurableAckFrame, OkFrame, Response, TableSeqTxn};
use qwp_proto::status::STATUS_PARSE_ERROR;
use qwp_proto::upgrade::{classify_upgrade, UpgradeOutcome};
use qwp_server::{Auth, ConnectionId, DurableAckMode, Server, ServerConfig};
use support::*;
use tokio_tungstenite::tungstenite::Message;

fn ok(sequence: i64, tables: &[(&str, i64)]) -> Response {
    Response::Ok(OkFrame {
        sequence,
        tables: tables
            .iter()
            .map(|(n, s)| TableSeqTxn::new(*n, *s))
            .collect(),
    })
}

fn durable(tables: &[(&str, i64)]) -> Response {
    Response::DurableAck(DurableAckFrame {
        tables: tables
            .iter()
            .map(|(n, s)| TableSeqTxn::new(*n, *s))
            .collect(),
    })
}

#[tokio::test]
async fn ok_sequences_count_from_zero_and_seq_txn_is_per_table() {
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let mut ws = connect(&server.url()).await;
    send(&mut ws, longs("a", &[1, 2])).await;
    let two_tables = Msg::new()
        .table("a", 1, vec![long("v", &[Some(3)])])
        .table("b", 1, vec![long("v", &[Some(4)])])
        .table("a", 1, vec![long("v", &[Some(5)])])
        .build();
    send(&mut ws, two_tables).await;
    send(&mut ws, Msg::new().build()).await; // no tables
    send(
        &mut ws,
        Msg::new().table("c", 0, vec![long("v", &[])]).build(),
    )
    .await; // no rows
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("a", 1)]));
    assert_eq!(next_frame(&mut ws).await, ok(1, &[("a", 2), ("b", 1)]));
    assert_eq!(next_frame(&mut ws).await, ok(2, &[]));
    assert_eq!(next_frame(&mut ws).await, ok(3, &[]));

    // A second connection numbers from 0 again; seqTxn is server-wide.
    let mut ws2 = connect(&server.url()).await;
    send(&mut ws2, longs("a", &[6])).await;
    assert_eq!(next_frame(&mut ws2).await, ok(0, &[("a", 3)]));

    let rows = server.rows("a");
    let seen: Vec<_> = rows
        .iter()
        .map(|r| (r.connection, r.wire_seq, r.seq_txn, r.value("v").cloned()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (ConnectionId(0), 0, 1, Some(Value::Long(1))),
            (ConnectionId(0), 0, 1, Some(Value::Long(2))),
            (ConnectionId(0), 1, 2, Some(Value::Long(3))),
            (ConnectionId(0), 1, 2, Some(Value::Long(5))),
            (ConnectionId(1), 0, 3, Some(Value::Long(6))),
        ]
    );
    assert_eq!(server.rows("b").len(), 1);
    assert!(server.rows("c").is_empty());
    assert_eq!(server.seq_txn("c"), 0);
    let stats = server.stats();
    assert_eq!((stats.messages, stats.rows, stats.oks_sent), (5, 6, 5));
    assert_eq!(stats.connections, 2);
    drop(ws);
    drop(ws2);
    server.shutdown().await;
}

#[tokio::test]
async fn jsonl_lines_are_exactly_the_cli_contract() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::bind(ServerConfig::local().with_data_dir(&data))
        .await
        .unwrap();
    let mut ws = connect(&server.url()).await;
    let msg = Msg::new()
        .delta(0, &["eu", "us"])
        .table(
            "trades",
            2,
            vec![
                symbol("venue", &[Some(1), None]),
                varchar("note", &[Some("a \"q\""), Some("ü")]),
                long("qty", &[None, Some(7)]),
                long_sentinel("px", &[i64::MIN, 3]),
                designated_ts(&[1_700_000_000_000_000, 1_700_000_000_000_001]),
            ],
        )
        .build();
    send(&mut ws, msg).await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("trades", 1)]));
    send(&mut ws, longs("other", &[1])).await;
    assert_eq!(next_frame(&mut ws).await, ok(1, &[("other", 1)]));
    let text = std::fs::read_to_string(data.join("trades.jsonl")).unwrap();
    assert_eq!(
        text,
        concat!(
            r#"{"venue":"us","note":"a \"q\"","qty":null,"px":null,"timestamp":1700000000000000}"#,
            "\n",
            r#"{"venue":null,"note":"ü","qty":7,"px":3,"timestamp":1700000000000001}"#,
            "\n"
        )
    );
    assert_eq!(
        std::fs::read_to_string(data.join("other.jsonl")).unwrap(),
        "{\"v\":1}\n"
    );
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn invalid_table_name_is_a_write_error_and_writes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::bind(ServerConfig::local().with_data_dir(dir.path()))
        .await
        .unwrap();
    let mut ws = connect(&server.url()).await;
    send(&mut ws, longs("../escape", &[1])).await;
    match next_frame(&mut ws).await {
        Response::Error(e) => {
            assert_eq!(
                (e.status(), e.sequence()),
                (qwp_proto::status::STATUS_WRITE_ERROR, 0)
            );
            assert!(
                e.message().contains("invalid table name"),
                "{}",
                e.message()
            );
        }
        other => panic!("expected WRITE_ERROR, got {other:?}"),
    }
    assert!(!dir.path().parent().unwrap().join("escape.jsonl").exists());
    assert_eq!(server.seq_txn("../escape"), 0);
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn dictionary_accumulates_across_messages_and_accepts_sf_redeclaration() {
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let mut ws = connect(&server.url()).await;
    // Delta mode: ids 0, 1 then 2 appended; message 1 uses ids from both.
    send(
        &mut ws,
        Msg::new()
            .delta(0, &["us", "eu"])
            .table("t", 1, vec![symbol("s", &[Some(0)])])
            .build(),
    )
    .await;
    send(
        &mut ws,
        Msg::new()
            .delta(2, &["asia"])
            .table("t", 2, vec![symbol("s", &[Some(1), Some(2)])])
            .build(),
    )
    .await;
    // SF frame: re-declares from id 0, with one more entry.
    send(
        &mut ws,
        Msg::new()
            .delta(0, &["us", "eu", "asia", "af"])
            .table("t", 1, vec![symbol("s", &[Some(3)])])
            .build(),
    )
    .await;
    // Empty delta: ids resolve against the accumulated dictionary alone.
    send(
        &mut ws,
        Msg::new()
            .table("t", 1, vec![symbol("s", &[Some(2)])])
            .build(),
    )
    .await;
    for seq in 0..4 {
        assert!(matches!(next_frame(&mut ws).await, Response::Ok(f) if f.sequence == seq));
    }
    let syms: Vec<_> = server
        .rows("t")
        .iter()
        .map(|r| match r.value("s") {
            Some(Value::Symbol { value, .. }) => value.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(syms, ["us", "eu", "asia", "af", "asia"]);

    // A new connection starts with an empty dictionary: id 3 is unknown.
    let mut ws2 = connect(&server.url()).await;
    send(
        &mut ws2,
        Msg::new()
            .table("t", 1, vec![symbol("s", &[Some(3)])])
            .build(),
    )
    .await;
    assert!(
        matches!(next_frame(&mut ws2).await, Response::Error(e) if e.status() == STATUS_PARSE_ERROR)
    );
    drop(ws);
    drop(ws2);
    server.shutdown().await;
}

/// wire-brief §12 Ex 4 (flags 0x0C: Gorilla form `01` with two values) and
/// Ex 1 (flags 00, no delta dictionary), byte for byte.
#[tokio::test]
async fn spec_examples_decode_with_gorilla_and_plain_timestamps() {
    let ex4 = hex(
        "51 57 50 31 01 0c 01 00 50 00 00 00 00 02 07 73 65 72 76 65 72 31 07 73 65 72 76 65 72 32 \
         07 73 65 6e 73 6f 72 73 02 03 04 68 6f 73 74 09 04 74 65 6d 70 07 00 0a 00 00 01 00 66 66 \
         66 66 66 e6 56 40 9a 99 99 99 99 19 57 40 00 01 00 40 1e 18 24 0a 06 00 40 82 2d 18 24 0a 06 00",
    );
    let ex1 = hex(
        "51 57 50 31 01 00 01 00 4c 00 00 00 07 73 65 6e 73 6f 72 73 02 03 02 69 64 05 05 76 61 6c \
         75 65 07 02 74 73 0a 00 01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 00 cd cc cc cc cc \
         cc f4 3f 9a 99 99 99 99 99 01 40 00 00 e4 0b 54 02 00 00 00 80 1a 06 00 00 00 00 00",
    );
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let mut ws = connect(&server.url()).await;
    send(&mut ws, ex4).await;
    send(&mut ws, ex1).await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("sensors", 1)]));
    assert_eq!(next_frame(&mut ws).await, ok(1, &[("sensors", 2)]));
    let lines: Vec<String> = server
        .rows("sensors")
        .iter()
        .map(|r| serde_json::to_string(&r.to_json()).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            r#"{"host":"server1","temp":91.6,"timestamp":1700000000000000}"#,
            r#"{"host":"server2","temp":92.4,"timestamp":1700000001000000}"#,
            r#"{"id":1,"ts":10000000000,"value":1.3}"#,
            r#"{"id":2,"ts":400000,"value":2.2}"#,
        ]
    );
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn parse_error_frame_on_garbage_and_connection_stays_open() {
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let mut ws = connect(&server.url()).await;
    send(&mut ws, b"definitely not QWP".to_vec()).await;
    let mut truncated = longs("t", &[1]);
    truncated.pop();
    send(&mut ws, truncated).await;
    ws.send(Message::text("hello")).await.unwrap();
    send(&mut ws, longs("t", &[1])).await;
    for seq in 0..3 {
        match next_frame(&mut ws).await {
            Response::Error(e) => {
                assert_eq!((e.status(), e.sequence()), (STATUS_PARSE_ERROR, seq));
                assert!(e.message().starts_with("parse error: "), "{}", e.message());
            }
            other => panic!("expected PARSE_ERROR for {seq}, got {other:?}"),
        }
    }
    assert_eq!(next_frame(&mut ws).await, ok(3, &[("t", 1)]));
    assert_eq!(server.stats().errors_sent, 3);
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn both_paths_upgrade_and_version_is_negotiated_down_to_1() {
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let base = format!("ws://{}", server.local_addr());
    for path in ["/write/v4", "/api/v4/write"] {
        let (mut ws, resp) = try_connect(&format!("{base}{path}"), &[("X-QWP-Max-Version", "3")])
            .await
            .unwrap();
        assert_eq!(resp.headers().get("X-QWP-Version").unwrap(), "1", "{path}");
        assert!(resp.headers().get("X-QWP-Durable-Ack").is_none());
        send(&mut ws, longs("t", &[1])).await;
        assert!(matches!(next_frame(&mut ws).await, Response::Ok(f) if f.sequence == 0));
    }
    assert_eq!(
        refused(&format!("{base}/write/v3"), &[]).await.status(),
        404
    );
    assert_eq!(
        refused(&server.url(), &[("X-QWP-Max-Version", "0")])
            .await
            .status(),
        400
    );
    server.shutdown().await;
}

#[tokio::test]
async fn basic_auth_accepts_the_right_credentials_and_401s_the_rest() {
    let auth = Auth::Basic {
        username: "admin".into(),
        password: "quest".into(),
    };
    let server = Server::bind(ServerConfig::local().with_auth(auth))
        .await
        .unwrap();
    // base64("admin:quest") and base64("admin:wrong")
    assert!(try_connect(
        &server.url(),
        &[("Authorization", "Basic YWRtaW46cXVlc3Q=")]
    )
    .await
    .is_ok());
    for bad in [&[("Authorization", "Basic YWRtaW46d3Jvbmc=")][..], &[]] {
        assert_eq!(refused(&server.url(), bad).await.status(), 401);
    }
    assert_eq!(server.stats().upgrades_rejected, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn bearer_auth_accepts_the_right_token_and_401s_the_rest() {
    let auth = Auth::Bearer {
        token: "tok-1".into(),
    };
    let server = Server::bind(ServerConfig::local().with_auth(auth))
        .await
        .unwrap();
    assert!(
        try_connect(&server.url(), &[("Authorization", "Bearer tok-1")])
            .await
            .is_ok()
    );
    for bad in [
        &[("Authorization", "Bearer tok-2")][..],
        &[("Authorization", "Basic dG9rLTE=")],
        &[],
    ] {
        assert_eq!(refused(&server.url(), bad).await.status(), 401);
    }
    server.shutdown().await;
}

const ASK_DURABLE: (&str, &str) = ("X-QWP-Request-Durable-Ack", "true");

/// sf-client §11: the server flushes durable ACKs only on inbound activity.
/// Manual mode makes "durable" a test decision; the ACK then waits for the
/// client's PING and covers exactly the OK'd seqTxns.
#[tokio::test]
async fn w4_durable_ack_arrives_on_inbound_activity_and_covers_ok_seq_txns() {
    let server = Server::bind(ServerConfig::local().with_durable_ack(DurableAckMode::Manual))
        .await
        .unwrap();
    let (mut ws, resp) = try_connect(&server.url(), &[ASK_DURABLE]).await.unwrap();
    assert_eq!(resp.headers().get("X-QWP-Durable-Ack").unwrap(), "enabled");
    send(&mut ws, longs("a", &[1])).await;
    send(
        &mut ws,
        Msg::new()
            .table("a", 1, vec![long("v", &[Some(2)])])
            .table("b", 1, vec![long("v", &[Some(3)])])
            .build(),
    )
    .await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("a", 1)]));
    assert_eq!(next_frame(&mut ws).await, ok(1, &[("a", 2), ("b", 1)]));
    assert_eq!(server.stats().durable_acks_sent, 0);

    server.release_durable();
    ws.send(Message::Ping(b"ka".to_vec().into())).await.unwrap();
    assert_eq!(next_frame(&mut ws).await, durable(&[("a", 2), ("b", 1)]));

    // Cumulative and only what advanced: a third message touches b only.
    send(&mut ws, longs("b", &[4])).await;
    assert_eq!(next_frame(&mut ws).await, ok(2, &[("b", 2)]));
    server.release_durable();
    ws.send(Message::Ping(b"ka".to_vec().into())).await.unwrap();
    assert_eq!(next_frame(&mut ws).await, durable(&[("b", 2)]));
    // Nothing new is durable: a PING brings no frame.
    ws.send(Message::Ping(b"ka".to_vec().into())).await.unwrap();
    assert!(close_and_collect(&mut ws).await.is_empty());
    assert_eq!(server.stats().durable_acks_sent, 2);
    drop(ws);
    server.shutdown().await;
}

/// A commit is not durable before the configured delay; with a delay that
/// cannot elapse during the test, no DURABLE_ACK is ever sent despite
/// plenty of inbound activity.
#[tokio::test]
async fn w4_durable_ack_waits_for_the_delay() {
    let cfg =
        ServerConfig::local().with_durable_ack(DurableAckMode::After(Duration::from_secs(3600)));
    let server = Server::bind(cfg).await.unwrap();
    let (mut ws, _) = try_connect(&server.url(), &[ASK_DURABLE]).await.unwrap();
    send(&mut ws, longs("a", &[1])).await;
    send(&mut ws, longs("a", &[2])).await;
    ws.send(Message::Ping(b"ka".to_vec().into())).await.unwrap();
    let frames = close_and_collect(&mut ws).await;
    assert_eq!(frames, vec![ok(0, &[("a", 1)]), ok(1, &[("a", 2)])]);

    // Zero delay: due at once, sent on the message's own activity, after its OK.
    let cfg = ServerConfig::local().with_durable_ack(DurableAckMode::After(Duration::ZERO));
    let server2 = Server::bind(cfg).await.unwrap();
    let (mut ws, _) = try_connect(&server2.url(), &[ASK_DURABLE]).await.unwrap();
    send(&mut ws, longs("a", &[1])).await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("a", 1)]));
    assert_eq!(next_frame(&mut ws).await, durable(&[("a", 1)]));
    drop(ws);
    server.shutdown().await;
    server2.shutdown().await;
}

#[tokio::test]
async fn durable_ack_needs_server_support_and_the_client_request() {
    // Server without durable support: no echo, and the client's classifier
    // fails the connect.
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let (_ws, resp) = try_connect(&server.url(), &[ASK_DURABLE]).await.unwrap();
    let headers: Vec<_> = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    assert_eq!(
        classify_upgrade(101, headers.iter().copied(), 1, true),
        UpgradeOutcome::DurableAckNotEnabled { version: 1 }
    );
    // Durable-capable server, client did not ask: no echo, no frames.
    let server2 =
        Server::bind(ServerConfig::local().with_durable_ack(DurableAckMode::After(Duration::ZERO)))
            .await
            .unwrap();
    let (mut ws, resp) = try_connect(&server2.url(), &[]).await.unwrap();
    assert!(resp.headers().get("X-QWP-Durable-Ack").is_none());
    send(&mut ws, longs("a", &[1])).await;
    assert_eq!(close_and_collect(&mut ws).await, vec![ok(0, &[("a", 1)])]);
    drop(_ws);
    drop(ws);
    server.shutdown().await;
    server2.shutdown().await;
}

/// The close code the server sent, reading until the stream ends.
async fn until_gone(ws: &mut Ws) -> Option<u16> {
    let mut code = None;
    loop {
        match next_event(ws).await {
            Event::Close(c) => code = c,
            Event::Gone => return code,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001_and_stops_accepting() {
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let url = server.url();
    let mut a = connect(&url).await;
    let mut b = connect(&url).await;
    server
        .wait_for(BOUND, |s| s.open_connections == 2)
        .await
        .unwrap();
    // Each client reads on after the close frame so that it answers the
    // close handshake, as a real client does.
    let (close_a, close_b, ()) =
        tokio::join!(until_gone(&mut a), until_gone(&mut b), server.shutdown());
    for ev in [close_a, close_b] {
        assert_eq!(ev, Some(1001));
    }
    assert!(try_connect(&url, &[]).await.is_err());
}

#[tokio::test]
async fn wait_for_rows_returns_once_rows_land_and_times_out_otherwise() {
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let err = server
        .wait_for_rows(1, Duration::from_millis(1))
        .await
        .unwrap_err();
    assert_eq!(err.stats.rows, 0);
    let mut ws = connect(&server.url()).await;
    send(&mut ws, longs("t", &[1, 2, 3])).await;
    let stats = server.wait_for_rows(3, BOUND).await.unwrap();
    assert_eq!(stats.rows, 3);
    assert_eq!(server.rows("t").len(), 3);
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn without_retained_rows_rows_are_counted_and_persisted_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig::local()
        .with_retain_rows(false)
        .with_data_dir(dir.path());
    let server = Server::bind(cfg).await.unwrap();
    let mut ws = connect(&server.url()).await;
    send(&mut ws, longs("t", &[1, 2])).await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("t", 1)]));
    assert!(server.rows("t").is_empty());
    assert_eq!(server.stats().rows, 2);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("t.jsonl")).unwrap(),
        "{\"v\":1}\n{\"v\":2}\n"
    );
    drop(ws);
    server.shutdown().await;
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let mut cfg = ServerConfig::local();
    cfg.max_message_bytes = 64;
    let server = Server::bind(cfg).await.unwrap();
    let mut ws = connect(&server.url()).await;
    send(&mut ws, longs("t", &[1])).await;
    assert_eq!(next_frame(&mut ws).await, ok(0, &[("t", 1)]));
    send(&mut ws, longs("t", &[1; 20])).await;
    assert!(matches!(
        next_event(&mut ws).await,
        Event::Close(Some(1009))
    ));
    drop(ws);
    server.shutdown().await;
}

/// sf-client §7.1: per-table seqTxns are server-wide and increase; two
/// connections writing one table concurrently get distinct, gap-free
/// seqTxns, each increasing along its own connection.
#[tokio::test]
async fn concurrent_connections_share_one_gap_free_seq_txn_sequence() {
    let server = Server::bind(ServerConfig::local()).await.unwrap();
    let url = server.url();
    let client = |url: String| async move {
        let mut ws = connect(&url).await;
        for i in 0..20 {
            send(&mut ws, longs("t", &[i])).await;
        }
        let mut txns = Vec::new();
        for seq in 0..20 {
            match next_frame(&mut ws).await {
                Response::Ok(f) if f.sequence == seq => txns.push(f.tables[0].seq_txn),
                other => panic!("expected OK {seq}, got {other:?}"),
            }
        }
        txns
    };
    let (a, b) = tokio::join!(client(url.clone()), client(url.clone()));
    for txns in [&a, &b] {
        assert!(txns.windows(2).all(|w| w[0] < w[1]), "{txns:?}");
    }
    let mut all: Vec<i64> = a.into_iter().chain(b).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=40).collect::<Vec<_>>());
    assert_eq!(server.seq_txn("t"), 40);
    server.shutdown().await;
}
