//! The ingress reconnect loop (sf-client §13.6) driven in virtual time:
//! budget exhaustion, role-reject rounds, mid-stream demotion, auth and
//! first-connect policies, and a property test over random outcome sequences.

use std::num::NonZeroUsize;
use std::time::Duration;

use proptest::prelude::*;
use qwp_proto::status::ErrorCategory;
use sf_core::backoff::{compute_backoff, BackoffConfig, SplitMix64};
use sf_core::reconnect::{
    Action, ConnectOutcome, GiveUpReason, InitialConnectRetry, ReconnectConfig, ReconnectError,
    ReconnectLoop,
};
use sf_core::Instant;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config(hosts: usize, retry: InitialConnectRetry) -> ReconnectConfig {
    ReconnectConfig {
        hosts: NonZeroUsize::new(hosts).expect("hosts"),
        backoff: BackoffConfig::INGRESS_DEFAULT,
        initial_connect_retry: retry,
    }
}

/// One step the driver observed.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Connect(usize),
    Sleep(Duration),
    GiveUp(GiveUpReason),
}

/// Drives `l` from `now`: each connect takes `connect_cost` of virtual time
/// and ends with `outcome(host, connect_index)`; stops at a give-up, a
/// success, or after `max_steps`.
fn drive(
    l: &mut ReconnectLoop<SplitMix64>,
    now: &mut Instant,
    connect_cost: Duration,
    max_steps: usize,
    mut outcome: impl FnMut(usize, usize) -> ConnectOutcome,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut connects = 0;
    for _ in 0..max_steps {
        match l.next_action(*now) {
            Action::Connect { host } => {
                steps.push(Step::Connect(host));
                *now = now.saturating_add(connect_cost);
                let o = outcome(host, connects);
                connects += 1;
                l.on_connect_result(*now, host, o).expect("in phase");
                if o == ConnectOutcome::Success {
                    return steps;
                }
            }
            Action::SleepUntil(t) => {
                assert!(t > *now, "sleep must lie in the future");
                steps.push(Step::Sleep(t.saturating_duration_since(*now)));
                *now = t;
            }
            Action::Wait => panic!("nothing in flight, yet Wait"),
            Action::GiveUp(r) => {
                steps.push(Step::GiveUp(r));
                return steps;
            }
        }
    }
    steps
}

fn sleeps(steps: &[Step]) -> Vec<Duration> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Sleep(d) => Some(*d),
            _ => None,
        })
        .collect()
}

