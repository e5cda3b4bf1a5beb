//! Server response frames: OK, DURABLE_ACK and error frames, encoded and
//! decoded (wire-ingress §8, sf-client §9–§10, §14.1).
//!
//! All numbers are little-endian and every frame starts with its status byte:
//!
//! | frame | layout | minimum |
//! |---|---|---|
//! | OK | `00`, `sequence: i64`, `tableCount: u16`, entries | 11 bytes |
//! | DURABLE_ACK | `02`, `tableCount: u16`, entries (no sequence) | 3 bytes |
//! | error | `status`, `sequence: i64`, `msgLen: u16` (≤ 1024), message | 11 bytes |
//!
//! A table entry is `nameLen: u16`, UTF-8 name, `seqTxn: i64`.
//!
//! Decisions where the spec is silent:
//! - **Unknown status bytes** (`01`, `04`, `07`, `0a`…`ff`) decode as error
//!   frames; [`ErrorFrame::category`] maps them to [`ErrorCategory::Unknown`]
//!   (HALT), as sf-client §14.2 requires.
//! - **An error message that is not valid UTF-8 is decoded lossily** (invalid
//!   sequences become U+FFFD), not rejected. The message is diagnostic text;
//!   the status and sequence are what drive the error policy. Rejecting the
//!   whole frame would turn a server reject into a frame-decode error, which
//!   failover classes as transient: the client would reconnect and resend the
//!   same bytes, the very poison loop invariant W3 forbids.
//! - **Table names that are not valid UTF-8 are an error**: names are keys of
//!   the durable-ACK watermarks, and a lossy name could merge two tables.
//! - **An encoder given a message longer than 1024 bytes truncates it** at the
//!   last UTF-8 character boundary at or below 1024 bytes
//!   ([`ErrorFrame::new`]). The reference server builds messages from
//!   arbitrary internal errors and must always be able to report the status
//!   and sequence; failing to encode the reject would be worse than a
//!   shortened message.
//! - The decoder never allocates more than the input can justify: a
//!   `tableCount` of 65535 in a 3-byte frame reserves nothing, because every
//!   entry needs at least [`MIN_TABLE_ENTRY_LEN`] bytes.

use crate::status::{ErrorCategory, STATUS_DURABLE_ACK, STATUS_OK};

/// Maximum length in bytes of an error frame's message (sf-client §14.1).
pub const MAX_ERROR_MESSAGE_LEN: usize = 1024;
/// Minimum length of an OK frame: status, sequence and table count.
pub const MIN_OK_LEN: usize = 11;
/// Minimum length of a DURABLE_ACK frame: status and table count.
pub const MIN_DURABLE_ACK_LEN: usize = 3;
/// Minimum length of an error frame: status, sequence and message length.
pub const MIN_ERROR_LEN: usize = 11;
/// Minimum encoded length of one table entry: `nameLen`, an empty name and
/// `seqTxn`.
pub const MIN_TABLE_ENTRY_LEN: usize = 10;

/// One table's sequencer transaction as reported by OK and DURABLE_ACK frames.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableSeqTxn {
    /// Table name (UTF-8, at most `u16::MAX` bytes on the wire).
    pub name: String,
    /// The table's sequencer txn: committed (OK) or durably uploaded
    /// (DURABLE_ACK).
    pub seq_txn: i64,
}

impl TableSeqTxn {
    /// A table entry.
    pub fn new(name: impl Into<String>, seq_txn: i64) -> TableSeqTxn {
        TableSeqTxn {
            name: name.into(),
            seq_txn,
        }
    }
}

/// An OK frame: the server processed the message numbered `sequence` on this
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OkFrame {
    /// The per-connection wire sequence the server echoes back. Signed on the
    /// wire; the ACK tracker decides what a negative or future value means.
    pub sequence: i64,
    /// Tables that committed, with their seqTxn; empty for non-WAL tables or
    /// empty batches.
    pub tables: Vec<TableSeqTxn>,
}

/// A DURABLE_ACK frame: cumulative per-table durable watermarks. It carries no
/// sequence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DurableAckFrame {
    /// Tables whose durable seqTxn advanced.
    pub tables: Vec<TableSeqTxn>,
}

