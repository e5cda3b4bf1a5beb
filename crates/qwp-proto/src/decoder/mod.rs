//! The QWP1 message decoder: any valid message into tables, schemas and rows,
//! with a typed error for every malformed input.
//!
//! Two ways to decode:
//! - [`decode`] / [`decode_with_limits`]: one message on its own. SYMBOL ids
//!   resolve only against this message's delta dictionary; an id it does not
//!   declare is [`ErrorKind::UndeclaredSymbol`].
//! - [`ConnectionDecoder`]: what a server keeps per connection. Delta
//!   dictionaries accumulate across messages in a [`ConnectionDictionary`]
//!   (see there for the gap and re-declaration rules); a message that fails
//!   to decode leaves the dictionary untouched.
//!
//! Rules this decoder applies where the spec leaves a choice:
//! - **Exact length.** `payload_length` must equal the bytes after the header,
//!   and the table blocks must consume the payload exactly; short payloads
//!   and trailing bytes are both errors.
//! - **Nulls.** Either strategy is accepted for every type. With flag `00`
//!   every row has a value and sentinel values are returned *as values*
//!   (BOOLEAN false, BYTE/SHORT/CHAR 0, LONG `i64::MIN`, DOUBLE NaN), with
//!   one exception: a GEOHASH value of all-`FF` bytes at the column's width
//!   decodes as null, because all-ones is QuestDB's geohash null itself,
//!   whereas the other sentinels are ordinary values. In bitmap mode (any
//!   non-zero flag) every value is a value, GEOHASH included. Padding bits
//!   past the last row in a null bitmap or a BOOLEAN byte are ignored.
//! - **Symbols without the delta flag** use the per-column dictionary form
//!   (`dict_size`, entries, then 0-based indices) of wire-ingress §12.
//! - **Names.** Table and column names are at most 127 bytes of UTF-8; a
//!   table name must not be empty; column names must be unique within a
//!   table block; only a TIMESTAMP or TIMESTAMP_NANOS column may have the
//!   empty name (the designated timestamp, see [`Table::designated_timestamp`]).
//!   The spec is silent on TIMESTAMP_NANOS; accepting it matches QuestDB's
//!   nanosecond designated timestamps.
//! - **Values are not range-checked** beyond the structure: decimal scales,
//!   geohash bits above the precision and timestamps are passed through for
//!   the server to judge.
//! - **Limits** ([`DecodeLimits`]): 1,000,000 rows per table block and
//!   1,000,000 symbol dictionary entries (per connection in delta mode, per
//!   column otherwise) by default, per wire-ingress §14.
//!
//! Memory: every declared count is checked against the bytes left before
//! anything is allocated for it, and columns are stored as typed vectors of
//! their non-null values. No single allocation exceeds a small multiple of
//! the input length (Gorilla timestamps, 1 input bit per 8-byte value, are
//! the largest expansion at 64×).

mod column;
mod error;
mod nulls;
mod reader;
mod symbols;
mod value;

use std::collections::HashSet;

pub use error::{DecodeError, ErrorKind, Location};
pub use nulls::NullMask;
pub use symbols::{ConnectionDictionary, DictionaryUpdate, SymbolDelta};
pub use value::{ArrayValue, ColumnValues, SymbolValues, Value};

use column::{decode_column, ColumnContext};
use error::Fault;
use reader::Reader;
use symbols::SymbolScope;

use crate::types::{
    ColumnType, FLAG_DELTA_SYMBOL_DICT, FLAG_GORILLA, FLAG_RESERVED_MASK, HEADER_LEN, MAGIC,
    MAX_COLUMNS, MAX_NAME_LEN, VERSION,
};

/// Limits a decoder enforces beyond the wire structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Most rows in one table block (spec default 1,000,000).
    pub max_rows_per_table: usize,
    /// Most symbol dictionary entries: per connection in delta mode, per
    /// column in per-column mode (spec default 1,000,000; capped at
    /// `u32::MAX`).
    pub max_symbol_entries: usize,
}

impl Default for DecodeLimits {
    /// The wire-ingress §14 defaults.
    fn default() -> Self {
        DecodeLimits {
            max_rows_per_table: 1_000_000,
            max_symbol_entries: 1_000_000,
        }
    }
}

/// The header flags byte, known to have no reserved bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flags(u8);

impl Flags {
    /// Validates a flags byte: reserved bits 0-1 and 4-7 must be zero.
    pub fn new(bits: u8) -> Result<Flags, ErrorKind> {
        if bits & FLAG_RESERVED_MASK != 0 {
            Err(ErrorKind::ReservedFlags { flags: bits })
        } else {
            Ok(Flags(bits))
        }
    }

