//! The QWP1 message header constants, limits and the column type table.
//!
//! Shared by the encoder and the decoder so the two can never disagree on a
//! type code, a fixed width or a null strategy.

/// The message magic, bytes `51 57 50 31` ("QWP1") read as a little-endian u32.
pub const MAGIC: u32 = 0x3150_5751;
/// The only protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Size of the message header: magic, version, flags, table count, payload length.
pub const HEADER_LEN: usize = 12;
/// Header flag: TIMESTAMP columns carry an encoding byte (raw or Gorilla).
pub const FLAG_GORILLA: u8 = 0x04;
/// Header flag: the payload starts with a delta symbol dictionary.
pub const FLAG_DELTA_SYMBOL_DICT: u8 = 0x08;
/// Header flag bits that are reserved and must be zero.
pub const FLAG_RESERVED_MASK: u8 = !(FLAG_GORILLA | FLAG_DELTA_SYMBOL_DICT);

/// Longest table or column name, in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 127;
/// Most columns in one table block.
pub const MAX_COLUMNS: usize = 2048;
/// Default cap on one encoded message (header included): 16 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;
/// Most dimensions of an array value.
pub const MAX_ARRAY_DIMS: usize = 32;
/// Smallest and largest GEOHASH precision, in bits.
pub const GEOHASH_PRECISION_BITS: core::ops::RangeInclusive<u8> = 1..=60;

/// How a column represents null rows on the wire, per the reference client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullStrategy {
    /// Every row has a value; a null row is written as the type's sentinel
    /// (flag byte `00`, no bitmap).
    Sentinel,
    /// A null bitmap follows the flag byte when the column has nulls; only
    /// non-null values are written.
    Bitmap,
}

/// A QWP1 column type, with its wire type code as the discriminant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ColumnType {
    /// One bit per value.
    Boolean = 0x01,
    /// Signed 8-bit integer.
    Byte = 0x02,
    /// Signed 16-bit integer.
    Short = 0x03,
    /// Signed 32-bit integer.
    Int = 0x04,
    /// Signed 64-bit integer.
    Long = 0x05,
    /// 32-bit IEEE float.
    Float = 0x06,
    /// 64-bit IEEE float.
    Double = 0x07,
    /// Interned string: one varint id into the connection's symbol dictionary.
    Symbol = 0x09,
    /// Microseconds since the Unix epoch.
    Timestamp = 0x0A,
    /// Milliseconds since the Unix epoch.
    Date = 0x0B,
    /// 128-bit UUID.
    Uuid = 0x0C,
    /// 256-bit unsigned integer.
    Long256 = 0x0D,
    /// Geohash with a per-column precision in bits.
    Geohash = 0x0E,
    /// UTF-8 string.
    Varchar = 0x0F,
    /// Nanoseconds since the Unix epoch.
    TimestampNanos = 0x10,
    /// N-dimensional array of f64.
    DoubleArray = 0x11,
    /// N-dimensional array of i64.
    LongArray = 0x12,
    /// Decimal with an 8-byte unscaled value (18 digits).
    Decimal64 = 0x13,
    /// Decimal with a 16-byte unscaled value (38 digits).
    Decimal128 = 0x14,
    /// Decimal with a 32-byte unscaled value (77 digits).
    Decimal256 = 0x15,
    /// One UTF-16 code unit.
    Char = 0x16,
    /// Opaque bytes.
    Binary = 0x17,
    /// IPv4 address as a little-endian u32.
    Ipv4 = 0x18,
}

impl ColumnType {
    /// Every type, in type-code order.
    pub const ALL: [ColumnType; 23] = [
        ColumnType::Boolean,
        ColumnType::Byte,
        ColumnType::Short,
        ColumnType::Int,
        ColumnType::Long,
        ColumnType::Float,
        ColumnType::Double,
        ColumnType::Symbol,
        ColumnType::Timestamp,
        ColumnType::Date,
        ColumnType::Uuid,
        ColumnType::Long256,
        ColumnType::Geohash,
        ColumnType::Varchar,
        ColumnType::TimestampNanos,
        ColumnType::DoubleArray,
        ColumnType::LongArray,
        ColumnType::Decimal64,
        ColumnType::Decimal128,
        ColumnType::Decimal256,
        ColumnType::Char,
        ColumnType::Binary,
        ColumnType::Ipv4,
    ];

