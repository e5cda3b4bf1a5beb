//! Property tests: no input makes the parser panic, whatever parses
//! round-trips, and generated valid configurations always parse and
//! round-trip.

use proptest::prelude::*;
use sf_core::config::Config;

/// Whatever parses must write back to a string that parses to the same
/// config, and writing is a fixed point.
fn assert_round_trip(conf: &str) -> Result<(), TestCaseError> {
    if let Ok(c) = Config::from_conf(conf) {
        let written = c.to_conf_string();
        let again = Config::from_conf(&written);
        prop_assert_eq!(again.as_ref(), Ok(&c), "{} -> {}", conf, written);
        prop_assert_eq!(c.to_conf_string(), written);
        // Redaction and Debug must not panic either.
        let _ = (c.to_redacted_conf_string(), format!("{c:?}"));
    }
    Ok(())
}

/// Text that looks like a connect string: mostly known keys with plausible
/// values (so a good share parses and the round trip is exercised), mixed
/// with unknown keys, junk values, escapes, control characters and a
/// missing `addr` or scheme.
fn conf_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        8 => proptest::sample::select(sf_core::config::KEYS).prop_map(str::to_owned),
        1 => "[a-z_ ]{0,6}",
    ];
    let plausible = &[
        "on",
        "off",
        "true",
        "false",
        "0",
        "1",
        "-1",
        "2",
        "16",
        "100",
        "5000",
        "4M",
        "64k",
        "1G",
        "halt",
        "drop_and_continue",
        "async",
        "sync",
        "unsafe_off",
        "memory",
        "flush",
        "append",
        "/tmp/sf",
        "h:1",
        "[::1]",
        "a;;b",
    ][..];
    let value = prop_oneof![
        6 => proptest::sample::select(plausible).prop_map(str::to_owned),
        1 => "[a-zA-Z0-9:;,.=\\-\\[\\]/ \\\\%\u{1}é]{0,14}",
    ];
    let param = (key, value).prop_map(|(k, v)| format!("{k}={v};"));
    (
        prop_oneof![
            6 => Just("ws::addr=localhost;"),
            2 => Just("wss::addr=h1:1,h2;"),
            1 => Just("ws::"),
            1 => Just("http::addr=h;"),
            1 => Just("ws:addr=h;"),
        ],
        proptest::collection::vec(param, 0..5),
        any::<bool>(),
    )
        .prop_map(|(head, params, trim)| {
            let mut s = format!("{head}{}", params.concat());
            if trim {
                s.pop();
            }
            s
        })
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        assert_round_trip(&s)?;
    }

    #[test]
    fn conf_like_strings_never_panic_and_round_trip_when_valid(s in conf_like()) {
        assert_round_trip(&s)?;
    }
}

/// A value with no control characters (secrets, paths), which may contain
/// `;` and `=`: written escaped.
fn free_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9;=,:/ ._é-]{1,16}"
}

fn escaped(v: &str) -> String {
    v.replace(';', ";;")
}

fn size_text(n: u64) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(n.to_string()),
        Just(if n.is_multiple_of(1024) {
            format!("{}k", n / 1024)
        } else {
            n.to_string()
        }),
    ]
}

