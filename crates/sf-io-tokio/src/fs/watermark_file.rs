//! The `.ack-watermark` file (sf-client §5.4): 16 bytes recording the
//! highest acknowledged FSN, so a restart does not replay frames the server
//! already confirmed inside the lowest surviving segment.
//!
//! # Decision: `pwrite`, not a mapping
//!
//! The spec's reference keeps the 16 bytes mapped; we write them with
//! positioned writes. The bytes that reach the page cache, and their order,
//! are the same: the FSN first, then — on the first write of a session to a
//! file that was not already validly stamped — the magic. A persist happens
//! at most once per acknowledgement batch (the core asks only when the FSN
//! rises), so one ~1 µs syscall costs nothing that matters, and in exchange
//! there is no `unsafe` mapping and no `SIGBUS` if the file system cannot
//! back the page. The 16 bytes sit in one sector, so a host crash leaves
//! either the old or the new FSN, never a mix across sectors.
//!
//! No fsync by default (the spec's rule: a host crash falls back to the
//! segment-derived seed, which loses nothing); [`WatermarkFile::sync`] exists
//! for a caller that wants one.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sf_core::recovery::WatermarkRead;
use sf_core::watermark::{
    decode_watermark, encode_watermark, ACK_WATERMARK_FILE_NAME, ACK_WATERMARK_LEN,
};
use sf_core::Fsn;

use super::error::{FsError, FsOp};

/// The open `.ack-watermark` of a locked slot; the engine's single writer.
///
/// It writes exactly what the core asks: the core decides when the watermark
/// moves (debouncing, the rewrite at open, removal), the file only stores it.
#[derive(Debug)]
pub struct WatermarkFile {
    path: PathBuf,
    /// `None` after [`WatermarkFile::remove`]; the next persist recreates it.
    file: Option<File>,
    /// The file held a valid magic and reserved field when opened, or this
    /// session has stamped it: later writes store only the FSN.
    stamped: bool,
    /// The last FSN written in this session.
    last_persisted: Option<Fsn>,
}

impl WatermarkFile {
    /// Opens `.ack-watermark` in `slot_dir`, creating it (empty) when
    /// missing. Nothing is written until [`WatermarkFile::persist`].
    pub fn open(slot_dir: &Path) -> Result<WatermarkFile, FsError> {
        let path = slot_dir.join(ACK_WATERMARK_FILE_NAME);
        let file = open_rw(&path)?;
        let stamped = match read_exact_16(&file) {
            Ok(Some(bytes)) => decode_watermark(&bytes).is_ok(),
            Ok(None) => false,
            Err(e) => return Err(FsError::io(FsOp::Read, &path, e)),
        };
        Ok(WatermarkFile {
            path,
            file: Some(file),
            stamped,
            last_persisted: None,
        })
    }

    /// Stores `fsn` as the acknowledged watermark (sf-client §5.4).
    ///
    /// The FSN is stored first; on the first write to a file that was not
    /// validly stamped at open, the length is fixed at 16 bytes, the
    /// reserved field zeroed with the FSN, and the magic stored after them
    /// (step 2), so a reader never sees the magic over a stale FSN field.
    /// Whether to write, and which value, is the core's decision: a value
    /// below an earlier one is written too (the core lowers it at open when
    /// recovery judged the old one stale, S8).
    pub fn persist(&mut self, fsn: Fsn) -> Result<(), FsError> {
        let bytes = encode_watermark(fsn).map_err(|e| {
            FsError::io(
                FsOp::Write,
                &self.path,
                io::Error::new(io::ErrorKind::InvalidInput, e),
            )
        })?;
        if self.file.is_none() {
            self.file = Some(open_rw(&self.path)?);
            self.stamped = false;
        }
        let (file, path) = (self.file.as_ref().expect("opened above"), &self.path);
        let write = |buf: &[u8], at: u64| {
            file.write_all_at(buf, at)
                .map_err(|e| FsError::io(FsOp::Write, path, e))
        };
        if self.stamped {
            write(&bytes[8..16], 8)?;
        } else {
            file.set_len(ACK_WATERMARK_LEN as u64)
                .map_err(|e| FsError::io(FsOp::SetLen, path, e))?;
            write(&bytes[4..16], 4)?;
            write(&bytes[0..4], 0)?;
            self.stamped = true;
        }
        self.last_persisted = Some(fsn);
        Ok(())
    }

    /// Removes `.ack-watermark` (sf-client §5.4 allows it); a missing file
    /// counts as success. The next [`WatermarkFile::persist`] recreates it.
    pub fn remove(&mut self) -> Result<(), FsError> {
        self.file = None;
        self.stamped = false;
        self.last_persisted = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(FsError::io(FsOp::Unlink, &self.path, e)),
        }
    }

    /// The last FSN written in this session.
    pub fn last_persisted(&self) -> Option<Fsn> {
        self.last_persisted
    }

    /// Fsyncs the file (optional; the spec does not require it).
    pub fn sync(&self) -> Result<(), FsError> {
        match &self.file {
            Some(file) => file
                .sync_data()
                .map_err(|e| FsError::io(FsOp::Fsync, &self.path, e)),
            None => Ok(()),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_rw(path: &Path) -> Result<File, FsError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| FsError::io(FsOp::Open, path, e))
}

