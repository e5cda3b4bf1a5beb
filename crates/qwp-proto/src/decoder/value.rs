//! Decoded values: one [`Value`] per non-null cell, and the typed, dense
//! per-column storage ([`ColumnValues`]) they are read from.
//!
//! Columns are stored column-wise as typed vectors of their non-null values
//! only, so memory stays proportional to the input (a 1-bit boolean becomes
//! one byte, not a 48-byte enum) and a declared count can never make the
//! decoder allocate more than the input backs.

use std::collections::BTreeMap;

use crate::types::ColumnType;

/// One non-null cell value. Nulls are `None` around it
/// (see [`Column::value`](super::Column::value)).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// BOOLEAN.
    Boolean(bool),
    /// BYTE, signed 8-bit.
    Byte(i8),
    /// SHORT, signed 16-bit.
    Short(i16),
    /// INT, signed 32-bit.
    Int(i32),
    /// LONG, signed 64-bit.
    Long(i64),
    /// FLOAT, IEEE single.
    Float(f32),
    /// DOUBLE, IEEE double.
    Double(f64),
    /// SYMBOL: the resolved string and the id it was sent as (a global id in
    /// delta-dictionary mode, a column-local index in per-column mode).
    Symbol {
        /// The id on the wire.
        id: u32,
        /// The string the id resolved to.
        value: String,
    },
    /// TIMESTAMP, microseconds since the Unix epoch.
    Timestamp(i64),
    /// TIMESTAMP_NANOS, nanoseconds since the Unix epoch.
    TimestampNanos(i64),
    /// DATE, milliseconds since the Unix epoch.
    Date(i64),
    /// UUID as one 128-bit number: the wire's low 64 bits are the low half,
    /// so `Uuid(0x550e8400_e29b_41d4_a716_446655440000)` is
    /// `550e8400-e29b-41d4-a716-446655440000`.
    Uuid(u128),
    /// LONG256 as four 64-bit limbs, least significant first.
    Long256([u64; 4]),
    /// GEOHASH: the value's low `precision_bits` bits, as sent.
    Geohash {
        /// The geohash bits (zero-extended from the wire's byte width).
        value: u64,
        /// The column's precision, 1..=60.
        precision_bits: u8,
    },
    /// VARCHAR.
    Varchar(String),
    /// BINARY.
    Binary(Vec<u8>),
    /// CHAR, one UTF-16 code unit.
    Char(u16),
    /// IPv4 address as a u32 (the wire's little-endian u32).
    Ipv4(u32),
    /// DECIMAL64: unscaled two's-complement value and the column's scale.
    Decimal64 {
        /// The unscaled value.
        unscaled: i64,
        /// Decimal places.
        scale: u8,
    },
    /// DECIMAL128: unscaled two's-complement value and the column's scale.
    Decimal128 {
        /// The unscaled value.
        unscaled: i128,
        /// Decimal places.
        scale: u8,
    },
    /// DECIMAL256: unscaled two's-complement value as four 64-bit limbs,
    /// least significant first, and the column's scale.
    Decimal256 {
        /// The unscaled value's limbs, least significant first.
        unscaled: [u64; 4],
        /// Decimal places.
        scale: u8,
    },
    /// DOUBLE_ARRAY: dimension lengths and row-major elements.
    DoubleArray {
        /// Length of each dimension (1..=32 dimensions).
        dims: Vec<u32>,
        /// `product(dims)` elements, row-major.
        values: Vec<f64>,
    },
    /// LONG_ARRAY: dimension lengths and row-major elements.
    LongArray {
        /// Length of each dimension (1..=32 dimensions).
        dims: Vec<u32>,
        /// `product(dims)` elements, row-major.
        values: Vec<i64>,
    },
}

