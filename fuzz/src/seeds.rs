//! The seed corpus, generated from valid encodings so it stays in step with
//! the formats: real messages with every column type, real segment images,
//! every response frame, connect strings covering every key, and for the
//! structure-aware `slot_recovery` target a set of inputs chosen for the
//! distinct outcomes they reach.
//!
//! `examples/write_corpus.rs` writes these to `fuzz/corpus/<target>/`;
//! `tests/corpus.rs` checks the files on disk still match.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use qwp_proto::encoder::{EncoderConfig, MessageBuilder};
use qwp_proto::response::{DurableAckFrame, ErrorFrame, OkFrame, Response, TableSeqTxn};
use qwp_proto::status;
use qwp_proto::varint;
use sf_core::segment::{write_frame, SegmentHeader, FRAME_HEADER_LEN};
use sf_core::Fsn;

use crate::mutate::{random_bytes, Rng};

/// One seed file: its name in the corpus directory and its bytes.
pub type Seed = (String, Vec<u8>);

/// The seeds of target `name` (empty for an unknown name).
pub fn seeds(name: &str) -> Vec<Seed> {
    match name {
        "varint" => varint_seeds(),
        "decode_message" => messages()
            .into_iter()
            .map(|(n, b)| (format!("{n}.qwp"), b))
            .collect(),
        "decode_response" => response_seeds(),
        "segment_scan" => segment_seeds(),
        "slot_recovery" => selected(crate::slot_recovery::run, 0x5107_4ec0, 400),
        "engine" => selected(crate::engine::run, 0xe491_0e00, 1200),
        "connect_string" => connect_string_seeds(),
        _ => Vec::new(),
    }
}

fn varint_seeds() -> Vec<Seed> {
    let mut out: Vec<Seed> = [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX)]
        .into_iter()
        .chain([i64::MAX as u64, u64::MAX])
        .map(|v| {
            let mut b = Vec::new();
            varint::write(&mut b, v);
            (format!("value_{v}.bin"), b)
        })
        .collect();
    out.push(("padded_zero.bin".into(), vec![0x80, 0x80, 0x00]));
    out.push(("overlong_11_bytes.bin".into(), vec![0xff; 11]));
    out.push(("truncated.bin".into(), vec![0x80, 0x80]));
    out.push((
        "overflow_10th_byte.bin".into(),
        [vec![0xff; 9], vec![0x02]].concat(),
    ));
    out
}

/// Encodes the rows `build` adds with encoder configuration `cfg`.
fn encode(cfg: EncoderConfig, build: impl FnOnce(&mut MessageBuilder)) -> Vec<u8> {
    let mut b = MessageBuilder::with_config(cfg).unwrap_or_default();
    build(&mut b);
    let mut out = Vec::new();
    let _ = b.encode_into(&mut out);
    out
}

