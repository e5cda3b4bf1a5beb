//! The host-health tracker (failover.md §2): host states, rounds,
//! sticky-healthy, mid-stream demotion, and `PickNext`.
//!
//! Ingress is zone-blind (failover.md §1.3 and the wire brief §13.2: every
//! ingress host is in the same zone tier), so this tracker selects by state
//! alone and has no `RecordZone`; an egress client would add the tier as a
//! second sort key.
//!
//! The tracker is a plain value; callers that share it between loops (the
//! I/O loop and drainers) put it behind one lock, which gives the total order
//! failover.md §2.3 requires. Each loop keeps its own `previousIdx`.

/// A host's health, best first; the derived order is the selection priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostState {
    /// The last connect to this host succeeded.
    Healthy,
    /// Never tried, or reset by a forgetting round.
    Unknown,
    /// `421` + `PRIMARY_CATCHUP`: likely to recover.
    TransientReject,
    /// A connect failure, or a mid-stream failure after a success.
    TransportError,
    /// `421` + any other role: not writable without a topology change.
    TopologyReject,
}

/// A host index the tracker does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("host index {index} out of range: the tracker has {count} hosts")]
pub struct UnknownHost {
    /// The index given.
    pub index: usize,
    /// Number of configured hosts.
    pub count: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Host {
    state: HostState,
    attempted: bool,
}

/// Health and "attempted this round" bit of every configured host, in
/// `addr` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTracker {
    hosts: Vec<Host>,
}

impl HostTracker {
    /// A tracker for `count` hosts, all Unknown and untried.
    pub fn new(count: usize) -> HostTracker {
        HostTracker {
            hosts: vec![
                Host {
                    state: HostState::Unknown,
                    attempted: false,
                };
                count
            ],
        }
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Whether the tracker has no hosts.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The state of host `index`, if it exists.
    pub fn state(&self, index: usize) -> Option<HostState> {
        self.hosts.get(index).map(|h| h.state)
    }

    /// Whether host `index` was attempted this round, if it exists.
    pub fn attempted(&self, index: usize) -> Option<bool> {
        self.hosts.get(index).map(|h| h.attempted)
    }

    /// `PickNext`: the untried host with the best state, ties broken by
    /// `addr` order (no shuffling); `None` when the round is exhausted.
    /// Picking does not mark the host; recording its outcome does.
    pub fn pick_next(&self) -> Option<usize> {
        self.hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.attempted)
            // `min_by_key` keeps the first of equal keys: the lowest index.
            .min_by_key(|(_, h)| h.state)
            .map(|(i, _)| i)
    }

    fn host_mut(&mut self, index: usize) -> Result<&mut Host, UnknownHost> {
        let count = self.hosts.len();
        self.hosts
            .get_mut(index)
            .ok_or(UnknownHost { index, count })
    }

    fn record(&mut self, index: usize, state: HostState) -> Result<(), UnknownHost> {
        let h = self.host_mut(index)?;
        h.state = state;
        h.attempted = true;
        Ok(())
    }

    /// `RecordSuccess`: Healthy and attempted. Other Healthy hosts stay
    /// Healthy; the next forgetting round keeps only the last one.
    pub fn record_success(&mut self, index: usize) -> Result<(), UnknownHost> {
        self.record(index, HostState::Healthy)
    }

    /// `RecordRoleReject`: TransientReject (`PRIMARY_CATCHUP`) or
    /// TopologyReject, and attempted.
    pub fn record_role_reject(&mut self, index: usize, transient: bool) -> Result<(), UnknownHost> {
        let state = if transient {
            HostState::TransientReject
        } else {
            HostState::TopologyReject
        };
        self.record(index, state)
    }

    /// `RecordTransportError`: TransportError and attempted.
    pub fn record_transport_error(&mut self, index: usize) -> Result<(), UnknownHost> {
        self.record(index, HostState::TransportError)
    }

    /// `RecordMidStreamFailure`: a Healthy host becomes TransportError; any
    /// other state is kept. The attempted bit is not touched.
    pub fn record_mid_stream_failure(&mut self, index: usize) -> Result<(), UnknownHost> {
        let h = self.host_mut(index)?;
        if h.state == HostState::Healthy {
            h.state = HostState::TransportError;
        }
        Ok(())
    }

    /// `BeginRound`: clears every attempted bit. With `forget` (between
    /// outages, or when a round is exhausted) every state becomes Unknown
    /// except the **last** Healthy host, which stays Healthy (sticky-healthy);
    /// without it (within an outage) states are kept.
    pub fn begin_round(&mut self, forget: bool) {
        let keep = if forget {
            self.hosts
                .iter()
                .rposition(|h| h.state == HostState::Healthy)
        } else {
            None
        };
        for (i, h) in self.hosts.iter_mut().enumerate() {
            h.attempted = false;
            if forget && Some(i) != keep {
                h.state = HostState::Unknown;
            }
        }
    }

