//! The slot on disk: the slot lock, segment files (created zero-filled at full
//! size, mapped, pre-faulted), syncs, unlinks, the `.ack-watermark` file, and
//! the directory listing and reads that feed `sf_core::recovery`.
