//! Crash and recover through the real codec and planner.
//!
//! A tiny in-memory disk answers the storage engine's outputs with byte
//! images; frames are written with the segment codec; a crash hands the
//! images (all of them for a process crash, only the synced prefix of each
//! for a host crash) to `recovery::plan_reads` → `scan_segment` → `plan`,
//! and the ring is reopened from the plan. The model is a list of payloads
//! and the acknowledged / durable indices; after every recovery the frames
//! the model says must survive are exactly the ones the reopened ring
//! locates, byte for byte (S1, S3, S8, C1, L1).

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use sf_core::durability::DurabilityMode;
use sf_core::recovery::{self, ListingEntry, SegmentRead, WatermarkRead};
use sf_core::ring::SegmentName;
use sf_core::segment::{write_frame, SegmentHeader};
use sf_core::storage::{AppendDecision, Backing, IoOutcome, Storage, StorageConfig, StorageOutput};
use sf_core::watermark::encode_watermark;
use sf_core::{Fsn, Instant};

const SEGMENT_BYTES: u64 = 4096;

/// One segment file: its bytes and how far they are durable.
struct File {
    bytes: Vec<u8>,
    synced: usize,
}

#[derive(Default)]
struct Disk {
    files: BTreeMap<String, File>,
    watermark: Option<[u8; 16]>,
}

impl Disk {
    fn file(&mut self, name: SegmentName) -> &mut File {
        self.files
            .get_mut(&name.file_name())
            .unwrap_or_else(|| panic!("no file {}", name.file_name()))
    }

    /// Answers every pending storage output with success.
    fn pump(&mut self, s: &mut Storage, now: Instant) {
        while let Some(out) = s.poll_output() {
            let (id, outcome) = match out {
                StorageOutput::CreateSegment { id, gen, size } => {
                    let f = File {
                        bytes: vec![0; size as usize],
                        synced: 0,
                    };
                    self.files.insert(gen.file_name(), f);
                    (id, IoOutcome::Done)
                }
                StorageOutput::InstallHeader { id, gen, base_fsn } => {
                    let h = SegmentHeader::new(base_fsn, 0).expect("header").encode();
                    self.file(SegmentName::Gen(gen)).bytes[..h.len()].copy_from_slice(&h);
                    (id, IoOutcome::Done)
                }
                StorageOutput::Sync {
                    id,
                    name,
                    upto_offset,
                    ..
                } => {
                    let f = self.file(name);
                    f.synced = f.synced.max(upto_offset as usize);
                    (id, IoOutcome::Synced { upto_offset })
                }
                StorageOutput::Unlink { id, name } => {
                    self.files.remove(&name.file_name());
                    (id, IoOutcome::Done)
                }
                StorageOutput::PersistAckWatermark { id, fsn, .. } => {
                    self.watermark = Some(encode_watermark(fsn).expect("watermark"));
                    (id, IoOutcome::Done)
                }
                StorageOutput::RemoveAckWatermark { id, .. } => {
                    self.watermark = None;
                    (id, IoOutcome::Done)
                }
            };
            s.io_done(now, id, outcome).expect("io_done");
        }
    }

    /// What survives a crash: every byte (process crash) or only the synced
    /// prefix of each file, the rest reading as zeros (host crash).
    fn after_crash(&self, host: bool) -> Disk {
        let files = self
            .files
            .iter()
            .map(|(name, f)| {
                let mut bytes = f.bytes.clone();
                if host {
                    bytes[f.synced..].fill(0);
                }
                let synced = if host { f.synced } else { 0 };
                (name.clone(), File { bytes, synced })
            })
            .collect();
        Disk {
            files,
            watermark: self.watermark,
        }
    }

    fn recover(&self) -> recovery::RecoveryPlan {
        let listing = self
            .files
            .iter()
            .map(|(name, f)| ListingEntry {
                name: name.clone(),
                size: Ok(f.bytes.len() as u64),
            })
            .collect();
        let reads_plan = recovery::plan_reads(Ok(listing)).expect("plan_reads");
        let reads = reads_plan
            .segment_files()
            .iter()
            .map(|sf| SegmentRead::from_image(&self.files[&sf.name].bytes))
            .collect();
        let wm = match self.watermark {
            Some(b) => WatermarkRead::Bytes(b.to_vec()),
            None => WatermarkRead::Absent,
        };
        recovery::plan(reads_plan, reads, wm).expect("recovery must open the slot")
    }
}

fn payload(fsn: Fsn, len: usize) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend_from_slice(&fsn.get().to_le_bytes());
    p.extend((0..len.saturating_sub(12)).map(|i| (i as u64 ^ fsn.get()) as u8));
    p
}

fn config(durability: DurabilityMode) -> StorageConfig {
    StorageConfig {
        backing: Backing::Files,
        segment_bytes: SEGMENT_BYTES,
        max_total_bytes: SEGMENT_BYTES * 64,
        append_deadline: Duration::from_secs(30),
        durability,
        spares: 1,
        reclaim_min_bytes: 0,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Flush,
    Ack(u8),
    ProcessCrash,
    HostCrash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (12usize..900).prop_map(Op::Append),
        2 => Just(Op::Flush),
        2 => any::<u8>().prop_map(Op::Ack),
        1 => Just(Op::ProcessCrash),
        1 => Just(Op::HostCrash),
    ]
}

