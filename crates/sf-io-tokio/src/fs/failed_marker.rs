//! The `.failed` sentinel (sf-client §5.2): a drainer that gives up on a slot
//! writes a UTF-8 reason into it before releasing the lock; its *presence*
//! excludes the slot from auto-drain until an operator removes it.

use std::io::{self, Write};
use std::path::Path;

use super::error::{FsError, FsOp};
use super::lock::SlotLock;
use super::segment_file::sync_dir;

/// The sentinel's name inside the slot directory (the one the orphan scan
/// rule in `sf-core` looks for).
pub const FAILED_FILE_NAME: &str = sf_core::orphans::FAILED_MARKER;

/// Writes `.failed` with `reason` into the locked slot (overwriting an
/// older one). Taking the [`SlotLock`] proves the caller owns the slot, and
/// the spec requires the sentinel to exist before the lock is released.
///
/// The file and the slot directory are synced before this returns: a
/// sentinel lost to a host crash would let the next start adopt the slot
/// and give it up all over again.
pub fn write_failed_marker(lock: &SlotLock, reason: &str) -> Result<(), FsError> {
    let path = lock.slot_dir().join(FAILED_FILE_NAME);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| FsError::io(FsOp::Create, &path, e))?;
    file.write_all(reason.as_bytes())
        .map_err(|e| FsError::io(FsOp::Write, &path, e))?;
    file.sync_all()
        .map_err(|e| FsError::io(FsOp::Fsync, &path, e))?;
    sync_dir(lock.slot_dir())
}

/// Whether `slot_dir` holds a `.failed` sentinel. Any error other than "not
/// found" is reported, never taken as absence: an orphan scanner must not
/// drain a slot whose sentinel it could not check.
pub fn has_failed_marker(slot_dir: &Path) -> Result<bool, FsError> {
    let path = slot_dir.join(FAILED_FILE_NAME);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(FsError::io(FsOp::Stat, &path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_marker_presence_is_the_signal() {
        let sf = tempfile::tempdir().unwrap();
        let lock = SlotLock::acquire(sf.path(), "s").unwrap();
        assert!(!has_failed_marker(lock.slot_dir()).unwrap());
        write_failed_marker(&lock, "reconnect budget exhausted").unwrap();
        assert!(has_failed_marker(lock.slot_dir()).unwrap());
        assert_eq!(
            std::fs::read_to_string(lock.slot_dir().join(FAILED_FILE_NAME)).unwrap(),
            "reconnect budget exhausted"
        );
        // Presence, not contents: an empty sentinel still counts.
        std::fs::write(lock.slot_dir().join(FAILED_FILE_NAME), b"").unwrap();
        assert!(has_failed_marker(lock.slot_dir()).unwrap());
    }

    #[test]
    fn failed_marker_check_that_cannot_stat_is_an_error_not_absence() {
        let sf = tempfile::tempdir().unwrap();
        // A regular file where the slot directory should be: ENOTDIR.
        let not_a_dir = sf.path().join("s");
        std::fs::write(&not_a_dir, b"x").unwrap();
        let err = has_failed_marker(&not_a_dir).unwrap_err();
        assert_eq!(err.op(), Some(FsOp::Stat));
    }
}
