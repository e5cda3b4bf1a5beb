//! Rollback property: a builder fed random rows, some of them invalid (bad
//! names, type changes, duplicates, out-of-range values, rows over the
//! batch or row limits, abandoned rows), encodes exactly the bytes of a
//! builder fed only the rows the first one accepted; and a builder reused
//! across messages encodes what a fresh one does.

use proptest::prelude::*;
use qwp_proto::encoder::{EncodeError, EncoderConfig, MessageBuilder};

const TABLES: [&str; 4] = ["t1", "t2", "t3", "bad/t"];
const COLUMNS: [&str; 6] = ["a", "b", "c", "d", "bad-name", ""];

#[derive(Debug, Clone)]
enum Val {
    Sym(u8),
    I64(i64),
    F64(f64),
    Bool(bool),
    Str(u8),
    I16(i16),
    Geo(u64, u8),
    Dec(i128, u8),
    Ts(i64),
    Arr(Vec<usize>, usize),
}

#[derive(Debug, Clone)]
enum End {
    Micros(i64),
    Nanos(i64),
    Server,
    Abandon,
}

#[derive(Debug, Clone)]
struct Row {
    table: usize,
    cols: Vec<(usize, Val)>,
    end: End,
}

#[derive(Debug, Clone)]
enum Step {
    Row(Row),
    Encode,
}

fn val() -> impl Strategy<Value = Val> {
    prop_oneof![
        (0u8..6).prop_map(Val::Sym),
        any::<i64>().prop_map(Val::I64),
        any::<f64>().prop_map(Val::F64),
        any::<bool>().prop_map(Val::Bool),
        (0u8..4).prop_map(Val::Str),
        any::<i16>().prop_map(Val::I16),
        (
            0u64..1 << 21,
            prop_oneof![Just(5u8), Just(20), Just(0), Just(61)]
        )
            .prop_map(|(v, p)| Val::Geo(v, p)),
        (
            prop_oneof![Just(12345i128), Just(-2), Just(10i128.pow(18))],
            prop_oneof![Just(2u8), Just(3), Just(40)]
        )
            .prop_map(|(v, s)| Val::Dec(v, s)),
        (0i64..1_000_000).prop_map(Val::Ts),
        (prop::collection::vec(0usize..3, 0..3), 0usize..5).prop_map(|(d, n)| Val::Arr(d, n)),
    ]
}

fn row() -> impl Strategy<Value = Row> {
    (
        prop_oneof![4 => 0usize..3, 1 => Just(3usize)],
        prop::collection::vec((prop_oneof![8 => 0usize..4, 1 => 4usize..6], val()), 0..5),
        prop_oneof![
            3 => (0i64..1 << 40).prop_map(End::Micros),
            1 => (0i64..1 << 40).prop_map(End::Nanos),
            2 => Just(End::Server),
            1 => Just(End::Abandon),
        ],
    )
        .prop_map(|(table, cols, end)| Row { table, cols, end })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![12 => row().prop_map(Step::Row), 1 => Just(Step::Encode)]
}

fn set(b: &mut MessageBuilder, name: &str, v: &Val) -> Result<(), EncodeError> {
    match v {
        Val::Sym(s) => b.symbol(name, &format!("sym{s}")),
        Val::I64(x) => b.column_i64(name, *x),
        Val::F64(x) => b.column_f64(name, *x),
        Val::Bool(x) => b.column_bool(name, *x),
        Val::Str(s) => b.column_str(name, &"s".repeat(usize::from(*s) * 3)),
        Val::I16(x) => b.column_i16(name, *x),
        Val::Geo(x, p) => b.column_geohash(name, *x, *p),
        Val::Dec(x, s) => b.column_decimal128(name, *x, *s),
        Val::Ts(x) => b.column_ts_micros(name, *x),
        Val::Arr(d, n) => b.column_f64_array(name, d, &vec![1.5; *n]),
    }
    .map(|_| ())
}

fn apply(b: &mut MessageBuilder, r: &Row) -> Result<(), EncodeError> {
    b.table(TABLES[r.table])?;
    for (c, v) in &r.cols {
        set(b, COLUMNS[*c], v)?;
    }
    match r.end {
        End::Micros(t) => b.at_micros(t),
        End::Nanos(t) => b.at_nanos(t),
        End::Server => b.at_server_time(),
        End::Abandon => {
            b.rollback_row();
            Err(EncodeError::NoRowInProgress)
        }
    }
}

fn encode(b: &mut MessageBuilder) -> Vec<u8> {
    let mut out = Vec::new();
    b.encode_into(&mut out).unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn failed_rows_leave_no_trace(
        steps in prop::collection::vec(step(), 1..60),
        gorilla in any::<bool>(),
        always_send_dictionary in any::<bool>(),
        max_batch_bytes in prop_oneof![Just(16usize << 20), 100usize..600],
        max_rows_per_table in prop_oneof![Just(1_000_000usize), 1usize..6],
    ) {
        let cfg = EncoderConfig { max_batch_bytes, gorilla, max_rows_per_table, always_send_dictionary };
        let mut all = MessageBuilder::with_config(cfg).unwrap();
        let mut valid = MessageBuilder::with_config(cfg).unwrap();
        for s in &steps {
            match s {
                Step::Row(r) => {
                    if apply(&mut all, r).is_ok() {
                        prop_assert!(apply(&mut valid, r).is_ok(), "accepted row refused by the reference: {r:?}");
                    } else {
                        prop_assert!(!all.row_in_progress());
                    }
                    prop_assert_eq!(all.pending_rows(), valid.pending_rows());
                    prop_assert_eq!(all.encoded_len_bound(), valid.encoded_len_bound());
                    prop_assert!(all.encoded_len_bound() <= max_batch_bytes);
                }
                Step::Encode => {
                    let bound = all.encoded_len_bound();
                    let a = encode(&mut all);
                    prop_assert!(a.len() <= bound);
                    prop_assert_eq!(a, encode(&mut valid));
                    // Compare the next message with a builder that has no
                    // recycled tables, columns or symbols either.
                    valid = MessageBuilder::with_config(cfg).unwrap();
                }
            }
        }
        let bound = all.encoded_len_bound();
        let a = encode(&mut all);
        prop_assert!(a.len() <= bound && a.len() <= max_batch_bytes);
        prop_assert_eq!(a, encode(&mut valid));
    }
}
