//! The real adapter for [`sf_core`]: it performs the I/O that the sans-IO core
//! asks for and makes no policy decision of its own.
//!
//! Role (filled by the sf-io-tokio issue): mmap'd segment files created at full
//! size with spares pre-faulted off the producer's path, the slot lock
//! (`.lock` + `.lock.pid`), fsync for the local durability modes, the
//! `.ack-watermark` file, a tokio-tungstenite WebSocket connection (TCP and
//! TLS), and the public `Sender` API built from a connect string.
