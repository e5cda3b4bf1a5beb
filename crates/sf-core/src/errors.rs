//! Server error handling (sf-client §14, §15): category → policy with user
//! overrides, the terminal-error latch, and the bounded error inbox.
//!
//! A server error frame is never transient (DESIGN §6 item 5, W3): the same
//! bytes would be rejected again, so reconnecting and resending would loop
//! forever. Every error frame therefore ends in one of two decisions:
//! - DROP_AND_CONTINUE: the rejected frame (and, the ACK being cumulative,
//!   every frame before it) is acknowledged, so it is never resent;
//! - HALT: a terminal error is latched; the loop stops and every later producer
//!   call returns it.
//!
//! Only WebSocket close codes outside the terminal set lead to a reconnect.

use std::collections::VecDeque;
use std::fmt;

use qwp_proto::status::{close_class, CloseClass, ErrorCategory, ErrorPolicy};

use crate::ack::{TrimDriver, WireMapping};
use crate::durable_ack::DurableAckTracker;
use crate::{Fsn, Instant, WireSeq};

/// The longest server message kept, in bytes (sf-client §14.1 caps `msgLen`
/// at 1024; a server that sends more gets truncated on a character boundary).
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The smallest accepted `error_inbox_capacity` (sf-client §4.4).
pub const MIN_ERROR_INBOX_CAPACITY: usize = 16;
/// The default `error_inbox_capacity` (sf-client §4.4).
pub const DEFAULT_ERROR_INBOX_CAPACITY: usize = 256;

/// The spec's upper-case name of a policy (`DROP_AND_CONTINUE`, `HALT`).
pub fn policy_name(policy: ErrorPolicy) -> &'static str {
    match policy {
        ErrorPolicy::DropAndContinue => "DROP_AND_CONTINUE",
        ErrorPolicy::Halt => "HALT",
    }
}

/// A bad error-handling setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorConfigError {
    /// An override for a category whose policy is forced.
    #[error("the policy of {category} is forced to HALT and cannot be overridden")]
    NotOverridable {
        /// The category.
        category: ErrorCategory,
    },
    /// `error_inbox_capacity` below the minimum.
    #[error("error_inbox_capacity={capacity} is below the minimum of {MIN_ERROR_INBOX_CAPACITY}")]
    InboxTooSmall {
        /// The capacity asked for.
        capacity: usize,
    },
}

/// Category → policy resolution with user overrides.
///
/// Precedence (the spec defers it to §14 but §14 states none): a
/// per-category key, then `on_server_error`, then
/// [`ErrorCategory::default_policy`]. Forced categories ignore both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorPolicies {
    schema: Option<ErrorPolicy>,
    parse: Option<ErrorPolicy>,
    internal: Option<ErrorPolicy>,
    security: Option<ErrorPolicy>,
    write: Option<ErrorPolicy>,
    server: Option<ErrorPolicy>,
}

impl ErrorPolicies {
    /// No overrides: every category takes its default policy.
    pub fn new() -> ErrorPolicies {
        ErrorPolicies::default()
    }

    fn slot(&mut self, category: ErrorCategory) -> Option<&mut Option<ErrorPolicy>> {
        match category {
            ErrorCategory::SchemaMismatch => Some(&mut self.schema),
            ErrorCategory::ParseError => Some(&mut self.parse),
            ErrorCategory::InternalError => Some(&mut self.internal),
            ErrorCategory::SecurityError => Some(&mut self.security),
            ErrorCategory::WriteError => Some(&mut self.write),
            ErrorCategory::ProtocolViolation | ErrorCategory::Unknown => None,
        }
    }

    /// Overrides one category's policy; a forced category is refused.
    pub fn set(
        &mut self,
        category: ErrorCategory,
        policy: ErrorPolicy,
    ) -> Result<(), ErrorConfigError> {
        let slot = self
            .slot(category)
            .ok_or(ErrorConfigError::NotOverridable { category })?;
        *slot = Some(policy);
        Ok(())
    }

    /// Sets the blanket `on_server_error` policy for every overridable
    /// category without its own override.
    pub fn set_server_default(&mut self, policy: ErrorPolicy) {
        self.server = Some(policy);
    }

