//! Fault switches: make the server misbehave in exactly one documented way,
//! so client tests can check their reaction.
//!
//! Counting rules (the spec has no say here; these keep tests
//! deterministic):
//! - [`MessageIndex::PerConnection`] counts the connection's binary
//!   messages from 0 (the wire sequence), so it fires on every connection.
//! - [`MessageIndex::Global`] counts every binary message the server
//!   receives, on any connection, from 0 **at the moment the faults were
//!   set** ([`ServerHandle::set_faults`](crate::ServerHandle::set_faults) or
//!   bind), so it fires once per `set_faults`.
//! - [`RejectUpgrades`] rejects the first `count` upgrade requests (on a
//!   valid path) made after the faults were set; later ones proceed.
//! - A faulted message is still decoded, so its symbol dictionary delta
//!   joins the connection's dictionary exactly as after a real server-side
//!   reject; it is not stored and advances no seqTxn.

use std::time::Duration;

use qwp_proto::response::ErrorFrame;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A message counter position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageIndex {
    /// The connection's wire sequence (from 0 on every connection).
    PerConnection(u64),
    /// The server-wide message count since the faults were set.
    Global(u64),
}

/// Reply to one message with an error frame instead of processing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorOn {
    /// Which message.
    pub message: MessageIndex,
    /// The status byte to send (any byte but `00` OK and `02` DURABLE_ACK,
    /// including unknown ones such as `01`).
    pub status: u8,
}

/// How the connection ends when [`CloseAfter`] fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseAction {
    /// Send a WebSocket close frame with this code: one an endpoint may
    /// send, i.e. 1000–1003, 1007–1013 or 3000–4999.
    Code(u16),
    /// Drop the TCP connection without a close frame (the client sees an
    /// abnormal closure, 1006).
    Drop,
}

/// End every connection after it has received `messages` binary messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseAfter {
    /// Messages processed and answered before the close; 0 closes right
    /// after the upgrade. Responses still held back by
    /// [`OkDelivery::Delay`] are lost with the connection.
    pub messages: u64,
    /// What to do then.
    pub action: CloseAction,
}

/// What happens to OK frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OkDelivery {
    /// Send each OK as soon as its message is committed.
    #[default]
    Send,
    /// Commit, but never send the OK.
    Withhold,
    /// Send each OK this long after its commit. Responses keep their order:
    /// an error frame that follows a delayed OK waits behind it. A delay
    /// beyond the clock's range (e.g. `Duration::MAX`) acts as `Withhold`.
    Delay(Duration),
}

/// How rejected upgrades are answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeReject {
    /// `421 Misdirected Request` with `X-QuestDB-Role: <role>`; an empty
    /// role sends the 421 without the header.
    Role(String),
    /// `401 Unauthorized`.
    Unauthorized,
}

/// Reject the first `count` upgrades.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectUpgrades {
    /// How many upgrades to reject.
    pub count: u64,
    /// How.
    pub with: UpgradeReject,
}

/// The set of fault switches; the default is a well-behaved server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Faults {
    /// Close every connection after N messages.
    pub close_after: Option<CloseAfter>,
    /// Reply with an error status to one message.
    pub error_on: Option<ErrorOn>,
    /// Send, withhold or delay OK frames.
    pub ok_delivery: OkDelivery,
    /// Reject the first K upgrades.
    pub reject_upgrades: Option<RejectUpgrades>,
    /// Answer `X-QWP-Version: <value>` instead of the negotiated version
    /// (the connection still decodes QWP1).
    pub version_header: Option<String>,
    /// Never echo `X-QWP-Durable-Ack: enabled` (and so never send
    /// DURABLE_ACK frames), even when the server could.
    pub omit_durable_echo: bool,
}

/// A fault switch that cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// [`ErrorOn::status`] is `00` or `02`, which would not be an error frame.
    #[error("error_on status {status:#04x} is not an error status")]
    NotAnErrorStatus {
        /// The status given.
        status: u8,
    },
    /// [`CloseAction::Code`] is a code no endpoint may send.
    #[error("close code {code} may not be sent in a close frame")]
    UnsendableCloseCode {
        /// The code given.
        code: u16,
    },
    /// [`Faults::version_header`] or a role is not a valid header value.
    #[error("{what} {value:?} is not a valid HTTP header value")]
    InvalidHeaderValue {
        /// Which switch.
        what: &'static str,
        /// The value given.
        value: String,
    },
}

impl Faults {
    /// Checks that every switch can be put on the wire.
    pub fn validate(&self) -> Result<(), FaultError> {
        if let Some(e) = &self.error_on {
            ErrorFrame::new(e.status, 0, "")
                .map_err(|_| FaultError::NotAnErrorStatus { status: e.status })?;
        }
        if let Some(CloseAfter {
            action: CloseAction::Code(code),
            ..
        }) = self.close_after
        {
            if !close_code_sendable(code) {
                return Err(FaultError::UnsendableCloseCode { code });
            }
        }
        if let Some(v) = &self.version_header {
            check_header_value("version_header", v)?;
        }
        if let Some(RejectUpgrades {
            with: UpgradeReject::Role(role),
            ..
        }) = &self.reject_upgrades
        {
            check_header_value("role", role)?;
        }
        Ok(())
    }
}

/// Whether an endpoint may put `code` in a close frame (RFC 6455 §7.4).
fn close_code_sendable(code: u16) -> bool {
    (1000..=4999).contains(&code) && CloseCode::from(code).is_allowed()
}

fn check_header_value(what: &'static str, value: &str) -> Result<(), FaultError> {
    HeaderValue::from_str(value)
        .map(|_| ())
        .map_err(|_| FaultError::InvalidHeaderValue {
            what,
            value: value.to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_faults_are_valid() {
        assert_eq!(Faults::default().validate(), Ok(()));
    }

    #[test]
    fn error_on_ok_or_durable_status_is_refused() {
        for status in [0u8, 2] {
            let f = Faults {
                error_on: Some(ErrorOn {
                    message: MessageIndex::PerConnection(0),
                    status,
                }),
                ..Faults::default()
            };
            assert_eq!(f.validate(), Err(FaultError::NotAnErrorStatus { status }));
        }
    }

    #[test]
    fn reserved_close_codes_are_refused_and_sendable_ones_accepted() {
        let with = |code| Faults {
            close_after: Some(CloseAfter {
                messages: 1,
                action: CloseAction::Code(code),
            }),
            ..Faults::default()
        };
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
            assert_eq!(
                with(code).validate(),
                Err(FaultError::UnsendableCloseCode { code }),
                "{code}"
            );
        }
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
        ] {
            assert_eq!(with(code).validate(), Ok(()), "{code}");
        }
    }

    #[test]
    fn header_values_with_line_breaks_are_refused() {
        let f = Faults {
            version_header: Some("1\r\nX-Evil: 1".into()),
            ..Faults::default()
        };
        assert!(matches!(
            f.validate(),
            Err(FaultError::InvalidHeaderValue {
                what: "version_header",
                ..
            })
        ));
    }
}
