//! Bad connect strings and the error each must produce, plus the guarantees
//! about error text: it names the key, and never quotes a secret.

use sf_core::config::{Config, ConfigError};

type Expect = fn(&ConfigError) -> bool;

macro_rules! is {
    ($pat:pat $(if $guard:expr)?) => {
        (|e: &ConfigError| matches!(e, $pat $(if $guard)?)) as Expect
    };
}

const BAD: &[(&str, Expect)] = &[
    // Scheme.
    ("addr=h:1;", is!(ConfigError::MissingScheme)),
    ("ws:addr=h:1;", is!(ConfigError::MissingScheme)),
    ("", is!(ConfigError::MissingScheme)),
    ("::addr=h;", is!(ConfigError::MissingScheme)),
    (
        "http::addr=h:9000;",
        is!(ConfigError::UnsupportedScheme { scheme } if scheme == "http"),
    ),
    (
        "tcp::addr=h:9009;",
        is!(ConfigError::UnsupportedScheme { scheme } if scheme == "tcp"),
    ),
    (
        "udp::addr=h:9009;",
        is!(ConfigError::UnsupportedScheme { scheme } if scheme == "udp"),
    ),
    (
        "WS::addr=h;",
        is!(ConfigError::UnsupportedScheme { scheme } if scheme == "WS"),
    ),
    // Grammar.
    (
        "ws::addr=h;sf_dir;",
        is!(ConfigError::MissingEquals { fragment } if fragment == "sf_dir"),
    ),
    // `;;` is an escaped `;`, so this `addr` is `h;`, which is not a host.
    (
        "ws::addr=h;;",
        is!(ConfigError::InvalidAddr { entry, .. } if entry == "h;"),
    ),
    (
        "ws::addr=h;sf_dir=;",
        is!(ConfigError::MissingValue { key } if key == "sf_dir"),
    ),
    (
        "ws::addr=h;sf dir=x;",
        is!(ConfigError::InvalidKey { key } if key == "sf dir"),
    ),
    (
        "ws::addr=h; sf_dir=x;",
        is!(ConfigError::InvalidKey { key } if key == " sf_dir"),
    ),
    (
        "ws::addr=h;=x;",
        is!(ConfigError::InvalidKey { key } if key.is_empty()),
    ),
    (
        "ws::addr=h;sf_dir=a\tb;",
        is!(ConfigError::ControlCharacter { key } if key == "sf_dir"),
    ),
    // Keys.
    (
        "ws::addr=h;sf_dri=x;",
        is!(ConfigError::UnknownKey { key } if key == "sf_dri"),
    ),
    (
        "ws::addr=h;Addr=h;",
        is!(ConfigError::UnknownKey { key } if key == "Addr"),
    ),
    (
        "ws::addr=h;protocol_version=2;",
        is!(ConfigError::UnknownKey { key } if key == "protocol_version"),
    ),
    (
        "ws::addr=h;target=primary;",
        is!(ConfigError::EgressOnlyKey { key } if key == "target"),
    ),
    (
        "ws::addr=h;failover=off;",
        is!(ConfigError::EgressOnlyKey { key } if key == "failover"),
    ),
    (
        "ws::addr=h;failover_max_attempts=3;",
        is!(ConfigError::EgressOnlyKey { .. }),
    ),
    (
        "ws::addr=h;lb_strategy=first;",
        is!(ConfigError::EgressOnlyKey { .. }),
    ),
    (
        "ws::addr=h;sf_dir=a;sf_dir=b;",
        is!(ConfigError::DuplicateKey { key } if key == "sf_dir"),
    ),
    (
        "ws::addr=h;zone=a;zone=b;",
        is!(ConfigError::DuplicateKey { key } if key == "zone"),
    ),
    (
        "ws::addr=h;auto_flush=on;auto_flush=on;",
        is!(ConfigError::DuplicateKey { key } if key == "auto_flush"),
    ),
    // Addresses (brief §14.20 and friends).
    ("ws::sf_dir=x;", is!(ConfigError::MissingAddr)),
    ("ws::", is!(ConfigError::MissingAddr)),
    (
        "ws::addr=h1:1,,h2:2;",
        is!(ConfigError::EmptyAddrEntry { value } if value == "h1:1,,h2:2"),
    ),
    ("ws::addr=,h1:1;", is!(ConfigError::EmptyAddrEntry { .. })),
    ("ws::addr=h1:1,;", is!(ConfigError::EmptyAddrEntry { .. })),
    (
        "ws::addr=h1:1;addr=,h2;",
        is!(ConfigError::EmptyAddrEntry { .. }),
    ),
    (
        "ws::addr=::1:9000;",
        is!(ConfigError::InvalidAddr { entry, .. } if entry == "::1:9000"),
    ),
    ("ws::addr=h:0;", is!(ConfigError::InvalidAddr { .. })),
    ("ws::addr=h:70000;", is!(ConfigError::InvalidAddr { .. })),
    ("ws::addr=h:;", is!(ConfigError::InvalidAddr { .. })),
    ("ws::addr=h 1:9000;", is!(ConfigError::InvalidAddr { .. })),
    // Booleans and enums.
    (
        "ws::addr=h;auto_flush=yes;",
        is!(ConfigError::InvalidValue { key, value, .. } if key == "auto_flush" && value == "yes"),
    ),
    (
        "ws::addr=h;sf_dir=d;drain_orphans=1;",
        is!(ConfigError::InvalidValue { key, .. } if key == "drain_orphans"),
    ),
    (
        "ws::addr=h;request_durable_ack=true;",
        is!(ConfigError::InvalidValue { key, .. } if key == "request_durable_ack"),
    ),
    (
        "ws::addr=h;request_durable_ack=enabled;",
        is!(ConfigError::InvalidValue { .. }),
    ),
    (
        "ws::addr=h;sf_durability=fsync;",
        is!(ConfigError::InvalidValue { key, .. } if key == "sf_durability"),
    ),
    (
        "ws::addr=h;initial_connect_retry=later;",
        is!(ConfigError::InvalidValue { .. }),
    ),
    (
        "ws::addr=h;on_schema_error=drop;",
        is!(ConfigError::InvalidValue { key, .. } if key == "on_schema_error"),
    ),
    (
        "ws::addr=h;on_server_error=retry;",
        is!(ConfigError::InvalidValue { .. }),
    ),
    (
        "wss::addr=h;tls_verify=off;",
        is!(ConfigError::InvalidValue { key, .. } if key == "tls_verify"),
    ),
    // Sizes.
    (
        "ws::addr=h;sf_max_bytes=4MB;",
        is!(ConfigError::InvalidSize { key, .. } if key == "sf_max_bytes"),
    ),
    (
        "ws::addr=h;sf_max_bytes=4MiB;",
        is!(ConfigError::InvalidSize { .. }),
    ),
    (
        "ws::addr=h;sf_max_bytes=4X;",
        is!(ConfigError::InvalidSize { .. }),
    ),
    (
        "ws::addr=h;sf_max_total_bytes=20000000T;",
        is!(ConfigError::InvalidSize { key, .. } if key == "sf_max_total_bytes"),
    ),
    (
        "ws::addr=h;sf_max_total_bytes=99999999999999999999;",
        is!(ConfigError::InvalidSize { .. }),
    ),
    (
        "ws::addr=h;init_buf_size=-1;",
        is!(ConfigError::InvalidSize { .. }),
    ),
    (
        "ws::addr=h;sf_max_bytes=43;",
        is!(ConfigError::OutOfRange { key, .. } if key == "sf_max_bytes"),
    ),
    (
        "ws::addr=h;sf_max_bytes=3G;",
        is!(ConfigError::OutOfRange { .. }),
    ),
    (
        "ws::addr=h;max_buf_size=4G;",
        is!(ConfigError::OutOfRange { key, .. } if key == "max_buf_size"),
    ),
    // Integers.
    (
        "ws::addr=h;in_flight_window=1;",
        is!(ConfigError::OutOfRange { key, value, .. } if key == "in_flight_window" && value == "1"),
    ),
    (
        "ws::addr=h;in_flight_window=0;",
        is!(ConfigError::OutOfRange { .. }),
    ),
    (
        "ws::addr=h;error_inbox_capacity=15;",
        is!(ConfigError::OutOfRange { key, .. } if key == "error_inbox_capacity"),
    ),
    (
        "ws::addr=h;error_inbox_capacity=99999999;",
        is!(ConfigError::OutOfRange { .. }),
    ),
    (
        "ws::addr=h;max_background_drainers=0;",
        is!(ConfigError::OutOfRange { .. }),
    ),
    (
        "ws::addr=h;max_name_len=0;",
        is!(ConfigError::OutOfRange { .. }),
    ),
    (
        "ws::addr=h;reconnect_max_duration_millis=-1;",
        is!(ConfigError::OutOfRange { key, .. } if key == "reconnect_max_duration_millis"),
    ),
    (
        "ws::addr=h;reconnect_initial_backoff_millis=0;",
        is!(ConfigError::OutOfRange { .. }),
    ),
    (
        "ws::addr=h;close_flush_timeout_millis=-2;",
        is!(ConfigError::OutOfRange { key, .. } if key == "close_flush_timeout_millis"),
    ),
    (
        "ws::addr=h;auth_timeout_ms=0;",
        is!(ConfigError::OutOfRange { .. }),
    ),
    (
        "ws::addr=h;sf_append_deadline_millis=18446744073710;",
        is!(ConfigError::OutOfRange { .. }),
    ),
    (
        "ws::addr=h;auto_flush_rows=-5;",
        is!(ConfigError::OutOfRange { key, .. } if key == "auto_flush_rows"),
    ),
    (
        "ws::addr=h;auto_flush_rows=1k;",
        is!(ConfigError::InvalidNumber { key, .. } if key == "auto_flush_rows"),
    ),
    (
        "ws::addr=h;in_flight_window=9223372036854775808;",
        is!(ConfigError::InvalidNumber { .. }),
    ),
    (
        "ws::addr=h;ack_timeout_millis=soon;",
        is!(ConfigError::InvalidNumber { key, .. } if key == "ack_timeout_millis"),
    ),
    (
        "ws::addr=h;auth_timeout_ms= 100;",
        is!(ConfigError::InvalidNumber { .. }),
    ),
    // sender_id.
    (
        "ws::addr=h;sender_id=a/b;",
        is!(ConfigError::InvalidSenderId { value, .. } if value == "a/b"),
    ),
    (
        "ws::addr=h;sender_id=..;",
        is!(ConfigError::InvalidSenderId { .. }),
    ),
    (
        "ws::addr=h;sender_id=a\\b;",
        is!(ConfigError::InvalidSenderId { .. }),
    ),
    (
        "ws::addr=h;sender_id=;",
        is!(ConfigError::MissingValue { key } if key == "sender_id"),
    ),
    // Auth.
    (
        "ws::addr=h;username=u;password=p;token=t;",
        is!(ConfigError::ConflictingAuth),
    ),
    (
        "ws::addr=h;password=p;token=t;",
        is!(ConfigError::ConflictingAuth),
    ),
    (
        "ws::addr=h;username=u;",
        is!(ConfigError::IncompleteBasicAuth {
            missing: "password"
        }),
    ),
    (
        "ws::addr=h;password=p;",
        is!(ConfigError::IncompleteBasicAuth {
            missing: "username"
        }),
    ),
    // TLS.
    (
        "ws::addr=h;tls_verify=unsafe_off;",
        is!(ConfigError::TlsKeyWithoutTls { key } if key == "tls_verify"),
    ),
    (
        "ws::addr=h;tls_roots=/ca;",
        is!(ConfigError::TlsKeyWithoutTls { .. }),
    ),
    (
        "wss::addr=h;tls_roots_password=x;",
        is!(ConfigError::Conflict {
            key: "tls_roots_password",
            ..
        }),
    ),
    // Cross-key rules.
    (
        "ws::addr=h;sf_durability=flush;",
        is!(ConfigError::RequiresSfDir { key, value } if key == "sf_durability" && value == "flush"),
    ),
    (
        "ws::addr=h;sf_durability=append;",
        is!(ConfigError::RequiresSfDir { .. }),
    ),
    (
        "ws::addr=h;drain_orphans=on;",
        is!(ConfigError::RequiresSfDir { key, .. } if key == "drain_orphans"),
    ),
    (
        "ws::addr=h;reconnect_initial_backoff_millis=6000;",
        is!(ConfigError::Conflict {
            key: "reconnect_initial_backoff_millis",
            other: "reconnect_max_backoff_millis",
            ..
        }),
    ),
    (
        "ws::addr=h;sf_max_bytes=8M;sf_max_total_bytes=4M;",
        is!(ConfigError::Conflict {
            key: "sf_max_total_bytes",
            other: "sf_max_bytes",
            ..
        }),
    ),
    (
        "ws::addr=h;init_buf_size=2M;max_buf_size=1M;",
        is!(ConfigError::Conflict {
            key: "init_buf_size",
            ..
        }),
    ),
    (
        "ws::addr=h;auto_flush=off;auto_flush_rows=10;",
        is!(ConfigError::Conflict {
            key: "auto_flush_rows",
            other: "auto_flush",
            ..
        }),
    ),
    (
        "ws::addr=h;auto_flush_interval=50;auto_flush=off;",
        is!(ConfigError::Conflict {
            key: "auto_flush_interval",
            ..
        }),
    ),
];