    /// `IsRoundExhausted`: every host has been attempted this round (true
    /// for a tracker without hosts).
    pub fn is_round_exhausted(&self) -> bool {
        self.hosts.iter().all(|h| h.attempted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: usize = 0;
    const B: usize = 1;
    const C: usize = 2;

    /// Picks until exhausted, recording a transport error for each pick.
    fn walk(t: &mut HostTracker) -> Vec<usize> {
        let mut order = Vec::new();
        while let Some(i) = t.pick_next() {
            order.push(i);
            t.record_transport_error(i).unwrap();
        }
        order
    }

    #[test]
    fn brief_14_18_unknown_hosts_pick_in_addr_order_then_none() {
        let mut t = HostTracker::new(3);
        assert!(!t.is_round_exhausted());
        assert_eq!(walk(&mut t), vec![A, B, C]);
        assert_eq!(t.pick_next(), None);
        assert!(t.is_round_exhausted());
    }

    #[test]
    fn brief_14_18_success_then_forgetting_round_picks_it_first() {
        let mut t = HostTracker::new(3);
        t.record_transport_error(A).unwrap();
        t.record_success(B).unwrap();
        t.begin_round(true);
        assert_eq!(t.pick_next(), Some(B));
        assert_eq!(t.state(A), Some(HostState::Unknown));
    }

    #[test]
    fn brief_14_18_sticky_healthy_keeps_only_the_last_healthy() {
        let mut t = HostTracker::new(3);
        t.record_success(B).unwrap();
        t.record_success(A).unwrap();
        t.begin_round(true);
        // The *last index*, not the most recent success, is kept.
        assert_eq!(t.state(A), Some(HostState::Unknown));
        assert_eq!(t.state(B), Some(HostState::Healthy));
        assert_eq!(t.pick_next(), Some(B));
    }

    #[test]
    fn brief_14_18_mid_stream_failure_then_forgetting_round_picks_a_first() {
        let mut t = HostTracker::new(3);
        t.record_success(B).unwrap();
        t.record_mid_stream_failure(B).unwrap();
        assert_eq!(t.state(B), Some(HostState::TransportError));
        t.begin_round(true);
        assert_eq!(t.state(B), Some(HostState::Unknown));
        assert_eq!(t.pick_next(), Some(A));
    }

    #[test]
    fn demote_before_round_reset_matters() {
        // The reversed order (failover.md §2.3) would keep B first in line.
        let mut t = HostTracker::new(3);
        t.record_success(B).unwrap();
        t.begin_round(true);
        t.record_mid_stream_failure(B).unwrap();
        assert_eq!(t.pick_next(), Some(A));
        let mut wrong = HostTracker::new(3);
        wrong.record_success(B).unwrap();
        wrong.begin_round(true);
        assert_eq!(wrong.pick_next(), Some(B));
    }

    #[test]
    fn brief_14_18_state_order_transient_transport_topology() {
        let mut t = HostTracker::new(4);
        t.record_role_reject(A, false).unwrap();
        t.record_transport_error(B).unwrap();
        t.record_role_reject(C, true).unwrap();
        t.begin_round(false);
        assert_eq!(walk(&mut t), vec![3, C, B, A]);
        assert!(HostState::Healthy < HostState::Unknown);
        assert!(HostState::Unknown < HostState::TransientReject);
        assert!(HostState::TransientReject < HostState::TransportError);
        assert!(HostState::TransportError < HostState::TopologyReject);
    }

    #[test]
    fn brief_14_18_non_forgetting_round_keeps_all_states() {
        let mut t = HostTracker::new(3);
        t.record_success(A).unwrap();
        t.record_success(B).unwrap();
        t.record_role_reject(C, false).unwrap();
        t.begin_round(false);
        assert_eq!(t.state(A), Some(HostState::Healthy));
        assert_eq!(t.state(B), Some(HostState::Healthy));
        assert_eq!(t.state(C), Some(HostState::TopologyReject));
        assert_eq!(t.attempted(C), Some(false));
        // Equal Healthy states tie-break by addr order.
        assert_eq!(t.pick_next(), Some(A));
    }

    #[test]
    fn forgetting_round_resets_every_non_healthy_state() {
        let mut t = HostTracker::new(3);
        t.record_role_reject(A, true).unwrap();
        t.record_role_reject(B, false).unwrap();
        t.record_transport_error(C).unwrap();
        t.begin_round(true);
        for i in [A, B, C] {
            assert_eq!(t.state(i), Some(HostState::Unknown));
            assert_eq!(t.attempted(i), Some(false));
        }
    }

    #[test]
    fn mid_stream_failure_leaves_attempted_bit_and_non_healthy_states() {
        let mut t = HostTracker::new(2);
        t.record_success(A).unwrap();
        t.record_mid_stream_failure(A).unwrap();
        assert_eq!(t.attempted(A), Some(true));
        assert_eq!(t.pick_next(), Some(B));
        t.record_role_reject(B, true).unwrap();
        t.begin_round(false);
        t.record_mid_stream_failure(B).unwrap();
        assert_eq!(t.state(B), Some(HostState::TransientReject));
        assert_eq!(t.attempted(B), Some(false));
    }

    #[test]
    fn out_of_range_index_is_a_typed_error() {
        let mut t = HostTracker::new(2);
        let err = UnknownHost { index: 2, count: 2 };
        assert_eq!(t.record_success(2), Err(err.clone()));
        assert_eq!(t.record_role_reject(2, true), Err(err.clone()));
        assert_eq!(t.record_transport_error(2), Err(err.clone()));
        assert_eq!(t.record_mid_stream_failure(2), Err(err));
        assert_eq!(t.state(2), None);
        assert_eq!(t, HostTracker::new(2));
    }

    #[test]
    fn empty_tracker_is_exhausted() {
        let mut t = HostTracker::new(0);
        assert!(t.is_empty());
        assert!(t.is_round_exhausted());
        assert_eq!(t.pick_next(), None);
        t.begin_round(true);
        assert_eq!(t.pick_next(), None);
    }
}
