//! `qwp-sf inspect` through the built binary: a healthy slot, a torn tail
//! (openable), mid-stream corruption and an FSN gap (refused, exit 2), the
//! lock holder, `--frames`, the JSON contract, and that inspection is
//! read-only (bytes and mtimes unchanged, no file created).

mod cli_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use cli_support::*;

const SEG: usize = 64 * 1024;

fn frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| trades_message(2 + i, 1_000 * i as i64))
        .collect()
}

fn inspect_json(sf_dir: &Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["inspect", sf_dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = run_in(sf_dir, &args);
    let v = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("json: {e}: {}", stdout(&out)));
    (out.status.code(), v)
}

/// Every file under `dir` with its bytes and mtime.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    for slot in std::fs::read_dir(dir).unwrap() {
        let slot = slot.unwrap().path();
        for f in std::fs::read_dir(&slot).unwrap() {
            let f = f.unwrap().path();
            let meta = std::fs::metadata(&f).unwrap();
            out.insert(
                f.strip_prefix(dir).unwrap().to_string_lossy().into_owned(),
                (std::fs::read(&f).unwrap(), meta.modified().unwrap()),
            );
        }
    }
    out
}

#[test]
fn s8_healthy_slot_reports_segments_watermark_and_what_recovery_would_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let slot = tmp.path().join("s1");
    let (image, _) = segment_image(0, &frames(3), SEG);
    write_segment(&slot, 0, &image);
    write_watermark(&slot, 1);
    let (code, v) = inspect_json(tmp.path(), &[]);
    assert_eq!(code, Some(0));
    let s = &v["slots"][0];
    assert_eq!(s["sender_id"], "s1");
    assert_eq!(s["lock_pid"], serde_json::Value::Null);
    assert_eq!(s["watermark"], 1);
    assert_eq!(s["published_fsn"], 2);
    assert_eq!(s["acked_fsn"], 1, "max(lowest baseSeq - 1, watermark)");
    assert_eq!(s["openable"], true);
    assert_eq!(s["error"], serde_json::Value::Null);
    let seg = &s["segments"][0];
    assert_eq!(seg["file"], "sf-0000000000000000.sfa");
    assert_eq!(seg["gen"], 0);
    assert_eq!(seg["base_fsn"], 0);
    assert_eq!(seg["frames"], 3);
    assert_eq!(seg["torn_tail_bytes"], 0);
    let payload: usize = frames(3).iter().map(|f| f.len() + 8).sum();
    assert_eq!(seg["bytes"], payload as u64);
    for key in [
        "sender_id",
        "lock_pid",
        "segments",
        "watermark",
        "published_fsn",
        "acked_fsn",
        "openable",
        "error",
    ] {
        assert!(s.get(key).is_some(), "slot key {key}");
    }
    for key in [
        "file",
        "gen",
        "base_fsn",
        "frames",
        "bytes",
        "torn_tail_bytes",
    ] {
        assert!(seg.get(key).is_some(), "segment key {key}");
    }

    let out = run_in(tmp.path(), &["inspect", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(text.starts_with("slot s1 ("), "{text}");
    assert!(text.contains("  lock: never locked\n"), "{text}");
    assert!(
        text.contains("  segment sf-0000000000000000.sfa gen=0 base_fsn=0 frames=3 "),
        "{text}"
    );
    assert!(text.contains("  watermark: 1\n"), "{text}");
    assert!(
        text.contains("  recovery: publish FSN 2, seed acked FSN 1 (1 frames to replay)\n"),
        "{text}"
    );
    assert!(text.ends_with("  openable: yes\n"), "{text}");
}

#[test]
fn s2_torn_tail_is_openable_and_reports_its_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let slot = tmp.path().join("default");
    let fs = frames(2);
    let (mut image, offsets) = segment_image(0, &fs, SEG);
    // An interrupted third append: a length and half a payload, no CRC.
    let end = offsets[1] + 8 + fs[1].len();
    image[end + 4..end + 8].copy_from_slice(&100i32.to_le_bytes());
    image[end + 8..end + 20].fill(0xAB);
    write_segment(&slot, 0, &image);
    let (code, v) = inspect_json(tmp.path(), &[]);
    assert_eq!(code, Some(0), "{v}");
    let s = &v["slots"][0];
    assert_eq!(s["openable"], true);
    assert_eq!(s["published_fsn"], 1);
    assert_eq!(s["segments"][0]["frames"], 2);
    assert_eq!(
        s["segments"][0]["torn_tail_bytes"], 20,
        "length field through the last written byte"
    );
}

#[test]
fn s2_mid_stream_corruption_is_refused_with_exit_2_and_the_exact_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let slot = tmp.path().join("default");
    let (mut image, offsets) = segment_image(0, &frames(3), SEG);
    // Flip a payload byte of the middle frame: a valid frame follows it.
    image[offsets[1] + 8 + 5] ^= 0xFF;
    write_segment(&slot, 0, &image);
    let (code, v) = inspect_json(tmp.path(), &[]);
    assert_eq!(code, Some(2));
    let s = &v["slots"][0];
    assert_eq!(s["openable"], false);
    assert_eq!(s["published_fsn"], serde_json::Value::Null);
    let err = s["error"].as_str().unwrap();
    assert!(err.contains("corrupt"), "{err}");
    assert!(err.contains(&format!("offset {}", offsets[1])), "{err}");
    assert_eq!(s["segments"][0]["state"], "corrupt");

    let out = run_in(tmp.path(), &["inspect", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("  openable: no: segment sf-0000000000000000.sfa is corrupt"));
}