    /// The raw byte.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// FLAG_GORILLA: timestamp sections start with an encoding byte.
    pub fn gorilla(self) -> bool {
        self.0 & FLAG_GORILLA != 0
    }

    /// FLAG_DELTA_SYMBOL_DICT: the payload starts with a delta dictionary.
    pub fn delta_symbol_dict(self) -> bool {
        self.0 & FLAG_DELTA_SYMBOL_DICT != 0
    }
}

/// The 12-byte message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The version byte (always 1 once decoded).
    pub version: u8,
    /// The flags byte.
    pub flags: Flags,
    /// Number of table blocks.
    pub table_count: u16,
    /// Bytes after the header.
    pub payload_length: u32,
}

impl Header {
    /// The whole message's length: header plus payload.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_length as usize
    }
}

/// Reads and validates the 12-byte header only (magic, version 1, reserved
/// flags), for cheap inspection. The payload is not looked at, so its length
/// is not compared with the input here; [`decode`] does that.
pub fn decode_header(bytes: &[u8]) -> Result<Header, DecodeError> {
    let mut r = Reader::new(bytes, 0);
    read_header(&mut r).map_err(|f| f.at(Location::Message))
}

fn read_header(r: &mut Reader<'_>) -> Result<Header, Fault> {
    r.require("message header", HEADER_LEN as u64)?;
    let magic: [u8; 4] = r.array("magic")?;
    if u32::from_le_bytes(magic) != MAGIC {
        return Err(Fault::new(ErrorKind::BadMagic { found: magic }, 0));
    }
    let version = r.u8("version")?;
    if version != VERSION {
        return Err(Fault::new(
            ErrorKind::UnsupportedVersion { found: version },
            4,
        ));
    }
    let flags = Flags::new(r.u8("flags")?).map_err(|kind| Fault::new(kind, 5))?;
    let table_count = u16::from_le_bytes(r.array("table count")?);
    let payload_length = u32::from_le_bytes(r.array("payload length")?);
    Ok(Header {
        version,
        flags,
        table_count,
        payload_length,
    })
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The header.
    pub header: Header,
    /// The delta symbol dictionary, present when the header has
    /// FLAG_DELTA_SYMBOL_DICT.
    pub symbol_delta: Option<SymbolDelta>,
    /// The table blocks, in message order.
    pub tables: Vec<Table>,
}

/// One table block: name, row count and columns (schema plus data).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    name: String,
    row_count: usize,
    columns: Vec<Column>,
}

impl Table {
    /// The table name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Rows in this block.
    pub fn row_count(&self) -> usize {
        self.row_count
    }

    /// The columns in schema order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column with this name (the designated timestamp's name is `""`).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The schema: each column's name and type, in order.
    pub fn schema(&self) -> impl Iterator<Item = (&str, ColumnType)> + '_ {
        self.columns.iter().map(|c| (c.name(), c.column_type()))
    }

    /// Index of the designated timestamp: the column with the empty name
    /// (always a TIMESTAMP or TIMESTAMP_NANOS column).
    pub fn designated_timestamp(&self) -> Option<usize> {
        self.columns.iter().position(|c| c.name.is_empty())
    }

    /// Row `row` as one cell per column (`None` = null), or `None` past the
    /// last row.
    pub fn row(&self, row: usize) -> Option<Vec<Option<Value>>> {
        (row < self.row_count).then(|| self.columns.iter().map(|c| c.value(row)).collect())
    }

    /// Every row, in order, as one cell per column (`None` = null).
    pub fn rows(&self) -> impl Iterator<Item = Vec<Option<Value>>> + '_ {
        (0..self.row_count).map(|row| self.columns.iter().map(|c| c.value(row)).collect())
    }
}

/// One column: its schema entry and its data.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    name: String,
    column_type: ColumnType,
    row_count: usize,
    nulls: Option<NullMask>,
    values: ColumnValues,
}

impl Column {
    /// The column name (empty for the designated timestamp).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The column type.
    pub fn column_type(&self) -> ColumnType {
        self.column_type
    }

    /// Rows in the column (the table's row count).
    pub fn row_count(&self) -> usize {
        self.row_count
    }

    /// Which rows are null; `None` when no row is (a bitmap without a set
    /// bit is normalised away, so both null strategies compare equal).
    pub fn nulls(&self) -> Option<&NullMask> {
        self.nulls.as_ref()
    }

    /// The non-null values, densely packed in row order.
    pub fn values(&self) -> &ColumnValues {
        &self.values
    }

