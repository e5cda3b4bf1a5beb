//! The JSONL row format: one JSON object per accepted row, column name →
//! value. This is a contract shared with the `decode` CLI command.
//!
//! | column type | JSON form |
//! |---|---|
//! | designated timestamp (empty name) | key `"timestamp"`, integer in the column's unit (µs, or ns for TIMESTAMP_NANOS) |
//! | TIMESTAMP, TIMESTAMP_NANOS, DATE | integer (µs, ns, ms since the epoch) |
//! | BOOLEAN | `true` / `false` |
//! | BYTE, SHORT, INT, LONG | integer |
//! | FLOAT, DOUBLE | number (FLOAT printed at f32 precision: `0.1`, not `0.10000000149011612`) |
//! | SYMBOL, VARCHAR | string |
//! | CHAR | one-character string (an unpaired surrogate becomes U+FFFD) |
//! | UUID | canonical lowercase string `550e8400-e29b-41d4-a716-446655440000` |
//! | LONG256 | `"0x"` + 64 lowercase hex digits, most significant first |
//! | GEOHASH | QuestDB's literal: `"#"` + base32 chars when the precision is a multiple of 5 bits, else `"##"` + the bits, most significant first |
//! | DECIMAL64/128/256 | string with the scale applied: unscaled −12345, scale 2 → `"-123.45"`; scale 0 → `"-12345"` |
//! | DOUBLE_ARRAY, LONG_ARRAY | nested JSON arrays following the dimensions |
//! | BINARY | standard base64 with padding |
//! | IPv4 | dotted quad `"192.168.0.1"` |
//! | null | `null` |
//!
//! Decisions where the contract is silent:
//! - **QuestDB null sentinels are `null`.** A value sent with the sentinel
//!   strategy (null flag `00`) that QuestDB stores as NULL is written as
//!   `null`: INT `i32::MIN`; LONG, DATE, TIMESTAMP, TIMESTAMP_NANOS
//!   `i64::MIN`; FLOAT/DOUBLE NaN (and ±∞, which JSON cannot express); IPv4
//!   `0.0.0.0`; CHAR `0`; UUID with both halves `i64::MIN`; LONG256 with all
//!   limbs `i64::MIN`. BOOLEAN, BYTE and SHORT have no null in QuestDB, so
//!   `false` / `0` stay values. Array elements follow the same float rule.
//! - **A regular column named `timestamp`** in a table that also has a
//!   designated timestamp is shadowed by it: the designated value wins.
//! - **Degenerate arrays**: an array whose nested form would need more than
//!   2^20 JSON arrays while holding fewer elements (a zero-length inner
//!   dimension under a huge outer one, a few bytes on the wire) is written
//!   as `{"shape": [..], "values": [..]}` so that no input can make the
//!   writer allocate without bound.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use qwp_proto::decoder::Value;
use serde_json::{Map, Number, Value as Json};

use crate::row::Cell;

/// The JSON key of the designated timestamp.
pub const DESIGNATED_TIMESTAMP_KEY: &str = "timestamp";

/// Most JSON arrays a nested array value may expand to beyond its element
/// count before it is written in the flat `shape`/`values` form.
const MAX_ARRAY_CONTAINERS: u64 = 1 << 20;

/// One row as a JSON object, column name → value (see the module docs).
/// `serde_json`'s map orders keys by name; [`row_to_json_line`] keeps the
/// schema order.
pub fn row_to_json(cells: &[Cell]) -> Map<String, Json> {
    fields(cells)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// One row as its JSONL line (without the newline): the object of
/// [`row_to_json`] with its keys in schema order, compact, as the server
/// writes it to `<table>.jsonl`.
pub fn row_to_json_line(cells: &[Cell]) -> String {
    let mut out = Vec::new();
    write_row_json_line(cells, &mut out);
    // serde_json only writes UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the line of [`row_to_json_line`] (without the newline) to `out`,
/// without intermediate strings.
pub fn write_row_json_line(cells: &[Cell], out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (key, value)) in fields(cells).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing JSON values into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, key);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, &value);
    }
    out.push(b'}');
}

/// The row's keys and values in schema order, the designated timestamp
/// under [`DESIGNATED_TIMESTAMP_KEY`] shadowing a column of that name.
fn fields(cells: &[Cell]) -> Vec<(&str, Json)> {
    let has_designated = cells.iter().any(|c| c.name.is_empty());
    cells
        .iter()
        .filter(|c| !(has_designated && &*c.name == DESIGNATED_TIMESTAMP_KEY))
        .map(|c| {
            let key = if c.name.is_empty() {
                DESIGNATED_TIMESTAMP_KEY
            } else {
                &*c.name
            };
            (key, value_to_json(c.value.as_ref()))
        })
        .collect()
}

