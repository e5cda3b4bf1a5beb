//! The WebSocket upgrade: header names, QWP version negotiation, the
//! durable-ACK echo rule, and classification of the upgrade response.
//!
//! The adapter performs the HTTP upgrade; this module says which headers to
//! send ([`request_headers`]) and what the server's answer means
//! ([`classify_upgrade`]), per sf-client §8 and failover.md §5–§6. Header
//! names are matched ASCII-case-insensitively, as HTTP requires.
//!
//! Decisions where the spec is silent or ambiguous:
//! - **Durable-ACK echo missing** ([`UpgradeOutcome::DurableAckNotEnabled`])
//!   is a *per-host, transport-class* failure, not a terminal one. sf-client
//!   §8.1 says the client "MUST fail the connection loudly", and lists the
//!   causes: OSS build, primary not initialised, registry missing, replica.
//!   Two of those are properties of one node at one moment (a primary still
//!   initialising, a replica behind a load balancer), so another host, or
//!   the same host later, can echo `enabled`. The connection attempt fails
//!   (the adapter logs it at ERROR with its own variant), the host is
//!   recorded as a transport error, and the loop walks on under the outage
//!   budget; a cluster that never echoes ends in the budget's terminal
//!   error, and with `initial_connect_retry=off` the very first connect
//!   fails at once, which is the loud failure a misconfigured OSS target
//!   needs.
//! - **Repeated response headers**: the first occurrence wins.
//! - **Header values** are trimmed of ASCII whitespace; the durable-ACK echo
//!   `enabled` and the role `PRIMARY_CATCHUP` compare ASCII-case-insensitively.
//! - **`X-QWP-Version`** must be ASCII digits after trimming; an empty or
//!   non-numeric value is a transport error like an out-of-range one (only a
//!   *missing* header means version 1).
//! - An `X-QWP-Durable-Ack: enabled` echo the client did not ask for is
//!   ignored (durable ACK stays off).

use crate::status::ErrorCategory;

/// Request header: the highest QWP version the client speaks.
pub const HEADER_MAX_VERSION: &str = "X-QWP-Max-Version";
/// Request header: free-form client identification (e.g. `rust/0.1.0`).
pub const HEADER_CLIENT_ID: &str = "X-QWP-Client-Id";
/// Request header: opt in to DURABLE_ACK frames; value [`REQUEST_DURABLE_ACK_VALUE`].
pub const HEADER_REQUEST_DURABLE_ACK: &str = "X-QWP-Request-Durable-Ack";
/// Response header: the negotiated QWP version (1 when absent).
pub const HEADER_VERSION: &str = "X-QWP-Version";
/// Response header: [`DURABLE_ACK_ENABLED`] when the server will send
/// DURABLE_ACK frames.
pub const HEADER_DURABLE_ACK: &str = "X-QWP-Durable-Ack";
/// Response header on a `421`: the server's role.
pub const HEADER_ROLE: &str = "X-QuestDB-Role";
/// Response header on a `421`: the server's zone (egress only; ingress
/// ignores it).
pub const HEADER_ZONE: &str = "X-QuestDB-Zone";

/// The primary ingest path.
pub const PATH_WRITE_V4: &str = "/write/v4";
/// The alternative ingest path.
pub const PATH_API_V4_WRITE: &str = "/api/v4/write";

/// The value of [`HEADER_REQUEST_DURABLE_ACK`] when opting in.
pub const REQUEST_DURABLE_ACK_VALUE: &str = "true";
/// The value of [`HEADER_DURABLE_ACK`] that confirms durable ACKs.
pub const DURABLE_ACK_ENABLED: &str = "enabled";
/// The role that makes a `421` a transient reject.
pub const ROLE_PRIMARY_CATCHUP: &str = "PRIMARY_CATCHUP";

/// The highest QWP version this client speaks; ingress pins version 1.
pub const CLIENT_MAX_VERSION: u8 = 1;