#[test]
fn bad_strings_give_their_typed_error() {
    assert!(BAD.len() >= 30);
    for (conf, expect) in BAD {
        match Config::from_conf(conf) {
            Ok(c) => panic!("{conf:?} parsed: {c:?}"),
            Err(e) => {
                assert!(expect(&e), "{conf:?} gave the wrong error: {e:?}");
                assert!(!e.to_string().is_empty());
            }
        }
    }
}

#[test]
fn trailing_semicolon_is_optional_and_auto_flush_off_with_off_triggers_is_fine() {
    assert!(Config::from_conf("ws::addr=h").is_ok());
    assert!(Config::from_conf("ws::addr=h;").is_ok());
    let c = Config::from_conf("ws::addr=h;auto_flush=off;auto_flush_rows=off;").unwrap();
    assert!(c.auto_flush().is_none());
}

#[test]
fn errors_name_the_key_and_value() {
    let e = Config::from_conf("ws::addr=h;in_flight_window=1;").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("in_flight_window") && msg.contains('1'),
        "{msg}"
    );
    let e = Config::from_conf("http::addr=h;").unwrap_err().to_string();
    assert!(e.contains("http") && e.contains("WebSocket"), "{e}");
    let e = Config::from_conf("ws::addr=h;sf_dri=x")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sf_dri"), "{e}");
}

