//! Key server addresses, always in their normalized `host:port` form: the same server is written
//! the same way in every response and matched the same way in every path.

use std::fmt;

use kmip::{Endpoint, EndpointError};

/// A primary key server's address: a parsed [`Endpoint`] and its normalized text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyServerAddress {
    endpoint: Endpoint,
    normalized: String,
}

impl KeyServerAddress {
    /// `host`, `host:port`, `IPv4[:port]`, `[IPv6][:port]` or a bare IPv6 address; the port
    /// defaults to 5696.
    pub fn parse(text: &str) -> Result<KeyServerAddress, EndpointError> {
        let endpoint: Endpoint = text.parse()?;
        Ok(KeyServerAddress {
            normalized: endpoint.to_string(),
            endpoint,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    pub fn as_str(&self) -> &str {
        &self.normalized
    }

    /// Another host on this address's port: secondary key servers use their primary's port.
    pub fn with_host(&self, host: &str) -> Result<KeyServerAddress, EndpointError> {
        let bracketed = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let parsed = KeyServerAddress::parse(&bracketed)?;
        KeyServerAddress::parse(&format!(
            "{}:{}",
            bracketed_host(&parsed.endpoint.host),
            self.endpoint.port
        ))
    }
}

fn bracketed_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

impl fmt::Display for KeyServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_defaults_to_5696_and_the_text_is_normalized() {
        let address = KeyServerAddress::parse("KS1.example.com").expect("valid");
        assert_eq!(address.as_str(), "ks1.example.com:5696");
        assert_eq!(address.endpoint().port, 5696);
    }

    #[test]
    fn secondaries_take_the_primary_port() {
        let primary = KeyServerAddress::parse("10.0.0.1:15696").expect("valid");
        let secondary = primary.with_host("10.0.0.2").expect("valid");
        assert_eq!(secondary.as_str(), "10.0.0.2:15696");
        let v6 = primary.with_host("fd00::2").expect("valid");
        assert_eq!(v6.as_str(), "[fd00::2]:15696");
    }
}
