//! The simulated world that drives [`sf_core`] deterministically.
//!
//! Role (filled by the simulator issue): one RNG seed, a virtual clock, a
//! simulated disk with process- and host-crash semantics, a simulated server and
//! network with fault injection, invariant checkers named after DESIGN §4, and a
//! trace whose hash proves that a seed replays byte for byte.

pub mod check;
pub mod disk;
pub mod fleet;
pub mod network;
pub mod rng;
pub mod run;
pub mod server;
pub mod trace;
pub mod workload;
pub mod world;

pub use check::{Checker, CrashLoss, DeliveryLog, Violation};
pub use disk::{CrashKind, DiskFaults, DiskStats, SimDisk};
pub use fleet::{run_fleet_seed, Fleet};
pub use network::{
    AcceptedMessage, ClientId, ConnectAttempt, ConnectFault, MessageFault, NetEvent, NetFaults,
    NetStats, NetViolation, RejectedMessage, SimNetwork,
};
pub use rng::SimRng;
pub use run::{run_seed, FaultKind, Report, SimOptions, SimStats};
pub use server::{AcceptedTable, SimServer};
pub use trace::Trace;
pub use world::Sim;
