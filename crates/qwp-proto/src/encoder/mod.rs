//! The QWP1 message encoder: a row builder that produces self-sufficient
//! messages (full inline schema, symbol dictionary from id 0).
//!
//! Rows are added in the shape QuestDB clients use:
//!
//! ```
//! use qwp_proto::encoder::MessageBuilder;
//! let mut b = MessageBuilder::new();
//! b.table("sensors")?
//!     .symbol("host", "server1")?
//!     .column_f64("temp", 91.6)?
//!     .at_micros(1_700_000_000_000_000)?;
//! let mut frame = Vec::new();
//! b.encode_into(&mut frame)?;
//! assert_eq!(&frame[..4], b"QWP1");
//! # Ok::<(), qwp_proto::encoder::EncodeError>(())
//! ```
//!
//! Storage is columnar (per table, per column buffers holding wire bytes),
//! so the hot path appends in place and encoding is mostly copying.
//!
//! Choices where the spec is silent (see also the module docs of `names`
//! and `decimal`):
//! - A designated timestamp in nanoseconds is an empty-named
//!   TIMESTAMP_NANOS column, by analogy with the empty-named TIMESTAMP the
//!   spec defines; one table uses one unit per message.
//! - `FLAG_DELTA_SYMBOL_DICT` is set only when the message has symbols
//!   (the spec's Example 1 has flags `00`), unless
//!   [`EncoderConfig::always_send_dictionary`] asks for it on every message
//!   like the Java client; when set, the dictionary starts at id 0 and
//!   declares every id the message uses (sf-client §12).
//! - A change of GEOHASH precision or DECIMAL scale within a table in one
//!   message is a type change (the wire carries them once per column).
//! - The batch limit includes the 12-byte header.
//! - A row that ends with no designated timestamp leaves the designated
//!   column (if the table has one) null for that row.

mod column;
mod decimal;
mod error;
mod intern;
mod names;
mod values;

pub use decimal::{DECIMAL128_DIGITS, DECIMAL256_DIGITS, DECIMAL64_DIGITS};
pub use error::{ArrayProblem, ColumnShape, EncodeError, NameProblem};

use column::{Column, Table, TableSizes};
use intern::{hash_bytes, HashIndex, SymbolDict, SymbolMark};

use crate::types::{
    ColumnType, DEFAULT_MAX_BATCH_BYTES, FLAG_DELTA_SYMBOL_DICT, FLAG_GORILLA, HEADER_LEN, MAGIC,
    MAX_COLUMNS, VERSION,
};

/// Most rows of one table in one message (wire-ingress §14).
pub const DEFAULT_MAX_ROWS_PER_TABLE: usize = 1_000_000;
/// Most symbol dictionary entries (wire-ingress §14, per connection in
/// delta mode; a self-sufficient message re-declares all it uses).
pub const MAX_SYMBOLS: usize = 1_000_000;
/// Most tables in one message: the header's table count is a u16.
pub const MAX_TABLES: usize = u16::MAX as usize;
/// Longest VARCHAR or BINARY value the wire allows.
pub const MAX_VALUE_LEN: usize = i32::MAX as usize;

/// Encoder settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderConfig {
    /// Largest message, header included. Rows that would exceed it are
    /// refused with [`EncodeError::BatchFull`].
    pub max_batch_bytes: usize,
    /// Set `FLAG_GORILLA`: timestamp columns carry an encoding byte and may
    /// be delta-of-delta compressed. Off: raw i64s with no encoding byte.
    pub gorilla: bool,
    /// Most rows per table per message.
    pub max_rows_per_table: usize,
    /// Send the symbol dictionary (`FLAG_DELTA_SYMBOL_DICT`, `00 00` when
    /// empty) on every message, as the Java client does. Off (default): only
    /// messages with symbols carry it, so a message without symbols matches
    /// the spec's Example 1 (flags `00`).
    pub always_send_dictionary: bool,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            gorilla: true,
            max_rows_per_table: DEFAULT_MAX_ROWS_PER_TABLE,
            always_send_dictionary: false,
        }
    }
}

impl EncoderConfig {
    fn validate(&self) -> Result<(), EncodeError> {
        if self.max_batch_bytes <= HEADER_LEN {
            return Err(EncodeError::InvalidConfig(
                "max_batch_bytes must exceed the 12-byte header",
            ));
        }
        if self.max_batch_bytes - HEADER_LEN > u32::MAX as usize {
            return Err(EncodeError::InvalidConfig(
                "max_batch_bytes must keep the payload length within u32",
            ));
        }
        if self.max_rows_per_table == 0 {
            return Err(EncodeError::InvalidConfig(
                "max_rows_per_table must be positive",
            ));
        }
        Ok(())
    }
}

