//! Round trip through an independent, test-local reading of the wire
//! format: random valid rows (columns missing from rows, columns first seen
//! late, several tables, symbols shared across tables, rows with and
//! without a designated timestamp) must read back as exactly the values
//! written, with nulls (or the type's sentinel) at the right rows, columns
//! in first-use order, and one dictionary from id 0.

use std::collections::HashMap;

use proptest::prelude::*;
use qwp_proto::encoder::{EncoderConfig, MessageBuilder};
use qwp_proto::{gorilla, varint};

#[derive(Debug, Clone, PartialEq)]
enum V {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F64(u64),
    Sym(String),
    Str(String),
    Ts(i64),
    Geo(u64),
}

/// Column names and their fixed type code.
const COLS: [(&str, u8); 11] = [
    ("b", 0x01),
    ("i8", 0x02),
    ("i16", 0x03),
    ("i32", 0x04),
    ("i64", 0x05),
    ("f", 0x07),
    ("sym", 0x09),
    ("sym2", 0x09),
    ("s", 0x0f),
    ("ts", 0x0a),
    ("g", 0x0e),
];
const GEO_BITS: u8 = 20;

/// The value a sentinel column reads back for a null row.
fn sentinel(code: u8) -> Option<V> {
    match code {
        0x01 => Some(V::Bool(false)),
        0x02 => Some(V::I8(0)),
        0x03 => Some(V::I16(0)),
        // All ones at the value's byte width (3 bytes for 20 bits).
        0x0e => Some(V::Geo(0xff_ffff)),
        _ => None,
    }
}

fn value(col: usize) -> BoxedStrategy<V> {
    match col {
        0 => any::<bool>().prop_map(V::Bool).boxed(),
        1 => any::<i8>().prop_map(V::I8).boxed(),
        2 => any::<i16>().prop_map(V::I16).boxed(),
        3 => any::<i32>().prop_map(V::I32).boxed(),
        4 => any::<i64>().prop_map(V::I64).boxed(),
        5 => any::<f64>().prop_map(|f| V::F64(f.to_bits())).boxed(),
        6 | 7 => (0u8..5).prop_map(|i| V::Sym(format!("s{i}"))).boxed(),
        8 => "[a-zé]{0,6}".prop_map(V::Str).boxed(),
        9 => any::<i64>().prop_map(V::Ts).boxed(),
        _ => (0u64..(1 << GEO_BITS) - 1).prop_map(V::Geo).boxed(),
    }
}

#[derive(Debug, Clone)]
struct Row {
    table: usize,
    cols: Vec<(usize, V)>,
    at: Option<i64>,
}

fn row() -> impl Strategy<Value = Row> {
    let cols = prop::sample::subsequence((0..COLS.len()).collect::<Vec<_>>(), 1..6)
        .prop_shuffle()
        .prop_flat_map(|idx| {
            idx.into_iter()
                .map(|c| value(c).prop_map(move |v| (c, v)))
                .collect::<Vec<_>>()
        });
    (
        0usize..3,
        cols,
        prop_oneof![
            Just(None),
            (1_700_000_000_000_000i64..1_700_000_100_000_000).prop_map(Some)
        ],
    )
        .prop_map(|(table, cols, at)| Row { table, cols, at })
}

fn write(b: &mut MessageBuilder, r: &Row) {
    b.table(["alpha", "beta", "gamma"][r.table]).unwrap();
    for (c, v) in &r.cols {
        let name = COLS[*c].0;
        match v {
            V::Bool(x) => b.column_bool(name, *x),
            V::I8(x) => b.column_i8(name, *x),
            V::I16(x) => b.column_i16(name, *x),
            V::I32(x) => b.column_i32(name, *x),
            V::I64(x) => b.column_i64(name, *x),
            V::F64(x) => b.column_f64(name, f64::from_bits(*x)),
            V::Sym(x) => b.symbol(name, x),
            V::Str(x) => b.column_str(name, x),
            V::Ts(x) => b.column_ts_micros(name, *x),
            V::Geo(x) => b.column_geohash(name, *x, GEO_BITS),
        }
        .unwrap();
    }
    match r.at {
        Some(t) => b.at_micros(t).unwrap(),
        None => b.at_server_time().unwrap(),
    }
}

/// What one table should read back as.
#[derive(Debug, Default, PartialEq)]
struct Expect {
    columns: Vec<(String, u8)>,
    rows: Vec<HashMap<String, V>>,
}

fn expect(rows: &[Row]) -> Vec<(String, Expect)> {
    let mut tables: Vec<(String, Expect)> = Vec::new();
    for r in rows {
        let name = ["alpha", "beta", "gamma"][r.table].to_string();
        let i = match tables.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                tables.push((name, Expect::default()));
                tables.len() - 1
            }
        };
        let t = &mut tables[i].1;
        let mut vals = HashMap::new();
        for (c, v) in &r.cols {
            let (n, code) = COLS[*c];
            if !t.columns.iter().any(|(x, _)| x == n) {
                t.columns.push((n.to_string(), code));
            }
            vals.insert(n.to_string(), v.clone());
        }
        if let Some(at) = r.at {
            if !t.columns.iter().any(|(x, _)| x.is_empty()) {
                t.columns.push((String::new(), 0x0a));
            }
            vals.insert(String::new(), V::Ts(at));
        }
        t.rows.push(vals);
    }
    tables
}

/// A minimal reader of the subset of QWP1 this test writes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        s
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn varint(&mut self) -> usize {
        let (v, n) = varint::read(&self.buf[self.pos..]).unwrap();
        self.pos += n;
        v as usize
    }
    fn string(&mut self) -> String {
        let n = self.varint();
        String::from_utf8(self.take(n).to_vec()).unwrap()
    }
    fn le<const N: usize>(&mut self) -> [u8; N] {
        self.take(N).try_into().unwrap()
    }
}

