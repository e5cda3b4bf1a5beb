//! Orphan adoption end to end (sf-client §18.2, §5.2, §20) over real temp
//! directories and the reference server.

mod pool_support;

use pool_support::*;
use qwp_server::ServerConfig;
use sf_core::orphans::OwnSlots;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sf_io_tokio::fs::{
    lock_holder, write_failed_marker, LockHolder, LockProbe, SlotLock, FAILED_FILE_NAME,
};
use sf_io_tokio::orphan::scan;
use sf_io_tokio::{Sender, SenderBuilder};

fn foreground(
    conf: &str,
    listener: impl Fn(sf_io_tokio::DrainerEvent) + Send + Sync + 'static,
) -> Sender {
    SenderBuilder::from_conf(conf)
        .unwrap()
        .on_drainer_event(listener)
        .build()
        .unwrap()
}

/// §18.2: a sibling with unacknowledged frames is replayed on the
/// drainer's own connection, its lock released, its segments reclaimed
/// (a later scan finds nothing), and the counters say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_2_orphan_is_drained_to_completion_and_released() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 3);
    let srv = server(ServerConfig::local()).await;
    let (l, mut ev) = events();
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("started a", |e| is(e, "started", "a"));
    ev.wait("succeeded a", |e| is(e, "succeeded", "a"));
    srv.wait_for_rows(30, WAIT).await.unwrap();
    assert_eq!(server_ns(&srv, "ta"), (0..30).collect::<Vec<_>>());
    let c = fg.counters();
    assert_eq!(c.total_background_drainers_succeeded, 1);
    assert_eq!(c.total_background_drainers_failed, 0);
    assert_eq!(c.active_background_drainers, 0);
    let slot = sf.path().join("a");
    assert_eq!(
        lock_holder(&slot).unwrap(),
        LockProbe::Free,
        "lock released"
    );
    assert!(!slot.join(FAILED_FILE_NAME).exists());
    fg.close().unwrap();
}

/// §18.2 step 1: a slot whose lock is held by a live sender is skipped,
/// never opened, never marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_2_held_lock_is_skipped() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 1);
    let held = SlotLock::acquire(sf.path(), "a").unwrap();
    let srv = server(ServerConfig::local()).await;
    let (l, mut ev) = events();
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    let e = ev.wait("skipped a", |e| is(e, "skipped", "a"));
    match e {
        sf_io_tokio::DrainerEvent::Skipped { reason, .. } => {
            assert!(reason.contains(&std::process::id().to_string()), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!ev.drain().iter().any(|e| is(e, "started", "a")));
    let c = fg.counters();
    assert_eq!(
        (
            c.total_background_drainers_succeeded,
            c.total_background_drainers_failed
        ),
        (0, 0)
    );
    assert_eq!(srv.stats().rows, 0, "nothing of a was sent");
    assert!(!sf.path().join("a").join(FAILED_FILE_NAME).exists());
    assert!(has_segments(&sf.path().join("a")));
    drop(held);
    fg.close().unwrap();
}

/// §5.2: a slot with `.failed` is excluded (presence is the signal); the
/// next candidate in name order is drained, proving the scan passed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_2_failed_marker_is_respected() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 1);
    strand(sf.path(), "b", "tb", 1);
    {
        let lock = SlotLock::acquire(sf.path(), "a").unwrap();
        write_failed_marker(&lock, "operator test").unwrap();
    }
    let srv = server(ServerConfig::local()).await;
    let (l, mut ev) = events();
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;max_background_drainers=1;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("succeeded b", |e| is(e, "succeeded", "b"));
    srv.wait_for_rows(10, WAIT).await.unwrap();
    assert!(
        !ev.drain()
            .iter()
            .any(|e| slot_of(e).file_name().is_some_and(|n| n == "a")),
        "the failed slot was never touched: {:?}",
        ev.seen
    );
    assert!(server_ns(&srv, "ta").is_empty());
    assert!(has_segments(&sf.path().join("a")));
    fg.close().unwrap();
}

