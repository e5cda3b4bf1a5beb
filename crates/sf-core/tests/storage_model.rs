//! Model-based property test of the storage engine: random sequences of
//! appends (sizes that force rotations), write failures, batch ends,
//! acknowledgements, I/O completions (success, failure, mid-frame syncs),
//! timer advances and crash-reopens, checked after every step against a
//! reference model (a Vec of frame sizes and an acked index).

use std::collections::BTreeMap;

use core::time::Duration;

use proptest::prelude::*;

use sf_core::durability::{BatchTicket, DurabilityMode};
use sf_core::recovery::{LeftoverSpare, RecoveredSegment, RecoveredSlot};
use sf_core::ring::{SegmentName, SegmentState};
use sf_core::storage::{
    AppendDecision, AppendError, Backing, IoFailure, IoId, IoOutcome, LinkState, Placement,
    Storage, StorageConfig, StorageOutput,
};
use sf_core::{Fsn, Instant, SegmentGen};

#[derive(Debug, Clone)]
enum Op {
    Begin { len: u64 },
    Append { len: u64, fail: bool },
    Commit { fail: bool },
    EndBatch,
    Ack { back: u64 },
    Io { pick: usize, outcome: u8, frac: u8 },
    Advance { ms: u16 },
    Link { up: bool },
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<u64>().prop_map(|len| Op::Begin { len }),
        10 => (any::<u64>(), prop::bool::weighted(0.05))
            .prop_map(|(len, fail)| Op::Append { len, fail }),
        3 => prop::bool::weighted(0.1).prop_map(|fail| Op::Commit { fail }),
        2 => Just(Op::EndBatch),
        3 => (0u64..4).prop_map(|back| Op::Ack { back }),
        12 => (any::<usize>(), 0u8..10, any::<u8>())
            .prop_map(|(pick, outcome, frac)| Op::Io { pick, outcome, frac }),
        2 => (0u16..1500).prop_map(|ms| Op::Advance { ms }),
        1 => any::<bool>().prop_map(|up| Op::Link { up }),
        1 => Just(Op::Crash),
    ]
}

#[derive(Debug, Clone)]
struct Params {
    segment_bytes: u64,
    cap_segments: u64,
    spares: usize,
    durability: DurabilityMode,
    files: bool,
    reclaim_min_bytes: u64,
}

fn params() -> impl Strategy<Value = Params> {
    (
        32u64..160,
        1u64..5,
        1usize..4,
        0u8..3,
        any::<bool>(),
        prop_oneof![Just(0u64), Just(40), Just(u64::MAX)],
    )
        .prop_map(
            |(segment_bytes, cap_segments, spares, d, files, reclaim_min_bytes)| {
                let durability = match (files, d) {
                    (true, 1) => DurabilityMode::Flush,
                    (true, 2) => DurabilityMode::Append,
                    _ => DurabilityMode::Memory,
                };
                Params {
                    segment_bytes,
                    cap_segments,
                    spares,
                    durability,
                    files,
                    reclaim_min_bytes,
                }
            },
        )
}

struct Harness {
    s: Storage,
    config: StorageConfig,
    now: Instant,
    /// Outputs taken from the engine, not yet completed.
    outstanding: Vec<StorageOutput>,
    pending: Option<Placement>,
    /// The model: payload length of every published frame, by FSN.
    frames: Vec<u64>,
    /// The model's acknowledged FSN.
    acked: Option<u64>,
    durable_floor: Option<Fsn>,
    /// Highest watermark the adapter persisted.
    watermark: Option<Fsn>,
    /// Bytes each segment has truly synced (what the adapter confirmed).
    synced: BTreeMap<SegmentName, u64>,
    sync_requests: BTreeMap<IoId, (SegmentName, u64)>,
    tickets: Vec<BatchTicket>,
    max_gen: u64,
}

fn id_of(o: &StorageOutput) -> IoId {
    o.id()
}

impl Harness {
    fn new(p: &Params) -> Harness {
        let config = StorageConfig {
            backing: if p.files {
                Backing::Files
            } else {
                Backing::Memory
            },
            segment_bytes: p.segment_bytes,
            max_total_bytes: p.segment_bytes * p.cap_segments,
            append_deadline: Duration::from_millis(500),
            durability: p.durability,
            spares: p.spares,
            reclaim_min_bytes: p.reclaim_min_bytes,
        };
        let s = Storage::open(config.clone(), RecoveredSlot::empty(), Instant::ZERO)
            .expect("open empty");
        let mut h = Harness {
            s,
            config,
            now: Instant::ZERO,
            outstanding: Vec::new(),
            pending: None,
            frames: Vec::new(),
            acked: None,
            durable_floor: None,
            watermark: None,
            synced: BTreeMap::new(),
            sync_requests: BTreeMap::new(),
            tickets: Vec::new(),
            max_gen: 0,
        };
        h.pull();
        h
    }

