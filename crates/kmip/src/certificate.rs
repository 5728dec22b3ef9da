//! What a certificate says, in the terms an administrator checks before trusting a key server:
//! who it names, who signed it, its key, how long it is valid, and what it may be used for.

use std::net::IpAddr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

/// A certificate's facts. Built from DER; an unparsable certificate yields placeholders rather
/// than an error, since it is only ever described, never trusted on these facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    pub subject: String,
    pub issuer: String,
    /// The DNS names and IP addresses of its subject alternative names.
    pub names: Vec<String>,
    /// `RSA 2048`, `EC 256 (prime256v1)`, ...
    pub key: String,
    /// Seconds since the Unix epoch.
    pub not_before: i64,
    pub not_after: i64,
    /// Extended key usage: `None` when the certificate has no such extension (any use).
    pub server_auth: Option<bool>,
    pub client_auth: Option<bool>,
}

const UNPARSABLE: &str = "<unparsable certificate>";

impl CertificateSummary {
    pub fn from_der(der: &[u8]) -> CertificateSummary {
        let key = describe_key(der);
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return CertificateSummary {
                subject: UNPARSABLE.into(),
                issuer: UNPARSABLE.into(),
                names: Vec::new(),
                key,
                not_before: 0,
                not_after: 0,
                server_auth: None,
                client_auth: None,
            };
        };
        let usage = cert.extended_key_usage().ok().flatten().map(|e| e.value);
        CertificateSummary {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            names: subject_alternative_names(&cert),
            key,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            server_auth: usage.map(|u| u.any || u.server_auth),
            client_auth: usage.map(|u| u.any || u.client_auth),
        }
    }

    /// Whole days until the certificate expires (negative once it has).
    pub fn days_to_expiry(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    /// Whether the certificate names `host`: an IP address among its IP names, or a host name
    /// among its DNS names (a `*.` wildcard matching one label).
    pub fn names_host(&self, host: &str) -> bool {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self
                .names
                .iter()
                .any(|n| n.parse::<IpAddr>().ok() == Some(ip));
        }
        let host = host.to_ascii_lowercase();
        self.names.iter().any(|name| {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => name == host,
            }
        })
    }

    /// The names for messages: `a, b` or `none`.
    pub fn names_text(&self) -> String {
        match self.names.is_empty() {
            true => "none".into(),
            false => self.names.join(", "),
        }
    }
}

/// A time in RFC 3339, UTC.
pub fn format_time(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// The current time, in seconds since the Unix epoch.
pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn subject_alternative_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(bytes) => ip_to_string(bytes),
            _ => None,
        })
        .collect()
}

fn ip_to_string(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::from(b).to_string()),
        16 => <[u8; 16]>::try_from(bytes)
            .ok()
            .map(|b| IpAddr::from(b).to_string()),
        _ => None,
    }
}

/// The key's algorithm and size, read with OpenSSL, which names EC curves.
fn describe_key(der: &[u8]) -> String {
    let Ok(key) = openssl::x509::X509::from_der(der).and_then(|c| c.public_key()) else {
        return "unknown".into();
    };
    let algorithm = match key.id() {
        openssl::pkey::Id::RSA => "RSA",
        openssl::pkey::Id::EC => "EC",
        openssl::pkey::Id::ED25519 => "Ed25519",
        openssl::pkey::Id::ED448 => "Ed448",
        openssl::pkey::Id::DSA => "DSA",
        _ => "other",
    };
    let curve = key
        .ec_key()
        .ok()
        .and_then(|ec| ec.group().curve_name())
        .and_then(|nid| nid.short_name().ok())
        .map(|name| format!(" ({name})"))
        .unwrap_or_default();
    format!("{algorithm} {}{curve}", key.bits())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(names: &[&str]) -> CertificateSummary {
        CertificateSummary {
            subject: String::new(),
            issuer: String::new(),
            names: names.iter().map(|n| n.to_string()).collect(),
            key: String::new(),
            not_before: 0,
            not_after: 10 * 86_400,
            server_auth: None,
            client_auth: None,
        }
    }

    #[test]
    fn names_match_addresses_hosts_and_wildcards() {
        let cert = summary(&["127.0.0.1", "localhost", "*.kms.example.com"]);
        assert!(cert.names_host("127.0.0.1"));
        assert!(cert.names_host("LOCALHOST"));
        assert!(cert.names_host("a.kms.example.com"));
        assert!(!cert.names_host("kms.example.com"));
        assert!(!cert.names_host("a.b.kms.example.com"));
        assert!(!cert.names_host("10.0.0.1"));
    }

    #[test]
    fn days_to_expiry_count_whole_days() {
        let cert = summary(&[]);
        assert_eq!(cert.days_to_expiry(0), 10);
        assert_eq!(cert.days_to_expiry(10 * 86_400 + 1), -1);
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
    }
}
