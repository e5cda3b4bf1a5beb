//! Encoder → decoder round trip over every QWP1 type.
//!
//! Random multi-table messages (every one of the 23 column types, columns
//! missing from rows and first seen late, rows with and without a designated
//! timestamp, designated timestamps whose delta-of-deltas sit on the Gorilla
//! bucket edges) are encoded with the row builder and decoded with the real
//! decoder; every table, column and row must read back as written. Null rows
//! of the sentinel types (BOOLEAN, BYTE, SHORT, CHAR) read back as their
//! sentinel value; a null GEOHASH reads back as null (all-ones is QuestDB's
//! geohash null). Symbols must come with one dictionary from id 0 covering
//! exactly the ids the message uses.

use std::net::Ipv4Addr;

use proptest::prelude::*;
use qwp_proto::decoder::{self, Value};
use qwp_proto::encoder::MessageBuilder;
use qwp_proto::types::ColumnType;

/// One value as written, tagged by the column it belongs to.
#[derive(Debug, Clone)]
enum W {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Sym(String),
    Ts(i64),
    TsNanos(i64),
    Date(i64),
    Uuid(u128),
    L256([u64; 4]),
    Geo(u64),
    Str(String),
    Bin(Vec<u8>),
    Char(char),
    Ip(u32),
    D64(i64),
    D128(i128),
    D256(i64),
    F64Arr(Vec<usize>, Vec<f64>),
    I64Arr(Vec<usize>, Vec<i64>),
}

const GEO_BITS: u8 = 20;
const SCALE: u8 = 3;

/// The 23 columns: (name, type). Each column keeps one type for the run.
const COLUMNS: [(&str, ColumnType); 23] = [
    ("bool", ColumnType::Boolean),
    ("byte", ColumnType::Byte),
    ("short", ColumnType::Short),
    ("int", ColumnType::Int),
    ("long", ColumnType::Long),
    ("float", ColumnType::Float),
    ("double", ColumnType::Double),
    ("sym", ColumnType::Symbol),
    ("ts", ColumnType::Timestamp),
    ("ts_ns", ColumnType::TimestampNanos),
    ("date", ColumnType::Date),
    ("uuid", ColumnType::Uuid),
    ("l256", ColumnType::Long256),
    ("geo", ColumnType::Geohash),
    ("str", ColumnType::Varchar),
    ("bin", ColumnType::Binary),
    ("chr", ColumnType::Char),
    ("ip", ColumnType::Ipv4),
    ("d64", ColumnType::Decimal64),
    ("d128", ColumnType::Decimal128),
    ("d256", ColumnType::Decimal256),
    ("darr", ColumnType::DoubleArray),
    ("larr", ColumnType::LongArray),
];

fn dims_and_len() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 1..4)
}

fn value(col: usize) -> BoxedStrategy<W> {
    match col {
        0 => any::<bool>().prop_map(W::Bool).boxed(),
        1 => any::<i8>().prop_map(W::I8).boxed(),
        2 => any::<i16>().prop_map(W::I16).boxed(),
        3 => any::<i32>().prop_map(W::I32).boxed(),
        4 => any::<i64>().prop_map(W::I64).boxed(),
        5 => any::<f32>().prop_map(W::F32).boxed(),
        6 => any::<f64>().prop_map(W::F64).boxed(),
        7 => (0u8..6).prop_map(|i| W::Sym(format!("sym-{i}"))).boxed(),
        8 => any::<i64>().prop_map(W::Ts).boxed(),
        9 => any::<i64>().prop_map(W::TsNanos).boxed(),
        10 => any::<i64>().prop_map(W::Date).boxed(),
        11 => any::<u128>().prop_map(W::Uuid).boxed(),
        12 => any::<[u64; 4]>().prop_map(W::L256).boxed(),
        // All-ones is the null sentinel, so a real value stays below it.
        13 => (0u64..(1 << GEO_BITS) - 1).prop_map(W::Geo).boxed(),
        14 => "[a-z0-9é€]{0,8}".prop_map(W::Str).boxed(),
        15 => prop::collection::vec(any::<u8>(), 0..12)
            .prop_map(W::Bin)
            .boxed(),
        16 => prop::char::range('\u{1}', '\u{d7ff}')
            .prop_map(W::Char)
            .boxed(),
        17 => any::<u32>().prop_map(W::Ip).boxed(),
        18 => (-999_999_999_999_999_999i64..=999_999_999_999_999_999)
            .prop_map(W::D64)
            .boxed(),
        19 => (-(10i128.pow(38) - 1)..=10i128.pow(38) - 1)
            .prop_map(W::D128)
            .boxed(),
        20 => any::<i64>().prop_map(W::D256).boxed(),
        21 => dims_and_len()
            .prop_flat_map(|dims| {
                let n = dims.iter().product::<usize>();
                (Just(dims), prop::collection::vec(any::<f64>(), n))
            })
            .prop_map(|(d, v)| W::F64Arr(d, v))
            .boxed(),
        _ => dims_and_len()
            .prop_flat_map(|dims| {
                let n = dims.iter().product::<usize>();
                (Just(dims), prop::collection::vec(any::<i64>(), n))
            })
            .prop_map(|(d, v)| W::I64Arr(d, v))
            .boxed(),
    }
}

