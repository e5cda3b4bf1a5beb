//! A small fake driver for engine tests: answers storage outputs, records
//! everything else, and plays a scripted server. Virtual time only.
#![allow(dead_code)]

use std::num::NonZeroUsize;
use std::time::Duration;

use qwp_proto::response::{DurableAckFrame, ErrorFrame, OkFrame, Response, TableSeqTxn};
use sf_core::engine::{Engine, EngineConfig, Input, Output};
use sf_core::recovery::RecoveredSlot;
use sf_core::storage::{AppendDecision, IoOutcome, StorageConfig, StorageOutput};
use sf_core::{Fsn, Instant};

/// Small memory-backed storage: 4 KiB segments, 64 KiB cap.
pub fn small_storage() -> StorageConfig {
    StorageConfig {
        segment_bytes: 4096,
        max_total_bytes: 64 * 1024,
        append_deadline: Duration::from_secs(2),
        ..StorageConfig::memory()
    }
}

/// One host over [`small_storage`], spec defaults otherwise.
pub fn config(hosts: usize) -> EngineConfig {
    EngineConfig::new(
        small_storage(),
        NonZeroUsize::new(hosts).expect("test host count is positive"),
    )
}

/// The payload length every test frame has.
pub const PAYLOAD: u64 = 16;

/// How the fake driver answers storage requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageMode {
    /// Every request succeeds at once.
    Instant,
    /// Syncs are held until [`World::release_syncs`].
    HoldSyncs,
    /// `.ack-watermark` writes are held until [`World::release_held`].
    HoldWatermarks,
}

/// The engine plus a fake adapter.
pub struct World {
    pub engine: Engine,
    pub now: Instant,
    /// Every output, storage ones included, in order (for D1).
    pub trace: Vec<Output>,
    /// Non-storage outputs not yet taken by the test.
    pub log: Vec<Output>,
    pub storage_mode: StorageMode,
    pub held: Vec<StorageOutput>,
}

impl World {
    pub fn new(config: EngineConfig) -> World {
        World::with_slot(config, RecoveredSlot::empty(), 7)
    }

    pub fn with_slot(config: EngineConfig, slot: RecoveredSlot, seed: u64) -> World {
        let engine = Engine::new(config, slot, Instant::ZERO, seed).expect("engine builds");
        let mut w = World {
            engine,
            now: Instant::ZERO,
            trace: Vec::new(),
            log: Vec::new(),
            storage_mode: StorageMode::Instant,
            held: Vec::new(),
        };
        w.pump();
        w
    }

    /// Drains outputs until quiet, answering storage requests.
    pub fn pump(&mut self) {
        while let Some(o) = self.engine.poll_output() {
            self.trace.push(o.clone());
            match o {
                Output::Storage(s) => self.answer(s),
                other => self.log.push(other),
            }
        }
    }

    fn answer(&mut self, s: StorageOutput) {
        let id = match &s {
            StorageOutput::Sync { .. } if self.storage_mode == StorageMode::HoldSyncs => {
                self.held.push(s);
                return;
            }
            StorageOutput::PersistAckWatermark { .. }
                if self.storage_mode == StorageMode::HoldWatermarks =>
            {
                self.held.push(s);
                return;
            }
            other => other.id(),
        };
        self.engine
            .handle_input(
                self.now,
                Input::Io {
                    id,
                    outcome: IoOutcome::Done,
                },
            )
            .expect("storage accepts its own completion");
    }

    pub fn release_syncs(&mut self) {
        let held = std::mem::take(&mut self.held);
        for s in held {
            if let StorageOutput::Sync { id, .. } = s {
                self.engine
                    .handle_input(
                        self.now,
                        Input::Io {
                            id,
                            outcome: IoOutcome::Done,
                        },
                    )
                    .expect("sync completion accepted");
            }
        }
        self.pump();
    }

    /// Completes every held request (any kind) successfully, in order.
    pub fn release_held(&mut self) {
        let held = std::mem::take(&mut self.held);
        for s in held {
            let id = s.id();
            self.engine
                .handle_input(
                    self.now,
                    Input::Io {
                        id,
                        outcome: IoOutcome::Done,
                    },
                )
                .expect("held completion accepted");
        }
        self.pump();
    }

    pub fn input(&mut self, input: Input<'_>) {
        self.engine
            .handle_input(self.now, input)
            .expect("input fits the engine state");
        self.pump();
    }

