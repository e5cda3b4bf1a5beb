//! The host-health tracker (failover.md §2): host states, rounds,
//! sticky-healthy, mid-stream demotion, and `PickNext`.