/// Delta-of-deltas on and around every Gorilla bucket edge, plus ones that
/// force the raw fallback.
fn dod() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        prop::sample::select(vec![
            -64i64,
            63,
            -65,
            64,
            -256,
            255,
            -257,
            256,
            -2048,
            2047,
            -2049,
            2048,
            i32::MIN as i64,
            i32::MAX as i64,
        ]),
        -100_000i64..100_000,
        Just(1i64 << 31),
    ]
}

#[derive(Debug, Clone)]
struct Row {
    table: usize,
    cols: Vec<(usize, W)>,
    /// Designated timestamp (µs) or server time.
    designated: bool,
}

fn row() -> impl Strategy<Value = Row> {
    let cols = prop::sample::subsequence((0..COLUMNS.len()).collect::<Vec<_>>(), 0..8)
        .prop_shuffle()
        .prop_flat_map(|idx| {
            idx.into_iter()
                .map(|c| value(c).prop_map(move |v| (c, v)))
                .collect::<Vec<_>>()
        });
    (0usize..3, cols, prop::bool::weighted(0.85)).prop_map(|(table, cols, designated)| Row {
        table,
        // A row needs at least one value: the encoder refuses an empty row.
        designated: designated || cols.is_empty(),
        cols,
    })
}

fn write_value(b: &mut MessageBuilder, name: &str, w: &W) {
    let r = match w {
        W::Bool(v) => b.column_bool(name, *v),
        W::I8(v) => b.column_i8(name, *v),
        W::I16(v) => b.column_i16(name, *v),
        W::I32(v) => b.column_i32(name, *v),
        W::I64(v) => b.column_i64(name, *v),
        W::F32(v) => b.column_f32(name, *v),
        W::F64(v) => b.column_f64(name, *v),
        W::Sym(v) => b.symbol(name, v),
        W::Ts(v) => b.column_ts_micros(name, *v),
        W::TsNanos(v) => b.column_ts_nanos(name, *v),
        W::Date(v) => b.column_date_millis(name, *v),
        W::Uuid(v) => b.column_uuid(name, *v),
        W::L256(v) => b.column_long256(name, *v),
        W::Geo(v) => b.column_geohash(name, *v, GEO_BITS),
        W::Str(v) => b.column_str(name, v),
        W::Bin(v) => b.column_binary(name, v),
        W::Char(v) => b.column_char(name, *v),
        W::Ip(v) => b.column_ipv4(name, Ipv4Addr::from(*v)),
        W::D64(v) => b.column_decimal64(name, *v, SCALE),
        W::D128(v) => b.column_decimal128(name, *v, SCALE),
        W::D256(v) => b.column_decimal256(name, i256_limbs(*v), SCALE),
        W::F64Arr(d, v) => b.column_f64_array(name, d, v),
        W::I64Arr(d, v) => b.column_i64_array(name, d, v),
    };
    r.unwrap_or_else(|e| panic!("valid value {w:?} for {name} refused: {e}"));
}

fn i256_limbs(v: i64) -> [u64; 4] {
    let ext = if v < 0 { u64::MAX } else { 0 };
    [v as u64, ext, ext, ext]
}

