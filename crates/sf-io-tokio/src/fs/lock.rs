//! The slot lock (sf-client §5.1, C3): `<sf_dir>/<sender_id>/.lock` held
//! under an advisory exclusive lock for the engine's life, with the holder's
//! PID in `.lock.pid` for the error a second opener gets.
//!
//! The lock is the standard library's `File::try_lock` (`flock(LOCK_EX |
//! LOCK_NB)` on Unix, `LockFileEx` on Windows). It belongs to the open file
//! description, so a second `SlotLock` on the same slot fails even inside
//! one process, and the kernel releases it when the descriptor closes —
//! including when the process is killed.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::{FsError, FsOp, LockError, LockHolder};

/// The lock file's name inside the slot directory.
pub const LOCK_FILE_NAME: &str = ".lock";
/// The holder-PID file's name inside the slot directory.
pub const LOCK_PID_FILE_NAME: &str = ".lock.pid";

/// The exclusive lock on one slot directory. Released when dropped;
/// `.lock` and `.lock.pid` are never deleted (stale files are harmless and
/// overwritten by the next holder).
#[derive(Debug)]
pub struct SlotLock {
    slot_dir: PathBuf,
    // Held only for its lock: closing the descriptor releases it.
    _file: File,
}

impl SlotLock {
    /// Locks slot `<sf_dir>/<sender_id>/`, creating both directories when
    /// missing, and records this process's PID in `.lock.pid`. Fails with
    /// [`LockError::Held`] naming the holder when another engine has it.
    pub fn acquire(sf_dir: &Path, sender_id: &str) -> Result<SlotLock, LockError> {
        check_sender_id(sender_id)?;
        SlotLock::acquire_dir(&sf_dir.join(sender_id))
    }

    /// Locks the slot directory `slot_dir` itself (created when missing).
    pub fn acquire_dir(slot_dir: &Path) -> Result<SlotLock, LockError> {
        std::fs::create_dir_all(slot_dir).map_err(|e| FsError::io(FsOp::Create, slot_dir, e))?;
        let lock_path = slot_dir.join(LOCK_FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| FsError::io(FsOp::Create, &lock_path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held {
                    slot: slot_dir.to_path_buf(),
                    holder: read_holder(slot_dir),
                })
            }
            Err(TryLockError::Error(e)) => {
                return Err(FsError::io(FsOp::Lock, &lock_path, e).into())
            }
        }
        write_pid(slot_dir)?;
        Ok(SlotLock {
            slot_dir: slot_dir.to_path_buf(),
            _file: file,
        })
    }

    /// Locks the existing slot directory `slot_dir`; unlike
    /// [`SlotLock::acquire_dir`] it never creates it, so a slot an operator
    /// deleted after a scan listed it is not brought back (an orphan
    /// drainer locks slots it did not create). A missing directory is an
    /// [`FsOp::Open`] error.
    pub fn acquire_existing_dir(slot_dir: &Path) -> Result<SlotLock, LockError> {
        match std::fs::symlink_metadata(slot_dir) {
            Ok(m) if m.is_dir() => SlotLock::acquire_dir(slot_dir),
            Ok(_) => Err(FsError::io(
                FsOp::Open,
                slot_dir,
                io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
            )
            .into()),
            Err(e) => Err(FsError::io(FsOp::Open, slot_dir, e).into()),
        }
    }

    /// The locked slot directory.
    pub fn slot_dir(&self) -> &Path {
        &self.slot_dir
    }
}

/// What a read-only probe of a slot's lock found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockProbe {
    /// No `.lock` file: no engine has ever opened the slot.
    NeverLocked,
    /// Nobody holds the lock now.
    Free,
    /// A live engine holds it; `.lock.pid` names this holder.
    Held(LockHolder),
}

