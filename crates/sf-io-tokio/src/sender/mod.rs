//! The public [`Sender`]: rows in, frames into the store-and-forward log,
//! frames out to QuestDB, acknowledgements back.
//!
//! # Shape
//!
//! * The producer (whoever holds the `Sender`) encodes rows with
//!   `qwp_proto`'s [`MessageBuilder`]. [`Sender::flush`] (or an auto-flush)
//!   encodes the pending rows into one frame, asks the engine where it goes,
//!   writes it into the segment (memcpy + CRC, no syscall, no hop through
//!   the I/O task), commits it, and waits only as long as the durability
//!   mode requires (C1).
//! * The I/O task (`driver`) performs everything else the engine asks.
//! * Handlers run on a dispatcher thread (`callbacks`).
//!
//! # Runtimes
//!
//! Inside a multi-threaded tokio runtime the I/O task is spawned on it;
//! otherwise (plain synchronous code, or a current-thread runtime) the
//! sender runs its own I/O thread with a current-thread runtime. Blocking
//! calls ([`Sender::flush`], [`Sender::wait_acked`], [`Sender::close`])
//! use `block_in_place` on a multi-threaded runtime so they never stall
//! the workers; from async code prefer [`Sender::flush_async`],
//! [`Sender::wait_acked_async`] and [`Sender::close_async`].
//!
//! On a current-thread runtime every blocking call blocks that runtime's
//! only thread: if the server (e.g. a test server) runs on the same
//! runtime, use `initial_connect_retry=async` and the async variants, or a
//! multi-threaded runtime.
//!
//! # Construction
//!
//! `initial_connect_retry=off` (default) and `on` make the constructor wait
//! for the first connection (off: its failure is the constructor's error;
//! on: retried within the reconnect budget); `async` returns at once.

mod builder;
mod callbacks;
mod counters;
mod driver;
mod error;
mod shared;

pub use builder::{engine_config, SenderBuilder};
pub use callbacks::{ErrorHandler, ProgressHandler};
pub use counters::Counters;
pub use error::{Error, Result};

