//! `qwp-sf serve` through the built binary: the one `listening on` line,
//! JSONL persistence in the row format contract, auth, a clean SIGTERM stop.

mod cli_support;

use cli_support::*;

#[test]
fn serve_prints_one_listening_line_with_the_real_port_and_stops_cleanly_on_sigterm() {
    let served = Served::start(&["--listen", "127.0.0.1:0"]);
    assert_ne!(served.addr.port(), 0, "the real port, not 0");
    assert_eq!(
        served.first_line,
        format!("listening on ws://{}\n", served.addr)
    );
    let (status, rest) = served.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(rest, "", "exactly one line on stdout");
}

#[test]
fn serve_data_dir_appends_rows_as_jsonl_in_the_contract_format() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    // The second row lacks `qty` (null) and the first lacks `note`.
    let ilp = "trades,symbol=ETH-USD qty=3i,price=2615.5,ok=true 1700000000000000001\n\
               trades,symbol=BTC-USD price=37000.25,ok=false,note=\"hi \\\"there\\\"\" 1700000000000000002\n";
    std::fs::write(tmp.path().join("in.ilp"), ilp).unwrap();
    let conf = format!("ws::addr={};", served.addr);
    let out = run_in(tmp.path(), &["ingest", "in.ilp", "--conf", &conf]);
    assert!(out.status.success(), "ingest failed: {}", stderr(&out));
    let rows = jsonl_rows(&data);
    let trades = &rows["trades"];
    assert_eq!(trades.len(), 2);
    let first: serde_json::Value = serde_json::from_str(&trades[0]).unwrap();
    let second: serde_json::Value = serde_json::from_str(&trades[1]).unwrap();
    // Both rows were one message: its schema has every column, so the
    // first row's `note` is null too.
    assert_eq!(
        first,
        serde_json::json!({"symbol": "ETH-USD", "qty": 3, "price": 2615.5, "ok": true,
                           "note": null, "timestamp": 1_700_000_000_000_000_001_i64})
    );
    assert_eq!(second["symbol"], "BTC-USD");
    assert_eq!(
        second["qty"],
        serde_json::Value::Null,
        "a missing value is null"
    );
    assert_eq!(second["note"], "hi \"there\"");
    assert_eq!(second["timestamp"], 1_700_000_000_000_000_002_i64);
    let (status, _) = served.terminate();
    assert!(status.success());
}

#[test]
fn serve_with_a_token_refuses_a_client_without_it() {
    let tmp = tempfile::tempdir().unwrap();
    let served = Served::start(&["--listen", "127.0.0.1:0", "--token", "s3cret"]);
    std::fs::write(tmp.path().join("in.ilp"), "m v=1i 1\n").unwrap();
    let without = format!("ws::addr={};", served.addr);
    let out = run_in(tmp.path(), &["ingest", "in.ilp", "--conf", &without]);
    assert_eq!(out.status.code(), Some(1));
    // Warnings and errors the sender logs on the way may precede it; the
    // command's own verdict is the one `error:` line, last.
    let err = stderr(&out);
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("error: sender: "), "{err}");
    assert!(last.contains("401/403"), "{err}");
    let with = format!("ws::addr={};token=s3cret;", served.addr);
    let out = run_in(tmp.path(), &["ingest", "in.ilp", "--conf", &with]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn serve_refuses_a_user_without_a_password() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_in(tmp.path(), &["serve", "--user", "admin"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stdout(&out).is_empty());
}

#[test]
fn w4_serve_durable_ack_confirms_a_client_that_requests_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let served = Served::start(&[
        "--listen",
        "127.0.0.1:0",
        "--durable-ack",
        "--durable-ack-delay-ms",
        "1",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    std::fs::write(tmp.path().join("in.ilp"), "m v=1i 1\nm v=2i 2\n").unwrap();
    // With request_durable_ack=on the connect fails unless the server
    // echoes the header, and only DURABLE_ACKs trim: the command ending
    // with every row acknowledged is the server's durable confirmation.
    let conf = format!(
        "ws::addr={};sf_dir={};request_durable_ack=on;",
        served.addr,
        tmp.path().join("sf").display()
    );
    let out = run_in(tmp.path(), &["ingest", "in.ilp", "--conf", &conf, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["acked_fsn"], 0);
    assert_eq!(jsonl_rows(&data)["m"].len(), 2);
}
