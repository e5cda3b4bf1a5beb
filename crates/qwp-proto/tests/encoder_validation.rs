//! Every refusal of the encoder is a typed error, and a refused row leaves
//! the builder exactly as it was before the row (checked by comparing the
//! encoded bytes with a builder that never saw the row).

use qwp_proto::encoder::{
    ArrayProblem, ColumnShape, DecimalWidth, EncodeError, EncoderConfig, MessageBuilder,
    NameProblem, MAX_SYMBOLS, MAX_TABLES,
};
use qwp_proto::types::{ColumnType, MAX_COLUMNS};

fn encode(b: &mut MessageBuilder) -> Vec<u8> {
    let mut out = Vec::new();
    b.encode_into(&mut out).unwrap();
    out
}

/// Two rows in two tables, with a symbol, a gap and a sentinel column.
fn base(b: &mut MessageBuilder) {
    b.table("t")
        .unwrap()
        .symbol("s", "a")
        .unwrap()
        .column_i64("v", 1)
        .unwrap()
        .column_i16("h", 7)
        .unwrap()
        .at_micros(10)
        .unwrap();
    b.table("u")
        .unwrap()
        .column_str("w", "x")
        .unwrap()
        .at_server_time()
        .unwrap();
    b.table("t")
        .unwrap()
        .symbol("s", "b")
        .unwrap()
        .at_micros(20)
        .unwrap();
}

/// A row that only succeeds on a builder holding `base`.
fn after(b: &mut MessageBuilder) {
    b.table("t")
        .unwrap()
        .symbol("s", "c")
        .unwrap()
        .column_i64("v", 3)
        .unwrap()
        .column_i16("h", 8)
        .unwrap()
        .column_f64("new", 0.5)
        .unwrap()
        .at_micros(30)
        .unwrap();
}

/// Runs `bad` (which must fail with an error matching `check`) between
/// `base` and `after`, and compares the bytes with a builder that never saw
/// it.
#[track_caller]
fn rolls_back(
    bad: impl FnOnce(&mut MessageBuilder) -> Result<(), EncodeError>,
    check: impl FnOnce(&EncodeError) -> bool,
) {
    let mut b = MessageBuilder::new();
    base(&mut b);
    let bound = b.encoded_len_bound();
    let err = bad(&mut b).expect_err("the row must be refused");
    assert!(check(&err), "unexpected error: {err:?}");
    assert!(
        !b.row_in_progress(),
        "a failed row leaves no row in progress"
    );
    assert_eq!(b.pending_rows(), 3);
    assert_eq!(b.encoded_len_bound(), bound);
    after(&mut b);
    let mut reference = MessageBuilder::new();
    base(&mut reference);
    after(&mut reference);
    assert_eq!(b.encoded_len_bound(), reference.encoded_len_bound());
    assert_eq!(encode(&mut b), encode(&mut reference));
}

#[test]
fn invalid_config_is_refused() {
    let cfg = |max_batch_bytes, max_rows_per_table| EncoderConfig {
        max_batch_bytes,
        max_rows_per_table,
        gorilla: true,
        always_send_dictionary: false,
    };
    for c in [
        cfg(12, 10),
        cfg(0, 10),
        cfg(12 + u32::MAX as usize + 1, 10),
        cfg(100, 0),
    ] {
        assert!(matches!(
            MessageBuilder::with_config(c),
            Err(EncodeError::InvalidConfig(_))
        ));
    }
    assert!(MessageBuilder::with_config(cfg(13, 1)).is_ok());
    assert!(MessageBuilder::with_config(cfg(12 + u32::MAX as usize, 1)).is_ok());
}

#[test]
fn values_without_a_row_are_refused() {
    let mut b = MessageBuilder::new();
    assert_eq!(
        b.column_i64("v", 1).unwrap_err(),
        EncodeError::NoRowInProgress
    );
    assert_eq!(
        b.symbol("s", "x").unwrap_err(),
        EncodeError::NoRowInProgress
    );
    assert_eq!(
        b.column_geohash("g", 1, 0).unwrap_err(),
        EncodeError::NoRowInProgress
    );
    assert_eq!(b.at_micros(1).unwrap_err(), EncodeError::NoRowInProgress);
    assert_eq!(
        b.at_server_time().unwrap_err(),
        EncodeError::NoRowInProgress
    );
    assert!(b.is_empty());
}