/// An error frame: the server rejected the message numbered `sequence`.
///
/// Its status is never `00` (OK) or `02` (DURABLE_ACK) and its message is at
/// most [`MAX_ERROR_MESSAGE_LEN`] bytes; the fields are private so that no
/// other value can be built.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorFrame {
    status: u8,
    sequence: i64,
    message: String,
}

impl ErrorFrame {
    /// An error frame, with `message` truncated at a UTF-8 character boundary
    /// to at most [`MAX_ERROR_MESSAGE_LEN`] bytes.
    ///
    /// Fails if `status` is the OK or DURABLE_ACK status, which would encode
    /// as a different frame.
    pub fn new(
        status: u8,
        sequence: i64,
        message: impl Into<String>,
    ) -> Result<ErrorFrame, ResponseEncodeError> {
        if status == STATUS_OK || status == STATUS_DURABLE_ACK {
            return Err(ResponseEncodeError::NotAnErrorStatus { status });
        }
        let mut message = message.into();
        truncate_at_char_boundary(&mut message, MAX_ERROR_MESSAGE_LEN);
        Ok(ErrorFrame {
            status,
            sequence,
            message,
        })
    }

    /// The status byte.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// The wire sequence of the rejected message.
    pub fn sequence(&self) -> i64 {
        self.sequence
    }

    /// The server's message (lossily decoded if it was not valid UTF-8).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error category of the status byte; unknown statuses are
    /// [`ErrorCategory::Unknown`].
    pub fn category(&self) -> ErrorCategory {
        ErrorCategory::from_status(self.status)
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(MIN_ERROR_LEN + self.message.len());
        out.push(self.status);
        out.extend_from_slice(&self.sequence.to_le_bytes());
        // `new` and `decode` both keep the message within 1024 bytes.
        let len = u16::try_from(self.message.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(self.message.as_bytes());
    }
}

/// Cuts `s` to at most `max` bytes without splitting a character.
fn truncate_at_char_boundary(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

/// Any server response frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Response {
    /// Status `00`.
    Ok(OkFrame),
    /// Status `02`.
    DurableAck(DurableAckFrame),
    /// Any other status byte.
    Error(ErrorFrame),
}

/// Which frame layout a decode error refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Status `00`.
    Ok,
    /// Status `02`.
    DurableAck,
    /// Any other status.
    Error,
}

impl core::fmt::Display for FrameKind {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameKind::Ok => "OK",
            FrameKind::DurableAck => "DURABLE_ACK",
            FrameKind::Error => "error",
        })
    }
}

/// Why a response frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseDecodeError {
    /// The frame has no status byte.
    #[error("empty response frame")]
    Empty,
    /// The frame ends inside a field.
    #[error(
        "truncated {kind} frame: field `{field}` needs {needed} bytes at offset {offset}, \
         frame has {len} bytes"
    )]
    Truncated {
        /// Frame layout.
        kind: FrameKind,
        /// Field being read.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Total frame length.
        len: usize,
    },
    /// Bytes follow the last field of the frame.
    #[error("{kind} frame has {trailing} trailing bytes after its {consumed} bytes")]
    TrailingBytes {
        /// Frame layout.
        kind: FrameKind,
        /// Bytes the layout accounts for.
        consumed: usize,
        /// Bytes beyond them.
        trailing: usize,
    },
    /// An error frame's `msgLen` exceeds 1024.
    #[error("error frame message length {len} exceeds the {MAX_ERROR_MESSAGE_LEN}-byte cap")]
    MessageTooLong {
        /// The declared length.
        len: u16,
    },
    /// A table name is not valid UTF-8.
    #[error("{kind} frame: name of table entry {index} (offset {offset}) is not valid UTF-8")]
    InvalidTableName {
        /// Frame layout.
        kind: FrameKind,
        /// Zero-based entry index.
        index: u16,
        /// Offset of the name bytes.
        offset: usize,
    },
}

