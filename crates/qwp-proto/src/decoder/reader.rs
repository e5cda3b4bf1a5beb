//! A bounds-checked cursor over the message bytes that knows its absolute
//! offset, so every error can say where it happened.

use super::error::{ErrorKind, Fault};
use crate::varint::{self, VarintError};

/// Reads fields front to back; never reads past the end, never panics.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    /// Absolute offset of `input[0]` in the message.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `input`, whose first byte is at message offset `base`.
    pub(crate) fn new(input: &'a [u8], base: usize) -> Self {
        Reader {
            input,
            pos: 0,
            base,
        }
    }

    /// Absolute message offset of the next byte.
    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// The unread bytes, without consuming them.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.input.get(self.pos..).unwrap_or_default()
    }

    /// A fault at the current offset.
    pub(crate) fn fault(&self, kind: ErrorKind) -> Fault {
        Fault::new(kind, self.offset())
    }

    /// A truncation fault for a field needing `needed` bytes.
    pub(crate) fn truncated(&self, what: &'static str, needed: u64) -> Fault {
        self.fault(ErrorKind::Truncated {
            what,
            needed,
            available: self.remaining(),
        })
    }

    /// Fails unless at least `needed` bytes remain. Used before allocating
    /// for a declared count, so a count the input cannot back is refused.
    pub(crate) fn require(&self, what: &'static str, needed: u64) -> Result<(), Fault> {
        if needed > self.remaining() as u64 {
            Err(self.truncated(what, needed))
        } else {
            Ok(())
        }
    }

    /// Consumes `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Fault> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.input.len())
            .ok_or_else(|| self.truncated(what, n as u64))?;
        let bytes = self.input.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(bytes)
    }

    /// Consumes `count` items of `width` bytes each.
    pub(crate) fn take_items(
        &mut self,
        count: usize,
        width: usize,
        what: &'static str,
    ) -> Result<&'a [u8], Fault> {
        let n = count
            .checked_mul(width)
            .ok_or_else(|| self.truncated(what, u64::MAX))?;
        self.take(n, what)
    }

    /// Skips `n` bytes that a sub-decoder has already consumed.
    pub(crate) fn advance(&mut self, n: usize, what: &'static str) -> Result<(), Fault> {
        self.take(n, what).map(|_| ())
    }

    /// Consumes a fixed-size array of bytes.
    pub(crate) fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Fault> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Consumes one byte.
    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Fault> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Consumes one unsigned LEB128 varint.
    pub(crate) fn varint(&mut self, what: &'static str) -> Result<u64, Fault> {
        match varint::read(self.rest()) {
            Ok((value, len)) => {
                self.pos += len;
                Ok(value)
            }
            Err(VarintError::Overflow) => Err(self.fault(ErrorKind::VarintOverflow { what })),
            Err(VarintError::Truncated { read }) => Err(self.truncated(what, read as u64 + 1)),
        }
    }

    /// Consumes a varint length and that many bytes of UTF-8, refusing a
    /// length above `max_len`.
    pub(crate) fn string(
        &mut self,
        what: &'static str,
        max_len: Option<usize>,
    ) -> Result<&'a str, Fault> {
        let start = self.offset();
        let len = self.varint(what)?;
        if let Some(max) = max_len {
            if len > max as u64 {
                return Err(Fault::new(ErrorKind::NameTooLong { what, len, max }, start));
            }
        }
        self.require(what, len)?;
        let at = self.offset();
        // `require` bounded `len` by the remaining input, so it fits usize.
        let bytes = self.take(len as usize, what)?;
        core::str::from_utf8(bytes)
            .map_err(|e| Fault::new(ErrorKind::InvalidUtf8 { what }, at + e.valid_up_to()))
    }
}
