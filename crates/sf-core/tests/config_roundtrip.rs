//! Every connect-string key, set to a non-default value: parsed into the
//! right field, written back by `to_conf_string`, and parsed again to an
//! equal `Config`. Also the spec defaults and the `addr` accumulation rule.

use core::num::NonZeroU64;
use core::time::Duration;
use std::collections::BTreeSet;

use sf_core::config::{
    Auth, Config, ErrorCategory, ErrorPolicy, HostPort, InitialConnectRetry, TlsVerify, Transport,
    KEYS,
};
use sf_core::durability::DurabilityMode;

type Check = fn(&Config) -> bool;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// (key under test, connect string, what the parsed config must show).
/// Some keys need company (`tls_*` need `wss::`, `password` needs
/// `username`, disk durability needs `sf_dir`).
const ROWS: &[(&str, &str, Check)] = &[
    ("addr", "ws::addr=h1:1,[::1]:2;addr=h3;", |c| {
        c.addrs()
            == [
                HostPort::new("h1", 1).unwrap(),
                HostPort::new("::1", 2).unwrap(),
                HostPort::new("h3", 9000).unwrap(),
            ]
    }),
    (
        "username",
        "ws::addr=h;username=alice;password=pw;",
        |c| matches!(c.auth(), Auth::Basic { username, .. } if username == "alice"),
    ),
    (
        "password",
        "ws::addr=h;username=u;password=p;;w=d;",
        |c| matches!(c.auth(), Auth::Basic { password, .. } if password.expose() == "p;w=d"),
    ),
    (
        "token",
        "ws::addr=h;token=abc;;==;",
        |c| matches!(c.auth(), Auth::Bearer { token } if token.expose() == "abc;=="),
    ),
    ("tls_verify", "wss::addr=h;tls_verify=unsafe_off;", |c| {
        c.tls().is_some_and(|t| t.verify == TlsVerify::UnsafeOff)
    }),
    (
        "tls_roots",
        "wss::addr=h;tls_roots=/etc/ca dir/roots;;1.jks;",
        |c| {
            c.tls()
                .is_some_and(|t| t.roots.as_deref() == Some("/etc/ca dir/roots;1.jks"))
        },
    ),
    (
        "tls_roots_password",
        "wss::addr=h;tls_roots=r.jks;tls_roots_password=s3;;cret;",
        |c| {
            c.tls()
                .is_some_and(|t| t.roots_password.as_ref().map(|p| p.expose()) == Some("s3;cret"))
        },
    ),
    ("auto_flush", "ws::addr=h;auto_flush=off;", |c| {
        c.auto_flush().is_none()
    }),
    ("auto_flush_rows", "ws::addr=h;auto_flush_rows=5000;", |c| {
        c.auto_flush()
            .is_some_and(|a| a.rows == NonZeroU64::new(5000))
    }),
    ("auto_flush_bytes", "ws::addr=h;auto_flush_bytes=8M;", |c| {
        c.auto_flush()
            .is_some_and(|a| a.bytes == NonZeroU64::new(8 << 20))
    }),
    (
        "auto_flush_interval",
        "ws::addr=h;auto_flush_interval=off;",
        |c| c.auto_flush().is_some_and(|a| a.interval.is_none()),
    ),
    ("init_buf_size", "ws::addr=h;init_buf_size=1M;", |c| {
        c.limits().init_buf_size == 1 << 20
    }),
    ("max_buf_size", "ws::addr=h;max_buf_size=1G;", |c| {
        c.limits().max_buf_size == 1 << 30
    }),
    ("max_name_len", "ws::addr=h;max_name_len=255;", |c| {
        c.limits().max_name_len == 255
    }),
    ("in_flight_window", "ws::addr=h;in_flight_window=2;", |c| {
        c.limits().in_flight_window == 2
    }),
    (
        "max_schemas_per_connection",
        "ws::addr=h;max_schemas_per_connection=10;",
        |c| c.limits().max_schemas_per_connection == 10,
    ),
    ("sf_dir", "ws::addr=h;sf_dir=/var/lib/qwp sf;", |c| {
        c.storage().sf_dir.as_deref() == Some("/var/lib/qwp sf")
    }),
    ("sender_id", "ws::addr=h;sender_id=pool-7;", |c| {
        c.storage().sender_id == "pool-7"
    }),
    ("sf_max_bytes", "ws::addr=h;sf_max_bytes=64K;", |c| {
        c.storage().sf_max_bytes == 64 << 10
    }),
    (
        "sf_max_total_bytes",
        "ws::addr=h;sf_max_total_bytes=1T;",
        |c| c.storage().sf_max_total_bytes == 1 << 40,
    ),
    (
        "sf_durability",
        "ws::addr=h;sf_dir=d;sf_durability=append;",
        |c| c.storage().durability == DurabilityMode::Append,
    ),
    (
        "sf_append_deadline_millis",
        "ws::addr=h;sf_append_deadline_millis=0;",
        |c| c.storage().append_deadline == Duration::ZERO,
    ),
    (
        "drain_orphans",
        "ws::addr=h;sf_dir=d;drain_orphans=true;",
        |c| c.storage().drain_orphans,
    ),
    (
        "max_background_drainers",
        "ws::addr=h;max_background_drainers=1;",
        |c| c.storage().max_background_drainers == 1,
    ),
    (
        "reconnect_max_duration_millis",
        "ws::addr=h;reconnect_max_duration_millis=60000;",
        |c| c.reconnect().max_outage == ms(60_000),
    ),
    (
        "reconnect_initial_backoff_millis",
        "ws::addr=h;reconnect_initial_backoff_millis=5000;",
        |c| c.reconnect().initial_backoff == ms(5_000),
    ),
    (
        "reconnect_max_backoff_millis",
        "ws::addr=h;reconnect_max_backoff_millis=100;",
        |c| c.reconnect().max_backoff == ms(100),
    ),
    (
        "initial_connect_retry",
        "ws::addr=h;initial_connect_retry=sync;",
        |c| c.reconnect().initial_connect_retry == InitialConnectRetry::On,
    ),
    (
        "close_flush_timeout_millis",
        "ws::addr=h;close_flush_timeout_millis=-1;",
        |c| c.close_flush_timeout().is_none(),
    ),
    (
        "request_durable_ack",
        "ws::addr=h;request_durable_ack=on;",
        |c| c.durable_ack().request,
    ),
    (
        "durable_ack_keepalive_interval_millis",
        "ws::addr=h;durable_ack_keepalive_interval_millis=-5;",
        |c| c.durable_ack().keepalive_interval.is_none(),
    ),
    (
        "error_inbox_capacity",
        "ws::addr=h;error_inbox_capacity=16;",
        |c| c.errors().inbox_capacity == 16,
    ),
    ("on_server_error", "ws::addr=h;on_server_error=HALT;", |c| {
        c.errors().on_server_error == Some(ErrorPolicy::Halt)
    }),
    ("on_schema_error", "ws::addr=h;on_schema_error=halt;", |c| {
        c.errors().on_schema_error == Some(ErrorPolicy::Halt)
    }),
    (
        "on_parse_error",
        "ws::addr=h;on_parse_error=drop_and_continue;",
        |c| c.errors().on_parse_error == Some(ErrorPolicy::DropAndContinue),
    ),
    (
        "on_internal_error",
        "ws::addr=h;on_internal_error=drop_and_continue;",
        |c| c.errors().on_internal_error == Some(ErrorPolicy::DropAndContinue),
    ),
    (
        "on_security_error",
        "ws::addr=h;on_security_error=drop_and_continue;",
        |c| c.errors().on_security_error == Some(ErrorPolicy::DropAndContinue),
    ),
    ("on_write_error", "ws::addr=h;on_write_error=halt;", |c| {
        c.errors().on_write_error == Some(ErrorPolicy::Halt)
    }),
    ("auth_timeout_ms", "ws::addr=h;auth_timeout_ms=2500;", |c| {
        c.reconnect().auth_timeout == ms(2_500)
    }),
    (
        "ack_timeout_millis",
        "ws::addr=h;ack_timeout_millis=off;",
        |c| c.reconnect().ack_timeout.is_none(),
    ),
    // Accepted and ignored on ingress: the config equals the default.
    ("zone", "ws::addr=h;zone=eu-west-1a;", |c| {
        *c == Config::for_addr(Transport::Ws, HostPort::new("h", 9000).unwrap())
    }),
];

