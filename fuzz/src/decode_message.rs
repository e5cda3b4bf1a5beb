//! Target `decode_message`: arbitrary bytes as a QWP1 message, stand-alone and
//! on a connection (twice, so the connection's symbol dictionary carries over).
//!
//! Property (decode → re-encode): a decoded message whose values the encoder
//! accepts is rebuilt row by row with [`MessageBuilder`]; the rebuilt message
//! must decode to the same tables, rows and values. Symbol ids may differ
//! (the rebuilt message numbers its own dictionary) and a null in a column
//! whose null strategy is a sentinel comes back as that sentinel, so those two
//! are compared by string and skipped respectively. A message the encoder
//! refuses (a name it rejects, a row with no value, a CHAR outside the BMP,
//! the same table twice, no table or a table block with no rows, …) is only walked.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use qwp_proto::decoder::{self, ConnectionDecoder, Message, Table, Value};
use qwp_proto::encoder::{EncodeError, MessageBuilder};
use qwp_proto::types::{ColumnType, NullStrategy};

use crate::Outcome;

/// Runs the body on `data`.
pub fn run(data: &[u8]) -> Outcome {
    // The same bytes twice on one connection exercise dictionary carry-over.
    let mut conn = ConnectionDecoder::new();
    let _ = conn.decode(data);
    let _ = conn.decode(data);

    let msg = match decoder::decode(data) {
        Ok(msg) => msg,
        Err(e) => {
            let _ = e.to_string();
            return "error";
        }
    };
    for table in &msg.tables {
        for row in table.rows() {
            std::hint::black_box(row);
        }
    }
    let Some(rebuilt) = reencode(&msg) else {
        return "decoded/not_reencodable";
    };
    let again = decoder::decode(&rebuilt)
        .unwrap_or_else(|e| panic!("message: re-encoded message does not decode: {e}"));
    compare(&msg, &again);
    "decoded/round_trip"
}

/// Rebuilds `msg` with the encoder, or `None` when the encoder refuses it.
fn reencode(msg: &Message) -> Option<Vec<u8>> {
    let mut names = HashSet::new();
    // The builder cannot express a message without tables or a table block
    // with no rows: it encodes nothing at all for no rows.
    if msg.tables.is_empty()
        || !msg
            .tables
            .iter()
            .all(|t| t.row_count() > 0 && names.insert(t.name()))
    {
        return None;
    }
    let mut b = MessageBuilder::new();
    for table in &msg.tables {
        let designated = table.designated_timestamp();
        for row in 0..table.row_count() {
            b.table(table.name()).ok()?;
            for (c, col) in table.columns().iter().enumerate() {
                if Some(c) == designated {
                    continue;
                }
                if let Some(v) = col.value(row) {
                    set(&mut b, col.name(), &v).ok()?;
                }
            }
            let ts = designated.and_then(|c| table.columns().get(c)?.value(row));
            match ts {
                Some(Value::Timestamp(t)) => b.at_micros(t).ok()?,
                Some(Value::TimestampNanos(t)) => b.at_nanos(t).ok()?,
                _ => b.at_server_time().ok()?,
            }
        }
    }
    let mut out = Vec::new();
    b.encode_into(&mut out).ok()?;
    Some(out)
}