#[test]
fn all_hosts_failing_sleep_once_per_round_in_b_2b_until_the_budget_is_spent() {
    let mut l = ReconnectLoop::new(config(3, InitialConnectRetry::On), SplitMix64::new(7));
    let start = Instant(1_000_000_000);
    let mut now = start;
    let steps = drive(&mut l, &mut now, ms(10), 100_000, |_, _| {
        ConnectOutcome::TransportError
    });
    let outage_start = start.saturating_add(ms(10)); // the first failure
    assert_eq!(l.outage_started_at(), Some(outage_start));

    // Rounds: A, B, C then exactly one sleep, every time.
    let mut rounds = steps.split(|s| matches!(s, Step::Sleep(_)));
    let last = rounds.next_back().expect("final round");
    for round in rounds {
        assert_eq!(
            round,
            [Step::Connect(A), Step::Connect(B), Step::Connect(C)]
        );
    }
    assert_eq!(
        last[..3],
        [Step::Connect(A), Step::Connect(B), Step::Connect(C)]
    );
    let Some(Step::GiveUp(reason)) = last.get(3) else {
        panic!("expected a give-up after the last round: {last:?}");
    };

    // Each sleep lies in [b, 2b) for its attempt, unless clamped to exactly
    // what remained of the budget; the budget is never overshot.
    let budget = ms(300_000);
    let mut elapsed = ms(20); // B and C of the first round
    let sl = sleeps(&steps);
    for (attempt, s) in sl.iter().enumerate() {
        let b = compute_backoff(u32::try_from(attempt).unwrap(), ms(100), ms(5000));
        let remaining = budget.saturating_sub(elapsed);
        assert!(
            *s <= remaining,
            "sleep {attempt} {s:?} overshoots {remaining:?}"
        );
        assert!(
            (*s >= b && *s < b * 2) || *s == remaining,
            "sleep {attempt} = {s:?} not in [{b:?}, {:?}) nor the remainder",
            b * 2
        );
        elapsed += *s + ms(30);
    }
    assert_eq!(
        *sl.last().unwrap(),
        budget - (elapsed - ms(30) - *sl.last().unwrap())
    );
    // The last round starts exactly at the budget and the give-up follows it.
    assert_eq!(elapsed - ms(30), budget);
    assert_eq!(
        *reason,
        GiveUpReason::BudgetExhausted {
            attempt: u32::try_from(sl.len()).unwrap(),
            elapsed: budget + ms(30),
        }
    );
    assert_eq!(reason.category(), ErrorCategory::ProtocolViolation);
    // Saturated sleeps lie in [5 s, 10 s): between 30 and 60 of them fit,
    // plus the six growing ones and the clamped last one.
    assert!((30..=67).contains(&sl.len()), "{} sleeps", sl.len());

    // Terminal is final.
    assert_eq!(
        l.next_action(now.saturating_add(ms(1))),
        Action::GiveUp(*reason)
    );
    assert_eq!(
        l.on_connect_result(now, A, ConnectOutcome::Success),
        Err(ReconnectError::Terminal(*reason))
    );
}

#[test]
fn role_reject_rounds_sleep_exactly_initial_and_consume_the_budget() {
    let mut l = ReconnectLoop::new(config(3, InitialConnectRetry::Off), SplitMix64::new(1));
    let mut now = Instant(0);
    let steps = drive(&mut l, &mut now, Duration::ZERO, 100_000, |host, _| {
        ConnectOutcome::RoleReject {
            transient: host != B,
        }
    });
    let sl = sleeps(&steps);
    // 300 s of 100 ms sleeps, no doubling, attempt never advances.
    assert_eq!(sl.len(), 3000);
    assert!(
        sl.iter().all(|s| *s == ms(100)),
        "role-reject sleeps must be Initial"
    );
    assert_eq!(
        steps.last(),
        Some(&Step::GiveUp(GiveUpReason::BudgetExhausted {
            attempt: 0,
            elapsed: ms(300_000)
        }))
    );
    // Every round forgets the classifications: addr order each time.
    assert_eq!(
        steps[..3],
        [Step::Connect(A), Step::Connect(B), Step::Connect(C)]
    );
}

#[test]
fn role_reject_sleep_is_clamped_to_the_remaining_budget() {
    let cfg = ReconnectConfig {
        backoff: BackoffConfig::new(ms(100), ms(5000), ms(250)).unwrap(),
        ..config(1, InitialConnectRetry::On)
    };
    let mut l = ReconnectLoop::new(cfg, SplitMix64::new(1));
    let mut now = Instant(0);
    let steps = drive(&mut l, &mut now, Duration::ZERO, 100, |_, _| {
        ConnectOutcome::RoleReject { transient: true }
    });
    assert_eq!(sleeps(&steps), vec![ms(100), ms(100), ms(50)]);
    assert!(matches!(
        steps.last(),
        Some(Step::GiveUp(GiveUpReason::BudgetExhausted { .. }))
    ));
}

