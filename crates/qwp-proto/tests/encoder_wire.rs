//! Wire bytes of the encoder against the spec's examples and the brief's
//! test vectors (docs/qwp-wire-brief.md §12, §14).

use qwp_proto::encoder::{EncoderConfig, MessageBuilder};
use qwp_proto::types::ColumnType;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn encode(b: &mut MessageBuilder) -> Vec<u8> {
    let mut out = Vec::new();
    let n = b.encode_into(&mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

fn no_gorilla() -> MessageBuilder {
    MessageBuilder::with_config(EncoderConfig {
        gorilla: false,
        ..EncoderConfig::default()
    })
    .unwrap()
}

/// Checks the header and the only table's header and schema, returning the
/// column sections that follow.
fn sections<'a>(
    msg: &'a [u8],
    flags: u8,
    table: &str,
    rows: u8,
    cols: &[(&str, ColumnType)],
) -> &'a [u8] {
    let mut p = Vec::new();
    p.extend_from_slice(b"QWP1");
    p.push(1);
    p.push(flags);
    p.extend_from_slice(&1u16.to_le_bytes());
    p.extend_from_slice(&((msg.len() - 12) as u32).to_le_bytes());
    p.push(table.len() as u8);
    p.extend_from_slice(table.as_bytes());
    p.push(rows);
    p.push(cols.len() as u8);
    for (n, t) in cols {
        p.push(n.len() as u8);
        p.extend_from_slice(n.as_bytes());
        p.push(t.code());
    }
    assert_eq!(&msg[..p.len()], &p[..], "header and schema");
    &msg[p.len()..]
}

#[test]
fn example1_named_timestamp_no_gorilla_no_symbols_is_88_bytes() {
    let mut b = no_gorilla();
    b.table("sensors")
        .unwrap()
        .column_i64("id", 1)
        .unwrap()
        .column_f64("value", 1.3)
        .unwrap()
        .column_ts_micros("ts", 10_000_000_000)
        .unwrap()
        .at_server_time()
        .unwrap();
    b.table("sensors")
        .unwrap()
        .column_i64("id", 2)
        .unwrap()
        .column_f64("value", 2.2)
        .unwrap()
        .column_ts_micros("ts", 400_000)
        .unwrap()
        .at_server_time()
        .unwrap();
    let expected = hex(
        "51 57 50 31 01 00 01 00 4c 00 00 00 07 73 65 6e 73 6f 72 73 02 03 02 69 64 05 05 76 61 \
         6c 75 65 07 02 74 73 0a 00 01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 00 cd cc cc \
         cc cc cc f4 3f 9a 99 99 99 99 99 01 40 00 00 e4 0b 54 02 00 00 00 80 1a 06 00 00 00 00 00",
    );
    assert!(b.encoded_len_bound() >= expected.len());
    assert_eq!(encode(&mut b), expected);
    assert_eq!(expected.len(), 88);
}

#[test]
fn example4_symbols_and_designated_timestamp_raw_for_two_values() {
    let t0 = 1_700_000_000_000_000i64;
    let mut b = MessageBuilder::new();
    b.table("sensors")
        .unwrap()
        .symbol("host", "server1")
        .unwrap()
        .column_f64("temp", 91.6)
        .unwrap()
        .at_micros(t0)
        .unwrap();
    b.table("sensors")
        .unwrap()
        .symbol("host", "server2")
        .unwrap()
        .column_f64("temp", 92.4)
        .unwrap()
        .at_micros(t0 + 1_000_000)
        .unwrap();
    // The brief's bytes with the reference encoder's raw form (`00`) for
    // two timestamps instead of `01`; both forms are 17 bytes, so the
    // payload stays 80 (0x50).
    let expected = hex(
        "51 57 50 31 01 0c 01 00 50 00 00 00 00 02 07 73 65 72 76 65 72 31 07 73 65 72 76 65 72 \
         32 07 73 65 6e 73 6f 72 73 02 03 04 68 6f 73 74 09 04 74 65 6d 70 07 00 0a 00 00 01 00 \
         66 66 66 66 66 e6 56 40 9a 99 99 99 99 19 57 40 00 00 00 40 1e 18 24 0a 06 00 40 82 2d \
         18 24 0a 06 00",
    );
    assert_eq!(expected.len(), 92);
    assert_eq!(encode(&mut b), expected);
}