/// HTTP status of a successful WebSocket upgrade.
pub const STATUS_SWITCHING_PROTOCOLS: u16 = 101;
/// HTTP status of a role reject.
pub const STATUS_MISDIRECTED_REQUEST: u16 = 421;

/// Why a request header could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpgradeError {
    /// The client id contains a byte that is not visible ASCII or space
    /// (a CR/LF would inject headers).
    #[error(
        "client id {client_id:?} contains a byte that is not printable ASCII at index {index}"
    )]
    InvalidClientId {
        /// The rejected id.
        client_id: String,
        /// Index of the first bad byte.
        index: usize,
    },
}

/// The QWP headers of the upgrade request, in a stable order. Auth headers
/// are the adapter's. An empty `client_id` omits [`HEADER_CLIENT_ID`].
pub fn request_headers(
    client_id: &str,
    durable_ack: bool,
) -> Result<Vec<(&'static str, String)>, UpgradeError> {
    if let Some(index) = client_id.bytes().position(|b| !(0x20..=0x7e).contains(&b)) {
        return Err(UpgradeError::InvalidClientId {
            client_id: client_id.to_owned(),
            index,
        });
    }
    let mut headers = vec![(HEADER_MAX_VERSION, CLIENT_MAX_VERSION.to_string())];
    if !client_id.is_empty() {
        headers.push((HEADER_CLIENT_ID, client_id.to_owned()));
    }
    if durable_ack {
        headers.push((
            HEADER_REQUEST_DURABLE_ACK,
            REQUEST_DURABLE_ACK_VALUE.to_owned(),
        ));
    }
    Ok(headers)
}

/// Server side: whether an upgrade request opts in to durable ACKs
/// ([`HEADER_REQUEST_DURABLE_ACK`] is `true`, ASCII-case-insensitive and
/// trimmed; the first occurrence wins).
pub fn durable_ack_requested<'a, I>(request_headers: I) -> bool
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    header(request_headers, HEADER_REQUEST_DURABLE_ACK)
        .map(<[u8]>::trim_ascii)
        .is_some_and(|v| v.eq_ignore_ascii_case(REQUEST_DURABLE_ACK_VALUE.as_bytes()))
}

/// Server side: the QWP headers of a `101` answer: the negotiated `version`,
/// and the durable-ACK echo when the server will send DURABLE_ACK frames.
pub fn accept_headers(version: u8, durable_ack: bool) -> Vec<(&'static str, String)> {
    let mut headers = vec![(HEADER_VERSION, version.to_string())];
    if durable_ack {
        headers.push((HEADER_DURABLE_ACK, DURABLE_ACK_ENABLED.to_owned()));
    }
    headers
}

/// A per-host transport-class upgrade failure (failover.md §6 "Transient").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeFailure {
    /// A status that is not 101, 401, 403 or 421 (e.g. 400, 404, 426, 503).
    UnexpectedStatus(u16),
    /// A `421` without an `X-QuestDB-Role` header, or with an empty one.
    RoleRejectWithoutRole,
    /// `X-QWP-Version` outside `[1, client max]`.
    VersionOutOfRange {
        /// The advertised version (saturated at `u64::MAX`).
        version: u64,
        /// The client's maximum.
        client_max: u8,
    },
    /// `X-QWP-Version` is empty or not a decimal number.
    VersionUnparsable(String),
}

impl core::fmt::Display for UpgradeFailure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UpgradeFailure::UnexpectedStatus(s) => write!(f, "upgrade answered HTTP {s}"),
            UpgradeFailure::RoleRejectWithoutRole => {
                write!(f, "upgrade answered 421 without an {HEADER_ROLE} header")
            }
            UpgradeFailure::VersionOutOfRange {
                version,
                client_max,
            } => write!(
                f,
                "server negotiated QWP version {version}, outside [1, {client_max}]"
            ),
            UpgradeFailure::VersionUnparsable(v) => {
                write!(f, "unparsable {HEADER_VERSION} header {v:?}")
            }
        }
    }
}

