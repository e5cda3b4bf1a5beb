//! The real adapter for [`sf_core`]: it performs the I/O that the sans-IO core
//! asks for and makes no policy decision of its own.
//!
//! - [`sender`]: the public [`Sender`] built from a connect string, which
//!   joins the two halves below with `sf_core`'s engine.
//! - [`fs`]: mmap'd segment files created at full size with spares
//!   pre-faulted off the producer's path, the slot lock (`.lock` +
//!   `.lock.pid`), fsync for the local durability modes, the `.ack-watermark`
//!   file, and the reads recovery needs.
//! - [`net`]: a tokio-tungstenite WebSocket connection (TCP and TLS) with the
//!   QWP upgrade headers.
//!
//! ```no_run
//! use std::time::Duration;
//! use sf_io_tokio::Sender;
//!
//! # fn main() -> Result<(), sf_io_tokio::Error> {
//! // Store-and-forward in /var/lib/qwp-sf/default/, fsync on every flush.
//! let mut sender = Sender::from_conf(
//!     "ws::addr=localhost:9000;sf_dir=/var/lib/qwp-sf;sf_durability=flush;",
//! )?;
//! sender
//!     .table("trades")?
//!     .symbol("symbol", "ETH-USD")?
//!     .column_f64("price", 2615.54)?
//!     .column_i64("amount", 3)?
//!     .at_micros(1_700_000_000_000_000)?;
//! // Returns once the batch is on disk and fsynced; the server's
//! // acknowledgement arrives later (and survives a crash until then).
//! if let Some(fsn) = sender.flush()? {
//!     sender.wait_acked(fsn, Duration::from_secs(5))?;
//! }
//! sender.close()?; // drains, releases the slot, reports any latched error
//! # Ok(())
//! # }
//! ```

pub mod fs;
pub mod net;
pub mod orphan;
pub mod pool;
pub mod sender;

pub use orphan::{DrainerCounters, DrainerEvent};
pub use pool::{PoolConfig, PoolCounters, PoolError, PooledSender, SenderPool};
pub use sender::{Counters, Error, Sender, SenderBuilder};
