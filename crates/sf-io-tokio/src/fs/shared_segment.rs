//! A segment split between the producer and the I/O task: one
//! [`SegmentWriter`] appends and publishes, any number of [`SegmentReader`]s
//! read published frames, sync and unlink — concurrently, without a lock,
//! so a 150 µs fsync on the I/O side never stalls an append (DESIGN §7).
//!
//! # The discipline that makes it sound
//!
//! The segment's bytes are split at the *published end* `p` (sf-client §6.3
//! step 7): the writer alone touches `[p, len)`, readers only ever form
//! references to `[0, p)`. Only the writer moves `p`, only forward, with a
//! release store after its writes; readers load it with acquire, so every
//! byte below the `p` they see is fully written and will never be written
//! again. The two regions never overlap, so a writer's `&mut` and a reader's
//! `&` never alias. The writer is unique (not `Clone`, `&mut self` methods).
//! Syncs go to the kernel (`msync`, `fsync`, `pwrite` of published bytes)
//! and never create a reference to the writer's region.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use sf_core::segment::{
    read_frame, write_frame, FrameWriteError, SegmentHeader, SEGMENT_HEADER_LEN,
};
use sf_core::SegmentGen;

use super::error::FsError;
use super::memory_segment::{memory_label_of, MemorySegment};
use super::segment_file::{rewrite, SegmentFile};

/// Who owns the bytes behind the shared pointer.
enum Owner {
    /// A mapped file; the mapping lives as long as this value.
    File(SegmentFile),
    /// A memory segment's buffer, freed on drop.
    Memory(*mut [u8]),
}

struct Shared {
    owner: Owner,
    gen: Option<SegmentGen>,
    label: String,
    base: *mut u8,
    len: usize,
    published: AtomicUsize,
}

// SAFETY: `base` points into memory owned by `owner` (a mapping or a boxed
// slice) for `Shared`'s whole life, and every access through it follows the
// split discipline in the module doc (writer: `[published, len)` through the
// unique `SegmentWriter`; readers: `[0, published)`), which rules out data
// races between threads. `SegmentFile` itself is `Send + Sync`.
unsafe impl Send for Shared {}
// SAFETY: as for `Send`: shared access is read-only below the published end,
// and the published end is an atomic.
unsafe impl Sync for Shared {}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Owner::Memory(raw) = self.owner {
            // SAFETY: `raw` came from `Box::into_raw` in `split_memory`, is
            // freed only here, and no handle (hence no reference derived
            // from `base`) outlives `Shared`.
            drop(unsafe { Box::from_raw(raw) });
        }
    }
}

impl Shared {
    fn new(
        owner: Owner,
        gen: Option<SegmentGen>,
        label: String,
        base: *mut u8,
        len: usize,
        published: u64,
    ) -> Result<Shared, FsError> {
        let published = usize::try_from(published)
            .ok()
            .filter(|&p| p <= len)
            .ok_or_else(|| FsError::OutOfRange {
                segment: label.clone(),
                start: published,
                end: published,
                size: len as u64,
            });
        let shared = |published| Shared {
            owner,
            gen,
            label,
            base,
            len,
            published: AtomicUsize::new(published),
        };
        match published {
            Ok(p) => Ok(shared(p)),
            Err(e) => {
                // Build then drop, so a memory buffer is freed on error too.
                drop(shared(0));
                Err(e)
            }
        }
    }

    fn published_bytes(&self) -> &[u8] {
        let p = self.published.load(Ordering::Acquire);
        // SAFETY: `[0, p)` lies inside the allocation (`p <= len`, checked
        // when stored); the writer released it and never writes below its
        // published end again, so no `&mut` to these bytes exists or will
        // exist while this borrow of `self` lives.
        unsafe { std::slice::from_raw_parts(self.base, p) }
    }

    fn check_published(&self, from: u64, upto: u64) -> Result<(), FsError> {
        let p = self.published.load(Ordering::Acquire) as u64;
        if from > upto || upto > p {
            return Err(FsError::OutOfRange {
                segment: self.label.clone(),
                start: from,
                end: upto,
                size: p,
            });
        }
        Ok(())
    }
}