    /// Moves time forward by `d`, firing every timeout on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now.saturating_add(d);
        let mut fired = 0u32;
        while let Some(t) = self.engine.poll_timeout() {
            if t > end {
                break;
            }
            fired += 1;
            assert!(fired < 100_000, "W5: a timer that never moves past {t:?}");
            self.now = self.now.max(t);
            self.input(Input::Timeout);
        }
        self.now = end;
        self.input(Input::Timeout);
    }

    /// Jumps to the next timeout and fires it. Returns false if none.
    pub fn fire_next_timeout(&mut self) -> bool {
        match self.engine.poll_timeout() {
            Some(t) => {
                self.now = self.now.max(t);
                self.input(Input::Timeout);
                true
            }
            None => false,
        }
    }

    /// Fires timeouts until the engine asks for a connect; returns its host.
    pub fn await_connect(&mut self) -> usize {
        for _ in 0..1000 {
            let outs = self.take();
            if let Some(&host) = World::connects(&outs).first() {
                return host;
            }
            assert!(self.fire_next_timeout(), "W5: no connect and no timer");
        }
        panic!("no connect after 1000 timeouts");
    }

    /// Appends `n` frames; panics if the storage makes the producer wait.
    pub fn append(&mut self, n: usize) -> Vec<Fsn> {
        (0..n)
            .map(|_| match self.try_append() {
                Some(fsn) => fsn,
                None => panic!("append had to wait"),
            })
            .collect()
    }

    /// One append; `None` if it must wait.
    pub fn try_append(&mut self) -> Option<Fsn> {
        let decision = self
            .engine
            .begin_append(self.now, PAYLOAD)
            .expect("append accepted");
        self.pump();
        match decision {
            AppendDecision::Place(p) => {
                let c = self
                    .engine
                    .commit_append(self.now, p, Ok(()))
                    .expect("commit accepted");
                self.pump();
                Some(c.fsn)
            }
            AppendDecision::Wait { .. } => None,
        }
    }

    /// Accepts the pending connect to `host` (101, version 1, durable echo).
    pub fn accept(&mut self, host: usize) {
        let headers: [(&str, &[u8]); 2] =
            [("X-QWP-Version", b"1"), ("X-QWP-Durable-Ack", b"enabled")];
        self.input(Input::Connected {
            host,
            status: 101,
            headers: &headers,
        });
    }

    /// Answers the pending connect with an HTTP status and headers.
    pub fn answer_upgrade(&mut self, host: usize, status: u16, headers: &[(&str, &[u8])]) {
        self.input(Input::Connected {
            host,
            status,
            headers,
        });
    }

    pub fn connect_failed(&mut self, host: usize) {
        self.input(Input::ConnectFailed {
            host,
            reason: "connection refused",
        });
    }

    pub fn receive(&mut self, r: &Response) {
        let mut bytes = Vec::new();
        r.encode_into(&mut bytes).expect("test frame encodes");
        self.input(Input::Received(&bytes));
    }

    pub fn ok(&mut self, sequence: i64, tables: &[(&str, i64)]) {
        self.receive(&Response::Ok(OkFrame {
            sequence,
            tables: tables
                .iter()
                .map(|&(n, s)| TableSeqTxn::new(n, s))
                .collect(),
        }));
    }

    pub fn durable_ack(&mut self, tables: &[(&str, i64)]) {
        self.receive(&Response::DurableAck(DurableAckFrame {
            tables: tables
                .iter()
                .map(|&(n, s)| TableSeqTxn::new(n, s))
                .collect(),
        }));
    }

    pub fn error(&mut self, status: u8, sequence: i64, message: &str) {
        let frame = ErrorFrame::new(status, sequence, message).expect("error status");
        self.receive(&Response::Error(frame));
    }

    pub fn disconnect(&mut self, close_code: Option<u16>) {
        self.input(Input::Disconnected {
            close_code,
            reason: "test",
        });
    }

    /// Takes the non-storage outputs recorded so far.
    pub fn take(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.log)
    }

    /// The FSNs of the `Send` outputs recorded so far (taking the log).
    pub fn take_sends(&mut self) -> Vec<u64> {
        self.take()
            .into_iter()
            .filter_map(|o| match o {
                Output::Send { fsn, .. } => Some(fsn.get()),
                _ => None,
            })
            .collect()
    }

    /// The hosts of the `Connect` outputs in `outs`.
    pub fn connects(outs: &[Output]) -> Vec<usize> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Connect { host } => Some(*host),
                _ => None,
            })
            .collect()
    }

    pub fn acked(&self) -> Option<u64> {
        self.engine.acked_fsn().map(Fsn::get)
    }

    /// Builds a world, connects it to host 0 and drains the log.
    pub fn connected(config: EngineConfig) -> World {
        let mut w = World::new(config);
        let outs = w.take();
        assert_eq!(World::connects(&outs), vec![0], "first output is a connect");
        w.accept(0);
        w.take();
        w
    }
}