/// A valid connect string built from random choices that respect every
/// cross-key rule.
fn valid_conf() -> impl Strategy<Value = String> {
    let addrs = proptest::collection::vec(
        prop_oneof![
            ("[a-z][a-z0-9.-]{0,10}", proptest::option::of(1u16..)).prop_map(|(h, p)| match p {
                Some(p) => format!("{h}:{p}"),
                None => h,
            }),
            (any::<u16>(), proptest::option::of(1u16..)).prop_map(|(x, p)| match p {
                Some(p) => format!("[fe80::{x:x}]:{p}"),
                None => format!("[::{x:x}]"),
            }),
        ],
        1..4,
    );
    let auth = prop_oneof![
        Just(String::new()),
        ("[a-z]{1,8}", free_text())
            .prop_map(|(u, p)| format!("username={u};password={};", escaped(&p))),
        free_text().prop_map(|t| format!("token={};", escaped(&t))),
    ];
    let tls = (
        any::<bool>(),
        proptest::option::of(free_text()),
        proptest::option::of(free_text()),
    )
        .prop_map(|(unsafe_off, roots, pw)| {
            let mut s = String::new();
            if unsafe_off {
                s.push_str("tls_verify=unsafe_off;");
            }
            if let Some(r) = roots {
                s.push_str(&format!("tls_roots={};", escaped(&r)));
                if let Some(p) = pw {
                    s.push_str(&format!("tls_roots_password={};", escaped(&p)));
                }
            }
            s
        });
    let auto_flush = prop_oneof![
        Just("auto_flush=off;".to_owned()),
        (
            proptest::option::of(prop_oneof![
                Just("off".to_owned()),
                (0u64..1 << 40).prop_map(|n| n.to_string())
            ]),
            proptest::option::of(prop_oneof![
                Just("off".to_owned()),
                (0u64..1 << 40).prop_map(|n| n.to_string())
            ]),
            proptest::option::of(prop_oneof![
                Just("off".to_owned()),
                (0u64..1 << 30).prop_map(|n| n.to_string())
            ]),
        )
            .prop_map(|(r, b, i)| {
                let mut s = String::new();
                if let Some(r) = r {
                    s.push_str(&format!("auto_flush_rows={r};"));
                }
                if let Some(b) = b {
                    s.push_str(&format!("auto_flush_bytes={b};"));
                }
                if let Some(i) = i {
                    s.push_str(&format!("auto_flush_interval={i};"));
                }
                s
            }),
    ];
    let buffers = (12u64..1 << 31)
        .prop_flat_map(|max| (12..=max, Just(max)))
        .prop_flat_map(|(init, max)| (size_text(init), size_text(max)))
        .prop_map(|(i, m)| format!("init_buf_size={i};max_buf_size={m};"));
    let limits = (
        1u32..65_536,
        2u32..=1 << 20,
        1u32..=i32::MAX as u32,
        16u32..=1 << 20,
    )
        .prop_map(|(name, window, schemas, inbox)| {
            format!(
                "max_name_len={name};in_flight_window={window};\
                 max_schemas_per_connection={schemas};error_inbox_capacity={inbox};"
            )
        });
    let storage = (
        proptest::option::of(free_text()),
        proptest::option::of("[a-zA-Z0-9_-]{1,12}"),
        44u64..=2 << 30,
        proptest::option::of(0u64..1 << 40),
        0usize..3,
        any::<bool>(),
        1u32..=1024,
        0u64..1_000_000,
    )
        .prop_map(|(dir, id, seg, extra, dur, drain, drainers, deadline)| {
            let mut s = String::new();
            let disk = dir.is_some();
            if let Some(d) = dir {
                s.push_str(&format!("sf_dir={};", escaped(&d)));
            }
            if let Some(id) = id {
                s.push_str(&format!("sender_id={id};"));
            }
            s.push_str(&format!("sf_max_bytes={seg};"));
            if let Some(extra) = extra {
                s.push_str(&format!("sf_max_total_bytes={};", seg + extra));
            } else if disk || seg <= 128 << 20 {
                // The mode's default cap is large enough for this segment.
            } else {
                s.push_str(&format!("sf_max_total_bytes={seg};"));
            }
            let dur = if disk {
                ["memory", "flush", "append"][dur]
            } else {
                "memory"
            };
            s.push_str(&format!("sf_durability={dur};"));
            s.push_str(&format!(
                "drain_orphans={};",
                if drain && disk { "on" } else { "off" }
            ));
            s.push_str(&format!(
                "max_background_drainers={drainers};sf_append_deadline_millis={deadline};"
            ));
            s
        });
    let reconnect = (
        1u64..100_000,
        0u64..100_000,
        0u64..10_000_000,
        proptest::sample::select(&["off", "false", "on", "sync", "true", "async"][..]),
        -1i64..100_000,
        1u64..100_000,
        proptest::option::of(1u64..100_000),
    )
        .prop_map(|(init, extra, outage, retry, close, auth, ack)| {
            format!(
                "reconnect_initial_backoff_millis={init};reconnect_max_backoff_millis={};\
                 reconnect_max_duration_millis={outage};initial_connect_retry={retry};\
                 close_flush_timeout_millis={close};auth_timeout_ms={auth};ack_timeout_millis={};",
                init + extra,
                ack.map_or("off".to_owned(), |a| a.to_string())
            )
        });
    let policy = || {
        proptest::option::of(proptest::sample::select(
            &["halt", "drop_and_continue", "HALT"][..],
        ))
    };
    let errors = (
        any::<bool>(),
        -1000i64..100_000,
        [policy(), policy(), policy(), policy(), policy(), policy()],
        proptest::option::of("[a-z0-9-]{1,8}"),
    )
        .prop_map(|(durable, keepalive, policies, zone)| {
            let mut s = format!(
                "request_durable_ack={};durable_ack_keepalive_interval_millis={keepalive};",
                if durable { "on" } else { "off" }
            );
            let keys = [
                "on_server_error",
                "on_schema_error",
                "on_parse_error",
                "on_internal_error",
                "on_security_error",
                "on_write_error",
            ];
            for (k, p) in keys.iter().zip(policies) {
                if let Some(p) = p {
                    s.push_str(&format!("{k}={p};"));
                }
            }
            if let Some(z) = zone {
                s.push_str(&format!("zone={z};"));
            }
            s
        });
    (
        any::<bool>(),
        addrs,
        auth,
        tls,
        auto_flush,
        buffers,
        limits,
        storage,
        reconnect,
        errors,
    )
        .prop_map(
            |(wss, addrs, auth, tls, af, buffers, limits, storage, reconnect, errors)| {
                let scheme = if wss { "wss" } else { "ws" };
                let tls = if wss { tls } else { String::new() };
                // Repeated `addr=` keys and comma lists mix freely.
                let addr: String = addrs.iter().map(|a| format!("addr={a};")).collect();
                format!(
                    "{scheme}::{addr}{auth}{tls}{af}{buffers}{limits}{storage}{reconnect}{errors}"
                )
            },
        )
}

proptest! {
    #[test]
    fn generated_valid_configs_parse_and_round_trip(conf in valid_conf()) {
        let parsed = Config::from_conf(&conf);
        prop_assert!(parsed.is_ok(), "{} -> {:?}", conf, parsed);
        assert_round_trip(&conf)?;
    }
}