/// What an upgrade response means for the connection and for failover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeOutcome {
    /// `101`: the connection is up.
    Accepted {
        /// The negotiated QWP version, in `[1, client max]`.
        version: u8,
        /// Whether DURABLE_ACK frames will arrive (requested and echoed).
        durable_ack: bool,
    },
    /// `401`/`403`: terminal for the whole client (SECURITY_ERROR).
    AuthError {
        /// The HTTP status.
        status: u16,
    },
    /// `421` with a non-empty role: walk to the next host.
    RoleReject {
        /// `PRIMARY_CATCHUP` (likely to recover) versus any other role
        /// (topology).
        transient: bool,
        /// The trimmed role value, lossily decoded, for diagnostics.
        role: String,
    },
    /// Any other failure of this host: record a transport error, walk on.
    TransportError(UpgradeFailure),
    /// `101`, but durable ACK was requested and not echoed: the connect
    /// fails loudly; per-host and transport-class (see the module docs).
    DurableAckNotEnabled {
        /// The negotiated version (the upgrade itself was acceptable).
        version: u8,
    },
}

/// How failover treats an upgrade outcome (failover.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverClass {
    /// Connected.
    Success,
    /// Stop retrying; surface the error with this category.
    Terminal(ErrorCategory),
    /// A role reject: in-round topology handling.
    Topology {
        /// `PRIMARY_CATCHUP` (TransientReject) versus TopologyReject.
        transient: bool,
    },
    /// Per-host transport error: backoff and round logic.
    Transient,
}

impl UpgradeOutcome {
    /// The failover bucket of this outcome.
    pub fn failover_class(&self) -> FailoverClass {
        match self {
            UpgradeOutcome::Accepted { .. } => FailoverClass::Success,
            UpgradeOutcome::AuthError { .. } => {
                FailoverClass::Terminal(ErrorCategory::SecurityError)
            }
            UpgradeOutcome::RoleReject { transient, .. } => FailoverClass::Topology {
                transient: *transient,
            },
            UpgradeOutcome::TransportError(_) | UpgradeOutcome::DurableAckNotEnabled { .. } => {
                FailoverClass::Transient
            }
        }
    }
}

/// Classifies the HTTP response to the upgrade request.
///
/// `headers` are `(name, value)` pairs as received (names in any case,
/// values as raw bytes); `client_max_version` is what the client sent in
/// [`HEADER_MAX_VERSION`]; `durable_ack_requested` whether it sent
/// [`HEADER_REQUEST_DURABLE_ACK`].
pub fn classify_upgrade<'a, I>(
    status: u16,
    headers: I,
    client_max_version: u8,
    durable_ack_requested: bool,
) -> UpgradeOutcome
where
    I: IntoIterator<Item = (&'a str, &'a [u8])> + Clone,
{
    match status {
        401 | 403 => UpgradeOutcome::AuthError { status },
        STATUS_MISDIRECTED_REQUEST => match header(headers, HEADER_ROLE).map(<[u8]>::trim_ascii) {
            Some(role) if !role.is_empty() => UpgradeOutcome::RoleReject {
                transient: role.eq_ignore_ascii_case(ROLE_PRIMARY_CATCHUP.as_bytes()),
                role: String::from_utf8_lossy(role).into_owned(),
            },
            _ => UpgradeOutcome::TransportError(UpgradeFailure::RoleRejectWithoutRole),
        },
        STATUS_SWITCHING_PROTOCOLS => {
            let version = match negotiated_version(headers.clone(), client_max_version) {
                Ok(v) => v,
                Err(failure) => return UpgradeOutcome::TransportError(failure),
            };
            if !durable_ack_requested {
                return UpgradeOutcome::Accepted {
                    version,
                    durable_ack: false,
                };
            }
            let echoed = header(headers, HEADER_DURABLE_ACK)
                .map(<[u8]>::trim_ascii)
                .is_some_and(|v| v.eq_ignore_ascii_case(DURABLE_ACK_ENABLED.as_bytes()));
            if echoed {
                UpgradeOutcome::Accepted {
                    version,
                    durable_ack: true,
                }
            } else {
                UpgradeOutcome::DurableAckNotEnabled { version }
            }
        }
        other => UpgradeOutcome::TransportError(UpgradeFailure::UnexpectedStatus(other)),
    }
}