    fn pull(&mut self) {
        while let Some(o) = self.s.poll_output() {
            match &o {
                StorageOutput::CreateSegment { gen, .. } => {
                    self.max_gen = self.max_gen.max(gen.get());
                }
                StorageOutput::Sync {
                    id,
                    name,
                    upto_offset,
                    ..
                } => {
                    self.sync_requests.insert(*id, (*name, *upto_offset));
                }
                _ => {}
            }
            self.outstanding.push(o);
        }
    }

    fn complete(&mut self, i: usize, outcome: u8, frac: u8) {
        if i >= self.outstanding.len() {
            return;
        }
        let o = self.outstanding.swap_remove(i);
        let id = id_of(&o);
        let result = match (&o, outcome) {
            (_, 0..=5) => IoOutcome::Done,
            (StorageOutput::Sync { upto_offset, .. }, 6..=7) => IoOutcome::Synced {
                upto_offset: upto_offset * u64::from(frac) / 255,
            },
            (StorageOutput::Sync { .. }, _) => IoOutcome::Synced {
                upto_offset: u64::MAX, // beyond the request: must be capped
            },
            _ => IoOutcome::Failed(if outcome.is_multiple_of(2) {
                IoFailure::NoSpace
            } else {
                IoFailure::Io { os_code: Some(5) }
            }),
        };
        let result = match (&o, outcome) {
            (StorageOutput::Sync { .. }, 9) => IoOutcome::Failed(IoFailure::Io { os_code: None }),
            _ => result,
        };
        if let Some((name, upto)) = self.sync_requests.remove(&id) {
            let confirmed = match result {
                IoOutcome::Done => Some(upto),
                IoOutcome::Synced { upto_offset } => Some(upto_offset.min(upto)),
                IoOutcome::Failed(_) => None,
            };
            if let Some(c) = confirmed {
                let e = self.synced.entry(name).or_insert(0);
                *e = (*e).max(c);
            }
        }
        if let (StorageOutput::PersistAckWatermark { fsn, .. }, IoOutcome::Done) = (&o, result) {
            self.watermark = self.watermark.max(Some(*fsn));
        }
        self.s.io_done(self.now, id, result).expect("known io");
        self.pull();
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::Append { len, fail } => {
                self.step(&Op::Begin { len: *len });
                self.step(&Op::Commit { fail: *fail });
                return;
            }
            Op::Begin { len } => {
                // Mostly small frames (many per segment), some up to the max.
                let max = self.config.max_payload_len();
                let len = if len.is_multiple_of(4) {
                    len % (max + 1)
                } else {
                    len % (max / 4 + 1)
                };
                match self.s.begin_append(self.now, len) {
                    Ok(AppendDecision::Place(p)) => {
                        assert!(self.pending.is_none());
                        assert_eq!(p.fsn.get(), self.frames.len() as u64, "S1 placement FSN");
                        assert_eq!(u64::from(p.payload_len), len);
                        assert!(
                            p.offset >= 24 && p.offset + 8 + len <= self.config.segment_bytes,
                            "the frame fits its segment"
                        );
                        self.pending = Some(p);
                    }
                    Ok(AppendDecision::Wait { until, .. }) => assert!(until > self.now),
                    Err(AppendError::AppendInProgress { fsn }) => {
                        assert_eq!(self.pending.map(|p| p.fsn), Some(fsn));
                    }
                    Err(AppendError::Backpressure(_)) => {}
                    Err(e) => panic!("unexpected append error {e}"),
                }
            }
            Op::Commit { fail } => {
                if let Some(p) = self.pending.take() {
                    let result = if *fail {
                        Err(IoFailure::NoSpace)
                    } else {
                        Ok(())
                    };
                    match self.s.commit_append(self.now, p, result) {
                        Ok(c) => {
                            assert!(!fail);
                            assert_eq!(c.fsn.get(), self.frames.len() as u64);
                            self.frames.push(u64::from(p.payload_len));
                            if let Some(t) = c.ticket {
                                self.tickets.push(t);
                            }
                        }
                        Err(AppendError::WriteFailed { fsn, .. }) => {
                            assert!(fail);
                            assert_eq!(fsn, p.fsn);
                        }
                        Err(e) => panic!("unexpected commit error {e}"),
                    }
                }
            }
            Op::EndBatch => {
                let t = self.s.end_batch(self.now);
                self.tickets.push(t);
            }
            Op::Ack { back } => {
                if let Some(last) = (self.frames.len() as u64).checked_sub(1) {
                    let fsn = last.saturating_sub(*back);
                    self.s.acknowledge(self.now, Fsn(fsn));
                    self.acked = self.acked.max(Some(fsn));
                }
            }
            Op::Io {
                pick,
                outcome,
                frac,
            } => {
                if !self.outstanding.is_empty() {
                    let i = pick % self.outstanding.len();
                    self.complete(i, *outcome, *frac);
                }
            }
            Op::Advance { ms } => {
                self.now = self
                    .now
                    .saturating_add(Duration::from_millis(u64::from(*ms)));
                self.s.handle_timeout(self.now);
            }
            Op::Link { up } => {
                let link = if *up {
                    LinkState::Up
                } else {
                    LinkState::Reconnecting {
                        attempts: 3,
                        outage_started: self.now,
                    }
                };
                self.s.set_link_state(self.now, link);
            }
            Op::Crash => {
                if self.config.backing == Backing::Files {
                    self.crash_and_reopen();
                }
            }
        }
        self.pull();
        self.check();
    }

    /// What recovery would plan from the disk after a process crash: the
    /// log segments as they are (a retired last segment has a torn tail),
    /// spares as leftovers, acked per S8 from the persisted watermark.
    /// Segments whose unlink was pending are taken as gone (their frames are
    /// all acknowledged; were they found, recovery would trim them again).
    fn crash_and_reopen(&mut self) {
        let infos = self.s.segments();
        let log: Vec<_> = infos
            .iter()
            .filter(|i| matches!(i.state, SegmentState::Active | SegmentState::Sealed))
            .collect();
        let mut segments = Vec::new();
        for (k, i) in log.iter().enumerate() {
            let offsets = self.s.frame_offsets(i.name).expect("log segment");
            let base = i.base_fsn.expect("log segment has a base");
            let retired_last = k + 1 == log.len() && i.state == SegmentState::Sealed;
            segments.push(RecoveredSegment {
                gen: i.name.gen(),
                base_fsn: base,
                frame_offsets: offsets,
                append_offset: i.append_offset,
                file_size: i.size,
                torn_tail_bytes: u64::from(retired_last),
            });
        }
        let leftover_spares = infos
            .iter()
            .filter(|i| i.state == SegmentState::Spare)
            .filter_map(|i| {
                i.name.gen().map(|gen| LeftoverSpare {
                    gen,
                    file_size: i.size,
                })
            })
            .collect();
        for i in &infos {
            if let Some(g) = i.name.gen() {
                self.max_gen = self.max_gen.max(g.get());
            }
        }
        let next_fsn = self.s.next_fsn();
        let published = next_fsn.prev();
        let low = segments.first().and_then(|s| s.base_fsn.prev());
        let wm = self.watermark.filter(|w| Some(*w) <= published);
        let acked = low.max(wm);
        let slot = RecoveredSlot {
            segments,
            leftover_spares,
            next_fsn,
            acked,
            next_gen: SegmentGen(self.max_gen + 1),
        };
        let had_segments = !slot.segments.is_empty();
        self.s = Storage::open(self.config.clone(), slot, self.now).expect("reopen");
        // Every unacknowledged frame survives; acknowledged ones beyond the
        // persisted watermark may be replayed (S8).
        let new_acked = self.s.acked_fsn().map(Fsn::get);
        assert!(
            new_acked <= self.acked || !had_segments,
            "S8: reopen never acks more"
        );
        self.acked = new_acked;
        self.outstanding.clear();
        self.sync_requests.clear();
        self.pending = None;
        self.tickets.clear();
        self.durable_floor = self.s.durable_fsn();
    }

    fn check(&mut self) {
        let s = &self.s;
        let n = self.frames.len() as u64;
        assert_eq!(
            s.next_fsn(),
            Fsn(n),
            "S1: FSNs contiguous, failures never advance"
        );
        assert_eq!(s.published_fsn(), n.checked_sub(1).map(Fsn));
        assert_eq!(s.acked_fsn().map(Fsn::get), self.acked);
        let seg = self.config.segment_bytes;
        let cap = self.config.max_total_bytes;
        assert!(
            s.resident_bytes() <= cap + seg,
            "S6 resident {}",
            s.resident_bytes()
        );
        assert!(
            s.resident_bytes() + s.slack_bytes() <= cap + seg,
            "S6 footprint {} + {}",
            s.resident_bytes(),
            s.slack_bytes()
        );
        assert!(s.provisioning_in_flight() <= self.config.spares, "item 3");
        assert_eq!(s.outstanding_io(), self.outstanding.len(), "no leaked I/O");
        // L1
        let durable = s.durable_fsn();
        assert!(durable >= self.durable_floor, "L1: durable never decreases");
        assert!(durable <= s.published_fsn(), "L1: durable <= published");
        self.durable_floor = durable;
        // Log contiguity.
        let mut expect: Option<Fsn> = None;
        for i in s.segments() {
            if let Some(b) = i.base_fsn {
                if let Some(e) = expect {
                    assert_eq!(b, e, "S1: log segments contiguous");
                }
                expect = Some(b.plus(i.frame_count));
            }
        }
        if let Some(e) = expect {
            assert_eq!(e, Fsn(n));
        }
        // Replay: acked frames gone, unacked ones locatable with their length.
        for f in 0..n {
            let loc = s.locate(Fsn(f));
            if self.acked.is_some_and(|a| f <= a) {
                assert_eq!(loc, None, "acked frame {f} is not replayable");
            } else {
                let loc = loc.unwrap_or_else(|| panic!("unacked frame {f} locatable"));
                assert_eq!(u64::from(loc.len), self.frames[f as usize]);
                // L2: a durable, unacked frame lies in truly synced bytes.
                if durable.is_some_and(|d| Fsn(f) <= d) {
                    let synced = self.synced.get(&loc.name).copied().unwrap_or(0);
                    assert!(
                        loc.offset + 8 + u64::from(loc.len) <= synced,
                        "L2/L5: durable frame {f} ends beyond synced bytes {synced}"
                    );
                }
            }
        }
        let oldest = self.acked.map_or(0, |a| a + 1);
        assert_eq!(s.oldest_unacked(), (oldest < n).then_some(Fsn(oldest)));
        for t in &self.tickets {
            if s.is_batch_done(*t) && self.config.durability != DurabilityMode::Memory {
                assert!(t.last_fsn <= durable, "L3: done batch is durable");
            }
        }
    }

    /// Faults stop: complete everything, let timers fire. Every closed batch
    /// must then be done (L4), and appends must proceed (no deadlock).
    fn settle(&mut self) {
        if let Some(p) = self.pending.take() {
            let c = self.s.commit_append(self.now, p, Ok(())).expect("commit");
            self.frames.push(u64::from(p.payload_len));
            if let Some(t) = c.ticket {
                self.tickets.push(t);
            }
        }
        self.pull();
        let mut budget = 10_000u32;
        let mut drain_all = |h: &mut Harness| {
            while !h.outstanding.is_empty() {
                budget = budget.checked_sub(1).expect("liveness: I/O never settles");
                h.complete(0, 0, 0);
            }
        };
        for _ in 0..200 {
            drain_all(self);
            match self.s.poll_timeout() {
                Some(at) => {
                    self.now = self.now.max(at);
                    self.s.handle_timeout(self.now);
                    self.pull();
                }
                None => break,
            }
        }
        self.check();
        for t in &self.tickets {
            assert!(
                self.s.is_batch_done(*t),
                "L4: closed batch {t:?} done once quiet"
            );
        }
        // Acknowledge everything: the slot shrinks to one segment.
        if let Some(last) = self.s.published_fsn() {
            self.s.acknowledge(self.now, last);
            self.acked = Some(last.get());
            self.pull();
            drain_all(self);
            self.check();
            assert!(
                self.s.resident_bytes()
                    <= self
                        .config
                        .segment_bytes
                        .max(self.s.segments().iter().map(|i| i.size).max().unwrap_or(0))
            );
            assert_eq!(self.s.oldest_unacked(), None);
        }
        match self.s.begin_append(self.now, 0) {
            Ok(AppendDecision::Place(_)) => {}
            other => panic!("append must proceed once quiet: {other:?}"),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn storage_matches_model(p in params(), ops in prop::collection::vec(op(), 1..300)) {
        let mut h = Harness::new(&p);
        for op in &ops {
            h.step(op);
        }
        h.settle();
    }
}
