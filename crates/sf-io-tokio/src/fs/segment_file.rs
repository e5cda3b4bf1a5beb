//! Segment files `sf-<gen:016x>.sfa`: created at full size with their blocks
//! allocated, mapped read-write, pre-faulted off the producer's path, synced
//! for the local durability modes, and unlinked once acknowledged.
//!
//! # Creation (decision: no temporary name)
//!
//! [`SegmentFile::create`] creates the final name with `O_EXCL`
//! (`create_new`, so a generation collision is an error, never a clobber),
//! sets its length, then writes zeros over the whole file. Every state a crash
//! can leave is one recovery already understands: an empty file (skipped with
//! a warning, kept on disk, its generation still counted) or an all-zero file
//! of full size (a leftover spare). A temporary name plus `rename` would add a
//! directory operation and leave temporary files that recovery must then
//! learn to ignore, for no gain. The header is not written here: the core
//! writes it when it installs the spare as the active segment.
//!
//! Writing the zeros (rather than only `set_len`, which leaves a sparse file)
//! makes the file system allocate every block now, where `ENOSPC` is an
//! ordinary error the core can act on (S7). A store through a mapping into a
//! hole that cannot be allocated is a `SIGBUS` instead, which nothing can
//! handle.
//!
//! # Pre-faulting
//!
//! [`SegmentFile::prefault`] populates every page of the mapping writable, so
//! the producer's first store to each page is not a page fault (DESIGN §7:
//! 400–1200 ns per frame otherwise). On Linux ≥ 5.14 it uses
//! `madvise(MADV_POPULATE_WRITE)`, which reports failures as errors; elsewhere
//! (or when the kernel refuses the advice) it stores each page's first byte
//! back into it. It is a blocking call: the adapter runs it in a background
//! task ([`SegmentFile::create_spare_async`] does create + pre-fault through
//! `tokio::task::spawn_blocking`).
//!
//! # What each sync guarantees
//!
//! [`SegmentFile::sync_range`] calls `msync(MS_SYNC)` over the pages of the
//! range (`MmapMut::flush_range`, which widens the range to whole pages, so
//! a range that starts or ends inside a page syncs that whole page): the
//! dirty pages are written to the file and the call waits for the writes.
//! On Linux `msync(MS_SYNC)` is implemented as `fdatasync` of that byte range
//! (`vfs_fsync_range`), so it also flushes the device's write cache; on other
//! systems it is followed by `File::sync_data` for the same guarantee. The
//! first sync of a segment in a session also calls `File::sync_all` on a
//! fresh descriptor (the file's size and block map) and fsyncs the slot
//! directory (the file's name): synced bytes of a file whose name was never
//! made durable would vanish with it after a host crash. Durability of the
//! pages is all a sync claims; a process crash needs no sync at all (the
//! page cache survives it).
//!
//! # Soundness of the mapping
//!
//! Mapping a file is `unsafe` in memmap2 because another process could
//! truncate or modify the file while it is mapped. Here the slot lock
//! excludes every other engine from the slot directory for the mapping's
//! whole life, this process never truncates a mapped segment (its length is
//! fixed at creation), and all access goes through the one `MmapMut` owned by
//! the [`SegmentFile`], so Rust's borrow rules apply to its bytes. Another
//! tool writing into a locked slot (an operator's editor, say) breaks these
//! assumptions; the CRC of each frame is what catches such a change.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use memmap2::{MmapMut, MmapOptions};
use sf_core::ring::SegmentName;
use sf_core::segment::SEGMENT_HEADER_LEN;
use sf_core::SegmentGen;

use super::error::{FsError, FsOp};
use super::segment_buffer::SegmentBuffer;

/// Stride of the manual pre-fault: the smallest page size of the supported
/// platforms. On systems with larger pages it touches some pages more than
/// once, which is harmless.
const PREFAULT_STRIDE: usize = 4096;

/// Zero-fill chunk: large enough that creating a 4 MiB segment is 64 writes.
const ZERO_CHUNK: usize = 64 * 1024;

/// The path of segment `gen` in `slot_dir`.
pub fn segment_path(slot_dir: &Path, gen: SegmentGen) -> PathBuf {
    slot_dir.join(gen.file_name())
}

/// A mapped segment file. It holds the mapping but no file descriptor (the
/// descriptor is closed once the file is mapped), so a slot of thousands of
/// segments does not run into the process's open-file limit. Dropping it
/// unmaps the file; the file stays on disk until [`SegmentFile::unlink`].
#[derive(Debug)]
pub struct SegmentFile {
    path: PathBuf,
    gen: Option<SegmentGen>,
    map: MmapMut,
    /// Whether the file's size and its directory entry have been made
    /// durable in this session (done once, by the first sync).
    metadata_durable: AtomicBool,
}