#[test]
fn a_secret_with_an_unescaped_semicolon_is_never_quoted() {
    // The password is `abc;def=ghi`, written without the `;;` escape: the
    // second half becomes a bogus parameter, which must not be echoed.
    for conf in [
        "ws::addr=h;username=u;password=abc;def=ghi;",
        "ws::addr=h;username=u;password=abc;defghi;",
        "ws::addr=h;token=abc;def ghi=1;",
        "ws::addr=h;token=abc;target=secretish;",
        "wss::addr=h;tls_roots=r;tls_roots_password=abc;secretish=1;",
    ] {
        let e = Config::from_conf(conf).unwrap_err();
        assert!(
            matches!(e, ConfigError::SecretNotEscaped { .. }),
            "{conf}: {e:?}"
        );
        let text = format!("{e} {e:?}");
        for leaked in ["def", "ghi", "secretish", "abc"] {
            assert!(!text.contains(leaked), "{conf}: leaked {leaked} in {text}");
        }
    }
}

#[test]
fn a_known_key_after_a_secret_reports_its_own_error() {
    let e = Config::from_conf("ws::addr=h;username=u;password=pw;in_flight_window=1;").unwrap_err();
    assert!(
        matches!(&e, ConfigError::OutOfRange { key, .. } if key == "in_flight_window"),
        "{e:?}"
    );
}

#[test]
fn secret_values_are_not_in_errors_about_them() {
    let e = Config::from_conf("ws::addr=h;password=hunter2;token=t0k;").unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("hunter2") && !text.contains("t0k"), "{text}");
    let e = Config::from_conf("ws::addr=h;password=hunter2\u{1};").unwrap_err();
    assert!(matches!(e, ConfigError::ControlCharacter { .. }));
    assert!(!format!("{e} {e:?}").contains("hunter2"));
}
