//! `qwp-sf drain` through the built binary: a slot left with unacknowledged
//! frames is recovered, replayed to a server, and reported drained (W1, S8).

mod cli_support;

use cli_support::*;

/// The sender's default segment size, so the recovered ring keeps using it.
const SEG: usize = 4 * 1024 * 1024;

#[test]
fn w1_drain_replays_everything_unacknowledged_and_reports_the_count() {
    let tmp = tempfile::tempdir().unwrap();
    let sf_dir = tmp.path().join("sf");
    let slot = sf_dir.join("orphan");
    let frames = vec![
        trades_message(2, 1_000),
        trades_message(3, 2_000),
        trades_message(4, 3_000),
    ];
    write_segment(&slot, 0, &segment_image(0, &frames, SEG).0);
    write_watermark(&slot, 0); // FSN 0 was acknowledged before the crash.

    let data = tmp.path().join("data");
    let served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let conf = format!(
        "ws::addr={};sf_dir={};sender_id=orphan;",
        served.addr,
        sf_dir.display()
    );
    let out = run_in(tmp.path(), &["drain", "--conf", &conf]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "drained 2 frames from slot orphan (acked FSN 2)\n"
    );
    // Only FSNs 1 and 2 went out: 3 + 4 rows.
    assert_eq!(jsonl_rows(&data)["trades"].len(), 7);

    let inspect = run_in(tmp.path(), &["inspect", sf_dir.to_str().unwrap()]);
    assert_eq!(
        inspect.status.code(),
        Some(0),
        "the drained slot still opens"
    );
    let (status, _) = served.terminate();
    assert!(status.success());
}

/// S8 across a drain: the close that ends `drain` waits for the
/// `.ack-watermark` write of the last acknowledgement, so a restart replays
/// nothing. (Before the engine waited for it, the slot was released with the
/// watermark one behind and a restart re-sent the last frame.)
#[test]
fn s8_after_a_drain_a_restart_replays_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sf_dir = tmp.path().join("sf");
    let slot = sf_dir.join("orphan");
    let frames = vec![
        trades_message(2, 1_000),
        trades_message(3, 2_000),
        trades_message(4, 3_000),
    ];
    write_segment(&slot, 0, &segment_image(0, &frames, SEG).0);
    write_watermark(&slot, 0);
    let served = Served::start(&["--listen", "127.0.0.1:0"]);
    let conf = format!(
        "ws::addr={};sf_dir={};sender_id=orphan;",
        served.addr,
        sf_dir.display()
    );
    let out = run_in(tmp.path(), &["drain", "--conf", &conf]);
    assert!(out.status.success(), "{}", stderr(&out));
    let inspect = run_in(tmp.path(), &["inspect", sf_dir.to_str().unwrap()]);
    let text = stdout(&inspect);
    assert!(text.contains("(0 frames to replay)"), "{text}");
}

#[test]
fn drain_needs_sf_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(tmp.path(), &["drain", "--conf", "ws::addr=127.0.0.1:9;"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: drain needs sf_dir"));
}

#[test]
fn drain_of_a_refused_slot_fails_with_the_recovery_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let sf_dir = tmp.path().join("sf");
    let slot = sf_dir.join("default");
    write_segment(&slot, 0, &segment_image(0, &[trades_message(1, 1)], SEG).0);
    write_segment(&slot, 1, &segment_image(3, &[trades_message(1, 2)], SEG).0);
    let conf = format!("ws::addr=127.0.0.1:9;sf_dir={};", sf_dir.display());
    let out = run_in(tmp.path(), &["drain", "--conf", &conf]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("FSN gap"), "{err}");
}
