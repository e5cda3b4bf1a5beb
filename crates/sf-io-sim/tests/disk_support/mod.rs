//! A small rig for the disk tests: the real storage engine
//! (`sf_core::storage::Storage`) driven over a [`SimDisk`], recording what
//! the engine was told (which bytes a sync confirmed) so tests can check
//! the disk against it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use sf_core::durability::DurabilityMode;
use sf_core::recovery::{RecoveredSlot, RecoveryError};
use sf_core::ring::SegmentName;
use sf_core::segment::{frame_len, scan_segment, ScanOutcome};
use sf_core::storage::{
    AppendDecision, AppendError, Backing, IoOutcome, Storage, StorageConfig, StorageOutput,
};
use sf_core::{Fsn, Instant};
use sf_io_sim::{CrashKind, DiskFaults, SimDisk, SimRng};

/// Small segments so rotations, trims and unlinks happen often.
pub const SEGMENT_BYTES: u64 = 8192;

pub fn config(durability: DurabilityMode) -> StorageConfig {
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

/// A QWP1-looking payload that names its FSN, so a misplaced frame is
/// recognisable.
pub fn payload(fsn: Fsn, len: usize, salt: u64) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend_from_slice(&fsn.get().to_le_bytes());
    p.extend((0..len.saturating_sub(12)).map(|i| (i as u64 ^ fsn.get() ^ salt) as u8));
    p
}

pub struct Rig {
    pub config: StorageConfig,
    pub s: Storage,
    pub disk: SimDisk,
    pub now: Instant,
    /// Per file: the highest offset a sync outcome confirmed to the engine
    /// (capped at the request, as the engine caps it).
    pub confirmed: BTreeMap<String, u64>,
    /// Per file: every frame written, by offset (later writes replace).
    pub written: BTreeMap<String, BTreeMap<u64, Vec<u8>>>,
    pub salt: u64,
}

impl Rig {
    pub fn new(seed: u64, faults: DiskFaults, config: StorageConfig) -> Rig {
        let disk = SimDisk::new(SimRng::new(seed).fork("disk"), faults);
        let now = Instant(1_000);
        let s = Storage::open(config.clone(), RecoveredSlot::empty(), now).expect("open");
        let mut rig = Rig {
            config,
            s,
            disk,
            now,
            confirmed: BTreeMap::new(),
            written: BTreeMap::new(),
            salt: 0,
        };
        rig.pump();
        rig
    }