use std::sync::{Arc, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use qwp_proto::encoder::MessageBuilder;
use sf_core::config::{AutoFlush, Config};
use sf_core::durability::BatchTicket;
use sf_core::storage::AppendDecision;
use sf_core::Fsn;
use tokio::runtime::{Handle, RuntimeFlavor};

use shared::{Inner, Shared};

/// Where the I/O task runs.
#[derive(Debug)]
enum Runtime {
    /// Spawned on the caller's multi-threaded runtime.
    Caller {
        /// Awaited by `close_async`; the blocking `close` returns once the
        /// task published the outcome (it ends right after).
        task: Option<tokio::task::JoinHandle<()>>,
    },
    /// On the sender's own thread.
    Thread { thread: Option<JoinHandle<()>> },
}

/// A QWP store-and-forward sender. See the module docs.
#[derive(Debug)]
pub struct Sender {
    config: Config,
    shared: Arc<Shared>,
    runtime: Runtime,
    dispatcher: Option<JoinHandle<()>>,
    encoder: MessageBuilder,
    buf: Vec<u8>,
    auto_flush: Option<AutoFlush>,
    /// When the current batch got its first row (interval auto-flush).
    batch_started: Option<std::time::Instant>,
    closed: bool,
    /// Payload bytes of the frames this sender appended (see
    /// [`Sender::appended_bytes`]).
    appended_bytes: u64,
    /// Set once a flush failed: a pool discards such a sender (DESIGN §6
    /// item 21).
    flush_failed: bool,
    /// Rows of the frame in `buf` whose append failed (0: none). S7: a
    /// failed append never drops the batch, so the next flush (or close)
    /// appends that frame again before anything newer.
    unsent_rows: usize,
    /// The orphan drainers this sender started (`drain_orphans=on`).
    drainers: Option<crate::orphan::OrphanDrainers>,
}

impl Sender {
    /// Builds a sender from a connect string, e.g.
    /// `ws::addr=localhost:9000;sf_dir=/var/lib/app/sf;`.
    pub fn from_conf(conf: &str) -> Result<Sender> {
        SenderBuilder::from_conf(conf)?.build()
    }

    /// Builds a sender from a validated configuration.
    pub fn from_config(config: Config) -> Result<Sender> {
        SenderBuilder::new(config).build()
    }

    /// A builder, for the handlers a connect string cannot carry.
    pub fn builder(config: Config) -> SenderBuilder {
        SenderBuilder::new(config)
    }

    fn assemble(
        config: Config,
        shared: Arc<Shared>,
        runtime: Runtime,
        dispatcher: Option<JoinHandle<()>>,
        encoder: MessageBuilder,
    ) -> Sender {
        let auto_flush = config.auto_flush().copied();
        let cap = usize::try_from(config.limits().init_buf_size).unwrap_or(64 * 1024);
        Sender {
            config,
            shared,
            runtime,
            dispatcher,
            encoder,
            buf: Vec::with_capacity(cap),
            auto_flush,
            batch_started: None,
            closed: false,
            appended_bytes: 0,
            flush_failed: false,
            unsent_rows: 0,
            drainers: None,
        }
    }

    /// The configuration this sender was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- rows --------------------------------------------------------------

    /// Refuses producer calls once the engine halted or the sender closed.
    fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Closed);
        }
        if !self
            .shared
            .stopped
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        let g = self.shared.lock();
        if let Some(e) = g.engine.last_terminal_error() {
            return Err(Error::Terminal(e.clone()));
        }
        if g.closed.is_some() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Starts a row for `table`.
    pub fn table(&mut self, name: &str) -> Result<&mut Self> {
        self.check_open()?;
        self.encoder.table(name)?;
        Ok(self)
    }

    /// Sets a SYMBOL column of the current row.
    pub fn symbol(&mut self, name: &str, value: &str) -> Result<&mut Self> {
        self.encoder.symbol(name, value)?;
        Ok(self)
    }

    /// Sets a BOOLEAN column.
    pub fn column_bool(&mut self, name: &str, v: bool) -> Result<&mut Self> {
        self.encoder.column_bool(name, v)?;
        Ok(self)
    }

    /// Sets a LONG column.
    pub fn column_i64(&mut self, name: &str, v: i64) -> Result<&mut Self> {
        self.encoder.column_i64(name, v)?;
        Ok(self)
    }

    /// Sets an INT column.
    pub fn column_i32(&mut self, name: &str, v: i32) -> Result<&mut Self> {
        self.encoder.column_i32(name, v)?;
        Ok(self)
    }

    /// Sets a DOUBLE column.
    pub fn column_f64(&mut self, name: &str, v: f64) -> Result<&mut Self> {
        self.encoder.column_f64(name, v)?;
        Ok(self)
    }

    /// Sets a VARCHAR column.
    pub fn column_str(&mut self, name: &str, v: &str) -> Result<&mut Self> {
        self.encoder.column_str(name, v)?;
        Ok(self)
    }

    /// Sets a TIMESTAMP (microseconds) column.
    pub fn column_ts_micros(&mut self, name: &str, v: i64) -> Result<&mut Self> {
        self.encoder.column_ts_micros(name, v)?;
        Ok(self)
    }

    /// Sets a TIMESTAMP_NANOS column.
    pub fn column_ts_nanos(&mut self, name: &str, v: i64) -> Result<&mut Self> {
        self.encoder.column_ts_nanos(name, v)?;
        Ok(self)
    }

    /// Any other column setter of [`MessageBuilder`] (UUID, arrays,
    /// decimals, …) on the row in progress. Finish rows with the `at*`
    /// methods of the sender, not of the builder, so auto-flush applies.
    pub fn with_row<F>(&mut self, f: F) -> Result<&mut Self>
    where
        F: FnOnce(&mut MessageBuilder) -> core::result::Result<(), qwp_proto::encoder::EncodeError>,
    {
        f(&mut self.encoder)?;
        Ok(self)
    }

    /// Ends the row with a designated timestamp in microseconds.
    ///
    /// A row that would make the batch exceed the largest frame this
    /// configuration can store is refused with `EncodeError::BatchFull`
    /// and leaves no trace; the rows already pending are kept, so
    /// `flush()` and writing the row again recovers. Auto-flush by rows or
    /// bytes keeps batches below that limit.
    pub fn at_micros(&mut self, ts: i64) -> Result<()> {
        self.encoder.at_micros(ts)?;
        self.row_done()
    }

    /// Ends the row with a designated timestamp in nanoseconds.
    pub fn at_nanos(&mut self, ts: i64) -> Result<()> {
        self.encoder.at_nanos(ts)?;
        self.row_done()
    }

    /// Ends the row stamped with the local wall clock (microseconds).
    pub fn at_now(&mut self) -> Result<()> {
        self.encoder.at_now(driver::now_micros())?;
        self.row_done()
    }

    /// Ends the row and lets the server assign the timestamp.
    pub fn at_server_time(&mut self) -> Result<()> {
        self.encoder.at_server_time()?;
        self.row_done()
    }

    /// Drops the row being built (after `table(…)`, before `at_*`), if any,
    /// leaving the completed rows untouched; `true` when there was one.
    pub fn cancel_row(&mut self) -> bool {
        let had = self.encoder.row_in_progress();
        self.encoder.rollback_row();
        had
    }

    /// A half-built row cannot be sent; it must not keep the completed rows
    /// before it from being flushed by `close()`.
    fn drop_partial_row_at_close(&mut self) {
        if self.cancel_row() {
            tracing::warn!("qwp-sf sender closed with a row in progress; that row was dropped");
        }
    }

    /// Rows encoded and not yet flushed (including those of a flush that
    /// failed, which the next flush sends again).
    pub fn pending_rows(&self) -> usize {
        self.encoder.pending_rows() + self.unsent_rows
    }

    /// Auto-flush (rows, bytes, interval), checked after each row; no
    /// timer: an idle producer's rows wait for its next row or `flush()`.
    fn row_done(&mut self) -> Result<()> {
        let now = std::time::Instant::now();
        let started = *self.batch_started.get_or_insert(now);
        let Some(af) = self.auto_flush else {
            return Ok(());
        };
        if auto_flush_due(
            &af,
            self.encoder.pending_rows() as u64,
            self.encoder.encoded_len_bound() as u64,
            now.saturating_duration_since(started),
        ) {
            self.flush()?;
        }
        Ok(())
    }

    // ----- flush ---------------------------------------------------------------

    /// Encodes the pending rows into one frame, appends it to the log and
    /// returns its FSN once the durability mode says the batch is safe (C1):
    /// published (memory), fsynced (`flush`/`append`). `None` when no row
    /// was pending. Blocks while the log is at its cap, up to
    /// `sf_append_deadline_millis` (S6).
    pub fn flush(&mut self) -> Result<Option<Fsn>> {
        let r = self.flush_inner();
        self.flush_failed |= r.is_err();
        r
    }

    fn flush_inner(&mut self) -> Result<Option<Fsn>> {
        let Some(ticket) = self.append_pending()? else {
            return Ok(None);
        };
        let shared = Arc::clone(&self.shared);
        blocking(move || wait_ticket(&shared, ticket))
    }

    /// Whether any flush on this sender failed (whatever the reason). A
    /// sender pool discards such a sender instead of lending it again.
    pub fn flush_failed(&self) -> bool {
        self.flush_failed
    }

    /// [`Sender::flush`] for async code: neither the wait at the storage cap
    /// (bounded by `sf_append_deadline_millis`) nor the wait for durability
    /// blocks the runtime.
    pub async fn flush_async(&mut self) -> Result<Option<Fsn>> {
        let r = self.flush_async_inner().await;
        self.flush_failed |= r.is_err();
        r
    }

    async fn flush_async_inner(&mut self) -> Result<Option<Fsn>> {
        let Some(ticket) = self.append_pending_async().await? else {
            return Ok(None);
        };
        let shared = Arc::clone(&self.shared);
        let mut rx = shared.subscribe();
        loop {
            {
                let g = shared.lock();
                if let Some(r) = ticket_state(&g, ticket) {
                    return r;
                }
            }
            if rx.changed().await.is_err() {
                return Err(Error::Closed);
            }
        }
    }

    /// Encodes and appends the pending rows as one frame and closes the
    /// batch; returns the ticket to wait on, or `None` when nothing was
    /// pending.
    fn append_pending(&mut self) -> Result<Option<BatchTicket>> {
        self.check_open()?;
        let mut last = None;
        // A frame whose append failed goes first (S7, FSN order).
        while self.unsent_rows > 0 || self.encode_pending()? {
            let shared = Arc::clone(&self.shared);
            let result = blocking(|| append_frame(&shared, &self.buf));
            last = Some(self.appended(result)?);
        }
        Ok(last)
    }

    /// [`Sender::append_pending`] without blocking the runtime at the cap.
    async fn append_pending_async(&mut self) -> Result<Option<BatchTicket>> {
        self.check_open()?;
        let mut last = None;
        while self.unsent_rows > 0 || self.encode_pending()? {
            let shared = Arc::clone(&self.shared);
            let result = append_frame_async(&shared, &self.buf).await;
            last = Some(self.appended(result)?);
        }
        Ok(last)
    }

    /// Encodes the pending rows into `buf` as one frame, which stays there
    /// until appended; `false` when no row was pending.
    fn encode_pending(&mut self) -> Result<bool> {
        let rows = self.encoder.pending_rows();
        if rows == 0 {
            return Ok(false);
        }
        self.buf.clear();
        self.encoder.encode_into(&mut self.buf)?;
        self.batch_started = None;
        self.unsent_rows = rows;
        Ok(true)
    }

    /// Settles the append of the frame in `buf`: counted and cleared on
    /// success; kept for the next flush on failure.
    fn appended(&mut self, result: Result<BatchTicket>) -> Result<BatchTicket> {
        let ticket = result?;
        self.unsent_rows = 0;
        self.appended_bytes += self.buf.len() as u64;
        Ok(ticket)
    }

    // ----- acknowledgements ---------------------------------------------------

    /// The highest acknowledged FSN.
    pub fn acked_fsn(&self) -> Option<Fsn> {
        self.shared.lock().engine.acked_fsn()
    }

    /// Blocks until `fsn` is acknowledged (by OK, or DURABLE_ACK with
    /// `request_durable_ack=on`), the sender halts (its error), or `timeout`
    /// passes.
    pub fn wait_acked(&self, fsn: Fsn, timeout: Duration) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let deadline = deadline_after(timeout);
            let mut g = shared.lock();
            loop {
                if let Some(r) = acked_state(&g, fsn) {
                    return r;
                }
                let now = std::time::Instant::now();
                if now >= deadline {
                    return Err(Error::AckTimeout {
                        fsn,
                        timeout_ms: timeout.as_millis(),
                        acked: g.engine.acked_fsn(),
                    });
                }
                g = shared.wait_timeout(g, deadline - now);
            }
        })
    }

    /// Waits until `fsn` is acknowledged or the sender halts or closes.
    /// Wrap it in `tokio::time::timeout` for a bound.
    pub async fn wait_acked_async(&self, fsn: Fsn) -> Result<()> {
        let mut rx = self.shared.subscribe();
        loop {
            {
                let g = self.shared.lock();
                if let Some(r) = acked_state(&g, fsn) {
                    return r;
                }
            }
            if rx.changed().await.is_err() {
                return Err(Error::Closed);
            }
        }
    }

    /// Blocks until the engine is connected, or returns the terminal error
    /// that ended the attempts (bounded by the engine's budget).
    fn wait_connected(&self) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            let mut g = shared.lock();
            loop {
                if let Some(outcome) = connect_outcome(&g) {
                    return outcome;
                }
                g = shared.wait(g);
            }
        })
    }

    /// Payload bytes (QWP1 messages, without the 8-byte frame envelopes) of
    /// the frames this sender appended since it was built; replays are not
    /// counted again.
    pub fn appended_bytes(&self) -> u64 {
        self.appended_bytes
    }

    /// The counters of sf-client §20.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::read(&self.shared.lock().engine);
        if let Some(d) = &self.drainers {
            let dc = d.counters();
            c.active_background_drainers = dc.active;
            c.total_background_drainers_succeeded = dc.succeeded;
            c.total_background_drainers_failed = dc.failed;
        }
        c
    }

    /// Writes `.failed` with `reason` into this sender's slot while the
    /// sender still holds its lock (sf-client §5.2: before the release).
    /// `Ok(false)` when the sender holds no lock (memory mode, or the slot
    /// was already released).
    ///
    /// The lock is taken out of the shared state for the file write, so
    /// the I/O task never waits on the state mutex behind file I/O; owned
    /// here it stays held throughout. It goes back afterwards unless the
    /// sender closed meanwhile, in which case it is released here, after
    /// the write, as the close would have released it.
    pub(crate) fn write_failed_marker(&self, reason: &str) -> Result<bool> {
        let Some(lock) = self.shared.lock().lock.take() else {
            return Ok(false);
        };
        let written = crate::fs::write_failed_marker(&lock, reason);
        let release = {
            let mut g = self.shared.lock();
            if g.closed.is_none() && g.lock.is_none() {
                g.lock = Some(lock);
                None
            } else {
                Some(lock)
            }
        };
        drop(release);
        written?;
        Ok(true)
    }

    /// Stops the orphan drainers (their data stays on disk, their locks
    /// are released).
    fn stop_drainers(&mut self) {
        if let Some(mut d) = self.drainers.take() {
            blocking(move || d.stop());
        }
    }

    // ----- close ---------------------------------------------------------------

    /// Flushes the pending rows, then closes (C2): drains until everything
    /// published is acknowledged or `close_flush_timeout_millis` passes
    /// (`0`/`-1` skip the drain), then, drained or not, waits for the
    /// `.ack-watermark` write of what is acknowledged so a reopen does not
    /// replay it (the engine's rule, bounded by
    /// [`sf_core::engine::CLOSE_WATERMARK_WAIT`] past the drain; immediate
    /// when nothing is owed), always releases the slot lock and the
    /// mappings, and returns the latched terminal error if there is one.
    pub fn close(mut self) -> Result<()> {
        self.close_inner()
    }

    /// [`Sender::close`] for async code.
    pub async fn close_async(mut self) -> Result<()> {
        self.stop_drainers();
        self.drop_partial_row_at_close();
        let flushed = self.flush_async().await.map(|_| ());
        self.start_close();
        let mut rx = self.shared.subscribe();
        loop {
            if self.shared.lock().closed.is_some() {
                break;
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
        if let Runtime::Caller { task } = &mut self.runtime {
            if let Some(t) = task.take() {
                let _ = t.await;
            }
        }
        self.finish_close(flushed)
    }

    fn close_inner(&mut self) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.stop_drainers();
        self.drop_partial_row_at_close();
        let flushed = self.flush().map(|_| ());
        self.start_close();
        let shared = Arc::clone(&self.shared);
        // Bounded by the engine's close deadline, which the I/O task
        // enforces; if the task is gone, `guarded` set `closed` already.
        blocking(move || {
            let mut g = shared.lock();
            while g.closed.is_none() {
                g = shared.wait(g);
            }
        });
        self.finish_close(flushed)
    }

    fn start_close(&mut self) {
        self.closed = true;
        let now = self.shared.clock.now();
        {
            let mut g = self.shared.lock();
            if g.closed.is_none() {
                // Refused only when already closing or closed.
                let _ = g.engine.close(now);
            }
        }
        self.shared.wake_driver.notify_one();
    }

    fn finish_close(&mut self, flushed: Result<()>) -> Result<()> {
        let (outcome, failure) = {
            let g = self.shared.lock();
            (g.closed.clone(), g.driver_failure.clone())
        };
        if let Some(f) = failure {
            return Err(Error::IoTask(f));
        }
        match &mut self.runtime {
            Runtime::Thread { thread } => {
                if let Some(t) = thread.take() {
                    let _ = t.join();
                }
            }
            // The task ends right after it published the close outcome;
            // nothing is left to wait for.
            Runtime::Caller { .. } => {}
        }
        // The driver dropped its event sender on exit: the dispatcher ends
        // once it delivered what was queued.
        if matches!(self.runtime, Runtime::Thread { .. }) {
            if let Some(d) = self.dispatcher.take() {
                let _ = d.join();
            }
        }
        match outcome {
            Some(o) => {
                if !o.drained {
                    tracing::warn!("qwp-sf sender closed with unacknowledged frames");
                }
                match o.result {
                    Err(e) => Err(Error::Terminal(e)),
                    // A flush that failed for another reason still counts.
                    Ok(()) => match flushed {
                        Err(Error::Closed) => Ok(()),
                        other => other,
                    },
                }
            }
            None => Err(Error::IoTask("the I/O task did not report close".into())),
        }
    }
}