    /// The policy applied to `category`.
    pub fn resolve(&self, category: ErrorCategory) -> ErrorPolicy {
        let own = match category {
            ErrorCategory::SchemaMismatch => self.schema,
            ErrorCategory::ParseError => self.parse,
            ErrorCategory::InternalError => self.internal,
            ErrorCategory::SecurityError => self.security,
            ErrorCategory::WriteError => self.write,
            ErrorCategory::ProtocolViolation | ErrorCategory::Unknown => {
                return category.default_policy()
            }
        };
        own.or(self.server)
            .unwrap_or_else(|| category.default_policy())
    }
}

/// A non-empty inclusive FSN range `[from, to]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsnSpan {
    from: Fsn,
    to: Fsn,
}

impl FsnSpan {
    /// `[from, to]`, or `None` if `from > to`.
    pub fn new(from: Fsn, to: Fsn) -> Option<FsnSpan> {
        (from <= to).then_some(FsnSpan { from, to })
    }

    /// The span of one frame.
    pub fn single(fsn: Fsn) -> FsnSpan {
        FsnSpan { from: fsn, to: fsn }
    }

    /// The unacknowledged window `[acked + 1, published]`, `None` if empty.
    pub fn unacked(acked: Option<Fsn>, published: Option<Fsn>) -> Option<FsnSpan> {
        let from = acked.map_or(Fsn::ZERO, Fsn::next);
        FsnSpan::new(from, published?)
    }

    /// The first FSN.
    pub fn from(self) -> Fsn {
        self.from
    }

    /// The last FSN.
    pub fn to(self) -> Fsn {
        self.to
    }
}

impl fmt::Display for FsnSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.from, self.to)
    }
}

/// Truncates `s` to at most [`MAX_MESSAGE_BYTES`] on a character boundary.
fn capped(s: &str) -> String {
    if s.len() <= MAX_MESSAGE_BYTES {
        return s.to_owned();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_owned()
}

/// One error as reported to the user (sf-client §14.4–§14.5, §15.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderError {
    category: ErrorCategory,
    policy: ErrorPolicy,
    status: Option<u8>,
    wire_seq: Option<WireSeq>,
    span: Option<FsnSpan>,
    message: String,
}

impl SenderError {
    /// An error reported by a server error frame. `message` is capped at
    /// [`MAX_MESSAGE_BYTES`].
    pub fn server(
        status: u8,
        policy: ErrorPolicy,
        wire_seq: Option<WireSeq>,
        span: Option<FsnSpan>,
        message: &str,
    ) -> SenderError {
        SenderError {
            category: ErrorCategory::from_status(status),
            policy,
            status: Some(status),
            wire_seq,
            span,
            message: capped(message),
        }
    }

    /// A terminal WebSocket close (§15.1): PROTOCOL_VIOLATION, HALT, no status
    /// byte or sequence, message `ws-close[<code>]: <reason>`, span = the
    /// unacknowledged window `[acked + 1, published]`.
    pub fn ws_close(
        code: u16,
        reason: &str,
        acked: Option<Fsn>,
        published: Option<Fsn>,
    ) -> SenderError {
        SenderError::synthesized(
            ErrorCategory::ProtocolViolation,
            &format!("ws-close[{code}]: {reason}"),
            FsnSpan::unacked(acked, published),
        )
    }

    /// A terminal condition the client detects itself (an exhausted
    /// reconnect budget is PROTOCOL_VIOLATION with the unacked span, §13.3;
    /// an upgrade 401/403 is SECURITY_ERROR). Always HALT.
    pub fn synthesized(
        category: ErrorCategory,
        message: &str,
        span: Option<FsnSpan>,
    ) -> SenderError {
        SenderError {
            category,
            policy: ErrorPolicy::Halt,
            status: None,
            wire_seq: None,
            span,
            message: capped(message),
        }
    }

    /// The category.
    pub fn category(&self) -> ErrorCategory {
        self.category
    }

    /// The policy that was applied.
    pub fn policy(&self) -> ErrorPolicy {
        self.policy
    }

    /// The server's status byte; `None` for synthesized errors (the spec's −1).
    pub fn status(&self) -> Option<u8> {
        self.status
    }