#[test]
fn role_reject_round_resets_the_doubling() {
    let mut l = ReconnectLoop::new(config(2, InitialConnectRetry::On), SplitMix64::new(3));
    let mut now = Instant(0);
    // Rounds 1-3 transport errors (attempt → 3), round 4 role rejects, then
    // transport again: the backoff restarts at [100, 200) ms.
    let steps = drive(&mut l, &mut now, ms(1), 30, |_, i| {
        if (6..8).contains(&i) {
            ConnectOutcome::RoleReject { transient: true }
        } else {
            ConnectOutcome::TransportError
        }
    });
    let sl = sleeps(&steps);
    assert!(sl.len() >= 6, "{steps:?}");
    assert!(sl[2] >= ms(400) && sl[2] < ms(800));
    assert_eq!(sl[3], ms(100));
    assert!(sl[4] >= ms(100) && sl[4] < ms(200), "{:?}", sl[4]);
    assert!(sl[5] >= ms(200) && sl[5] < ms(400), "{:?}", sl[5]);
}

#[test]
fn mid_stream_failure_of_a_healthy_host_demotes_it_before_the_next_pick() {
    let mut l = ReconnectLoop::new(config(3, InitialConnectRetry::Off), SplitMix64::new(5));
    let mut now = Instant(0);
    // A role-rejects (not terminal even on the first connect with
    // initial_connect_retry=off), B accepts.
    let steps = drive(&mut l, &mut now, ms(1), 10, |host, _| match host {
        A => ConnectOutcome::RoleReject { transient: true },
        _ => ConnectOutcome::Success,
    });
    assert_eq!(steps, vec![Step::Connect(A), Step::Connect(B)]);
    assert_eq!(l.connected_host(), Some(B));
    assert_eq!(l.outage_started_at(), None, "success ends the outage");

    now = now.saturating_add(ms(5000));
    l.on_mid_stream_failure(now).unwrap();
    assert_eq!(l.outage_started_at(), Some(now), "a fresh outage clock");
    assert_eq!(l.attempt(), 0);
    // No sleep: C is still untried in this round.
    assert_eq!(l.next_action(now), Action::Connect { host: C });
    l.on_connect_result(now, C, ConnectOutcome::TransportError)
        .unwrap();
    // Round exhausted: one backoff sleep, then a forgetting round in which
    // B (demoted before the reset) is not kept sticky: A comes first.
    let Action::SleepUntil(t) = l.next_action(now) else {
        panic!("one sleep per exhausted round");
    };
    let s = t.saturating_duration_since(now);
    assert!(s >= ms(100) && s < ms(200), "{s:?}");
    assert_eq!(l.attempt(), 1);
    assert_eq!(l.next_action(t), Action::Connect { host: A });
}

#[test]
fn demote_before_reset_keeps_failed_host_from_staying_sticky() {
    // Without the demotion, sticky-healthy would keep C first (failover.md §2.3).
    let mut l = ReconnectLoop::new(config(3, InitialConnectRetry::On), SplitMix64::new(5));
    let mut now = Instant(0);
    drive(&mut l, &mut now, ms(1), 10, |host, _| {
        if host == C {
            ConnectOutcome::Success
        } else {
            ConnectOutcome::TransportError
        }
    });
    assert_eq!(l.connected_host(), Some(C));
    assert_eq!(
        l.tracker().state(C),
        Some(sf_core::hosts::HostState::Healthy)
    );
    l.on_mid_stream_failure(now).unwrap();
    // All hosts attempted this round → sleep, then C is Unknown like A and B
    // because it was demoted first: addr order, A first.
    let Action::SleepUntil(t) = l.next_action(now) else {
        panic!("round was exhausted")
    };
    assert_eq!(l.next_action(t), Action::Connect { host: A });
}

#[test]
fn auth_error_is_terminal_at_once_without_consuming_the_budget() {
    let mut l = ReconnectLoop::new(config(3, InitialConnectRetry::On), SplitMix64::new(1));
    let mut now = Instant(0);
    let steps = drive(&mut l, &mut now, ms(1), 10, |host, _| {
        if host == B {
            ConnectOutcome::AuthError
        } else {
            ConnectOutcome::TransportError
        }
    });
    let reason = GiveUpReason::AuthError { host: B };
    assert_eq!(
        steps,
        vec![Step::Connect(A), Step::Connect(B), Step::GiveUp(reason)]
    );
    assert_eq!(reason.category(), ErrorCategory::SecurityError);
    // Auth on the very first connect: no outage clock at all.
    let mut l = ReconnectLoop::new(config(3, InitialConnectRetry::On), SplitMix64::new(1));
    let mut now = Instant(0);
    drive(&mut l, &mut now, ms(1), 10, |_, _| {
        ConnectOutcome::AuthError
    });
    assert_eq!(l.outage_started_at(), None);
    assert_eq!(l.terminal(), Some(GiveUpReason::AuthError { host: A }));
    assert_eq!(
        l.on_mid_stream_failure(now),
        Err(ReconnectError::Terminal(GiveUpReason::AuthError {
            host: A
        }))
    );
}

