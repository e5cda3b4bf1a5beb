//! Typed decode errors: what went wrong, at which byte, and in which table
//! or column.

use core::fmt;

use thiserror::Error;

use crate::types::ColumnType;

/// A malformed or unacceptable QWP1 message.
///
/// `offset` is the byte offset from the start of the message (header
/// included) where the problem was found; `location` names the table and
/// column being decoded, when there was one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} at byte {offset}{location}")]
pub struct DecodeError {
    /// What was wrong.
    pub kind: ErrorKind,
    /// Byte offset from the start of the message.
    pub offset: usize,
    /// The part of the message being decoded.
    pub location: Location,
}

/// The part of a message a [`DecodeError`] was found in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Location {
    /// The 12-byte header, or the message as a whole.
    #[default]
    Message,
    /// The delta symbol dictionary at the start of the payload.
    SymbolDictionary,
    /// A table block's header or schema.
    Table {
        /// Index of the table block in the message.
        table: usize,
        /// The table's name, once it has been read.
        name: Option<String>,
    },
    /// A column data section.
    Column {
        /// Index of the table block in the message.
        table: usize,
        /// The table's name.
        table_name: String,
        /// Index of the column in the schema.
        column: usize,
        /// The column's name.
        column_name: String,
        /// The column's type.
        column_type: ColumnType,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Message => Ok(()),
            Location::SymbolDictionary => f.write_str(" in the delta symbol dictionary"),
            Location::Table { table, name: None } => write!(f, " in table block {table}"),
            Location::Table {
                table,
                name: Some(name),
            } => write!(f, " in table block {table} ({name:?})"),
            Location::Column {
                table,
                table_name,
                column,
                column_name,
                column_type,
            } => write!(
                f,
                " in table block {table} ({table_name:?}), column {column} \
                 ({column_name:?} {column_type})"
            ),
        }
    }
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ErrorKind {
    /// The input ended before a field was complete.
    #[error("truncated {what}: {needed} bytes needed, {available} available")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes the field needs (a lower bound where the field is variable).
        needed: u64,
        /// Bytes that were left.
        available: usize,
    },
    /// A varint does not fit in 64 bits.
    #[error("varint {what} overflows 64 bits")]
    VarintOverflow {
        /// The field being read.
        what: &'static str,
    },
    /// The first four bytes are not `QWP1`.
    #[error("bad magic {found:02x?}, expected \"QWP1\"")]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The version byte is not 1.
    #[error("unsupported version {found}, expected 1")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// A reserved flag bit (0-1 or 4-7) is set.
    #[error("reserved flag bits set in flags {flags:#04x}")]
    ReservedFlags {
        /// The whole flags byte.
        flags: u8,
    },
    /// The header's payload length differs from the bytes after the header.
    /// Exactly one message per input is required: neither a short payload
    /// nor trailing bytes are accepted.
    #[error("payload length {declared} does not match the {actual} bytes after the header")]
    PayloadLengthMismatch {
        /// The header's `payload_length`.
        declared: u32,
        /// Bytes actually present after the 12-byte header.
        actual: usize,
    },
    /// The table blocks ended before the payload did.
    #[error("{count} bytes left over after the last table block")]
    TrailingBytes {
        /// Bytes not consumed.
        count: usize,
    },
    /// A schema names a type code with no type (including `0x08`, the
    /// removed STRING type).
    #[error("unknown column type code {code:#04x}")]
    UnknownTypeCode {
        /// The type code found.
        code: u8,
    },
    /// A table or column name is longer than 127 bytes.
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    NameTooLong {
        /// Which kind of name.
        what: &'static str,
        /// The declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A table block has an empty name.
    #[error("empty table name")]
    EmptyTableName,
    /// A string is not valid UTF-8.
    #[error("invalid UTF-8 in {what}")]
    InvalidUtf8 {
        /// The field being read.
        what: &'static str,
    },
    /// A table block declares more than 2,048 columns.
    #[error("{count} columns exceed the limit of {max}")]
    TooManyColumns {
        /// The declared column count.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// Two columns of one table block share a name.
    #[error("duplicate column name {name:?}")]
    DuplicateColumnName {
        /// The repeated name.
        name: String,
    },
    /// A column has an empty name but is not a timestamp: only the designated
    /// timestamp (TIMESTAMP or TIMESTAMP_NANOS) may be unnamed.
    #[error(
        "empty column name on a {column_type} column; only the designated timestamp may be unnamed"
    )]
    EmptyColumnName {
        /// The column's type.
        column_type: ColumnType,
    },
    /// A table block declares more rows than the limit.
    #[error("{count} rows exceed the limit of {max}")]
    TooManyRows {
        /// The declared row count.
        count: u64,
        /// The limit.
        max: usize,
    },
    /// VARCHAR/BINARY offsets do not start at 0.
    #[error("first offset is {found}, expected 0")]
    FirstOffsetNotZero {
        /// The first offset found.
        found: u32,
    },
    /// VARCHAR/BINARY offsets decrease.
    #[error("offset {index} is {found}, below the previous offset {previous}")]
    OffsetsNotMonotonic {
        /// Index of the offending offset.
        index: usize,
        /// The previous offset.
        previous: u32,
        /// The offending offset.
        found: u32,
    },
    /// The last VARCHAR/BINARY offset points past the end of the input.
    #[error("data length {end} runs past the end of the input ({available} bytes left)")]
    OffsetPastEnd {
        /// The last offset (the declared data length).
        end: u32,
        /// Bytes left after the offsets.
        available: usize,
    },
    /// A GEOHASH precision outside 1..=60 bits.
    #[error("geohash precision {bits} bits outside 1..=60")]
    GeohashPrecision {
        /// The declared precision.
        bits: u64,
    },
    /// An array value with a dimension count outside 1..=32.
    #[error("array with {n_dims} dimensions, expected 1..=32")]
    ArrayDims {
        /// The declared dimension count.
        n_dims: u8,
    },
    /// An array value with a negative dimension length.
    #[error("array dimension {dim} has negative length {length}")]
    NegativeArrayDim {
        /// Index of the dimension.
        dim: usize,
        /// The declared length.
        length: i32,
    },
    /// The product of an array's dimension lengths (or its byte size)
    /// overflows.
    #[error("array element count overflows")]
    ArrayElementCountOverflow,
    /// A symbol id that neither this message nor (in connection mode) the
    /// connection's dictionary declares.
    #[error("symbol id {id} was never declared")]
    UndeclaredSymbol {
        /// The id found.
        id: u64,
    },
    /// A symbol dictionary would exceed its entry limit.
    #[error("symbol dictionary of {entries} entries exceeds the limit of {max}")]
    SymbolDictionaryTooLarge {
        /// The entry count the dictionary would reach.
        entries: u64,
        /// The limit.
        max: usize,
    },
    /// A delta starts past the end of the connection's dictionary, leaving
    /// ids that were never declared.
    #[error(
        "symbol delta starts at {delta_start} but the connection dictionary has {size} entries"
    )]
    SymbolDictionaryGap {
        /// The delta's first id.
        delta_start: u64,
        /// Entries the connection's dictionary holds.
        size: usize,
    },
    /// A timestamp section's encoding byte is neither `00` nor `01`.
    #[error("unknown timestamp encoding byte {found:#04x}")]
    TimestampEncoding {
        /// The encoding byte found.
        found: u8,
    },
}

/// An error found at a byte offset, before the table/column context is
/// attached by the caller that knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fault {
    pub(crate) kind: ErrorKind,
    pub(crate) offset: usize,
}

impl Fault {
    pub(crate) fn new(kind: ErrorKind, offset: usize) -> Self {
        Fault { kind, offset }
    }

    /// Attaches where in the message the fault was found.
    pub(crate) fn at(self, location: Location) -> DecodeError {
        DecodeError {
            kind: self.kind,
            offset: self.offset,
            location,
        }
    }
}