impl Drop for Sender {
    /// Closes the sender if `close()` was not called: the drain is bounded
    /// by `close_flush_timeout_millis`, so this never blocks forever.
    fn drop(&mut self) {
        if !self.closed {
            if let Err(e) = self.close_inner() {
                tracing::error!(error = %e, "qwp-sf sender dropped without close(): {e}");
            }
        }
    }
}

/// Whether a batch of `rows` rows, `bytes` encoded bytes (upper bound) and
/// `age` since its first row must be flushed now.
fn auto_flush_due(af: &AutoFlush, rows: u64, bytes: u64, age: Duration) -> bool {
    af.rows.is_some_and(|r| rows >= r.get())
        || af.bytes.is_some_and(|b| bytes >= b.get())
        || af.interval.is_some_and(|i| age >= i)
}

/// Runs a blocking wait without stalling a multi-threaded runtime's
/// worker.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// What one attempt to append a frame came to.
enum Attempt {
    /// Placed, written and committed; the batch is closed.
    Appended(BatchTicket),
    /// The engine says wait (cap, spare, opening) until progress or `until`.
    Wait(sf_core::Instant),
}

/// One attempt at the producer's hot path: place, write, commit and close
/// the batch, or learn that the engine wants the producer to wait (S6).
/// The caller wakes the I/O task after releasing the lock.
fn try_append(g: &mut MutexGuard<'_, Inner>, shared: &Shared, payload: &[u8]) -> Result<Attempt> {
    let now = shared.clock.now();
    match g.engine.begin_append(now, payload.len() as u64)? {
        AppendDecision::Place(p) => {
            let write = write_placed(g, &p, payload);
            // One frame per batch: the batch ticket covers this frame, so
            // in append durability (where the commit's ticket is the
            // frame's own sync) waiting on it is the same wait.
            g.engine.commit_append(now, p, write)?;
            Ok(Attempt::Appended(g.engine.flush(now)?))
        }
        AppendDecision::Wait { until, .. } => Ok(Attempt::Wait(until)),
    }
}