/// Sets column `name` of the row in progress to `v`.
fn set(b: &mut MessageBuilder, name: &str, v: &Value) -> Result<(), EncodeError> {
    match v {
        Value::Boolean(x) => b.column_bool(name, *x),
        Value::Byte(x) => b.column_i8(name, *x),
        Value::Short(x) => b.column_i16(name, *x),
        Value::Int(x) => b.column_i32(name, *x),
        Value::Long(x) => b.column_i64(name, *x),
        Value::Float(x) => b.column_f32(name, *x),
        Value::Double(x) => b.column_f64(name, *x),
        Value::Symbol { value, .. } => b.symbol(name, value),
        Value::Timestamp(x) => b.column_ts_micros(name, *x),
        Value::TimestampNanos(x) => b.column_ts_nanos(name, *x),
        Value::Date(x) => b.column_date_millis(name, *x),
        Value::Uuid(x) => b.column_uuid(name, *x),
        Value::Long256(x) => b.column_long256(name, *x),
        Value::Geohash {
            value,
            precision_bits,
        } => b.column_geohash(name, *value, *precision_bits),
        Value::Varchar(s) => b.column_str(name, s),
        Value::Binary(x) => b.column_binary(name, x),
        Value::Char(u) => match char::from_u32(u32::from(*u)) {
            Some(ch) => b.column_char(name, ch),
            // A lone surrogate: valid on the wire, not a Rust `char`.
            None => {
                b.rollback_row();
                return Err(EncodeError::NoRowInProgress);
            }
        },
        Value::Ipv4(x) => b.column_ipv4(name, Ipv4Addr::from(*x)),
        Value::Decimal64 { unscaled, scale } => b.column_decimal64(name, *unscaled, *scale),
        Value::Decimal128 { unscaled, scale } => b.column_decimal128(name, *unscaled, *scale),
        Value::Decimal256 { unscaled, scale } => b.column_decimal256(name, *unscaled, *scale),
        Value::DoubleArray { dims, values } => {
            let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
            b.column_f64_array(name, &dims, values)
        }
        Value::LongArray { dims, values } => {
            let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
            b.column_i64_array(name, &dims, values)
        }
    }
    .map(|_| ())
}

/// Asserts that `again` (the re-encoded message, decoded) holds what `orig`
/// holds.
fn compare(orig: &Message, again: &Message) {
    assert_eq!(
        again.tables.len(),
        orig.tables.len(),
        "message: table count changed in the round trip"
    );
    for (a, b) in orig.tables.iter().zip(&again.tables) {
        assert_eq!(a.name(), b.name(), "message: table order changed");
        assert_eq!(
            a.row_count(),
            b.row_count(),
            "message: row count of {:?}",
            a.name()
        );
        compare_table(a, b);
    }
}

fn compare_table(a: &Table, b: &Table) {
    for col in a.columns() {
        let ty = col.column_type();
        let sentinel = ty.null_strategy() == NullStrategy::Sentinel;
        let Some(other) = b.column(col.name()) else {
            // Never set in any row: the rebuilt table has no such column.
            assert!(
                col.iter().all(|v| v.is_none()),
                "message: column {:?}.{:?} with values vanished",
                a.name(),
                col.name()
            );
            continue;
        };
        assert_eq!(
            schema_type(ty),
            schema_type(other.column_type()),
            "message: type of {:?}.{:?}",
            a.name(),
            col.name()
        );
        for (row, (x, y)) in col.iter().zip(other.iter()).enumerate() {
            let same = match (&x, &y) {
                (None, _) if sentinel => true,
                (None, None) => true,
                (Some(x), Some(y)) => same_value(x, y),
                _ => false,
            };
            assert!(
                same,
                "message: {:?}.{:?} row {row}: {x:?} came back as {y:?}",
                a.name(),
                col.name()
            );
        }
    }
}

fn schema_type(ty: ColumnType) -> u8 {
    ty.code()
}

/// Value equality with floats compared by bits and symbols by string.
fn same_value(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
        (Value::Double(a), Value::Double(b)) => a.to_bits() == b.to_bits(),
        (Value::Symbol { value: a, .. }, Value::Symbol { value: b, .. }) => a == b,
        (
            Value::DoubleArray {
                dims: da,
                values: va,
            },
            Value::DoubleArray {
                dims: db,
                values: vb,
            },
        ) => {
            da == db
                && va.len() == vb.len()
                && va.iter().zip(vb).all(|(a, b)| a.to_bits() == b.to_bits())
        }
        _ => x == y,
    }
}
