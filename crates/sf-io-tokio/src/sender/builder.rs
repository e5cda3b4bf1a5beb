//! Building a sender: the connect string (or a [`Config`]) turned into the
//! engine's configuration, the slot opened, the handlers installed, and the
//! I/O task started on the caller's runtime or on its own thread.

use std::path::Path;
use std::sync::Arc;

use qwp_proto::encoder::{EncoderConfig, MessageBuilder};
use sf_core::config::Config;
use sf_core::engine::{Engine, EngineConfig};
use sf_core::reconnect::InitialConnectRetry;
use sf_core::recovery::RecoveredSlot;
use sf_core::ring::SegmentName;
use tokio::runtime::{Handle, RuntimeFlavor};

use super::callbacks::{spawn_dispatcher, ErrorHandler, ProgressHandler};
use super::driver::{Driver, SlotFiles};
use super::error::{Error, Result};
use super::shared::{Clock, Inner, Segment, Shared};
use super::{Runtime, Sender};
use crate::fs::{open_slot, OpenedSlot};
use crate::net::{ConnectSettings, Dialer, TLS_HANDSHAKE_TIMEOUT};

/// The `X-QWP-Client-Id` this sender announces.
const CLIENT_ID: &str = concat!("qwp-sf-rust/", env!("CARGO_PKG_VERSION"));

/// Builds a [`Sender`] from a [`Config`] plus the handlers that a connect
/// string cannot carry.
pub struct SenderBuilder {
    config: Config,
    progress: Option<ProgressHandler>,
    error: Option<ErrorHandler>,
    runtime: Option<Handle>,
    dialer: Option<Arc<dyn Dialer>>,
    jitter_seed: Option<u64>,
    drainer_listener: Option<crate::orphan::DrainerListener>,
    /// A slot the caller already locked and recovered (an orphan drainer's
    /// two-step open), used instead of opening `sf_dir`/`sender_id`.
    opened: Option<OpenedSlot>,
}

impl core::fmt::Debug for SenderBuilder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SenderBuilder")
            .field("config", &self.config.to_redacted_conf_string())
            .field("progress", &self.progress.is_some())
            .field("error", &self.error.is_some())
            .finish()
    }
}

impl SenderBuilder {
    /// A builder over a validated configuration.
    pub fn new(config: Config) -> SenderBuilder {
        SenderBuilder {
            config,
            progress: None,
            error: None,
            runtime: None,
            dialer: None,
            jitter_seed: None,
            drainer_listener: None,
            opened: None,
        }
    }

    /// Builds on a slot the caller already locked and recovered (see
    /// [`crate::fs::recover_slot`]) instead of opening the configured one:
    /// an orphan drainer checks `.failed` and handles a refusal without
    /// ever releasing the lock. The configuration must name that slot.
    pub(crate) fn opened_slot(mut self, opened: OpenedSlot) -> Self {
        self.opened = Some(opened);
        self
    }

    /// A builder over a connect string (`ws::addr=host:port;…`).
    pub fn from_conf(conf: &str) -> Result<SenderBuilder> {
        Ok(SenderBuilder::new(Config::from_conf(conf)?))
    }

