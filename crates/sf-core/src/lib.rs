//! The sans-IO store-and-forward engine for QWP ingest.
//!
//! Everything that decides (where a frame goes, when a segment rotates, what is
//! trimmed, when the producer waits, when to reconnect and to which host, what
//! an error frame means) lives here as pure code. The core performs no I/O,
//! reads no clock, spawns no thread and draws no global randomness: time is an
//! argument, storage and network operations are outputs, and their outcomes
//! come back as inputs. The tokio adapter, the simulator and the fuzzer drive
//! the same code.
//!
//! See `ARCHITECTURE.md` at the repository root for the module map and the
//! invariants each module keeps.
#![forbid(unsafe_code)]

pub mod ack;
pub mod backoff;
pub mod config;
pub mod durability;
pub mod durable_ack;
pub mod engine;
pub mod errors;
pub mod hosts;
pub mod ids;
pub mod orphans;
pub mod pool_slots;
pub mod reconnect;
pub mod recovery;
pub mod ring;
pub mod segment;
pub mod storage;
pub mod time;
pub mod watermark;

pub use ids::{Fsn, SegmentGen, WireSeq};
pub use time::Instant;