    /// The wire sequence the error applies to; `None` for synthesized errors
    /// and for an error frame whose sequence names no frame sent on the
    /// connection.
    pub fn wire_seq(&self) -> Option<WireSeq> {
        self.wire_seq
    }

    /// The FSNs the error applies to; `None` when there are none (e.g. a
    /// terminal close with nothing unacknowledged).
    pub fn span(&self) -> Option<FsnSpan> {
        self.span
    }

    /// The server's message or close reason (at most [`MAX_MESSAGE_BYTES`]).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether this error stops the sender.
    pub fn is_terminal(&self) -> bool {
        self.policy == ErrorPolicy::Halt
    }
}

impl fmt::Display for SenderError {
    /// `CATEGORY/POLICY status=0x05 seq=3 fsn=[10, 10]: message`; status and
    /// seq print as `-1` when absent, as the spec's sentinels do. Control
    /// characters in the server's text are escaped so a hostile message cannot
    /// forge log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.category, policy_name(self.policy))?;
        match self.status {
            Some(s) => write!(f, " status=0x{s:02x}")?,
            None => f.write_str(" status=-1")?,
        }
        match self.wire_seq {
            Some(s) => write!(f, " seq={s}")?,
            None => f.write_str(" seq=-1")?,
        }
        match self.span {
            Some(span) => write!(f, " fsn={span}")?,
            None => f.write_str(" fsn=[]")?,
        }
        f.write_str(": ")?;
        for c in self.message.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for SenderError {}

/// What the engine does after an error frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorAction {
    /// DROP_AND_CONTINUE was applied: keep sending. `acknowledge` is the new
    /// acknowledged FSN if the drop advanced it (in durable mode only once
    /// everything before the dropped frame is durable).
    Continue {
        /// The new trim watermark, if it moved.
        acknowledge: Option<Fsn>,
    },
    /// HALT: the error is latched; stop the loop, do not reconnect.
    Halt,
}

/// The outcome of one error frame: the error (already offered to the inbox)
/// and the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorVerdict {
    /// The error as reported.
    pub error: SenderError,
    /// What to do next.
    pub action: ErrorAction,
}

/// What the engine does after the server closed the WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseAction {
    /// A reconnect-eligible code (§15.2): enter the reconnect loop.
    Reconnect,
    /// A terminal code (§15.1): the error is latched; do not reconnect.
    Halt(SenderError),
}

/// The terminal-error latch: the first terminal error wins; later ones are
/// counted, never replace it.
#[derive(Debug, Clone, Default)]
pub struct TerminalLatch {
    first: Option<SenderError>,
    later: u64,
}

impl TerminalLatch {
    /// An empty latch.
    pub fn new() -> TerminalLatch {
        TerminalLatch::default()
    }

    /// Latches `error` if nothing is latched yet. Returns whether it became
    /// the latched error; otherwise it is only counted.
    pub fn latch(&mut self, error: SenderError) -> bool {
        if self.first.is_some() {
            self.later += 1;
            false
        } else {
            self.first = Some(error);
            true
        }
    }

    /// The latched error, which every later producer call returns.
    pub fn get(&self) -> Option<&SenderError> {
        self.first.as_ref()
    }

    /// Whether an error is latched.
    pub fn is_latched(&self) -> bool {
        self.first.is_some()
    }

    /// Terminal errors that arrived after the latched one.
    pub fn later_count(&self) -> u64 {
        self.later
    }
}

/// The bounded error inbox between the I/O loop and the user's handler
/// (§14.6): drop-oldest on overflow, with counters.
#[derive(Debug, Clone)]
pub struct ErrorInbox {
    queue: VecDeque<SenderError>,
    capacity: usize,
    dropped: u64,
    delivered: u64,
}

impl ErrorInbox {
    /// An inbox of `capacity` entries (at least [`MIN_ERROR_INBOX_CAPACITY`]).
    pub fn new(capacity: usize) -> Result<ErrorInbox, ErrorConfigError> {
        if capacity < MIN_ERROR_INBOX_CAPACITY {
            return Err(ErrorConfigError::InboxTooSmall { capacity });
        }
        Ok(ErrorInbox {
            queue: VecDeque::new(),
            capacity,
            dropped: 0,
            delivered: 0,
        })
    }