    /// The type for a wire type code, or `None` for an unassigned code
    /// (including `0x08`, the removed STRING type).
    pub fn from_code(code: u8) -> Option<ColumnType> {
        Self::ALL.iter().copied().find(|t| *t as u8 == code)
    }

    /// The wire type code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The QuestDB type name, as users see it in SQL.
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Boolean => "BOOLEAN",
            ColumnType::Byte => "BYTE",
            ColumnType::Short => "SHORT",
            ColumnType::Int => "INT",
            ColumnType::Long => "LONG",
            ColumnType::Float => "FLOAT",
            ColumnType::Double => "DOUBLE",
            ColumnType::Symbol => "SYMBOL",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Date => "DATE",
            ColumnType::Uuid => "UUID",
            ColumnType::Long256 => "LONG256",
            ColumnType::Geohash => "GEOHASH",
            ColumnType::Varchar => "VARCHAR",
            ColumnType::TimestampNanos => "TIMESTAMP_NANOS",
            ColumnType::DoubleArray => "DOUBLE_ARRAY",
            ColumnType::LongArray => "LONG_ARRAY",
            ColumnType::Decimal64 => "DECIMAL64",
            ColumnType::Decimal128 => "DECIMAL128",
            ColumnType::Decimal256 => "DECIMAL256",
            ColumnType::Char => "CHAR",
            ColumnType::Binary => "BINARY",
            ColumnType::Ipv4 => "IPv4",
        }
    }

    /// Bytes per value for fixed-width types; `None` for BOOLEAN (bit-packed),
    /// GEOHASH (depends on precision) and the variable-width types.
    pub fn fixed_width(self) -> Option<usize> {
        match self {
            ColumnType::Byte => Some(1),
            ColumnType::Short | ColumnType::Char => Some(2),
            ColumnType::Int | ColumnType::Float | ColumnType::Ipv4 => Some(4),
            ColumnType::Long
            | ColumnType::Double
            | ColumnType::Timestamp
            | ColumnType::TimestampNanos
            | ColumnType::Date
            | ColumnType::Decimal64 => Some(8),
            ColumnType::Uuid | ColumnType::Decimal128 => Some(16),
            ColumnType::Long256 | ColumnType::Decimal256 => Some(32),
            ColumnType::Boolean
            | ColumnType::Geohash
            | ColumnType::Symbol
            | ColumnType::Varchar
            | ColumnType::Binary
            | ColumnType::DoubleArray
            | ColumnType::LongArray => None,
        }
    }

    /// The null strategy the reference client uses for this type; the
    /// encoder follows it, the decoder accepts either.
    pub fn null_strategy(self) -> NullStrategy {
        match self {
            ColumnType::Boolean
            | ColumnType::Byte
            | ColumnType::Short
            | ColumnType::Geohash
            | ColumnType::Char => NullStrategy::Sentinel,
            _ => NullStrategy::Bitmap,
        }
    }

    /// Whether this is one of the two timestamp types (which carry a Gorilla
    /// encoding byte when [`FLAG_GORILLA`] is set).
    pub fn is_timestamp(self) -> bool {
        matches!(self, ColumnType::Timestamp | ColumnType::TimestampNanos)
    }
}

impl core::fmt::Display for ColumnType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unassigned_codes_are_rejected() {
        for t in ColumnType::ALL {
            assert_eq!(ColumnType::from_code(t.code()), Some(t));
        }
        for code in [0x00, 0x08, 0x19, 0xff] {
            assert_eq!(ColumnType::from_code(code), None, "code {code:#x}");
        }
    }

    #[test]
    fn reference_null_strategies() {
        use NullStrategy::*;
        let sentinel: Vec<_> = ColumnType::ALL
            .iter()
            .filter(|t| t.null_strategy() == Sentinel)
            .map(|t| t.name())
            .collect();
        assert_eq!(sentinel, ["BOOLEAN", "BYTE", "SHORT", "GEOHASH", "CHAR"]);
        assert_eq!(ColumnType::Binary.null_strategy(), Bitmap);
        assert_eq!(ColumnType::Ipv4.null_strategy(), Bitmap);
    }

    #[test]
    fn header_flags() {
        assert_eq!(MAGIC.to_le_bytes(), *b"QWP1");
        assert_eq!(FLAG_GORILLA | FLAG_DELTA_SYMBOL_DICT, 0x0c);
        assert_eq!(FLAG_RESERVED_MASK, 0xf3);
    }
}
