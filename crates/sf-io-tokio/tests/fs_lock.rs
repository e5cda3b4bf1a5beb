//! The slot lock (sf-client §5.1, C3): one live engine per slot, the holder
//! named by `.lock.pid`, and kernel release when the holder dies.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};

use sf_io_tokio::fs::{
    lock_holder, LockError, LockHolder, LockProbe, SlotLock, LOCK_FILE_NAME, LOCK_PID_FILE_NAME,
};

const CHILD_SLOT_ENV: &str = "QWP_FS_LOCK_CHILD_SLOT";

fn held_by(err: LockError) -> LockHolder {
    match err {
        LockError::Held { holder, .. } => holder,
        other => panic!("expected a held lock, got {other}"),
    }
}

#[test]
fn c3_second_opener_fails_naming_this_pid_and_succeeds_after_drop() {
    let sf = tempfile::tempdir().unwrap();
    let sf_dir = sf.path().join("not-yet").join("root");
    let first = SlotLock::acquire(&sf_dir, "s1").unwrap();
    let slot = sf_dir.join("s1");
    assert_eq!(first.slot_dir(), slot);
    let pid = std::process::id();
    assert_eq!(
        std::fs::read_to_string(slot.join(LOCK_PID_FILE_NAME)).unwrap(),
        format!("{pid}\n")
    );

    let err = SlotLock::acquire(&sf_dir, "s1").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("holder={pid}")), "{msg}");
    assert!(msg.contains(&slot.display().to_string()), "{msg}");
    assert_eq!(held_by(err), LockHolder::Pid(pid));

    // Another slot under the same root is independent.
    let _other = SlotLock::acquire(&sf_dir, "s2").unwrap();

    drop(first);
    let again = SlotLock::acquire(&sf_dir, "s1").unwrap();
    drop(again);
    // Release never deletes the lock files.
    assert!(slot.join(LOCK_FILE_NAME).exists());
    assert!(slot.join(LOCK_PID_FILE_NAME).exists());
}

#[test]
fn c3_pid_file_garbage_empty_or_absent_reports_holder_unknown() {
    let sf = tempfile::tempdir().unwrap();
    let _held = SlotLock::acquire(sf.path(), "s").unwrap();
    let pid_file = sf.path().join("s").join(LOCK_PID_FILE_NAME);
    for content in [
        &b"not a pid\n"[..],
        b"",
        b"-5\n",
        b"+7\n",
        b"12 34\n",
        &[0xff; 200],
    ] {
        std::fs::write(&pid_file, content).unwrap();
        let err = SlotLock::acquire(sf.path(), "s").unwrap_err();
        assert!(err.to_string().contains("holder=unknown"), "{err}");
        assert_eq!(held_by(err), LockHolder::Unknown, "{content:?}");
    }
    std::fs::write(&pid_file, b"4242").unwrap();
    assert_eq!(
        held_by(SlotLock::acquire(sf.path(), "s").unwrap_err()),
        LockHolder::Pid(4242),
        "a PID without its newline is still read"
    );
    std::fs::remove_file(&pid_file).unwrap();
    assert_eq!(
        held_by(SlotLock::acquire(sf.path(), "s").unwrap_err()),
        LockHolder::Unknown
    );
}

#[test]
fn c3_stale_pid_file_is_overwritten_by_the_next_holder() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    std::fs::write(
        slot.join(LOCK_PID_FILE_NAME),
        b"99999999999 stale and long\n",
    )
    .unwrap();
    let _lock = SlotLock::acquire(sf.path(), "s").unwrap();
    assert_eq!(
        std::fs::read_to_string(slot.join(LOCK_PID_FILE_NAME)).unwrap(),
        format!("{}\n", std::process::id())
    );
}

#[test]
fn lock_probe_reads_without_taking_or_creating() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    std::fs::create_dir_all(&slot).unwrap();
    assert_eq!(lock_holder(&slot).unwrap(), LockProbe::NeverLocked);
    assert!(
        !slot.join(LOCK_FILE_NAME).exists(),
        "the probe created .lock"
    );

    let held = SlotLock::acquire(sf.path(), "s").unwrap();
    let pid = std::process::id();
    assert_eq!(
        lock_holder(&slot).unwrap(),
        LockProbe::Held(LockHolder::Pid(pid))
    );
    // The probe left the holder's lock and PID file alone.
    assert!(SlotLock::acquire(sf.path(), "s").is_err());
    assert_eq!(
        std::fs::read_to_string(slot.join(LOCK_PID_FILE_NAME)).unwrap(),
        format!("{pid}\n")
    );
    drop(held);
    assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free);
    // And a free probe leaves the slot acquirable.
    SlotLock::acquire(sf.path(), "s").unwrap();
}

#[test]
fn sender_id_that_is_not_one_directory_name_is_refused() {
    let sf = tempfile::tempdir().unwrap();
    for id in ["", "a/b", "..", ".", "a\\b", "a\0b"] {
        assert!(
            matches!(
                SlotLock::acquire(sf.path(), id),
                Err(LockError::InvalidSenderId { .. })
            ),
            "{id:?}"
        );
    }
    assert_eq!(std::fs::read_dir(sf.path()).unwrap().count(), 0);
}

#[test]
fn lock_on_a_slot_path_that_is_a_file_is_an_fs_error_with_context() {
    let sf = tempfile::tempdir().unwrap();
    std::fs::write(sf.path().join("s"), b"x").unwrap();
    let err = SlotLock::acquire(sf.path(), "s").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, LockError::Fs(_)), "{msg}");
    assert!(msg.starts_with("create "), "{msg}");
    assert!(
        msg.contains(&sf.path().join("s").display().to_string()),
        "{msg}"
    );
}

/// Child-process helper for `c3_lock_of_a_killed_holder_is_released_by_the_kernel`:
/// takes the lock named by the environment, reports, then blocks on stdin
/// until killed. Ignored so that only the parent test runs it.
#[test]
#[ignore = "child-process helper, spawned by c3_lock_of_a_killed_holder_is_released_by_the_kernel"]
fn child_holds_slot_lock() {
    let Ok(slot) = std::env::var(CHILD_SLOT_ENV) else {
        return;
    };
    let _lock = SlotLock::acquire_dir(Path::new(&slot)).unwrap();
    println!("@@LOCKED {}", std::process::id());
    let mut sink = Vec::new();
    // Blocks until the parent closes stdin or kills us.
    let _ = std::io::stdin().read_to_end(&mut sink);
}

#[test]
fn c3_lock_of_a_killed_holder_is_released_by_the_kernel() {
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_holds_slot_lock",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_SLOT_ENV, &slot)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let reported = loop {
        let line = lines
            .next()
            .expect("child exited before taking the lock")
            .unwrap();
        if let Some(at) = line.find("@@LOCKED ") {
            break line[at + 9..].trim().parse::<u32>().unwrap();
        }
    };
    assert_eq!(reported, child_pid);

    let err = SlotLock::acquire_dir(&slot).unwrap_err();
    assert_eq!(held_by(err), LockHolder::Pid(child_pid));
    assert_eq!(
        lock_holder(&slot).unwrap(),
        LockProbe::Held(LockHolder::Pid(child_pid))
    );

    // SIGKILL: no destructor runs in the child; only the kernel can release.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success());

    let lock = SlotLock::acquire_dir(&slot).unwrap();
    assert_eq!(
        std::fs::read_to_string(slot.join(LOCK_PID_FILE_NAME)).unwrap(),
        format!("{}\n", std::process::id())
    );
    drop(lock);
}