/// What the slot looked like when the listener got `Failed` for it:
/// the `.failed` text (if any) and the lock probe.
type SeenAtFailed = Arc<Mutex<Option<(Option<String>, LockProbe)>>>;

/// Wraps `l` so that, on `Failed` for `slot`, it records what `.failed`
/// and the lock were at that moment (the drainer's ordering, observed).
fn probe_at_failed(
    l: impl Fn(sf_io_tokio::DrainerEvent) + Send + Sync + 'static,
    slot: PathBuf,
) -> (
    impl Fn(sf_io_tokio::DrainerEvent) + Send + Sync + 'static,
    SeenAtFailed,
) {
    let seen: SeenAtFailed = Arc::default();
    let out = Arc::clone(&seen);
    let wrapped = move |e: sf_io_tokio::DrainerEvent| {
        if let sf_io_tokio::DrainerEvent::Failed { slot: s, .. } = &e {
            if *s == slot {
                let text = std::fs::read_to_string(slot.join(FAILED_FILE_NAME)).ok();
                let probe = lock_holder(&slot).unwrap();
                *out.lock().unwrap() = Some((text, probe));
            }
        }
        l(e);
    };
    (wrapped, seen)
}

/// Asserts that when `Failed` was seen, `.failed` held `reason` and this
/// process still held the slot lock (sf-client §5.2: the sentinel exists
/// before the lock is released).
fn assert_marked_under_lock(seen: &SeenAtFailed, reason: &str) {
    let seen = seen.lock().unwrap().clone();
    let (text, probe) = seen.expect("the listener saw Failed");
    assert_eq!(
        text.as_deref(),
        Some(reason),
        ".failed written before the event"
    );
    assert_eq!(
        probe,
        LockProbe::Held(LockHolder::Pid(std::process::id())),
        "the drainer still held the lock when it reported the give-up"
    );
}

/// §18.2: the drainer's reconnect budget runs out → `.failed` with a
/// readable reason, written before the lock is released; counted failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_2_budget_exhausted_writes_failed_before_release() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 1);
    let (l, mut ev) = events();
    let (l, seen) = probe_at_failed(l, sf.path().join("a"));
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;initial_connect_retry=async;\
             reconnect_max_duration_millis=300;reconnect_initial_backoff_millis=10;\
             reconnect_max_backoff_millis=20;close_flush_timeout_millis=0;",
            dead_addr(),
            sf.path().display()
        ),
        l,
    );
    let e = ev.wait("failed a", |e| is(e, "failed", "a"));
    let slot = sf.path().join("a");
    let text = std::fs::read_to_string(slot.join(FAILED_FILE_NAME)).unwrap();
    match e {
        sf_io_tokio::DrainerEvent::Failed { reason, .. } => assert_eq!(reason, text),
        other => panic!("{other:?}"),
    }
    assert_marked_under_lock(&seen, &text);
    assert!(text.contains("gave up"), "{text}");
    assert!(text.to_lowercase().contains("reconnect"), "{text}");
    assert!(has_segments(&slot), "the data stays for an operator");
    let c = fg.counters();
    assert_eq!(c.total_background_drainers_failed, 1);
    assert_eq!(c.total_background_drainers_succeeded, 0);
    let _ = block(|| fg.close());
    assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free, "released");
    assert!(
        scan(sf.path(), &OwnSlots::Single("fg".into()))
            .unwrap()
            .is_empty(),
        "a failed slot is excluded from later scans"
    );
}