/// One cell's JSON form; `None` (null) and QuestDB null sentinels give
/// `null`. Every [`Value`] carries its type, so the schema is not needed.
pub fn value_to_json(value: Option<&Value>) -> Json {
    match value {
        None => Json::Null,
        Some(v) => non_null(v),
    }
}

fn non_null(v: &Value) -> Json {
    match v {
        Value::Boolean(b) => Json::Bool(*b),
        Value::Byte(n) => Json::from(*n),
        Value::Short(n) => Json::from(*n),
        Value::Int(n) => nullable(*n != i32::MIN, || Json::from(*n)),
        Value::Long(n) | Value::Timestamp(n) | Value::TimestampNanos(n) | Value::Date(n) => {
            nullable(*n != i64::MIN, || Json::from(*n))
        }
        Value::Float(f) => float(*f),
        Value::Double(d) => double(*d),
        Value::Symbol { value, .. } => Json::String(value.clone()),
        Value::Varchar(s) => Json::String(s.clone()),
        Value::Char(c) => nullable(*c != 0, || {
            let ch = char::from_u32(u32::from(*c)).unwrap_or(char::REPLACEMENT_CHARACTER);
            Json::String(ch.to_string())
        }),
        Value::Uuid(u) => nullable(!is_uuid_null(*u), || Json::String(uuid(*u))),
        Value::Long256(limbs) => nullable(limbs.iter().any(|l| *l != i64::MIN as u64), || {
            Json::String(long256(limbs))
        }),
        Value::Geohash {
            value,
            precision_bits,
        } => Json::String(geohash(*value, *precision_bits)),
        Value::Binary(b) => Json::String(STANDARD.encode(b)),
        Value::Ipv4(ip) => nullable(*ip != 0, || {
            Json::String(std::net::Ipv4Addr::from(*ip).to_string())
        }),
        Value::Decimal64 { unscaled, scale } => {
            Json::String(apply_scale(unscaled.to_string(), *scale))
        }
        Value::Decimal128 { unscaled, scale } => {
            Json::String(apply_scale(unscaled.to_string(), *scale))
        }
        Value::Decimal256 { unscaled, scale } => {
            Json::String(apply_scale(i256_to_string(unscaled), *scale))
        }
        Value::DoubleArray { dims, values } => array(dims, values, |d| double(*d)),
        Value::LongArray { dims, values } => array(dims, values, |n| Json::from(*n)),
    }
}

fn nullable(present: bool, f: impl FnOnce() -> Json) -> Json {
    if present {
        f()
    } else {
        Json::Null
    }
}

fn double(d: f64) -> Json {
    Number::from_f64(d).map_or(Json::Null, Json::Number)
}

/// f32 printed at its own precision: the shortest decimal that reads back
/// as the same f32, then carried as f64.
fn float(f: f32) -> Json {
    if !f.is_finite() {
        return Json::Null;
    }
    f.to_string().parse::<f64>().map_or(Json::Null, double)
}

fn is_uuid_null(u: u128) -> bool {
    let min = i64::MIN as u64;
    (u >> 64) as u64 == min && u as u64 == min
}

fn uuid(u: u128) -> String {
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (u >> 96) as u32,
        (u >> 80) as u16,
        (u >> 64) as u16,
        (u >> 48) as u16,
        u & 0xffff_ffff_ffff
    )
}

fn long256(limbs: &[u64; 4]) -> String {
    let mut s = String::with_capacity(66);
    s.push_str("0x");
    for limb in limbs.iter().rev() {
        s.push_str(&format!("{limb:016x}"));
    }
    s
}

/// QuestDB's geohash literal.
fn geohash(value: u64, precision_bits: u8) -> String {
    const BASE32: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let p = u32::from(precision_bits.min(64));
    if p > 0 && p % 5 == 0 {
        let mut s = String::with_capacity(1 + (p / 5) as usize);
        s.push('#');
        for i in (0..p / 5).rev() {
            let idx = (value >> (i * 5)) & 31;
            s.push(char::from(BASE32[idx as usize]));
        }
        s
    } else {
        let mut s = String::with_capacity(2 + p as usize);
        s.push_str("##");
        for i in (0..p).rev() {
            s.push(if (value >> i) & 1 == 1 { '1' } else { '0' });
        }
        s
    }
}

