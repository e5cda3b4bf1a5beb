//! QWP1: the QuestDB WebSocket ingest protocol, as pure functions and values.
//!
//! This crate encodes and decodes QWP1 messages (the bytes a client sends), the
//! server's response frames (OK, DURABLE_ACK, errors), and classifies status
//! bytes, WebSocket close codes and upgrade headers. It performs no I/O, reads
//! no clock and spawns nothing, so the store-and-forward core, the reference
//! server, the simulator and the fuzzer all share exactly one implementation.
//!
//! Normative source: `docs/qwp/wire-ingress.md` in the public `questdb/questdb`
//! repository; all multi-byte numbers are little-endian.
#![forbid(unsafe_code)]

pub mod decoder;
pub mod encoder;
pub mod gorilla;
pub mod response;
pub mod status;
pub mod types;
pub mod upgrade;
pub mod varint;
