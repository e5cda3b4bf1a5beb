//! Every class of malformed input gets its own typed error, never a panic
//! and never an allocation the input cannot back.

mod decoder_support;

use decoder_support::*;
use qwp_proto::decoder::{
    decode, decode_header, decode_with_limits, DecodeError, DecodeLimits, ErrorKind, Location,
};
use qwp_proto::types::ColumnType;

fn err(bytes: &[u8]) -> DecodeError {
    match decode(bytes) {
        Ok(m) => panic!("decoded a malformed message: {m:?}"),
        Err(e) => e,
    }
}

fn kind(bytes: &[u8]) -> ErrorKind {
    err(bytes).kind
}

/// Rewrites the header's payload length to match the bytes present.
fn fix_length(mut bytes: Vec<u8>) -> Vec<u8> {
    let len = (bytes.len() - 12) as u32;
    bytes[8..12].copy_from_slice(&len.to_le_bytes());
    bytes
}

fn message_with_table(table: Vec<u8>) -> Vec<u8> {
    let mut payload = delta(0, &[]);
    payload.extend(table);
    message(0x0c, 1, &payload)
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    for msg in corpus() {
        for cut in 0..msg.len() {
            // As cut: the header (or its length) no longer matches.
            let e = err(&msg[..cut]);
            if cut < 12 {
                assert!(
                    matches!(e.kind, ErrorKind::Truncated { .. }),
                    "cut {cut}: {e}"
                );
            } else {
                assert!(
                    matches!(e.kind, ErrorKind::PayloadLengthMismatch { .. }),
                    "cut {cut}: {e}"
                );
            }
            // With the length patched, the structure itself runs short.
            if cut >= 12 {
                let e = err(&fix_length(msg[..cut].to_vec()));
                assert!(
                    matches!(
                        e.kind,
                        ErrorKind::Truncated { .. } | ErrorKind::OffsetPastEnd { .. }
                    ),
                    "cut {cut} of {}: {e}",
                    msg.len()
                );
            }
        }
    }
}

#[test]
fn short_header_is_truncated() {
    let e = decode_header(&example1()[..11]).unwrap_err();
    assert!(
        matches!(e.kind, ErrorKind::Truncated { needed: 12, .. }),
        "{e}"
    );
}

#[test]
fn varint_overflow_is_an_error() {
    let mut t = Vec::new();
    s(&mut t, "t");
    t.extend_from_slice(&[0xff; 10]); // row count: 10 continuation-heavy bytes
    t.push(0x01);
    assert_eq!(
        kind(&message_with_table(t)),
        ErrorKind::VarintOverflow { what: "row count" }
    );
    // In the delta dictionary too.
    let mut payload = vec![0x80; 11];
    payload.push(0x00);
    assert!(matches!(
        kind(&message(0x08, 0, &payload)),
        ErrorKind::VarintOverflow { .. }
    ));
}

#[test]
fn bad_magic_is_an_error() {
    let mut m = example1();
    m[3] = b'2';
    assert_eq!(kind(&m), ErrorKind::BadMagic { found: *b"QWP2" });
    assert_eq!(decode_header(&m).unwrap_err().offset, 0);
}

#[test]
fn version_other_than_1_is_an_error() {
    for version in [0u8, 2, 0xff] {
        let mut m = example1();
        m[4] = version;
        assert_eq!(kind(&m), ErrorKind::UnsupportedVersion { found: version });
        assert_eq!(
            decode_header(&m).unwrap_err().kind,
            ErrorKind::UnsupportedVersion { found: version }
        );
    }
}

#[test]
fn reserved_flag_bits_are_errors() {
    for bit in [0x01u8, 0x02, 0x10, 0x20, 0x40, 0x80] {
        let mut m = example4();
        m[5] |= bit;
        assert_eq!(kind(&m), ErrorKind::ReservedFlags { flags: 0x0c | bit });
    }
}

