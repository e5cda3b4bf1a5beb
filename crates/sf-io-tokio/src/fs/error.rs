//! Errors of the file layer. Every OS error carries the path and the
//! operation that failed, so an operator reading one line knows what to look
//! at, and the I/O task can hand the failure to the core as an input.

use std::fmt;
use std::io;
use std::path::PathBuf;

use sf_core::recovery::RecoveryError;
use sf_core::segment::{FrameReadError, FrameWriteError};
use sf_core::storage::{IoFailure, IoOutcome};

/// The file-system operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FsOp {
    /// Creating a directory or a new file.
    Create,
    /// Opening an existing file.
    Open,
    /// Setting a file's length.
    SetLen,
    /// Mapping a file into memory.
    Map,
    /// Touching every page of a fresh mapping.
    Prefault,
    /// Writing bytes (zero-fill, pwrite, `.lock.pid`).
    Write,
    /// `msync` of a mapped range.
    Msync,
    /// `fsync`/`fdatasync` of a file or directory.
    Fsync,
    /// Removing a file.
    Unlink,
    /// Listing a directory.
    List,
    /// Reading a file's metadata (its size and type).
    Stat,
    /// Reading a file's bytes.
    Read,
    /// Taking or probing the advisory slot lock.
    Lock,
}

impl FsOp {
    /// The operation's short name, as it appears in messages.
    pub fn name(self) -> &'static str {
        match self {
            FsOp::Create => "create",
            FsOp::Open => "open",
            FsOp::SetLen => "set_len",
            FsOp::Map => "map",
            FsOp::Prefault => "prefault",
            FsOp::Write => "write",
            FsOp::Msync => "msync",
            FsOp::Fsync => "fsync",
            FsOp::Unlink => "unlink",
            FsOp::List => "list",
            FsOp::Stat => "stat",
            FsOp::Read => "read",
            FsOp::Lock => "lock",
        }
    }
}

impl fmt::Display for FsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failure of the file layer.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// The OS refused an operation.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: FsOp,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A segment's size cannot be mapped or is too small for its header.
    #[error("segment {segment}: size {size} bytes is unusable ({why})")]
    BadSegmentSize {
        /// The segment (a path, or a memory segment's label).
        segment: String,
        /// The size asked for or found.
        size: u64,
        /// Why it is unusable.
        why: &'static str,
    },
    /// The segment codec refused to write a frame (nothing was written).
    #[error("segment {segment}: {source}")]
    FrameWrite {
        /// The segment (a path, or a memory segment's label).
        segment: String,
        /// The codec's reason.
        #[source]
        source: FrameWriteError,
    },
    /// The bytes at an offset are not a valid frame.
    #[error("segment {segment}: {source}")]
    FrameRead {
        /// The segment (a path, or a memory segment's label).
        segment: String,
        /// The codec's reason.
        #[source]
        source: FrameReadError,
    },
    /// A write below the published end of a split segment: published bytes
    /// are read-only, since readers may be using them.
    #[error("segment {segment}: offset {offset} is below the published end {published}; published bytes are read-only")]
    BelowPublished {
        /// The segment (a path, or a memory segment's label).
        segment: String,
        /// The offset asked for.
        offset: u64,
        /// The published end.
        published: u64,
    },
    /// A byte range lies outside the segment.
    #[error("segment {segment}: range {start}..{end} is outside its {size} bytes")]
    OutOfRange {
        /// The segment (a path, or a memory segment's label).
        segment: String,
        /// Start of the range.
        start: u64,
        /// End of the range (exclusive).
        end: u64,
        /// The segment's size.
        size: u64,
    },
}

impl FsError {
    /// Wraps an OS error with its operation and path.
    pub fn io(op: FsOp, path: impl Into<PathBuf>, source: io::Error) -> FsError {
        FsError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// The failed operation, when the OS refused one.
    pub fn op(&self) -> Option<FsOp> {
        match self {
            FsError::Io { op, .. } => Some(*op),
            _ => None,
        }
    }

    /// The OS error code, when there is one.
    pub fn os_code(&self) -> Option<i32> {
        match self {
            FsError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether the OS said the disk (or the quota) is full: the core treats
    /// that differently from other I/O errors (backpressure, not a fault).
    pub fn is_no_space(&self) -> bool {
        match self {
            FsError::Io { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            ),
            _ => false,
        }
    }
}

impl FsError {
    /// The failure as the core's I/O-failure input: `NoSpace` for a full
    /// disk or quota, otherwise the OS error code when there is one. The
    /// path and operation stay in this error for the log line the adapter
    /// writes; the core's decision needs only the class.
    pub fn io_failure(&self) -> IoFailure {
        if self.is_no_space() {
            IoFailure::NoSpace
        } else {
            IoFailure::Io {
                os_code: self.os_code(),
            }
        }
    }
}

impl From<&FsError> for IoFailure {
    fn from(e: &FsError) -> IoFailure {
        e.io_failure()
    }
}

/// The core's outcome for an operation that returns nothing (create,
/// install header, unlink, persist watermark): `Done` or `Failed`.
pub fn io_outcome<T>(result: &Result<T, FsError>) -> IoOutcome {
    match result {
        Ok(_) => IoOutcome::Done,
        Err(e) => IoOutcome::Failed(e.io_failure()),
    }
}

/// The core's outcome for a sync: `Synced { upto_offset }` or `Failed`.
pub fn sync_outcome(result: &Result<u64, FsError>) -> IoOutcome {
    match result {
        Ok(upto_offset) => IoOutcome::Synced {
            upto_offset: *upto_offset,
        },
        Err(e) => IoOutcome::Failed(e.io_failure()),
    }
}

/// Who holds a slot lock, as far as `.lock.pid` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockHolder {
    /// `.lock.pid` names this process id.
    Pid(u32),
    /// `.lock.pid` is absent, empty or not a process id.
    Unknown,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockHolder::Pid(pid) => write!(f, "{pid}"),
            LockHolder::Unknown => f.write_str("unknown"),
        }
    }
}

/// Why the slot lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another engine holds the slot (C3).
    #[error("slot {} is in use by another sender (holder={holder}); one live engine per slot", slot.display())]
    Held {
        /// The slot directory.
        slot: PathBuf,
        /// The holder named by `.lock.pid`.
        holder: LockHolder,
    },
    /// The sender id cannot name a slot directory.
    #[error("sender_id {sender_id:?} cannot name a slot directory: {why}")]
    InvalidSenderId {
        /// The rejected id.
        sender_id: String,
        /// Why.
        why: &'static str,
    },
    /// The OS refused an operation while taking the lock.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Why a slot could not be opened for recovery (sf-client §18.1).
#[derive(Debug, thiserror::Error)]
pub enum SlotOpenError {
    /// The slot lock could not be taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Recovery refused the slot (S3); nothing on disk was changed.
    #[error("recovery of slot {} refused: {source}", slot.display())]
    Recovery {
        /// The slot directory.
        slot: PathBuf,
        /// The planner's reason.
        #[source]
        source: RecoveryError,
    },
}