#[test]
fn table_while_row_in_progress_rolls_the_row_back() {
    rolls_back(
        |b| {
            b.table("t")?.column_i64("v", 9)?.symbol("s", "zz")?;
            b.table("u").map(|_| ())
        },
        |e| matches!(e, EncodeError::RowInProgress { table } if table == "t"),
    );
}

#[test]
fn encode_with_row_in_progress_is_refused_and_keeps_the_row() {
    let mut b = MessageBuilder::new();
    base(&mut b);
    b.table("t").unwrap().column_i64("v", 3).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        b.encode_into(&mut out),
        Err(EncodeError::RowInProgress { .. })
    ));
    assert!(out.is_empty());
    b.at_micros(5).unwrap();
    assert_eq!(b.pending_rows(), 4);
}

#[test]
fn explicit_rollback_row_restores_the_builder() {
    rolls_back(
        |b| {
            b.table("new_table")?.column_i64("v", 9)?;
            b.rollback_row();
            b.table("t")?.symbol("s", "zz")?.column_f32("f", 1.0)?;
            b.rollback_row();
            // Report the rollback as the failure rolls_back expects.
            Err(EncodeError::NoRowInProgress)
        },
        |e| *e == EncodeError::NoRowInProgress,
    );
}

#[test]
fn empty_row_is_refused() {
    rolls_back(
        |b| b.table("fresh")?.at_server_time(),
        |e| matches!(e, EncodeError::EmptyRow { table } if table == "fresh"),
    );
}

#[test]
fn invalid_table_names_are_refused() {
    for (name, problem) in [
        ("", NameProblem::Empty),
        ("a/b", NameProblem::ForbiddenChar { ch: '/', at: 1 }),
        (".hidden", NameProblem::MisplacedDot),
        ("a..b", NameProblem::MisplacedDot),
        (" t", NameProblem::EdgeSpace),
        (&"n".repeat(128), NameProblem::TooLong { len: 128 }),
    ] {
        rolls_back(
            |b| b.table(name).map(|_| ()),
            |e| matches!(e, EncodeError::InvalidTableName { name: n, problem: p } if n == name && *p == problem),
        );
    }
}

#[test]
fn invalid_column_names_are_refused() {
    for (name, problem) in [
        ("", NameProblem::Empty),
        ("a.b", NameProblem::ForbiddenChar { ch: '.', at: 1 }),
        ("a-b", NameProblem::ForbiddenChar { ch: '-', at: 1 }),
        ("nul\0", NameProblem::ForbiddenChar { ch: '\0', at: 3 }),
        (
            "\u{feff}bom",
            NameProblem::ForbiddenChar {
                ch: '\u{feff}',
                at: 0,
            },
        ),
        (&"é".repeat(64), NameProblem::TooLong { len: 128 }),
    ] {
        rolls_back(
            |b| {
                b.table("t")?.column_i64("v", 5)?.column_f64(name, 1.0)?;
                Ok(())
            },
            |e| {
                matches!(e, EncodeError::InvalidColumnName { table, column, problem: p }
                if table == "t" && column == name && *p == problem)
            },
        );
    }
}

#[test]
fn more_than_2048_columns_is_refused() {
    let mut b = MessageBuilder::new();
    b.table("wide").unwrap();
    for i in 0..MAX_COLUMNS {
        b.column_bool(&format!("c{i}"), true).unwrap();
    }
    b.at_server_time().unwrap();
    let ok = encode(&mut b);
    b.table("wide").unwrap();
    for i in 0..MAX_COLUMNS {
        b.column_bool(&format!("c{i}"), true).unwrap();
    }
    b.at_server_time().unwrap();
    b.table("wide").unwrap().column_bool("c0", false).unwrap();
    let err = b.column_bool("one_more", true).unwrap_err();
    assert_eq!(
        err,
        EncodeError::TooManyColumns {
            table: "wide".into(),
            max: MAX_COLUMNS
        }
    );
    assert_eq!(encode(&mut b), ok);
}

