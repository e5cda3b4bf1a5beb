//! Name and symbol interning without per-lookup allocation.
//!
//! Maps are keyed by a 64-bit hash of the string rather than the string
//! itself, so interning never allocates a key; the stored string is compared
//! on every hit. A hash collision (two different strings, one hash) keeps the
//! first string in the map and sends lookups of the others to a linear scan,
//! which stays correct and is astronomically rare for real names.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A hasher for keys that are already well-mixed 64-bit hashes.
#[derive(Default)]
pub(crate) struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are ever hashed; this path exists for completeness.
        self.0 = hash_bytes(bytes);
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A map from a string hash to an index.
pub(crate) type HashIndex = HashMap<u64, u32, BuildHasherDefault<PreHashed>>;

/// A fast, well-mixed 64-bit hash of a byte string (not DoS-resistant: the
/// producer hashes its own data).
#[inline]
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(23) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    // murmur3 fmix64: spreads entropy into the high bits the map uses.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The per-message symbol dictionary: ids from 0 in first-use order.
#[derive(Debug, Default)]
pub(crate) struct SymbolDict {
    index: HashIndex,
    /// Concatenated UTF-8 of every entry, in id order.
    text: Vec<u8>,
    /// End offset in `text` of each entry.
    ends: Vec<usize>,
    /// Exact wire size of the entries (varint length + bytes each).
    wire_bytes: usize,
}

/// Where the dictionary stood when a row started, for rollback.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SymbolMark {
    count: usize,
    wire_bytes: usize,
}

impl SymbolDict {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    fn entry(&self, id: usize) -> &[u8] {
        let start = if id == 0 { 0 } else { self.ends[id - 1] };
        &self.text[start..self.ends[id]]
    }

    /// The id of `value`, if already interned.
    #[inline]
    fn find(&self, value: &str, hash: u64) -> Option<u32> {
        let id = *self.index.get(&hash)?;
        if self.entry(id as usize) == value.as_bytes() {
            return Some(id);
        }
        // Collision: the map holds another string with this hash.
        (0..self.len())
            .find(|&i| self.entry(i) == value.as_bytes())
            .map(|i| i as u32)
    }

    /// The id of `value`, adding it when new; `None` when the dictionary
    /// already holds `max` entries.
    #[inline]
    pub(crate) fn intern(&mut self, value: &str, max: usize) -> Option<u32> {
        let hash = hash_bytes(value.as_bytes());
        if let Some(id) = self.find(value, hash) {
            return Some(id);
        }
        if self.len() >= max {
            return None;
        }
        let id = self.len() as u32;
        self.text.extend_from_slice(value.as_bytes());
        self.ends.push(self.text.len());
        self.wire_bytes += crate::varint::encoded_len(value.len() as u64) + value.len();
        self.index.entry(hash).or_insert(id);
        Some(id)
    }

    /// The current position, to roll back to.
    pub(crate) fn mark(&self) -> SymbolMark {
        SymbolMark {
            count: self.len(),
            wire_bytes: self.wire_bytes,
        }
    }

    /// Forgets every entry added after `mark`.
    pub(crate) fn rollback(&mut self, mark: SymbolMark) {
        while self.len() > mark.count {
            let id = self.len() - 1;
            let hash = hash_bytes(self.entry(id));
            if self.index.get(&hash) == Some(&(id as u32)) {
                self.index.remove(&hash);
            }
            self.ends.pop();
        }
        self.text.truncate(self.ends.last().copied().unwrap_or(0));
        self.wire_bytes = mark.wire_bytes;
    }

    /// Size of the dictionary section (`delta_start`, `delta_count`,
    /// entries).
    pub(crate) fn section_len(&self) -> usize {
        1 + crate::varint::encoded_len(self.len() as u64) + self.wire_bytes
    }

    /// Appends the dictionary section with `delta_start = 0`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        crate::varint::write(out, 0);
        crate::varint::write(out, self.len() as u64);
        let mut start = 0;
        for &end in &self.ends {
            let s = &self.text[start..end];
            crate::varint::write(out, s.len() as u64);
            out.extend_from_slice(s);
            start = end;
        }
    }

    /// Empties the dictionary, keeping its allocations.
    pub(crate) fn clear(&mut self) {
        self.index.clear();
        self.text.clear();
        self.ends.clear();
        self.wire_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_first_use_order_and_rollback_forgets_new_entries() {
        let mut d = SymbolDict::default();
        assert_eq!(d.intern("a", 10), Some(0));
        assert_eq!(d.intern("b", 10), Some(1));
        assert_eq!(d.intern("a", 10), Some(0));
        let m = d.mark();
        assert_eq!(d.intern("c", 10), Some(2));
        d.rollback(m);
        assert_eq!(d.len(), 2);
        assert_eq!(d.intern("d", 10), Some(2));
        let mut out = Vec::new();
        d.write(&mut out);
        assert_eq!(out, [0, 3, 1, b'a', 1, b'b', 1, b'd']);
        assert_eq!(d.section_len(), out.len());
    }

    #[test]
    fn empty_dictionary_section_is_two_zero_varints() {
        let d = SymbolDict::default();
        let mut out = Vec::new();
        d.write(&mut out);
        assert_eq!(out, [0, 0]);
        assert_eq!(d.section_len(), 2);
    }

    #[test]
    fn hash_collisions_fall_back_to_a_scan() {
        let mut d = SymbolDict::default();
        assert_eq!(d.intern("a", 10), Some(0));
        // Pretend "b" collides with "a": its hash slot names id 0.
        d.index.insert(hash_bytes(b"b"), 0);
        assert_eq!(d.intern("b", 10), Some(1));
        assert_eq!(d.intern("b", 10), Some(1));
        assert_eq!(d.intern("a", 10), Some(0));
        let m = d.mark();
        assert_eq!(d.intern("c", 10), Some(2));
        d.rollback(m);
        // The colliding slot still names "a", not the rolled-back entry.
        assert_eq!(d.index.get(&hash_bytes(b"b")), Some(&0));
        assert_eq!(d.intern("b", 10), Some(1));
    }

    #[test]
    fn full_dictionary_refuses_new_but_finds_old() {
        let mut d = SymbolDict::default();
        assert_eq!(d.intern("a", 1), Some(0));
        assert_eq!(d.intern("b", 1), None);
        assert_eq!(d.intern("a", 1), Some(0));
    }

    #[test]
    fn hash_distinguishes_lengths_and_tails() {
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
        assert_ne!(hash_bytes(b"abcdefgh"), hash_bytes(b"abcdefgh\0"));
        assert_ne!(hash_bytes(b"abcdefghi"), hash_bytes(b"abcdefghj"));
    }
}