#[test]
fn payload_length_must_match_exactly() {
    let mut longer = example1();
    longer[8] += 1;
    assert_eq!(
        kind(&longer),
        ErrorKind::PayloadLengthMismatch {
            declared: 77,
            actual: 76
        }
    );
    // Trailing bytes after the message are refused too.
    let mut trailing = example1();
    trailing.push(0x00);
    assert_eq!(
        kind(&trailing),
        ErrorKind::PayloadLengthMismatch {
            declared: 76,
            actual: 77
        }
    );
}

#[test]
fn bytes_after_the_last_table_block_are_an_error() {
    let mut m = example1();
    m.push(0xaa);
    let m = fix_length(m);
    let e = err(&m);
    assert_eq!(e.kind, ErrorKind::TrailingBytes { count: 1 });
    assert_eq!(e.offset, 88);
    // A table count below the blocks present leaves them as trailing bytes.
    let mut m = all_types_message();
    m[6] = 2;
    assert!(matches!(kind(&m), ErrorKind::TrailingBytes { .. }));
}

#[test]
fn unknown_type_codes_are_errors() {
    for code in [0x00u8, 0x08, 0x19, 0xff] {
        let e = err(&message_with_table(one_column_table(0, "c", code, &[0x00])));
        assert_eq!(e.kind, ErrorKind::UnknownTypeCode { code }, "{code:#x}");
        assert!(matches!(e.location, Location::Table { table: 0, .. }));
    }
}

#[test]
fn names_longer_than_127_bytes_are_errors() {
    let long = "x".repeat(128);
    let e = err(&message_with_table(table(&long, 0, &[])));
    assert_eq!(
        e.kind,
        ErrorKind::NameTooLong {
            what: "table name",
            len: 128,
            max: 127
        }
    );
    let e = err(&message_with_table(one_column_table(
        0,
        &long,
        0x05,
        &[0x00],
    )));
    assert_eq!(
        e.kind,
        ErrorKind::NameTooLong {
            what: "column name",
            len: 128,
            max: 127
        }
    );
    // 127 is fine.
    let ok = "y".repeat(127);
    decode(&message_with_table(one_column_table(0, &ok, 0x05, &[0x00]))).unwrap();
    decode(&message_with_table(table(&ok, 0, &[]))).unwrap();
}

#[test]
fn invalid_utf8_names_are_errors() {
    let mut t = vec![0x02, 0xc3, 0x28, 0x00, 0x00]; // table name C3 28
    assert_eq!(
        kind(&message_with_table(t.clone())),
        ErrorKind::InvalidUtf8 { what: "table name" }
    );
    t = vec![0x01, b't', 0x00, 0x01, 0x01, 0xff, 0x05, 0x00];
    assert_eq!(
        kind(&message_with_table(t)),
        ErrorKind::InvalidUtf8 {
            what: "column name"
        }
    );
}

#[test]
fn invalid_utf8_symbol_entry_is_an_error() {
    let mut payload = vec![0x00, 0x01, 0x01, 0xfe];
    payload.extend(table("t", 0, &[]));
    let e = err(&message(0x08, 1, &payload));
    assert_eq!(
        e.kind,
        ErrorKind::InvalidUtf8 {
            what: "symbol entry"
        }
    );
    assert_eq!(e.location, Location::SymbolDictionary);
    assert_eq!(e.offset, 15);
}

#[test]
fn invalid_utf8_varchar_is_an_error_at_its_byte() {
    // Offsets 0, 1, 3; data "a" then C3 28 (bad continuation).
    let mut section = vec![0x00];
    for o in [0u32, 1, 3] {
        section.extend_from_slice(&o.to_le_bytes());
    }
    section.extend_from_slice(&[b'a', 0xc3, 0x28]);
    let m = one_column_message(2, 0x0f, &section);
    let e = err(&m);
    assert_eq!(
        e.kind,
        ErrorKind::InvalidUtf8 {
            what: "varchar value"
        }
    );
    assert_eq!(e.offset, m.len() - 2);
    // The same bytes are a fine BINARY value.
    decode(&one_column_message(2, 0x17, &section)).unwrap();
}