impl SegmentFile {
    /// Splits this segment into its writer and a reader, with `published`
    /// bytes already published (0 for a fresh spare; the recovered
    /// `append_offset` for a recovered segment). Fails when `published`
    /// exceeds the segment.
    pub fn into_split(mut self, published: u64) -> Result<(SegmentWriter, SegmentReader), FsError> {
        let (base, len) = self.raw_parts();
        let gen = self.gen();
        let label = self.path().display().to_string();
        split(Shared::new(
            Owner::File(self),
            gen,
            label,
            base,
            len,
            published,
        )?)
    }
}

impl MemorySegment {
    /// Splits this segment into its writer and a reader (see
    /// [`SegmentFile::into_split`]).
    pub fn into_split(self, published: u64) -> Result<(SegmentWriter, SegmentReader), FsError> {
        let (gen, raw) = self.into_raw();
        let base = raw as *mut u8;
        let len = raw.len();
        split(Shared::new(
            Owner::Memory(raw),
            Some(gen),
            memory_label_of(gen),
            base,
            len,
            published,
        )?)
    }
}

fn split(shared: Shared) -> Result<(SegmentWriter, SegmentReader), FsError> {
    let published = shared.published.load(Ordering::Relaxed);
    let shared = Arc::new(shared);
    Ok((
        SegmentWriter {
            shared: Arc::clone(&shared),
            published,
        },
        SegmentReader { shared },
    ))
}

/// The producer's half: writes the header and frames above the published
/// end, then publishes them. Unique per segment.
pub struct SegmentWriter {
    shared: Arc<Shared>,
    /// This writer's copy of the published end (it is the only one that
    /// moves it).
    published: usize,
}

impl std::fmt::Debug for SegmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentWriter")
            .field("segment", &self.shared.label)
            .field("published", &self.published)
            .finish()
    }
}