/// Reads `.ack-watermark` of `slot_dir` for recovery without creating or
/// changing it. Reads at most one byte more than the format's 16, so a huge
/// file costs nothing and is still reported as the wrong size.
pub fn read_watermark(slot_dir: &Path) -> WatermarkRead {
    let path = slot_dir.join(ACK_WATERMARK_FILE_NAME);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return WatermarkRead::Absent,
        Err(e) => return WatermarkRead::Failed(FsError::io(FsOp::Open, &path, e).to_string()),
    };
    let mut bytes = Vec::with_capacity(ACK_WATERMARK_LEN + 1);
    match io::Read::read_to_end(
        &mut io::Read::take(file, ACK_WATERMARK_LEN as u64 + 1),
        &mut bytes,
    ) {
        Ok(_) => WatermarkRead::Bytes(bytes),
        Err(e) => WatermarkRead::Failed(FsError::io(FsOp::Read, &path, e).to_string()),
    }
}

/// The file's first 16 bytes when it is exactly 16 bytes long.
fn read_exact_16(file: &File) -> io::Result<Option<[u8; ACK_WATERMARK_LEN]>> {
    if file.metadata()?.len() != ACK_WATERMARK_LEN as u64 {
        return Ok(None);
    }
    let mut buf = [0u8; ACK_WATERMARK_LEN];
    file.read_exact_at(&mut buf, 0)?;
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_core::watermark::WatermarkError;

    fn on_disk(dir: &Path) -> Vec<u8> {
        std::fs::read(dir.join(ACK_WATERMARK_FILE_NAME)).unwrap()
    }

    #[test]
    fn s8_persisted_watermark_stores_exactly_what_the_core_asks() {
        let dir = tempfile::tempdir().unwrap();
        let mut wm = WatermarkFile::open(dir.path()).unwrap();
        assert_eq!(on_disk(dir.path()).len(), 0, "open writes nothing");
        wm.persist(Fsn(5)).unwrap();
        assert_eq!(decode_watermark(&on_disk(dir.path())), Ok(Fsn(5)));
        // No debounce here: the core decides, a lower value is written too.
        wm.persist(Fsn(3)).unwrap();
        assert_eq!(decode_watermark(&on_disk(dir.path())), Ok(Fsn(3)));
        wm.persist(Fsn(9)).unwrap();
        assert_eq!(wm.last_persisted(), Some(Fsn(9)));
        assert_eq!(decode_watermark(&on_disk(dir.path())), Ok(Fsn(9)));
        wm.sync().unwrap();
    }

    #[test]
    fn s8_remove_deletes_the_file_and_persist_recreates_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut wm = WatermarkFile::open(dir.path()).unwrap();
        wm.persist(Fsn(4)).unwrap();
        wm.remove().unwrap();
        assert_eq!(read_watermark(dir.path()), WatermarkRead::Absent);
        // Removing twice is fine: a missing file counts as success.
        wm.remove().unwrap();
        wm.sync().unwrap();
        wm.persist(Fsn(1)).unwrap();
        assert_eq!(decode_watermark(&on_disk(dir.path())), Ok(Fsn(1)));
    }

    #[test]
    fn s8_reopen_of_stamped_file_stores_only_the_fsn() {
        let dir = tempfile::tempdir().unwrap();
        WatermarkFile::open(dir.path())
            .unwrap()
            .persist(Fsn(100))
            .unwrap();
        let mut wm = WatermarkFile::open(dir.path()).unwrap();
        assert!(wm.stamped);
        // A previous session's value is no floor: recovery may have judged
        // it corrupt (S8), so a lower FSN is written.
        wm.persist(Fsn(40)).unwrap();
        assert_eq!(decode_watermark(&on_disk(dir.path())), Ok(Fsn(40)));
    }

    #[test]
    fn s8_garbage_file_is_restamped_whole_on_first_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ACK_WATERMARK_FILE_NAME);
        std::fs::write(&path, [0xEEu8; 40]).unwrap();
        assert!(matches!(
            read_watermark(dir.path()),
            WatermarkRead::Bytes(b) if b.len() == 17
        ));
        let mut wm = WatermarkFile::open(dir.path()).unwrap();
        assert!(!wm.stamped);
        wm.persist(Fsn(7)).unwrap();
        assert_eq!(decode_watermark(&on_disk(dir.path())), Ok(Fsn(7)));

        // Right size, valid magic, non-zero reserved: not stamped either, so
        // the first write zeroes the reserved field too.
        let mut bad = encode_watermark(Fsn(1)).unwrap();
        bad[5] = 1;
        std::fs::write(&path, bad).unwrap();
        assert_eq!(
            decode_watermark(&on_disk(dir.path())),
            Err(WatermarkError::NonZeroReserved { found: 0x100 })
        );
        let mut wm = WatermarkFile::open(dir.path()).unwrap();
        wm.persist(Fsn(2)).unwrap();
        assert_eq!(decode_watermark(&on_disk(dir.path())), Ok(Fsn(2)));
    }

    #[test]
    fn read_watermark_absent_and_present() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_watermark(dir.path()), WatermarkRead::Absent);
        let mut wm = WatermarkFile::open(dir.path()).unwrap();
        wm.persist(Fsn(0)).unwrap();
        assert_eq!(
            read_watermark(dir.path()),
            WatermarkRead::Bytes(encode_watermark(Fsn(0)).unwrap().to_vec())
        );
    }

    #[test]
    fn read_watermark_of_a_directory_is_a_failure_value() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(ACK_WATERMARK_FILE_NAME)).unwrap();
        match read_watermark(dir.path()) {
            WatermarkRead::Failed(msg) => assert!(msg.contains(".ack-watermark"), "{msg}"),
            other => panic!("expected a failure, got {other:?}"),
        }
    }
}