/// What the decoder must return for a written value.
fn expected(w: &W) -> Value {
    let dims = |d: &[usize]| d.iter().map(|&x| x as u32).collect::<Vec<_>>();
    match w {
        W::Bool(v) => Value::Boolean(*v),
        W::I8(v) => Value::Byte(*v),
        W::I16(v) => Value::Short(*v),
        W::I32(v) => Value::Int(*v),
        W::I64(v) => Value::Long(*v),
        W::F32(v) => Value::Float(*v),
        W::F64(v) => Value::Double(*v),
        W::Sym(v) => Value::Symbol {
            id: 0,
            value: v.clone(),
        },
        W::Ts(v) => Value::Timestamp(*v),
        W::TsNanos(v) => Value::TimestampNanos(*v),
        W::Date(v) => Value::Date(*v),
        W::Uuid(v) => Value::Uuid(*v),
        W::L256(v) => Value::Long256(*v),
        W::Geo(v) => Value::Geohash {
            value: *v,
            precision_bits: GEO_BITS,
        },
        W::Str(v) => Value::Varchar(v.clone()),
        W::Bin(v) => Value::Binary(v.clone()),
        W::Char(v) => Value::Char(u32::from(*v) as u16),
        W::Ip(v) => Value::Ipv4(*v),
        W::D64(v) => Value::Decimal64 {
            unscaled: *v,
            scale: SCALE,
        },
        W::D128(v) => Value::Decimal128 {
            unscaled: *v,
            scale: SCALE,
        },
        W::D256(v) => Value::Decimal256 {
            unscaled: i256_limbs(*v),
            scale: SCALE,
        },
        W::F64Arr(d, v) => Value::DoubleArray {
            dims: dims(d),
            values: v.clone(),
        },
        W::I64Arr(d, v) => Value::LongArray {
            dims: dims(d),
            values: v.clone(),
        },
    }
}

/// What a row that did not set a column reads back as.
fn missing(ty: ColumnType) -> Option<Value> {
    match ty {
        ColumnType::Boolean => Some(Value::Boolean(false)),
        ColumnType::Byte => Some(Value::Byte(0)),
        ColumnType::Short => Some(Value::Short(0)),
        ColumnType::Char => Some(Value::Char(0)),
        _ => None,
    }
}

/// A comparable rendering: float bits compare NaNs exactly and symbol ids
/// are checked separately.
fn norm(v: &Option<Value>) -> String {
    match v {
        Some(Value::Symbol { value, .. }) => format!("Symbol({value:?})"),
        Some(Value::Float(f)) => format!("Float({:#x})", f.to_bits()),
        Some(Value::Double(f)) => format!("Double({:#x})", f.to_bits()),
        Some(Value::DoubleArray { dims, values }) => {
            let bits: Vec<u64> = values.iter().map(|f| f.to_bits()).collect();
            format!("DoubleArray({dims:?}, {bits:?})")
        }
        other => format!("{other:?}"),
    }
}

struct ExpectTable {
    name: String,
    /// Column names in first-use order, with their type; "" is the
    /// designated timestamp.
    columns: Vec<(String, ColumnType)>,
    rows: Vec<Vec<(String, Option<Value>)>>,
}

fn expectations(rows: &[Row], designated: &[Vec<i64>]) -> Vec<ExpectTable> {
    let mut tables: Vec<ExpectTable> = Vec::new();
    let mut next_ts = [0usize; 3];
    for r in rows {
        let name = format!("t{}", r.table);
        let pos = match tables.iter().position(|t| t.name == name) {
            Some(p) => p,
            None => {
                tables.push(ExpectTable {
                    name,
                    columns: Vec::new(),
                    rows: Vec::new(),
                });
                tables.len() - 1
            }
        };
        let t = &mut tables[pos];
        let mut cells = Vec::new();
        for (c, w) in &r.cols {
            let (cname, ty) = COLUMNS[*c];
            if !t.columns.iter().any(|(n, _)| n == cname) {
                t.columns.push((cname.to_string(), ty));
            }
            cells.push((cname.to_string(), Some(expected(w))));
        }
        if r.designated {
            if !t.columns.iter().any(|(n, _)| n.is_empty()) {
                t.columns.push((String::new(), ColumnType::Timestamp));
            }
            let ts = designated[r.table][next_ts[r.table]];
            next_ts[r.table] += 1;
            cells.push((String::new(), Some(Value::Timestamp(ts))));
        }
        t.rows.push(cells);
    }
    tables
}

