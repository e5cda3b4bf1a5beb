//! The sender's counters (sf-client §20) as one snapshot value.

use sf_core::engine::Engine;
use sf_core::errors::SenderError;
use sf_core::Fsn;

/// A consistent snapshot of the sender's counters and watermarks, read
/// under one lock (sf-client §20).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters {
    /// Connects asked for after the first one (`getTotalReconnectAttempts`).
    pub total_reconnect_attempts: u64,
    /// Of those, the ones whose upgrade was accepted
    /// (`getTotalReconnectsSucceeded`).
    pub total_reconnects_succeeded: u64,
    /// Frames re-sent that were published before their connection came up
    /// (`getTotalFramesReplayed`).
    pub total_frames_replayed: u64,
    /// Error frames received (`getTotalServerErrors`).
    pub total_server_errors: u64,
    /// Error notifications dropped on inbox overflow
    /// (`getDroppedErrorNotifications`).
    pub dropped_error_notifications: u64,
    /// Error notifications handed to the error handler
    /// (`getTotalErrorNotificationsDelivered`).
    pub total_error_notifications_delivered: u64,
    /// Appends that had to wait for space or a segment
    /// (`getTotalBackpressureStalls`).
    pub total_backpressure_stalls: u64,
    /// The highest acknowledged FSN (`getAckedFsn`; `None` is the spec's −1).
    pub acked_fsn: Option<Fsn>,
    /// The highest published FSN (`getPublishedFsn`).
    pub published_fsn: Option<Fsn>,
    /// The highest locally durable FSN (L1).
    pub durable_fsn: Option<Fsn>,
    /// Frames sent on the current connection and not yet answered.
    pub in_flight_frames: u64,
    /// The latched terminal error (`getLastTerminalError`).
    pub last_terminal_error: Option<SenderError>,
    /// Orphan drainers running now (`getActiveBackgroundDrainers`).
    pub active_background_drainers: u64,
    /// Drainers that exited after draining their slot
    /// (`getTotalBackgroundDrainersSucceeded`).
    pub total_background_drainers_succeeded: u64,
    /// Drainers that exited by writing `.failed`
    /// (`getTotalBackgroundDrainersFailed`).
    pub total_background_drainers_failed: u64,
}

impl Counters {
    pub(crate) fn read(engine: &Engine) -> Counters {
        Counters {
            total_reconnect_attempts: engine.total_reconnect_attempts(),
            total_reconnects_succeeded: engine.total_reconnects_succeeded(),
            total_frames_replayed: engine.total_frames_replayed(),
            total_server_errors: engine.total_server_errors(),
            dropped_error_notifications: engine.dropped_error_notifications(),
            total_error_notifications_delivered: engine.total_error_notifications_delivered(),
            total_backpressure_stalls: engine.total_backpressure_stalls(),
            acked_fsn: engine.acked_fsn(),
            published_fsn: engine.published_fsn(),
            durable_fsn: engine.durable_fsn(),
            in_flight_frames: engine.in_flight_frames(),
            last_terminal_error: engine.last_terminal_error().cloned(),
            active_background_drainers: 0,
            total_background_drainers_succeeded: 0,
            total_background_drainers_failed: 0,
        }
    }
}