/// Width of a DECIMAL column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecimalWidth {
    /// DECIMAL64: 8 bytes, 18 digits.
    D64,
    /// DECIMAL128: 16 bytes, 38 digits.
    D128,
    /// DECIMAL256: 32 bytes, 76 digits.
    D256,
}

impl DecimalWidth {
    fn column_type(self) -> ColumnType {
        match self {
            DecimalWidth::D64 => ColumnType::Decimal64,
            DecimalWidth::D128 => ColumnType::Decimal128,
            DecimalWidth::D256 => ColumnType::Decimal256,
        }
    }

    /// Decimal digits the width holds; also its largest scale.
    pub fn digits(self) -> u8 {
        match self {
            DecimalWidth::D64 => DECIMAL64_DIGITS,
            DecimalWidth::D128 => DECIMAL128_DIGITS,
            DecimalWidth::D256 => DECIMAL256_DIGITS,
        }
    }
}

/// The shape of a column type without a per-column parameter.
fn plain(ty: ColumnType) -> ColumnShape {
    ColumnShape { ty, param: 0 }
}

/// What to undo if the row in progress fails.
#[derive(Debug, Default)]
struct RowUndo {
    /// The table of the row in progress, if any.
    table: Option<usize>,
    /// The table was created by this row.
    table_is_new: bool,
    /// Columns the table had before the row.
    columns: usize,
    /// Size counters of the table before the row.
    sizes: TableSizes,
    /// Dictionary before the row.
    symbols: SymbolMark,
    /// `(column, data length before its value)` for every value of the row
    /// in an existing column.
    values: Vec<(u32, usize)>,
    /// Values set in the row, including new columns.
    set: usize,
}

/// Builds one QWP1 message from rows; reusable across messages.
///
/// Every row method returns `Err` without changing the pending rows: the
/// row in progress is rolled back completely (its values, new columns, a
/// new table, new symbols).
#[derive(Debug)]
pub struct MessageBuilder {
    cfg: EncoderConfig,
    tables: Vec<Table>,
    table_index: HashIndex,
    /// The table of the previous row: rows usually repeat their table.
    last_table: usize,
    symbols: SymbolDict,
    row: RowUndo,
    /// Sum of the committed bounds of all tables.
    tables_bound: usize,
    pending_rows: usize,
    table_pool: Vec<Table>,
    column_pool: Vec<Column>,
    scratch: Vec<i64>,
}