/// Why a response frame could not be encoded. The output buffer is left
/// untouched when an encoder fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseEncodeError {
    /// More table entries than the u16 `tableCount` can express.
    #[error("{count} table entries exceed the u16 tableCount")]
    TooManyTables {
        /// Number of entries given.
        count: usize,
    },
    /// A table name longer than the u16 `nameLen` can express.
    #[error("table entry {index}: name of {len} bytes exceeds the u16 nameLen")]
    NameTooLong {
        /// Zero-based entry index.
        index: usize,
        /// Name length in bytes.
        len: usize,
    },
    /// An error frame was given the OK or DURABLE_ACK status.
    #[error("status {status:#04x} is not an error status")]
    NotAnErrorStatus {
        /// The status given.
        status: u8,
    },
}

impl OkFrame {
    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), ResponseEncodeError> {
        let count = check_tables(&self.tables)?;
        out.reserve(MIN_OK_LEN + tables_len(&self.tables));
        out.push(STATUS_OK);
        out.extend_from_slice(&self.sequence.to_le_bytes());
        write_tables(count, &self.tables, out);
        Ok(())
    }
}

impl DurableAckFrame {
    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), ResponseEncodeError> {
        let count = check_tables(&self.tables)?;
        out.reserve(MIN_DURABLE_ACK_LEN + tables_len(&self.tables));
        out.push(STATUS_DURABLE_ACK);
        write_tables(count, &self.tables, out);
        Ok(())
    }
}

impl Response {
    /// Appends the encoded frame to `out`; on error `out` is unchanged.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), ResponseEncodeError> {
        match self {
            Response::Ok(f) => f.encode_into(out),
            Response::DurableAck(f) => f.encode_into(out),
            Response::Error(f) => {
                f.encode_into(out);
                Ok(())
            }
        }
    }

    /// Decodes one complete frame (one WebSocket binary message).
    pub fn decode(bytes: &[u8]) -> Result<Response, ResponseDecodeError> {
        let (&status, _) = bytes.split_first().ok_or(ResponseDecodeError::Empty)?;
        match status {
            STATUS_OK => {
                let mut r = Reader::new(bytes, FrameKind::Ok, 1);
                let sequence = r.i64("sequence")?;
                let tables = r.tables()?;
                r.finish()?;
                Ok(Response::Ok(OkFrame { sequence, tables }))
            }
            STATUS_DURABLE_ACK => {
                let mut r = Reader::new(bytes, FrameKind::DurableAck, 1);
                let tables = r.tables()?;
                r.finish()?;
                Ok(Response::DurableAck(DurableAckFrame { tables }))
            }
            _ => {
                let mut r = Reader::new(bytes, FrameKind::Error, 1);
                let sequence = r.i64("sequence")?;
                let len = r.u16("msgLen")?;
                if usize::from(len) > MAX_ERROR_MESSAGE_LEN {
                    return Err(ResponseDecodeError::MessageTooLong { len });
                }
                let msg = r.take("msg", usize::from(len))?;
                r.finish()?;
                Ok(Response::Error(ErrorFrame {
                    status,
                    sequence,
                    message: String::from_utf8_lossy(msg).into_owned(),
                }))
            }
        }
    }
}

/// Validates the entries and returns their count as the wire's u16.
fn check_tables(tables: &[TableSeqTxn]) -> Result<u16, ResponseEncodeError> {
    let count = u16::try_from(tables.len()).map_err(|_| ResponseEncodeError::TooManyTables {
        count: tables.len(),
    })?;
    if let Some((index, t)) = tables
        .iter()
        .enumerate()
        .find(|(_, t)| u16::try_from(t.name.len()).is_err())
    {
        return Err(ResponseEncodeError::NameTooLong {
            index,
            len: t.name.len(),
        });
    }
    Ok(count)
}

/// Encoded size of the entries (the count is part of the minimum length).
fn tables_len(tables: &[TableSeqTxn]) -> usize {
    tables
        .iter()
        .map(|t| MIN_TABLE_ENTRY_LEN + t.name.len())
        .sum::<usize>()
}

