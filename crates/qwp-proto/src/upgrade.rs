//! The WebSocket upgrade: header names, QWP version negotiation, the
//! durable-ACK echo rule, and classification of the upgrade response.