    /// Offers an error without blocking; when full, the oldest entry is
    /// dropped (and returned) and `dropped` counts it: later entries carry
    /// later watermarks, so they are the more informative ones.
    pub fn push(&mut self, error: SenderError) -> Option<SenderError> {
        let evicted = if self.queue.len() >= self.capacity {
            self.dropped += 1;
            self.queue.pop_front()
        } else {
            None
        };
        self.queue.push_back(error);
        evicted
    }

    /// Takes the oldest entry for delivery to the handler.
    pub fn pop(&mut self) -> Option<SenderError> {
        let e = self.queue.pop_front()?;
        self.delivered += 1;
        Some(e)
    }

    /// Takes every entry, oldest first, for delivery.
    pub fn drain(&mut self) -> Vec<SenderError> {
        self.delivered += self.queue.len() as u64;
        self.queue.drain(..).collect()
    }

    /// Entries waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Entries dropped on overflow (`droppedErrorNotifications`).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Entries taken for delivery (`totalErrorNotificationsDelivered`).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }
}

/// Log level of the default error handler's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A HALT: the sender stopped.
    Error,
    /// A DROP_AND_CONTINUE: data was discarded, the sender goes on.
    Warn,
}

/// The line the default handler logs for `error` (§14.6: ERROR for HALT,
/// WARN for DROP; silence is forbidden).
pub fn default_log_line(error: &SenderError) -> (Level, String) {
    match error.policy() {
        ErrorPolicy::Halt => (Level::Error, format!("qwp-sf sender halted: {error}")),
        ErrorPolicy::DropAndContinue => (
            Level::Warn,
            format!("qwp-sf server rejected a frame, dropped: {error}"),
        ),
    }
}

/// The error policy engine of one sender: policy resolution, the terminal
/// latch, the inbox, and the server-error counter.
#[derive(Debug, Clone)]
pub struct ServerErrors {
    policies: ErrorPolicies,
    latch: TerminalLatch,
    inbox: ErrorInbox,
    total_server_errors: u64,
}

impl ServerErrors {
    /// A handler with the given overrides and an inbox of `inbox_capacity`.
    pub fn new(
        policies: ErrorPolicies,
        inbox_capacity: usize,
    ) -> Result<ServerErrors, ErrorConfigError> {
        Ok(ServerErrors {
            policies,
            latch: TerminalLatch::new(),
            inbox: ErrorInbox::new(inbox_capacity)?,
            total_server_errors: 0,
        })
    }

    /// Handles an error frame `(status, sequence, message)` on the connection
    /// described by `mapping` (sf-client §14.4, §14.5), and applies the
    /// decision:
    /// - DROP_AND_CONTINUE with OK-driven trim acknowledges up to the rejected
    ///   FSN in `mapping`; with durable trim it queues an empty entry in
    ///   `durable` and acknowledges whatever that makes covered;
    /// - HALT latches the error.
    ///
    /// An error whose sequence names no frame sent on this connection cannot
    /// be placed; dropping by a clamped sequence could discard frames the
    /// server never judged (DESIGN §6 item 6), so it halts regardless of
    /// policy. The error is offered to the inbox in every case.
    pub fn on_error_frame(
        &mut self,
        status: u8,
        sequence: i64,
        message: &str,
        mapping: &mut WireMapping,
        durable: &mut DurableAckTracker,
        now: Instant,
    ) -> ErrorVerdict {
        self.total_server_errors += 1;
        let category = ErrorCategory::from_status(status);
        let verdict = match mapping.sent_wire_seq(sequence) {
            None => {
                let sent = mapping.next_fsn().prev();
                let span = FsnSpan::unacked(mapping.acked(), sent);
                let text = format!("sequence {sequence} names no frame sent on this connection; server said: {message}");
                let error = SenderError::server(status, ErrorPolicy::Halt, None, span, &text);
                ErrorVerdict {
                    error,
                    action: ErrorAction::Halt,
                }
            }
            Some(seq) => {
                mapping.record_answer(seq, now);
                let policy = self.policies.resolve(category);
                let span = Some(FsnSpan::single(mapping.fsn_of(seq)));
                let error = SenderError::server(status, policy, Some(seq), span, message);
                let action = match policy {
                    ErrorPolicy::Halt => ErrorAction::Halt,
                    ErrorPolicy::DropAndContinue => {
                        let covered = match mapping.driver() {
                            TrimDriver::Ok => Some(seq),
                            TrimDriver::DurableAck => durable.on_dropped(seq, now),
                        };
                        ErrorAction::Continue {
                            acknowledge: covered.and_then(|s| mapping.acknowledge_wire_seq(s)),
                        }
                    }
                };
                ErrorVerdict { error, action }
            }
        };
        if verdict.action == ErrorAction::Halt {
            self.latch.latch(verdict.error.clone());
        }
        self.inbox.push(verdict.error.clone());
        verdict
    }