/// Real QWP1 messages covering every column type, both timestamp encodings,
/// nulls, symbols, several tables and server-assigned timestamps.
pub fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let gorilla = EncoderConfig::default();
    let raw = EncoderConfig {
        gorilla: false,
        ..EncoderConfig::default()
    };
    let every_type = |b: &mut MessageBuilder, row: i64| {
        let _ = (|| -> Result<(), qwp_proto::encoder::EncodeError> {
            b.table("all_types")?
                .symbol("sym", if row % 2 == 0 { "AAPL" } else { "MSFT" })?
                .column_bool("bool", row % 2 == 0)?
                .column_i8("byte", -8)?
                .column_i16("short", 1600)?
                .column_i32("int", -320_000)?
                .column_i64("long", 1 << 40)?
                .column_f32("float", 1.5)?
                .column_f64("double", -2.25)?
                .column_ts_micros("ts_us", 1_700_000_000_000_000 + row)?
                .column_ts_nanos("ts_ns", 1_700_000_000_000_000_000 + row)?
                .column_date_millis("date", 1_700_000_000_000)?
                .column_uuid("uuid", 0x550e_8400_e29b_41d4_a716_4466_5544_0000)?
                .column_long256("long256", [1, 2, 3, 4])?
                .column_geohash("geo", 0b1_0110, 5)?
                .column_str("varchar", "héllo")?
                .column_binary("binary", &[0, 1, 2, 0xff])?
                .column_char("char", 'é')?
                .column_ipv4("ip", Ipv4Addr::new(192, 168, 0, 1))?
                .column_decimal64("dec64", -12_345, 2)?
                .column_decimal128("dec128", 123_456_789_012_345_678_901, 10)?
                .column_decimal256("dec256", [7, 0, 0, 0], 3)?
                .column_f64_array("darr", &[2, 2], &[1.0, 2.0, 3.0, 4.0])?
                .column_i64_array("larr", &[3], &[-1, 0, 1])?;
            b.at_micros(1_700_000_000_000_000 + row * 1000)
        })();
    };
    vec![
        ("every_type_gorilla", encode(gorilla, |b| every_type(b, 0))),
        ("every_type_raw", encode(raw, |b| every_type(b, 1))),
        (
            "every_type_two_rows",
            encode(gorilla, |b| {
                every_type(b, 0);
                every_type(b, 1);
            }),
        ),
        (
            "nulls_sparse_columns",
            encode(gorilla, |b| {
                let _ = b
                    .table("sparse")
                    .and_then(|b| b.column_i64("a", 1))
                    .and_then(|b| b.column_f64("nan", f64::NAN))
                    .and_then(|b| b.at_nanos(10));
                let _ = b
                    .table("sparse")
                    .and_then(|b| b.column_str("s", ""))
                    .and_then(|b| b.column_bool("flag", true))
                    .and_then(|b| b.at_nanos(20));
                let _ = b
                    .table("sparse")
                    .and_then(|b| b.column_binary("bin", &[]))
                    .and_then(|b| b.at_nanos(30));
            }),
        ),
        (
            "gorilla_timestamps",
            encode(gorilla, |b| {
                for (i, ts) in [1_000i64, 2_000, 3_000, 4_100, 4_000, 1 << 40, -5]
                    .into_iter()
                    .enumerate()
                {
                    let _ = b
                        .table("ticks")
                        .and_then(|b| b.column_i32("i", i as i32))
                        .and_then(|b| b.at_micros(ts));
                }
            }),
        ),
        (
            "two_tables_shared_symbols",
            encode(gorilla, |b| {
                for (t, s) in [("trades", "BTC"), ("quotes", "BTC"), ("trades", "ETH")] {
                    let _ = b
                        .table(t)
                        .and_then(|b| b.symbol("pair", s))
                        .and_then(|b| b.symbol("venue", "x"))
                        .and_then(|b| b.column_f64("px", 1.0))
                        .and_then(|b| b.at_micros(5));
                }
            }),
        ),
        (
            "server_time",
            encode(raw, |b| {
                let _ = b
                    .table("no_ts")
                    .and_then(|b| b.column_i64("v", 42))
                    .and_then(|b| b.at_server_time());
            }),
        ),
        (
            "arrays_3d",
            encode(gorilla, |b| {
                let _ = b
                    .table("arr")
                    .and_then(|b| b.column_f64_array("d", &[2, 1, 2], &[0.5, -0.5, 1e300, -0.0]))
                    .and_then(|b| b.column_i64_array("l", &[1, 1, 1], &[i64::MIN]))
                    .and_then(|b| b.at_server_time());
            }),
        ),
        (
            "always_dictionary_no_symbols",
            encode(
                EncoderConfig {
                    always_send_dictionary: true,
                    ..EncoderConfig::default()
                },
                |b| {
                    let _ = b
                        .table("t")
                        .and_then(|b| b.column_bool("b", false))
                        .and_then(|b| b.at_micros(0));
                },
            ),
        ),
    ]
}

fn response_seeds() -> Vec<Seed> {
    let tables = vec![TableSeqTxn::new("trades", 7), TableSeqTxn::new("quotes", 9)];
    let mut frames: Vec<(String, Response)> = vec![
        (
            "ok_empty".into(),
            Response::Ok(OkFrame {
                sequence: 0,
                tables: Vec::new(),
            }),
        ),
        (
            "ok_tables".into(),
            Response::Ok(OkFrame {
                sequence: 41,
                tables: tables.clone(),
            }),
        ),
        (
            "ok_negative_sequence".into(),
            Response::Ok(OkFrame {
                sequence: -1,
                tables: Vec::new(),
            }),
        ),
        (
            "durable_ack_empty".into(),
            Response::DurableAck(DurableAckFrame { tables: Vec::new() }),
        ),
        (
            "durable_ack_tables".into(),
            Response::DurableAck(DurableAckFrame { tables }),
        ),
    ];
    for (name, code) in [
        ("schema_mismatch", status::STATUS_SCHEMA_MISMATCH),
        ("parse_error", status::STATUS_PARSE_ERROR),
        ("internal_error", status::STATUS_INTERNAL_ERROR),
        ("security_error", status::STATUS_SECURITY_ERROR),
        ("write_error", status::STATUS_WRITE_ERROR),
        ("unknown_status", 0x7f),
    ] {
        if let Ok(e) = ErrorFrame::new(code, 3, format!("{name}: table 'trades' said no")) {
            frames.push((format!("error_{name}"), Response::Error(e)));
        }
    }
    frames
        .into_iter()
        .filter_map(|(name, r)| {
            let mut out = Vec::new();
            r.encode_into(&mut out).ok()?;
            Some((format!("{name}.bin"), out))
        })
        .collect()
}