#[test]
fn more_than_2048_columns_is_an_error() {
    let mut t = Vec::new();
    s(&mut t, "t");
    v(&mut t, 0);
    v(&mut t, 2049);
    assert_eq!(
        kind(&message_with_table(t)),
        ErrorKind::TooManyColumns {
            count: 2049,
            max: 2048
        }
    );
    // Exactly 2048 is fine.
    let cols: Vec<Col> = (0..2048)
        .map(|i| Col::new(&format!("c{i}"), 0x02, vec![0x00], vec![]))
        .collect();
    let m = decode(&message_with_table(table("t", 0, &cols))).unwrap();
    assert_eq!(m.tables[0].columns().len(), 2048);
}

fn offsets_section(offsets: &[u32], data: &[u8]) -> Vec<u8> {
    let mut section = vec![0x00];
    for o in offsets {
        section.extend_from_slice(&o.to_le_bytes());
    }
    section.extend_from_slice(data);
    section
}

#[test]
fn varlen_offsets_not_monotonic_are_errors() {
    for code in [0x0f, 0x17] {
        let m = one_column_message(2, code, &offsets_section(&[0, 3, 2], b"abc"));
        let e = err(&m);
        assert_eq!(
            e.kind,
            ErrorKind::OffsetsNotMonotonic {
                index: 2,
                previous: 3,
                found: 2
            }
        );
        assert_eq!(e.offset, m.len() - 3 - 4);
    }
}

#[test]
fn varlen_first_offset_not_zero_is_an_error() {
    for code in [0x0f, 0x17] {
        let m = one_column_message(1, code, &offsets_section(&[1, 2], b"ab"));
        assert_eq!(kind(&m), ErrorKind::FirstOffsetNotZero { found: 1 });
    }
}

#[test]
fn varlen_offsets_past_the_end_are_errors() {
    for code in [0x0f, 0x17] {
        let m = one_column_message(1, code, &offsets_section(&[0, u32::MAX], b"ab"));
        assert_eq!(
            kind(&m),
            ErrorKind::OffsetPastEnd {
                end: u32::MAX,
                available: 2
            }
        );
    }
}

#[test]
fn geohash_precision_outside_1_to_60_is_an_error() {
    for bits in [0u64, 61, 64, 255, 1 << 40] {
        let mut section = vec![0x00];
        v(&mut section, bits);
        section.extend_from_slice(&[0u8; 8]);
        let e = err(&one_column_message(1, 0x0e, &section));
        assert_eq!(e.kind, ErrorKind::GeohashPrecision { bits });
        assert!(matches!(
            e.location,
            Location::Column {
                column_type: ColumnType::Geohash,
                ..
            }
        ));
    }
}

#[test]
fn array_dims_outside_1_to_32_are_errors() {
    for code in [0x11, 0x12] {
        for n_dims in [0u8, 33, 255] {
            let mut section = vec![0x00, n_dims];
            section.extend_from_slice(&[0u8; 4 * 40]);
            let m = one_column_message(1, code, &section);
            assert_eq!(kind(&m), ErrorKind::ArrayDims { n_dims });
        }
    }
}

#[test]
fn negative_array_dims_are_errors() {
    let mut section = vec![0x00, 2];
    section.extend_from_slice(&1i32.to_le_bytes());
    section.extend_from_slice(&(-1i32).to_le_bytes());
    assert_eq!(
        kind(&one_column_message(1, 0x11, &section)),
        ErrorKind::NegativeArrayDim { dim: 1, length: -1 }
    );
}

