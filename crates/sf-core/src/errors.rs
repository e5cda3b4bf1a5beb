//! Server error handling (sf-client §14): category → policy with user
//! overrides, the terminal-error latch, and the bounded error inbox.