/// §18.2: irrecoverable corruption (a bad frame followed by good ones) →
/// recovery refuses, the drainer writes `.failed`, nothing is rewritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_2_corrupt_slot_writes_failed_and_is_left_untouched() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 3);
    let slot = sf.path().join("a");
    let seg = std::fs::read_dir(&slot)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "sfa"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    // Header 24 bytes, frame 0 = crc(4) len(4) payload: flip a payload byte.
    bytes[24 + 8 + 2] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let srv = server(ServerConfig::local()).await;
    let (l, mut ev) = events();
    let (l, seen) = probe_at_failed(l, slot.clone());
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("failed a", |e| is(e, "failed", "a"));
    let text = std::fs::read_to_string(slot.join(FAILED_FILE_NAME)).unwrap();
    assert!(text.contains("recovery"), "{text}");
    // The lock recovery refused under was never let go: `.failed` is
    // written under it, not under a lock taken again.
    assert_marked_under_lock(&seen, &text);
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "S3: nothing rewritten");
    assert_eq!(fg.counters().total_background_drainers_failed, 1);
    fg.close().unwrap();
    assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free);
}

/// `close()` of the foreground stops its drainers: no `.failed`, the data
/// stays, the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_stops_drainers_and_leaves_their_data() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 1);
    let (l, mut ev) = events();
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;initial_connect_retry=async;\
             close_flush_timeout_millis=0;",
            dead_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("started a", |e| is(e, "started", "a"));
    assert_eq!(fg.counters().active_background_drainers, 1);
    let _ = block(|| fg.close());
    ev.wait("stopped a", |e| is(e, "stopped", "a"));
    let slot = sf.path().join("a");
    assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free);
    assert!(!slot.join(FAILED_FILE_NAME).exists());
    assert!(has_segments(&slot));
}

/// `max_background_drainers` caps concurrency: with a cap of 1 and a
/// drainer that cannot finish, the second orphan is never started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_background_drainers_caps_concurrent_drainers() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 1);
    strand(sf.path(), "b", "tb", 1);
    let (l, mut ev) = events();
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;initial_connect_retry=async;\
             close_flush_timeout_millis=0;max_background_drainers=1;",
            dead_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("started a", |e| is(e, "started", "a"));
    assert_eq!(fg.counters().active_background_drainers, 1);
    let _ = block(|| fg.close());
    ev.wait("stopped a", |e| is(e, "stopped", "a"));
    assert!(
        !ev.drain().iter().any(|e| is(e, "started", "b")),
        "{:?}",
        ev.seen
    );
}

/// Item 11 through the drainer: a drained slot keeps its fully acknowledged
/// active segment and spares (the sender's ring reuses them), so a later
/// scan adopts it again, and that drain must send nothing (S8 watermark:
/// the drainer releases only once the watermark covers what it drained).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item11_readopted_drained_slot_replays_nothing() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 3);
    let srv = server(ServerConfig::local()).await;
    let (l, mut ev) = events();
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("succeeded a", |e| is(e, "succeeded", "a"));
    srv.wait_for_rows(30, WAIT).await.unwrap();
    fg.close().unwrap();
    let (l2, mut ev2) = events();
    let fg2 = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg2;drain_orphans=on;",
            srv.local_addr(),
            sf.path().display()
        ),
        l2,
    );
    ev2.wait("succeeded a again", |e| is(e, "succeeded", "a"));
    assert_eq!(srv.stats().rows, 30, "no acknowledged frame replayed");
    fg2.close().unwrap();
}

/// §18.2: an auth-terminal upgrade (401) ends the drainer at once with
/// `.failed`, without spending the reconnect budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_2_auth_refused_writes_failed() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 1);
    let srv = server(ServerConfig::local().with_auth(qwp_server::Auth::Bearer {
        token: "right".into(),
    }))
    .await;
    let (l, mut ev) = events();
    let (l, seen) = probe_at_failed(l, sf.path().join("a"));
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;initial_connect_retry=async;\
             token=wrong;close_flush_timeout_millis=0;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("failed a", |e| is(e, "failed", "a"));
    let slot = sf.path().join("a");
    let text = std::fs::read_to_string(slot.join(FAILED_FILE_NAME)).unwrap();
    assert!(text.contains("gave up"), "{text}");
    assert!(
        text.contains("401") || text.to_lowercase().contains("auth"),
        "{text}"
    );
    assert_marked_under_lock(&seen, &text);
    assert_eq!(fg.counters().total_background_drainers_failed, 1);
    assert!(has_segments(&slot));
    assert_eq!(srv.stats().rows, 0);
    let _ = block(|| fg.close());
    assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free, "released");
}