    /// Whether `row` is null (`false` past the end).
    pub fn is_null(&self, row: usize) -> bool {
        self.nulls.as_ref().is_some_and(|m| m.is_null(row))
    }

    /// The value of `row`: `None` when the row is null or past the end.
    pub fn value(&self, row: usize) -> Option<Value> {
        if row >= self.row_count {
            return None;
        }
        let dense = match &self.nulls {
            Some(mask) => mask.dense_index(row)?,
            None => row,
        };
        self.values.get(dense)
    }

    /// Every row's value in order (`None` = null).
    pub fn iter(&self) -> impl Iterator<Item = Option<Value>> + '_ {
        (0..self.row_count).map(|row| self.value(row))
    }
}

/// Decodes one stand-alone message with the default [`DecodeLimits`]. SYMBOL
/// ids must be declared by this message's own delta dictionary.
pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    decode_with_limits(bytes, &DecodeLimits::default())
}

/// Decodes one stand-alone message under `limits`.
pub fn decode_with_limits(bytes: &[u8], limits: &DecodeLimits) -> Result<Message, DecodeError> {
    decode_message(bytes, limits, None)
}

/// A server's per-connection decoder: a [`ConnectionDictionary`] that
/// accumulates delta dictionaries across messages, plus the limits.
#[derive(Debug, Clone, Default)]
pub struct ConnectionDecoder {
    dictionary: ConnectionDictionary,
    limits: DecodeLimits,
}

impl ConnectionDecoder {
    /// A decoder for a new connection, with the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder for a new connection, with `limits`.
    pub fn with_limits(limits: DecodeLimits) -> Self {
        ConnectionDecoder {
            dictionary: ConnectionDictionary::new(limits.max_symbol_entries),
            limits,
        }
    }

    /// The connection's symbol dictionary so far.
    pub fn dictionary(&self) -> &ConnectionDictionary {
        &self.dictionary
    }

    /// Forgets the dictionary, as on disconnect.
    pub fn reset(&mut self) {
        self.dictionary.clear();
    }

    /// Decodes the connection's next message. SYMBOL ids resolve against this
    /// message's delta, then the dictionary accumulated so far. On success
    /// the delta is merged into the dictionary; on error the dictionary is
    /// unchanged.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<(Message, DictionaryUpdate), DecodeError> {
        let message = decode_message(bytes, &self.limits, Some(&self.dictionary))?;
        let update = match &message.symbol_delta {
            Some(delta) => self.dictionary.apply(delta),
            None => DictionaryUpdate::default(),
        };
        Ok((message, update))
    }
}

fn decode_message(
    bytes: &[u8],
    limits: &DecodeLimits,
    connection: Option<&ConnectionDictionary>,
) -> Result<Message, DecodeError> {
    let mut r = Reader::new(bytes, 0);
    let header = read_header(&mut r).map_err(|f| f.at(Location::Message))?;
    if header.payload_length as u64 != r.remaining() as u64 {
        return Err(Fault::new(
            ErrorKind::PayloadLengthMismatch {
                declared: header.payload_length,
                actual: r.remaining(),
            },
            8,
        )
        .at(Location::Message));
    }
    let max_symbols = limits.max_symbol_entries.min(u32::MAX as usize);
    let symbol_delta = if header.flags.delta_symbol_dict() {
        Some(
            read_delta(&mut r, max_symbols, connection)
                .map_err(|f| f.at(Location::SymbolDictionary))?,
        )
    } else {
        None
    };
    let ctx = ColumnContext {
        gorilla: header.flags.gorilla(),
        symbols: match &symbol_delta {
            Some(delta) => SymbolScope::Delta {
                delta,
                connection: connection.map(ConnectionDictionary::entries),
            },
            None => SymbolScope::PerColumn,
        },
        max_symbol_entries: max_symbols,
    };
    // Each table block takes at least 3 bytes (name length, rows, columns).
    let mut tables = Vec::with_capacity(usize::from(header.table_count).min(r.remaining() / 3));
    for index in 0..usize::from(header.table_count) {
        tables.push(read_table(&mut r, index, limits, &ctx)?);
    }
    if r.remaining() != 0 {
        return Err(r
            .fault(ErrorKind::TrailingBytes {
                count: r.remaining(),
            })
            .at(Location::Message));
    }
    Ok(Message {
        header,
        symbol_delta,
        tables,
    })
}