/// Writes `tableCount` and the entries; `check_tables` has validated them.
fn write_tables(count: u16, tables: &[TableSeqTxn], out: &mut Vec<u8>) {
    out.extend_from_slice(&count.to_le_bytes());
    for t in tables {
        let len = u16::try_from(t.name.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(t.name.as_bytes());
        out.extend_from_slice(&t.seq_txn.to_le_bytes());
    }
}

/// A bounds-checked cursor over one frame.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    kind: FrameKind,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], kind: FrameKind, pos: usize) -> Reader<'a> {
        Reader { bytes, pos, kind }
    }

    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], ResponseDecodeError> {
        let end = self.pos.checked_add(n);
        match end.and_then(|end| self.bytes.get(self.pos..end)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(ResponseDecodeError::Truncated {
                kind: self.kind,
                field,
                offset: self.pos,
                needed: n,
                len: self.bytes.len(),
            }),
        }
    }

    fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], ResponseDecodeError> {
        let s = self.take(field, N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, ResponseDecodeError> {
        self.array(field).map(u16::from_le_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, ResponseDecodeError> {
        self.array(field).map(i64::from_le_bytes)
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// `tableCount` and its entries.
    fn tables(&mut self) -> Result<Vec<TableSeqTxn>, ResponseDecodeError> {
        let count = self.u16("tableCount")?;
        // Reserve only what the remaining bytes can hold, so a forged count
        // costs nothing.
        let fits = self.remaining() / MIN_TABLE_ENTRY_LEN;
        let mut tables = Vec::with_capacity(usize::from(count).min(fits));
        for index in 0..count {
            let name_len = self.u16("nameLen")?;
            let offset = self.pos;
            let name = self.take("name", usize::from(name_len))?;
            let name =
                core::str::from_utf8(name).map_err(|_| ResponseDecodeError::InvalidTableName {
                    kind: self.kind,
                    index,
                    offset,
                })?;
            let seq_txn = self.i64("seqTxn")?;
            tables.push(TableSeqTxn::new(name, seq_txn));
        }
        Ok(tables)
    }

    fn finish(self) -> Result<(), ResponseDecodeError> {
        match self.remaining() {
            0 => Ok(()),
            trailing => Err(ResponseDecodeError::TrailingBytes {
                kind: self.kind,
                consumed: self.pos,
                trailing,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    #[test]
    fn truncation_keeps_char_boundary() {
        // 'é' is 2 bytes; 513 of them = 1026 bytes, cut must land on 1024.
        let f = ErrorFrame::new(5, 0, "é".repeat(513)).unwrap();
        assert_eq!(f.message().len(), 1024);
        // A 3-byte char straddling the cap is dropped whole.
        let msg = format!("{}€", "a".repeat(1022));
        let f = ErrorFrame::new(5, 0, msg).unwrap();
        assert_eq!(f.message(), "a".repeat(1022));
    }

    #[test]
    fn ok_and_durable_status_are_not_error_frames() {
        for s in [STATUS_OK, STATUS_DURABLE_ACK] {
            assert_eq!(
                ErrorFrame::new(s, 1, "x"),
                Err(ResponseEncodeError::NotAnErrorStatus { status: s })
            );
        }
    }

    #[test]
    fn forged_table_count_reserves_nothing() {
        let mut r = Reader::new(&[0x02, 0xff, 0xff], FrameKind::DurableAck, 1);
        let err = r.tables().unwrap_err();
        assert!(matches!(
            err,
            ResponseDecodeError::Truncated {
                field: "nameLen",
                offset: 3,
                ..
            }
        ));
        // Two entries' worth of bytes permit a capacity of at most 2.
        let mut bytes = hex("02 ff ff");
        bytes.extend_from_slice(&[0u8; 20]);
        let mut r = Reader::new(&bytes, FrameKind::DurableAck, 1);
        let _ = r.u16("tableCount");
        assert_eq!(r.remaining() / MIN_TABLE_ENTRY_LEN, 2);
    }

    #[test]
    fn encode_error_leaves_buffer_untouched() {
        let mut out = vec![7u8];
        let f = OkFrame {
            sequence: 1,
            tables: vec![TableSeqTxn::new("a".repeat(70_000), 1)],
        };
        assert_eq!(
            f.encode_into(&mut out),
            Err(ResponseEncodeError::NameTooLong {
                index: 0,
                len: 70_000
            })
        );
        assert_eq!(out, vec![7u8]);
    }
}
