//! The upgrade request and the hand-over of the server's answer: QWP and
//! auth headers on the wire, non-101 statuses returned intact for the core
//! to classify, and transport failures typed by stage.

mod net_support;

use net_support::{serve_one, settings, Answer};
use qwp_proto::upgrade::{
    classify_upgrade, FailoverClass, UpgradeFailure, UpgradeOutcome, CLIENT_MAX_VERSION,
};
use sf_io_tokio::net::{connect, ConnectCause, ConnectStage, UpgradeResult};

async fn idle(_ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>) {}

#[tokio::test]
async fn upgrade_request_carries_qwp_headers_and_basic_auth() {
    let (host, request) = serve_one(Answer::Accept(vec![]), idle).await;
    let conf = format!("ws::addr={host};username=user;password=pass;request_durable_ack=on;");
    let result = connect(&host, &settings(&conf)).await.unwrap();
    assert!(matches!(result, UpgradeResult::Switched { .. }));

    let request = request.await.unwrap();
    assert_eq!(request.path, "/write/v4");
    assert_eq!(request.header("X-QWP-Max-Version"), Some("1"));
    assert_eq!(request.header("X-QWP-Client-Id"), Some("rust-test/0.1"));
    assert_eq!(request.header("X-QWP-Request-Durable-Ack"), Some("true"));
    assert_eq!(request.header("Authorization"), Some("Basic dXNlcjpwYXNz"));
    assert_eq!(request.header("Upgrade"), Some("websocket"));
}

#[tokio::test]
async fn upgrade_request_carries_bearer_token_and_no_durable_header_by_default() {
    let (host, request) = serve_one(Answer::Accept(vec![]), idle).await;
    let conf = format!("ws::addr={host};token=s3cr3t.t0ken;");
    connect(&host, &settings(&conf)).await.unwrap();

    let request = request.await.unwrap();
    assert_eq!(request.header("Authorization"), Some("Bearer s3cr3t.t0ken"));
    assert_eq!(request.header("X-QWP-Request-Durable-Ack"), None);
    assert_eq!(request.header("X-QWP-Max-Version"), Some("1"));
}

#[tokio::test]
async fn upgrade_without_credentials_sends_no_authorization_header() {
    let (host, request) = serve_one(Answer::Accept(vec![]), idle).await;
    connect(&host, &settings(&format!("ws::addr={host};")))
        .await
        .unwrap();
    assert_eq!(request.await.unwrap().header("Authorization"), None);
}

#[tokio::test]
async fn accepted_upgrade_returns_101_headers_for_version_and_durable_echo() {
    let (host, _request) = serve_one(
        Answer::Accept(vec![
            ("x-qwp-version", "1"),
            ("x-qwp-durable-ack", "enabled"),
        ]),
        idle,
    )
    .await;
    let settings = settings(&format!("ws::addr={host};request_durable_ack=on;"));
    let result = connect(&host, &settings).await.unwrap();
    let response = result.response();
    assert_eq!(response.status, 101);
    assert_eq!(response.host, host);
    assert_eq!(
        classify_upgrade(
            response.status,
            response.header_pairs(),
            CLIENT_MAX_VERSION,
            settings.durable_ack_requested()
        ),
        UpgradeOutcome::Accepted {
            version: 1,
            durable_ack: true
        }
    );
}

