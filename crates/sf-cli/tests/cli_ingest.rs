//! `qwp-sf ingest` through the built binary: the embedded default on the
//! shipped sample (the README's first command), the summary contracts, a bad
//! line, standard input, and a server that is down at start with
//! `initial_connect_retry=on` and comes up later.

mod cli_support;

use std::net::TcpListener;

use cli_support::*;

fn sample() -> String {
    repo_root()
        .join("examples/sample.ilp")
        .to_string_lossy()
        .into_owned()
}

/// Data lines of the shipped sample: everything but comments and blanks.
fn sample_rows() -> usize {
    std::fs::read_to_string(sample())
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count()
}

#[test]
fn embedded_default_ingests_the_shipped_sample_and_prints_the_summary() {
    let cwd = tempfile::tempdir().unwrap();
    let out = run_in(cwd.path(), &["ingest", &sample()]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let rows = sample_rows();
    assert!(rows >= 300, "the sample has a few hundred rows");
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with(&format!("ingested {rows} rows: ")),
        "{text}"
    );
    for part in [
        " frames, ",
        " bytes, ",
        " reconnects, ",
        " frames replayed, ",
        "acked FSN ",
        " s, ",
    ] {
        assert!(text.contains(part), "{part:?} missing from {text}");
    }
    assert!(text.trim_end().ends_with(" rows/s"), "{text}");
    // The embedded server persisted every row under ./qwp-data, one file
    // per table, and the sender's slot lives under ./qwp-sf.
    let tables = jsonl_rows(&cwd.path().join("qwp-data"));
    assert!(tables.len() >= 3, "several tables: {:?}", tables.keys());
    assert_eq!(tables.values().map(Vec::len).sum::<usize>(), rows);
    assert!(cwd.path().join("qwp-sf/default").is_dir());
}

#[test]
fn ingest_json_summary_has_the_contract_keys_and_counts() {
    let cwd = tempfile::tempdir().unwrap();
    let out = run_in(cwd.path(), &["ingest", &sample(), "--json"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "acked_fsn",
            "bytes",
            "frames",
            "frames_replayed",
            "reconnects",
            "rows",
            "seconds"
        ]
    );
    assert_eq!(v["rows"], sample_rows() as u64);
    let frames = v["frames"].as_u64().unwrap();
    assert!(frames >= 1);
    assert!(v["bytes"].as_u64().unwrap() > 0);
    // A fresh slot: FSNs 0..frames, every one acknowledged.
    assert_eq!(v["acked_fsn"].as_u64(), Some(frames - 1));
    assert!(v["seconds"].as_f64().unwrap() >= 0.0);

    // A second run continues the slot's FSNs (S1) and counts only its own.
    let out = run_in(cwd.path(), &["ingest", &sample(), "--json"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let v2: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v2["frames"].as_u64(), Some(frames));
    assert_eq!(v2["acked_fsn"].as_u64(), Some(2 * frames - 1));
}

#[test]
fn a_bad_line_stops_with_its_number_and_the_parsers_reason_and_sends_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let ilp = "# header\ncpu,host=a usage=1.5 1\ncpu,host=a usage=2.5 2\ncpu,host=a usage=oops 3\ncpu,host=a usage=4.5 4\n";
    std::fs::write(tmp.path().join("bad.ilp"), ilp).unwrap();
    let conf = format!("ws::addr={};", served.addr);
    let out = run_in(tmp.path(), &["ingest", "bad.ilp", "--conf", &conf]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    assert!(lines[0].starts_with("error: line 4: "), "{err}");
    let reason = lines[0].trim_start_matches("error: line 4: ");
    assert!(!reason.trim().is_empty(), "the parser's reason: {err}");
    assert!(stdout(&out).is_empty());
    // Nothing of the file reached the server (not even the good lines).
    assert!(jsonl_rows(&data).is_empty(), "{:?}", jsonl_rows(&data));
    drop(served);
}

#[test]
fn ingest_reads_standard_input() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let conf = format!("ws::addr={};", served.addr);
    let mut child = qwp_sf()
        .args(["ingest", "-", "--conf", &conf, "--json"])
        .current_dir(tmp.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"m,s=a v=1i 1000\nm,s=b v=2i 2000\nm,s=c v=3i 3000\n")
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["rows"], 3);
    assert_eq!(jsonl_rows(&data)["m"].len(), 3);
}

#[test]
fn a_missing_input_file_is_one_error_line_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(
        tmp.path(),
        &["ingest", "nope.ilp", "--conf", "ws::addr=127.0.0.1:1;"],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: cannot read nope.ilp: "), "{err}");
}

#[test]
fn server_down_at_start_with_initial_connect_retry_on_then_up_gets_every_row() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let sf_dir = tmp.path().join("sf");
    // Stand in for the server that is down: take a port, let the sender's
    // first connect reach it, and drop that connection without an upgrade.
    let down = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = down.local_addr().unwrap();
    let conf = format!(
        "ws::addr={addr};sf_dir={};initial_connect_retry=on;",
        sf_dir.display()
    );
    let ingest = qwp_sf()
        .args(["ingest", &sample(), "--conf", &conf, "--json"])
        .current_dir(tmp.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (refused, _) = down.accept().expect("the sender's first attempt");
    drop(refused);
    drop(down);
    // Now the server comes up on that very port.
    let served = Served::start(&[
        "--listen",
        &addr.to_string(),
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    let out = ingest.wait_with_output().unwrap();
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let rows = sample_rows();
    assert_eq!(v["rows"], rows as u64);
    assert_eq!(
        jsonl_rows(&data).values().map(Vec::len).sum::<usize>(),
        rows,
        "every row arrived exactly once"
    );
    let (status, _) = served.terminate();
    assert!(status.success());
}