    /// Handles a WebSocket close from the server (§15): a terminal code
    /// latches PROTOCOL_VIOLATION over the unacknowledged window
    /// `[acked + 1, published]`; any other code reconnects.
    pub fn on_close(
        &mut self,
        code: u16,
        reason: &str,
        acked: Option<Fsn>,
        published: Option<Fsn>,
    ) -> CloseAction {
        match close_class(code) {
            CloseClass::Reconnect => CloseAction::Reconnect,
            CloseClass::Terminal => {
                let error = SenderError::ws_close(code, reason, acked, published);
                self.latch_terminal(error.clone());
                CloseAction::Halt(error)
            }
        }
    }

    /// Latches a terminal error the engine detected itself (reconnect budget
    /// exhausted, upgrade auth failure) and offers it to the inbox. Returns
    /// whether it became the latched error.
    pub fn latch_terminal(&mut self, error: SenderError) -> bool {
        self.inbox.push(error.clone());
        self.latch.latch(error)
    }

    /// The latched terminal error, if any.
    pub fn terminal(&self) -> Option<&SenderError> {
        self.latch.get()
    }

    /// The latch, with its count of later terminal errors.
    pub fn latch(&self) -> &TerminalLatch {
        &self.latch
    }

    /// The inbox, for the dispatcher.
    pub fn inbox(&mut self) -> &mut ErrorInbox {
        &mut self.inbox
    }

    /// The policy overrides.
    pub fn policies(&self) -> &ErrorPolicies {
        &self.policies
    }

