//! Columnar storage of one table's pending rows and its wire section writer.
//!
//! Each column keeps the wire bytes of its values as they arrive, so encoding
//! is mostly copying. Null rows are recorded lazily: a column knows how many
//! rows it covers (`rows`); rows of the table beyond that are null, whether
//! the column was missing from them or did not exist yet. Gaps are padded
//! when the column next gets a value and at encode time.

use super::error::ColumnShape;
use super::intern::{hash_bytes, HashIndex};
use crate::types::{ColumnType, NullStrategy};
use crate::{gorilla, varint};

/// One column of a table in the message being built.
#[derive(Debug)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) shape: ColumnShape,
    strategy: NullStrategy,
    /// Rows covered so far (values and recorded nulls).
    pub(crate) rows: usize,
    /// Non-null values so far.
    pub(crate) values: usize,
    /// Wire bytes of the values: every covered row for sentinel types
    /// (BOOLEAN bit-packed), only non-null rows for bitmap types.
    pub(crate) data: Vec<u8>,
    /// VARCHAR/BINARY: u32 LE end offset of each value (`off[1..]`).
    pub(crate) offsets: Vec<u8>,
    /// Null bitmap of the covered rows; only kept (`null_bits == rows`) once
    /// the column has had a null, otherwise empty with `null_bits == 0`.
    nulls: Vec<u8>,
    null_bits: usize,
}

/// Sets bit `bit` of an LSB-first bitmap whose bytes already exist.
#[inline]
fn set_bit(bytes: &mut [u8], bit: usize) {
    if let Some(b) = bytes.get_mut(bit / 8) {
        *b |= 1 << (bit % 8);
    }
}

/// Truncates an LSB-first bitmap to `bits` bits, clearing the unused high
/// bits of the last byte.
fn truncate_bits(bytes: &mut Vec<u8>, bits: usize) {
    bytes.truncate(bits.div_ceil(8));
    if !bits.is_multiple_of(8) {
        if let Some(last) = bytes.last_mut() {
            *last &= (1u8 << (bits % 8)) - 1;
        }
    }
}

impl Column {
    pub(crate) fn new() -> Column {
        Column {
            name: String::new(),
            shape: ColumnShape {
                ty: ColumnType::Long,
                param: 0,
            },
            strategy: NullStrategy::Bitmap,
            rows: 0,
            values: 0,
            data: Vec::new(),
            offsets: Vec::new(),
            nulls: Vec::new(),
            null_bits: 0,
        }
    }

    /// Re-initialises a (possibly recycled) column, keeping its allocations.
    pub(crate) fn reset(&mut self, name: &str, shape: ColumnShape) {
        self.name.clear();
        self.name.push_str(name);
        self.shape = shape;
        self.strategy = shape.ty.null_strategy();
        self.rows = 0;
        self.values = 0;
        self.data.clear();
        self.offsets.clear();
        self.nulls.clear();
        self.null_bits = 0;
    }

    pub(crate) fn is_bitmap(&self) -> bool {
        self.strategy == NullStrategy::Bitmap
    }

    fn is_var(&self) -> bool {
        matches!(self.shape.ty, ColumnType::Varchar | ColumnType::Binary)
    }

    /// Bytes per row of a sentinel column (0 for BOOLEAN, which is bit-packed,
    /// and for bitmap columns).
    pub(crate) fn sentinel_width(&self) -> usize {
        match self.shape.ty {
            ColumnType::Byte => 1,
            ColumnType::Short | ColumnType::Char => 2,
            ColumnType::Geohash => usize::from(self.shape.param).div_ceil(8),
            _ => 0,
        }
    }

    /// Whether the column costs up to one bit per row on the wire beyond
    /// its values (a null bitmap, or BOOLEAN's packing).
    pub(crate) fn has_row_bits(&self) -> bool {
        self.is_bitmap() || self.shape.ty == ColumnType::Boolean
    }

    /// Wire bytes this column adds to its table no matter the row count:
    /// schema entry, null flag, type prefix, and the first VARCHAR offset.
    pub(crate) fn fixed_bytes(&self, gorilla: bool) -> usize {
        let prefix = match self.shape.ty {
            ColumnType::Geohash => varint::encoded_len(u64::from(self.shape.param)),
            ColumnType::Decimal64 | ColumnType::Decimal128 | ColumnType::Decimal256 => 1,
            ColumnType::Timestamp | ColumnType::TimestampNanos => usize::from(gorilla),
            ColumnType::Varchar | ColumnType::Binary => 4,
            _ => 0,
        };
        varint::encoded_len(self.name.len() as u64) + self.name.len() + 1 + 1 + prefix
    }

