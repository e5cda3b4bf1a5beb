//! End-to-end over turmoil: the real sf-io-tokio sender (its driver,
//! tokio-tungstenite WebSocket and, through the `Dialer` seam, turmoil's
//! TCP) against the real qwp-server (served from turmoil's `TcpListener`
//! through `Server::serve`), in a simulated network with virtual time.
//!
//! Every scenario sends rows carrying a `seq` column (0..N) and checks, on
//! what every server incarnation stored:
//! - exactly-once after dedup: the set of `seq` values is exactly 0..N;
//! - order per connection: within one server connection the `seq` values
//!   are strictly increasing (a replay starts a new connection at the
//!   first unacknowledged frame, W1);
//! - replays are counted (`Sender::counters()`) when the scenario forces
//!   them.
//!
//! The sender runs on the client host's current-thread runtime (its I/O
//! task is spawned there with `runtime(Handle::current())`) and is driven
//! with the async APIs only: a blocking call would stall the I/O task.
//! Faults are applied between simulation steps at fixed virtual times, and
//! each simulation has a fixed seed; nothing here sleeps in real time or
//! asserts a duration. `TURMOIL_E2E_TRACE=1` prints the progress and the
//! outcome of each run.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qwp_proto::decoder::Value;
use qwp_server::{Listener, Server, ServerConfig};
use sf_core::config::HostPort;
use sf_io_tokio::{Counters, Sender};

const PORT: u16 = 9000;
const TABLE: &str = "ticks";
/// Virtual time the whole client may take before the scenario fails.
const CLIENT_BUDGET: Duration = Duration::from_secs(60);

// ----- the two transport seams over turmoil ---------------------------------

/// qwp-server's `Listener` over turmoil's TCP listener.
struct SimListener(turmoil::net::TcpListener);

impl Listener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> io::Result<(Self::Stream, SocketAddr)> {
        self.0.accept().await
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The sender's dialer: each `addr` entry resolved by turmoil's DNS.
async fn sim_dial(host: HostPort) -> io::Result<turmoil::net::TcpStream> {
    turmoil::net::TcpStream::connect((host.host().to_owned(), host.port())).await
}

// ----- what the servers stored ---------------------------------------------------

/// One row as a server stored it: which server incarnation and connection
/// it arrived on, and its `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stored {
    host: &'static str,
    incarnation: u32,
    connection: u64,
    seq: i64,
}