#[test]
fn booleans_pack_lsb_first() {
    let mut b = MessageBuilder::new();
    for v in [true, false, true, true, false, false, false, true] {
        b.table("t").unwrap().column_bool("b", v).unwrap();
        b.at_server_time().unwrap();
    }
    let msg = encode(&mut b);
    let s = sections(&msg, 0x04, "t", 8, &[("b", ColumnType::Boolean)]);
    assert_eq!(s, [0x00, 0x8d]);
}

#[test]
fn null_bitmap_rows_0_2_9_of_10_and_column_first_seen_at_row_1() {
    let mut b = MessageBuilder::new();
    for r in 0..10i64 {
        b.table("t").unwrap().column_i8("k", r as i8).unwrap();
        if ![0, 2, 9].contains(&r) {
            b.column_i64("v", 100 + r).unwrap();
        }
        b.at_server_time().unwrap();
    }
    let msg = encode(&mut b);
    let s = sections(
        &msg,
        0x04,
        "t",
        10,
        &[("k", ColumnType::Byte), ("v", ColumnType::Long)],
    );
    let mut expected = vec![0x00, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    expected.extend_from_slice(&[0x01, 0x05, 0x02]);
    for r in [1i64, 3, 4, 5, 6, 7, 8] {
        expected.extend_from_slice(&(100 + r).to_le_bytes());
    }
    assert_eq!(s, &expected[..]);
}

#[test]
fn sentinel_columns_write_sentinels_for_missing_and_not_yet_seen_rows() {
    // Row 0 has only `k`; `s`, `c`, `g`, `f` appear at row 1; row 2 lacks
    // them again; row 3 has them.
    let mut b = MessageBuilder::new();
    for r in 0..4 {
        b.table("t").unwrap().column_i32("k", r).unwrap();
        if r % 2 == 1 {
            b.column_i16("s", -2)
                .unwrap()
                .column_char("c", 'A')
                .unwrap()
                .column_geohash("g", 0xABCDE, 20)
                .unwrap()
                .column_bool("f", true)
                .unwrap();
        }
        b.at_server_time().unwrap();
    }
    let msg = encode(&mut b);
    let s = sections(
        &msg,
        0x04,
        "t",
        4,
        &[
            ("k", ColumnType::Int),
            ("s", ColumnType::Short),
            ("c", ColumnType::Char),
            ("g", ColumnType::Geohash),
            ("f", ColumnType::Boolean),
        ],
    );
    let mut expected = vec![0x00];
    for r in 0..4i32 {
        expected.extend_from_slice(&r.to_le_bytes());
    }
    expected.extend_from_slice(&hex("00 0000 feff 0000 feff"));
    expected.extend_from_slice(&hex("00 0000 4100 0000 4100"));
    expected.extend_from_slice(&hex("00 14 ffffff debc0a ffffff debc0a"));
    expected.extend_from_slice(&hex("00 0a"));
    assert_eq!(s, &expected[..]);
}

#[test]
fn uuid_is_low_then_high_little_endian() {
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_uuid("u", 0x550e8400_e29b_41d4_a716_446655440000)
        .unwrap()
        .at_server_time()
        .unwrap();
    let msg = encode(&mut b);
    let s = sections(&msg, 0x04, "t", 1, &[("u", ColumnType::Uuid)]);
    assert_eq!(s, hex("00 00 00 44 55 66 44 16 a7 d4 41 9b e2 00 84 0e 55"));
}

#[test]
fn geohash_20_bits_and_its_null_sentinel() {
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_geohash("g", 0xABCDE, 20)
        .unwrap()
        .at_server_time()
        .unwrap();
    b.table("t").unwrap().column_i8("x", 1).unwrap();
    b.at_server_time().unwrap();
    let msg = encode(&mut b);
    let s = sections(
        &msg,
        0x04,
        "t",
        2,
        &[("g", ColumnType::Geohash), ("x", ColumnType::Byte)],
    );
    assert_eq!(s, hex("00 14 de bc 0a ff ff ff  00 00 01"));
}

#[test]
fn decimals_are_scale_then_little_endian_twos_complement() {
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_decimal64("a", 12345, 2)
        .unwrap()
        .column_decimal128("b", -2, 3)
        .unwrap()
        .column_decimal256("c", [u64::MAX - 1, u64::MAX, u64::MAX, u64::MAX], 0)
        .unwrap()
        .at_server_time()
        .unwrap();
    let msg = encode(&mut b);
    let s = sections(
        &msg,
        0x04,
        "t",
        1,
        &[
            ("a", ColumnType::Decimal64),
            ("b", ColumnType::Decimal128),
            ("c", ColumnType::Decimal256),
        ],
    );
    let mut expected = hex("00 02 39 30 00 00 00 00 00 00");
    expected.extend_from_slice(&hex("00 03 fe"));
    expected.extend_from_slice(&[0xff; 15]);
    expected.extend_from_slice(&hex("00 00 fe"));
    expected.extend_from_slice(&[0xff; 31]);
    assert_eq!(s, &expected[..]);
}

#[test]
fn decimal_via_i128_for_256_sign_extends() {
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_decimal("c", qwp_proto::encoder::DecimalWidth::D256, -2, 1)
        .unwrap()
        .at_server_time()
        .unwrap();
    let msg = encode(&mut b);
    let s = sections(&msg, 0x04, "t", 1, &[("c", ColumnType::Decimal256)]);
    let mut expected = hex("00 01 fe");
    expected.extend_from_slice(&[0xff; 31]);
    assert_eq!(s, &expected[..]);
}

#[test]
fn varchar_example2_offsets_then_bytes() {
    let mut b = MessageBuilder::new();
    for v in [Some("foo"), None, Some("bar"), Some("baz")] {
        b.table("t").unwrap().column_i8("k", 0).unwrap();
        if let Some(v) = v {
            b.column_str("s", v).unwrap();
        }
        b.at_server_time().unwrap();
    }
    let msg = encode(&mut b);
    let s = sections(
        &msg,
        0x04,
        "t",
        4,
        &[("k", ColumnType::Byte), ("s", ColumnType::Varchar)],
    );
    let mut expected = hex("00 00 00 00 00");
    expected.extend_from_slice(&hex(
        "01 02 | 00 00 00 00 03 00 00 00 06 00 00 00 09 00 00 00 | 66 6f 6f 62 61 72 62 61 7a"
            .replace('|', "")
            .as_str(),
    ));
    assert_eq!(s, &expected[..]);
}

#[test]
fn binary_shares_the_varchar_layout() {
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_binary("b", &[0xde, 0xad])
        .unwrap()
        .at_server_time()
        .unwrap();
    b.table("t")
        .unwrap()
        .column_binary("b", &[])
        .unwrap()
        .at_server_time()
        .unwrap();
    let msg = encode(&mut b);
    let s = sections(&msg, 0x04, "t", 2, &[("b", ColumnType::Binary)]);
    assert_eq!(s, hex("00 00000000 02000000 02000000 dead"));
}

#[test]
fn fixed_width_types_are_little_endian() {
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_i8("a", -1)
        .unwrap()
        .column_i16("b", 0x0102)
        .unwrap()
        .column_i32("c", 0x01020304)
        .unwrap()
        .column_f32("d", 1.0)
        .unwrap()
        .column_date_millis("e", 0x0102)
        .unwrap()
        .column_ipv4("f", std::net::Ipv4Addr::new(192, 168, 0, 1))
        .unwrap()
        .column_long256("g", [1, 2, 3, 4])
        .unwrap()
        .at_server_time()
        .unwrap();
    let msg = encode(&mut b);
    let s = sections(
        &msg,
        0x04,
        "t",
        1,
        &[
            ("a", ColumnType::Byte),
            ("b", ColumnType::Short),
            ("c", ColumnType::Int),
            ("d", ColumnType::Float),
            ("e", ColumnType::Date),
            ("f", ColumnType::Ipv4),
            ("g", ColumnType::Long256),
        ],
    );
    let mut expected =
        hex("00 ff  00 0201  00 04030201  00 0000803f  00 0201000000000000  00 0100a8c0 00");
    for l in [1u64, 2, 3, 4] {
        expected.extend_from_slice(&l.to_le_bytes());
    }
    assert_eq!(s, &expected[..]);
}

#[test]
fn arrays_are_dims_then_row_major_elements_per_non_null_row() {
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_f64_array("m", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        .unwrap()
        .column_i64_array("l", &[0], &[])
        .unwrap()
        .at_server_time()
        .unwrap();
    b.table("t")
        .unwrap()
        .column_i64_array("l", &[1], &[7])
        .unwrap();
    b.at_server_time().unwrap();
    let msg = encode(&mut b);
    let s = sections(
        &msg,
        0x04,
        "t",
        2,
        &[("m", ColumnType::DoubleArray), ("l", ColumnType::LongArray)],
    );
    let mut expected = hex("01 02 02 02000000 03000000");
    for v in [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0] {
        expected.extend_from_slice(&v.to_le_bytes());
    }
    expected.extend_from_slice(&hex("00 01 00000000 01 01000000 0700000000000000"));
    assert_eq!(s, &expected[..]);
}

#[test]
fn timestamp_columns_use_gorilla_for_more_than_two_values() {
    let mut b = MessageBuilder::new();
    for t in [1000i64, 2000, 3000, 4000, 5010] {
        b.table("t").unwrap().column_ts_micros("ts", t).unwrap();
        b.at_server_time().unwrap();
    }
    let msg = encode(&mut b);
    let s = sections(&msg, 0x04, "t", 5, &[("ts", ColumnType::Timestamp)]);
    let mut expected = hex("00 01");
    expected.extend_from_slice(&1000i64.to_le_bytes());
    expected.extend_from_slice(&2000i64.to_le_bytes());
    expected.extend_from_slice(&hex("a4 00"));
    assert_eq!(s, &expected[..]);
}

#[test]
fn without_gorilla_timestamps_have_no_encoding_byte() {
    let mut b = no_gorilla();
    for t in [1000i64, 2000, 3000] {
        b.table("t").unwrap().column_i8("k", 0).unwrap();
        b.at_nanos(t).unwrap();
    }
    let msg = encode(&mut b);
    let s = sections(
        &msg,
        0x00,
        "t",
        3,
        &[("k", ColumnType::Byte), ("", ColumnType::TimestampNanos)],
    );
    let mut expected = hex("00 00 00 00  00");
    for t in [1000i64, 2000, 3000] {
        expected.extend_from_slice(&t.to_le_bytes());
    }
    assert_eq!(s, &expected[..]);
}

#[test]
fn designated_timestamp_null_for_rows_ended_at_server_time() {
    let mut b = no_gorilla();
    b.table("t").unwrap().column_i8("k", 1).unwrap();
    b.at_micros(5).unwrap();
    b.table("t").unwrap().column_i8("k", 2).unwrap();
    b.at_server_time().unwrap();
    let msg = encode(&mut b);
    let s = sections(
        &msg,
        0x00,
        "t",
        2,
        &[("k", ColumnType::Byte), ("", ColumnType::Timestamp)],
    );
    assert_eq!(s, hex("00 01 02  01 02 0500000000000000"));
}

#[test]
fn symbol_ids_are_shared_across_tables_and_restart_at_zero_per_message() {
    let mut b = no_gorilla();
    b.table("a").unwrap().symbol("s", "x").unwrap();
    b.at_server_time().unwrap();
    b.table("b")
        .unwrap()
        .symbol("s", "y")
        .unwrap()
        .symbol("t", "x")
        .unwrap();
    b.at_server_time().unwrap();
    b.table("a").unwrap().symbol("s", "y").unwrap();
    b.at_server_time().unwrap();
    let first = encode(&mut b);
    let expected = hex("51 57 50 31 01 08 02 00 1e 00 00 00 \
         00 02 01 78 01 79 \
         01 61 02 01 01 73 09  00 00 01 \
         01 62 01 02 01 73 09 01 74 09  00 01  00 00");
    assert_eq!(first, expected);
    // A new message declares its own ids from 0, in its own first-use order.
    b.table("b").unwrap().symbol("s", "y").unwrap();
    b.at_server_time().unwrap();
    let second = encode(&mut b);
    assert_eq!(
        second,
        hex("51 57 50 31 01 08 01 00 0d 00 00 00  00 01 01 79  01 62 01 01 01 73 09 00 00")
    );
}

#[test]
fn encode_clears_and_a_reused_builder_matches_a_fresh_one() {
    let fill = |b: &mut MessageBuilder, n: i64| {
        for i in 0..n {
            b.table("m")
                .unwrap()
                .symbol("s", if i % 2 == 0 { "even" } else { "odd" })
                .unwrap()
                .column_f64("v", i as f64)
                .unwrap()
                .column_str("x", "hello")
                .unwrap()
                .at_micros(1_000 * i)
                .unwrap();
        }
    };
    let mut reused = MessageBuilder::new();
    fill(&mut reused, 7);
    b_table_other(&mut reused);
    let _ = encode(&mut reused);
    assert!(reused.is_empty());
    let mut out = Vec::new();
    assert_eq!(reused.encode_into(&mut out).unwrap(), 0);
    assert!(out.is_empty());
    fill(&mut reused, 5);
    let mut fresh = MessageBuilder::new();
    fill(&mut fresh, 5);
    assert_eq!(reused.pending_rows(), 5);
    assert_eq!(reused.encoded_len_bound(), fresh.encoded_len_bound());
    assert_eq!(encode(&mut reused), encode(&mut fresh));
}

fn b_table_other(b: &mut MessageBuilder) {
    b.table("other")
        .unwrap()
        .column_i32("z", 1)
        .unwrap()
        .at_server_time()
        .unwrap();
}

#[test]
fn encode_into_appends_after_existing_bytes() {
    let mut b = MessageBuilder::new();
    b.table("t").unwrap().column_i8("k", 1).unwrap();
    b.at_server_time().unwrap();
    let mut out = vec![0xaa, 0xbb];
    let n = b.encode_into(&mut out).unwrap();
    assert_eq!(&out[..2], [0xaa, 0xbb]);
    assert_eq!(&out[2..6], b"QWP1");
    assert_eq!(n, out.len() - 2);
    let payload = u32::from_le_bytes(out[10..14].try_into().unwrap()) as usize;
    assert_eq!(payload + 12, n);
}

fn mixed_rows(b: &mut MessageBuilder, n: i64) {
    for i in 0..n {
        b.table(if i % 3 == 0 { "a" } else { "b" })
            .unwrap()
            .symbol("s", &format!("v{}", i % 7))
            .unwrap();
        if i % 2 == 0 {
            b.column_str("x", "some text").unwrap();
        }
        if i % 5 != 0 {
            b.column_bool("f", i % 3 == 0)
                .unwrap()
                .column_i16("h", 3)
                .unwrap();
        }
        b.column_geohash("g", 5, 5).unwrap();
        b.at_micros(i * 1_000_000 + (i * i) % 17).unwrap();
    }
}

#[test]
fn encoded_len_bound_covers_the_message_across_types() {
    for n in [1, 2, 9, 37, 100] {
        let mut b = MessageBuilder::new();
        mixed_rows(&mut b, n);
        let bound = b.encoded_len_bound();
        let msg = encode(&mut b);
        assert!(msg.len() <= bound, "{n} rows: {} > {bound}", msg.len());
        // Only assumed bitmaps and Gorilla savings separate them.
        assert!(
            bound - msg.len() <= 20 + 8 * n as usize,
            "{n} rows: bound {bound} vs {}",
            msg.len()
        );
    }
}

#[test]
fn encoded_len_bound_is_exact_without_nulls_or_gorilla() {
    let mut b = no_gorilla();
    for i in 0..50i64 {
        b.table("t")
            .unwrap()
            .symbol("s", "x")
            .unwrap()
            .column_f64("v", 1.0)
            .unwrap()
            .column_str("w", "abc")
            .unwrap()
            .at_micros(i)
            .unwrap();
    }
    let bound = b.encoded_len_bound();
    let msg = encode(&mut b);
    // Exact but for the assumed bitmaps: 4 bitmap columns × ceil(50/8).
    assert_eq!(bound, msg.len() + 4 * 7);
}

#[test]
fn always_send_dictionary_sends_an_empty_dictionary_without_symbols() {
    let mut b = MessageBuilder::with_config(EncoderConfig {
        always_send_dictionary: true,
        ..EncoderConfig::default()
    })
    .unwrap();
    b.table("t").unwrap().column_i8("k", 1).unwrap();
    b.at_server_time().unwrap();
    let bound = b.encoded_len_bound();
    let msg = encode(&mut b);
    assert!(msg.len() <= bound);
    assert_eq!(
        msg,
        hex("51 57 50 31 01 0c 01 00 0b 00 00 00  00 00  01 74 01 01 01 6b 02 00 01")
    );
}