#[test]
fn initial_connect_off_first_transport_error_is_terminal() {
    let mut l = ReconnectLoop::new(config(3, InitialConnectRetry::Off), SplitMix64::new(1));
    let mut now = Instant(0);
    let steps = drive(&mut l, &mut now, ms(1), 10, |_, _| {
        ConnectOutcome::TransportError
    });
    let reason = GiveUpReason::InitialConnectFailed { host: A };
    assert_eq!(steps, vec![Step::Connect(A), Step::GiveUp(reason)]);
    assert_eq!(reason.category(), ErrorCategory::ProtocolViolation);
}

#[test]
fn initial_connect_on_and_async_retry_the_first_connect() {
    for retry in [InitialConnectRetry::On, InitialConnectRetry::Async] {
        let mut l = ReconnectLoop::new(config(2, retry), SplitMix64::new(1));
        let mut now = Instant(0);
        let steps = drive(&mut l, &mut now, ms(1), 20, |_, i| {
            if i < 4 {
                ConnectOutcome::TransportError
            } else {
                ConnectOutcome::Success
            }
        });
        assert_eq!(
            steps.iter().filter(|s| matches!(s, Step::Sleep(_))).count(),
            2,
            "{retry:?}: {steps:?}"
        );
        assert_eq!(l.connected_host(), Some(A));
        assert_eq!(
            (l.attempt(), l.outage_started_at()),
            (0, None),
            "success resets"
        );
    }
}

#[test]
fn initial_connect_off_only_governs_the_very_first_connect() {
    let mut l = ReconnectLoop::new(config(2, InitialConnectRetry::Off), SplitMix64::new(1));
    let mut now = Instant(0);
    drive(&mut l, &mut now, ms(1), 5, |_, _| ConnectOutcome::Success);
    l.on_mid_stream_failure(now).unwrap();
    let steps = drive(&mut l, &mut now, ms(1), 5, |_, _| {
        ConnectOutcome::TransportError
    });
    assert_eq!(steps[0], Step::Connect(B));
    assert!(matches!(steps[1], Step::Sleep(_)), "{steps:?}");
    assert_eq!(l.terminal(), None);
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    Outcome(ConnectOutcome),
    /// After a success: stay up this many ms, then fail mid-stream.
    UpFor(u16),
}

fn outcome() -> impl Strategy<Value = ConnectOutcome> {
    prop_oneof![
        1 => Just(ConnectOutcome::Success),
        1 => Just(ConnectOutcome::AuthError),
        3 => any::<bool>().prop_map(|transient| ConnectOutcome::RoleReject { transient }),
        6 => Just(ConnectOutcome::TransportError),
    ]
}

fn event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        8 => outcome().prop_map(Ev::Outcome),
        1 => any::<u16>().prop_map(Ev::UpFor),
    ]
}

