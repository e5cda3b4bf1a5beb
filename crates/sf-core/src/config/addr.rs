//! One server endpoint of the `addr` list: `host[:port]`, with IPv6 literals
//! in brackets.

use core::fmt;

use super::error::ConfigError;

/// The port used when an `addr` entry has none: QuestDB serves the QWP
/// WebSocket endpoint (`/write/v4`) on its HTTP port, 9000 by default.
pub const DEFAULT_PORT: u16 = 9000;

/// A server endpoint: host name, IPv4 address or IPv6 literal, and port.
///
/// Built only through [`HostPort::new`] or [`HostPort::parse`], so the host
/// is never empty and never holds characters that cannot be part of a host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// An endpoint from a host (name, IPv4, or IPv6 without brackets) and a
    /// port; the same validation as an `addr` entry.
    pub fn new(host: &str, port: u16) -> Result<HostPort, ConfigError> {
        let entry = || {
            if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            }
        };
        if port == 0 {
            return Err(invalid(&entry(), "port 0 is not a valid server port"));
        }
        if host.contains(':') {
            check_ipv6(host).map_err(|reason| invalid(&entry(), reason))?;
        } else {
            check_host(host).map_err(|reason| invalid(&entry(), reason))?;
        }
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }

    /// Reads one `addr` entry: `host`, `host:port`, `[v6]` or `[v6]:port`.
    /// A missing port is [`DEFAULT_PORT`].
    pub fn parse(entry: &str) -> Result<HostPort, ConfigError> {
        let (host, port) = if let Some(bracketed) = entry.strip_prefix('[') {
            let (v6, after) = bracketed.split_once(']').ok_or_else(|| {
                invalid(entry, "`[` opens an IPv6 literal that has no closing `]`")
            })?;
            check_ipv6(v6).map_err(|reason| invalid(entry, reason))?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| invalid(entry, "after `]` only `:port` may follow"))?,
                ),
            };
            (v6, port)
        } else {
            let mut parts = entry.splitn(3, ':');
            let host = parts.next().unwrap_or_default();
            let port = parts.next();
            if parts.next().is_some() {
                return Err(invalid(
                    entry,
                    "more than one `:`; write IPv6 addresses in brackets, e.g. `[::1]:9000`",
                ));
            }
            check_host(host).map_err(|reason| invalid(entry, reason))?;
            (host, port)
        };
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => parse_port(p).map_err(|reason| invalid(entry, reason))?,
        };
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }

    /// The host: a name, an IPv4 address, or an IPv6 address without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for HostPort {
    /// `host:port`, with IPv6 hosts in brackets: the form [`HostPort::parse`]
    /// reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

fn invalid(entry: &str, reason: &'static str) -> ConfigError {
    ConfigError::InvalidAddr {
        entry: entry.to_owned(),
        reason,
    }
}

/// A DNS name or an IPv4 address: ASCII letters, digits, `-`, `.` and `_`
/// (the latter for service-discovery names). International names must be
/// given in their ASCII (punycode) form.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("the host is empty");
    }
    if host.len() > 253 {
        return Err("the host is longer than 253 characters");
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err("a host may hold only ASCII letters, digits, `-`, `.` and `_`");
    }
    Ok(())
}

/// The inside of `[…]`: hex digits, `:` and `.` (for an embedded IPv4 tail),
/// with at least one `:`. Zone ids (`%eth0`) are not supported.
fn check_ipv6(v6: &str) -> Result<(), &'static str> {
    if v6.is_empty() || !v6.contains(':') || v6.len() > 45 {
        return Err("the text in brackets is not an IPv6 address");
    }
    if !v6
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'))
    {
        return Err("an IPv6 address may hold only hex digits, `:` and `.`");
    }
    Ok(())
}

fn parse_port(p: &str) -> Result<u16, &'static str> {
    if p.is_empty() {
        return Err("the port after `:` is empty");
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is not a decimal number");
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err("the port must be 1..=65535"),
        Ok(port) => Ok(port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hp(entry: &str) -> (String, u16) {
        let h = HostPort::parse(entry).unwrap_or_else(|e| panic!("{entry}: {e}"));
        (h.host().to_owned(), h.port())
    }

    #[test]
    fn missing_port_defaults_to_9000() {
        assert_eq!(hp("db.example.com"), ("db.example.com".to_owned(), 9000));
        assert_eq!(hp("[::1]"), ("::1".to_owned(), 9000));
    }

    #[test]
    fn explicit_ports_and_ipv6_literals() {
        assert_eq!(hp("10.0.0.1:9001"), ("10.0.0.1".to_owned(), 9001));
        assert_eq!(hp("[::1]:9000"), ("::1".to_owned(), 9000));
        assert_eq!(hp("[fe80::1:2]:65535"), ("fe80::1:2".to_owned(), 65535));
        assert_eq!(hp("[::ffff:10.0.0.1]:1"), ("::ffff:10.0.0.1".to_owned(), 1));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in [
            "",
            ":9000",
            "h:",
            "h:0",
            "h:65536",
            "h:-1",
            "h:9x",
            "::1",
            "::1:9000",
            "[::1",
            "[::1]9000",
            "[]:9000",
            "[host]:1",
            "h o:1",
            "h/x:1",
            "user@h:1",
            "[::1]:",
        ] {
            assert!(
                matches!(HostPort::parse(bad), Err(ConfigError::InvalidAddr { .. })),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn display_reads_back() {
        for entry in ["h:1", "[::1]:9000", "a.b-c_d:65535"] {
            let h = HostPort::parse(entry).unwrap();
            assert_eq!(h.to_string(), entry);
            assert_eq!(HostPort::parse(&h.to_string()), Ok(h));
        }
        assert_eq!(
            HostPort::new("::1", 9000).unwrap().to_string(),
            "[::1]:9000"
        );
        assert!(HostPort::new("h", 0).is_err());
        assert!(HostPort::new("", 1).is_err());
    }
}
