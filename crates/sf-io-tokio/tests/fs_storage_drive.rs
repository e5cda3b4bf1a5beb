//! The file layer performing the core's storage requests one to one: a
//! single-threaded driver runs `sf_core::storage::Storage` over real segment
//! files (create, install, frames, syncs, unlinks, the ack watermark), then
//! the process "crashes" (everything dropped, nothing closed) and the slot
//! reopens to exactly the state the core had (S1, S3, S8, C1 for flush
//! durability).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sf_core::durability::DurabilityMode;
use sf_core::ring::SegmentName;
use sf_core::segment::SegmentHeader;
use sf_core::storage::{AppendDecision, Storage, StorageConfig, StorageOutput};
use sf_core::{Fsn, Instant, SegmentGen};
use sf_io_tokio::fs::{
    io_outcome, open_slot_dir, sync_outcome, unlink_segment, SegmentBuffer, SegmentFile,
    WatermarkFile,
};

fn payload(fsn: u64) -> Vec<u8> {
    let mut p = b"QWP1".to_vec();
    p.extend_from_slice(&fsn.to_le_bytes());
    p.resize(12 + (fsn as usize * 53) % 400, (fsn % 13) as u8);
    p
}

struct Driver<'a> {
    dir: &'a Path,
    files: BTreeMap<SegmentGen, SegmentFile>,
    watermark: WatermarkFile,
    now: Instant,
}

impl Driver<'_> {
    fn file(&mut self, name: SegmentName) -> &mut SegmentFile {
        let gen = name.gen().expect("no legacy segment in this test");
        self.files
            .get_mut(&gen)
            .expect("a segment the core named is open")
    }

    /// Performs every queued output and feeds its outcome back, until the
    /// core asks for nothing more.
    fn drain(&mut self, storage: &mut Storage) {
        while let Some(out) = storage.poll_output() {
            let (id, outcome) = match out {
                StorageOutput::CreateSegment { id, gen, size } => {
                    let r = SegmentFile::create_spare(self.dir, gen, size);
                    let outcome = io_outcome(&r);
                    if let Ok(seg) = r {
                        self.files.insert(gen, seg);
                    }
                    (id, outcome)
                }
                StorageOutput::InstallHeader { id, gen, base_fsn } => {
                    let header = SegmentHeader::new(base_fsn, 0).unwrap();
                    let r = self.file(SegmentName::Gen(gen)).write_header(&header);
                    (id, io_outcome(&r))
                }
                StorageOutput::Sync {
                    id,
                    name,
                    from_offset,
                    upto_offset,
                    rewrite,
                } => {
                    let seg = self.file(name);
                    let r = if rewrite {
                        seg.resync_range(from_offset, upto_offset)
                    } else {
                        seg.sync_range(from_offset, upto_offset)
                    };
                    (id, sync_outcome(&r))
                }
                StorageOutput::Unlink { id, name } => {
                    let r = match name.gen().and_then(|g| self.files.remove(&g)) {
                        Some(seg) => seg.unlink(),
                        None => unlink_segment(self.dir, name),
                    };
                    (id, io_outcome(&r))
                }
                StorageOutput::PersistAckWatermark { id, fsn, durable } => {
                    let r = self.watermark.persist(fsn);
                    let r = r.and_then(|()| {
                        if durable {
                            self.watermark.sync()
                        } else {
                            Ok(())
                        }
                    });
                    (id, io_outcome(&r))
                }
                StorageOutput::RemoveAckWatermark { id, .. } => {
                    (id, io_outcome(&self.watermark.remove()))
                }
            };
            storage.io_done(self.now, id, outcome).unwrap();
        }
    }

    /// Appends one frame the way the producer does, serving the core's
    /// requests whenever it says to wait.
    fn append(&mut self, storage: &mut Storage, fsn: u64) {
        let p = payload(fsn);
        loop {
            match storage.begin_append(self.now, p.len() as u64).unwrap() {
                AppendDecision::Place(placement) => {
                    assert_eq!(placement.fsn, Fsn(fsn), "S1: FSNs are contiguous");
                    let seg = self.file(SegmentName::Gen(placement.gen));
                    if let Some(h) = placement.header {
                        seg.write_header(&SegmentHeader::new(h.base_fsn, 0).unwrap())
                            .unwrap();
                    }
                    let end = seg.write_frame(placement.offset, &p).unwrap();
                    assert_eq!(end, placement.offset + 8 + p.len() as u64);
                    storage.commit_append(self.now, placement, Ok(())).unwrap();
                    return;
                }
                AppendDecision::Wait { .. } => {
                    self.drain(storage);
                    if let Some(t) = storage.poll_timeout() {
                        self.now = self.now.max(t);
                        storage.handle_timeout(self.now);
                    }
                }
            }
        }
    }
}

#[test]
fn core_requests_on_real_files_survive_a_crash_and_reopen_exactly() {
    const FRAMES: u64 = 400;
    let sf = tempfile::tempdir().unwrap();
    let slot = sf.path().join("s");
    let config = StorageConfig {
        segment_bytes: 4096,
        max_total_bytes: 64 * 1024,
        durability: DurabilityMode::Flush,
        ..StorageConfig::files()
    };

    let (acked_at_crash, durable_at_crash) = {
        let opened = open_slot_dir(&slot).unwrap();
        let mut storage = Storage::open(config.clone(), opened.plan.slot, Instant::ZERO).unwrap();
        let mut d = Driver {
            dir: &slot,
            files: BTreeMap::new(),
            watermark: WatermarkFile::open(&slot).unwrap(),
            now: Instant::ZERO,
        };
        for fsn in 0..FRAMES {
            d.now = d.now.saturating_add(Duration::from_micros(10));
            d.append(&mut storage, fsn);
            if fsn % 9 == 8 {
                // A flush: the core asks for the sync itself (L4).
                let ticket = storage.end_batch(d.now);
                d.drain(&mut storage);
                assert!(storage.is_batch_done(ticket), "C1: flush batch durable");
            }
            if fsn % 25 == 24 {
                // The server acknowledges all but the last few frames.
                storage.acknowledge(d.now, Fsn(fsn - 6));
            }
            d.drain(&mut storage);
        }
        d.drain(&mut storage);
        assert!(
            d.files.len() < (FRAMES as usize * 200) / 4096,
            "S4: acknowledged segments were unlinked"
        );
        (storage.acked_fsn(), storage.durable_fsn())
        // Crash: the storage, the mappings and the lock are dropped, nothing
        // is closed or flushed.
    };
    assert!(acked_at_crash.is_some() && durable_at_crash.is_some());

    let opened = open_slot_dir(&slot).unwrap();
    let s = &opened.plan.slot;
    assert_eq!(s.next_fsn, Fsn(FRAMES), "S1: every frame is back");
    // S8: the persisted watermark restores the acknowledgement exactly.
    assert_eq!(s.acked, acked_at_crash);
    let first_unacked = acked_at_crash.map_or(0, |a| a.get() + 1);
    assert!(s.segments.first().unwrap().base_fsn.get() <= first_unacked);

    // The core accepts the recovered slot, and every unacknowledged frame it
    // locates reads back through the reopened mappings.
    let storage = Storage::open(config, s.clone(), Instant::ZERO).unwrap();
    for fsn in first_unacked..FRAMES {
        let at = storage.locate(Fsn(fsn)).unwrap();
        let seg = opened.segments.get(at.name).unwrap();
        assert_eq!(
            seg.read_frame(at.offset).unwrap(),
            payload(fsn),
            "FSN {fsn}"
        );
    }
}