impl Value {
    /// The column type this value belongs to.
    pub fn column_type(&self) -> ColumnType {
        match self {
            Value::Boolean(_) => ColumnType::Boolean,
            Value::Byte(_) => ColumnType::Byte,
            Value::Short(_) => ColumnType::Short,
            Value::Int(_) => ColumnType::Int,
            Value::Long(_) => ColumnType::Long,
            Value::Float(_) => ColumnType::Float,
            Value::Double(_) => ColumnType::Double,
            Value::Symbol { .. } => ColumnType::Symbol,
            Value::Timestamp(_) => ColumnType::Timestamp,
            Value::TimestampNanos(_) => ColumnType::TimestampNanos,
            Value::Date(_) => ColumnType::Date,
            Value::Uuid(_) => ColumnType::Uuid,
            Value::Long256(_) => ColumnType::Long256,
            Value::Geohash { .. } => ColumnType::Geohash,
            Value::Varchar(_) => ColumnType::Varchar,
            Value::Binary(_) => ColumnType::Binary,
            Value::Char(_) => ColumnType::Char,
            Value::Ipv4(_) => ColumnType::Ipv4,
            Value::Decimal64 { .. } => ColumnType::Decimal64,
            Value::Decimal128 { .. } => ColumnType::Decimal128,
            Value::Decimal256 { .. } => ColumnType::Decimal256,
            Value::DoubleArray { .. } => ColumnType::DoubleArray,
            Value::LongArray { .. } => ColumnType::LongArray,
        }
    }
}

/// One array cell: dimension lengths and row-major elements.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayValue<T> {
    /// Length of each dimension.
    pub dims: Vec<u32>,
    /// `product(dims)` elements, row-major.
    pub values: Vec<T>,
}

/// A SYMBOL column's non-null values: the ids as sent, and the string of
/// every distinct id the column uses (resolved at decode time, so the column
/// stays valid whatever later messages do to the connection's dictionary).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SymbolValues {
    /// One id per non-null row.
    pub ids: Vec<u32>,
    /// The string of each id in `ids`.
    pub strings: BTreeMap<u32, String>,
}

/// The non-null values of one column, densely packed in row order, typed by
/// the column's type. Null rows have no entry here; the column's null mask
/// says which rows they are.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// BOOLEAN values.
    Boolean(Vec<bool>),
    /// BYTE values.
    Byte(Vec<i8>),
    /// SHORT values.
    Short(Vec<i16>),
    /// INT values.
    Int(Vec<i32>),
    /// LONG values.
    Long(Vec<i64>),
    /// FLOAT values.
    Float(Vec<f32>),
    /// DOUBLE values.
    Double(Vec<f64>),
    /// SYMBOL ids and their strings.
    Symbol(SymbolValues),
    /// TIMESTAMP values (µs).
    Timestamp(Vec<i64>),
    /// TIMESTAMP_NANOS values (ns).
    TimestampNanos(Vec<i64>),
    /// DATE values (ms).
    Date(Vec<i64>),
    /// UUID values.
    Uuid(Vec<u128>),
    /// LONG256 values, limbs least significant first.
    Long256(Vec<[u64; 4]>),
    /// GEOHASH values and the column's precision.
    Geohash {
        /// Precision in bits, 1..=60.
        precision_bits: u8,
        /// The values.
        values: Vec<u64>,
    },
    /// VARCHAR values.
    Varchar(Vec<String>),
    /// BINARY values.
    Binary(Vec<Vec<u8>>),
    /// CHAR values.
    Char(Vec<u16>),
    /// IPv4 values.
    Ipv4(Vec<u32>),
    /// DECIMAL64 unscaled values and the column's scale.
    Decimal64 {
        /// Decimal places.
        scale: u8,
        /// Unscaled values.
        values: Vec<i64>,
    },
    /// DECIMAL128 unscaled values and the column's scale.
    Decimal128 {
        /// Decimal places.
        scale: u8,
        /// Unscaled values.
        values: Vec<i128>,
    },
    /// DECIMAL256 unscaled values (limbs least significant first) and the
    /// column's scale.
    Decimal256 {
        /// Decimal places.
        scale: u8,
        /// Unscaled values.
        values: Vec<[u64; 4]>,
    },
    /// DOUBLE_ARRAY values.
    DoubleArray(Vec<ArrayValue<f64>>),
    /// LONG_ARRAY values.
    LongArray(Vec<ArrayValue<i64>>),
}

