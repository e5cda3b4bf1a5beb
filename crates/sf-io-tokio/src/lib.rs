//! The real adapter for [`sf_core`]: it performs the I/O that the sans-IO core
//! asks for and makes no policy decision of its own.
//!
//! - [`fs`]: mmap'd segment files created at full size with spares
//!   pre-faulted off the producer's path, the slot lock (`.lock` +
//!   `.lock.pid`), fsync for the local durability modes, the `.ack-watermark`
//!   file, and the reads recovery needs.
//! - [`net`]: a tokio-tungstenite WebSocket connection (TCP and TLS) with the
//!   QWP upgrade headers.
//!
//! - [`sender`]: the public [`Sender`] built from a connect string, which
//!   joins them with `sf_core`'s engine.

pub mod fs;
pub mod net;
pub mod sender;

pub use sender::{Counters, Error, Sender, SenderBuilder};