/// Inserts the decimal point `scale` digits from the right of a signed
/// integer's decimal digits, padding with zeros as needed.
fn apply_scale(digits: String, scale: u8) -> String {
    if scale == 0 {
        return digits;
    }
    let (sign, magnitude) = match digits.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", digits.as_str()),
    };
    let scale = usize::from(scale);
    let padded = if magnitude.len() <= scale {
        format!("{}{magnitude}", "0".repeat(scale + 1 - magnitude.len()))
    } else {
        magnitude.to_owned()
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// A 256-bit two's-complement integer (limbs least significant first) in
/// decimal.
fn i256_to_string(limbs: &[u64; 4]) -> String {
    let negative = limbs[3] >> 63 == 1;
    let mut mag = *limbs;
    if negative {
        // Two's-complement negation: invert and add one.
        let mut carry = true;
        for limb in &mut mag {
            let (v, c) = (!*limb).overflowing_add(u64::from(carry));
            *limb = v;
            carry = c;
        }
    }
    // Repeated division by 10^19 (the largest power of ten in a u64).
    const CHUNK: u64 = 10_000_000_000_000_000_000;
    let mut parts = Vec::new();
    while mag.iter().any(|l| *l != 0) {
        let mut rem: u128 = 0;
        for limb in mag.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*limb);
            *limb = (cur / u128::from(CHUNK)) as u64;
            rem = cur % u128::from(CHUNK);
        }
        parts.push(rem as u64);
    }
    let mut s = String::from(if negative { "-" } else { "" });
    match parts.split_last() {
        None => s.push('0'),
        Some((most, rest)) => {
            s.push_str(&most.to_string());
            for p in rest.iter().rev() {
                s.push_str(&format!("{p:019}"));
            }
        }
    }
    s
}

/// Nested arrays following `dims` (row-major `values`).
fn array<T>(dims: &[u32], values: &[T], f: impl Fn(&T) -> Json + Copy) -> Json {
    // JSON arrays the nested form needs: 1 + d0 + d0*d1 + ... (all but the
    // innermost level hold arrays).
    let mut containers: u64 = 0;
    let mut level: u64 = 1;
    for d in dims {
        containers = containers.saturating_add(level);
        level = level.saturating_mul(u64::from(*d));
    }
    if dims.is_empty() || containers > MAX_ARRAY_CONTAINERS.saturating_add(values.len() as u64) {
        let mut m = Map::new();
        m.insert("shape".into(), Json::from(dims.to_vec()));
        m.insert("values".into(), Json::Array(values.iter().map(f).collect()));
        return Json::Object(m);
    }
    nest(dims, values, f)
}