/// Reads the delta dictionary. In connection mode the delta must start at
/// or below the dictionary's size and keep it within the limit; stand-alone,
/// only the limit applies (a delta may start anywhere: earlier ids belong to
/// messages we have not seen).
fn read_delta(
    r: &mut Reader<'_>,
    max_entries: usize,
    connection: Option<&ConnectionDictionary>,
) -> Result<SymbolDelta, Fault> {
    let at = r.offset();
    let start = r.varint("delta start")?;
    let count = r.varint("delta count")?;
    if let Some(dict) = connection {
        if start > dict.len() as u64 {
            return Err(Fault::new(
                ErrorKind::SymbolDictionaryGap {
                    delta_start: start,
                    size: dict.len(),
                },
                at,
            ));
        }
    }
    let end = start.saturating_add(count);
    let reached = match connection {
        Some(dict) => end.max(dict.len() as u64),
        None => end,
    };
    if reached > max_entries as u64 {
        return Err(Fault::new(
            ErrorKind::SymbolDictionaryTooLarge {
                entries: reached,
                max: max_entries,
            },
            at,
        ));
    }
    // Every entry takes at least its one-byte length.
    r.require("delta entries", count)?;
    let mut entries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        entries.push(r.string("symbol entry", None)?.to_owned());
    }
    Ok(SymbolDelta {
        // `end <= max_entries <= u32::MAX`, so `start` fits.
        start: u32::try_from(start).unwrap_or(u32::MAX),
        entries,
    })
}

fn read_table(
    r: &mut Reader<'_>,
    index: usize,
    limits: &DecodeLimits,
    ctx: &ColumnContext<'_>,
) -> Result<Table, DecodeError> {
    let at_table = |name: Option<&str>| Location::Table {
        table: index,
        name: name.map(str::to_owned),
    };
    let name_at = r.offset();
    let name = r
        .string("table name", Some(MAX_NAME_LEN))
        .map_err(|f| f.at(at_table(None)))?;
    if name.is_empty() {
        return Err(Fault::new(ErrorKind::EmptyTableName, name_at).at(at_table(None)));
    }
    let (row_count, columns) = read_schema(r, limits).map_err(|f| f.at(at_table(Some(name))))?;
    let mut out = Vec::with_capacity(columns.len());
    for (column, (column_name, column_type)) in columns.into_iter().enumerate() {
        let (nulls, values) = decode_column(r, column_type, row_count, ctx).map_err(|f| {
            f.at(Location::Column {
                table: index,
                table_name: name.to_owned(),
                column,
                column_name: column_name.to_owned(),
                column_type,
            })
        })?;
        out.push(Column {
            name: column_name.to_owned(),
            column_type,
            row_count,
            nulls,
            values,
        });
    }
    Ok(Table {
        name: name.to_owned(),
        row_count,
        columns: out,
    })
}

/// A table block's column definitions, borrowed from the input.
type Schema<'a> = Vec<(&'a str, ColumnType)>;

/// Reads `row_count`, `column_count` and the column definitions.
fn read_schema<'a>(
    r: &mut Reader<'a>,
    limits: &DecodeLimits,
) -> Result<(usize, Schema<'a>), Fault> {
    let at = r.offset();
    let rows = r.varint("row count")?;
    let row_count = usize::try_from(rows)
        .ok()
        .filter(|n| *n <= limits.max_rows_per_table)
        .ok_or(Fault::new(
            ErrorKind::TooManyRows {
                count: rows,
                max: limits.max_rows_per_table,
            },
            at,
        ))?;
    let at = r.offset();
    let count = r.varint("column count")?;
    if count > MAX_COLUMNS as u64 {
        return Err(Fault::new(
            ErrorKind::TooManyColumns {
                count,
                max: MAX_COLUMNS,
            },
            at,
        ));
    }
    // Each definition takes at least a name length and a type code; each
    // column section at least its null flag.
    r.require("column definitions", count * 3)?;
    let mut columns = Vec::with_capacity(count as usize);
    let mut seen = HashSet::with_capacity(count as usize);
    for _ in 0..count {
        let name_at = r.offset();
        let name = r.string("column name", Some(MAX_NAME_LEN))?;
        let code_at = r.offset();
        let code = r.u8("type code")?;
        let ty = ColumnType::from_code(code)
            .ok_or(Fault::new(ErrorKind::UnknownTypeCode { code }, code_at))?;
        if name.is_empty() && !ty.is_timestamp() {
            return Err(Fault::new(
                ErrorKind::EmptyColumnName { column_type: ty },
                name_at,
            ));
        }
        if !seen.insert(name) {
            return Err(Fault::new(
                ErrorKind::DuplicateColumnName {
                    name: name.to_owned(),
                },
                name_at,
            ));
        }
        columns.push((name, ty));
    }
    Ok((row_count, columns))
}