/// Brief §14.19: the adapter returns every non-101 answer intact; what it
/// means is the core's call, shown here through `classify_upgrade`.
#[tokio::test]
async fn brief_14_19_non_101_statuses_are_returned_intact_for_classification() {
    type Case = (u16, Vec<(&'static str, &'static str)>, UpgradeOutcome);
    let cases: Vec<Case> = vec![
        (401, vec![], UpgradeOutcome::AuthError { status: 401 }),
        (
            403,
            vec![("www-authenticate", "Basic")],
            UpgradeOutcome::AuthError { status: 403 },
        ),
        (
            421,
            vec![("x-questdb-role", "PRIMARY_CATCHUP")],
            UpgradeOutcome::RoleReject {
                transient: true,
                role: "PRIMARY_CATCHUP".to_owned(),
            },
        ),
        (
            421,
            vec![("x-questdb-role", "REPLICA")],
            UpgradeOutcome::RoleReject {
                transient: false,
                role: "REPLICA".to_owned(),
            },
        ),
        (
            503,
            vec![("retry-after", "1")],
            UpgradeOutcome::TransportError(UpgradeFailure::UnexpectedStatus(503)),
        ),
    ];
    for (status, headers, expected) in cases {
        let (host, _request) = serve_one(Answer::Reject(status, headers.clone()), idle).await;
        let result = connect(&host, &settings(&format!("ws::addr={host};")))
            .await
            .unwrap();
        let UpgradeResult::Rejected(response) = result else {
            panic!("{status}: expected a rejected upgrade");
        };
        assert_eq!(response.status, status);
        assert_eq!(response.host, host);
        for (name, value) in &headers {
            assert!(
                response
                    .headers
                    .iter()
                    .any(|(n, v)| n == name && v.as_slice() == value.as_bytes()),
                "{status}: header {name} missing from {:?}",
                response.headers
            );
        }
        let outcome = classify_upgrade(status, response.header_pairs(), CLIENT_MAX_VERSION, false);
        assert_eq!(outcome, expected, "{status}");
        if status == 401 || status == 403 {
            assert!(matches!(
                outcome.failover_class(),
                FailoverClass::Terminal(_)
            ));
        }
    }
}

#[tokio::test]
async fn auth_timeout_bounds_a_server_that_never_answers_the_upgrade() {
    let (listener, host) = net_support::listener().await;
    let (release, hold) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        // Accept the TCP connection, read nothing, answer nothing.
        let (socket, _) = listener.accept().await.unwrap();
        let _ = hold.await;
        drop(socket);
    });
    let conf = format!("ws::addr={host};auth_timeout_ms=200;");
    let error = connect(&host, &settings(&conf)).await.unwrap_err();
    assert_eq!(error.stage, ConnectStage::Timeout);
    assert_eq!(error.host, host);
    assert!(
        matches!(error.cause, ConnectCause::TimedOut(d) if d.as_millis() == 200),
        "{error}"
    );
    drop(release);
}

#[tokio::test]
async fn refused_tcp_connect_is_a_tcp_stage_error() {
    // Bind then drop: the port is free and nothing listens on it.
    let host = {
        let (listener, host) = net_support::listener().await;
        drop(listener);
        host
    };
    let error = connect(&host, &settings(&format!("ws::addr={host};")))
        .await
        .unwrap_err();
    assert_eq!(error.stage, ConnectStage::Tcp);
    assert_eq!(error.host, host);
    assert!(
        matches!(&error.cause, ConnectCause::Io(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "{error}"
    );
    assert!(error.to_string().contains("tcp"), "{error}");
}

#[tokio::test]
async fn a_non_http_answer_is_an_upgrade_stage_error() {
    use tokio::io::AsyncWriteExt;
    let (listener, host) = net_support::listener().await;
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let _ = socket.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    });
    let error = connect(&host, &settings(&format!("ws::addr={host};")))
        .await
        .unwrap_err();
    assert_eq!(error.stage, ConnectStage::Upgrade, "{error}");
}

#[tokio::test]
async fn ipv6_host_is_bracketed_in_the_upgrade_request() {
    let listener = tokio::net::TcpListener::bind("[::1]:0")
        .await
        .expect("this test needs the IPv6 loopback");
    let port = listener.local_addr().unwrap().port();
    let host = sf_core::config::HostPort::new("::1", port).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        #[allow(clippy::result_large_err)]
        let callback = |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                        response| {
            let host = request.headers().get("host").map(|v| v.as_bytes().to_vec());
            let _ = tx.send(host);
            Ok(response)
        };
        let _ = tokio_tungstenite::accept_hdr_async(tcp, callback).await;
    });
    let result = connect(&host, &settings(&format!("ws::addr={host};")))
        .await
        .unwrap();
    assert_eq!(result.response().status, 101);
    assert_eq!(
        rx.await.unwrap(),
        Some(format!("[::1]:{port}").into_bytes())
    );
}