/// The first value of header `name`, matched case-insensitively.
fn header<'a, I>(headers: I, name: &str) -> Option<&'a [u8]>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    headers
        .into_iter()
        .find(|(n, _)| n.trim_ascii().eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// The version in `X-QWP-Version` (1 when absent), checked against
/// `[1, client_max]`.
fn negotiated_version<'a, I>(headers: I, client_max: u8) -> Result<u8, UpgradeFailure>
where
    I: IntoIterator<Item = (&'a str, &'a [u8])>,
{
    let version = match header(headers, HEADER_VERSION) {
        None => 1,
        Some(raw) => {
            let digits = raw.trim_ascii();
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(UpgradeFailure::VersionUnparsable(
                    String::from_utf8_lossy(raw).into_owned(),
                ));
            }
            // Saturate: any number too large for u64 is out of range anyway.
            digits.iter().fold(0u64, |acc, d| {
                acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            })
        }
    };
    match u8::try_from(version) {
        Ok(v) if (1..=client_max).contains(&v) => Ok(v),
        _ => Err(UpgradeFailure::VersionOutOfRange {
            version,
            client_max,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, headers: &[(&str, &str)], durable: bool) -> UpgradeOutcome {
        let h: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        classify_upgrade(status, h.iter().copied(), CLIENT_MAX_VERSION, durable)
    }

    #[test]
    fn brief_14_15_durable_requested_without_echo_fails_the_connect() {
        for headers in [
            &[][..],
            &[("X-QWP-Durable-Ack", "disabled")][..],
            &[("X-QWP-Durable-Ack", "")][..],
        ] {
            let out = classify(101, headers, true);
            assert_eq!(out, UpgradeOutcome::DurableAckNotEnabled { version: 1 });
            assert_eq!(out.failover_class(), FailoverClass::Transient);
        }
        for echo in ["enabled", "ENABLED", " Enabled "] {
            assert_eq!(
                classify(101, &[("x-qwp-durable-ack", echo)], true),
                UpgradeOutcome::Accepted {
                    version: 1,
                    durable_ack: true
                },
                "{echo:?}"
            );
        }
        assert_eq!(
            request_headers("rust/0.1.0", true).unwrap(),
            vec![
                (HEADER_MAX_VERSION, "1".to_owned()),
                (HEADER_CLIENT_ID, "rust/0.1.0".to_owned()),
                (HEADER_REQUEST_DURABLE_ACK, "true".to_owned()),
            ]
        );
    }

    #[test]
    fn brief_14_19_role_values_and_statuses() {
        for role in ["PRIMARY_CATCHUP", "primary_catchup", " Primary_CatchUp\t"] {
            let out = classify(421, &[("X-QuestDB-Role", role)], false);
            assert!(
                matches!(
                    out,
                    UpgradeOutcome::RoleReject {
                        transient: true,
                        ..
                    }
                ),
                "{role:?}"
            );
            assert_eq!(
                out.failover_class(),
                FailoverClass::Topology { transient: true }
            );
        }
        for role in ["REPLICA", "PRIMARY", "STANDALONE", "foo", "replica"] {
            let out = classify(421, &[("x-questdb-role", role)], false);
            assert_eq!(
                out,
                UpgradeOutcome::RoleReject {
                    transient: false,
                    role: role.to_owned()
                }
            );
            assert_eq!(
                out.failover_class(),
                FailoverClass::Topology { transient: false }
            );
        }
        for headers in [
            &[][..],
            &[("X-QuestDB-Role", "")][..],
            &[("X-QuestDB-Role", "  ")][..],
        ] {
            let out = classify(421, headers, false);
            assert_eq!(
                out,
                UpgradeOutcome::TransportError(UpgradeFailure::RoleRejectWithoutRole)
            );
            assert_eq!(out.failover_class(), FailoverClass::Transient);
        }
        for status in [401, 403] {
            let out = classify(status, &[("X-QuestDB-Role", "PRIMARY")], true);
            assert_eq!(out, UpgradeOutcome::AuthError { status });
            assert_eq!(
                out.failover_class(),
                FailoverClass::Terminal(ErrorCategory::SecurityError)
            );
        }
        for status in [200, 400, 404, 426, 500, 503] {
            let out = classify(status, &[("X-QWP-Version", "1")], false);
            assert_eq!(
                out,
                UpgradeOutcome::TransportError(UpgradeFailure::UnexpectedStatus(status))
            );
            assert_eq!(out.failover_class(), FailoverClass::Transient);
        }
    }

    #[test]
    fn request_and_accept_headers_round_trip_through_both_sides() {
        for durable in [false, true] {
            let req = request_headers("rust/0.1.0", durable).unwrap();
            let req: Vec<(&str, &[u8])> = req.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            assert_eq!(durable_ack_requested(req.iter().copied()), durable);
            let resp = accept_headers(1, durable);
            let resp: Vec<(&str, &[u8])> = resp.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
            assert_eq!(
                classify_upgrade(101, resp.iter().copied(), CLIENT_MAX_VERSION, durable),
                UpgradeOutcome::Accepted {
                    version: 1,
                    durable_ack: durable
                }
            );
        }
        let h: [(&str, &[u8]); 1] = [("x-qwp-request-durable-ack", b" TRUE ")];
        assert!(durable_ack_requested(h));
        let h: [(&str, &[u8]); 1] = [("X-QWP-Request-Durable-Ack", b"yes")];
        assert!(!durable_ack_requested(h));
    }

    #[test]
    fn missing_version_header_means_version_1() {
        assert_eq!(
            classify(101, &[], false),
            UpgradeOutcome::Accepted {
                version: 1,
                durable_ack: false
            }
        );
    }

    #[test]
    fn version_outside_client_range_is_transport_error() {
        for v in ["0", "2", "256", "99999999999999999999999"] {
            assert!(
                matches!(
                    classify(101, &[("x-qwp-version", v)], false),
                    UpgradeOutcome::TransportError(UpgradeFailure::VersionOutOfRange { .. })
                ),
                "{v}"
            );
        }
        for v in ["", " ", "one", "+1", "-1", "1.0"] {
            assert_eq!(
                classify(101, &[("X-QWP-Version", v)], false),
                UpgradeOutcome::TransportError(UpgradeFailure::VersionUnparsable(v.to_owned())),
                "{v:?}"
            );
        }
        assert_eq!(
            classify(101, &[("X-QWP-VERSION", " 1 ")], false),
            UpgradeOutcome::Accepted {
                version: 1,
                durable_ack: false
            }
        );
    }

    #[test]
    fn first_occurrence_of_a_repeated_header_wins() {
        assert!(matches!(
            classify(
                101,
                &[("X-QWP-Version", "1"), ("X-QWP-Version", "7")],
                false
            ),
            UpgradeOutcome::Accepted { version: 1, .. }
        ));
    }

    #[test]
    fn unrequested_durable_echo_is_ignored() {
        assert_eq!(
            classify(101, &[("X-QWP-Durable-Ack", "enabled")], false),
            UpgradeOutcome::Accepted {
                version: 1,
                durable_ack: false
            }
        );
    }

    #[test]
    fn request_headers_reject_header_injection() {
        assert_eq!(
            request_headers("x\r\nEvil: 1", false),
            Err(UpgradeError::InvalidClientId {
                client_id: "x\r\nEvil: 1".to_owned(),
                index: 1
            })
        );
    }

    #[test]
    fn request_headers_without_client_id_or_durable() {
        assert_eq!(
            request_headers("", false).unwrap(),
            vec![(HEADER_MAX_VERSION, "1".to_owned())]
        );
    }
}