/// Probes the lock of `slot_dir` for tools such as `inspect`, without
/// writing anything: it never creates `.lock`, never writes `.lock.pid`, and
/// never holds a lock a live engine could be waiting for.
///
/// How: it opens `.lock` read-only and tries a *shared* lock without
/// blocking. An engine holding the exclusive lock makes that fail
/// (`Held`, with the PID from `.lock.pid`); it is not disturbed, since a
/// failed try takes nothing. When the try succeeds the shared lock is
/// released at once. The one side effect: an engine that calls
/// [`SlotLock::acquire`] in the microseconds the probe holds the shared
/// lock fails as if the slot were in use (naming the previous holder's PID);
/// starting it again succeeds. A probe never makes a live engine fail.
pub fn lock_holder(slot_dir: &Path) -> Result<LockProbe, FsError> {
    let lock_path = slot_dir.join(LOCK_FILE_NAME);
    let file = match File::open(&lock_path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LockProbe::NeverLocked),
        Err(e) => return Err(FsError::io(FsOp::Open, &lock_path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => {
            file.unlock()
                .map_err(|e| FsError::io(FsOp::Lock, &lock_path, e))?;
            Ok(LockProbe::Free)
        }
        Err(TryLockError::WouldBlock) => Ok(LockProbe::Held(read_holder(slot_dir))),
        Err(TryLockError::Error(e)) => Err(FsError::io(FsOp::Lock, &lock_path, e)),
    }
}

/// The holder named by `.lock.pid`: a decimal PID, optionally followed by a
/// newline. Anything else (absent, empty, unreadable, garbage) is
/// [`LockHolder::Unknown`]: the file is diagnostic only.
pub fn read_holder(slot_dir: &Path) -> LockHolder {
    // `.lock.pid` is a PID and a newline; refuse to read more than a
    // generous bound of it, whatever the file's size.
    const MAX_PID_FILE: u64 = 64;
    let Ok(file) = File::open(slot_dir.join(LOCK_PID_FILE_NAME)) else {
        return LockHolder::Unknown;
    };
    let mut text = String::new();
    if io::Read::read_to_string(&mut io::Read::take(file, MAX_PID_FILE), &mut text).is_err() {
        return LockHolder::Unknown;
    }
    let digits = text.strip_suffix('\n').unwrap_or(&text);
    match digits.parse::<u32>() {
        Ok(pid) if !digits.starts_with('+') => LockHolder::Pid(pid),
        _ => LockHolder::Unknown,
    }
}

fn write_pid(slot_dir: &Path) -> Result<(), FsError> {
    let path = slot_dir.join(LOCK_PID_FILE_NAME);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| FsError::io(FsOp::Create, &path, e))?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(|e| FsError::io(FsOp::Write, &path, e))
}

/// A sender id names one directory under `sf_dir` (the connect string's
/// rule, applied again for callers that did not come through a `Config`).
fn check_sender_id(sender_id: &str) -> Result<(), LockError> {
    match sf_core::config::sender_id_problem(sender_id) {
        Some(why) => Err(LockError::InvalidSenderId {
            sender_id: sender_id.to_string(),
            why,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A drainer locks a slot the scan listed; one an operator deleted
    /// meanwhile must not come back as an empty directory.
    #[test]
    fn s18_2_acquire_existing_dir_never_recreates_a_deleted_slot() {
        let sf = tempfile::tempdir().unwrap();
        let slot = sf.path().join("gone");
        let err = SlotLock::acquire_existing_dir(&slot).unwrap_err();
        assert!(matches!(err, LockError::Fs(_)), "{err:?}");
        assert!(!slot.exists(), "not recreated");
        std::fs::create_dir(&slot).unwrap();
        let lock = SlotLock::acquire_existing_dir(&slot).unwrap();
        assert!(matches!(
            SlotLock::acquire_existing_dir(&slot),
            Err(LockError::Held { .. })
        ));
        drop(lock);
        std::fs::write(sf.path().join("file"), b"x").unwrap();
        assert!(SlotLock::acquire_existing_dir(&sf.path().join("file")).is_err());
    }
}
