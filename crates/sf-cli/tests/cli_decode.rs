//! `qwp-sf decode` through the built binary: a raw message, the same as hex
//! text, every frame of a segment, and input that does not decode.

mod cli_support;

use cli_support::*;

const EXPECTED: [&str; 2] = [
    r#"{"table":"trades","row":{"symbol":"ETH-USD","qty":0,"price":100.5,"timestamp":5000}}"#,
    r#"{"table":"trades","row":{"symbol":"BTC-USD","qty":1,"price":101.5,"timestamp":5001}}"#,
];

#[test]
fn decode_prints_each_row_in_the_serve_row_format() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("m.qwp"), trades_message(2, 5_000)).unwrap();
    let out = run_in(tmp.path(), &["decode", "m.qwp"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), EXPECTED);
}

#[test]
fn decode_hex_reads_the_same_message_as_hex_text() {
    let tmp = tempfile::tempdir().unwrap();
    let hex: String = trades_message(2, 5_000)
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if i % 16 == 15 {
                format!("{b:02x}\n")
            } else {
                format!("{b:02x} ")
            }
        })
        .collect();
    std::fs::write(tmp.path().join("m.hex"), hex).unwrap();
    let out = run_in(tmp.path(), &["decode", "m.hex", "--hex"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().collect::<Vec<_>>(), EXPECTED);
}

#[test]
fn decode_segment_prints_every_frames_rows_with_its_fsn() {
    let tmp = tempfile::tempdir().unwrap();
    let frames = vec![trades_message(2, 5_000), trades_message(1, 9_000)];
    let (image, _) = segment_image(40, &frames, 16 * 1024);
    let path = write_segment(tmp.path(), 3, &image);
    let out = run_in(tmp.path(), &["decode", path.to_str().unwrap(), "--segment"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0], EXPECTED[0].replacen('{', r#"{"fsn":40,"#, 1));
    assert!(
        lines[2].starts_with(r#"{"fsn":41,"table":"trades","row":{"#),
        "{}",
        lines[2]
    );
}

#[test]
fn decode_of_garbage_is_one_error_line_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("junk"), b"not a qwp message").unwrap();
    let out = run_in(tmp.path(), &["decode", "junk"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: message does not decode: "), "{err}");
    let out = run_in(tmp.path(), &["decode", "junk", "--hex"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("error: hex input: "));
}