impl SegmentFile {
    /// Creates segment `gen` in `slot_dir`: a new file of `size` bytes (at
    /// least a header's 24), all blocks allocated and zero, mapped
    /// read-write. Nothing is created for a size it refuses. Blocking. Not
    /// pre-faulted (see [`SegmentFile::create_spare`]). On failure the
    /// partial file, if any, is left for the core's follow-up unlink.
    pub fn create(slot_dir: &Path, gen: SegmentGen, size: u64) -> Result<SegmentFile, FsError> {
        let path = segment_path(slot_dir, gen);
        let len = checked_len(&path, size)?;
        if len < SEGMENT_HEADER_LEN {
            return Err(FsError::BadSegmentSize {
                segment: path.display().to_string(),
                size,
                why: "smaller than the 24-byte header",
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| FsError::io(FsOp::Create, &path, e))?;
        file.set_len(size)
            .map_err(|e| FsError::io(FsOp::SetLen, &path, e))?;
        zero_fill(&file, size).map_err(|e| FsError::io(FsOp::Write, &path, e))?;
        let map = map_file(&file, len).map_err(|e| FsError::io(FsOp::Map, &path, e))?;
        Ok(SegmentFile {
            path,
            gen: Some(gen),
            map,
            metadata_durable: AtomicBool::new(false),
        })
    }

    /// [`SegmentFile::create`] then [`SegmentFile::prefault`]: a spare the
    /// producer can write into without a page fault. Blocking: run it off
    /// the producer's path.
    pub fn create_spare(
        slot_dir: &Path,
        gen: SegmentGen,
        size: u64,
    ) -> Result<SegmentFile, FsError> {
        let mut seg = SegmentFile::create(slot_dir, gen, size)?;
        seg.prefault()?;
        Ok(seg)
    }

    /// [`SegmentFile::create_spare`] on tokio's blocking pool, so the I/O
    /// task and the producer never wait for it. Needs a tokio runtime.
    pub async fn create_spare_async(
        slot_dir: PathBuf,
        gen: SegmentGen,
        size: u64,
    ) -> Result<SegmentFile, FsError> {
        let path = segment_path(&slot_dir, gen);
        tokio::task::spawn_blocking(move || SegmentFile::create_spare(&slot_dir, gen, size))
            .await
            .unwrap_or_else(|join| {
                Err(FsError::io(
                    FsOp::Create,
                    path,
                    io::Error::other(format!("segment creation task failed: {join}")),
                ))
            })
    }

    /// Opens and maps an existing segment file read-write (recovery and
    /// replay). Its length is taken as it is; nothing is written.
    pub fn open_existing(path: &Path) -> Result<SegmentFile, FsError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| FsError::io(FsOp::Open, path, e))?;
        let size = file
            .metadata()
            .map_err(|e| FsError::io(FsOp::Stat, path, e))?
            .len();
        let len = checked_len(path, size)?;
        let map = map_file(&file, len).map_err(|e| FsError::io(FsOp::Map, path, e))?;
        let gen = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(SegmentGen::parse_file_name);
        Ok(SegmentFile {
            path: path.to_path_buf(),
            gen,
            map,
            metadata_durable: AtomicBool::new(false),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The generation in its name, `None` for the legacy `sf-initial.sfa`.
    pub fn gen(&self) -> Option<SegmentGen> {
        self.gen
    }

    /// Populates every page of the mapping writable (see the module doc).
    /// Blocking; the bytes are unchanged.
    pub fn prefault(&mut self) -> Result<(), FsError> {
        #[cfg(target_os = "linux")]
        {
            match self.map.advise(memmap2::Advice::PopulateWrite) {
                Ok(()) => return Ok(()),
                // EINVAL: a kernel older than 5.14; fall back to touching.
                Err(e) if e.raw_os_error() == Some(22) => {}
                Err(e) => return Err(FsError::io(FsOp::Prefault, &self.path, e)),
            }
        }
        touch_pages(&mut self.map);
        Ok(())
    }

    /// Makes bytes `[from, upto)` durable (see the module doc for what that
    /// means exactly) and returns `upto`, the offset below which every byte
    /// is now durable given that bytes below `from` already were. The first
    /// sync of a session also makes the file's size and name durable.
    pub fn sync_range(&self, from: u64, upto: u64) -> Result<u64, FsError> {
        let (start, len) = self.range(from, upto)?;
        if len > 0 {
            self.map
                .flush_range(start, len)
                .map_err(|e| FsError::io(FsOp::Msync, &self.path, e))?;
            #[cfg(not(target_os = "linux"))]
            OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|f| f.sync_data())
                .map_err(|e| FsError::io(FsOp::Fsync, &self.path, e))?;
        }
        self.make_metadata_durable()?;
        Ok(upto)
    }

    /// After a failed sync (L5): the kernel may have marked those pages
    /// clean, so a plain retry could "succeed" without writing them. Writes
    /// the range's bytes (read from the mapping) back into the file with
    /// `pwrite`, which marks the pages dirty again with unchanged contents,
    /// then syncs as [`SegmentFile::sync_range`] does.
    pub fn resync_range(&self, from: u64, upto: u64) -> Result<u64, FsError> {
        let (start, len) = self.range(from, upto)?;
        if let Some(bytes) = self.map.get(start..start + len) {
            rewrite(&self.path, from, bytes)?;
        }
        self.sync_range(from, upto)
    }

    /// The mapping's base pointer and length, for the split handles. The
    /// pointer stays valid while this value (moved or not) is alive.
    pub(super) fn raw_parts(&mut self) -> (*mut u8, usize) {
        (self.map.as_mut_ptr(), self.map.len())
    }

    /// Unmaps the file, then removes it. A file that is already gone counts
    /// as removed. On failure the mapping is gone but the file is not: retry
    /// with [`unlink_segment`] (the core keeps the segment accounted, S4).
    pub fn unlink(self) -> Result<(), FsError> {
        let SegmentFile { path, map, .. } = self;
        drop(map);
        remove_if_present(&path)
    }

    fn range(&self, from: u64, upto: u64) -> Result<(usize, usize), FsError> {
        let size = self.map.len() as u64;
        if from > upto || upto > size {
            return Err(FsError::OutOfRange {
                segment: self.label(),
                start: from,
                end: upto,
                size,
            });
        }
        // Both fit usize: they are at most the mapping's length.
        Ok((from as usize, (upto - from) as usize))
    }

    fn make_metadata_durable(&self) -> Result<(), FsError> {
        if self.metadata_durable.load(Ordering::Acquire) {
            return Ok(());
        }
        // fsync works on the inode: a fresh descriptor flushes what was
        // written through the mapping. Reopening by path is safe under the
        // slot lock (nothing else renames or replaces segment files).
        File::open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(|e| FsError::io(FsOp::Fsync, &self.path, e))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        self.metadata_durable.store(true, Ordering::Release);
        Ok(())
    }
}

impl SegmentBuffer for SegmentFile {
    fn image(&self) -> &[u8] {
        &self.map
    }

    fn image_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    fn label(&self) -> String {
        self.path.display().to_string()
    }
}

/// Removes segment `name` from `slot_dir` without it being open here (the
/// core's `Unlink` after a failed creation, or the retry of a failed
/// unlink). A missing file counts as removed.
pub fn unlink_segment(slot_dir: &Path, name: SegmentName) -> Result<(), FsError> {
    remove_if_present(&slot_dir.join(name.file_name()))
}

/// Fsyncs a directory, making the names created or removed in it durable.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| FsError::io(FsOp::Fsync, dir, e))
}

/// Removes the file at `path`; a missing file counts as removed.
pub(super) fn unlink_path(path: &Path) -> Result<(), FsError> {
    remove_if_present(path)
}

fn remove_if_present(path: &Path) -> Result<(), FsError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(FsError::io(FsOp::Unlink, path, e)),
    }
}

