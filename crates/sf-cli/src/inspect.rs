//! `qwp-sf inspect SF_DIR`: what is stuck on disk, read-only.
//!
//! Every fact comes from [`sf_io_tokio::fs::inspect_slot`], which opens files
//! read-only, only probes the lock, and asks the engine's own recovery
//! planner for the verdict, so "openable" here is what a sender would find.
//!
//! Output contract.
//!
//! Text, per slot:
//! ```text
//! slot SENDER_ID (PATH)
//!   lock: never locked | free | held by pid N | held by an unknown pid | probe failed: …
//!   segment FILE gen=G base_fsn=B frames=F bytes=N torn_tail_bytes=T file_size=S state=STATE
//!     frame fsn=N len=L tables=T1:R1,T2:R2            (with --frames)
//!   watermark: FSN | none | unusable: …
//!   recovery: publish FSN P, seed acked FSN A (K frames to replay) | nothing published
//!   warning: …                                          (one per recovery warning)
//!   openable: yes | no: REASON
//! ```
//! `--json`: `{"slots":[{"sender_id","lock_pid","locked","segments":[{"file","gen",
//! "base_fsn","frames","bytes","torn_tail_bytes","file_size","state"}],"watermark",
//! "published_fsn","acked_fsn","openable","error","warnings"}]}`, `null` where a
//! value is absent; with `--frames` each segment also has `"frame_list":
//! [{"fsn","len","tables":[{"table","rows"}],"error"}]`.
//!
//! `bytes` counts the verified frames (envelopes included), not the
//! preallocated file (`file_size`). Segment states: `active`, `sealed`,
//! `spare` (a blank file recovery keeps), `ignored` (left on disk, not
//! recovered), and when recovery refuses: `valid`, `torn`, `corrupt`;
//! for unusable files: `blank`, `bad-header`, `headerless`, `unreadable`.
//!
//! Exit 0 when every slot is openable, 2 when recovery would refuse one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};
use sf_core::recovery::{RecoveryPlan, SegmentRead, WatermarkRead};
use sf_core::segment::{ScanError, ScanOutcome, SegmentScan, TailState, SEGMENT_HEADER_LEN};
use sf_core::watermark::decode_watermark;
use sf_core::Fsn;
use sf_io_tokio::fs::{
    inspect_slot, read_segment_image, InspectedSegment, LockHolder, LockProbe, SlotInspection,
};

use crate::error::CliError;
use crate::Outcome;

/// Arguments of `qwp-sf inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The store-and-forward group directory (the connect string's sf_dir).
    #[arg(value_name = "SF_DIR")]
    sf_dir: PathBuf,
    /// Inspect only this slot (the connect string's sender_id).
    #[arg(long, value_name = "ID")]
    sender_id: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// List every frame: FSN, length, and its tables with row counts.
    #[arg(long)]
    frames: bool,
}

/// One slot's report.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotReport {
    /// The slot directory's name.
    pub sender_id: String,
    /// The slot directory.
    pub path: PathBuf,
    /// The lock as text (see the module docs).
    pub lock: String,
    /// Whether a live engine holds the lock.
    pub locked: bool,
    /// The PID `.lock.pid` names for a live holder.
    pub lock_pid: Option<u32>,
    /// Every segment-named file.
    pub segments: Vec<SegmentReport>,
    /// The watermark's FSN when it is readable and well formed.
    pub watermark: Option<Fsn>,
    /// Why the watermark is unusable, when it is.
    pub watermark_problem: Option<String>,
    /// What recovery would publish (the highest FSN on disk).
    pub published_fsn: Option<Fsn>,
    /// What recovery would seed as acknowledged (S8).
    pub acked_fsn: Option<Fsn>,
    /// Recovery's refusal, when it refuses.
    pub error: Option<String>,
    /// What recovery tolerated but warns about.
    pub warnings: Vec<String>,
}

impl SlotReport {
    /// Whether recovery would open the slot.
    pub fn openable(&self) -> bool {
        self.error.is_none()
    }
}