    /// Calls `f` with the acknowledged FSN each time it advances, on the
    /// sender's dispatcher thread.
    pub fn on_progress(mut self, f: impl FnMut(sf_core::Fsn) + Send + 'static) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Calls `f` with every error notification (HALT and DROP), on the
    /// sender's dispatcher thread. Every notification is also logged at
    /// ERROR, so the default (no handler) is never silent.
    pub fn on_error(
        mut self,
        f: impl FnMut(&sf_core::errors::SenderError) + Send + 'static,
    ) -> Self {
        self.error = Some(Box::new(f));
        self
    }

    /// Calls `f` with every event of this sender's orphan drainers
    /// (`drain_orphans=on`), on the drainer's thread.
    pub fn on_drainer_event(
        mut self,
        f: impl Fn(crate::orphan::DrainerEvent) + Send + Sync + 'static,
    ) -> Self {
        self.drainer_listener = Some(std::sync::Arc::new(f));
        self
    }

    /// Runs the I/O task on this runtime instead of the caller's (or a
    /// dedicated thread). A current-thread runtime works only with the
    /// async APIs ([`SenderBuilder::build_async`], `flush_async`,
    /// `close_async`, …): a blocking call would stall the I/O task, and so
    /// would dropping the sender without `close_async` (`Drop` closes with
    /// a blocking wait).
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Opens every connection's byte stream with `dialer` instead of a
    /// TCP connect: a Unix socket, a proxy tunnel, a simulated network.
    /// TLS (`wss::`) and the WebSocket upgrade run over the stream it
    /// returns; each `addr` entry is handed to it as configured.
    pub fn dialer(mut self, dialer: impl Dialer) -> Self {
        self.dialer = Some(Arc::new(dialer));
        self
    }

    /// Seeds the reconnect backoff jitter (default: a seed from the wall
    /// clock and the process id), so that a run under a simulated network
    /// and virtual time reconnects at the same instants every time.
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }

    /// Opens the slot (SF mode; blocking file I/O), builds the engine and
    /// starts the I/O task.
    pub fn build(self) -> Result<Sender> {
        let (mut sender, drainer_listener) = self.start_sender()?;
        // `initial_connect_retry=off` and `on` make the constructor wait for
        // the first connection (off: one round, its failure is terminal;
        // on: retried within the reconnect budget); `async` returns at once.
        // The engine bounds both waits, so this never hangs.
        if sender.config.reconnect().initial_connect_retry != InitialConnectRetry::Async {
            if let Err(e) = sender.wait_connected() {
                drop(sender);
                return Err(e);
            }
        }
        start_drainers(&mut sender, drainer_listener);
        Ok(sender)
    }

    /// [`SenderBuilder::build`] for async code: the wait for the first
    /// connection (`initial_connect_retry=off` or `on`) does not block the
    /// runtime, so the I/O task may run on the same (even current-thread)
    /// runtime, e.g. with [`SenderBuilder::runtime`]`(Handle::current())`.
    /// Opening an `sf_dir` slot is still blocking file I/O.
    pub async fn build_async(self) -> Result<Sender> {
        let (mut sender, drainer_listener) = self.start_sender()?;
        if sender.config.reconnect().initial_connect_retry != InitialConnectRetry::Async {
            if let Err(e) = wait_connected_async(&sender).await {
                // Not dropped here: a drop closes with a blocking wait.
                let _ = sender.close_async().await;
                return Err(e);
            }
        }
        start_drainers(&mut sender, drainer_listener);
        Ok(sender)
    }