#[test]
fn more_than_65535_tables_is_refused() {
    let mut b = MessageBuilder::new();
    for i in 0..MAX_TABLES {
        b.table(&format!("t{i}"))
            .unwrap()
            .column_i8("c", 1)
            .unwrap();
        b.at_server_time().unwrap();
    }
    assert_eq!(
        b.table("one_more").unwrap_err(),
        EncodeError::TooManyTables { max: MAX_TABLES }
    );
    let msg = encode(&mut b);
    assert_eq!(&msg[6..8], &[0xff, 0xff]);
}

#[test]
fn more_rows_than_the_table_limit_is_refused() {
    let cfg = EncoderConfig {
        max_rows_per_table: 2,
        ..EncoderConfig::default()
    };
    let mut b = MessageBuilder::with_config(cfg).unwrap();
    let mut reference = MessageBuilder::with_config(cfg).unwrap();
    for m in [&mut b, &mut reference] {
        for i in 0..2 {
            m.table("t").unwrap().column_i64("v", i).unwrap();
            m.at_server_time().unwrap();
        }
    }
    let err = b
        .table("t")
        .unwrap()
        .symbol("s", "x")
        .unwrap()
        .at_server_time()
        .unwrap_err();
    assert_eq!(
        err,
        EncodeError::TooManyRows {
            table: "t".into(),
            max: 2
        }
    );
    // Other tables still take rows.
    for m in [&mut b, &mut reference] {
        m.table("u").unwrap().column_i64("v", 0).unwrap();
        m.at_server_time().unwrap();
    }
    assert_eq!(encode(&mut b), encode(&mut reference));
}

#[test]
fn more_distinct_symbols_than_the_dictionary_limit_is_refused() {
    let mut b = MessageBuilder::new();
    let cols: Vec<String> = (0..100).map(|c| format!("s{c}")).collect();
    let mut next = 0usize;
    while next < MAX_SYMBOLS {
        b.table("t").unwrap();
        for col in &cols {
            b.symbol(col, &next.to_string()).unwrap();
            next += 1;
        }
        b.at_server_time().unwrap();
    }
    let bound = b.encoded_len_bound();
    let err = b
        .table("t")
        .unwrap()
        .symbol("s0", "0")
        .unwrap()
        .symbol("s1", "new")
        .unwrap_err();
    assert_eq!(err, EncodeError::TooManySymbols { max: MAX_SYMBOLS });
    assert_eq!(b.encoded_len_bound(), bound);
    // Known symbols are still accepted.
    b.table("t")
        .unwrap()
        .symbol("s0", "5")
        .unwrap()
        .at_server_time()
        .unwrap();
}

#[test]
fn column_type_change_within_a_message_is_refused() {
    rolls_back(
        |b| b.table("t")?.column_f64("v", 1.0).map(|_| ()),
        |e| {
            *e == EncodeError::ColumnTypeChanged {
                table: "t".into(),
                column: "v".into(),
                existing: ColumnShape {
                    ty: ColumnType::Long,
                    param: 0,
                },
                requested: ColumnShape {
                    ty: ColumnType::Double,
                    param: 0,
                },
            }
        },
    );
    // A symbol column is not a VARCHAR column.
    rolls_back(
        |b| b.table("t")?.column_str("s", "a").map(|_| ()),
        |e| matches!(e, EncodeError::ColumnTypeChanged { .. }),
    );
}