    /// Error frames received (`totalServerErrors`, §20).
    pub fn total_server_errors(&self) -> u64 {
        self.total_server_errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ack::InFlightWindow;
    use ErrorCategory::*;
    use ErrorPolicy::*;

    const T0: Instant = Instant(0);

    /// A connection with acked FSN 9 that sent FSN 10..=14 (wire seq 0..=4).
    fn connection(driver: TrimDriver) -> WireMapping {
        let mut m = WireMapping::connect(
            Some(Fsn(9)),
            Some(Fsn(20)),
            driver,
            InFlightWindow::default(),
            T0,
        );
        for _ in 0..5 {
            let fsn = m.next_fsn();
            m.on_sent(fsn, T0).unwrap();
        }
        m
    }

    fn handler(policies: ErrorPolicies) -> ServerErrors {
        ServerErrors::new(policies, DEFAULT_ERROR_INBOX_CAPACITY).unwrap()
    }

    fn err(n: u64) -> SenderError {
        SenderError::server(5, Halt, Some(WireSeq(n)), None, &format!("e{n}"))
    }

    #[test]
    fn each_status_maps_to_its_default_policy() {
        let p = ErrorPolicies::new();
        let table = [
            (0x03, SchemaMismatch, DropAndContinue),
            (0x05, ParseError, Halt),
            (0x06, InternalError, Halt),
            (0x08, SecurityError, Halt),
            (0x09, WriteError, DropAndContinue),
            (0x01, Unknown, Halt),
            (0x04, Unknown, Halt),
            (0x07, Unknown, Halt),
            (0xff, Unknown, Halt),
        ];
        for (status, category, policy) in table {
            assert_eq!(ErrorCategory::from_status(status), category, "{status:#x}");
            assert_eq!(p.resolve(category), policy, "{status:#x}");
        }
        assert_eq!(p.resolve(ProtocolViolation), Halt);
    }

    #[test]
    fn each_overridable_status_follows_its_override() {
        for (status, category, default) in [
            (0x03, SchemaMismatch, DropAndContinue),
            (0x05, ParseError, Halt),
            (0x06, InternalError, Halt),
            (0x08, SecurityError, Halt),
            (0x09, WriteError, DropAndContinue),
        ] {
            let flipped = if default == Halt {
                DropAndContinue
            } else {
                Halt
            };
            let mut p = ErrorPolicies::new();
            p.set(category, flipped).unwrap();
            assert_eq!(p.resolve(category), flipped, "{status:#x}");
            // Only that category moves.
            for other in [
                SchemaMismatch,
                ParseError,
                InternalError,
                SecurityError,
                WriteError,
            ] {
                if other != category {
                    assert_eq!(p.resolve(other), other.default_policy());
                }
            }
            let mut h = handler(p);
            let mut m = connection(TrimDriver::Ok);
            let v = h.on_error_frame(status, 1, "x", &mut m, &mut DurableAckTracker::new(0), T0);
            assert_eq!(v.error.policy(), flipped, "{status:#x}");
            assert_eq!(v.action == ErrorAction::Halt, flipped == Halt);
        }
    }

    #[test]
    fn forced_categories_cannot_be_overridden() {
        let mut p = ErrorPolicies::new();
        for category in [ProtocolViolation, Unknown] {
            assert!(!category.is_overridable());
            assert_eq!(
                p.set(category, DropAndContinue),
                Err(ErrorConfigError::NotOverridable { category })
            );
        }
        p.set_server_default(DropAndContinue);
        assert_eq!(p.resolve(Unknown), Halt);
        assert_eq!(p.resolve(ProtocolViolation), Halt);
        for c in [
            SchemaMismatch,
            ParseError,
            InternalError,
            SecurityError,
            WriteError,
        ] {
            assert!(c.is_overridable());
        }
    }

    #[test]
    fn per_category_key_beats_on_server_error() {
        let mut p = ErrorPolicies::new();
        p.set_server_default(DropAndContinue);
        assert_eq!(p.set(ParseError, Halt), Ok(()));
        assert_eq!(p.resolve(ParseError), Halt);
        assert_eq!(p.resolve(InternalError), DropAndContinue);
        assert_eq!(p.resolve(SecurityError), DropAndContinue);
        assert_eq!(p.resolve(SchemaMismatch), DropAndContinue);
        // Forced categories ignore the blanket override.
        assert_eq!(p.resolve(Unknown), Halt);
        assert_eq!(p.resolve(ProtocolViolation), Halt);
    }

    #[test]
    fn drop_acknowledges_the_rejected_fsn() {
        let mut h = handler(ErrorPolicies::new());
        let mut m = connection(TrimDriver::Ok);
        let mut d = DurableAckTracker::new(0);
        let v = h.on_error_frame(0x03, 2, "no such column", &mut m, &mut d, T0);
        assert_eq!(
            v.action,
            ErrorAction::Continue {
                acknowledge: Some(Fsn(12))
            }
        );
        assert_eq!(m.acked(), Some(Fsn(12)));
        assert_eq!(m.in_flight(), 2, "the error answered wire seq 0..=2");
        assert_eq!(v.error.span(), Some(FsnSpan::single(Fsn(12))));
        assert_eq!(v.error.wire_seq(), Some(WireSeq(2)));
        assert_eq!(v.error.status(), Some(0x03));
        assert!(h.terminal().is_none());
        assert_eq!(h.inbox().len(), 1);
        assert_eq!(h.total_server_errors(), 1);
    }

    #[test]
    fn w4_drop_in_durable_mode_enqueues_an_empty_entry() {
        let mut h = handler(ErrorPolicies::new());
        let mut m = connection(TrimDriver::DurableAck);
        let mut d = DurableAckTracker::new(200);
        let ok = m.on_ok(0, &[("a", 4)], T0).unwrap();
        assert_eq!(d.on_ok(ok.wire_seq, &[("a", 4)], T0), None);
        let v = h.on_error_frame(0x09, 1, "table busy", &mut m, &mut d, T0);
        // Not acknowledged until the OK before it is durable.
        assert_eq!(v.action, ErrorAction::Continue { acknowledge: None });
        assert_eq!(m.acked(), Some(Fsn(9)));
        assert_eq!(d.pending_len(), 2);
        let covered = d.on_durable_ack(&[("a", 4)]).unwrap();
        assert_eq!(m.acknowledge_wire_seq(covered), Some(Fsn(11)));
    }

    #[test]
    fn halt_latches_and_does_not_acknowledge() {
        let mut h = handler(ErrorPolicies::new());
        let mut m = connection(TrimDriver::Ok);
        let v = h.on_error_frame(0x05, 3, "bad", &mut m, &mut DurableAckTracker::new(0), T0);
        assert_eq!(v.action, ErrorAction::Halt);
        assert_eq!(
            m.acked(),
            Some(Fsn(9)),
            "HALT keeps the frames for postmortem"
        );
        assert_eq!(h.terminal(), Some(&v.error));
        assert_eq!(v.error.category(), ParseError);
    }

    #[test]
    fn w2_error_for_an_unsent_sequence_halts_without_trimming() {
        for (seq, name) in [(5, "future"), (-1, "negative"), (i64::MAX, "max")] {
            let mut h = handler(ErrorPolicies::new());
            let mut m = connection(TrimDriver::Ok);
            // SCHEMA_MISMATCH would DROP, but there is no frame to drop.
            let v = h.on_error_frame(0x03, seq, "x", &mut m, &mut DurableAckTracker::new(0), T0);
            assert_eq!(v.action, ErrorAction::Halt, "{name}");
            assert_eq!(m.acked(), Some(Fsn(9)), "{name}");
            assert_eq!(v.error.wire_seq(), None);
            assert_eq!(v.error.span(), FsnSpan::new(Fsn(10), Fsn(14)));
            assert!(h.terminal().is_some());
        }
        let mut h = handler(ErrorPolicies::new());
        let mut idle =
            WireMapping::connect(None, None, TrimDriver::Ok, InFlightWindow::default(), T0);
        let v = h.on_error_frame(0x03, 0, "x", &mut idle, &mut DurableAckTracker::new(0), T0);
        assert_eq!(v.action, ErrorAction::Halt);
        assert_eq!(v.error.span(), None);
    }

    #[test]
    fn each_terminal_close_code_halts_with_protocol_violation() {
        for code in [1002, 1003, 1007, 1008, 1009, 1010] {
            let mut h = handler(ErrorPolicies::new());
            let action = h.on_close(code, "nope", Some(Fsn(4)), Some(Fsn(9)));
            let CloseAction::Halt(e) = action else {
                panic!("{code} must halt");
            };
            assert_eq!(e.category(), ProtocolViolation);
            assert_eq!(e.policy(), Halt);
            assert_eq!(e.status(), None);
            assert_eq!(e.wire_seq(), None);
            assert_eq!(e.message(), format!("ws-close[{code}]: nope"));
            assert_eq!(e.span(), FsnSpan::new(Fsn(5), Fsn(9)));
            assert_eq!(h.terminal(), Some(&e));
            assert_eq!(h.inbox().len(), 1);
        }
    }

    #[test]
    fn each_other_close_code_reconnects() {
        for code in [
            1000, 1001, 1004, 1005, 1006, 1011, 1012, 1013, 1015, 3000, 4999, 0, 65535,
        ] {
            let mut h = handler(ErrorPolicies::new());
            assert_eq!(
                h.on_close(code, "", Some(Fsn(4)), Some(Fsn(9))),
                CloseAction::Reconnect,
                "{code}"
            );
            assert!(h.terminal().is_none());
            assert!(h.inbox().is_empty());
        }
    }

    #[test]
    fn close_span_is_the_unacked_window() {
        assert_eq!(FsnSpan::unacked(None, None), None);
        assert_eq!(
            FsnSpan::unacked(None, Some(Fsn(0))),
            FsnSpan::new(Fsn(0), Fsn(0))
        );
        assert_eq!(FsnSpan::unacked(Some(Fsn(7)), Some(Fsn(7))), None);
        let e = SenderError::ws_close(1002, "r", Some(Fsn(7)), Some(Fsn(7)));
        assert_eq!(e.span(), None);
        assert_eq!(FsnSpan::new(Fsn(3), Fsn(2)), None);
    }

    #[test]
    fn latch_keeps_the_first_error() {
        let mut latch = TerminalLatch::new();
        assert!(latch.latch(err(1)));
        assert!(!latch.latch(err(2)));
        assert!(!latch.latch(err(3)));
        assert_eq!(latch.get(), Some(&err(1)));
        assert_eq!(latch.later_count(), 2);

        let mut h = handler(ErrorPolicies::new());
        let mut m = connection(TrimDriver::Ok);
        let first = h.on_error_frame(0x06, 0, "first", &mut m, &mut DurableAckTracker::new(0), T0);
        h.on_close(1002, "later", m.acked(), Some(Fsn(20)));
        assert!(!h.latch_terminal(SenderError::synthesized(ProtocolViolation, "budget", None)));
        assert_eq!(h.terminal(), Some(&first.error));
        assert_eq!(h.latch().later_count(), 2);
    }

    #[test]
    fn inbox_overflow_drops_oldest_and_counts() {
        assert_eq!(
            ErrorInbox::new(15).unwrap_err(),
            ErrorConfigError::InboxTooSmall { capacity: 15 }
        );
        let mut inbox = ErrorInbox::new(16).unwrap();
        for n in 0..16 {
            assert_eq!(inbox.push(err(n)), None);
        }
        assert_eq!(inbox.push(err(16)), Some(err(0)));
        assert_eq!(inbox.push(err(17)), Some(err(1)));
        assert_eq!(inbox.dropped(), 2);
        assert_eq!(inbox.len(), 16);
        assert_eq!(inbox.pop(), Some(err(2)));
        assert_eq!(inbox.delivered(), 1);
        let rest = inbox.drain();
        assert_eq!(rest.first(), Some(&err(3)));
        assert_eq!(rest.last(), Some(&err(17)));
        assert_eq!(inbox.delivered(), 16);
        assert!(inbox.is_empty());
        assert_eq!(inbox.pop(), None);
        assert_eq!(inbox.delivered(), 16);
    }

    #[test]
    fn message_is_capped_on_a_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE_BYTES); // 2 bytes each
        let e = SenderError::server(5, Halt, None, None, &long);
        assert_eq!(e.message().len(), MAX_MESSAGE_BYTES);
        let odd = format!("x{long}");
        let e = SenderError::server(5, Halt, None, None, &odd);
        assert_eq!(e.message().len(), MAX_MESSAGE_BYTES - 1);
        assert!(e.message().starts_with("xé"));
        let short = SenderError::server(5, Halt, None, None, "fine");
        assert_eq!(short.message(), "fine");
    }

    #[test]
    fn display_names_category_policy_status_seq_span() {
        let e = SenderError::server(
            0x03,
            DropAndContinue,
            Some(WireSeq(7)),
            Some(FsnSpan::single(Fsn(12))),
            "bad\ncolumn",
        );
        assert_eq!(
            e.to_string(),
            "SCHEMA_MISMATCH/DROP_AND_CONTINUE status=0x03 seq=7 fsn=[12, 12]: bad\\ncolumn"
        );
        let c = SenderError::ws_close(1009, "too big", Some(Fsn(4)), Some(Fsn(9)));
        assert_eq!(
            c.to_string(),
            "PROTOCOL_VIOLATION/HALT status=-1 seq=-1 fsn=[5, 9]: ws-close[1009]: too big"
        );
    }

    #[test]
    fn default_log_line_is_error_for_halt_and_warn_for_drop() {
        let halt = SenderError::server(0x05, Halt, Some(WireSeq(1)), None, "m");
        let (level, line) = default_log_line(&halt);
        assert_eq!(level, Level::Error);
        assert!(line.contains("PARSE_ERROR/HALT"), "{line}");
        let drop = SenderError::server(0x09, DropAndContinue, Some(WireSeq(1)), None, "m");
        let (level, line) = default_log_line(&drop);
        assert_eq!(level, Level::Warn);
        assert!(line.contains("WRITE_ERROR/DROP_AND_CONTINUE"), "{line}");
    }
}