fn read(msg: &[u8]) -> Vec<(String, Expect)> {
    let mut r = Reader { buf: msg, pos: 0 };
    assert_eq!(r.take(4), b"QWP1");
    assert_eq!(r.u8(), 1);
    let flags = r.u8();
    assert_eq!(flags & !0x0c, 0, "reserved flag bits");
    let gorilla_flag = flags & 0x04 != 0;
    let tables = u16::from_le_bytes(r.le()) as usize;
    let payload = u32::from_le_bytes(r.le()) as usize;
    assert_eq!(payload + 12, msg.len());
    let mut dict = Vec::new();
    if flags & 0x08 != 0 {
        assert_eq!(r.varint(), 0, "delta_start is 0 in every message");
        let n = r.varint();
        for _ in 0..n {
            dict.push(r.string());
        }
        let mut unique = dict.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), dict.len(), "dictionary entries are distinct");
    }
    let mut out = Vec::new();
    let mut used_ids = vec![false; dict.len()];
    for _ in 0..tables {
        let name = r.string();
        let rows = r.varint();
        let ncols = r.varint();
        let columns: Vec<(String, u8)> = (0..ncols).map(|_| (r.string(), r.u8())).collect();
        let mut table_rows: Vec<HashMap<String, V>> = vec![HashMap::new(); rows];
        for (cname, code) in &columns {
            let flag = r.u8();
            let nulls: Vec<bool> = if flag == 0 {
                vec![false; rows]
            } else {
                let bm = r.take(rows.div_ceil(8));
                (0..rows).map(|i| bm[i / 8] >> (i % 8) & 1 == 1).collect()
            };
            let n = nulls.iter().filter(|x| !**x).count();
            let vals: Vec<V> = match code {
                0x01 => {
                    let bits = r.take(n.div_ceil(8));
                    (0..n)
                        .map(|i| V::Bool(bits[i / 8] >> (i % 8) & 1 == 1))
                        .collect()
                }
                0x02 => (0..n).map(|_| V::I8(r.u8() as i8)).collect(),
                0x03 => (0..n).map(|_| V::I16(i16::from_le_bytes(r.le()))).collect(),
                0x04 => (0..n).map(|_| V::I32(i32::from_le_bytes(r.le()))).collect(),
                0x05 => (0..n).map(|_| V::I64(i64::from_le_bytes(r.le()))).collect(),
                0x07 => (0..n).map(|_| V::F64(u64::from_le_bytes(r.le()))).collect(),
                0x09 => (0..n)
                    .map(|_| {
                        let id = r.varint();
                        used_ids[id] = true;
                        V::Sym(dict[id].clone())
                    })
                    .collect(),
                0x0f => {
                    let offs: Vec<usize> = (0..=n)
                        .map(|_| u32::from_le_bytes(r.le()) as usize)
                        .collect();
                    assert_eq!(offs[0], 0);
                    let data = r.take(offs[n]);
                    (0..n)
                        .map(|i| {
                            V::Str(String::from_utf8(data[offs[i]..offs[i + 1]].to_vec()).unwrap())
                        })
                        .collect()
                }
                0x0a => {
                    let ts = if gorilla_flag {
                        let (v, used) = gorilla::decode(&r.buf[r.pos..], n).unwrap();
                        r.pos += used;
                        v
                    } else {
                        (0..n).map(|_| i64::from_le_bytes(r.le())).collect()
                    };
                    ts.into_iter().map(V::Ts).collect()
                }
                0x0e => {
                    assert_eq!(r.varint(), GEO_BITS as usize);
                    (0..n)
                        .map(|_| {
                            let b = r.take(3);
                            V::Geo(u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16)
                        })
                        .collect()
                }
                c => panic!("unexpected type {c:#x}"),
            };
            let mut it = vals.into_iter();
            for (row, null) in table_rows.iter_mut().zip(&nulls) {
                if !null {
                    let v = it.next().unwrap();
                    // Sentinel columns write nulls in place; they read back
                    // as the sentinel and are compared as such.
                    if sentinel(*code).as_ref() != Some(&v) {
                        row.insert(cname.clone(), v);
                    }
                }
            }
        }
        out.push((
            name,
            Expect {
                columns,
                rows: table_rows,
            },
        ));
    }
    assert_eq!(r.pos, msg.len(), "message fully consumed");
    assert!(used_ids.iter().all(|u| *u), "every declared id is used");
    out
}

/// The model with sentinel-valued entries dropped (they read back as null).
fn normalise(mut tables: Vec<(String, Expect)>) -> Vec<(String, Expect)> {
    for (_, t) in &mut tables {
        let codes: HashMap<String, u8> = t.columns.iter().cloned().collect();
        for row in &mut t.rows {
            row.retain(|k, v| sentinel(codes[k]).as_ref() != Some(v));
        }
    }
    tables
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rows_read_back_as_written(
        messages in prop::collection::vec(prop::collection::vec(row(), 1..25), 1..4),
        gorilla in any::<bool>(),
    ) {
        let cfg = EncoderConfig { gorilla, ..EncoderConfig::default() };
        let mut b = MessageBuilder::with_config(cfg).unwrap();
        for rows in &messages {
            for r in rows {
                write(&mut b, r);
            }
            let bound = b.encoded_len_bound();
            let mut msg = Vec::new();
            b.encode_into(&mut msg).unwrap();
            prop_assert!(msg.len() <= bound);
            prop_assert_eq!(read(&msg), normalise(expect(rows)));
        }
    }
}