#[test]
fn geohash_precision_and_decimal_scale_changes_are_type_changes() {
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_geohash("g", 1, 8)
        .unwrap()
        .column_decimal64("d", 1, 2)
        .unwrap()
        .at_server_time()
        .unwrap();
    let err = b.table("t").unwrap().column_geohash("g", 1, 9).unwrap_err();
    assert!(matches!(
        err,
        EncodeError::ColumnTypeChanged {
            existing: ColumnShape {
                ty: ColumnType::Geohash,
                param: 8
            },
            requested: ColumnShape {
                ty: ColumnType::Geohash,
                param: 9
            },
            ..
        }
    ));
    let err = b
        .table("t")
        .unwrap()
        .column_decimal64("d", 1, 3)
        .unwrap_err();
    assert!(matches!(err, EncodeError::ColumnTypeChanged { .. }));
    let err = b
        .table("t")
        .unwrap()
        .column_decimal128("d", 1, 2)
        .unwrap_err();
    assert!(matches!(err, EncodeError::ColumnTypeChanged { .. }));
    assert_eq!(b.pending_rows(), 1);
}

#[test]
fn designated_timestamp_unit_change_is_refused() {
    rolls_back(
        |b| b.table("t")?.column_i64("v", 1)?.at_nanos(5),
        |e| {
            *e == EncodeError::DesignatedTimestampUnitChanged {
                table: "t".into(),
                existing: ColumnType::Timestamp,
                requested: ColumnType::TimestampNanos,
            }
        },
    );
}

#[test]
fn a_column_set_twice_in_one_row_is_refused() {
    rolls_back(
        |b| {
            b.table("t")?
                .column_i64("v", 1)?
                .column_i64("v", 2)
                .map(|_| ())
        },
        |e| matches!(e, EncodeError::DuplicateColumn { table, column } if table == "t" && column == "v"),
    );
    // Also for a column created in the same row, and for symbols.
    rolls_back(
        |b| {
            b.table("t")?
                .column_i32("n", 1)?
                .column_i32("n", 2)
                .map(|_| ())
        },
        |e| matches!(e, EncodeError::DuplicateColumn { .. }),
    );
    rolls_back(
        |b| b.table("t")?.symbol("s", "q")?.symbol("s", "r").map(|_| ()),
        |e| matches!(e, EncodeError::DuplicateColumn { .. }),
    );
}

#[test]
fn decimals_that_do_not_fit_their_width_are_refused() {
    type SetDecimal = Box<dyn Fn(&mut MessageBuilder) -> Result<(), EncodeError>>;
    let cases: Vec<(SetDecimal, u8)> = vec![
        (
            Box::new(|b| {
                b.column_decimal64("d", 1_000_000_000_000_000_000, 0)
                    .map(|_| ())
            }),
            18,
        ),
        (
            Box::new(|b| {
                b.column_decimal("d", DecimalWidth::D64, -1_000_000_000_000_000_000, 0)
                    .map(|_| ())
            }),
            18,
        ),
        (
            Box::new(|b| b.column_decimal128("d", 10i128.pow(38), 0).map(|_| ())),
            38,
        ),
        (
            Box::new(|b| b.column_decimal256("d", [0, 0, 0, 1 << 63], 0).map(|_| ())),
            76,
        ),
    ];
    for (f, digits) in cases {
        rolls_back(
            |b| {
                b.table("t")?;
                f(b)
            },
            |e| matches!(e, EncodeError::DecimalOutOfRange { column, max_digits } if column == "d" && *max_digits == digits),
        );
    }
    // The largest values of each width are fine.
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_decimal64("a", -999_999_999_999_999_999, 18)
        .unwrap()
        .column_decimal128("b", 10i128.pow(38) - 1, 38)
        .unwrap()
        .column_decimal256("c", [u64::MAX; 4], 76)
        .unwrap()
        .at_server_time()
        .unwrap();
}

#[test]
fn decimal_scale_beyond_the_width_is_refused() {
    for (width, max) in [
        (DecimalWidth::D64, 18u8),
        (DecimalWidth::D128, 38),
        (DecimalWidth::D256, 76),
    ] {
        rolls_back(
            |b| {
                b.table("t")?
                    .column_decimal("d", width, 1, max + 1)
                    .map(|_| ())
            },
            |e| matches!(e, EncodeError::DecimalScaleOutOfRange { scale, max: m, .. } if *scale == max + 1 && *m == max),
        );
    }
}

