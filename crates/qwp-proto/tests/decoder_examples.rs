//! The decoder against the wire brief's examples (§12) and test vectors
//! (§14), and a message holding every column type.

mod decoder_support;

use decoder_support::*;
use qwp_proto::decoder::{decode, decode_header, ColumnValues, Value};
use qwp_proto::types::ColumnType;

#[test]
fn example1_decodes_every_value() {
    let bytes = example1();
    assert_eq!(bytes.len(), 88);
    let m = decode(&bytes).unwrap();
    assert_eq!(m.header.version, 1);
    assert_eq!(m.header.flags.bits(), 0x00);
    assert_eq!(m.header.table_count, 1);
    assert_eq!(m.header.payload_length, 76);
    assert_eq!(m.symbol_delta, None);
    assert_eq!(m.tables.len(), 1);
    let t = &m.tables[0];
    assert_eq!(t.name(), "sensors");
    assert_eq!(t.row_count(), 2);
    let schema: Vec<_> = t.schema().collect();
    assert_eq!(
        schema,
        [
            ("id", ColumnType::Long),
            ("value", ColumnType::Double),
            ("ts", ColumnType::Timestamp)
        ]
    );
    // Named `ts`, so not the designated timestamp. Values per wire-ingress
    // §16: ts = 10,000,000,000 and 400,000 µs.
    assert_eq!(t.designated_timestamp(), None);
    let rows: Vec<_> = t.rows().collect();
    assert_eq!(
        rows,
        [
            vec![
                Some(Value::Long(1)),
                Some(Value::Double(1.3)),
                Some(Value::Timestamp(10_000_000_000))
            ],
            vec![
                Some(Value::Long(2)),
                Some(Value::Double(2.2)),
                Some(Value::Timestamp(400_000))
            ],
        ]
    );
}

#[test]
fn example4_gorilla_form_with_two_values_and_delta_dictionary() {
    let bytes = example4();
    assert_eq!(bytes.len(), 92);
    let m = decode(&bytes).unwrap();
    assert_eq!(m.header.flags.bits(), 0x0c);
    assert!(m.header.flags.gorilla() && m.header.flags.delta_symbol_dict());
    assert_eq!(m.header.payload_length, 80);
    let delta = m.symbol_delta.as_ref().unwrap();
    assert_eq!(delta.start, 0);
    assert_eq!(delta.entries, ["server1", "server2"]);
    let t = &m.tables[0];
    assert_eq!(t.name(), "sensors");
    assert_eq!(
        t.schema().collect::<Vec<_>>(),
        [
            ("host", ColumnType::Symbol),
            ("temp", ColumnType::Double),
            ("", ColumnType::Timestamp)
        ]
    );
    assert_eq!(t.designated_timestamp(), Some(2));
    let t0 = 1_700_000_000_000_000i64;
    let rows: Vec<_> = t.rows().collect();
    assert_eq!(
        rows,
        [
            vec![
                Some(Value::Symbol {
                    id: 0,
                    value: "server1".into()
                }),
                Some(Value::Double(91.6)),
                Some(Value::Timestamp(t0))
            ],
            vec![
                Some(Value::Symbol {
                    id: 1,
                    value: "server2".into()
                }),
                Some(Value::Double(92.4)),
                Some(Value::Timestamp(t0 + 1_000_000))
            ],
        ]
    );
}

#[test]
fn decode_header_reads_examples_without_the_payload() {
    let h = decode_header(&example4()[..12]).unwrap();
    assert_eq!(
        (h.version, h.flags.bits(), h.table_count, h.payload_length),
        (1, 0x0c, 1, 80)
    );
    assert_eq!(h.total_len(), 92);
    assert_eq!(decode_header(&example1()).unwrap().total_len(), 88);
}

#[test]
fn example2_varchar_section_with_bitmap_null() {
    let section =
        hex("01 02 00 00 00 00 03 00 00 00 06 00 00 00 09 00 00 00 66 6f 6f 62 61 72 62 61 7a");
    let m = decode(&one_column_message(4, 0x0f, &section)).unwrap();
    let c = &m.tables[0].columns()[0];
    assert_eq!(
        c.iter().collect::<Vec<_>>(),
        [
            Some(Value::Varchar("foo".into())),
            None,
            Some(Value::Varchar("bar".into())),
            Some(Value::Varchar("baz".into()))
        ]
    );
    assert_eq!(c.nulls().unwrap().null_count(), 1);
}

#[test]
fn example3_per_column_symbol_dictionary_without_delta_flag() {
    let section = hex("00 02 02 75 73 02 65 75 00 01 00");
    let payload = one_column_table(3, "region", 0x09, &section);
    let m = decode(&message(0x00, 1, &payload)).unwrap();
    let sym = |id: u32, s: &str| {
        Some(Value::Symbol {
            id,
            value: s.into(),
        })
    };
    assert_eq!(
        m.tables[0].columns()[0].iter().collect::<Vec<_>>(),
        [sym(0, "us"), sym(1, "eu"), sym(0, "us")]
    );
}