impl SegmentWriter {
    /// The bytes `[published, len)`, which only this writer touches.
    fn tail(&mut self) -> &mut [u8] {
        // SAFETY: `published <= len`, so the range is inside the allocation.
        // Readers form references only below the published end, which only
        // this (unique, `&mut self`) writer moves; so nothing else
        // references `[published, len)` while this borrow lives.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.shared.base.add(self.published),
                self.shared.len - self.published,
            )
        }
    }

    fn below_published(&self, offset: u64) -> FsError {
        FsError::BelowPublished {
            segment: self.shared.label.clone(),
            offset,
            published: self.published as u64,
        }
    }

    /// Writes the 24-byte header (install time) and publishes it: a header
    /// is final once written, and publishing it lets a sync cover it even
    /// before the first frame. Only before anything is published.
    pub fn write_header(&mut self, header: &SegmentHeader) -> Result<(), FsError> {
        if self.published != 0 {
            return Err(self.below_published(0));
        }
        let size = self.shared.len as u64;
        let label = self.shared.label.clone();
        let Some(dst) = self.tail().get_mut(..SEGMENT_HEADER_LEN) else {
            return Err(FsError::OutOfRange {
                segment: label,
                start: 0,
                end: SEGMENT_HEADER_LEN as u64,
                size,
            });
        };
        dst.copy_from_slice(&header.encode());
        self.publish(SEGMENT_HEADER_LEN as u64)
    }

    /// Writes a frame at `offset` (at or above the published end) and
    /// returns the offset past it; readers see it after
    /// [`SegmentWriter::publish`]. A frame that does not fit writes nothing.
    pub fn write_frame(&mut self, offset: u64, payload: &[u8]) -> Result<u64, FsError> {
        let published = self.published as u64;
        if offset < published {
            return Err(self.below_published(offset));
        }
        let rel = usize::try_from(offset - published).unwrap_or(usize::MAX);
        let len = self.shared.len;
        match write_frame(self.tail(), rel, payload) {
            Ok(end) => Ok(published + end as u64),
            Err(e) => {
                let source = match e {
                    FrameWriteError::DoesNotFit { frame_len, .. } => FrameWriteError::DoesNotFit {
                        offset: usize::try_from(offset).unwrap_or(usize::MAX),
                        frame_len,
                        buf_len: len,
                    },
                    other => other,
                };
                Err(FsError::FrameWrite {
                    segment: self.shared.label.clone(),
                    source,
                })
            }
        }
    }

    /// Publishes bytes up to `end` (release store, sf-client §6.3 step 7).
    /// `end` may not go backwards or past the segment.
    pub fn publish(&mut self, end: u64) -> Result<(), FsError> {
        let Some(end) = usize::try_from(end)
            .ok()
            .filter(|&e| e >= self.published && e <= self.shared.len)
        else {
            return Err(FsError::OutOfRange {
                segment: self.shared.label.clone(),
                start: self.published as u64,
                end,
                size: self.shared.len as u64,
            });
        };
        self.published = end;
        self.shared.published.store(end, Ordering::Release);
        Ok(())
    }

    /// The published end.
    pub fn published(&self) -> u64 {
        self.published as u64
    }

    /// Another reader of this segment.
    pub fn reader(&self) -> SegmentReader {
        SegmentReader {
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The I/O task's half: reads published frames, syncs published ranges,
/// unlinks. Cheap to clone.
#[derive(Clone)]
pub struct SegmentReader {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader")
            .field("segment", &self.shared.label)
            .field("published", &self.published())
            .finish()
    }
}

impl SegmentReader {
    /// The published end (acquire load).
    pub fn published(&self) -> u64 {
        self.shared.published.load(Ordering::Acquire) as u64
    }

    /// The published bytes `[0, published)`.
    pub fn published_bytes(&self) -> &[u8] {
        self.shared.published_bytes()
    }

    /// Verifies the published frame at `offset` and returns its payload.
    pub fn read_frame(&self, offset: u64) -> Result<&[u8], FsError> {
        read_frame(self.published_bytes(), offset).map_err(|source| FsError::FrameRead {
            segment: self.shared.label.clone(),
            source,
        })
    }

    /// Makes published bytes `[from, upto)` durable, as
    /// [`SegmentFile::sync_range`]; memory segments have nothing to sync.
    pub fn sync_range(&self, from: u64, upto: u64) -> Result<u64, FsError> {
        self.shared.check_published(from, upto)?;
        match &self.shared.owner {
            Owner::File(seg) => seg.sync_range(from, upto),
            Owner::Memory(_) => Ok(upto),
        }
    }

    /// After a failed sync (L5): rewrites published bytes `[from, upto)`
    /// into the file, then syncs, as [`SegmentFile::resync_range`].
    pub fn resync_range(&self, from: u64, upto: u64) -> Result<u64, FsError> {
        self.shared.check_published(from, upto)?;
        if let Owner::File(seg) = &self.shared.owner {
            // Both fit usize: they are at most the published end.
            if let Some(bytes) = self.published_bytes().get(from as usize..upto as usize) {
                rewrite(seg.path(), from, bytes)?;
            }
        }
        self.sync_range(from, upto)
    }

    /// The file's path (`None` for a memory segment).
    pub fn path(&self) -> Option<&Path> {
        match &self.shared.owner {
            Owner::File(seg) => Some(seg.path()),
            Owner::Memory(_) => None,
        }
    }

    /// The segment's generation (`None` for the legacy `sf-initial.sfa`).
    pub fn gen(&self) -> Option<SegmentGen> {
        self.shared.gen
    }

    /// Removes the file (a memory segment is freed when its last handle
    /// drops). Other handles still alive keep their mapping, now nameless,
    /// valid until they drop (Unix semantics); the core unlinks only after
    /// every frame is acknowledged (S4), so nothing reads it any more.
    pub fn unlink(self) -> Result<(), FsError> {
        match &self.shared.owner {
            Owner::File(seg) => super::segment_file::unlink_path(seg.path()),
            Owner::Memory(_) => Ok(()),
        }
    }
}