/// A segment file that cannot be opened for writing while it lasts: a
/// copy of `sleep` under a segment name, running (`ETXTBSY`, which root
/// gets too). A genuinely transient refusal: it ends with the process.
struct BusySegment(std::process::Child);

impl BusySegment {
    fn start(slot: &Path, name: &str) -> BusySegment {
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("a sleep binary");
        let path = slot.join(name);
        std::fs::copy(sleep, &path).unwrap();
        // `spawn` returns once the exec succeeded: the file is busy now.
        let child = std::process::Command::new(&path)
            .arg("600")
            .spawn()
            .unwrap();
        let busy = std::fs::OpenOptions::new().write(true).open(&path);
        assert_eq!(
            busy.map(|_| ()).unwrap_err().raw_os_error(),
            Some(26),
            "ETXTBSY while it runs"
        );
        BusySegment(child)
    }
}

impl Drop for BusySegment {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// §18.2, §5.2: a transient recovery refusal (here a segment file the OS
/// will not open for writing while a process executes it: `ReadFailed`,
/// about the moment, not the bytes) does NOT write `.failed`: the slot is
/// retried a bounded number of times in this scan, then left adoptable
/// for the next one; other orphans drain meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_2_transient_refusal_does_not_write_failed() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 1);
    strand(sf.path(), "b", "tb", 1);
    let slot = sf.path().join("a");
    let busy = BusySegment::start(&slot, "sf-00000000000000ff.sfa");
    let srv = server(ServerConfig::local()).await;
    let (l, mut ev) = events();
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;max_background_drainers=1;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    let last = |e: &sf_io_tokio::DrainerEvent| {
        is(e, "stopped", "a")
            && matches!(e, sf_io_tokio::DrainerEvent::Stopped { reason, .. } if reason.contains("next scan"))
    };
    ev.wait("a left for the next scan", last);
    ev.wait("succeeded b", |e| is(e, "succeeded", "b"));
    let tries: Vec<_> = ev.seen.iter().filter(|e| is(e, "stopped", "a")).collect();
    assert_eq!(
        tries.len(),
        sf_core::orphans::RETRIES_PER_SCAN as usize + 1,
        "bounded retries: {:?}",
        ev.seen
    );
    assert!(
        tries.iter().all(|e| matches!(e, sf_io_tokio::DrainerEvent::Stopped { reason, .. } if reason.contains("cannot read segment"))),
        "the refusal is the busy segment's: {tries:?}"
    );
    assert!(
        !ev.seen
            .iter()
            .any(|e| is(e, "started", "a") || is(e, "failed", "a")),
        "{:?}",
        ev.seen
    );
    assert!(!slot.join(FAILED_FILE_NAME).exists(), "no .failed");
    assert_eq!(fg.counters().total_background_drainers_failed, 0);
    assert_eq!(fg.counters().total_background_drainers_succeeded, 1);
    assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free);
    assert!(has_segments(&slot), "the data stays");
    assert_eq!(
        scan(sf.path(), &OwnSlots::Single("fg".into())).unwrap(),
        vec![slot.clone(), sf.path().join("b")],
        "still adoptable (b keeps its acknowledged active segment)"
    );
    fg.close().unwrap();
    drop(busy);
}

/// §18.2, §5.2: an entry named like a segment that is not a regular file
/// (a directory) makes the slot structurally broken: recovery refuses it
/// as `NotAFile`, which is permanent, so the drainer gives it up with
/// `.failed` instead of retrying it on every start forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s18_2_segment_name_that_is_not_a_file_writes_failed() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 1);
    let slot = sf.path().join("a");
    std::fs::create_dir(slot.join("sf-00000000000000ff.sfa")).unwrap();
    let srv = server(ServerConfig::local()).await;
    let (l, mut ev) = events();
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("failed a", |e| is(e, "failed", "a"));
    let text = std::fs::read_to_string(slot.join(FAILED_FILE_NAME)).unwrap();
    assert!(text.contains("not a regular file"), "{text}");
    assert!(text.contains("a directory"), "{text}");
    assert_eq!(
        ev.seen.iter().filter(|e| is(e, "stopped", "a")).count(),
        0,
        "not retried: {:?}",
        ev.seen
    );
    assert_eq!(fg.counters().total_background_drainers_failed, 1);
    assert_eq!(srv.stats().rows, 0);
    fg.close().unwrap();
    assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free);
    assert!(has_segments(&slot), "the data stays for an operator");
}