    /// Records rows `self.rows..rows` as null.
    pub(crate) fn pad_to(&mut self, rows: usize) {
        if self.rows >= rows {
            return;
        }
        let gap = rows - self.rows;
        match self.shape.ty {
            ColumnType::Boolean => self.data.resize(rows.div_ceil(8), 0),
            ColumnType::Geohash => {
                let len = self.data.len() + gap * self.sentinel_width();
                self.data.resize(len, 0xff);
            }
            ColumnType::Byte | ColumnType::Short | ColumnType::Char => {
                let len = self.data.len() + gap * self.sentinel_width();
                self.data.resize(len, 0);
            }
            _ => {
                // Bitmap types: materialise the bitmap (zeros so far), then
                // mark the gap.
                self.nulls.resize(rows.div_ceil(8), 0);
                for r in self.rows..rows {
                    set_bit(&mut self.nulls, r);
                }
                self.null_bits = rows;
            }
        }
        self.rows = rows;
    }

    /// Accounts for one value just appended to `data` (and `offsets`).
    #[inline]
    pub(crate) fn note_value(&mut self) {
        self.rows += 1;
        self.values += 1;
        if self.null_bits != 0 {
            self.null_bits = self.rows;
            self.nulls.resize(self.rows.div_ceil(8), 0);
        }
    }

    /// Appends one BOOLEAN value at bit `self.rows`.
    #[inline]
    pub(crate) fn push_bool(&mut self, v: bool) {
        let bit = self.rows;
        if bit.is_multiple_of(8) {
            self.data.push(0);
        }
        if v {
            set_bit(&mut self.data, bit);
        }
    }

    /// Appends one VARCHAR/BINARY value. The caller has checked that the
    /// value fits the configured batch size, so offsets fit in u32.
    #[inline]
    pub(crate) fn push_var(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        let end = u32::try_from(self.data.len()).unwrap_or(u32::MAX);
        self.offsets.extend_from_slice(&end.to_le_bytes());
    }

    /// Undoes the last [`Column::note_value`] (and its data), returning the
    /// column to `rows` covered rows and `data_len` data bytes. Padding done
    /// in the same row stays: it only records nulls the column had anyway.
    pub(crate) fn undo_value(&mut self, rows: usize, data_len: usize) {
        self.rows = rows;
        self.values = self.values.saturating_sub(1);
        if self.shape.ty == ColumnType::Boolean {
            truncate_bits(&mut self.data, rows);
        } else {
            self.data.truncate(data_len);
        }
        if self.is_var() {
            self.offsets.truncate(self.values * 4);
        }
        if self.null_bits > rows {
            self.null_bits = rows;
            truncate_bits(&mut self.nulls, rows);
        }
    }

    /// Appends the column's data section for a table of `rows` rows.
    pub(crate) fn write_section(
        &self,
        rows: usize,
        gorilla_flag: bool,
        scratch: &mut Vec<i64>,
        out: &mut Vec<u8>,
    ) {
        let gap = rows.saturating_sub(self.rows);
        match self.strategy {
            NullStrategy::Sentinel => out.push(0),
            NullStrategy::Bitmap => {
                if self.values == rows {
                    out.push(0);
                } else {
                    out.push(1);
                    let start = out.len();
                    out.extend_from_slice(&self.nulls);
                    out.resize(start + rows.div_ceil(8), 0);
                    let bitmap = &mut out[start..];
                    for r in self.rows..rows {
                        set_bit(bitmap, r);
                    }
                }
            }
        }
        match self.shape.ty {
            ColumnType::Geohash => varint::write(out, u64::from(self.shape.param)),
            ColumnType::Decimal64 | ColumnType::Decimal128 | ColumnType::Decimal256 => {
                out.push(self.shape.param)
            }
            _ => {}
        }
        match self.shape.ty {
            ColumnType::Boolean => {
                out.extend_from_slice(&self.data);
                let pad = rows.div_ceil(8).saturating_sub(self.data.len());
                out.resize(out.len() + pad, 0);
            }
            ColumnType::Geohash => {
                out.extend_from_slice(&self.data);
                out.resize(out.len() + gap * self.sentinel_width(), 0xff);
            }
            ColumnType::Byte | ColumnType::Short | ColumnType::Char => {
                out.extend_from_slice(&self.data);
                out.resize(out.len() + gap * self.sentinel_width(), 0);
            }
            ColumnType::Timestamp | ColumnType::TimestampNanos if gorilla_flag => {
                scratch.clear();
                scratch.extend(self.data.chunks_exact(8).map(|c| {
                    let mut w = [0u8; 8];
                    w.copy_from_slice(c);
                    i64::from_le_bytes(w)
                }));
                gorilla::encode(scratch, out);
            }
            ColumnType::Varchar | ColumnType::Binary => {
                out.extend_from_slice(&0u32.to_le_bytes());
                out.extend_from_slice(&self.offsets);
                out.extend_from_slice(&self.data);
            }
            _ => out.extend_from_slice(&self.data),
        }
    }
}

/// Size counters from which a table's encoded-size bound is computed in O(1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TableSizes {
    /// Name, schema entries, null flags, type prefixes.
    pub(crate) fixed: usize,
    /// Value bytes of bitmap columns (incl. VARCHAR offsets).
    pub(crate) data: usize,
    /// Sentinel bytes per row, summed over sentinel columns.
    pub(crate) row_width: usize,
    /// Columns costing up to one bit per row (bitmaps, BOOLEAN).
    pub(crate) bit_cols: usize,
}

