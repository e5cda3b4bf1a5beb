//! Which rows of a column are null, with constant-time mapping from a row
//! to its index among the column's dense non-null values.

/// A column's null rows: bit `r % 64` of word `r / 64` is 1 when row `r` is
/// null (the wire's LSB-first bitmap, read as little-endian words).
///
/// Padding bits past `row_count` in the wire bitmap's last byte are ignored
/// (cleared): the spec does not require them to be zero, and they name no
/// row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NullMask {
    words: Vec<u64>,
    /// Non-null rows before each word, so `dense_index` is O(1).
    rank: Vec<u32>,
    row_count: usize,
    null_count: usize,
}

impl NullMask {
    /// Reads a wire bitmap of `ceil(row_count / 8)` bytes. The caller has
    /// checked the length, so the allocation is bounded by the input.
    pub(crate) fn from_wire(bitmap: &[u8], row_count: usize) -> Self {
        let words = bitmap
            .chunks(8)
            .map(|chunk| {
                let mut le = [0u8; 8];
                le.iter_mut().zip(chunk).for_each(|(d, s)| *d = *s);
                u64::from_le_bytes(le)
            })
            .collect();
        Self::from_words(words, row_count)
    }

    /// Builds a mask from one flag per row (`true` = null).
    pub(crate) fn from_flags(flags: impl ExactSizeIterator<Item = bool>) -> Self {
        let row_count = flags.len();
        let mut words = vec![0u64; row_count.div_ceil(64)];
        for (row, null) in flags.enumerate() {
            if null {
                if let Some(w) = words.get_mut(row / 64) {
                    *w |= 1 << (row % 64);
                }
            }
        }
        Self::from_words(words, row_count)
    }

    fn from_words(mut words: Vec<u64>, row_count: usize) -> Self {
        let tail = row_count % 64;
        if tail != 0 {
            if let Some(last) = words.last_mut() {
                *last &= (1u64 << tail) - 1;
            }
        }
        let mut rank = Vec::with_capacity(words.len());
        let mut non_null = 0u32;
        let mut null_count = 0usize;
        for w in &words {
            rank.push(non_null);
            let nulls = w.count_ones();
            null_count += nulls as usize;
            non_null = non_null.wrapping_add(64 - nulls);
        }
        NullMask {
            words,
            rank,
            row_count,
            null_count,
        }
    }

    /// Rows covered by the mask.
    pub fn row_count(&self) -> usize {
        self.row_count
    }

    /// Number of null rows.
    pub fn null_count(&self) -> usize {
        self.null_count
    }

    /// Number of non-null rows, i.e. values the column holds.
    pub fn value_count(&self) -> usize {
        self.row_count - self.null_count
    }

    /// Whether `row` is null (`false` past the end).
    pub fn is_null(&self, row: usize) -> bool {
        row < self.row_count
            && self
                .words
                .get(row / 64)
                .is_some_and(|w| (w >> (row % 64)) & 1 == 1)
    }

    /// The index of `row` among the non-null values, or `None` when the row
    /// is null or past the end.
    pub fn dense_index(&self, row: usize) -> Option<usize> {
        if row >= self.row_count || self.is_null(row) {
            return None;
        }
        let word = *self.words.get(row / 64)?;
        let before = *self.rank.get(row / 64)? as usize;
        let below = (1u64 << (row % 64)) - 1;
        Some(before + (!word & below).count_ones() as usize)
    }

    /// The mask as the wire's bitmap bytes (`ceil(row_count / 8)` bytes,
    /// padding bits zero).
    pub fn to_wire(&self) -> Vec<u8> {
        self.words
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .take(self.row_count.div_ceil(8))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_14_4_bitmap_rows_0_2_9_null() {
        let m = NullMask::from_wire(&[0x05, 0x02], 10);
        let nulls: Vec<usize> = (0..10).filter(|r| m.is_null(*r)).collect();
        assert_eq!(nulls, [0, 2, 9]);
        assert_eq!(m.null_count(), 3);
        assert_eq!(m.value_count(), 7);
        assert_eq!(m.dense_index(0), None);
        assert_eq!(m.dense_index(1), Some(0));
        assert_eq!(m.dense_index(3), Some(1));
        assert_eq!(m.dense_index(8), Some(6));
        assert_eq!(m.dense_index(10), None);
        assert_eq!(m.to_wire(), [0x05, 0x02]);
    }

    #[test]
    fn padding_bits_past_row_count_are_ignored() {
        // Row count 10: bits 10..15 of byte 1 are padding.
        let m = NullMask::from_wire(&[0x00, 0xfc], 10);
        assert_eq!(m.null_count(), 0);
        assert_eq!(m.to_wire(), [0x00, 0x00]);
    }

    #[test]
    fn dense_index_crosses_word_boundaries() {
        let flags: Vec<bool> = (0..200).map(|r| r % 3 == 0).collect();
        let m = NullMask::from_flags(flags.iter().copied());
        let mut dense = 0;
        for (row, null) in flags.iter().enumerate() {
            if *null {
                assert_eq!(m.dense_index(row), None);
            } else {
                assert_eq!(m.dense_index(row), Some(dense), "row {row}");
                dense += 1;
            }
        }
        assert_eq!(m.value_count(), dense);
        assert_eq!(NullMask::from_wire(&m.to_wire(), 200), m);
    }
}
