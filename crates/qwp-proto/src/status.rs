//! Response status bytes, their error categories and default policies, and
//! WebSocket close-code classes (sf-client §14.2–§14.3 and §15).

/// Status byte of an OK frame.
pub const STATUS_OK: u8 = 0x00;
/// Status byte of a DURABLE_ACK frame.
pub const STATUS_DURABLE_ACK: u8 = 0x02;
/// Status byte: the batch's schema conflicts with the table.
pub const STATUS_SCHEMA_MISMATCH: u8 = 0x03;
/// Status byte: the server could not parse the message.
pub const STATUS_PARSE_ERROR: u8 = 0x05;
/// Status byte: a server-side fault.
pub const STATUS_INTERNAL_ERROR: u8 = 0x06;
/// Status byte: the connection is not allowed to do this.
pub const STATUS_SECURITY_ERROR: u8 = 0x08;
/// Status byte: the table is not accepting writes.
pub const STATUS_WRITE_ERROR: u8 = 0x09;

/// The category an error is reported under, shared by server error frames,
/// terminal close codes and client-side terminal conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// Status `0x03`.
    SchemaMismatch,
    /// Status `0x05`.
    ParseError,
    /// Status `0x06`.
    InternalError,
    /// Status `0x08`, and upgrade 401/403.
    SecurityError,
    /// Status `0x09`.
    WriteError,
    /// Synthesised for terminal WebSocket close codes and an exhausted
    /// reconnect budget; never sent by a server as a status byte.
    ProtocolViolation,
    /// Any status byte this client does not know (including `0x01`, `0x04`,
    /// `0x07`).
    Unknown,
}

/// What the client does with the frame a server rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorPolicy {
    /// Report the error, treat the rejected frame as acknowledged, keep going.
    DropAndContinue,
    /// Latch a terminal error; every later producer call returns it.
    Halt,
}

impl ErrorCategory {
    /// The category of a non-OK, non-DURABLE_ACK status byte.
    pub fn from_status(status: u8) -> ErrorCategory {
        match status {
            STATUS_SCHEMA_MISMATCH => ErrorCategory::SchemaMismatch,
            STATUS_PARSE_ERROR => ErrorCategory::ParseError,
            STATUS_INTERNAL_ERROR => ErrorCategory::InternalError,
            STATUS_SECURITY_ERROR => ErrorCategory::SecurityError,
            STATUS_WRITE_ERROR => ErrorCategory::WriteError,
            _ => ErrorCategory::Unknown,
        }
    }

    /// The policy applied when the user configured no override.
    pub fn default_policy(self) -> ErrorPolicy {
        match self {
            ErrorCategory::SchemaMismatch | ErrorCategory::WriteError => {
                ErrorPolicy::DropAndContinue
            }
            _ => ErrorPolicy::Halt,
        }
    }

    /// Whether the user may override the policy with an `on_*_error` key.
    /// PROTOCOL_VIOLATION and UNKNOWN are always HALT.
    pub fn is_overridable(self) -> bool {
        !matches!(
            self,
            ErrorCategory::ProtocolViolation | ErrorCategory::Unknown
        )
    }

    /// The spec's upper-case name (`SCHEMA_MISMATCH`, …).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCategory::SchemaMismatch => "SCHEMA_MISMATCH",
            ErrorCategory::ParseError => "PARSE_ERROR",
            ErrorCategory::InternalError => "INTERNAL_ERROR",
            ErrorCategory::SecurityError => "SECURITY_ERROR",
            ErrorCategory::WriteError => "WRITE_ERROR",
            ErrorCategory::ProtocolViolation => "PROTOCOL_VIOLATION",
            ErrorCategory::Unknown => "UNKNOWN",
        }
    }
}

impl core::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a WebSocket close code from the server means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseClass {
    /// 1002, 1003, 1007, 1008, 1009, 1010: halt with PROTOCOL_VIOLATION.
    Terminal,
    /// Every other code: enter the reconnect loop.
    Reconnect,
}

/// The close codes that halt the client instead of reconnecting.
pub const TERMINAL_CLOSE_CODES: [u16; 6] = [1002, 1003, 1007, 1008, 1009, 1010];

/// Classifies a WebSocket close code (sf-client §15).
pub fn close_class(code: u16) -> CloseClass {
    if TERMINAL_CLOSE_CODES.contains(&code) {
        CloseClass::Terminal
    } else {
        CloseClass::Reconnect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_categories_per_brief_14_13() {
        assert_eq!(ErrorCategory::from_status(3), ErrorCategory::SchemaMismatch);
        assert_eq!(ErrorCategory::from_status(5), ErrorCategory::ParseError);
        assert_eq!(ErrorCategory::from_status(6), ErrorCategory::InternalError);
        assert_eq!(ErrorCategory::from_status(8), ErrorCategory::SecurityError);
        assert_eq!(ErrorCategory::from_status(9), ErrorCategory::WriteError);
        for unknown in [1, 4, 7, 0x0a, 0xff] {
            let c = ErrorCategory::from_status(unknown);
            assert_eq!(c, ErrorCategory::Unknown, "status {unknown}");
            assert_eq!(c.default_policy(), ErrorPolicy::Halt);
            assert!(!c.is_overridable());
        }
    }

    #[test]
    fn default_policies_per_sf_client_14_3() {
        use ErrorCategory::*;
        use ErrorPolicy::*;
        let table = [
            (SchemaMismatch, DropAndContinue),
            (ParseError, Halt),
            (InternalError, Halt),
            (SecurityError, Halt),
            (WriteError, DropAndContinue),
            (ProtocolViolation, Halt),
            (Unknown, Halt),
        ];
        for (cat, policy) in table {
            assert_eq!(cat.default_policy(), policy, "{cat}");
        }
        assert!(!ProtocolViolation.is_overridable());
    }

    #[test]
    fn close_codes_per_brief_14_21() {
        for code in [1002, 1003, 1007, 1008, 1009, 1010] {
            assert_eq!(close_class(code), CloseClass::Terminal, "{code}");
        }
        for code in [1000, 1001, 1004, 1005, 1006, 1011, 1012, 3000, 4000] {
            assert_eq!(close_class(code), CloseClass::Reconnect, "{code}");
        }
    }
}