#[test]
fn s3_fsn_gap_between_segments_is_refused_with_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let slot = tmp.path().join("default");
    write_segment(&slot, 0, &segment_image(0, &frames(2), SEG).0);
    write_segment(&slot, 1, &segment_image(5, &frames(1), SEG).0);
    let (code, v) = inspect_json(tmp.path(), &[]);
    assert_eq!(code, Some(2));
    let err = v["slots"][0]["error"].as_str().unwrap();
    assert!(err.starts_with("FSN gap"), "{err}");
    assert!(err.contains("sf-0000000000000001.sfa"), "{err}");
    assert_eq!(v["slots"][0]["segments"].as_array().unwrap().len(), 2);
}

#[test]
fn one_refused_slot_among_healthy_ones_exits_2_and_sender_id_narrows() {
    let tmp = tempfile::tempdir().unwrap();
    write_segment(
        &tmp.path().join("good"),
        0,
        &segment_image(0, &frames(1), SEG).0,
    );
    let (mut bad, offsets) = segment_image(0, &frames(3), SEG);
    bad[offsets[0] + 9] ^= 1;
    write_segment(&tmp.path().join("bad"), 0, &bad);
    let (code, v) = inspect_json(tmp.path(), &[]);
    assert_eq!(code, Some(2));
    assert_eq!(v["slots"].as_array().unwrap().len(), 2);
    assert_eq!(v["slots"][0]["sender_id"], "bad", "sorted by name");
    let (code, v) = inspect_json(tmp.path(), &["--sender-id", "good"]);
    assert_eq!(code, Some(0));
    assert_eq!(v["slots"].as_array().unwrap().len(), 1);
    let out = run_in(
        tmp.path(),
        &[
            "inspect",
            tmp.path().to_str().unwrap(),
            "--sender-id",
            "nope",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: no slot \"nope\" under "));
}

#[test]
fn frames_lists_each_frames_fsn_length_and_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = frames(2);
    write_segment(
        &tmp.path().join("default"),
        0,
        &segment_image(7, &fs, SEG).0,
    );
    let (code, v) = inspect_json(tmp.path(), &["--frames"]);
    assert_eq!(code, Some(0));
    let list = &v["slots"][0]["segments"][0]["frame_list"];
    assert_eq!(list[0]["fsn"], 7);
    assert_eq!(list[0]["len"], fs[0].len() as u64);
    assert_eq!(list[0]["tables"][0]["table"], "trades");
    assert_eq!(list[0]["tables"][0]["rows"], 2);
    assert_eq!(list[1]["fsn"], 8);
    assert_eq!(list[1]["tables"][0]["rows"], 3);
    let out = run_in(
        tmp.path(),
        &["inspect", tmp.path().to_str().unwrap(), "--frames"],
    );
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "    frame fsn=8 len={} tables=trades:3\n",
            fs[1].len()
        )),
        "{text}"
    );
}

#[test]
fn c3_a_held_lock_names_its_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let slot = tmp.path().join("held");
    write_segment(&slot, 0, &segment_image(0, &frames(1), SEG).0);
    let lock = sf_io_tokio::fs::SlotLock::acquire_dir(&slot).unwrap();
    let (code, v) = inspect_json(tmp.path(), &[]);
    assert_eq!(code, Some(0));
    assert_eq!(v["slots"][0]["lock_pid"], std::process::id());
    assert_eq!(v["slots"][0]["locked"], true);
    drop(lock);
    let (_, v) = inspect_json(tmp.path(), &[]);
    assert_eq!(v["slots"][0]["lock_pid"], serde_json::Value::Null);
    assert_eq!(v["slots"][0]["locked"], false);
}

#[test]
fn inspect_is_read_only_bytes_and_mtimes_unchanged_no_file_created() {
    let tmp = tempfile::tempdir().unwrap();
    let slot = tmp.path().join("default");
    let (mut image, offsets) = segment_image(0, &frames(3), SEG);
    image[offsets[2] + 8 + 3] ^= 0x10; // torn last frame
    write_segment(&slot, 0, &image);
    write_segment(&slot, 1, &vec![0u8; SEG]); // a blank spare
    write_watermark(&slot, 0);
    // A slot some sender used before: its lock files exist, nobody holds it.
    drop(sf_io_tokio::fs::SlotLock::acquire_dir(&slot).unwrap());
    write_segment(
        &tmp.path().join("gap"),
        0,
        &segment_image(0, &frames(1), SEG).0,
    );
    write_segment(
        &tmp.path().join("gap"),
        1,
        &segment_image(9, &frames(1), SEG).0,
    );
    let before = snapshot(tmp.path());
    assert!(before.contains_key("default/.lock"));
    for args in [&["--json", "--frames"][..], &[][..], &["--frames"][..]] {
        let mut all = vec!["inspect", tmp.path().to_str().unwrap()];
        all.extend_from_slice(args);
        let out = run_in(tmp.path(), &all);
        assert_eq!(out.status.code(), Some(2));
    }
    assert_eq!(snapshot(tmp.path()), before, "inspect changed a file");
}
