//! Byte-building helpers and hand-built valid messages shared by the
//! decoder's integration tests. Built from the wire layout directly, never
//! from the encoder, so the decoder is checked against the spec alone.
#![allow(dead_code)]

use qwp_proto::decoder::Value;
use qwp_proto::gorilla;
use qwp_proto::varint;

/// Hex string (spaces ignored) to bytes, for vectors copied from the brief.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Appends a varint.
pub fn v(out: &mut Vec<u8>, value: u64) {
    varint::write(out, value);
}

/// Appends a varint-length-prefixed string.
pub fn s(out: &mut Vec<u8>, text: &str) {
    v(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// A whole message: header with the computed payload length, then payload.
pub fn message(flags: u8, table_count: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = b"QWP1".to_vec();
    out.push(1);
    out.push(flags);
    out.extend_from_slice(&table_count.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A delta dictionary section.
pub fn delta(start: u64, entries: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    v(&mut out, start);
    v(&mut out, entries.len() as u64);
    for e in entries {
        s(&mut out, e);
    }
    out
}

/// One column: schema entry, data section, and the rows it should decode to.
#[derive(Debug, Clone)]
pub struct Col {
    pub name: String,
    pub code: u8,
    pub section: Vec<u8>,
    pub expect: Vec<Option<Value>>,
}

impl Col {
    pub fn new(name: &str, code: u8, section: Vec<u8>, expect: Vec<Option<Value>>) -> Self {
        Col {
            name: name.to_owned(),
            code,
            section,
            expect,
        }
    }
}

/// A table block from columns.
pub fn table(name: &str, rows: u64, cols: &[Col]) -> Vec<u8> {
    let mut out = Vec::new();
    s(&mut out, name);
    v(&mut out, rows);
    v(&mut out, cols.len() as u64);
    for c in cols {
        s(&mut out, &c.name);
        out.push(c.code);
    }
    for c in cols {
        out.extend_from_slice(&c.section);
    }
    out
}

/// A table block with one column of `code` and the raw `section`.
pub fn one_column_table(rows: u64, name: &str, code: u8, section: &[u8]) -> Vec<u8> {
    table("t", rows, &[Col::new(name, code, section.to_vec(), vec![])])
}

/// A message (flags `0c`, empty delta) holding one single-column table.
pub fn one_column_message(rows: u64, code: u8, section: &[u8]) -> Vec<u8> {
    let mut payload = delta(0, &[]);
    payload.extend(one_column_table(rows, "c", code, section));
    message(0x0c, 1, &payload)
}

fn le<const N: usize>(parts: &[[u8; N]]) -> Vec<u8> {
    parts.iter().flatten().copied().collect()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Every column type, three rows, both null strategies, with the values each
/// row must decode to. Column sections assume flags `0c` with the delta
/// dictionary `0="alpha", 1="beta"`.
pub fn all_type_columns() -> Vec<Col> {
    use Value::*;
    let mut gts = Vec::new();
    assert!(gorilla::encode_gorilla_forced(
        &[1000, 2000, 3005],
        &mut gts
    ));
    let d = |f: f64| f.to_le_bytes();
    vec![
        // Booleans [T, F, T] → 0b101.
        Col::new(
            "b",
            0x01,
            vec![0x00, 0x05],
            vec![
                Some(Boolean(true)),
                Some(Boolean(false)),
                Some(Boolean(true)),
            ],
        ),
        Col::new(
            "i8",
            0x02,
            vec![0x00, 0x01, 0xff, 0x7f],
            vec![Some(Byte(1)), Some(Byte(-1)), Some(Byte(127))],
        ),
        // Row 1 null by bitmap.
        Col::new(
            "i16",
            0x03,
            vec![0x01, 0x02, 0x01, 0x00, 0xff, 0xff],
            vec![Some(Short(1)), None, Some(Short(-1))],
        ),
        Col::new(
            "i32",
            0x04,
            cat(&[
                &[0x00],
                &le(&[
                    7i32.to_le_bytes(),
                    (-7i32).to_le_bytes(),
                    i32::MAX.to_le_bytes(),
                ]),
            ]),
            vec![Some(Int(7)), Some(Int(-7)), Some(Int(i32::MAX))],
        ),
        // All rows null: no values at all.
        Col::new("i64", 0x05, vec![0x01, 0x07], vec![None, None, None]),
        Col::new(
            "f32",
            0x06,
            cat(&[
                &[0x00],
                &le(&[
                    1.5f32.to_le_bytes(),
                    (-0.25f32).to_le_bytes(),
                    0f32.to_le_bytes(),
                ]),
            ]),
            vec![Some(Float(1.5)), Some(Float(-0.25)), Some(Float(0.0))],
        ),
        Col::new(
            "f64",
            0x07,
            cat(&[&[0x00], &le(&[d(1.1), d(-2.5), d(1e300)])]),
            vec![Some(Double(1.1)), Some(Double(-2.5)), Some(Double(1e300))],
        ),
        // Row 2 null; ids 1, 0.
        Col::new(
            "sym",
            0x09,
            vec![0x01, 0x04, 0x01, 0x00],
            vec![
                Some(Symbol {
                    id: 1,
                    value: "beta".into(),
                }),
                Some(Symbol {
                    id: 0,
                    value: "alpha".into(),
                }),
                None,
            ],
        ),
        // Gorilla form, DoD 5.
        Col::new(
            "ts",
            0x0a,
            cat(&[&[0x00], &gts]),
            vec![
                Some(Timestamp(1000)),
                Some(Timestamp(2000)),
                Some(Timestamp(3005)),
            ],
        ),
        // Raw form under FLAG_GORILLA.
        Col::new(
            "tn",
            0x10,
            cat(&[
                &[0x00, 0x00],
                &le(&[
                    1i64.to_le_bytes(),
                    2i64.to_le_bytes(),
                    (-3i64).to_le_bytes(),
                ]),
            ]),
            vec![
                Some(TimestampNanos(1)),
                Some(TimestampNanos(2)),
                Some(TimestampNanos(-3)),
            ],
        ),
        Col::new(
            "dt",
            0x0b,
            cat(&[
                &[0x01, 0x01],
                &le(&[86_400_000i64.to_le_bytes(), 0i64.to_le_bytes()]),
            ]),
            vec![None, Some(Date(86_400_000)), Some(Date(0))],
        ),
        // Brief §14.9 UUID, then two more.
        Col::new(
            "u",
            0x0c,
            cat(&[
                &[0x00],
                &hex("00 00 44 55 66 44 16 a7 d4 41 9b e2 00 84 0e 55"),
                &[0u8; 16],
                &u128::MAX.to_le_bytes(),
            ]),
            vec![
                Some(Uuid(0x550e8400_e29b_41d4_a716_446655440000)),
                Some(Uuid(0)),
                Some(Uuid(u128::MAX)),
            ],
        ),
        Col::new(
            "l256",
            0x0d,
            cat(&[
                &[0x01, 0x06],
                &le(&[
                    1u64.to_le_bytes(),
                    2u64.to_le_bytes(),
                    3u64.to_le_bytes(),
                    4u64.to_le_bytes(),
                ]),
            ]),
            vec![Some(Long256([1, 2, 3, 4])), None, None],
        ),
        // Brief §14.10: 20-bit 0xABCDE, the all-FF null, then 1.
        Col::new(
            "g",
            0x0e,
            cat(&[&[0x00, 20], &hex("de bc 0a ff ff ff 01 00 00")]),
            vec![
                Some(Geohash {
                    value: 0xABCDE,
                    precision_bits: 20,
                }),
                None,
                Some(Geohash {
                    value: 1,
                    precision_bits: 20,
                }),
            ],
        ),
        Col::new(
            "vc",
            0x0f,
            cat(&[
                &[0x01, 0x02],
                &le(&[0u32.to_le_bytes(), 3u32.to_le_bytes(), 5u32.to_le_bytes()]),
                "fooé".as_bytes(),
            ]),
            vec![Some(Varchar("foo".into())), None, Some(Varchar("é".into()))],
        ),
        Col::new(
            "ch",
            0x16,
            vec![0x00, 0x41, 0x00, 0x00, 0x00, 0xe9, 0x00],
            vec![Some(Char(0x41)), Some(Char(0)), Some(Char(0xe9))],
        ),
        Col::new(
            "ip",
            0x18,
            cat(&[
                &[0x00],
                &le(&[
                    0x0100_007fu32.to_le_bytes(),
                    0u32.to_le_bytes(),
                    u32::MAX.to_le_bytes(),
                ]),
            ]),
            vec![Some(Ipv4(0x0100_007f)), Some(Ipv4(0)), Some(Ipv4(u32::MAX))],
        ),
        // Brief §14.11: DECIMAL64 12345 (scale 2).
        Col::new(
            "d64",
            0x13,
            cat(&[
                &[0x00, 2],
                &hex("39 30 00 00 00 00 00 00"),
                &(-1i64).to_le_bytes(),
                &0i64.to_le_bytes(),
            ]),
            vec![
                Some(Decimal64 {
                    unscaled: 12345,
                    scale: 2,
                }),
                Some(Decimal64 {
                    unscaled: -1,
                    scale: 2,
                }),
                Some(Decimal64 {
                    unscaled: 0,
                    scale: 2,
                }),
            ],
        ),
        // Brief §14.11: DECIMAL128 -2, row 0 null.
        Col::new(
            "d128",
            0x14,
            cat(&[
                &[0x01, 0x01, 0],
                &hex("fe ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff"),
                &i128::MAX.to_le_bytes(),
            ]),
            vec![
                None,
                Some(Decimal128 {
                    unscaled: -2,
                    scale: 0,
                }),
                Some(Decimal128 {
                    unscaled: i128::MAX,
                    scale: 0,
                }),
            ],
        ),
        Col::new(
            "d256",
            0x15,
            cat(&[
                &[0x00, 5],
                &[0xff; 32],
                &le(&[
                    5u64.to_le_bytes(),
                    0u64.to_le_bytes(),
                    0u64.to_le_bytes(),
                    0u64.to_le_bytes(),
                ]),
                &le(&[
                    0u64.to_le_bytes(),
                    0u64.to_le_bytes(),
                    0u64.to_le_bytes(),
                    (1u64 << 63).to_le_bytes(),
                ]),
            ]),
            vec![
                Some(Decimal256 {
                    unscaled: [u64::MAX; 4],
                    scale: 5,
                }),
                Some(Decimal256 {
                    unscaled: [5, 0, 0, 0],
                    scale: 5,
                }),
                Some(Decimal256 {
                    unscaled: [0, 0, 0, 1 << 63],
                    scale: 5,
                }),
            ],
        ),
        // Row 1 null; [1.0, 2.0] then [[3.0]].
        Col::new(
            "da",
            0x11,
            cat(&[
                &[0x01, 0x02],
                &[1],
                &2i32.to_le_bytes(),
                &d(1.0),
                &d(2.0),
                &[2],
                &1i32.to_le_bytes(),
                &1i32.to_le_bytes(),
                &d(3.0),
            ]),
            vec![
                Some(DoubleArray {
                    dims: vec![2],
                    values: vec![1.0, 2.0],
                }),
                None,
                Some(DoubleArray {
                    dims: vec![1, 1],
                    values: vec![3.0],
                }),
            ],
        ),
        // [] (one empty dim), [7], 1×2×1 [8, 9].
        Col::new(
            "la",
            0x12,
            cat(&[
                &[0x00],
                &[1],
                &0i32.to_le_bytes(),
                &[1],
                &1i32.to_le_bytes(),
                &7i64.to_le_bytes(),
                &[3],
                &1i32.to_le_bytes(),
                &2i32.to_le_bytes(),
                &1i32.to_le_bytes(),
                &8i64.to_le_bytes(),
                &9i64.to_le_bytes(),
            ]),
            vec![
                Some(LongArray {
                    dims: vec![0],
                    values: vec![],
                }),
                Some(LongArray {
                    dims: vec![1],
                    values: vec![7],
                }),
                Some(LongArray {
                    dims: vec![1, 2, 1],
                    values: vec![8, 9],
                }),
            ],
        ),
        Col::new(
            "bin",
            0x17,
            cat(&[
                &[0x00],
                &le(&[
                    0u32.to_le_bytes(),
                    1u32.to_le_bytes(),
                    1u32.to_le_bytes(),
                    3u32.to_le_bytes(),
                ]),
                &[0x01, 0x02, 0xff],
            ]),
            vec![
                Some(Binary(vec![1])),
                Some(Binary(vec![])),
                Some(Binary(vec![2, 0xff])),
            ],
        ),
        // The designated timestamp, bitmap strategy, row 1 null.
        Col::new(
            "",
            0x0a,
            cat(&[
                &[0x01, 0x02, 0x00],
                &le(&[10i64.to_le_bytes(), 30i64.to_le_bytes()]),
            ]),
            vec![Some(Timestamp(10)), None, Some(Timestamp(30))],
        ),
    ]
}

/// A message with every type (see [`all_type_columns`]), a zero-row table
/// and a zero-column table; flags `0c`, delta `0="alpha", 1="beta"`.
pub fn all_types_message() -> Vec<u8> {
    let mut payload = delta(0, &["alpha", "beta"]);
    payload.extend(table("all", 3, &all_type_columns()));
    payload.extend(table(
        "empty",
        0,
        &[Col::new("x", 0x05, vec![0x00], vec![])],
    ));
    payload.extend(table("nocols", 5, &[]));
    message(0x0c, 3, &payload)
}

/// Wire-brief §12 Example 1 (88 bytes).
pub fn example1() -> Vec<u8> {
    hex("51 57 50 31 01 00 01 00 4c 00 00 00 07 73 65 6e 73 6f 72 73 02 03 02 69 64 05 05 76 61 6c 75 65 07 02 74 73 0a 00 01 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00 00 cd cc cc cc cc cc f4 3f 9a 99 99 99 99 99 01 40 00 00 e4 0b 54 02 00 00 00 80 1a 06 00 00 00 00 00")
}

/// Wire-brief §12 Example 4 (92 bytes).
pub fn example4() -> Vec<u8> {
    hex("51 57 50 31 01 0c 01 00 50 00 00 00 00 02 07 73 65 72 76 65 72 31 07 73 65 72 76 65 72 32 07 73 65 6e 73 6f 72 73 02 03 04 68 6f 73 74 09 04 74 65 6d 70 07 00 0a 00 00 01 00 66 66 66 66 66 e6 56 40 9a 99 99 99 99 19 57 40 00 01 00 40 1e 18 24 0a 06 00 40 82 2d 18 24 0a 06 00")
}

/// Wire-brief §12 Example 3's SYMBOL section (per-column dictionary) in a
/// message without the delta flag, beside a raw (non-Gorilla) timestamp.
pub fn example3_message() -> Vec<u8> {
    let mut ts = vec![0x00];
    for t in [1i64, 2, 3] {
        ts.extend_from_slice(&t.to_le_bytes());
    }
    let cols = [
        Col::new(
            "region",
            0x09,
            hex("00 02 02 75 73 02 65 75 00 01 00"),
            vec![],
        ),
        Col::new("", 0x0a, ts, vec![]),
    ];
    message(0x00, 1, &table("t", 3, &cols))
}

/// Valid messages of different shapes, for mutation tests.
pub fn corpus() -> Vec<Vec<u8>> {
    vec![
        example1(),
        example4(),
        all_types_message(),
        example3_message(),
    ]
}
