//! The upgrade decision: path, injected rejects, auth, version negotiation
//! and the durable-ACK echo, as one pure function of the request.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use qwp_proto::upgrade::{
    accept_headers, durable_ack_requested, HEADER_MAX_VERSION, HEADER_ROLE, HEADER_VERSION,
    PATH_API_V4_WRITE, PATH_WRITE_V4,
};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{header, HeaderName, HeaderValue, StatusCode};

use crate::config::Auth;
use crate::faults::UpgradeReject;

/// The highest QWP version this server speaks.
pub(crate) const SERVER_MAX_VERSION: u64 = 1;

/// What the handshake needs to know besides the request.
#[derive(Debug, Clone)]
pub(crate) struct Policy<'a> {
    /// Required credentials.
    pub(crate) auth: Option<&'a Auth>,
    /// Whether the server can send DURABLE_ACK frames at all.
    pub(crate) durable_supported: bool,
    /// An injected reject for this upgrade (already counted).
    pub(crate) reject: Option<UpgradeReject>,
    /// Injected `X-QWP-Version` value.
    pub(crate) version_header: Option<String>,
    /// Injected: never echo the durable-ACK header.
    pub(crate) omit_durable_echo: bool,
}

/// An accepted upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Accepted {
    /// The negotiated version.
    pub(crate) version: u8,
    /// Whether this connection gets DURABLE_ACK frames (requested and echoed).
    pub(crate) durable: bool,
}

/// Whether the request targets an ingest path (query string ignored).
pub(crate) fn is_ingest_path(req: &Request) -> bool {
    let path = req.uri().path();
    path == PATH_WRITE_V4 || path == PATH_API_V4_WRITE
}

/// Decides the upgrade: `Ok` with the 101 response to send, or the error
/// response. `reject` is consulted after the path check only, so a request
/// to a wrong path never consumes an injected reject.
// The error type is the one tungstenite's upgrade callback must return.
#[allow(clippy::result_large_err)]
pub(crate) fn decide(
    req: &Request,
    mut response: Response,
    policy: &Policy<'_>,
) -> Result<(Accepted, Response), ErrorResponse> {
    if !is_ingest_path(req) {
        return Err(error(StatusCode::NOT_FOUND, &[], "not a QWP ingest path"));
    }
    match &policy.reject {
        Some(UpgradeReject::Role(role)) if role.is_empty() => {
            return Err(error(
                StatusCode::MISDIRECTED_REQUEST,
                &[],
                "injected reject",
            ));
        }
        Some(UpgradeReject::Role(role)) => {
            return Err(error(
                StatusCode::MISDIRECTED_REQUEST,
                &[(HEADER_ROLE, role.as_str())],
                "injected reject",
            ));
        }
        Some(UpgradeReject::Unauthorized) => {
            return Err(error(StatusCode::UNAUTHORIZED, &[], "injected reject"));
        }
        None => {}
    }
    if let Some(auth) = policy.auth {
        if !authorized(req, auth) {
            let challenge = match auth {
                Auth::Basic { .. } => "Basic realm=\"qwp\"",
                Auth::Bearer { .. } => "Bearer",
            };
            return Err(error(
                StatusCode::UNAUTHORIZED,
                &[(header::WWW_AUTHENTICATE.as_str(), challenge)],
                "authentication failed",
            ));
        }
    }
    let client_max = match req.headers().get(HEADER_MAX_VERSION) {
        None => 1,
        Some(v) => match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(n) if n >= 1 => n,
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    &[],
                    "X-QWP-Max-Version must be a positive integer",
                ))
            }
        },
    };
    let version = u8::try_from(client_max.min(SERVER_MAX_VERSION)).unwrap_or(1);
    let headers = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()));
    let durable =
        policy.durable_supported && !policy.omit_durable_echo && durable_ack_requested(headers);
    for (name, value) in accept_headers(version, durable) {
        let value = match (&policy.version_header, name) {
            (Some(forced), HEADER_VERSION) => forced.clone(),
            _ => value,
        };
        // Both come from constants or validated fault values.
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(n, v);
        }
    }
    Ok((Accepted { version, durable }, response))
}

/// Whether the `Authorization` header carries exactly the configured
/// credentials (scheme case-insensitive).
fn authorized(req: &Request, auth: &Auth) -> bool {
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, credentials)) = value.trim().split_once(' ') else {
        return false;
    };
    let credentials = credentials.trim();
    match auth {
        Auth::Basic { username, password } => {
            scheme.eq_ignore_ascii_case("Basic")
                && STANDARD
                    .decode(credentials)
                    .is_ok_and(|d| d == format!("{username}:{password}").as_bytes())
        }
        Auth::Bearer { token } => scheme.eq_ignore_ascii_case("Bearer") && credentials == token,
    }
}