fn parse(s: &str) -> Config {
    Config::from_conf(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn every_key_round_trips_with_a_non_default_value() {
    let default_ws = Config::for_addr(Transport::Ws, HostPort::new("h", 9000).unwrap());
    let default_wss = Config::for_addr(Transport::Wss, HostPort::new("h", 9000).unwrap());
    for (key, conf, check) in ROWS {
        let c = parse(conf);
        assert!(check(&c), "{key}: field not set by {conf}");
        // The check must be able to fail: the default must not pass it
        // (except for `zone`, whose whole point is to change nothing).
        if *key != "zone" {
            assert!(
                !check(&default_ws) && !check(&default_wss),
                "{key}: check passes on the default config"
            );
        }
        let written = c.to_conf_string();
        let again = parse(&written);
        assert_eq!(again, c, "{key}: {conf} -> {written}");
        assert!(check(&again), "{key}: lost in {written}");
        // The canonical string is a fixed point.
        assert_eq!(again.to_conf_string(), written, "{key}");
    }
}

#[test]
fn the_table_covers_every_key() {
    let covered: BTreeSet<&str> = ROWS.iter().map(|(k, _, _)| *k).collect();
    let all: BTreeSet<&str> = KEYS.iter().copied().collect();
    assert_eq!(covered, all);
    assert_eq!(covered.len(), ROWS.len(), "a key appears twice in ROWS");
}

#[test]
fn brief_14_20_repeated_addr_keys_accumulate_in_order() {
    let c = parse("ws::addr=h1:1,h2:2;addr=h3:3");
    let hosts: Vec<(String, u16)> = c
        .addrs()
        .iter()
        .map(|h| (h.host().to_owned(), h.port()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("h1".to_owned(), 1),
            ("h2".to_owned(), 2),
            ("h3".to_owned(), 3)
        ]
    );
}

#[test]
fn defaults_match_the_spec_tables_in_memory_mode() {
    let c = parse("ws::addr=localhost");
    assert_eq!(c.transport(), Transport::Ws);
    assert_eq!(c.addrs(), [HostPort::new("localhost", 9000).unwrap()]);
    assert_eq!(c.auth(), &Auth::None);
    assert!(c.tls().is_none());
    let a = c.auto_flush().expect("auto_flush defaults to on");
    assert_eq!(a.rows, NonZeroU64::new(1000));
    assert_eq!(a.bytes, None);
    assert_eq!(a.interval, Some(ms(100)));
    let l = c.limits();
    assert_eq!(l.init_buf_size, 64 << 10);
    assert_eq!(l.max_buf_size, 100 << 20);
    assert_eq!(l.max_name_len, 127);
    assert_eq!(l.in_flight_window, 128);
    assert_eq!(l.max_schemas_per_connection, 65_535);
    let s = c.storage();
    assert!(s.is_memory_mode());
    assert_eq!(s.sender_id, "default");
    assert_eq!(s.sf_max_bytes, 4 << 20);
    assert_eq!(s.sf_max_total_bytes, 128 << 20);
    assert_eq!(s.durability, DurabilityMode::Memory);
    assert_eq!(s.append_deadline, ms(30_000));
    assert!(!s.drain_orphans);
    assert_eq!(s.max_background_drainers, 4);
    let r = c.reconnect();
    assert_eq!(r.max_outage, ms(300_000));
    assert_eq!(r.initial_backoff, ms(100));
    assert_eq!(r.max_backoff, ms(5_000));
    assert_eq!(r.initial_connect_retry, InitialConnectRetry::Off);
    assert_eq!(r.auth_timeout, ms(15_000));
    assert_eq!(r.ack_timeout, Some(ms(30_000)));
    assert_eq!(c.close_flush_timeout(), Some(ms(5_000)));
    assert!(!c.durable_ack().request);
    assert_eq!(c.durable_ack().keepalive_interval, Some(ms(200)));
    assert_eq!(c.errors().inbox_capacity, 256);
    // The default config writes nothing but its address.
    assert_eq!(c.to_conf_string(), "ws::addr=localhost:9000;");
    assert_eq!(
        c,
        Config::for_addr(Transport::Ws, HostPort::new("localhost", 9000).unwrap())
    );
}

#[test]
fn sf_dir_changes_the_default_total_cap_to_10g() {
    let c = parse("ws::addr=h;sf_dir=/data/sf;");
    assert!(!c.storage().is_memory_mode());
    assert_eq!(c.storage().sf_max_total_bytes, 10 << 30);
    // An explicit 128M with sf_dir is not the SF default, so it is written.
    let c = parse("ws::addr=h;sf_dir=/data/sf;sf_max_total_bytes=128M;");
    assert_eq!(c.storage().sf_max_total_bytes, 128 << 20);
    assert!(c.to_conf_string().contains("sf_max_total_bytes=128M;"));
    assert_eq!(parse(&c.to_conf_string()), c);
}

#[test]
fn wss_defaults_to_verified_tls_with_system_roots() {
    let c = parse("wss::addr=h:443;");
    let tls = c.tls().expect("wss has TLS settings");
    assert_eq!(tls.verify, TlsVerify::On);
    assert_eq!(tls.roots, None);
    assert!(tls.roots_password.is_none());
}

#[test]
fn aliases_parse_to_the_canonical_value() {
    let cases: &[(&str, &str)] = &[
        ("initial_connect_retry=false", "initial_connect_retry=off"),
        ("initial_connect_retry=true", "initial_connect_retry=on"),
        ("initial_connect_retry=sync", "initial_connect_retry=on"),
        ("initial_connect_retry=ASYNC", "initial_connect_retry=async"),
        ("auto_flush_rows=0", "auto_flush_rows=off"),
        ("auto_flush_bytes=0", "auto_flush_bytes=off"),
        ("auto_flush_interval=0", "auto_flush_interval=off"),
        (
            "close_flush_timeout_millis=0",
            "close_flush_timeout_millis=-1",
        ),
        (
            "durable_ack_keepalive_interval_millis=0",
            "durable_ack_keepalive_interval_millis=-1",
        ),
        ("sf_max_bytes=1048576", "sf_max_bytes=1m"),
        ("auto_flush=false", "auto_flush=off"),
        ("sf_durability=MEMORY", "sf_durability=memory"),
    ];
    for (alias, canonical) in cases {
        let a = parse(&format!("ws::addr=h;{alias};"));
        let b = parse(&format!("ws::addr=h;{canonical};"));
        assert_eq!(a, b, "{alias} vs {canonical}");
    }
}

#[test]
fn on_server_error_is_the_default_and_specific_keys_win_in_any_order() {
    use ErrorCategory::*;
    for conf in [
        "ws::addr=h;on_server_error=drop_and_continue;on_parse_error=halt;",
        "ws::addr=h;on_parse_error=halt;on_server_error=drop_and_continue;",
    ] {
        let e = *parse(conf).errors();
        assert_eq!(e.policy_for(ParseError), ErrorPolicy::Halt, "{conf}");
        for cat in [SchemaMismatch, InternalError, SecurityError, WriteError] {
            assert_eq!(
                e.policy_for(cat),
                ErrorPolicy::DropAndContinue,
                "{conf} {cat}"
            );
        }
        // Forced categories ignore every override.
        assert_eq!(e.policy_for(ProtocolViolation), ErrorPolicy::Halt);
        assert_eq!(e.policy_for(Unknown), ErrorPolicy::Halt);
    }
    // Without overrides, the §14.3 defaults.
    let e = *parse("ws::addr=h").errors();
    for cat in [
        SchemaMismatch,
        ParseError,
        InternalError,
        SecurityError,
        WriteError,
    ] {
        assert_eq!(e.policy_for(cat), cat.default_policy(), "{cat}");
    }
    let e = *parse("ws::addr=h;on_write_error=halt;on_schema_error=halt").errors();
    assert_eq!(e.policy_for(WriteError), ErrorPolicy::Halt);
    assert_eq!(e.policy_for(SchemaMismatch), ErrorPolicy::Halt);
    let e = *parse("ws::addr=h;on_server_error=drop_and_continue").errors();
    assert_eq!(e.policy_for(SecurityError), ErrorPolicy::DropAndContinue);
}

#[test]
fn secrets_are_redacted_in_debug_and_redacted_output() {
    let c =
        parse("wss::addr=h;username=u;password=hunter2;tls_roots=r;tls_roots_password=trustpw;");
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("trustpw"),
        "{debug}"
    );
    assert!(debug.contains("<redacted>"));
    let redacted = c.to_redacted_conf_string();
    assert!(
        !redacted.contains("hunter2") && !redacted.contains("trustpw"),
        "{redacted}"
    );
    let c = parse("ws::addr=h;token=t0ps3cret;");
    assert!(!format!("{c:?}").contains("t0ps3cret"));
    assert!(!c.to_redacted_conf_string().contains("t0ps3cret"));
    assert!(c.to_conf_string().contains("token=t0ps3cret;"));
}

#[test]
fn builder_applies_the_same_rules_as_the_parser() {
    let mut b = Config::builder(Transport::Ws);
    b.addr(HostPort::new("h", 1).unwrap());
    b.set("sf_dir", "/d").unwrap();
    b.set("sf_durability", "flush").unwrap();
    b.set("addr", "h2:2").unwrap();
    let built = b.build().unwrap();
    assert_eq!(
        built,
        parse("ws::addr=h:1,h2:2;sf_dir=/d;sf_durability=flush;")
    );
    assert_eq!(built.storage().sf_max_total_bytes, 10 << 30);
    // Same duplicate rule and same value checks.
    assert!(b.set("sf_dir", "/e").is_err());
    assert!(b.set("in_flight_window", "1").is_err());
    // A builder without an address does not build.
    assert!(Config::builder(Transport::Ws).build().is_err());
}

#[test]
fn max_frame_bytes_is_bounded_by_segment_batch_limit_and_buffer() {
    // Default: 4M segment minus the 24-byte header and 8-byte frame header.
    let c = parse("ws::addr=h");
    assert_eq!(c.max_frame_bytes(), (4 << 20) - 32);
    let c = parse("ws::addr=h;sf_max_bytes=64M;sf_max_total_bytes=1G");
    assert_eq!(c.max_frame_bytes(), 16 << 20);
    let c = parse("ws::addr=h;max_buf_size=1M;init_buf_size=1K");
    assert_eq!(c.max_frame_bytes(), 1 << 20);
}
