//! The slot on disk: the slot lock, segment files (created zero-filled at full
//! size, mapped, pre-faulted), syncs, unlinks, the `.ack-watermark` file, and
//! the directory listing and reads that feed `sf_core::recovery`.
//!
//! Everything here is blocking `std::fs` and memory-mapped I/O; the adapter
//! runs the slow calls (creating and pre-faulting a spare, syncing, unlinking,
//! opening a slot) on tokio's blocking pool, and the producer only ever calls
//! the [`SegmentBuffer`] writes, which touch memory and make no syscall.
//!
//! | core request | call |
//! |---|---|
//! | create segment `gen` of `size` | [`SegmentFile::create_spare`] / [`SegmentFile::create_spare_async`] ([`MemorySegment::new`] without `sf_dir`) |
//! | install header | [`SegmentBuffer::write_header`] |
//! | place a frame | [`SegmentBuffer::write_frame`] |
//! | sync `[from, upto)` | [`SegmentFile::sync_range`], or [`SegmentFile::resync_range`] after a failed sync (L5) |
//! | unlink | [`SegmentFile::unlink`], or [`unlink_segment`] for a name not open |
//! | persist ack watermark | [`WatermarkFile::persist`] |
//! | recovery at open | [`open_slot`], or [`SlotLock::acquire_existing_dir`] then [`recover_slot`] (a refusal keeps the lock) |
//! | report an outcome | [`io_outcome`], [`sync_outcome`], [`FsError::io_failure`] |
//!
//! With a producer thread and an I/O task sharing a segment, split it
//! ([`SegmentFile::into_split`], [`MemorySegment::into_split`]): the
//! producer's [`SegmentWriter`] writes and publishes, the I/O task's
//! [`SegmentReader`]s read published frames, sync and unlink, lock-free.

mod error;
mod failed_marker;
pub mod inspect;
mod lock;
mod memory_segment;
mod segment_buffer;
mod segment_file;
mod shared_segment;
mod slot;
mod watermark_file;

pub use error::{io_outcome, sync_outcome, FsError, FsOp, LockError, LockHolder, SlotOpenError};
pub use failed_marker::{has_failed_marker, write_failed_marker, FAILED_FILE_NAME};
pub use inspect::{inspect_slot, read_segment_image, InspectedSegment, SlotInspection};
pub use lock::{lock_holder, read_holder, LockProbe, SlotLock, LOCK_FILE_NAME, LOCK_PID_FILE_NAME};
pub use memory_segment::MemorySegment;
pub use segment_buffer::SegmentBuffer;
pub use segment_file::{segment_path, sync_dir, unlink_segment, SegmentFile};
pub use shared_segment::{SegmentReader, SegmentWriter};
pub use slot::{
    list_slot, open_slot, open_slot_dir, recover_slot, OpenedSegments, OpenedSlot, RefusedSlot,
};
pub use watermark_file::{read_watermark, WatermarkFile};