#[test]
fn array_element_count_overflow_is_an_error() {
    let mut section = vec![0x00, 3];
    for _ in 0..3 {
        section.extend_from_slice(&i32::MAX.to_le_bytes());
    }
    assert_eq!(
        kind(&one_column_message(1, 0x12, &section)),
        ErrorKind::ArrayElementCountOverflow
    );
    // The element count fits but its byte size does not.
    let mut section = vec![0x00, 2];
    for _ in 0..2 {
        section.extend_from_slice(&i32::MAX.to_le_bytes());
    }
    assert_eq!(
        kind(&one_column_message(1, 0x11, &section)),
        ErrorKind::ArrayElementCountOverflow
    );
    // A large but representable count is refused as truncation, unallocated.
    let mut section = vec![0x00, 2];
    for _ in 0..2 {
        section.extend_from_slice(&(1i32 << 20).to_le_bytes());
    }
    assert!(matches!(
        kind(&one_column_message(1, 0x11, &section)),
        ErrorKind::Truncated {
            what: "array elements",
            ..
        }
    ));
}

#[test]
fn undeclared_symbol_id_is_an_error_stand_alone() {
    // Delta declares ids 0..2; id 2 is not declared.
    let mut payload = delta(0, &["a", "b"]);
    payload.extend(one_column_table(1, "s", 0x09, &[0x00, 0x02]));
    let e = err(&message(0x0c, 1, &payload));
    assert_eq!(e.kind, ErrorKind::UndeclaredSymbol { id: 2 });
    // A delta starting at 5 declares 5 and 6 only: id 0 belongs to a message
    // this stand-alone decode has not seen.
    let mut payload = delta(5, &["a", "b"]);
    payload.extend(one_column_table(2, "s", 0x09, &[0x00, 0x06, 0x00]));
    assert_eq!(
        kind(&message(0x0c, 1, &payload)),
        ErrorKind::UndeclaredSymbol { id: 0 }
    );
    // A huge id.
    let mut section = vec![0x00];
    v(&mut section, u64::MAX);
    assert_eq!(
        kind(&one_column_message(1, 0x09, &section)),
        ErrorKind::UndeclaredSymbol { id: u64::MAX }
    );
}

#[test]
fn per_column_symbol_index_out_of_range_is_an_error() {
    let section = hex("00 01 02 75 73 01");
    let payload = one_column_table(1, "s", 0x09, &section);
    assert_eq!(
        kind(&message(0x00, 1, &payload)),
        ErrorKind::UndeclaredSymbol { id: 1 }
    );
}

#[test]
fn bad_timestamp_encoding_byte_is_an_error() {
    for (code, byte) in [(0x0a, 0x02u8), (0x10, 0xff)] {
        let mut section = vec![0x00, byte];
        section.extend_from_slice(&[0u8; 8]);
        let e = err(&one_column_message(1, code, &section));
        assert_eq!(e.kind, ErrorKind::TimestampEncoding { found: byte });
    }
}

#[test]
fn empty_column_name_is_only_for_the_designated_timestamp() {
    let e = err(&message_with_table(one_column_table(0, "", 0x05, &[0x00])));
    assert_eq!(
        e.kind,
        ErrorKind::EmptyColumnName {
            column_type: ColumnType::Long
        }
    );
    for code in [0x0a, 0x10] {
        let m = decode(&message_with_table(one_column_table(
            0,
            "",
            code,
            &[0x00, 0x00],
        )))
        .unwrap();
        assert_eq!(m.tables[0].designated_timestamp(), Some(0));
    }
}

#[test]
fn empty_table_name_is_an_error() {
    assert_eq!(
        kind(&message_with_table(table("", 0, &[]))),
        ErrorKind::EmptyTableName
    );
}

#[test]
fn duplicate_column_names_are_errors() {
    let cols = [
        Col::new("a", 0x02, vec![0x00], vec![]),
        Col::new("a", 0x03, vec![0x00], vec![]),
    ];
    assert_eq!(
        kind(&message_with_table(table("t", 0, &cols))),
        ErrorKind::DuplicateColumnName { name: "a".into() }
    );
    // Two designated timestamps are two empty names.
    let cols = [
        Col::new("", 0x0a, vec![0x00, 0x00], vec![]),
        Col::new("", 0x10, vec![0x00, 0x00], vec![]),
    ];
    assert!(matches!(
        kind(&message_with_table(table("t", 0, &cols))),
        ErrorKind::DuplicateColumnName { .. }
    ));
}