/// §5.2: a slot the scan adopted but another process marked `.failed`
/// before our drainer locked it is skipped under the lock: neither drained
/// nor re-marked (the other process's reason stands). The `.failed` is
/// written from the listener of the drain before it (one drainer at a
/// time, in name order), i.e. after the scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s5_2_failed_written_after_the_scan_is_respected_under_the_lock() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "0", "t0", 1);
    strand(sf.path(), "a", "ta", 1);
    let slot = sf.path().join("a");
    let srv = server(ServerConfig::local()).await;
    let (l, mut ev) = events();
    let marker_slot = slot.clone();
    let l = move |e: sf_io_tokio::DrainerEvent| {
        if is(&e, "started", "0") {
            let lock = SlotLock::acquire_dir(&marker_slot).unwrap();
            write_failed_marker(&lock, "another process gave up\n").unwrap();
        }
        l(e);
    };
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;max_background_drainers=1;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("succeeded 0", |e| is(e, "succeeded", "0"));
    match ev.wait("skipped a", |e| is(e, "skipped", "a")) {
        sf_io_tokio::DrainerEvent::Skipped { reason, .. } => {
            assert!(reason.contains(".failed"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !ev.seen.iter().any(|e| is(e, "started", "a")),
        "{:?}",
        ev.seen
    );
    assert_eq!(
        std::fs::read_to_string(slot.join(FAILED_FILE_NAME)).unwrap(),
        "another process gave up\n",
        "the other process's reason stands"
    );
    assert!(server_ns(&srv, "ta").is_empty(), "a was not drained");
    let c = fg.counters();
    assert_eq!(
        (
            c.total_background_drainers_succeeded,
            c.total_background_drainers_failed
        ),
        (1, 0)
    );
    fg.close().unwrap();
    assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free);
    assert!(has_segments(&slot));
}

/// A panic on a drainer thread (here the user's listener, on `Started`)
/// ends that slot as stopped instead of stranding the scheduler: the slot
/// is not counted active forever, its lock is released, no `.failed`, and
/// the thread goes on with the next slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_listener_does_not_strand_the_drainers() {
    let sf = tempfile::tempdir().unwrap();
    strand(sf.path(), "a", "ta", 1);
    strand(sf.path(), "b", "tb", 1);
    let srv = server(ServerConfig::local()).await;
    let (l, mut ev) = events();
    let l = move |e: sf_io_tokio::DrainerEvent| {
        let boom = is(&e, "started", "a");
        l(e);
        if boom {
            panic!("listener bug (deliberate, test)");
        }
    };
    let fg = foreground(
        &format!(
            "ws::addr={};sf_dir={};sender_id=fg;drain_orphans=on;max_background_drainers=1;",
            srv.local_addr(),
            sf.path().display()
        ),
        l,
    );
    ev.wait("started a", |e| is(e, "started", "a"));
    ev.wait("succeeded b", |e| is(e, "succeeded", "b"));
    let c = fg.counters();
    assert_eq!(c.active_background_drainers, 0);
    assert_eq!(c.total_background_drainers_succeeded, 1);
    assert_eq!(c.total_background_drainers_failed, 0);
    let a = sf.path().join("a");
    assert_eq!(lock_holder(&a).unwrap(), LockProbe::Free);
    assert!(!a.join(FAILED_FILE_NAME).exists());
    assert!(has_segments(&a), "a's data stays for the next scan");
    fg.close().unwrap();
}