fn nest<T>(dims: &[u32], values: &[T], f: impl Fn(&T) -> Json + Copy) -> Json {
    match dims.split_first() {
        None => Json::Array(Vec::new()),
        Some((&outer, [])) => Json::Array(values.iter().take(outer as usize).map(f).collect()),
        Some((&outer, inner)) => {
            let chunk = inner
                .iter()
                .try_fold(1usize, |acc, d| acc.checked_mul(*d as usize))
                .unwrap_or(usize::MAX);
            Json::Array(
                (0..outer as usize)
                    .map(|i| {
                        let start = i.saturating_mul(chunk).min(values.len());
                        let end = start.saturating_add(chunk).min(values.len());
                        nest(inner, values.get(start..end).unwrap_or(&[]), f)
                    })
                    .collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use qwp_proto::types::ColumnType;
    use serde_json::json;

    fn cell(name: &str, column_type: ColumnType, value: Option<Value>) -> Cell {
        Cell {
            name: Arc::from(name),
            column_type,
            value,
        }
    }

    #[test]
    fn cli_contract_timestamp_symbol_varchar_null() {
        let row = [
            cell(
                "sym",
                ColumnType::Symbol,
                Some(Value::Symbol {
                    id: 3,
                    value: "eu".into(),
                }),
            ),
            cell(
                "note",
                ColumnType::Varchar,
                Some(Value::Varchar("hi \"x\"".into())),
            ),
            cell("qty", ColumnType::Long, None),
            cell(
                "",
                ColumnType::Timestamp,
                Some(Value::Timestamp(1_700_000_000_000_000)),
            ),
        ];
        assert_eq!(
            row_to_json_line(&row),
            r#"{"sym":"eu","note":"hi \"x\"","qty":null,"timestamp":1700000000000000}"#
        );
        let parsed: Json = serde_json::from_str(&row_to_json_line(&row)).unwrap();
        assert_eq!(parsed, Json::Object(row_to_json(&row)));
    }

    #[test]
    fn designated_timestamp_shadows_a_column_named_timestamp() {
        let row = [
            cell(
                "",
                ColumnType::TimestampNanos,
                Some(Value::TimestampNanos(7)),
            ),
            cell("timestamp", ColumnType::Long, Some(Value::Long(1))),
        ];
        assert_eq!(Json::Object(row_to_json(&row)), json!({"timestamp": 7}));
        assert_eq!(row_to_json_line(&row), r#"{"timestamp":7}"#);
    }

    #[test]
    fn scalar_forms() {
        let cases: Vec<(ColumnType, Value, Json)> = vec![
            (ColumnType::Boolean, Value::Boolean(false), json!(false)),
            (ColumnType::Byte, Value::Byte(0), json!(0)),
            (ColumnType::Short, Value::Short(-3), json!(-3)),
            (ColumnType::Int, Value::Int(42), json!(42)),
            (ColumnType::Long, Value::Long(i64::MAX), json!(i64::MAX)),
            (ColumnType::Float, Value::Float(0.1), json!(0.1)),
            (ColumnType::Double, Value::Double(-2.5), json!(-2.5)),
            (ColumnType::Date, Value::Date(86_400_000), json!(86_400_000)),
            (ColumnType::Char, Value::Char(u16::from(b'Q')), json!("Q")),
            (ColumnType::Char, Value::Char(0xd800), json!("\u{fffd}")),
            (
                ColumnType::Uuid,
                Value::Uuid(0x550e8400_e29b_41d4_a716_446655440000),
                json!("550e8400-e29b-41d4-a716-446655440000"),
            ),
            (
                ColumnType::Long256,
                Value::Long256([1, 0, 0, 0xab]),
                json!(format!(
                    "0x{:016x}{}{}{:016x}",
                    0xab,
                    "0".repeat(16),
                    "0".repeat(16),
                    1
                )),
            ),
            (
                ColumnType::Ipv4,
                Value::Ipv4(0xc0a8_0001),
                json!("192.168.0.1"),
            ),
            (
                ColumnType::Binary,
                Value::Binary(b"foobar".to_vec()),
                json!("Zm9vYmFy"),
            ),
        ];
        for (ty, v, want) in cases {
            assert_eq!(value_to_json(Some(&v)), want, "{ty} {v:?}");
        }
    }

    #[test]
    fn questdb_null_sentinels_are_null() {
        let nulls = [
            (ColumnType::Int, Value::Int(i32::MIN)),
            (ColumnType::Long, Value::Long(i64::MIN)),
            (ColumnType::Timestamp, Value::Timestamp(i64::MIN)),
            (ColumnType::TimestampNanos, Value::TimestampNanos(i64::MIN)),
            (ColumnType::Date, Value::Date(i64::MIN)),
            (ColumnType::Double, Value::Double(f64::NAN)),
            (ColumnType::Double, Value::Double(f64::INFINITY)),
            (ColumnType::Float, Value::Float(f32::NAN)),
            (ColumnType::Ipv4, Value::Ipv4(0)),
            (ColumnType::Char, Value::Char(0)),
            (
                ColumnType::Uuid,
                Value::Uuid(((i64::MIN as u64 as u128) << 64) | i64::MIN as u64 as u128),
            ),
            (ColumnType::Long256, Value::Long256([i64::MIN as u64; 4])),
        ];
        for (ty, v) in nulls {
            assert_eq!(value_to_json(Some(&v)), Json::Null, "{ty} {v:?}");
        }
        assert_eq!(value_to_json(None), Json::Null);
    }

    #[test]
    fn geohash_is_base32_for_whole_chars_and_bits_otherwise() {
        // "u33d" = 26, 3, 3, 12 in the geohash alphabet.
        let v = (26u64 << 15) | (3 << 10) | (3 << 5) | 12;
        assert_eq!(
            value_to_json(Some(&Value::Geohash {
                value: v,
                precision_bits: 20
            })),
            json!("#u33d")
        );
        assert_eq!(
            value_to_json(Some(&Value::Geohash {
                value: 0b0101,
                precision_bits: 4
            })),
            json!("##0101")
        );
    }

    #[test]
    fn decimals_apply_their_scale() {
        let d = |unscaled, scale| value_to_json(Some(&Value::Decimal64 { unscaled, scale }));
        assert_eq!(d(12345, 2), json!("123.45"));
        assert_eq!(d(-12345, 2), json!("-123.45"));
        assert_eq!(d(5, 3), json!("0.005"));
        assert_eq!(d(-5, 1), json!("-0.5"));
        assert_eq!(d(7, 0), json!("7"));
        assert_eq!(d(i64::MIN, 0), json!(i64::MIN.to_string()));
        let d128 = value_to_json(Some(&Value::Decimal128 {
            unscaled: -2,
            scale: 1,
        }));
        assert_eq!(d128, json!("-0.2"));
    }

    #[test]
    fn decimal256_prints_full_width_two_complement() {
        assert_eq!(i256_to_string(&[0; 4]), "0");
        assert_eq!(i256_to_string(&[u64::MAX; 4]), "-1");
        // 2^64 = 18446744073709551616 crosses one 10^19 chunk boundary.
        assert_eq!(i256_to_string(&[0, 1, 0, 0]), "18446744073709551616");
        // 2^255 - 1, the largest DECIMAL256 unscaled value.
        assert_eq!(
            i256_to_string(&[u64::MAX, u64::MAX, u64::MAX, u64::MAX >> 1]),
            "57896044618658097711785492504343953926634992332820282019728792003956564819967"
        );
        assert_eq!(
            i256_to_string(&[0, 0, 0, 1 << 63]),
            "-57896044618658097711785492504343953926634992332820282019728792003956564819968"
        );
        let v = Value::Decimal256 {
            unscaled: [10_000_000_000_000_000_000, 0, 0, 0],
            scale: 19,
        };
        assert_eq!(value_to_json(Some(&v)), json!("1.0000000000000000000"));
    }

    #[test]
    fn arrays_nest_by_dimension() {
        let v = Value::DoubleArray {
            dims: vec![2, 3],
            values: vec![1.0, 2.0, 3.0, 4.0, 5.0, f64::NAN],
        };
        assert_eq!(
            value_to_json(Some(&v)),
            json!([[1.0, 2.0, 3.0], [4.0, 5.0, null]])
        );
        let v = Value::LongArray {
            dims: vec![3],
            values: vec![1, 2, 3],
        };
        assert_eq!(value_to_json(Some(&v)), json!([1, 2, 3]));
        let v = Value::LongArray {
            dims: vec![2, 0],
            values: vec![],
        };
        assert_eq!(value_to_json(Some(&v)), json!([[], []]));
    }

    #[test]
    fn degenerate_array_shape_is_written_flat_not_expanded() {
        let v = Value::LongArray {
            dims: vec![u32::MAX, 0],
            values: vec![],
        };
        assert_eq!(
            value_to_json(Some(&v)),
            json!({"shape": [u32::MAX, 0], "values": []})
        );
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn limbs_of(v: i128) -> [u64; 4] {
            let ext = if v < 0 { u64::MAX } else { 0 };
            [v as u64, (v >> 64) as u64, ext, ext]
        }

        proptest! {
            #[test]
            fn decimal256_agrees_with_i128_formatting(v in any::<i128>()) {
                prop_assert_eq!(i256_to_string(&limbs_of(v)), v.to_string());
            }

            #[test]
            fn scaled_decimal_reads_back_as_the_unscaled_value(v in any::<i64>(), scale in 0u8..=30) {
                let text = apply_scale(v.to_string(), scale);
                // Removing the point gives the unscaled digits (zero-padded).
                let digits: String = text.chars().filter(|c| *c != '.').collect();
                prop_assert_eq!(digits.parse::<i128>().ok(), Some(i128::from(v)));
                let frac = text.split_once('.').map_or(0, |(_, f)| f.len());
                prop_assert_eq!(frac, usize::from(scale));
            }

            #[test]
            fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                let text = STANDARD.encode(&bytes);
                prop_assert_eq!(STANDARD.decode(&text).ok(), Some(bytes));
            }

            #[test]
            fn nested_array_holds_every_element_in_row_major_order(
                dims in proptest::collection::vec(0u32..4, 1..4),
            ) {
                let n: u32 = dims.iter().product();
                let values: Vec<i64> = (0..i64::from(n)).collect();
                let json = array(&dims, &values, |v| Json::from(*v));
                fn flatten(j: &Json, out: &mut Vec<i64>) {
                    match j {
                        Json::Array(a) => a.iter().for_each(|x| flatten(x, out)),
                        Json::Number(n) => out.push(n.as_i64().unwrap()),
                        other => panic!("{other}"),
                    }
                }
                let mut flat = Vec::new();
                flatten(&json, &mut flat);
                prop_assert_eq!(flat, values);
            }
        }
    }
}