#[test]
fn geohash_precision_outside_1_to_60_and_too_wide_values_are_refused() {
    for bits in [0u8, 61, 255] {
        rolls_back(
            |b| b.table("t")?.column_geohash("g", 0, bits).map(|_| ()),
            |e| matches!(e, EncodeError::GeohashPrecision { bits: p, .. } if *p == bits),
        );
    }
    rolls_back(
        |b| {
            b.table("t")?
                .column_geohash("g", 0x0010_0000, 20)
                .map(|_| ())
        },
        |e| matches!(e, EncodeError::GeohashValueTooWide { bits: 20, .. }),
    );
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_geohash("g", (1 << 60) - 1, 60)
        .unwrap()
        .column_geohash("h", 1, 1)
        .unwrap()
        .at_server_time()
        .unwrap();
}

#[test]
fn char_outside_the_bmp_is_refused() {
    rolls_back(
        |b| b.table("t")?.column_char("c", '😀').map(|_| ()),
        |e| matches!(e, EncodeError::CharNotBmp { ch: '😀', .. }),
    );
}

#[test]
fn inconsistent_arrays_are_refused() {
    let many = [1usize; 33];
    let cases: Vec<(&[usize], usize, ArrayProblem)> = vec![
        (&[], 0, ArrayProblem::NoDimensions),
        (&many, 1, ArrayProblem::TooManyDimensions { dims: 33 }),
        (
            &[1, i32::MAX as usize + 1],
            0,
            ArrayProblem::DimensionTooLarge {
                dim: 1,
                len: i32::MAX as usize + 1,
            },
        ),
        (
            &[i32::MAX as usize, i32::MAX as usize, i32::MAX as usize],
            0,
            ArrayProblem::ElementCountOverflow,
        ),
        (
            &[2, 3],
            5,
            ArrayProblem::ElementCountMismatch {
                expected: 6,
                actual: 5,
            },
        ),
    ];
    for (dims, n, problem) in cases {
        let values = vec![0.5f64; n];
        rolls_back(
            |b| {
                b.table("t")?
                    .column_f64_array("a", dims, &values)
                    .map(|_| ())
            },
            |e| matches!(e, EncodeError::InvalidArray { column, problem: p } if column == "a" && *p == problem),
        );
        let longs = vec![1i64; n];
        rolls_back(
            |b| {
                b.table("t")?
                    .column_i64_array("a", dims, &longs)
                    .map(|_| ())
            },
            |e| matches!(e, EncodeError::InvalidArray { problem: p, .. } if *p == problem),
        );
    }
    // 32 dimensions are fine.
    let mut b = MessageBuilder::new();
    b.table("t")
        .unwrap()
        .column_i64_array("a", &[1; 32], &[9])
        .unwrap()
        .at_server_time()
        .unwrap();
}

#[test]
fn a_row_that_would_overflow_the_batch_is_refused_and_rolled_back() {
    let cfg = EncoderConfig {
        max_batch_bytes: 200,
        ..EncoderConfig::default()
    };
    let mut b = MessageBuilder::with_config(cfg).unwrap();
    let mut reference = MessageBuilder::with_config(cfg).unwrap();
    let row = |m: &mut MessageBuilder, i: i64| -> Result<(), EncodeError> {
        m.table("t")?
            .symbol("s", &format!("sym{i}"))?
            .column_i64("v", i)?
            .at_micros(i)
    };
    let mut accepted = 0;
    let err = loop {
        match row(&mut b, accepted) {
            Ok(()) => {
                row(&mut reference, accepted).unwrap();
                accepted += 1;
                assert!(b.encoded_len_bound() <= 200);
            }
            Err(e) => break e,
        }
    };
    assert!(accepted > 2, "{accepted}");
    match err {
        EncodeError::BatchFull {
            would_be,
            max,
            pending_rows,
        } => {
            assert!(would_be > 200);
            assert_eq!(max, 200);
            assert_eq!(pending_rows, accepted as usize);
        }
        e => panic!("unexpected {e:?}"),
    }
    assert_eq!(b.encoded_len_bound(), reference.encoded_len_bound());
    let msg = encode(&mut b);
    assert!(msg.len() <= 200);
    assert_eq!(msg, encode(&mut reference));
    // After the flush the row fits again, with ids from 0.
    row(&mut b, 99).unwrap();
}