impl Default for MessageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageBuilder {
    /// A builder with the default configuration (16 MiB, Gorilla on).
    pub fn new() -> MessageBuilder {
        MessageBuilder {
            cfg: EncoderConfig::default(),
            tables: Vec::new(),
            table_index: HashIndex::default(),
            last_table: 0,
            symbols: SymbolDict::default(),
            row: RowUndo::default(),
            tables_bound: 0,
            pending_rows: 0,
            table_pool: Vec::new(),
            column_pool: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// A builder with `cfg`, or an error if `cfg` cannot produce valid
    /// messages.
    pub fn with_config(cfg: EncoderConfig) -> Result<MessageBuilder, EncodeError> {
        cfg.validate()?;
        let mut b = MessageBuilder::new();
        b.cfg = cfg;
        Ok(b)
    }

    /// The configuration.
    pub fn config(&self) -> &EncoderConfig {
        &self.cfg
    }

    /// Completed rows waiting to be encoded, over all tables.
    pub fn pending_rows(&self) -> usize {
        self.pending_rows
    }

    /// Whether no completed row is pending.
    pub fn is_empty(&self) -> bool {
        self.pending_rows == 0
    }

    /// Whether a row has been started and not yet ended.
    pub fn row_in_progress(&self) -> bool {
        self.row.table.is_some()
    }

    /// An upper bound of the size [`MessageBuilder::encode_into`] would
    /// write now for the completed rows (0 when none are pending). Never
    /// above [`EncoderConfig::max_batch_bytes`].
    pub fn encoded_len_bound(&self) -> usize {
        if self.pending_rows == 0 {
            0
        } else {
            HEADER_LEN + self.dictionary_len() + self.tables_bound
        }
    }

    /// Whether the message carries the symbol dictionary.
    fn sends_dictionary(&self) -> bool {
        self.symbols.len() > 0 || self.cfg.always_send_dictionary
    }

    /// Size of the dictionary section, 0 when it is not sent.
    fn dictionary_len(&self) -> usize {
        if self.sends_dictionary() {
            self.symbols.section_len()
        } else {
            0
        }
    }

    /// Starts a row in table `name`.
    ///
    /// Errors: a row already in progress (which is rolled back), an invalid
    /// table name, too many tables.
    pub fn table(&mut self, name: &str) -> Result<&mut Self, EncodeError> {
        if let Some(t) = self.row.table {
            let table = self.tables[t].name.clone();
            self.rollback_row();
            return Err(EncodeError::RowInProgress { table });
        }
        let (t, is_new) = match self.find_table(name) {
            Some(t) => (t, false),
            None => (self.add_table(name)?, true),
        };
        self.last_table = t;
        let table = &mut self.tables[t];
        table.cursor = 0;
        self.row.table = Some(t);
        self.row.table_is_new = is_new;
        self.row.columns = table.columns.len();
        self.row.sizes = table.sizes;
        self.row.symbols = self.symbols.mark();
        self.row.values.clear();
        self.row.set = 0;
        Ok(self)
    }

    #[inline]
    fn find_table(&self, name: &str) -> Option<usize> {
        if let Some(t) = self.tables.get(self.last_table) {
            if t.name == name {
                return Some(self.last_table);
            }
        }
        let i = *self.table_index.get(&hash_bytes(name.as_bytes()))? as usize;
        if self.tables.get(i).is_some_and(|t| t.name == name) {
            return Some(i);
        }
        self.tables.iter().position(|t| t.name == name)
    }

    fn add_table(&mut self, name: &str) -> Result<usize, EncodeError> {
        names::check_table_name(name).map_err(|problem| EncodeError::InvalidTableName {
            name: name.to_owned(),
            problem,
        })?;
        if self.tables.len() >= MAX_TABLES {
            return Err(EncodeError::TooManyTables { max: MAX_TABLES });
        }
        let mut table = self.table_pool.pop().unwrap_or_else(Table::new);
        table.reset(name);
        let i = self.tables.len();
        self.table_index
            .entry(hash_bytes(name.as_bytes()))
            .or_insert(i as u32);
        self.tables.push(table);
        Ok(i)
    }

    /// Abandons the row in progress, if any, restoring the builder to its
    /// state before [`MessageBuilder::table`].
    pub fn rollback_row(&mut self) {
        let Some(t) = self.row.table.take() else {
            return;
        };
        let table = &mut self.tables[t];
        for &(c, data_len) in &self.row.values {
            if let Some(col) = table.columns.get_mut(c as usize) {
                col.undo_value(table.rows, data_len);
            }
        }
        table.truncate_columns(self.row.columns, &mut self.column_pool);
        table.sizes = self.row.sizes;
        table.cursor = 0;
        if self.row.table_is_new {
            if let Some(table) = self.tables.pop() {
                let h = hash_bytes(table.name.as_bytes());
                if self.table_index.get(&h) == Some(&(t as u32)) {
                    self.table_index.remove(&h);
                }
                self.table_pool.push(table);
            }
        }
        self.symbols.rollback(self.row.symbols);
        self.row.values.clear();
        self.row.set = 0;
    }

    /// Fails the row: rolls it back and returns `e`.
    #[cold]
    fn fail<T>(&mut self, e: EncodeError) -> Result<T, EncodeError> {
        self.rollback_row();
        Err(e)
    }

    /// Finds or creates column `name` with `shape` in the row's table, pads
    /// its missing rows, and records how to undo the value about to be
    /// appended. Returns `(table, column)`. `designated` allows the empty
    /// name.
    #[inline]
    fn slot(
        &mut self,
        name: &str,
        shape: ColumnShape,
        designated: bool,
    ) -> Result<(usize, usize), EncodeError> {
        // The empty name (reserved, refused by slow_slot) never takes the
        // fast path: a recycled hint could point at the designated column.
        if designated || !name.is_empty() {
            if let Some(found) = self.fast_slot(name, shape, designated) {
                return Ok(found);
            }
        }
        self.slow_slot(name, shape, designated)
    }

    /// The steady-state case of [`MessageBuilder::slot`]: the designated
    /// column, or the column the previous row used at this call position,
    /// with the same name and shape, no gap and not yet set in this row.
    #[inline(always)]
    fn fast_slot(
        &mut self,
        name: &str,
        shape: ColumnShape,
        designated: bool,
    ) -> Option<(usize, usize)> {
        let t = self.row.table?;
        let table = self.tables.get_mut(t)?;
        let c = if designated {
            table.designated?
        } else {
            *table.hint.get(table.cursor)? as usize
        };
        let col = table.columns.get(c)?;
        if col.rows != table.rows || col.shape != shape || (!designated && col.name != name) {
            return None;
        }
        if !designated {
            table.cursor += 1;
        }
        if c < self.row.columns {
            self.row.values.push((c as u32, col.data.len()));
        }
        self.row.set += 1;
        Some((t, c))
    }

    #[inline(never)]
    fn slow_slot(
        &mut self,
        name: &str,
        shape: ColumnShape,
        designated: bool,
    ) -> Result<(usize, usize), EncodeError> {
        let Some(t) = self.row.table else {
            return Err(EncodeError::NoRowInProgress);
        };
        if name.is_empty() && !designated {
            // The empty name is reserved for the designated timestamp.
            let e = EncodeError::InvalidColumnName {
                table: self.tables[t].name.clone(),
                column: String::new(),
                problem: NameProblem::Empty,
            };
            return self.fail(e);
        }
        let gorilla = self.cfg.gorilla;
        let table = &mut self.tables[t];
        let found = if designated {
            table.designated
        } else {
            table.find_column(name)
        };
        let c = match found {
            Some(c) => {
                let col = &table.columns[c];
                if col.shape != shape {
                    let e = if designated {
                        EncodeError::DesignatedTimestampUnitChanged {
                            table: table.name.clone(),
                            existing: col.shape.ty,
                            requested: shape.ty,
                        }
                    } else {
                        EncodeError::ColumnTypeChanged {
                            table: table.name.clone(),
                            column: name.to_owned(),
                            existing: col.shape,
                            requested: shape,
                        }
                    };
                    return self.fail(e);
                }
                if col.rows > table.rows {
                    let e = EncodeError::DuplicateColumn {
                        table: table.name.clone(),
                        column: name.to_owned(),
                    };
                    return self.fail(e);
                }
                c
            }
            None => {
                if !designated {
                    if let Err(problem) = names::check_column_name(name) {
                        let e = EncodeError::InvalidColumnName {
                            table: table.name.clone(),
                            column: name.to_owned(),
                            problem,
                        };
                        return self.fail(e);
                    }
                }
                if table.columns.len() >= MAX_COLUMNS {
                    let e = EncodeError::TooManyColumns {
                        table: table.name.clone(),
                        max: MAX_COLUMNS,
                    };
                    return self.fail(e);
                }
                let mut col = self.column_pool.pop().unwrap_or_else(Column::new);
                col.reset(name, shape);
                table.push_column(col, gorilla);
                let c = table.columns.len() - 1;
                if designated {
                    table.designated = Some(c);
                }
                c
            }
        };
        if !designated {
            table.advance_cursor(c);
        }
        let rows = table.rows;
        let col = &mut table.columns[c];
        col.pad_to(rows);
        if c < self.row.columns {
            self.row.values.push((c as u32, col.data.len()));
        }
        self.row.set += 1;
        Ok((t, c))
    }

    /// Sets column `name` to a value written by `write` into the column's
    /// buffers, after the value passed its checks.
    #[inline]
    fn put(
        &mut self,
        name: &str,
        shape: ColumnShape,
        designated: bool,
        write: impl FnOnce(&mut Column),
    ) -> Result<&mut Self, EncodeError> {
        let (t, c) = self.slot(name, shape, designated)?;
        let table = &mut self.tables[t];
        let col = &mut table.columns[c];
        let before = col.data.len() + col.offsets.len();
        write(col);
        if col.is_bitmap() {
            table.sizes.data += col.data.len() + col.offsets.len() - before;
        }
        col.note_value();
        Ok(self)
    }

    /// A value check failed before anything was written: fail the row.
    #[cold]
    fn reject(&mut self, e: EncodeError) -> Result<&mut Self, EncodeError> {
        if self.row.table.is_none() {
            return Err(EncodeError::NoRowInProgress);
        }
        self.fail(e)
    }

    /// Ends the row with a designated timestamp in µs since the epoch.
    pub fn at_micros(&mut self, ts: i64) -> Result<(), EncodeError> {
        self.put("", plain(ColumnType::Timestamp), true, |c| {
            c.data.extend_from_slice(&ts.to_le_bytes())
        })?;
        self.commit()
    }

    /// Ends the row with a designated timestamp in ns since the epoch (an
    /// empty-named TIMESTAMP_NANOS column).
    pub fn at_nanos(&mut self, ts: i64) -> Result<(), EncodeError> {
        self.put("", plain(ColumnType::TimestampNanos), true, |c| {
            c.data.extend_from_slice(&ts.to_le_bytes())
        })?;
        self.commit()
    }

    /// Ends the row at "now": `now_micros` is the caller's clock reading in
    /// µs since the epoch (the encoder never reads a clock).
    pub fn at_now(&mut self, now_micros: i64) -> Result<(), EncodeError> {
        self.at_micros(now_micros)
    }

    /// Ends the row without a designated timestamp (the server assigns one).
    pub fn at_server_time(&mut self) -> Result<(), EncodeError> {
        let Some(t) = self.row.table else {
            return Err(EncodeError::NoRowInProgress);
        };
        if self.row.set == 0 {
            let e = EncodeError::EmptyRow {
                table: self.tables[t].name.clone(),
            };
            return self.fail(e);
        }
        self.commit()
    }

    /// Completes the row in progress if the table's row limit and the batch
    /// limit allow it, else rolls it back.
    fn commit(&mut self) -> Result<(), EncodeError> {
        let Some(t) = self.row.table else {
            return Err(EncodeError::NoRowInProgress);
        };
        let table = &self.tables[t];
        let rows = table.rows + 1;
        if rows > self.cfg.max_rows_per_table {
            let e = EncodeError::TooManyRows {
                table: table.name.clone(),
                max: self.cfg.max_rows_per_table,
            };
            return self.fail(e);
        }
        let bound = table.bound(rows);
        let total =
            HEADER_LEN + self.dictionary_len() + self.tables_bound - table.committed_bound + bound;
        if total > self.cfg.max_batch_bytes {
            let e = EncodeError::BatchFull {
                would_be: total,
                max: self.cfg.max_batch_bytes,
                pending_rows: self.pending_rows,
            };
            return self.fail(e);
        }
        let table = &mut self.tables[t];
        self.tables_bound = self.tables_bound - table.committed_bound + bound;
        table.committed_bound = bound;
        table.rows = rows;
        self.pending_rows += 1;
        self.row.table = None;
        self.row.values.clear();
        Ok(())
    }

    /// Appends one complete message holding every pending row to `out`,
    /// then clears the pending rows (keeping allocations for the next
    /// message). Returns the bytes appended: 0 and nothing written when no
    /// row is pending. Fails only if a row is in progress (nothing changes).
    pub fn encode_into(&mut self, out: &mut Vec<u8>) -> Result<usize, EncodeError> {
        if let Some(t) = self.row.table {
            return Err(EncodeError::RowInProgress {
                table: self.tables[t].name.clone(),
            });
        }
        if self.pending_rows == 0 {
            return Ok(0);
        }
        let start = out.len();
        out.reserve(self.encoded_len_bound());
        let mut flags = 0;
        if self.cfg.gorilla {
            flags |= FLAG_GORILLA;
        }
        let dictionary = self.sends_dictionary();
        if dictionary {
            flags |= FLAG_DELTA_SYMBOL_DICT;
        }
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(VERSION);
        out.push(flags);
        // Table count is at most MAX_TABLES (u16), checked on creation.
        out.extend_from_slice(&(self.tables.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        if dictionary {
            self.symbols.write(out);
        }
        for table in &self.tables {
            table.write(self.cfg.gorilla, &mut self.scratch, out);
        }
        let written = out.len() - start;
        // The bound kept `written` within max_batch_bytes, whose payload
        // fits u32 (checked in the config).
        let payload = u32::try_from(written - HEADER_LEN).unwrap_or(u32::MAX);
        if let Some(len) = out.get_mut(start + 8..start + 12) {
            len.copy_from_slice(&payload.to_le_bytes());
        }
        self.clear();
        Ok(written)
    }

    /// Drops every pending row and any row in progress, keeping allocations.
    pub fn clear(&mut self) {
        self.row.table = None;
        self.row.values.clear();
        for mut table in self.tables.drain(..) {
            self.column_pool.append(&mut table.columns);
            self.table_pool.push(table);
        }
        self.table_index.clear();
        self.symbols.clear();
        self.tables_bound = 0;
        self.pending_rows = 0;
        self.last_table = 0;
    }
}
