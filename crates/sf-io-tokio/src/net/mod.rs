//! The WebSocket connection: TCP or TLS, the `/write/v4` upgrade with QWP and
//! auth headers, and a framed binary-message connection the I/O task drives.