fn retry() -> impl Strategy<Value = InitialConnectRetry> {
    prop_oneof![
        Just(InitialConnectRetry::Off),
        Just(InitialConnectRetry::On),
        Just(InitialConnectRetry::Async),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random outcomes: no host is picked twice without a round reset (and a
    /// round reset only ever follows a sleep), no sleep overshoots the
    /// outage budget, and terminal is final.
    #[test]
    fn random_outcomes_keep_round_budget_and_terminal_rules(
        hosts in 1usize..5,
        retry in retry(),
        seed in any::<u64>(),
        cost_ms in 0u64..400,
        events in prop::collection::vec(event(), 1..200),
    ) {
        let cfg = ReconnectConfig {
            hosts: NonZeroUsize::new(hosts).unwrap(),
            backoff: BackoffConfig::new(ms(100), ms(800), ms(3000)).unwrap(),
            initial_connect_retry: retry,
        };
        let mut l = ReconnectLoop::new(cfg, SplitMix64::new(seed));
        let mut now = Instant(0);
        let mut picked_this_round: Vec<usize> = Vec::new();
        let mut terminal: Option<GiveUpReason> = None;
        let mut last_event_auth = false;
        let mut ever_connected = false;
        let mut events = events.into_iter();
        let mut steps = 0;
        while steps < 2000 {
            steps += 1;
            match l.next_action(now) {
                Action::Connect { host } => {
                    prop_assert!(terminal.is_none());
                    prop_assert!(host < hosts);
                    prop_assert!(
                        !picked_this_round.contains(&host),
                        "host {} picked twice in one round {:?}", host, picked_this_round
                    );
                    prop_assert!(picked_this_round.len() < hosts);
                    picked_this_round.push(host);
                    prop_assert_eq!(l.next_action(now), Action::Wait);
                    now = now.saturating_add(ms(cost_ms));
                    let o = loop {
                        match events.next() {
                            Some(Ev::Outcome(o)) => break Some(o),
                            Some(Ev::UpFor(_)) => continue,
                            None => break None,
                        }
                    };
                    let Some(o) = o else { break };
                    last_event_auth = o == ConnectOutcome::AuthError;
                    l.on_connect_result(now, host, o).unwrap();
                    if o == ConnectOutcome::Success {
                        ever_connected = true;
                        prop_assert_eq!(l.attempt(), 0);
                        prop_assert_eq!(l.outage_started_at(), None);
                        prop_assert_eq!(l.next_action(now), Action::Wait);
                        let up = match events.next() {
                            Some(Ev::UpFor(ms_up)) => u64::from(ms_up),
                            Some(Ev::Outcome(_)) => 1,
                            None => break,
                        };
                        now = now.saturating_add(ms(up));
                        l.on_mid_stream_failure(now).unwrap();
                        prop_assert_eq!(l.outage_started_at(), Some(now));
                    }
                }
                Action::SleepUntil(t) => {
                    prop_assert!(terminal.is_none());
                    prop_assert!(t > now);
                    let start = l.outage_started_at();
                    prop_assert!(start.is_some(), "sleeping without an outage");
                    let deadline = start.unwrap().saturating_add(ms(3000));
                    prop_assert!(t <= deadline, "sleep to {:?} overshoots {:?}", t, deadline);
                    // A sleep only ever comes when the round is exhausted.
                    prop_assert!(l.tracker().is_round_exhausted());
                    now = t;
                    picked_this_round.clear();
                }
                Action::Wait => prop_assert!(false, "Wait with nothing in flight"),
                Action::GiveUp(r) => {
                    if let Some(prev) = terminal {
                        prop_assert_eq!(prev, r);
                        break;
                    }
                    match r {
                        GiveUpReason::AuthError { .. } => prop_assert!(last_event_auth),
                        GiveUpReason::InitialConnectFailed { .. } => {
                            prop_assert_eq!(retry, InitialConnectRetry::Off);
                            prop_assert!(!ever_connected);
                        }
                        GiveUpReason::BudgetExhausted { elapsed, .. } => {
                            prop_assert!(elapsed >= ms(3000));
                        }
                    }
                    terminal = Some(r);
                    // Terminal is final: events are refused, time changes nothing.
                    prop_assert!(l.on_connect_result(now, 0, ConnectOutcome::Success).is_err());
                    prop_assert!(l.on_mid_stream_failure(now).is_err());
                    now = now.saturating_add(ms(1_000_000));
                }
            }
        }
    }
}