#[test]
fn brief_14_4_bitmap_05_02_nulls_rows_0_2_9() {
    let mut section = vec![0x01, 0x05, 0x02];
    for v in 1..=7i64 {
        section.extend_from_slice(&v.to_le_bytes());
    }
    let m = decode(&one_column_message(10, 0x05, &section)).unwrap();
    let got: Vec<_> = m.tables[0].columns()[0].iter().collect();
    let long = |v| Some(Value::Long(v));
    assert_eq!(
        got,
        [
            None,
            long(1),
            None,
            long(2),
            long(3),
            long(4),
            long(5),
            long(6),
            long(7),
            None
        ]
    );
}

#[test]
fn brief_14_5_booleans_8d() {
    let m = decode(&one_column_message(8, 0x01, &[0x00, 0x8d])).unwrap();
    let got: Vec<bool> = m.tables[0].columns()[0]
        .iter()
        .map(|v| v == Some(Value::Boolean(true)))
        .collect();
    assert_eq!(got, [true, false, true, true, false, false, false, true]);
}

#[test]
fn brief_14_8_gorilla_stream_vectors_decode_in_a_message() {
    let cases: [(&[i64], &str); 5] = [
        (&[1000, 2000, 3000, 4000, 5010], "a4 00"),
        (&[0, 10, 20, 30, 40, 50, 60, 70, 80, 90], "00"),
        (&[100, 200, 300, 399], "fa 03"),
        (&[0, 1000, 2000, 3300], "8e 25 00"),
        (&[0, 1000, 2000, 103000], "1e d4 30 00 00"),
    ];
    for (values, stream) in cases {
        let mut section = vec![0x00, 0x01];
        section.extend_from_slice(&values[0].to_le_bytes());
        section.extend_from_slice(&values[1].to_le_bytes());
        section.extend(hex(stream));
        let m = decode(&one_column_message(values.len() as u64, 0x0a, &section)).unwrap();
        assert_eq!(
            m.tables[0].columns()[0].values(),
            &ColumnValues::Timestamp(values.to_vec()),
            "{values:?}"
        );
    }
}

#[test]
fn gorilla_form_with_one_value_is_accepted() {
    let mut section = vec![0x00, 0x01];
    section.extend_from_slice(&42i64.to_le_bytes());
    let m = decode(&one_column_message(1, 0x10, &section)).unwrap();
    assert_eq!(
        m.tables[0].columns()[0].value(0),
        Some(Value::TimestampNanos(42))
    );
}

#[test]
fn timestamps_without_gorilla_flag_have_no_encoding_byte() {
    let mut payload = delta(0, &[]);
    let mut section = vec![0x00];
    section.extend_from_slice(&5i64.to_le_bytes());
    payload.extend(one_column_table(1, "", 0x0a, &section));
    let m = decode(&message(0x08, 1, &payload)).unwrap();
    assert_eq!(m.tables[0].columns()[0].value(0), Some(Value::Timestamp(5)));
}

#[test]
fn every_type_decodes_with_both_null_strategies() {
    let m = decode(&all_types_message()).unwrap();
    assert_eq!(m.tables.len(), 3);
    let t = &m.tables[0];
    let cols = all_type_columns();
    assert_eq!(t.columns().len(), cols.len());
    // Every type code is exercised.
    let mut types: Vec<_> = t.schema().map(|(_, ty)| ty).collect();
    types.sort();
    types.dedup();
    assert_eq!(types, ColumnType::ALL);
    for (col, want) in t.columns().iter().zip(&cols) {
        assert_eq!(col.name(), want.name);
        assert_eq!(col.column_type().code(), want.code);
        assert_eq!(
            col.iter().collect::<Vec<_>>(),
            want.expect,
            "column {:?}",
            want.name
        );
        for v in col.iter().flatten() {
            assert_eq!(v.column_type(), col.column_type());
        }
    }
    assert_eq!(t.designated_timestamp(), Some(cols.len() - 1));
    // Row view agrees with the column view.
    for row in 0..3 {
        let expect: Vec<_> = cols.iter().map(|c| c.expect[row].clone()).collect();
        assert_eq!(t.row(row).unwrap(), expect);
    }
    assert_eq!(t.row(3), None);
    assert_eq!(t.columns()[0].value(3), None);
    let empty = &m.tables[1];
    assert_eq!((empty.name(), empty.row_count()), ("empty", 0));
    assert_eq!(empty.rows().count(), 0);
    let nocols = &m.tables[2];
    assert_eq!(nocols.rows().collect::<Vec<_>>(), vec![Vec::new(); 5]);
}

