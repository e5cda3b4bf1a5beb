//! `wss::`: a server with a certificate issued by a test CA. `tls_roots`
//! naming the CA connects; the system roots refuse it at the `tls` stage;
//! `tls_verify=unsafe_off` connects to anything.

mod net_support;

use std::io::Write;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use net_support::{connect_ok, serve_one_tls, settings};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sf_core::config::Config;
use sf_io_tokio::net::{
    connect, ConnectCause, ConnectSettings, ConnectStage, NetEvent, SettingsError, TlsSetupError,
};
use tokio_tungstenite::tungstenite::Message;

/// A test CA (its PEM) and a server configuration whose certificate it
/// issued for `127.0.0.1` and `localhost`.
struct TestPki {
    ca_pem: String,
    server: Arc<rustls::ServerConfig>,
}

fn test_pki() -> TestPki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "qwp-sf net test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let chain = vec![
        CertificateDer::from(leaf_cert.der().to_vec()),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    TestPki {
        ca_pem: ca_cert.pem(),
        server: Arc::new(server),
    }
}

type TlsWs =
    tokio_tungstenite::WebSocketStream<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>;

async fn echo(mut ws: TlsWs) {
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Binary(bytes) = message {
            if ws.send(Message::Binary(bytes)).await.is_err() {
                return;
            }
        }
    }
}

async fn assert_echo(conf: &str, host: &sf_core::config::HostPort) {
    let (mut tx, mut rx) = connect_ok(host, &settings(conf)).await;
    tx.send_frame(b"over tls").await.unwrap();
    assert_eq!(
        rx.next_event().await,
        NetEvent::Received(b"over tls".to_vec().into())
    );
}

#[tokio::test]
async fn tls_roots_naming_the_issuing_ca_connects() {
    let pki = test_pki();
    let mut roots = tempfile::NamedTempFile::new().unwrap();
    roots.write_all(pki.ca_pem.as_bytes()).unwrap();
    let (host, request) = serve_one_tls(pki.server.clone(), echo).await;
    let conf = format!(
        "wss::addr={host};tls_roots={};token=t;",
        roots.path().display()
    );
    assert_echo(&conf, &host).await;
    // The upgrade inside TLS carries the same headers.
    let request = request.await.unwrap();
    assert_eq!(request.path, "/write/v4");
    assert_eq!(request.header("authorization"), Some("Bearer t"));
}

#[tokio::test]
async fn system_roots_refuse_a_private_ca_at_the_tls_stage() {
    let pki = test_pki();
    let (host, _) = serve_one_tls(pki.server.clone(), echo).await;
    let error = connect(&host, &settings(&format!("wss::addr={host};")))
        .await
        .unwrap_err();
    assert_eq!(error.stage, ConnectStage::Tls, "{error}");
    assert_eq!(error.host, host);
    let ConnectCause::Io(io) = &error.cause else {
        panic!("expected an I/O-wrapped rustls error, got {error}");
    };
    let rustls_error = io
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
        .unwrap_or_else(|| panic!("not a rustls error: {io}"));
    assert!(
        matches!(rustls_error, rustls::Error::InvalidCertificate(_)),
        "{rustls_error:?}"
    );
}

#[tokio::test]
async fn unsafe_off_accepts_an_unverifiable_certificate() {
    let pki = test_pki();
    let (host, _) = serve_one_tls(pki.server.clone(), echo).await;
    assert_echo(&format!("wss::addr={host};tls_verify=unsafe_off;"), &host).await;
}

#[tokio::test]
async fn tls_roots_of_another_ca_refuse_the_server() {
    let pki = test_pki();
    let other = test_pki();
    let mut roots = tempfile::NamedTempFile::new().unwrap();
    roots.write_all(other.ca_pem.as_bytes()).unwrap();
    let (host, _) = serve_one_tls(pki.server.clone(), echo).await;
    let conf = format!("wss::addr={host};tls_roots={};", roots.path().display());
    let error = connect(&host, &settings(&conf)).await.unwrap_err();
    assert_eq!(error.stage, ConnectStage::Tls, "{error}");
}

#[tokio::test]
async fn plain_server_behind_wss_is_a_tls_stage_error() {
    // A plain WebSocket server answers the ClientHello with HTTP bytes.
    let (host, _) =
        net_support::serve_one(net_support::Answer::Accept(vec![]), |_ws| async {}).await;
    let error = connect(
        &host,
        &settings(&format!("wss::addr={host};tls_verify=unsafe_off;")),
    )
    .await
    .unwrap_err();
    assert_eq!(error.stage, ConnectStage::Tls, "{error}");
}

fn settings_error(conf: &str) -> SettingsError {
    ConnectSettings::from_config(&Config::from_conf(conf).unwrap(), "id").unwrap_err()
}

#[test]
fn unreadable_empty_or_garbage_tls_roots_are_typed_settings_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    assert!(matches!(
        settings_error(&format!("wss::addr=h;tls_roots={};", missing.display())),
        SettingsError::Tls(TlsSetupError::RootsUnreadable { .. })
    ));

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no pem here\n").unwrap();
    assert!(matches!(
        settings_error(&format!("wss::addr=h;tls_roots={};", empty.display())),
        SettingsError::Tls(TlsSetupError::RootsEmpty { .. })
    ));

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert!(matches!(
        settings_error(&format!("wss::addr=h;tls_roots={};", garbage.display())),
        SettingsError::Tls(TlsSetupError::RootRejected { index: 0, .. })
    ));
}

#[test]
fn tls_roots_password_is_refused_because_pem_has_none() {
    let pki = test_pki();
    let mut roots = tempfile::NamedTempFile::new().unwrap();
    roots.write_all(pki.ca_pem.as_bytes()).unwrap();
    assert!(matches!(
        settings_error(&format!(
            "wss::addr=h;tls_roots={};tls_roots_password=changeit;",
            roots.path().display()
        )),
        SettingsError::Tls(TlsSetupError::RootsPasswordUnsupported)
    ));
}

/// A server that accepts TCP but never speaks TLS: the handshake is cut at
/// the fixed bound. Time is paused and auto-advances while every task waits
/// on I/O, so the 5 s pass instantly; the test asserts the outcome, not how
/// long it took.
#[tokio::test(start_paused = true)]
async fn tls_handshake_is_bounded_by_the_fixed_timeout() {
    let (listener, host) = net_support::listener().await;
    let (release, hold) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let _ = hold.await;
        drop(socket);
    });
    let error = connect(
        &host,
        &settings(&format!("wss::addr={host};tls_verify=unsafe_off;")),
    )
    .await
    .unwrap_err();
    assert_eq!(error.stage, ConnectStage::Tls, "{error}");
    assert!(
        matches!(error.cause, ConnectCause::TimedOut(d) if d == sf_io_tokio::net::TLS_HANDSHAKE_TIMEOUT),
        "{error}"
    );
    drop(release);
}
