//! Shared helpers of the `qwp-sf` binary tests: run the binary, start
//! `serve` and wait for its `listening on` line, craft slot files.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use qwp_proto::encoder::MessageBuilder;
use sf_core::segment::{write_frame, SegmentHeader, SEGMENT_HEADER_LEN};
use sf_core::Fsn;

/// The built binary.
pub fn qwp_sf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_qwp-sf"))
}

/// Runs the binary with `args` in `cwd` and waits for it.
pub fn run_in(cwd: &Path, args: &[&str]) -> Output {
    qwp_sf()
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run qwp-sf")
}

/// Stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

/// Stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

/// A running `qwp-sf serve`, killed (by its own id) if a test ends early.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    pub first_line: String,
    pub stdout: BufReader<ChildStdout>,
}

impl Served {
    /// Starts `qwp-sf serve ARGS` and waits for its one stdout line.
    pub fn start(args: &[&str]) -> Served {
        let mut child = qwp_sf()
            .arg("serve")
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first_line = String::new();
        stdout
            .read_line(&mut first_line)
            .expect("read listening line");
        let addr = first_line
            .trim_end()
            .strip_prefix("listening on ws://")
            .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
            .parse()
            .expect("address");
        Served {
            child,
            addr,
            first_line,
            stdout,
        }
    }

    /// Sends SIGTERM and waits: the exit status and the rest of stdout.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(killed.success());
        let status = self.child.wait().expect("wait serve");
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest).expect("read rest");
        (status, rest)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A QWP1 message with `rows` rows in table `trades`: a symbol, a LONG and
/// a DOUBLE, designated timestamps in microseconds from `ts0`.
pub fn trades_message(rows: usize, ts0: i64) -> Vec<u8> {
    let mut b = MessageBuilder::new();
    for i in 0..rows {
        b.table("trades")
            .unwrap()
            .symbol("symbol", if i % 2 == 0 { "ETH-USD" } else { "BTC-USD" })
            .unwrap()
            .column_i64("qty", i as i64)
            .unwrap()
            .column_f64("price", 100.5 + i as f64)
            .unwrap();
        b.at_micros(ts0 + i as i64).unwrap();
    }
    let mut out = Vec::new();
    b.encode_into(&mut out).unwrap();
    out
}

/// A segment image of `size` bytes: header with `base`, then `frames`.
/// Returns the image and each frame's start offset.
pub fn segment_image(base: u64, frames: &[Vec<u8>], size: usize) -> (Vec<u8>, Vec<usize>) {
    let mut image = vec![0u8; size];
    let header = SegmentHeader::new(Fsn(base), 1_700_000_000_000_000)
        .unwrap()
        .encode();
    image[..SEGMENT_HEADER_LEN].copy_from_slice(&header);
    let mut off = SEGMENT_HEADER_LEN;
    let mut offsets = Vec::new();
    for f in frames {
        offsets.push(off);
        off = write_frame(&mut image, off, f).unwrap();
    }
    (image, offsets)
}

/// Writes `sf-<gen>.sfa` into `slot`.
pub fn write_segment(slot: &Path, gen: u64, image: &[u8]) -> PathBuf {
    std::fs::create_dir_all(slot).unwrap();
    let path = slot.join(format!("sf-{gen:016x}.sfa"));
    std::fs::write(&path, image).unwrap();
    path
}

/// Writes `.ack-watermark` = `fsn` into `slot`.
pub fn write_watermark(slot: &Path, fsn: u64) {
    let bytes = sf_core::watermark::encode_watermark(Fsn(fsn)).unwrap();
    std::fs::write(slot.join(".ack-watermark"), bytes).unwrap();
}

/// Every row line of every `<table>.jsonl` under `dir`, by table.
pub fn jsonl_rows(dir: &Path) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "jsonl") {
            let table = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            out.insert(table, text.lines().map(str::to_owned).collect());
        }
    }
    out
}

/// The repository's root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}