fn error(status: StatusCode, headers: &[(&str, &str)], body: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(body.to_owned()));
    *r.status_mut() = status;
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            r.headers_mut().insert(n, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(path: &str, headers: &[(&str, &str)]) -> Request {
        let mut b = Request::builder().uri(path);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    fn policy() -> Policy<'static> {
        Policy {
            auth: None,
            durable_supported: true,
            reject: None,
            version_header: None,
            omit_durable_echo: false,
        }
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn version_is_min_of_client_max_and_server_max() {
        for (sent, want) in [
            (None, 1u8),
            (Some("1"), 1),
            (Some("7"), 1),
            (Some(" 2 "), 1),
        ] {
            let h: Vec<_> = sent.map(|v| (HEADER_MAX_VERSION, v)).into_iter().collect();
            let (acc, resp) =
                decide(&request("/write/v4", &h), Response::default(), &policy()).unwrap();
            assert_eq!(acc.version, want);
            assert_eq!(header(&resp, HEADER_VERSION), Some("1"));
        }
    }

    #[test]
    fn unparsable_or_zero_max_version_is_400() {
        for bad in ["0", "x", "-1", ""] {
            let req = request("/write/v4", &[(HEADER_MAX_VERSION, bad)]);
            let err = decide(&req, Response::default(), &policy()).unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        }
    }

    #[test]
    fn both_ingest_paths_are_accepted_and_others_are_404() {
        for ok in ["/write/v4", "/api/v4/write", "/write/v4?x=1"] {
            assert!(
                decide(&request(ok, &[]), Response::default(), &policy()).is_ok(),
                "{ok}"
            );
        }
        for bad in ["/", "/write/v3", "/write/v4/"] {
            let err = decide(&request(bad, &[]), Response::default(), &policy()).unwrap_err();
            assert_eq!(err.status(), StatusCode::NOT_FOUND, "{bad}");
        }
    }

    #[test]
    fn durable_echo_needs_request_support_and_no_fault() {
        let asked = [("X-QWP-Request-Durable-Ack", "TRUE")];
        let (acc, resp) = decide(
            &request("/write/v4", &asked),
            Response::default(),
            &policy(),
        )
        .unwrap();
        assert!(acc.durable);
        assert_eq!(header(&resp, "x-qwp-durable-ack"), Some("enabled"));

        let (acc, resp) =
            decide(&request("/write/v4", &[]), Response::default(), &policy()).unwrap();
        assert!(!acc.durable);
        assert_eq!(header(&resp, "x-qwp-durable-ack"), None);

        for p in [
            Policy {
                durable_supported: false,
                ..policy()
            },
            Policy {
                omit_durable_echo: true,
                ..policy()
            },
        ] {
            let (acc, resp) =
                decide(&request("/write/v4", &asked), Response::default(), &p).unwrap();
            assert!(!acc.durable);
            assert_eq!(header(&resp, "x-qwp-durable-ack"), None);
        }
    }

    #[test]
    fn forced_version_header_replaces_the_negotiated_one() {
        let p = Policy {
            version_header: Some("2".into()),
            ..policy()
        };
        let (acc, resp) = decide(&request("/write/v4", &[]), Response::default(), &p).unwrap();
        assert_eq!(acc.version, 1);
        assert_eq!(header(&resp, HEADER_VERSION), Some("2"));
    }

    #[test]
    fn injected_rejects_answer_421_with_role_or_401() {
        let p = Policy {
            reject: Some(UpgradeReject::Role("PRIMARY_CATCHUP".into())),
            ..policy()
        };
        let err = decide(&request("/write/v4", &[]), Response::default(), &p).unwrap_err();
        assert_eq!(err.status(), StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(err.headers().get(HEADER_ROLE).unwrap(), "PRIMARY_CATCHUP");

        let p = Policy {
            reject: Some(UpgradeReject::Role(String::new())),
            ..policy()
        };
        let err = decide(&request("/write/v4", &[]), Response::default(), &p).unwrap_err();
        assert_eq!(err.status(), StatusCode::MISDIRECTED_REQUEST);
        assert!(err.headers().get(HEADER_ROLE).is_none());

        let p = Policy {
            reject: Some(UpgradeReject::Unauthorized),
            ..policy()
        };
        let err = decide(&request("/write/v4", &[]), Response::default(), &p).unwrap_err();
        assert_eq!(err.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn basic_and_bearer_auth_accept_only_the_configured_credentials() {
        let basic = Auth::Basic {
            username: "admin".into(),
            password: "quest".into(),
        };
        let p = Policy {
            auth: Some(&basic),
            ..policy()
        };
        // base64("admin:quest") = YWRtaW46cXVlc3Q=
        for (h, ok) in [
            (Some("Basic YWRtaW46cXVlc3Q="), true),
            (Some("basic  YWRtaW46cXVlc3Q= "), true),
            (Some("Basic YWRtaW46cXVlc3R4"), false),
            (Some("Bearer YWRtaW46cXVlc3Q="), false),
            (Some("Basic !!"), false),
            (None, false),
        ] {
            let hs: Vec<_> = h.map(|v| ("Authorization", v)).into_iter().collect();
            let r = decide(&request("/write/v4", &hs), Response::default(), &p);
            assert_eq!(r.is_ok(), ok, "{h:?}");
            if let Err(e) = r {
                assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
            }
        }
        let bearer = Auth::Bearer {
            token: "s3cret".into(),
        };
        let p = Policy {
            auth: Some(&bearer),
            ..policy()
        };
        for (h, ok) in [
            (Some("Bearer s3cret"), true),
            (Some("Bearer s3cre"), false),
            (Some("Basic s3cret"), false),
            (None, false),
        ] {
            let hs: Vec<_> = h.map(|v| ("Authorization", v)).into_iter().collect();
            assert_eq!(
                decide(&request("/write/v4", &hs), Response::default(), &p).is_ok(),
                ok,
                "{h:?}"
            );
        }
    }
}