    /// Builds the sender and starts its I/O task, without waiting for a
    /// connection; also hands back the drainer listener for
    /// [`start_drainers`].
    fn start_sender(self) -> Result<(Sender, Option<crate::orphan::DrainerListener>)> {
        let SenderBuilder {
            config,
            progress,
            error,
            runtime,
            dialer,
            jitter_seed: seed,
            drainer_listener,
            opened,
        } = self;
        let engine_config = engine_config(&config)?;
        let mut settings = ConnectSettings::from_config(&config, CLIENT_ID)?;
        if let Some(dialer) = dialer {
            settings = settings.with_shared_dialer(dialer);
        }
        let clock = Clock::new();

        let mut segments = std::collections::BTreeMap::new();
        let (recovered, lock, slot) = match &config.storage().sf_dir {
            None => (RecoveredSlot::empty(), None, None),
            Some(dir) => {
                let mut opened = match opened {
                    Some(o) => o,
                    None => open_slot(Path::new(dir), &config.storage().sender_id)?,
                };
                let slot_dir = opened.lock.slot_dir().to_path_buf();
                for seg in &opened.plan.slot.segments {
                    if let Some(f) = opened.segments.take(seg.gen) {
                        let split = Segment::file(f, seg.append_offset)?;
                        segments.insert(SegmentName::from(seg.gen), split);
                    }
                }
                for spare in &opened.plan.slot.leftover_spares {
                    if let Some(f) = opened.segments.take(Some(spare.gen)) {
                        segments.insert(SegmentName::Gen(spare.gen), Segment::file(f, 0)?);
                    }
                }
                (
                    opened.plan.slot,
                    Some(opened.lock),
                    Some(SlotFiles {
                        dir: slot_dir,
                        watermark: None,
                    }),
                )
            }
        };

        let seed = seed.unwrap_or_else(jitter_seed);
        let engine = Engine::new(engine_config, recovered, clock.now(), seed)?;
        let shared = Arc::new(Shared::new(
            Inner {
                engine,
                segments,
                lock,
                closed: None,
                driver_failure: None,
            },
            clock,
        ));
        let (events, dispatcher) =
            spawn_dispatcher(progress, error).map_err(|e| Error::IoTask(e.to_string()))?;
        let driver = Driver {
            shared: Arc::clone(&shared),
            hosts: config.addrs().to_vec(),
            settings,
            slot,
            events,
        };
        let runtime = start(driver, runtime, &shared)?;

        let encoder = MessageBuilder::with_config(EncoderConfig {
            max_batch_bytes: usize::try_from(config.max_frame_bytes()).unwrap_or(usize::MAX),
            ..EncoderConfig::default()
        })?;
        Ok((
            Sender::assemble(config, shared, runtime, Some(dispatcher), encoder),
            drainer_listener,
        ))
    }
}

/// Starts the orphan drainers of a built sender (sf-client §18.2), once its
/// own slot is locked and the sender is up; it never fails the constructor.
fn start_drainers(sender: &mut Sender, listener: Option<crate::orphan::DrainerListener>) {
    let storage = sender.config.storage();
    if storage.drain_orphans && storage.sf_dir.is_some() {
        let own = sf_core::orphans::OwnSlots::Single(storage.sender_id.clone());
        sender.drainers = Some(crate::orphan::OrphanDrainers::start(
            &sender.config,
            own,
            listener,
        ));
    }
}

/// The async twin of `Sender::wait_connected`: until the engine is
/// connected, or the terminal error that ended the attempts (bounded by the
/// engine's budget), or the I/O task is gone.
async fn wait_connected_async(sender: &Sender) -> Result<()> {
    let mut rx = sender.shared.subscribe();
    loop {
        if let Some(outcome) = super::connect_outcome(&sender.shared.lock()) {
            return outcome;
        }
        if rx.changed().await.is_err() {
            return Err(Error::Closed);
        }
    }
}

/// Starts the I/O task: on `handle` if given, else on the caller's runtime
/// if it is multi-threaded, else on a dedicated thread running a
/// current-thread runtime. A current-thread caller runtime is not used: a
/// blocking `flush()` on it would stall the very task it waits for.
fn start(driver: Driver, handle: Option<Handle>, shared: &Arc<Shared>) -> Result<Runtime> {
    let handle = handle.or_else(|| {
        Handle::try_current()
            .ok()
            .filter(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
    });
    if let Some(h) = handle {
        let task = h.spawn(guarded(driver, Arc::clone(shared)));
        return Ok(Runtime::Caller { task: Some(task) });
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::IoTask(format!("cannot build the I/O runtime: {e}")))?;
    let shared2 = Arc::clone(shared);
    let thread = std::thread::Builder::new()
        .name("qwp-sf-io".into())
        .spawn(move || rt.block_on(guarded(driver, shared2)))
        .map_err(|e| Error::IoTask(format!("cannot start the I/O thread: {e}")))?;
    Ok(Runtime::Thread {
        thread: Some(thread),
    })
}

/// Runs the driver; whatever way it ends (finished, or dropped because the
/// runtime it was spawned on shut down), waiters are released with a close
/// outcome so no wait hangs on a task that is gone.
async fn guarded(driver: Driver, shared: Arc<Shared>) {
    let _exit = ExitGuard(shared);
    driver.run().await;
}

/// Publishes a close outcome if the driver ended without one.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        if g.closed.is_none() {
            g.driver_failure = Some("the I/O task ended before close()".into());
            tracing::error!("qwp-sf I/O task ended before close(); the sender is unusable");
            g.closed = Some(super::shared::CloseOutcome {
                result: Ok(()),
                drained: false,
            });
        }
        g.segments.clear();
        g.lock = None;
        drop(g);
        self.0.notify_waiters();
    }
}