/// The model: every payload ever published, by FSN; what is acknowledged and
/// what a returned flush promised is durable.
struct Model {
    frames: Vec<Vec<u8>>,
    acked: Option<Fsn>,
    flushed: Option<Fsn>,
}

fn append(s: &mut Storage, disk: &mut Disk, now: Instant, len: usize) -> Fsn {
    for _ in 0..8 {
        match s.begin_append(now, len as u64).expect("begin_append") {
            AppendDecision::Place(p) => {
                let file = disk.file(SegmentName::Gen(p.gen));
                if let Some(h) = p.header {
                    let h = SegmentHeader::new(h.base_fsn, 0).expect("header").encode();
                    file.bytes[..h.len()].copy_from_slice(&h);
                }
                write_frame(&mut file.bytes, p.offset as usize, &payload(p.fsn, len))
                    .expect("frame fits where the ring placed it");
                let c = s.commit_append(now, p, Ok(())).expect("commit");
                disk.pump(s, now);
                return c.fsn;
            }
            AppendDecision::Wait { .. } => disk.pump(s, now),
        }
    }
    panic!("append kept waiting although every I/O succeeds and frames are acknowledged");
}

fn check_survivors(s: &Storage, disk: &Disk, model: &Model, must_survive_upto: Option<Fsn>) {
    // S8: never more acknowledged than the server acknowledged.
    assert!(
        Fsn::to_spec(s.acked_fsn()) <= Fsn::to_spec(model.acked),
        "S8: recovered acked {:?} above the true acked {:?}",
        s.acked_fsn(),
        model.acked
    );
    let first = model.acked.map_or(0, |a| a.get() + 1);
    let Some(last) = must_survive_upto else {
        return;
    };
    for f in first..=last.get() {
        let fsn = Fsn(f);
        let loc = s
            .locate(fsn)
            .unwrap_or_else(|| panic!("frame {fsn} lost across the crash"));
        let name = loc.name.file_name();
        let image = &disk.files[&name].bytes;
        let got = sf_core::segment::read_frame(image, loc.offset)
            .unwrap_or_else(|e| panic!("frame {fsn} unreadable: {e}"));
        assert_eq!(got, &model.frames[f as usize][..], "frame {fsn} changed");
    }
}

fn run(ops: Vec<Op>, durability: DurabilityMode) {
    let now = Instant(1);
    let mut disk = Disk::default();
    let mut s =
        Storage::open(config(durability), recovery::RecoveredSlot::empty(), now).expect("open");
    disk.pump(&mut s, now);
    let mut model = Model {
        frames: Vec::new(),
        acked: None,
        flushed: None,
    };
    for op in ops {
        match op {
            Op::Append(len) => {
                let fsn = append(&mut s, &mut disk, now, len);
                assert_eq!(
                    fsn.get() as usize,
                    model.frames.len(),
                    "S1: FSNs contiguous"
                );
                model.frames.push(payload(fsn, len));
            }
            Op::Flush => {
                let t = s.end_batch(now);
                disk.pump(&mut s, now);
                assert!(
                    s.is_batch_done(t),
                    "C1: a flush completes once its syncs do"
                );
                model.flushed = s.published_fsn();
            }
            Op::Ack(frac) => {
                let Some(p) = s.published_fsn() else { continue };
                let lo = model.acked.map_or(0, |a| a.get() + 1);
                if lo > p.get() {
                    continue;
                }
                let fsn = Fsn(lo + (p.get() - lo) * frac as u64 / 255);
                s.acknowledge(now, fsn);
                disk.pump(&mut s, now);
                model.acked = Some(fsn);
            }
            Op::ProcessCrash | Op::HostCrash => {
                let host = matches!(op, Op::HostCrash);
                let published = s.published_fsn();
                disk = disk.after_crash(host);
                let plan = disk.recover();
                // S1: FSNs continue after what survived, never restart.
                let survivors = if host && durability != DurabilityMode::Memory {
                    model.flushed
                } else if host {
                    None
                } else {
                    published
                };
                if !host {
                    assert_eq!(
                        plan.slot.next_fsn.get(),
                        published.map_or(0, |p| p.get() + 1),
                        "S1: a process crash loses nothing"
                    );
                }
                s = Storage::open(config(durability), plan.slot, now).expect("reopen");
                disk.pump(&mut s, now);
                check_survivors(&s, &disk, &model, survivors);
                // Whatever did not survive is forgotten by the model too, so
                // FSNs that recovery hands out again are compared afresh.
                let next = s.next_fsn().get() as usize;
                assert!(
                    next >= survivors.map_or(0, |f| f.get() as usize + 1),
                    "S1: FSN reuse below a surviving frame"
                );
                model.frames.truncate(next);
                model.acked = match (model.acked, s.acked_fsn()) {
                    (Some(a), _) if a.get() as usize >= next => {
                        next.checked_sub(1).map(|n| Fsn(n as u64))
                    }
                    (a, _) => a,
                };
                model.flushed = s.published_fsn().min(model.flushed);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn crash_recovery_keeps_what_the_model_requires_memory_durability(ops in prop::collection::vec(op(), 1..120)) {
        run(ops, DurabilityMode::Memory);
    }

    #[test]
    fn crash_recovery_keeps_what_the_model_requires_flush_durability(ops in prop::collection::vec(op(), 1..120)) {
        run(ops, DurabilityMode::Flush);
    }
}
