//! Key server addresses: `host`, `host:port`, `IPv4[:port]`, `[IPv6][:port]` or a bare IPv6
//! address, parsed into one normalized form so that the same server is always written the same way.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The port KMIP servers listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 5696;

/// Host names are at most this long (RFC 1035).
const MAX_HOST_LEN: usize = 253;
/// Each dot-separated label of a host name is at most this long (RFC 1035).
const MAX_LABEL_LEN: usize = 63;

/// A key server's address: a host name or IP address, and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// Why a string is not a key server address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("the address is empty")]
    Empty,
    #[error("\"{0}\" is a URL: give host or host:port, not a URL (such as {1})")]
    Url(String, String),
    #[error("\"{0}\" is not a valid port (1 to 65535)")]
    BadPort(String),
    #[error("\"{0}\" is not a valid IPv6 address")]
    BadIpv6(String),
    #[error("\"{0}\" is neither a valid host name nor a valid IPv4 address")]
    BadHost(String),
}

impl fmt::Display for Endpoint {
    /// `host:port`, with IPv6 addresses in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    /// Parses and normalizes: host names are lower-cased, IPv6 addresses compressed, and the
    /// port defaults to [`DEFAULT_PORT`].
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(EndpointError::Empty);
        }
        if let Some((_, rest)) = text.split_once("://") {
            // KMIP has no URL scheme: `https://ks1:5696` most likely means `ks1:5696`.
            let meant = rest.split('/').next().unwrap_or(rest).to_string();
            return Err(EndpointError::Url(text.to_string(), meant));
        }
        if let Some(rest) = text.strip_prefix('[') {
            return parse_bracketed_ipv6(text, rest);
        }
        if text.matches(':').count() > 1 {
            // Several colons and no brackets: a bare IPv6 address, which cannot carry a port.
            let address = parse_ipv6(text)?;
            return Ok(Endpoint {
                host: address.to_string(),
                port: DEFAULT_PORT,
            });
        }
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, parse_port(port)?),
            None => (text, DEFAULT_PORT),
        };
        Ok(Endpoint {
            host: normalize_host(host)?,
            port,
        })
    }
}

fn parse_bracketed_ipv6(text: &str, rest: &str) -> Result<Endpoint, EndpointError> {
    let (address, after) = rest
        .split_once(']')
        .ok_or_else(|| EndpointError::BadIpv6(text.to_string()))?;
    let port = match after {
        "" => DEFAULT_PORT,
        _ => match after.strip_prefix(':') {
            Some(port) => parse_port(port)?,
            None => return Err(EndpointError::BadIpv6(text.to_string())),
        },
    };
    Ok(Endpoint {
        host: parse_ipv6(address)?.to_string(),
        port,
    })
}

fn parse_ipv6(text: &str) -> Result<Ipv6Addr, EndpointError> {
    text.parse()
        .map_err(|_| EndpointError::BadIpv6(text.to_string()))
}

fn parse_port(text: &str) -> Result<u16, EndpointError> {
    let all_digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u16>() {
        Ok(port) if all_digits && port > 0 => Ok(port),
        _ => Err(EndpointError::BadPort(text.to_string())),
    }
}

/// An IPv4 address in its canonical form, or a valid host name in lower case.
fn normalize_host(host: &str) -> Result<String, EndpointError> {
    let bad = || EndpointError::BadHost(host.to_string());
    if let Ok(address) = host.parse::<Ipv4Addr>() {
        return Ok(address.to_string());
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return Err(bad());
    }
    let labels: Vec<&str> = host.split('.').collect();
    if !labels.iter().all(|label| is_valid_label(label)) {
        return Err(bad());
    }
    // "10.0.0" or "300.1.1.1" are mistyped IPv4 addresses, not host names.
    if labels
        .iter()
        .all(|label| label.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    Ok(host.to_ascii_lowercase())
}

fn is_valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(text: &str) -> String {
        text.parse::<Endpoint>()
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .to_string()
    }

    #[test]
    fn addresses_are_normalized() {
        let cases = [
            ("10.0.0.1", "10.0.0.1:5696"),
            ("10.0.0.1:15696", "10.0.0.1:15696"),
            ("KMS.Example.com", "kms.example.com:5696"),
            ("kms.example.com.:443", "kms.example.com:443"),
            ("localhost:1", "localhost:1"),
            (" 10.0.0.1 ", "10.0.0.1:5696"),
            ("fd20:8b1e:b255:832e::1", "[fd20:8b1e:b255:832e::1]:5696"),
            ("[FD20:8B1E:0:0:0:0:0:1]:5697", "[fd20:8b1e::1]:5697"),
            ("[::1]", "[::1]:5696"),
        ];
        for (text, expected) in cases {
            assert_eq!(normalized(text), expected, "{text}");
        }
    }

    #[test]
    fn invalid_addresses_are_refused() {
        let cases = [
            "",
            "10.0.0.1:",
            "10.0.0.1:0",
            "10.0.0.1:65536",
            "10.0.0.1:+80",
            "host:port",
            "300.1.1.1",
            "10.0.0",
            "-bad.example.com",
            "bad..example.com",
            "white space",
            "[::1",
            "[::1]x",
            "[not-v6]:5696",
            "fd20::1::2",
            "a/b",
            "https://ks1:5696",
        ];
        for text in cases {
            assert!(text.parse::<Endpoint>().is_err(), "{text:?} was accepted");
        }
        assert_eq!(
            "https://ks1:5696/"
                .parse::<Endpoint>()
                .unwrap_err()
                .to_string(),
            "\"https://ks1:5696/\" is a URL: give host or host:port, not a URL (such as ks1:5696)"
        );
        let too_long = format!("{}.com", "a".repeat(MAX_LABEL_LEN + 1));
        assert!(too_long.parse::<Endpoint>().is_err());
    }
}
