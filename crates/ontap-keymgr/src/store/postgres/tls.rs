//! TLS to PostgreSQL, as libpq's `sslmode` means it, through `postgres-openssl` (the maintained
//! OpenSSL connector of tokio-postgres' author; OpenSSL is already the service's KMIP TLS):
//! `disable`; `require` (encrypted; verified like `verify-ca` when `sslrootcert` is given, as
//! libpq does); `verify-ca` (the server's certificate chains to `sslrootcert`, or to the system's
//! CAs); `verify-full` (and names the host). tokio-postgres reads only `disable`, `prefer` and
//! `require`, so `sslmode` and `sslrootcert` are taken out of the URL here. Without `sslmode`, a
//! loopback host or a Unix socket is reached in clear text and any other host with
//! `verify-full`: a database across a network is verified by default.

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::MakeTlsConnector;

use crate::store::{StoreError, StoreResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    Disable,
    Require,
    VerifyCa,
    VerifyFull,
}

/// A database URL with its TLS settings taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsSettings {
    /// The URL without `sslmode` and `sslrootcert`, for tokio-postgres.
    pub(super) url: String,
    pub(super) mode: SslMode,
    pub(super) root_cert: Option<String>,
}

fn invalid(detail: String) -> StoreError {
    StoreError::Backend(format!("invalid database URL: {detail}"))
}

fn mode_of(text: &str) -> StoreResult<SslMode> {
    match text {
        "disable" => Ok(SslMode::Disable),
        // libpq's `allow` and `prefer` fall back to clear text; the service does not.
        "allow" | "prefer" | "require" => Ok(SslMode::Require),
        "verify-ca" => Ok(SslMode::VerifyCa),
        "verify-full" => Ok(SslMode::VerifyFull),
        other => Err(invalid(format!(
            "sslmode \"{other}\" is not one of disable, require, verify-ca, verify-full"
        ))),
    }
}

/// Whether `host` is this machine (or a Unix socket's directory).
fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.is_empty()
        || host.starts_with('/')
        || host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Takes the TLS settings out of a URL (`postgres://...?sslmode=...`) or a key=value string.
pub(super) fn settings(url: &str) -> StoreResult<TlsSettings> {
    let (mut mode, mut root_cert, rest, host) = match url.split_once("://") {
        Some((scheme, after)) => {
            let (address, query) = after.split_once('?').unwrap_or((after, ""));
            let authority = address.split('/').next().unwrap_or_default();
            let host_port = authority.rsplit('@').next().unwrap_or_default();
            let host = match host_port.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default().to_string(),
                None => host_port.split(':').next().unwrap_or_default().to_string(),
            };
            let mut mode = None;
            let mut root_cert = None;
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("sslmode", value)) => mode = Some(mode_of(value)?),
                    Some(("sslrootcert", value)) => root_cert = Some(value.to_string()),
                    _ => kept.push(pair),
                }
            }
            let rest = match kept.is_empty() {
                true => format!("{scheme}://{address}"),
                false => format!("{scheme}://{address}?{}", kept.join("&")),
            };
            (mode, root_cert, rest, host)
        }
        None => {
            let mut mode = None;
            let mut root_cert = None;
            let mut host = String::new();
            let mut kept = Vec::new();
            for pair in url.split_whitespace() {
                match pair.split_once('=') {
                    Some(("sslmode", value)) => mode = Some(mode_of(value)?),
                    Some(("sslrootcert", value)) => root_cert = Some(value.to_string()),
                    Some(("host", value)) => {
                        host = value.to_string();
                        kept.push(pair);
                    }
                    _ => kept.push(pair),
                }
            }
            (mode, root_cert, kept.join(" "), host)
        }
    };
    let default = match is_local(&host) {
        true => SslMode::Disable,
        false => SslMode::VerifyFull,
    };
    // libpq: `require` with a root certificate verifies the chain, as `verify-ca`.
    if mode == Some(SslMode::Require) && root_cert.is_some() {
        mode = Some(SslMode::VerifyCa);
    }
    if mode == Some(SslMode::Disable) {
        root_cert = None;
    }
    Ok(TlsSettings {
        url: rest,
        mode: mode.unwrap_or(default),
        root_cert,
    })
}

/// The connector for these settings (unused when TLS is disabled).
pub(super) fn connector(settings: &TlsSettings) -> StoreResult<MakeTlsConnector> {
    let failed = |e: openssl::error::ErrorStack| {
        StoreError::Backend(format!("cannot prepare TLS to the database: {e}"))
    };
    let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(failed)?;
    match settings.mode {
        SslMode::Disable | SslMode::Require => builder.set_verify(SslVerifyMode::NONE),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            match &settings.root_cert {
                Some(path) => builder.set_ca_file(path).map_err(|e| {
                    StoreError::Backend(format!(
                        "cannot read the database's root certificate {path} (sslrootcert): {e}"
                    ))
                })?,
                None => builder.set_default_verify_paths().map_err(failed)?,
            }
            builder.set_verify(SslVerifyMode::PEER);
        }
    }
    let mut connector = MakeTlsConnector::new(builder.build());
    if settings.mode != SslMode::VerifyFull {
        connector.set_callback(|config, _| {
            config.set_verify_hostname(false);
            Ok(())
        });
    }
    Ok(connector)
}

/// tokio-postgres' mode for these settings.
pub(super) fn postgres_mode(mode: SslMode) -> tokio_postgres::config::SslMode {
    match mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        _ => tokio_postgres::config::SslMode::Require,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modes_and_their_defaults_are_libpqs_verified_across_networks() {
        let local = settings("postgres://u@127.0.0.1:5432/db").expect("url");
        assert_eq!(
            (local.mode, local.url.as_str()),
            (SslMode::Disable, "postgres://u@127.0.0.1:5432/db")
        );
        let remote = settings("postgres://u@db.example.com/db?application_name=x").expect("url");
        assert_eq!(remote.mode, SslMode::VerifyFull);
        assert_eq!(
            remote.url,
            "postgres://u@db.example.com/db?application_name=x"
        );
        let full = settings("postgres://u@[::1]:5/db?sslmode=verify-full&sslrootcert=/ca.pem")
            .expect("url");
        assert_eq!(
            (full.mode, full.root_cert.as_deref(), full.url.as_str()),
            (
                SslMode::VerifyFull,
                Some("/ca.pem"),
                "postgres://u@[::1]:5/db"
            )
        );
        let required =
            settings("postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem").expect("url");
        assert_eq!(
            required.mode,
            SslMode::VerifyCa,
            "libpq verifies with a root certificate"
        );
        let keys = settings("host=db.example.com user=u sslmode=verify-ca sslrootcert=/ca.pem")
            .expect("key=value");
        assert_eq!(
            (keys.mode, keys.url.as_str()),
            (SslMode::VerifyCa, "host=db.example.com user=u")
        );
        let socket = settings("host=/run/postgresql user=u").expect("socket");
        assert_eq!(socket.mode, SslMode::Disable);
        assert!(settings("postgres://u@h/db?sslmode=sometimes").is_err());
    }
}