impl ColumnValues {
    /// The number of (non-null) values.
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Boolean(v) => v.len(),
            ColumnValues::Byte(v) => v.len(),
            ColumnValues::Short(v) => v.len(),
            ColumnValues::Int(v) => v.len(),
            ColumnValues::Long(v) => v.len(),
            ColumnValues::Float(v) => v.len(),
            ColumnValues::Double(v) => v.len(),
            ColumnValues::Symbol(s) => s.ids.len(),
            ColumnValues::Timestamp(v) => v.len(),
            ColumnValues::TimestampNanos(v) => v.len(),
            ColumnValues::Date(v) => v.len(),
            ColumnValues::Uuid(v) => v.len(),
            ColumnValues::Long256(v) => v.len(),
            ColumnValues::Geohash { values, .. } => values.len(),
            ColumnValues::Varchar(v) => v.len(),
            ColumnValues::Binary(v) => v.len(),
            ColumnValues::Char(v) => v.len(),
            ColumnValues::Ipv4(v) => v.len(),
            ColumnValues::Decimal64 { values, .. } => values.len(),
            ColumnValues::Decimal128 { values, .. } => values.len(),
            ColumnValues::Decimal256 { values, .. } => values.len(),
            ColumnValues::DoubleArray(v) => v.len(),
            ColumnValues::LongArray(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `index`-th non-null value, or `None` past the end.
    pub fn get(&self, index: usize) -> Option<Value> {
        Some(match self {
            ColumnValues::Boolean(v) => Value::Boolean(*v.get(index)?),
            ColumnValues::Byte(v) => Value::Byte(*v.get(index)?),
            ColumnValues::Short(v) => Value::Short(*v.get(index)?),
            ColumnValues::Int(v) => Value::Int(*v.get(index)?),
            ColumnValues::Long(v) => Value::Long(*v.get(index)?),
            ColumnValues::Float(v) => Value::Float(*v.get(index)?),
            ColumnValues::Double(v) => Value::Double(*v.get(index)?),
            ColumnValues::Symbol(s) => {
                let id = *s.ids.get(index)?;
                Value::Symbol {
                    id,
                    value: s.strings.get(&id)?.clone(),
                }
            }
            ColumnValues::Timestamp(v) => Value::Timestamp(*v.get(index)?),
            ColumnValues::TimestampNanos(v) => Value::TimestampNanos(*v.get(index)?),
            ColumnValues::Date(v) => Value::Date(*v.get(index)?),
            ColumnValues::Uuid(v) => Value::Uuid(*v.get(index)?),
            ColumnValues::Long256(v) => Value::Long256(*v.get(index)?),
            ColumnValues::Geohash {
                precision_bits,
                values,
            } => Value::Geohash {
                value: *values.get(index)?,
                precision_bits: *precision_bits,
            },
            ColumnValues::Varchar(v) => Value::Varchar(v.get(index)?.clone()),
            ColumnValues::Binary(v) => Value::Binary(v.get(index)?.clone()),
            ColumnValues::Char(v) => Value::Char(*v.get(index)?),
            ColumnValues::Ipv4(v) => Value::Ipv4(*v.get(index)?),
            ColumnValues::Decimal64 { scale, values } => Value::Decimal64 {
                unscaled: *values.get(index)?,
                scale: *scale,
            },
            ColumnValues::Decimal128 { scale, values } => Value::Decimal128 {
                unscaled: *values.get(index)?,
                scale: *scale,
            },
            ColumnValues::Decimal256 { scale, values } => Value::Decimal256 {
                unscaled: *values.get(index)?,
                scale: *scale,
            },
            ColumnValues::DoubleArray(v) => {
                let a = v.get(index)?;
                Value::DoubleArray {
                    dims: a.dims.clone(),
                    values: a.values.clone(),
                }
            }
            ColumnValues::LongArray(v) => {
                let a = v.get(index)?;
                Value::LongArray {
                    dims: a.dims.clone(),
                    values: a.values.clone(),
                }
            }
        })
    }
}