impl TableSizes {
    /// An upper bound of the table block's size at `rows` rows with
    /// `columns` columns: exact except that every bitmap column is assumed
    /// to carry a bitmap and timestamps are counted raw (Gorilla only
    /// shrinks them).
    pub(crate) fn bound(&self, rows: usize, columns: usize) -> usize {
        self.fixed
            + varint::encoded_len(rows as u64)
            + varint::encoded_len(columns as u64)
            + self.data
            + rows * self.row_width
            + self.bit_cols * rows.div_ceil(8)
    }
}

/// One table of the message being built.
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) rows: usize,
    pub(crate) columns: Vec<Column>,
    index: HashIndex,
    /// Column index used by the k-th column call of the previous row: rows
    /// usually repeat their column order, so this avoids hashing.
    pub(crate) hint: Vec<u32>,
    /// Column calls so far in the row in progress.
    pub(crate) cursor: usize,
    /// Index of the designated timestamp column (the empty name), kept
    /// apart so ending a row never searches for it.
    pub(crate) designated: Option<usize>,
    pub(crate) sizes: TableSizes,
    /// The bound counted in the message total as of the last committed row.
    pub(crate) committed_bound: usize,
}

impl Table {
    pub(crate) fn new() -> Table {
        Table {
            name: String::new(),
            rows: 0,
            columns: Vec::new(),
            index: HashIndex::default(),
            hint: Vec::new(),
            cursor: 0,
            designated: None,
            sizes: TableSizes::default(),
            committed_bound: 0,
        }
    }

    /// Re-initialises a (possibly recycled) table; its columns must already
    /// have been moved out.
    pub(crate) fn reset(&mut self, name: &str) {
        self.name.clear();
        self.name.push_str(name);
        self.rows = 0;
        self.columns.clear();
        self.index.clear();
        self.hint.clear();
        self.cursor = 0;
        self.designated = None;
        self.sizes = TableSizes {
            fixed: varint::encoded_len(name.len() as u64) + name.len(),
            ..TableSizes::default()
        };
        self.committed_bound = 0;
    }

    /// The index of column `name`, trying the previous row's column at this
    /// call position first.
    #[inline]
    pub(crate) fn find_column(&self, name: &str) -> Option<usize> {
        if let Some(&i) = self.hint.get(self.cursor) {
            if let Some(c) = self.columns.get(i as usize) {
                if c.name == name {
                    return Some(i as usize);
                }
            }
        }
        let i = *self.index.get(&hash_bytes(name.as_bytes()))? as usize;
        if self.columns.get(i).is_some_and(|c| c.name == name) {
            return Some(i);
        }
        // Hash collision with another column's name.
        self.columns.iter().position(|c| c.name == name)
    }

    /// Remembers that the current call position used column `i`.
    #[inline]
    pub(crate) fn advance_cursor(&mut self, i: usize) {
        match self.hint.get_mut(self.cursor) {
            Some(h) => *h = i as u32,
            None => self.hint.push(i as u32),
        }
        self.cursor += 1;
    }

    /// Adds `col` (already reset) as the last column.
    pub(crate) fn push_column(&mut self, col: Column, gorilla: bool) {
        let i = self.columns.len() as u32;
        self.index
            .entry(hash_bytes(col.name.as_bytes()))
            .or_insert(i);
        self.sizes.fixed += col.fixed_bytes(gorilla);
        self.sizes.row_width += col.sentinel_width();
        self.sizes.bit_cols += usize::from(col.has_row_bits());
        self.columns.push(col);
    }

    /// Removes the columns from index `keep` on, handing them to `pool`.
    /// Size counters are restored by the caller from its snapshot.
    pub(crate) fn truncate_columns(&mut self, keep: usize, pool: &mut Vec<Column>) {
        if self.designated.is_some_and(|d| d >= keep) {
            self.designated = None;
        }
        while self.columns.len() > keep {
            let Some(col) = self.columns.pop() else { break };
            let i = self.columns.len() as u32;
            let h = hash_bytes(col.name.as_bytes());
            if self.index.get(&h) == Some(&i) {
                self.index.remove(&h);
            }
            pool.push(col);
        }
    }

    /// The current bound for `rows` rows.
    pub(crate) fn bound(&self, rows: usize) -> usize {
        self.sizes.bound(rows, self.columns.len())
    }

    /// Appends the table block.
    pub(crate) fn write(&self, gorilla: bool, scratch: &mut Vec<i64>, out: &mut Vec<u8>) {
        varint::write(out, self.name.len() as u64);
        out.extend_from_slice(self.name.as_bytes());
        varint::write(out, self.rows as u64);
        varint::write(out, self.columns.len() as u64);
        for c in &self.columns {
            varint::write(out, c.name.len() as u64);
            out.extend_from_slice(c.name.as_bytes());
            out.push(c.shape.ty.code());
        }
        for c in &self.columns {
            c.write_section(self.rows, gorilla, scratch, out);
        }
    }
}
