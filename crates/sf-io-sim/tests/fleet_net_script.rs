//! `SimNetwork::clear_client_script`: the fleet lifts a client's scripted
//! connect refusals when faults stop; only that client's script goes.

use sf_core::Instant;
use sf_io_sim::{ClientId, ConnectFault, NetEvent, NetFaults, SimNetwork, SimRng};

const MS: u64 = 1_000_000;
const A: ClientId = ClientId(0);
const B: ClientId = ClientId(1);

fn headers() -> Vec<(String, String)> {
    qwp_proto::upgrade::request_headers("sim/1", false)
        .unwrap()
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v))
        .collect()
}

fn events_of(net: &mut SimNetwork, client: ClientId, until: Instant) -> Vec<NetEvent> {
    let mut out = Vec::new();
    while let Some(when) = net.next_event_at() {
        if when > until {
            break;
        }
        while let Some((c, e)) = net.poll_client_event(when) {
            if c == client {
                out.push(e);
            }
        }
    }
    out
}

fn opened(events: &[NetEvent]) -> bool {
    matches!(events, [NetEvent::Connected { status: 101, .. }])
}

fn refused(events: &[NetEvent]) -> bool {
    matches!(events, [NetEvent::ConnectFailed { .. }])
}

#[test]
fn fleet_liveness_clear_client_script_drops_only_that_clients_answers() {
    let mut n = SimNetwork::new(SimRng::new(3), 1, NetFaults::none());
    for _ in 0..3 {
        n.script_connect_for(A, ConnectFault::Refuse);
        n.script_connect_for(B, ConnectFault::Refuse);
    }
    // One of A's three is used up first, so two remain to clear.
    n.connect_from(A, Instant(0), 0, &headers());
    assert!(refused(&events_of(&mut n, A, Instant(10 * MS))));
    assert_eq!(n.clear_client_script(A), 2);
    assert_eq!(n.clear_client_script(A), 0, "nothing left the second time");
    assert_eq!(
        n.clear_client_script(ClientId(9)),
        0,
        "an unknown client has none"
    );
    n.connect_from(A, Instant(20 * MS), 0, &headers());
    assert!(
        opened(&events_of(&mut n, A, Instant(30 * MS))),
        "A's scripted refusals are gone"
    );
    n.connect_from(B, Instant(40 * MS), 0, &headers());
    assert!(
        refused(&events_of(&mut n, B, Instant(50 * MS))),
        "B keeps its own script"
    );
}
