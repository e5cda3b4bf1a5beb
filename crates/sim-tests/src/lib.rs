//! Seed sweeps, named regression scenarios from the DESIGN §6 catalogue,
//! determinism checks and end-to-end tests of the real network path under a
//! simulated network.
//!
//! Role (filled by the simulator issue). The tests live under `tests/`; this
//! library holds only helpers they share.