/// Rows of every server incarnation, kept outside the hosts so they
/// survive a crash (a crashed host's runtime, and its server, are dropped).
#[derive(Debug, Default)]
struct Ledger {
    /// (host, incarnation) → rows in acceptance order.
    incarnations: BTreeMap<(&'static str, u32), Vec<Stored>>,
    next_incarnation: BTreeMap<&'static str, u32>,
}

type SharedLedger = Arc<Mutex<Ledger>>;

fn lock(l: &SharedLedger) -> std::sync::MutexGuard<'_, Ledger> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

/// The server host's software: a fresh qwp-server (no state from any
/// earlier incarnation) that mirrors its stored rows into the ledger after
/// every change, so they are there when the host crashes.
///
/// The first incarnation binds its port only after `bind_delay`: until
/// then the host is up but refuses connections (a crashed host instead
/// drops them unanswered).
async fn serve_host(
    host: &'static str,
    ledger: SharedLedger,
    bind_delay: Duration,
) -> turmoil::Result {
    let incarnation = {
        let mut l = lock(&ledger);
        let n = l.next_incarnation.entry(host).or_insert(0);
        *n += 1;
        *n
    };
    if incarnation == 1 {
        tokio::time::sleep(bind_delay).await;
    }
    let listener = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
    let server = Server::serve(SimListener(listener), ServerConfig::local()).await?;
    let mut mirrored = 0u64;
    loop {
        let stats = server
            .wait_for(Duration::from_secs(3600), |s| s.rows > mirrored)
            .await?;
        mirrored = stats.rows;
        let rows: Vec<Stored> = server
            .rows(TABLE)
            .iter()
            .map(|r| Stored {
                host,
                incarnation,
                connection: r.connection.0,
                seq: match r.value("seq") {
                    Some(Value::Long(v)) => *v,
                    _ => -1,
                },
            })
            .collect();
        lock(&ledger).incarnations.insert((host, incarnation), rows);
    }
}

// ----- scenarios --------------------------------------------------------------------

/// A change to the simulated world at a virtual time.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Drop everything between the client and this host.
    Partition(&'static str),
    /// Undo a partition or a hold between the client and this host.
    Repair(&'static str),
    /// Hold everything between the client and this host.
    Hold(&'static str),
    /// Deliver what was held, and let traffic flow again.
    Release(&'static str),
    /// Crash the host's software (its server and connections are gone).
    Crash(&'static str),
    /// Start the host's software afresh.
    Bounce(&'static str),
}

#[derive(Debug, Clone)]
struct Scenario {
    seed: u64,
    /// Server hosts, in `addr` order.
    servers: &'static [&'static str],
    /// Connect-string keys besides `addr` (auto-flush is off: batches are
    /// the explicit flushes, so frames are deterministic).
    conf: &'static str,
    rows: i64,
    rows_per_batch: i64,
    /// Virtual time between two batches.
    gap: Duration,
    /// Applied once virtual time passes each instant, in order.
    faults: Vec<(Duration, Fault)>,
    /// `sf_dir` for store-and-forward on disk.
    sf_dir: Option<PathBuf>,
    /// How long the servers refuse connections at the start.
    bind_delay: Duration,
}

/// What a scenario produced.
#[derive(Debug)]
struct Outcome {
    stored: Vec<Stored>,
    counters: Counters,
}

const BASE_CONF: &str = "auto_flush=off;reconnect_initial_backoff_millis=20;\
    reconnect_max_backoff_millis=200;reconnect_max_duration_millis=20000;\
    ack_timeout_millis=300;auth_timeout_ms=500;close_flush_timeout_millis=5000;";

fn run(scenario: Scenario) -> Outcome {
    let mut sim = turmoil::Builder::new()
        .rng_seed(scenario.seed)
        .simulation_duration(CLIENT_BUDGET + Duration::from_secs(10))
        .tick_duration(Duration::from_millis(1))
        .build();
    let ledger = SharedLedger::default();
    let bind_delay = scenario.bind_delay;
    for &host in scenario.servers {
        let ledger = Arc::clone(&ledger);
        sim.host(host, move || {
            serve_host(host, Arc::clone(&ledger), bind_delay)
        });
    }

    let mut conf = String::from("ws::");
    for host in scenario.servers {
        conf.push_str(&format!("addr={host}:{PORT};"));
    }
    conf.push_str(BASE_CONF);
    conf.push_str(scenario.conf);
    if let Some(dir) = &scenario.sf_dir {
        conf.push_str(&format!("sf_dir={};", dir.display()));
    }
    let counters: Arc<Mutex<Option<Counters>>> = Arc::default();
    let out = Arc::clone(&counters);
    let (seed, rows, per_batch, gap) = (
        scenario.seed,
        scenario.rows,
        scenario.rows_per_batch,
        scenario.gap,
    );
    sim.client("client", async move {
        let counters =
            tokio::time::timeout(CLIENT_BUDGET, client(conf, seed, rows, per_batch, gap))
                .await
                .map_err(|_| "the client did not finish within its virtual-time budget")??;
        *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(counters);
        Ok(())
    });

    let mut faults = scenario.faults.into_iter().peekable();
    loop {
        while let Some((_, fault)) = faults.next_if(|(at, _)| sim.elapsed() >= *at) {
            apply(&mut sim, fault);
        }
        if std::env::var_os("TURMOIL_E2E_TRACE").is_some() && sim.elapsed().as_millis() % 100 == 0 {
            eprintln!(
                "t={:?} ledger={:?}",
                sim.elapsed(),
                lock(&ledger)
                    .incarnations
                    .values()
                    .map(|v| v.len())
                    .collect::<Vec<_>>()
            );
        }
        if sim.step().expect("simulation step") {
            break;
        }
    }
    assert!(
        faults.next().is_none(),
        "the client finished before every fault was applied; the scenario tests less than it says"
    );

    let stored = lock(&ledger)
        .incarnations
        .values()
        .flatten()
        .copied()
        .collect();
    let counters = counters
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .expect("the client reported its counters");
    let outcome = Outcome { stored, counters };
    if std::env::var_os("TURMOIL_E2E_TRACE").is_some() {
        eprintln!(
            "stored={} connections={:?} counters={:?}",
            outcome.stored.len(),
            connections(&outcome),
            outcome.counters
        );
    }
    outcome
}

fn apply(sim: &mut turmoil::Sim<'_>, fault: Fault) {
    match fault {
        Fault::Partition(h) => sim.partition("client", h),
        Fault::Repair(h) => sim.repair("client", h),
        Fault::Hold(h) => sim.hold("client", h),
        Fault::Release(h) => sim.release("client", h),
        Fault::Crash(h) => sim.crash(h),
        Fault::Bounce(h) => sim.bounce(h),
    }
}

/// The client host: builds the sender on this host's runtime with the
/// turmoil dialer, sends `rows` rows in batches, waits until the last one
/// is acknowledged, closes, and returns the counters.
async fn client(
    conf: String,
    seed: u64,
    rows: i64,
    per_batch: i64,
    gap: Duration,
) -> Result<Counters, sf_io_tokio::Error> {
    let sender = Sender::builder(sf_core::config::Config::from_conf(&conf)?)
        .runtime(tokio::runtime::Handle::current())
        .dialer(sim_dial)
        .jitter_seed(seed)
        .build_async()
        .await?;
    let mut guard = SimSender(Some(sender));
    let counters = send_rows(&mut guard, rows, per_batch, gap).await?;
    if let Some(sender) = guard.0.take() {
        sender.close_async().await?;
    }
    Ok(counters)
}

/// Owns the sender inside the simulation. `Sender`'s `Drop` closes with a
/// blocking wait for its I/O task, which here runs on the same (only)
/// thread and so would never get to answer: a scenario that errors out or
/// runs out of budget must fail, not hang, so a sender that was not closed
/// with `close_async` is leaked instead.
struct SimSender(Option<Sender>);

impl Drop for SimSender {
    fn drop(&mut self) {
        if let Some(sender) = self.0.take() {
            std::mem::forget(sender);
        }
    }
}

async fn send_rows(
    guard: &mut SimSender,
    rows: i64,
    per_batch: i64,
    gap: Duration,
) -> Result<Counters, sf_io_tokio::Error> {
    let Some(sender) = guard.0.as_mut() else {
        return Err(sf_io_tokio::Error::Closed);
    };
    // No head start for the I/O task: the first flush comes before any
    // segment is provisioned, so `flush_async` must wait for it without
    // blocking this thread, which the I/O task shares.
    let mut last = None;
    let mut seq = 0i64;
    while seq < rows {
        for _ in 0..per_batch.min(rows - seq) {
            sender
                .table(TABLE)?
                .symbol("src", "turmoil")?
                .column_i64("seq", seq)?
                .at_micros(1_700_000_000_000_000 + seq)?;
            seq += 1;
        }
        last = sender.flush_async().await?.or(last);
        tokio::time::sleep(gap).await;
    }
    if let Some(fsn) = last {
        sender.wait_acked_async(fsn).await?;
    }
    Ok(sender.counters())
}

// ----- checks --------------------------------------------------------------------------

/// Every row sent is stored at least once, nothing else is stored, and on
/// every server connection the rows arrived in strictly increasing `seq`.
fn assert_exactly_once_and_ordered(outcome: &Outcome, rows: i64) {
    let distinct: BTreeSet<i64> = outcome.stored.iter().map(|s| s.seq).collect();
    let expected: BTreeSet<i64> = (0..rows).collect();
    assert_eq!(
        distinct,
        expected,
        "after dedup by seq the stored rows must be exactly the rows sent ({} stored in all)",
        outcome.stored.len()
    );
    let mut per_connection: BTreeMap<(&str, u32, u64), i64> = BTreeMap::new();
    for s in &outcome.stored {
        let key = (s.host, s.incarnation, s.connection);
        if let Some(prev) = per_connection.insert(key, s.seq) {
            assert!(
                s.seq > prev,
                "on {key:?} seq {} arrived after {prev}: a connection must carry frames in FSN order",
                s.seq
            );
        }
    }
}

fn connections(outcome: &Outcome) -> BTreeSet<(&'static str, u32, u64)> {
    outcome
        .stored
        .iter()
        .map(|s| (s.host, s.incarnation, s.connection))
        .collect()
}

fn scenario(seed: u64) -> Scenario {
    Scenario {
        seed,
        servers: &["server"],
        conf: "initial_connect_retry=async;",
        rows: 400,
        rows_per_batch: 10,
        gap: Duration::from_millis(10),
        faults: Vec::new(),
        sf_dir: None,
        bind_delay: Duration::ZERO,
    }
}

// ----- 1. clean run --------------------------------------------------------------------

#[test]
fn e2e_clean_run_delivers_every_row_once_in_order() {
    let outcome = run(scenario(1));
    assert_exactly_once_and_ordered(&outcome, 400);
    assert_eq!(outcome.stored.len(), 400, "no fault: no duplicate");
    assert_eq!(connections(&outcome).len(), 1, "one connection throughout");
    assert_eq!(outcome.counters.total_frames_replayed, 0);
    assert_eq!(outcome.counters.total_reconnect_attempts, 0);
    assert!(outcome.counters.last_terminal_error.is_none());
}

// ----- 2. partition / hold mid-stream ------------------------------------------------

#[test]
fn e2e_partition_mid_stream_then_repair_replays_and_delivers_everything() {
    let mut s = scenario(2);
    s.faults = vec![
        (Duration::from_millis(150), Fault::Partition("server")),
        (Duration::from_millis(1_400), Fault::Repair("server")),
    ];
    let outcome = run(s);
    assert_exactly_once_and_ordered(&outcome, 400);
    let c = &outcome.counters;
    assert!(
        connections(&outcome).len() >= 2,
        "the stalled connection was replaced"
    );
    assert!(c.total_reconnects_succeeded >= 1, "{c:?}");
    assert!(
        c.total_frames_replayed >= 1,
        "frames published during the partition are replayed: {c:?}"
    );
    assert!(c.last_terminal_error.is_none(), "{c:?}");
}

#[test]
fn e2e_held_link_released_late_duplicates_are_tolerated_and_order_holds() {
    // Held longer than ack_timeout: the client gives the connection up and
    // reconnects after the release; the held frames then reach the server
    // on the old connection as well, so some rows are stored twice.
    let mut s = scenario(3);
    s.faults = vec![
        (Duration::from_millis(150), Fault::Hold("server")),
        (Duration::from_millis(1_000), Fault::Release("server")),
    ];
    let outcome = run(s);
    assert_exactly_once_and_ordered(&outcome, 400);
    assert!(
        outcome.stored.len() > 400,
        "the held frames reached the server late on the abandoned connection too"
    );
    let c = &outcome.counters;
    assert!(c.total_reconnects_succeeded >= 1, "{c:?}");
    assert!(c.total_frames_replayed >= 1, "{c:?}");
    assert!(c.last_terminal_error.is_none(), "{c:?}");
}

// ----- 3. connection failures at connect ---------------------------------------------

#[test]
fn e2e_server_down_at_start_initial_connect_retry_on_connects_once_it_is_up() {
    let mut s = scenario(4);
    s.conf = "initial_connect_retry=on;";
    // The server host is up but listens only from 500 ms on: every connect
    // before is refused, and `build_async` returns only once one succeeds.
    s.bind_delay = Duration::from_millis(500);
    let outcome = run(s);
    assert_exactly_once_and_ordered(&outcome, 400);
    assert_eq!(
        outcome.stored.len(),
        400,
        "nothing was sent before the connection"
    );
    assert_eq!(connections(&outcome).len(), 1);
    let c = &outcome.counters;
    // Backoff starts at 20 ms and doubles (capped at 200 ms); with equal
    // jitter a sleep is at most its base, so four retries fit in
    // 20+40+80+160 = 300 ms, well inside the 500 ms of refusals.
    assert!(
        c.total_reconnect_attempts >= 4,
        "refused connects were retried with backoff: {c:?}"
    );
    assert_eq!(c.total_reconnects_succeeded, 1, "{c:?}");
    assert!(c.last_terminal_error.is_none(), "{c:?}");
}

#[test]
fn e2e_server_refusing_with_initial_connect_retry_off_fails_the_build() {
    // `off`: one round over the hosts; a refused connect is the
    // constructor's terminal error, and `build_async` returns it instead
    // of hanging the runtime.
    let mut sim = turmoil::Builder::new()
        .rng_seed(9)
        .simulation_duration(Duration::from_secs(30))
        .build();
    let ledger = SharedLedger::default();
    let l = Arc::clone(&ledger);
    sim.host("server", move || {
        serve_host("server", Arc::clone(&l), Duration::from_secs(3600))
    });
    let result: Arc<Mutex<Option<Result<(), sf_io_tokio::Error>>>> = Arc::default();
    let out = Arc::clone(&result);
    sim.client("client", async move {
        let conf = format!("ws::addr=server:{PORT};initial_connect_retry=off;{BASE_CONF}");
        let built = Sender::builder(sf_core::config::Config::from_conf(&conf)?)
            .runtime(tokio::runtime::Handle::current())
            .dialer(sim_dial)
            .jitter_seed(9)
            .build_async()
            .await;
        let r = match built {
            Ok(sender) => sender.close_async().await,
            Err(e) => Err(e),
        };
        *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        Ok(())
    });
    sim.run().expect("simulation");
    let r = result
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .expect("the client finished");
    assert!(
        matches!(r, Err(sf_io_tokio::Error::Terminal(_))),
        "a refused first connect with initial_connect_retry=off is terminal: {r:?}"
    );
    assert!(lock(&ledger).incarnations.is_empty(), "nothing was stored");
}

// ----- 4. server restart ----------------------------------------------------------------

#[test]
fn e2e_server_crash_and_fresh_restart_replays_everything_unacknowledged() {
    let mut s = scenario(5);
    s.faults = vec![
        (Duration::from_millis(200), Fault::Crash("server")),
        (Duration::from_millis(700), Fault::Bounce("server")),
    ];
    let outcome = run(s);
    assert_exactly_once_and_ordered(&outcome, 400);
    let incarnations: BTreeSet<u32> = outcome.stored.iter().map(|s| s.incarnation).collect();
    assert_eq!(
        incarnations,
        BTreeSet::from([1, 2]),
        "rows went to the first server and to its fresh restart"
    );
    let c = &outcome.counters;
    assert!(c.total_reconnects_succeeded >= 1, "{c:?}");
    assert!(
        c.total_frames_replayed >= 1,
        "frames published while the server was down are replayed: {c:?}"
    );
    assert!(c.last_terminal_error.is_none(), "{c:?}");
}

// ----- 5. failover -------------------------------------------------------------------------

#[test]
fn e2e_first_host_partitioned_fails_over_to_the_second_and_back() {
    let mut s = scenario(6);
    s.servers = &["server1", "server2"];
    s.faults = vec![
        // server1 unreachable from the start: the first round fails over.
        (Duration::ZERO, Fault::Partition("server1")),
        // Later server2 goes away and server1 comes back.
        (Duration::from_millis(250), Fault::Repair("server1")),
        (Duration::from_millis(250), Fault::Partition("server2")),
    ];
    let outcome = run(s);
    assert_exactly_once_and_ordered(&outcome, 400);
    let hosts: BTreeSet<&str> = outcome.stored.iter().map(|s| s.host).collect();
    assert_eq!(
        hosts,
        BTreeSet::from(["server1", "server2"]),
        "rows reached server2 first, then server1 after the second failover"
    );
    let first_on_2 = outcome.stored.iter().find(|s| s.host == "server2");
    assert_eq!(
        first_on_2.map(|s| s.seq),
        Some(0),
        "the first row went to server2: server1 was partitioned"
    );
    let c = &outcome.counters;
    assert!(c.total_reconnects_succeeded >= 1, "{c:?}");
    assert!(c.last_terminal_error.is_none(), "{c:?}");
}

// ----- store-and-forward on disk ----------------------------------------------------------

#[test]
fn e2e_sf_dir_survives_a_server_restart_under_virtual_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut s = scenario(7);
    s.sf_dir = Some(dir.path().to_path_buf());
    s.rows = 200;
    s.faults = vec![
        (Duration::from_millis(100), Fault::Crash("server")),
        (Duration::from_millis(400), Fault::Bounce("server")),
    ];
    let outcome = run(s);
    assert_exactly_once_and_ordered(&outcome, 200);
    let c = &outcome.counters;
    assert!(c.total_frames_replayed >= 1, "{c:?}");
    // The frames went through the file log of the slot (`sender_id`
    // defaults to `default`), and the acknowledgement watermark was kept.
    let slot: Vec<String> = std::fs::read_dir(dir.path().join("default"))
        .expect("the slot directory exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        slot.iter().any(|n| n.ends_with(".sfa")),
        "segment files in the slot: {slot:?}"
    );
    assert!(
        slot.iter().any(|n| n == ".ack-watermark"),
        "watermark in the slot: {slot:?}"
    );
    assert!(c.last_terminal_error.is_none(), "{c:?}");
}

// ----- determinism ----------------------------------------------------------------------------

#[test]
fn e2e_same_seed_same_run() {
    // Virtual time, a seeded network and a seeded backoff jitter: the same
    // scenario stores the same rows on the same connections and counts the
    // same reconnects and replays.
    let faulty = || {
        let mut s = scenario(8);
        s.faults = vec![
            (Duration::from_millis(150), Fault::Partition("server")),
            (Duration::from_millis(700), Fault::Repair("server")),
        ];
        s
    };
    let a = run(faulty());
    let b = run(faulty());
    assert_exactly_once_and_ordered(&a, 400);
    assert_eq!(a.stored, b.stored);
    assert_eq!(a.counters, b.counters);
    assert!(
        a.counters.total_reconnect_attempts >= 1,
        "the run had faults to replay"
    );
}

// ----- the checker itself ------------------------------------------------------------------

fn stored(connection: u64, seq: i64) -> Stored {
    Stored {
        host: "server",
        incarnation: 1,
        connection,
        seq,
    }
}

fn outcome_of(stored: Vec<Stored>) -> Outcome {
    Outcome {
        stored,
        counters: Counters {
            total_reconnect_attempts: 0,
            total_reconnects_succeeded: 0,
            total_frames_replayed: 0,
            total_server_errors: 0,
            dropped_error_notifications: 0,
            total_error_notifications_delivered: 0,
            total_backpressure_stalls: 0,
            acked_fsn: None,
            published_fsn: None,
            durable_fsn: None,
            in_flight_frames: 0,
            last_terminal_error: None,
            active_background_drainers: 0,
            total_background_drainers_succeeded: 0,
            total_background_drainers_failed: 0,
        },
    }
}

#[test]
fn checker_accepts_replays_on_a_later_connection() {
    let o = outcome_of(vec![stored(0, 0), stored(0, 1), stored(1, 1), stored(1, 2)]);
    assert_exactly_once_and_ordered(&o, 3);
}

#[test]
#[should_panic(expected = "exactly the rows sent")]
fn checker_rejects_a_lost_row() {
    assert_exactly_once_and_ordered(&outcome_of(vec![stored(0, 0), stored(0, 2)]), 3);
}

#[test]
#[should_panic(expected = "exactly the rows sent")]
fn checker_rejects_a_row_never_sent() {
    assert_exactly_once_and_ordered(
        &outcome_of(vec![stored(0, 0), stored(0, 1), stored(0, 7)]),
        2,
    );
}

#[test]
#[should_panic(expected = "FSN order")]
fn checker_rejects_a_reordered_connection() {
    assert_exactly_once_and_ordered(&outcome_of(vec![stored(0, 1), stored(0, 0)]), 2);
}

#[test]
#[should_panic(expected = "FSN order")]
fn checker_rejects_a_duplicate_on_one_connection() {
    assert_exactly_once_and_ordered(
        &outcome_of(vec![stored(0, 0), stored(0, 0), stored(0, 1)]),
        2,
    );
}