    /// Performs every pending output and due retry at the current time.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            while let Some(op) = self.s.poll_output() {
                progressed = true;
                let outcome = self.disk.perform(&op);
                match (&op, outcome) {
                    (
                        StorageOutput::Sync {
                            name, upto_offset, ..
                        },
                        IoOutcome::Synced { upto_offset: got },
                    ) => {
                        let e = self.confirmed.entry(name.file_name()).or_insert(0);
                        *e = (*e).max(got.min(*upto_offset));
                    }
                    (StorageOutput::Unlink { name, .. }, IoOutcome::Done) => {
                        self.confirmed.remove(&name.file_name());
                        self.written.remove(&name.file_name());
                    }
                    _ => {}
                }
                self.s.io_done(self.now, op.id(), outcome).expect("io_done");
            }
            if self.s.poll_timeout().is_some_and(|t| t <= self.now) {
                self.s.handle_timeout(self.now);
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
        panic!("storage kept emitting outputs without time passing");
    }

    /// Moves virtual time to the next retry (or by `d` when none).
    pub fn advance(&mut self, d: Duration) {
        let next = self
            .s
            .poll_timeout()
            .filter(|t| *t > self.now)
            .unwrap_or(self.now.saturating_add(d));
        self.now = next.min(self.now.saturating_add(d)).max(self.now);
        self.s.handle_timeout(self.now);
        self.pump();
    }

    /// Appends one frame of `len` bytes, waiting (in virtual time) through
    /// retries; `Err` when a write failed (the caller may append again).
    pub fn append(&mut self, len: usize) -> Result<Fsn, AppendError> {
        for _ in 0..200 {
            match self.s.begin_append(self.now, len as u64)? {
                AppendDecision::Place(p) => {
                    let bytes = payload(p.fsn, len, self.salt);
                    let r = self.disk.write_frame(&p, &bytes);
                    if r.is_ok() {
                        self.written
                            .entry(p.gen.file_name())
                            .or_default()
                            .insert(p.offset, bytes);
                    }
                    let c = self.s.commit_append(self.now, p, r);
                    self.pump();
                    return c.map(|c| c.fsn);
                }
                AppendDecision::Wait { .. } => self.advance(Duration::from_millis(50)),
            }
        }
        panic!("append waited for 200 rounds");
    }

    /// Closes the batch and waits (virtual time) for it per the mode.
    pub fn flush(&mut self) -> bool {
        let t = self.s.end_batch(self.now);
        self.pump();
        for _ in 0..200 {
            if self.s.is_batch_done(t) {
                return true;
            }
            self.advance(Duration::from_millis(50));
        }
        false
    }

    pub fn ack(&mut self, fsn: Fsn) {
        self.s.acknowledge(self.now, fsn);
        self.pump();
    }

    /// Crashes, checks the confirmed frames, recovers through the real
    /// planner and reopens the engine.
    pub fn crash_and_reopen(&mut self, kind: CrashKind) -> Result<(), RecoveryError> {
        self.disk.crash(kind);
        self.assert_confirmed_frames_intact(kind.as_str());
        self.reopen()
    }

    /// Recovers through the real planner and reopens the engine; forgets
    /// written frames recovery did not keep (their offsets get reused).
    pub fn reopen(&mut self) -> Result<(), RecoveryError> {
        let plan = self.disk.recover()?;
        let mut written = BTreeMap::new();
        let mut confirmed = BTreeMap::new();
        for seg in &plan.slot.segments {
            let name = seg.file_name();
            if let Some(mut frames) = self.written.remove(&name) {
                frames.retain(|off, _| seg.frame_offsets.contains(off));
                written.insert(name.clone(), frames);
            }
            if let Some(c) = self.confirmed.get(&name) {
                confirmed.insert(name, (*c).min(seg.append_offset));
            }
        }
        self.written = written;
        self.confirmed = confirmed;
        self.salt = self.salt.wrapping_add(1);
        self.s = Storage::open(self.config.clone(), plan.slot, self.now).expect("reopen");
        self.pump();
        Ok(())
    }

    /// Checks, through the real `scan_segment`, that every frame a sync
    /// confirmed to the engine is intact in file image `image_of(name)`.
    pub fn assert_confirmed_frames_intact(&self, what: &str) {
        for (name, &upto) in &self.confirmed {
            let Some(frames) = self.written.get(name) else {
                continue;
            };
            let owed: Vec<(u64, &Vec<u8>)> = frames
                .iter()
                .filter(|(off, p)| *off + frame_len(p.len()) as u64 <= upto)
                .map(|(o, p)| (*o, p))
                .collect();
            if owed.is_empty() {
                continue;
            }
            let image = self.disk.volatile_image(name).unwrap_or_else(|| {
                panic!("{what}: {name} vanished though {upto} bytes were synced")
            });
            let scan = match scan_segment(image) {
                Ok(ScanOutcome::Segment(s)) => s,
                other => panic!("{what}: {name} synced to {upto} no longer scans: {other:?}"),
            };
            for (off, p) in owed {
                assert!(
                    scan.frame_offsets.contains(&off),
                    "{what}: synced frame at {name}@{off} (synced to {upto}) not verified by scan_segment (last_good {}, tail {:?})",
                    scan.last_good,
                    scan.tail
                );
                let got = sf_core::segment::read_frame(image, off).expect("verified");
                assert_eq!(got, &p[..], "{what}: synced frame {name}@{off} changed");
            }
        }
    }

    pub fn segment_file(name: SegmentName) -> String {
        name.file_name()
    }
}