#[test]
fn sentinel_values_other_than_geohash_are_returned_as_values() {
    // LONG i64::MIN and DOUBLE NaN in sentinel mode are values, not nulls.
    let mut section = vec![0x00];
    section.extend_from_slice(&i64::MIN.to_le_bytes());
    let m = decode(&one_column_message(1, 0x05, &section)).unwrap();
    assert_eq!(
        m.tables[0].columns()[0].value(0),
        Some(Value::Long(i64::MIN))
    );
    let mut section = vec![0x00];
    section.extend_from_slice(&f64::NAN.to_le_bytes());
    let m = decode(&one_column_message(1, 0x07, &section)).unwrap();
    assert!(matches!(m.tables[0].columns()[0].value(0), Some(Value::Double(d)) if d.is_nan()));
}

#[test]
fn geohash_all_ff_is_null_only_in_sentinel_mode() {
    // Sentinel mode, 60 bits (8 bytes wide): all-FF is null.
    let mut section = vec![0x00, 60];
    section.extend_from_slice(&[0xff; 8]);
    section.extend_from_slice(&7u64.to_le_bytes());
    let m = decode(&one_column_message(2, 0x0e, &section)).unwrap();
    let c = &m.tables[0].columns()[0];
    assert_eq!(
        c.iter().collect::<Vec<_>>(),
        [
            None,
            Some(Value::Geohash {
                value: 7,
                precision_bits: 60
            })
        ]
    );
    // Bitmap mode without a null row, 8 bits: FF is a value, not a null.
    let m = decode(&one_column_message(1, 0x0e, &[0x01, 0x00, 8, 0xff])).unwrap();
    assert_eq!(
        m.tables[0].columns()[0].value(0),
        Some(Value::Geohash {
            value: 0xff,
            precision_bits: 8
        })
    );
    // Bitmap mode, 8 bits: an FF value is a value (0xFF), not a null.
    let m = decode(&one_column_message(2, 0x0e, &[0x01, 0x01, 8, 0xff])).unwrap();
    assert_eq!(
        m.tables[0].columns()[0].iter().collect::<Vec<_>>(),
        [
            None,
            Some(Value::Geohash {
                value: 0xff,
                precision_bits: 8
            })
        ]
    );
}

#[test]
fn bitmap_without_nulls_equals_no_bitmap() {
    let mut plain = vec![0x00];
    let mut bitmap = vec![0x01, 0x00];
    for s in [&mut plain, &mut bitmap] {
        s.extend_from_slice(&3i32.to_le_bytes());
    }
    let a = decode(&one_column_message(1, 0x04, &plain)).unwrap();
    let b = decode(&one_column_message(1, 0x04, &bitmap)).unwrap();
    assert_eq!(a.tables, b.tables);
    assert!(a.tables[0].columns()[0].nulls().is_none());
}

#[test]
fn brief_14_9_uuid_bytes() {
    let mut section = vec![0x00];
    section.extend(hex("00 00 44 55 66 44 16 a7 d4 41 9b e2 00 84 0e 55"));
    let m = decode(&one_column_message(1, 0x0c, &section)).unwrap();
    let Some(Value::Uuid(u)) = m.tables[0].columns()[0].value(0) else {
        panic!("not a UUID");
    };
    assert_eq!(
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            u >> 96,
            (u >> 80) & 0xffff,
            (u >> 64) & 0xffff,
            (u >> 48) & 0xffff,
            u & 0xffff_ffff_ffff
        ),
        "550e8400-e29b-41d4-a716-446655440000"
    );
}

#[test]
fn brief_14_10_geohash_20_bits_and_null() {
    let m = decode(&one_column_message(
        2,
        0x0e,
        &hex("00 14 de bc 0a ff ff ff"),
    ))
    .unwrap();
    let c = &m.tables[0].columns()[0];
    assert_eq!(
        c.iter().collect::<Vec<_>>(),
        [
            Some(Value::Geohash {
                value: 0xABCDE,
                precision_bits: 20
            }),
            None
        ]
    );
    assert_eq!(c.nulls().unwrap().null_count(), 1);
}

#[test]
fn brief_14_11_decimals_scale_before_values() {
    let m = decode(&one_column_message(
        1,
        0x13,
        &hex("00 03 39 30 00 00 00 00 00 00"),
    ))
    .unwrap();
    assert_eq!(
        m.tables[0].columns()[0].value(0),
        Some(Value::Decimal64 {
            unscaled: 12345,
            scale: 3
        })
    );
    let m = decode(&one_column_message(
        1,
        0x14,
        &hex("00 02 fe ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff"),
    ))
    .unwrap();
    assert_eq!(
        m.tables[0].columns()[0].value(0),
        Some(Value::Decimal128 {
            unscaled: -2,
            scale: 2
        })
    );
    let mut d256 = vec![0x00, 0x01];
    d256.extend_from_slice(&[0xfe]);
    d256.extend_from_slice(&[0xff; 31]);
    let m = decode(&one_column_message(1, 0x15, &d256)).unwrap();
    assert_eq!(
        m.tables[0].columns()[0].value(0),
        Some(Value::Decimal256 {
            unscaled: [u64::MAX - 1, u64::MAX, u64::MAX, u64::MAX],
            scale: 1
        })
    );
}