/// Places, writes and commits one frame, blocking at the cap as the engine
/// says (S6); returns the batch ticket.
fn append_frame(shared: &Shared, payload: &[u8]) -> Result<BatchTicket> {
    let mut g = shared.lock();
    loop {
        let attempt = try_append(&mut g, shared, payload);
        // Committed, failed or waiting: the engine's outputs or timer moved.
        shared.wake_driver.notify_one();
        match attempt? {
            Attempt::Appended(ticket) => return Ok(ticket),
            Attempt::Wait(until) => {
                let wait = shared
                    .clock
                    .to_std(until)
                    .saturating_duration_since(std::time::Instant::now());
                g = shared.wait_timeout(g, wait.max(Duration::from_micros(50)));
            }
        }
    }
}

/// [`append_frame`] for async code: a wait at the cap yields to the
/// runtime (so an I/O task on the same current-thread runtime keeps
/// running) until progress or the engine's deadline.
async fn append_frame_async(shared: &Shared, payload: &[u8]) -> Result<BatchTicket> {
    // Subscribed before the first look, so no progress can slip between.
    let mut rx = shared.subscribe();
    loop {
        let attempt = try_append(&mut shared.lock(), shared, payload);
        shared.wake_driver.notify_one();
        match attempt? {
            Attempt::Appended(ticket) => return Ok(ticket),
            Attempt::Wait(until) => {
                let deadline = shared.clock.to_tokio(until);
                tokio::select! {
                    changed = rx.changed() => {
                        if changed.is_err() {
                            return Err(Error::Closed);
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => {}
                }
            }
        }
    }
}

/// Writes the header (if the placement installs a segment) and the frame.
fn write_placed(
    g: &mut MutexGuard<'_, Inner>,
    p: &sf_core::storage::Placement,
    payload: &[u8],
) -> core::result::Result<(), sf_core::storage::IoFailure> {
    use sf_core::ring::SegmentName;
    let Some(seg) = g.segments.get_mut(&SegmentName::Gen(p.gen)) else {
        tracing::error!(
            gen = p.gen.get(),
            "placement names a segment the adapter does not hold"
        );
        return Err(sf_core::storage::IoFailure::Io { os_code: None });
    };
    let writer = &mut seg.writer;
    if let Some(h) = p.header {
        let header = sf_core::segment::SegmentHeader::new(h.base_fsn, driver::now_micros())
            .map_err(|_| sf_core::storage::IoFailure::Io { os_code: None })?;
        writer
            .write_header(&header)
            .map_err(|e| shared::io_failure(&e))?;
    }
    // Length, payload, CRC, then publish the new end (release store).
    let end = writer
        .write_frame(p.offset, payload)
        .map_err(|e| shared::io_failure(&e))?;
    writer.publish(end).map_err(|e| shared::io_failure(&e))
}

/// Whether a flush ticket is settled: `Some(Ok(fsn))` done, `Some(Err)`
/// halted or closed, `None` still waiting.
fn ticket_state(g: &Inner, ticket: BatchTicket) -> Option<Result<Option<Fsn>>> {
    match g.engine.is_flushed(ticket) {
        Ok(true) => Some(Ok(ticket.last_fsn)),
        Ok(false) if g.closed.is_some() => Some(Err(Error::Closed)),
        Ok(false) => None,
        Err(e) => Some(Err(e.into())),
    }
}

fn wait_ticket(shared: &Shared, ticket: BatchTicket) -> Result<Option<Fsn>> {
    let mut g = shared.lock();
    loop {
        if let Some(r) = ticket_state(&g, ticket) {
            return r;
        }
        g = shared.wait(g);
    }
}

/// Whether `fsn` is acknowledged: `Some(Ok)` yes, `Some(Err)` never will be
/// on this sender (halted, closed), `None` not yet.
fn acked_state(g: &Inner, fsn: Fsn) -> Option<Result<()>> {
    if g.engine.acked_fsn().is_some_and(|a| a >= fsn) {
        return Some(Ok(()));
    }
    if let Some(e) = g.engine.last_terminal_error() {
        return Some(Err(Error::Terminal(e.clone())));
    }
    if g.closed.is_some() {
        return Some(Err(Error::Closed));
    }
    None
}

/// Whether the wait for the first connection is over: connected, or the
/// terminal error that ended the attempts, or closed. `None`: keep waiting.
/// One rule for the blocking and the async constructor.
fn connect_outcome(g: &Inner) -> Option<Result<()>> {
    if let Some(e) = g.engine.last_terminal_error() {
        return Some(Err(Error::Terminal(e.clone())));
    }
    if matches!(
        g.engine.connection_state(),
        sf_core::engine::ConnectionState::Connected { .. }
    ) {
        return Some(Ok(()));
    }
    g.closed.is_some().then_some(Err(Error::Closed))
}

/// `now + timeout`, or a year from now when that is not representable (a
/// caller's `Duration::MAX` means "no bound", never a panic).
fn deadline_after(timeout: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sf-client §5.2: `.failed` is written while the sender holds the
    /// slot lock, the lock stays held after the write (it went back into
    /// the sender), and only the close releases it.
    #[test]
    fn s5_2_failed_marker_is_written_under_the_held_lock_and_close_releases_it() {
        use crate::fs::{lock_holder, LockProbe, FAILED_FILE_NAME};
        let sf = tempfile::tempdir().unwrap();
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let sender = SenderBuilder::from_conf(&format!(
            "ws::addr={dead};sf_dir={};sender_id=s;initial_connect_retry=async;\
             close_flush_timeout_millis=0;",
            sf.path().display()
        ))
        .unwrap()
        .build()
        .unwrap();
        let slot = sf.path().join("s");
        let me = LockProbe::Held(crate::fs::LockHolder::Pid(std::process::id()));
        assert_eq!(lock_holder(&slot).unwrap(), me);
        assert!(sender.write_failed_marker("given up\n").unwrap());
        assert_eq!(
            std::fs::read_to_string(slot.join(FAILED_FILE_NAME)).unwrap(),
            "given up\n"
        );
        assert_eq!(
            lock_holder(&slot).unwrap(),
            me,
            "still held after the write"
        );
        assert!(
            sender.shared.lock().lock.is_some(),
            "the lock went back into the sender, so its close releases it"
        );
        assert!(sender.write_failed_marker("again\n").unwrap(), "still ours");
        let _ = sender.close();
        assert_eq!(lock_holder(&slot).unwrap(), LockProbe::Free);
    }

    #[test]
    fn an_unbounded_wait_is_a_far_deadline_not_a_panic() {
        assert!(deadline_after(Duration::MAX) > std::time::Instant::now());
    }

    /// The async producer calls never hold the state lock across an await,
    /// so their futures can be spawned on a multi-threaded runtime.
    #[allow(dead_code)]
    fn async_producer_futures_are_send(s: &mut Sender) {
        fn send<T: Send>(_: T) {}
        send(s.flush_async());
    }

    fn af(rows: u64, bytes: u64, interval_ms: u64) -> AutoFlush {
        AutoFlush {
            rows: std::num::NonZeroU64::new(rows),
            bytes: std::num::NonZeroU64::new(bytes),
            interval: (interval_ms > 0).then(|| Duration::from_millis(interval_ms)),
        }
    }

    #[test]
    fn auto_flush_rows_trigger_fires_at_the_threshold_not_before() {
        let a = af(1000, 0, 0);
        assert!(!auto_flush_due(&a, 999, u64::MAX, Duration::MAX));
        assert!(auto_flush_due(&a, 1000, 0, Duration::ZERO));
    }

    #[test]
    fn auto_flush_bytes_trigger_fires_at_the_threshold_not_before() {
        let a = af(0, 4096, 0);
        assert!(!auto_flush_due(&a, u64::MAX, 4095, Duration::MAX));
        assert!(auto_flush_due(&a, 1, 4096, Duration::ZERO));
    }

    #[test]
    fn auto_flush_interval_counts_from_the_batchs_first_row() {
        let a = af(0, 0, 100);
        assert!(!auto_flush_due(&a, 5, 5, Duration::from_millis(99)));
        assert!(auto_flush_due(&a, 1, 1, Duration::from_millis(100)));
    }

    #[test]
    fn auto_flush_with_every_trigger_off_never_fires() {
        assert!(!auto_flush_due(
            &af(0, 0, 0),
            u64::MAX,
            u64::MAX,
            Duration::MAX
        ));
    }

    /// A sender moves between threads (one producer at a time).
    #[test]
    fn sender_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Sender>();
    }
}
