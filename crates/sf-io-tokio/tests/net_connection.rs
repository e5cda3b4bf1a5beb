//! The live connection: one binary message per QWP frame in order, PING
//! and PONG both ways, and every way a connection ends mapped to
//! `Disconnected { close_code, reason }`.

mod net_support;

use futures_util::{SinkExt, StreamExt};
use net_support::{connect_ok, serve_one, settings, Answer};
use sf_io_tokio::net::{DisconnectReason, NetEvent, CLOSE_NORMAL};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type ServerWs = WebSocketStream<TcpStream>;

/// Echoes every binary message back; answers PINGs (tungstenite does it
/// while reading); ends when the client closes.
async fn echo(mut ws: ServerWs) {
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Binary(bytes) = message {
            if ws.send(Message::Binary(bytes)).await.is_err() {
                return;
            }
        }
    }
}

#[tokio::test]
async fn each_frame_is_one_binary_message_echoed_in_order() {
    let (host, _) = serve_one(Answer::Accept(vec![]), echo).await;
    let (mut tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;

    // Sizes around the 125/126 and 65535/65536 length-encoding boundaries,
    // an empty message and one of 1 MiB.
    let frames: Vec<Vec<u8>> = [0usize, 1, 12, 125, 126, 65_535, 65_536, 1 << 20]
        .iter()
        .enumerate()
        .map(|(i, &len)| (0..len).map(|b| (b + i) as u8).collect())
        .collect();
    for frame in &frames {
        tx.send_frame(frame).await.unwrap();
    }
    for frame in &frames {
        match rx.next_event().await {
            NetEvent::Received(bytes) => assert_eq!(&bytes[..], &frame[..], "len {}", frame.len()),
            other => panic!("expected frame of {} bytes, got {other:?}", frame.len()),
        }
    }
}

#[tokio::test]
async fn server_ping_is_answered_with_a_pong() {
    let (host, _) = serve_one(Answer::Accept(vec![]), |mut ws: ServerWs| async move {
        ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
        // Report what came back, as a binary message the client can read.
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Pong(payload) = message {
                let mut report = b"pong:".to_vec();
                report.extend_from_slice(&payload);
                ws.send(Message::Binary(report.into())).await.unwrap();
                return;
            }
        }
    })
    .await;
    let (_tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;
    // The PING is not surfaced; the PONG goes out while the receiver waits.
    assert_eq!(
        rx.next_event().await,
        NetEvent::Received(b"pong:hi".to_vec().into())
    );
}

#[tokio::test]
async fn our_ping_gets_a_pong_with_a_two_byte_payload() {
    let (payload_tx, payload_rx) = tokio::sync::oneshot::channel();
    let (host, _) = serve_one(Answer::Accept(vec![]), |mut ws: ServerWs| async move {
        let mut payload_tx = Some(payload_tx);
        while let Some(Ok(message)) = ws.next().await {
            if let (Message::Ping(payload), Some(tx)) = (message, payload_tx.take()) {
                let _ = tx.send(payload.to_vec());
            }
        }
    })
    .await;
    let (mut tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;
    tx.ping().await.unwrap();
    assert_eq!(rx.next_event().await, NetEvent::Pong);
    assert_eq!(payload_rx.await.unwrap().len(), 2);
    tx.ping().await.unwrap();
    assert_eq!(rx.next_event().await, NetEvent::Pong);
}

#[tokio::test]
async fn server_close_1008_is_reported_with_its_code() {
    let (host, _) = serve_one(Answer::Accept(vec![]), |mut ws: ServerWs| async move {
        ws.close(Some(CloseFrame {
            code: CloseCode::Policy,
            reason: "policy violated".into(),
        }))
        .await
        .unwrap();
        // Finish the close handshake: read until the client's answer.
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let (_tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;
    assert_eq!(
        rx.next_event().await,
        NetEvent::Disconnected {
            close_code: Some(1008),
            reason: DisconnectReason::ServerClose("policy violated".to_owned()),
        }
    );
    // The connection is over; later calls say so without blocking.
    assert_eq!(
        rx.next_event().await,
        NetEvent::Disconnected {
            close_code: None,
            reason: DisconnectReason::Ended,
        }
    );
}

#[tokio::test]
async fn server_close_is_answered_with_our_close() {
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    let (host, _) = serve_one(Answer::Accept(vec![]), |mut ws: ServerWs| async move {
        ws.send(Message::Close(Some(CloseFrame {
            code: CloseCode::Away,
            reason: "".into(),
        })))
        .await
        .unwrap();
        let mut seen_tx = Some(seen_tx);
        while let Some(Ok(message)) = ws.next().await {
            if let (Message::Close(frame), Some(tx)) = (message, seen_tx.take()) {
                let _ = tx.send(frame.map(|f| u16::from(f.code)));
            }
        }
    })
    .await;
    let (_tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;
    assert!(matches!(
        rx.next_event().await,
        NetEvent::Disconnected {
            close_code: Some(1001),
            ..
        }
    ));
    // tungstenite echoes the code of the close it answers.
    assert_eq!(seen_rx.await.unwrap(), Some(1001));
}

#[tokio::test]
async fn abrupt_drop_is_a_disconnect_without_close_code() {
    let (host, _) = serve_one(Answer::Accept(vec![]), |ws: ServerWs| async move {
        // Drop the TCP stream without a close frame.
        drop(ws);
    })
    .await;
    let (_tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;
    match rx.next_event().await {
        NetEvent::Disconnected {
            close_code: None,
            reason: DisconnectReason::Eof | DisconnectReason::Io { .. },
        } => {}
        other => panic!("expected a disconnect without close code, got {other:?}"),
    }
}

#[tokio::test]
async fn text_message_is_a_protocol_failure() {
    let (host, _) = serve_one(Answer::Accept(vec![]), |mut ws: ServerWs| async move {
        ws.send(Message::text("not qwp")).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let (_tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;
    assert_eq!(
        rx.next_event().await,
        NetEvent::Disconnected {
            close_code: None,
            reason: DisconnectReason::TextMessage,
        }
    );
}

#[tokio::test]
async fn our_clean_close_sends_1000_and_ends_on_the_server_answer() {
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    let (host, _) = serve_one(Answer::Accept(vec![]), |mut ws: ServerWs| async move {
        let mut seen_tx = Some(seen_tx);
        while let Some(Ok(message)) = ws.next().await {
            if let (Message::Close(frame), Some(tx)) = (message, seen_tx.take()) {
                let _ = tx.send(frame.map(|f| (u16::from(f.code), f.reason.to_string())));
            }
        }
    })
    .await;
    let (mut tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;
    tx.close(CLOSE_NORMAL, "done").await.unwrap();
    assert_eq!(seen_rx.await.unwrap(), Some((1000, "done".to_owned())));
    // The server's answering close ends the receiver.
    assert!(matches!(
        rx.next_event().await,
        NetEvent::Disconnected {
            close_code: Some(1000),
            ..
        }
    ));
}

#[tokio::test]
async fn receiving_does_not_block_sending_on_one_task() {
    // One task drives both halves with select!: a frame goes out while the
    // receiver is parked, and its echo comes back through the receiver.
    let (host, _) = serve_one(Answer::Accept(vec![]), echo).await;
    let (mut tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;
    let (cmd_tx, mut cmd_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    cmd_tx.send(b"first".to_vec()).await.unwrap();
    cmd_tx.send(b"second".to_vec()).await.unwrap();
    let mut received = Vec::new();
    while received.len() < 2 {
        tokio::select! {
            event = rx.next_event() => match event {
                NetEvent::Received(bytes) => received.push(bytes.to_vec()),
                other => panic!("unexpected {other:?}"),
            },
            Some(frame) = cmd_rx.recv() => tx.send_frame(&frame).await.unwrap(),
        }
    }
    assert_eq!(received, vec![b"first".to_vec(), b"second".to_vec()]);
}

#[tokio::test]
async fn sending_after_the_server_went_away_is_a_send_error() {
    let (host, _) = serve_one(Answer::Accept(vec![]), |ws: ServerWs| async move {
        drop(ws);
    })
    .await;
    let (mut tx, mut rx) = connect_ok(&host, &settings(&format!("ws::addr={host};"))).await;
    assert!(matches!(
        rx.next_event().await,
        NetEvent::Disconnected {
            close_code: None,
            ..
        }
    ));
    let error = tx.send_frame(b"too late").await.unwrap_err();
    assert_eq!(error.host, host);
}
