//! Reconnect backoff (failover.md §3): `ComputeBackoff`, `NextBackoffOrGiveUp`,
//! equal jitter from an injected random source, and the per-outage state.