/// One segment file's line.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentReport {
    /// File name.
    pub file: String,
    /// Generation (`None` for `sf-initial.sfa`).
    pub gen: Option<u64>,
    /// `baseSeq` when the header is valid.
    pub base_fsn: Option<u64>,
    /// Verified frames.
    pub frames: u64,
    /// Bytes of the verified frames, envelopes included.
    pub bytes: u64,
    /// Non-zero bytes after the last verified frame (an interrupted append).
    pub torn_tail_bytes: u64,
    /// The file's size.
    pub file_size: u64,
    /// See the module docs.
    pub state: &'static str,
    /// With `--frames`: each verified frame.
    pub frame_list: Option<Vec<FrameReport>>,
}

/// One frame of `--frames`.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameReport {
    /// Its FSN.
    pub fsn: u64,
    /// Payload length.
    pub len: u64,
    /// Tables and their row counts, in message order.
    pub tables: Vec<(String, usize)>,
    /// Why the payload does not decode, if it does not.
    pub error: Option<String>,
}

/// Runs `inspect`.
pub fn run(args: InspectArgs) -> Result<Outcome, CliError> {
    let slots = slot_dirs(&args.sf_dir, args.sender_id.as_deref())?;
    let reports: Vec<SlotReport> = slots
        .iter()
        .map(|dir| report(&inspect_slot(dir), args.frames))
        .collect();
    let text = if args.json {
        let mut s = json_report(&reports).to_string();
        s.push('\n');
        s
    } else if reports.is_empty() {
        format!("no slots under {}\n", args.sf_dir.display())
    } else {
        reports.iter().map(text_report).collect()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(CliError::Output)?;
    Ok(if reports.iter().all(SlotReport::openable) {
        Outcome::Ok
    } else {
        Outcome::Refused
    })
}

/// The slot directories to inspect, sorted by name.
fn slot_dirs(sf_dir: &Path, sender_id: Option<&str>) -> Result<Vec<PathBuf>, CliError> {
    if let Some(id) = sender_id {
        let dir = sf_dir.join(id);
        if !dir.is_dir() {
            return Err(CliError::NoSuchSlot {
                sf_dir: sf_dir.to_path_buf(),
                sender_id: id.to_owned(),
            });
        }
        return Ok(vec![dir]);
    }
    let list_err = |source| CliError::List {
        path: sf_dir.to_path_buf(),
        source,
    };
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(sf_dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        if entry.file_type().map_err(list_err)?.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Builds one slot's report; with `frames`, re-reads each segment to list
/// its frames.
pub fn report(inspection: &SlotInspection, frames: bool) -> SlotReport {
    let (lock, locked, lock_pid) = match &inspection.lock {
        Ok(LockProbe::NeverLocked) => ("never locked".to_owned(), false, None),
        Ok(LockProbe::Free) => ("free".to_owned(), false, None),
        Ok(LockProbe::Held(LockHolder::Pid(pid))) => {
            (format!("held by pid {pid}"), true, Some(*pid))
        }
        Ok(LockProbe::Held(LockHolder::Unknown)) => {
            ("held by an unknown pid".to_owned(), true, None)
        }
        Err(e) => (format!("probe failed: {e}"), false, None),
    };
    let plan = inspection.recovery.as_ref().ok();
    let mut segments: Vec<SegmentReport> = inspection
        .segments
        .iter()
        .map(|s| segment_report(&inspection.slot_dir, s, plan, frames))
        .collect();
    // Generation order (the legacy `sf-initial.sfa`, with none, first).
    segments.sort_by_key(|s| s.gen);
    let (watermark, watermark_problem) = match &inspection.watermark {
        WatermarkRead::Absent => (None, None),
        WatermarkRead::Failed(reason) => (None, Some(reason.clone())),
        WatermarkRead::Bytes(bytes) => match decode_watermark(bytes) {
            Ok(fsn) => (Some(fsn), None),
            Err(e) => (None, Some(e.to_string())),
        },
    };
    let (published_fsn, acked_fsn, error, warnings) = match &inspection.recovery {
        Ok(plan) => (
            plan.slot.next_fsn.prev(),
            plan.slot.acked,
            None,
            plan.warnings.iter().map(ToString::to_string).collect(),
        ),
        Err(e) => (None, None, Some(e.to_string()), Vec::new()),
    };
    SlotReport {
        sender_id: inspection
            .slot_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: inspection.slot_dir.clone(),
        lock,
        locked,
        lock_pid,
        segments,
        watermark,
        watermark_problem,
        published_fsn,
        acked_fsn,
        error,
        warnings,
    }
}

fn segment_report(
    slot_dir: &Path,
    seg: &InspectedSegment,
    plan: Option<&RecoveryPlan>,
    frames: bool,
) -> SegmentReport {
    let mut r = SegmentReport {
        file: seg.name.clone(),
        gen: seg.gen.map(|g| g.get()),
        base_fsn: None,
        frames: 0,
        bytes: 0,
        torn_tail_bytes: 0,
        file_size: seg.listed_size,
        state: "unreadable",
        frame_list: None,
    };
    let result = match &seg.read {
        SegmentRead::Failed(_) => return r,
        SegmentRead::Scanned { result, .. } => result,
    };
    match result {
        Err(ScanError::Header(_)) => r.state = "bad-header",
        Err(ScanError::HeaderlessData { .. }) => r.state = "headerless",
        Ok(ScanOutcome::Blank { .. }) => {
            let spare = plan.is_some_and(|p| {
                p.slot
                    .leftover_spares
                    .iter()
                    .any(|s| Some(s.gen) == seg.gen)
            });
            r.state = if spare { "spare" } else { "blank" };
        }
        Ok(ScanOutcome::Segment(scan)) => {
            r.base_fsn = Some(scan.header.base_fsn().get());
            r.frames = scan.frame_count();
            r.bytes = scan.last_good.saturating_sub(SEGMENT_HEADER_LEN as u64);
            if let TailState::Torn { bytes, .. } = scan.tail {
                r.torn_tail_bytes = bytes;
            }
            r.state = segment_state(seg, scan, plan);
            if frames {
                r.frame_list = Some(frame_reports(slot_dir, seg, scan));
            }
        }
    }
    r
}

fn segment_state(
    seg: &InspectedSegment,
    scan: &SegmentScan,
    plan: Option<&RecoveryPlan>,
) -> &'static str {
    if matches!(scan.tail, TailState::Corrupt { .. }) {
        return "corrupt";
    }
    let Some(plan) = plan else {
        return if matches!(scan.tail, TailState::Torn { .. }) {
            "torn"
        } else {
            "valid"
        };
    };
    let log = &plan.slot.segments;
    match log.iter().position(|s| s.gen == seg.gen) {
        Some(i) if i + 1 == log.len() => "active",
        Some(_) => "sealed",
        None => "ignored",
    }
}

/// Each verified frame of a segment with its tables; the file is read again
/// (read-only) so that the inspection itself never holds every image.
fn frame_reports(slot_dir: &Path, seg: &InspectedSegment, scan: &SegmentScan) -> Vec<FrameReport> {
    let image = match read_segment_image(&slot_dir.join(&seg.name), seg.listed_size) {
        Ok(image) => image,
        Err(e) => {
            return vec![FrameReport {
                fsn: scan.header.base_fsn().get(),
                len: 0,
                tables: Vec::new(),
                error: Some(e.to_string()),
            }]
        }
    };
    scan.frames()
        .map(|f| {
            let mut report = FrameReport {
                fsn: f.fsn.get(),
                len: f.payload_len,
                tables: Vec::new(),
                error: None,
            };
            match sf_core::segment::read_frame(&image, f.offset)
                .map_err(|e| e.to_string())
                .and_then(|payload| qwp_proto::decoder::decode(payload).map_err(|e| e.to_string()))
            {
                Ok(message) => {
                    report.tables = message
                        .tables
                        .iter()
                        .map(|t| (t.name().to_owned(), t.row_count()))
                        .collect();
                }
                Err(e) => report.error = Some(e),
            }
            report
        })
        .collect()
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "none".to_owned(), |v| v.to_string())
}

/// The text form of one slot (see the module docs).
pub fn text_report(r: &SlotReport) -> String {
    let mut s = format!(
        "slot {} ({})\n  lock: {}\n",
        r.sender_id,
        r.path.display(),
        r.lock
    );
    for seg in &r.segments {
        s.push_str(&format!(
            "  segment {} gen={} base_fsn={} frames={} bytes={} torn_tail_bytes={} file_size={} state={}\n",
            seg.file,
            opt(seg.gen),
            opt(seg.base_fsn),
            seg.frames,
            seg.bytes,
            seg.torn_tail_bytes,
            seg.file_size,
            seg.state
        ));
        for f in seg.frame_list.iter().flatten() {
            let tables: Vec<String> = f.tables.iter().map(|(t, n)| format!("{t}:{n}")).collect();
            s.push_str(&format!(
                "    frame fsn={} len={} tables={}",
                f.fsn,
                f.len,
                tables.join(",")
            ));
            if let Some(e) = &f.error {
                s.push_str(&format!(" error={e}"));
            }
            s.push('\n');
        }
    }
    match (&r.watermark, &r.watermark_problem) {
        (Some(w), _) => s.push_str(&format!("  watermark: {}\n", w.get())),
        (None, Some(p)) => s.push_str(&format!("  watermark: unusable: {p}\n")),
        (None, None) => s.push_str("  watermark: none\n"),
    }
    if r.openable() {
        match r.published_fsn {
            Some(p) => {
                let pending = crate::ingest::fsns_between(r.acked_fsn, Some(p));
                s.push_str(&format!(
                    "  recovery: publish FSN {}, seed acked FSN {} ({pending} frames to replay)\n",
                    p.get(),
                    opt(r.acked_fsn.map(Fsn::get))
                ));
            }
            None => s.push_str("  recovery: nothing published\n"),
        }
    }
    for w in &r.warnings {
        s.push_str(&format!("  warning: {w}\n"));
    }
    match &r.error {
        None => s.push_str("  openable: yes\n"),
        Some(e) => s.push_str(&format!("  openable: no: {e}\n")),
    }
    s
}

/// The `--json` document.
pub fn json_report(reports: &[SlotReport]) -> Json {
    let slots: Vec<Json> = reports
        .iter()
        .map(|r| {
            let segments: Vec<Json> = r
                .segments
                .iter()
                .map(|seg| {
                    let mut v = json!({
                        "file": seg.file,
                        "gen": seg.gen,
                        "base_fsn": seg.base_fsn,
                        "frames": seg.frames,
                        "bytes": seg.bytes,
                        "torn_tail_bytes": seg.torn_tail_bytes,
                        "file_size": seg.file_size,
                        "state": seg.state,
                    });
                    if let (Some(list), Some(obj)) = (&seg.frame_list, v.as_object_mut()) {
                        let frames: Vec<Json> = list
                            .iter()
                            .map(|f| {
                                let tables: Vec<Json> = f
                                    .tables
                                    .iter()
                                    .map(|(t, n)| json!({"table": t, "rows": n}))
                                    .collect();
                                json!({"fsn": f.fsn, "len": f.len, "tables": tables, "error": f.error})
                            })
                            .collect();
                        obj.insert("frame_list".to_owned(), Json::Array(frames));
                    }
                    v
                })
                .collect();
            json!({
                "sender_id": r.sender_id,
                "lock_pid": r.lock_pid,
                "locked": r.locked,
                "segments": segments,
                "watermark": r.watermark.map(Fsn::get),
                "published_fsn": r.published_fsn.map(Fsn::get),
                "acked_fsn": r.acked_fsn.map(Fsn::get),
                "openable": r.openable(),
                "error": r.error,
                "warnings": r.warnings,
            })
        })
        .collect();
    json!({ "slots": slots })
}
