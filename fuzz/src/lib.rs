//! Fuzz target bodies for qwp-sf, as plain functions.
//!
//! Every body takes arbitrary bytes, must return normally on any input (no
//! panic, no allocation the input cannot justify), and checks the properties
//! that are cheap to check: decode → re-encode round trips, the segment scan's
//! S2 guarantees, the recovery planner's S1/S3/S8 guarantees, the connect
//! string's parse → print → parse identity, and the engine's invariants
//! (checked by the simulator's `sf_io_sim::Checker`) over arbitrary input
//! sequences. A violated property panics with a
//! message naming the invariant, which is what a fuzzer reports as a crash.
//!
//! The same bodies run in two places:
//! - `fuzz_targets/*.rs`: thin cargo-fuzz wrappers (nightly, feature
//!   `libfuzzer`; see `fuzz/README.md`);
//! - `tests/corpus.rs`: a stable test that runs each body over its seed corpus
//!   (`fuzz/corpus/<target>/`) plus a few thousand seeded random and mutated
//!   inputs, so CI exercises them without nightly.
//!
//! Each body returns an [`Outcome`]: a short label of the path the input took
//! (for instance `"segment/torn"`), which the stable runner uses to check that
//! the seed corpus reaches every interesting path.
#![forbid(unsafe_code)]

pub mod connect_string;
pub mod decode_message;
pub mod decode_response;
pub mod engine;
pub mod mutate;
pub mod seeds;
pub mod segment_scan;
pub mod slot_recovery;
pub mod varint;

/// The path an input took through a target body (a static label).
pub type Outcome = &'static str;

/// One fuzz target: its name (the cargo-fuzz binary and corpus directory
/// name) and its body.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The cargo-fuzz target name; its corpus is `fuzz/corpus/<name>/`.
    pub name: &'static str,
    /// The body: never panics unless a checked property is violated.
    pub body: fn(&[u8]) -> Outcome,
}

/// Every target, in the order the README lists them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "varint",
        body: varint::run,
    },
    Target {
        name: "decode_message",
        body: decode_message::run,
    },
    Target {
        name: "decode_response",
        body: decode_response::run,
    },
    Target {
        name: "segment_scan",
        body: segment_scan::run,
    },
    Target {
        name: "slot_recovery",
        body: slot_recovery::run,
    },
    Target {
        name: "connect_string",
        body: connect_string::run,
    },
    Target {
        name: "engine",
        body: engine::run,
    },
];

/// The target called `name`, if any.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().copied().find(|t| t.name == name)
}