fn checked_len(path: &Path, size: u64) -> Result<usize, FsError> {
    let bad = |why| FsError::BadSegmentSize {
        segment: path.display().to_string(),
        size,
        why,
    };
    usize::try_from(size).map_err(|_| bad("larger than the address space"))
}

fn zero_fill(file: &File, size: u64) -> io::Result<()> {
    static ZEROS: [u8; ZERO_CHUNK] = [0u8; ZERO_CHUNK];
    let mut at = 0u64;
    while at < size {
        let n = (size - at).min(ZERO_CHUNK as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

fn map_file(file: &File, len: usize) -> io::Result<MmapMut> {
    // SAFETY: the slot lock (held by the caller for the mapping's life)
    // excludes other engines from this file; this process never truncates a
    // mapped segment (the length is fixed at creation and unlink drops the
    // mapping first); every access goes through this one `MmapMut`, so the
    // borrow checker orders this process's reads and writes.
    unsafe { MmapOptions::new().len(len).map_mut(file) }
}

/// Stores each page's first byte back into it, making the page present and
/// writable in the page tables. `black_box` keeps the store from being
/// optimised away as a no-op.
fn touch_pages(bytes: &mut [u8]) {
    let mut at = 0;
    while let Some(b) = bytes.get_mut(at) {
        *b = std::hint::black_box(*b);
        at += PREFAULT_STRIDE;
    }
}

/// Writes `bytes` at `offset` of the file at `path` through a fresh
/// descriptor (L5: re-dirties pages whose earlier sync failed).
pub(super) fn rewrite(path: &Path, offset: u64, bytes: &[u8]) -> Result<(), FsError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.write_all_at(bytes, offset))
        .map_err(|e| FsError::io(FsOp::Write, path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefault_fallback_touch_keeps_every_byte() {
        // The manual path (kernels without MADV_POPULATE_WRITE) stores each
        // page's first byte back: contents, zero or not, must not change.
        let dir = tempfile::tempdir().unwrap();
        let mut seg = SegmentFile::create(dir.path(), SegmentGen(0), 5 * 4096 + 17).unwrap();
        for (i, b) in seg.map.iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        let before = seg.map.to_vec();
        touch_pages(&mut seg.map);
        assert_eq!(&seg.map[..], &before[..]);
        seg.prefault().unwrap();
        assert_eq!(&seg.map[..], &before[..]);
    }
}