/// A segment image: header at `base`, one frame per payload, then `tail`,
/// then `zero_pad` zero bytes.
pub fn segment_image(base: u64, payloads: &[&[u8]], tail: &[u8], zero_pad: usize) -> Vec<u8> {
    let mut image = SegmentHeader::new(Fsn(base), 1_700_000_000_000_000)
        .map(|h| h.encode().to_vec())
        .unwrap_or_default();
    for p in payloads {
        let start = image.len();
        image.resize(start + FRAME_HEADER_LEN + p.len(), 0);
        let _ = write_frame(&mut image, start, p);
    }
    image.extend_from_slice(tail);
    image.resize(image.len() + zero_pad, 0);
    image
}

fn segment_seeds() -> Vec<Seed> {
    let msgs = messages();
    let small: Vec<&[u8]> = msgs
        .iter()
        .filter(|(_, m)| m.len() < 200)
        .map(|(_, m)| m.as_slice())
        .take(3)
        .collect();
    let one: &[u8] = small.first().copied().unwrap_or(b"QWP1");
    let big: &[u8] = msgs.first().map(|(_, m)| m.as_slice()).unwrap_or(b"QWP1");
    // A frame with a wrong CRC: used for torn tails and corruption.
    let bad_frame = {
        let mut f = segment_image(0, &[one], &[], 0).split_off(24);
        if let Some(b) = f.first_mut() {
            *b ^= 0xff;
        }
        f
    };
    let good_frame = segment_image(0, &[one], &[], 0).split_off(24);
    let torn = {
        let mut f = good_frame.clone();
        f[..4].fill(0);
        f.truncate(f.len() - 3);
        f
    };
    let mut header_flags = segment_image(0, &[], &[], 32);
    header_flags[5] = 1;
    let mut header_version = segment_image(0, &[], &[], 32);
    header_version[4] = 2;
    let mut header_magic = segment_image(0, &[], &[], 32);
    header_magic[0] = b'X';
    let mut header_base = segment_image(0, &[], &[], 32);
    header_base[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut headerless = vec![0; 128];
    headerless[64] = 1;
    vec![
        ("header_only.sfa", segment_image(5, &[], &[], 64)),
        ("three_frames.sfa", segment_image(0, &small, &[], 128)),
        ("every_type_frame.sfa", segment_image(9, &[big], &[], 32)),
        ("full_no_pad.sfa", segment_image(3, &[one, one], &[], 0)),
        ("torn_tail.sfa", segment_image(10, &[one], &torn, 64)),
        (
            "corrupt_bad_then_good.sfa",
            segment_image(10, &[one], &[bad_frame.clone(), good_frame].concat(), 16),
        ),
        (
            "bad_crc_last.sfa",
            segment_image(10, &[one, one], &bad_frame, 16),
        ),
        (
            "negative_length.sfa",
            segment_image(0, &[one], &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 16),
        ),
        ("blank.sfa", vec![0; 256]),
        ("headerless_data.sfa", headerless),
        ("header_flags.sfa", header_flags),
        ("header_version.sfa", header_version),
        ("header_magic.sfa", header_magic),
        ("header_base_out_of_range.sfa", header_base),
        ("short.sfa", segment_image(0, &[], &[], 0)[..10].to_vec()),
    ]
    .into_iter()
    .map(|(n, b)| (n.to_string(), b))
    .collect()
}

/// A connect string that sets every key once (consistently, so it parses).
pub const EVERY_KEY: &str = "wss::addr=h1:9000,h2;username=alice;password=p;;w;\
    tls_verify=on;tls_roots=/r.jks;tls_roots_password=x;auto_flush=on;auto_flush_rows=5000;\
    auto_flush_bytes=8M;auto_flush_interval=250;init_buf_size=1M;max_buf_size=1G;\
    max_name_len=255;in_flight_window=2;max_schemas_per_connection=10;sf_dir=/var/lib/qwp;\
    sender_id=pool-7;sf_max_bytes=64K;sf_max_total_bytes=1T;sf_durability=flush;\
    sf_append_deadline_millis=100;drain_orphans=on;max_background_drainers=1;\
    reconnect_max_duration_millis=60000;reconnect_initial_backoff_millis=50;\
    reconnect_max_backoff_millis=100;initial_connect_retry=sync;close_flush_timeout_millis=1000;\
    request_durable_ack=on;durable_ack_keepalive_interval_millis=200;error_inbox_capacity=16;\
    on_server_error=halt;on_schema_error=drop_and_continue;on_parse_error=halt;\
    on_internal_error=halt;on_security_error=halt;on_write_error=halt;auth_timeout_ms=2500;\
    ack_timeout_millis=1000;zone=eu;";

fn connect_string_seeds() -> Vec<Seed> {
    let strings: &[(&str, &str)] = &[
        ("minimal", "ws::addr=localhost:9000;"),
        ("addr_list", "ws::addr=h1:1,[::1]:2;addr=h3;"),
        ("basic_auth", "ws::addr=h;username=alice;password=pw;;x;"),
        ("token", "ws::addr=h;token=abc;;==;"),
        (
            "tls",
            "wss::addr=h;tls_verify=unsafe_off;tls_roots=/etc/ca dir/r.jks;tls_roots_password=s3;;c;",
        ),
        (
            "auto_flush",
            "ws::addr=h;auto_flush=on;auto_flush_rows=5000;auto_flush_bytes=8M;auto_flush_interval=250;",
        ),
        ("auto_flush_off", "ws::addr=h;auto_flush=off;"),
        (
            "limits",
            "ws::addr=h;init_buf_size=1M;max_buf_size=1G;max_name_len=255;in_flight_window=2;max_schemas_per_connection=10;",
        ),
        (
            "sf_dir",
            "ws::addr=h;sf_dir=/var/lib/qwp sf;sender_id=pool-7;sf_max_bytes=64K;sf_max_total_bytes=1T;sf_durability=append;sf_append_deadline_millis=0;",
        ),
        (
            "drainers",
            "ws::addr=h;sf_dir=d;drain_orphans=true;max_background_drainers=1;",
        ),
        (
            "reconnect",
            "ws::addr=h;reconnect_max_duration_millis=60000;reconnect_initial_backoff_millis=5000;reconnect_max_backoff_millis=100;initial_connect_retry=sync;",
        ),
        (
            "durable_ack",
            "ws::addr=h;request_durable_ack=on;durable_ack_keepalive_interval_millis=-5;close_flush_timeout_millis=-1;",
        ),
        (
            "errors",
            "ws::addr=h;error_inbox_capacity=16;on_server_error=HALT;on_schema_error=halt;on_parse_error=drop_and_continue;on_internal_error=drop_and_continue;on_security_error=drop_and_continue;on_write_error=halt;",
        ),
        (
            "timeouts",
            "ws::addr=h;auth_timeout_ms=2500;ack_timeout_millis=off;",
        ),
        ("zone", "ws::addr=h;zone=eu-west-1"),
        ("egress_key", "ws::addr=h;failover=on;"),
        ("bad_scheme", "http::addr=h;"),
        ("unknown_key", "ws::addr=h;nope=1;"),
    ];
    let mut out: Vec<Seed> = strings
        .iter()
        .map(|(n, s)| (format!("{n}.txt"), s.as_bytes().to_vec()))
        .collect();
    // Every key at once, and its printed form.
    let every_key = EVERY_KEY.to_string();
    if let Ok(cfg) = sf_core::config::Config::from_conf(&every_key) {
        out.push((
            "every_key_printed.txt".into(),
            cfg.to_conf_string().into_bytes(),
        ));
    }
    out.push(("every_key.txt".into(), every_key.into_bytes()));
    out
}

/// Inputs for a structure-aware target, chosen from seeded random byte
/// strings of up to `max_len` bytes: the first input to reach each distinct
/// outcome (up to 40), searching until 60,000 inputs in a row found nothing
/// new.
fn selected(body: fn(&[u8]) -> crate::Outcome, seed: u64, max_len: usize) -> Vec<Seed> {
    let mut rng = Rng::new(seed);
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut since_new = 0;
    while since_new < 60_000 && out.len() < 40 {
        let len = 16 + rng.below(max_len);
        let data = random_bytes(&mut rng, len);
        let outcome = body(&data);
        since_new += 1;
        if seen.insert(outcome) {
            since_new = 0;
            out.push((format!("{}.bin", outcome.replace('/', "_")), data));
        }
    }
    out
}
