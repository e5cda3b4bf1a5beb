//! A reference QWP ingest server for tests, benchmarks and local use.
//!
//! Role (filled by the sf-io-tokio and qwp-server issue): accept `/write/v4`
//! WebSocket upgrades, decode every message with [`qwp_proto`], number messages
//! per connection, answer OK / error / DURABLE_ACK frames, store rows, and
//! inject faults on request.