#[test]
fn a_value_larger_than_the_batch_is_refused_before_copying() {
    let cfg = EncoderConfig {
        max_batch_bytes: 64,
        ..EncoderConfig::default()
    };
    let mut b = MessageBuilder::with_config(cfg).unwrap();
    let big = "x".repeat(65);
    let err = b.table("t").unwrap().symbol("s", &big).unwrap_err();
    assert!(matches!(
        err,
        EncodeError::BatchFull {
            max: 64,
            pending_rows: 0,
            ..
        }
    ));
    let err = b.table("t").unwrap().column_str("s", &big).unwrap_err();
    assert!(matches!(
        err,
        EncodeError::BatchFull {
            max: 64,
            pending_rows: 0,
            ..
        }
    ));
    let err = b
        .table("t")
        .unwrap()
        .column_f64_array("a", &[9], &[0.0; 9])
        .unwrap_err();
    assert!(matches!(err, EncodeError::BatchFull { .. }));
    // A row that alone exceeds the limit is refused with pending_rows 0.
    let err = b
        .table("t")
        .unwrap()
        .column_str("s", &"y".repeat(40))
        .unwrap()
        .column_str("r", &"z".repeat(20))
        .unwrap()
        .at_server_time()
        .unwrap_err();
    assert!(matches!(
        err,
        EncodeError::BatchFull {
            pending_rows: 0,
            ..
        }
    ));
    assert!(b.is_empty());
}

#[test]
fn errors_name_the_problem() {
    let e = EncodeError::InvalidColumnName {
        table: "t".into(),
        column: "a-b".into(),
        problem: NameProblem::ForbiddenChar { ch: '-', at: 1 },
    };
    assert_eq!(
        e.to_string(),
        "invalid column name \"a-b\" in table \"t\": character '-' at byte 1 is not allowed"
    );
    let e = EncodeError::ColumnTypeChanged {
        table: "t".into(),
        column: "d".into(),
        existing: ColumnShape {
            ty: ColumnType::Decimal64,
            param: 2,
        },
        requested: ColumnShape {
            ty: ColumnType::Decimal64,
            param: 3,
        },
    };
    assert_eq!(
        e.to_string(),
        "column \"d\" of table \"t\" is DECIMAL64(scale 2) in this message, not DECIMAL64(scale 3)"
    );
}

#[test]
fn the_empty_column_name_is_refused_even_where_a_hint_points_at_the_designated_column() {
    let mut b = MessageBuilder::new();
    b.table("t").unwrap().column_i8("x", 1).unwrap();
    b.at_server_time().unwrap();
    // A failed row leaves a column-position hint at index 1 behind.
    let err = b
        .table("t")
        .unwrap()
        .column_i8("x", 2)
        .unwrap()
        .column_f64("a", 1.0)
        .unwrap()
        .column_f64("a", 2.0)
        .unwrap_err();
    assert!(matches!(err, EncodeError::DuplicateColumn { .. }));
    // The designated timestamp now takes index 1.
    b.table("t").unwrap().column_i8("x", 3).unwrap();
    b.at_micros(5).unwrap();
    let err = b
        .table("t")
        .unwrap()
        .column_i8("x", 4)
        .unwrap()
        .column_ts_micros("", 7)
        .unwrap_err();
    assert!(matches!(
        err,
        EncodeError::InvalidColumnName {
            problem: NameProblem::Empty,
            ..
        }
    ));
    assert_eq!(b.pending_rows(), 2);
}

#[test]
fn at_now_is_a_designated_timestamp_at_the_callers_clock() {
    let mut a = MessageBuilder::new();
    let mut b = MessageBuilder::new();
    a.table("t")
        .unwrap()
        .column_i8("x", 1)
        .unwrap()
        .at_now(42)
        .unwrap();
    b.table("t")
        .unwrap()
        .column_i8("x", 1)
        .unwrap()
        .at_micros(42)
        .unwrap();
    assert_eq!(encode(&mut a), encode(&mut b));
}