fn check(rows: &[Row], designated: &[Vec<i64>], msg: &[u8]) {
    let decoded = decoder::decode(msg).unwrap_or_else(|e| panic!("decoder refused: {e}"));
    let expect = expectations(rows, designated);
    assert_eq!(decoded.tables.len(), expect.len(), "table count");

    let mut symbol_ids = std::collections::BTreeSet::new();
    for (t, e) in decoded.tables.iter().zip(&expect) {
        assert_eq!(t.name(), e.name);
        assert_eq!(t.row_count(), e.rows.len(), "rows of {}", e.name);
        let schema: Vec<(String, ColumnType)> =
            t.schema().map(|(n, ty)| (n.to_string(), ty)).collect();
        let mut want_schema = e.columns.clone();
        let mut got_schema = schema.clone();
        want_schema.sort();
        got_schema.sort();
        assert_eq!(got_schema, want_schema, "schema of {}", e.name);
        for (i, cells) in e.rows.iter().enumerate() {
            for (cname, ty) in &e.columns {
                let want = cells
                    .iter()
                    .find(|(n, _)| n == cname)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| missing(*ty));
                let col = t.column(cname).expect("column present");
                let got = col.value(i);
                if let Some(Value::Symbol { id, .. }) = &got {
                    symbol_ids.insert(*id);
                }
                assert_eq!(norm(&got), norm(&want), "{}.{cname:?} row {i}", e.name);
            }
        }
    }
    // Self-sufficient (sf-client §12): one dictionary from id 0 that covers
    // exactly the ids used.
    match &decoded.symbol_delta {
        Some(d) => {
            assert_eq!(d.start, 0, "dictionary must start at id 0");
            let all: Vec<u32> = (0..d.entries.len() as u32).collect();
            assert_eq!(symbol_ids.into_iter().collect::<Vec<_>>(), all);
        }
        None => assert!(symbol_ids.is_empty(), "symbols without a dictionary"),
    }
}

fn designated_series() -> impl Strategy<Value = Vec<i64>> {
    (
        any::<i32>(),
        -1000i64..1000,
        prop::collection::vec(dod(), 0..40),
    )
        .prop_map(|(start, first_delta, dods)| {
            let mut out = vec![start as i64 * 1000];
            let mut delta = first_delta;
            for d in dods {
                out.push(out[out.len() - 1].wrapping_add(delta));
                delta = delta.wrapping_add(d);
            }
            out.push(out[out.len() - 1].wrapping_add(delta));
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_type_round_trips_through_the_decoder(
        rows in prop::collection::vec(row(), 1..40),
        series in prop::collection::vec(designated_series(), 3),
        messages in 1usize..3,
    ) {
        let mut b = MessageBuilder::new();
        // Designated timestamps per table, long enough for every row.
        let designated: Vec<Vec<i64>> = series
            .iter()
            .map(|s| s.iter().cycle().take(rows.len()).copied().collect())
            .collect();
        // The same rows split over several messages: each must stand alone.
        let chunk = rows.len().div_ceil(messages);
        let mut used = [0usize; 3];
        for part in rows.chunks(chunk) {
            let mut part_designated = vec![Vec::new(); 3];
            for r in part {
                b.table(&format!("t{}", r.table)).expect("table");
                for (c, w) in &r.cols {
                    write_value(&mut b, COLUMNS[*c].0, w);
                }
                if r.designated {
                    let ts = designated[r.table][used[r.table]];
                    used[r.table] += 1;
                    part_designated[r.table].push(ts);
                    b.at_micros(ts).expect("at");
                } else {
                    b.at_server_time().expect("at_server_time");
                }
            }
            let mut msg = Vec::new();
            b.encode_into(&mut msg).expect("encode");
            check(part, &part_designated, &msg);
        }
    }
}
