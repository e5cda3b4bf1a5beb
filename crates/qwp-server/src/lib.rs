//! A reference QWP ingest server for tests, benchmarks and local use.
//!
//! It accepts `/write/v4` and `/api/v4/write` WebSocket upgrades, negotiates
//! the QWP version, decodes every message with [`qwp_proto`] (keeping the
//! connection-scoped symbol dictionary), numbers messages per connection
//! from 0, assigns per-table seqTxns, answers OK / error / DURABLE_ACK
//! frames, keeps rows in memory (optionally appending them as JSON lines per
//! table), and injects faults on request.
//!
//! ```no_run
//! # async fn demo() -> Result<(), qwp_server::ServerError> {
//! use std::time::Duration;
//! use qwp_server::{Server, ServerConfig};
//!
//! let server = Server::bind(ServerConfig::local()).await?;
//! let url = format!("ws://{}/write/v4", server.local_addr());
//! // ... connect a client to `url` and send messages ...
//! server.wait_for_rows(10, Duration::from_secs(5)).await?;
//! let rows = server.rows("trades");
//! server.shutdown().await;
//! # let _ = (url, rows); Ok(()) }
//! ```
//!
//! The module docs say what the server decides where the spec is silent:
//! [`server`] (seqTxn, durable ACKs, ordering), [`faults`] (the fault
//! switches and their counters), [`json`] (the JSONL row format).
#![forbid(unsafe_code)]

pub mod config;
mod connection;
pub mod faults;
mod handshake;
pub mod json;
mod persist;
pub mod row;
pub mod server;
mod store;

pub use config::{Auth, DurableAckMode, ServerConfig};
pub use faults::{CloseAction, CloseAfter, ErrorOn, FaultError, Faults, MessageIndex, OkDelivery};
pub use faults::{RejectUpgrades, UpgradeReject};
pub use json::{row_to_json, row_to_json_line, value_to_json, write_row_json_line};
pub use row::{table_rows, Cell, ConnectionId, Row};
pub use server::Listener;
pub use server::{Server, ServerError, ServerHandle, Stats, WaitTimeout};