/// A table declaring `rows` rows of one BOOLEAN column, with almost no data.
fn huge_row_count(rows: u64) -> Vec<u8> {
    let mut t = Vec::new();
    s(&mut t, "t");
    v(&mut t, rows);
    v(&mut t, 1);
    s(&mut t, "b");
    t.push(0x01);
    t.push(0x01); // null flag: bitmap follows, but it is missing
    message_with_table(t)
}

#[test]
fn row_count_above_the_limit_is_an_error() {
    assert_eq!(
        kind(&huge_row_count(1 << 60)),
        ErrorKind::TooManyRows {
            count: 1 << 60,
            max: 1_000_000
        }
    );
    assert_eq!(
        kind(&huge_row_count(1_000_001)),
        ErrorKind::TooManyRows {
            count: 1_000_001,
            max: 1_000_000
        }
    );
}

#[test]
fn huge_row_count_without_limit_is_refused_before_allocating() {
    let limits = DecodeLimits {
        max_rows_per_table: usize::MAX,
        ..DecodeLimits::default()
    };
    let e = decode_with_limits(&huge_row_count(1 << 60), &limits).unwrap_err();
    assert!(
        matches!(
            e.kind,
            ErrorKind::Truncated {
                what: "null bitmap",
                ..
            }
        ),
        "{e}"
    );
    // Sentinel mode: the values themselves are missing.
    for code in [0x01u8, 0x05, 0x09, 0x0a, 0x0e, 0x0f, 0x11] {
        let mut t = Vec::new();
        s(&mut t, "t");
        v(&mut t, 1 << 60);
        v(&mut t, 1);
        s(&mut t, "c");
        t.push(code);
        t.extend_from_slice(&[0x00, 0x01]);
        let e = decode_with_limits(&message_with_table(t), &limits).unwrap_err();
        assert!(
            matches!(e.kind, ErrorKind::Truncated { .. }),
            "{code:#x}: {e}"
        );
    }
}

#[test]
fn symbol_dictionary_over_the_limit_is_an_error() {
    let mut payload = Vec::new();
    v(&mut payload, 0);
    v(&mut payload, 1_000_001);
    assert_eq!(
        kind(&message(0x08, 0, &payload)),
        ErrorKind::SymbolDictionaryTooLarge {
            entries: 1_000_001,
            max: 1_000_000
        }
    );
    let payload = delta(999_999, &["a", "b"]);
    assert_eq!(
        kind(&message(0x08, 0, &payload)),
        ErrorKind::SymbolDictionaryTooLarge {
            entries: 1_000_001,
            max: 1_000_000
        }
    );
    // A declared count the input cannot hold is truncation, unallocated.
    let mut payload = Vec::new();
    v(&mut payload, 0);
    v(&mut payload, 900_000);
    assert!(matches!(
        kind(&message(0x08, 0, &payload)),
        ErrorKind::Truncated { .. }
    ));
    // Per-column dictionaries have the same limit.
    let mut section = vec![0x00];
    v(&mut section, 1_000_001);
    let payload = one_column_table(1, "s", 0x09, &section);
    assert!(matches!(
        kind(&message(0x00, 1, &payload)),
        ErrorKind::SymbolDictionaryTooLarge { .. }
    ));
}

#[test]
fn errors_name_table_column_and_offset() {
    let mut m = example4();
    // Corrupt the designated timestamp's encoding byte.
    let enc_at = m.len() - 17;
    assert_eq!(m[enc_at], 0x01);
    m[enc_at] = 0x07;
    let e = err(&m);
    assert_eq!(e.kind, ErrorKind::TimestampEncoding { found: 7 });
    assert_eq!(e.offset, enc_at);
    assert_eq!(
        e.location,
        Location::Column {
            table: 0,
            table_name: "sensors".into(),
            column: 2,
            column_name: "".into(),
            column_type: ColumnType::Timestamp
        }
    );
    let text = e.to_string();
    assert!(
        text.contains("sensors") && text.contains(&format!("byte {enc_at}")),
        "{text}"
    );
}