/// Seeds the backoff jitter: the adapter may draw randomness, the core not.
fn jitter_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32)
}

/// The engine's configuration for a connect string's [`Config`]: the
/// core's own mapping, with the connect bound widened to the whole attempt.
pub fn engine_config(config: &Config) -> Result<EngineConfig> {
    let mut e =
        EngineConfig::try_from(config).map_err(|err| Error::InvalidConfig(err.to_string()))?;
    // The net layer bounds the upgrade by `auth_timeout_ms` and the TLS
    // handshake by its own 5 s; the engine's bound covers the whole attempt
    // so the typed failure from the net layer normally arrives first.
    e.connect_timeout = config.reconnect().auth_timeout + TLS_HANDSHAKE_TIMEOUT;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sf_core::durability::DurabilityMode;
    use sf_core::storage::Backing;
    use std::time::Duration;

    #[test]
    fn engine_config_maps_every_sf_key_of_the_connect_string() {
        let c = Config::from_conf(
            "ws::addr=a:1;addr=b:2;sf_dir=/tmp/x;sender_id=s;sf_max_bytes=1048576;\
             sf_max_total_bytes=8388608;sf_durability=flush;sf_append_deadline_millis=1234;\
             request_durable_ack=on;close_flush_timeout_millis=0;in_flight_window=7;\
             reconnect_initial_backoff_millis=10;reconnect_max_backoff_millis=20;\
             reconnect_max_duration_millis=30;on_write_error=halt;",
        )
        .unwrap();
        let e = engine_config(&c).unwrap();
        assert_eq!(e.hosts.get(), 2);
        assert_eq!(e.storage.backing, Backing::Files);
        assert_eq!(e.storage.segment_bytes, 1 << 20);
        assert_eq!(e.storage.max_total_bytes, 8 << 20);
        assert_eq!(e.storage.durability, DurabilityMode::Flush);
        assert_eq!(e.storage.append_deadline, Duration::from_millis(1234));
        assert!(e.request_durable_ack);
        assert_eq!(e.close_flush_timeout, None, "0 skips the drain (C2)");
        assert_eq!(e.in_flight_window.get(), 7);
        assert_eq!(e.backoff.initial(), Duration::from_millis(10));
        assert_eq!(
            e.error_policies
                .resolve(qwp_proto::status::ErrorCategory::WriteError),
            qwp_proto::status::ErrorPolicy::Halt
        );
    }

    #[test]
    fn engine_config_without_sf_dir_is_memory_backed() {
        let c = Config::from_conf("ws::addr=a:1;").unwrap();
        let e = engine_config(&c).unwrap();
        assert_eq!(e.storage.backing, Backing::Memory);
        assert_eq!(e.close_flush_timeout, Some(Duration::from_secs(5)));
    }

    #[test]
    fn engine_connect_timeout_covers_tls_and_upgrade_bounds() {
        let c = Config::from_conf("ws::addr=a:1;auth_timeout_ms=700;").unwrap();
        let e = engine_config(&c).unwrap();
        assert_eq!(
            e.connect_timeout,
            Duration::from_millis(700) + TLS_HANDSHAKE_TIMEOUT
        );
    }
}
