//! What a key server accepts, found the way TLS scanners find it: handshakes that offer one
//! version and a chosen set of suites, noting which suite the server picks. A handshake succeeds
//! or fails on the server's choice alone: the server's certificate is not checked here.

use std::pin::Pin;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_openssl::SslStream;

use crate::client::{Cause, connect, negotiated_suite, refuses_our_offer, resolve};
use crate::endpoint::Endpoint;
use crate::offer::{
    ONTAP_DEFAULT_CIPHER_SUITES, TlsOffer, TlsVersion, is_fips_approved, is_tls13_suite,
    openssl_name,
};
use crate::tls::Connector;

/// A version and a suite the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub version: TlsVersion,
    pub suite: String,
}

/// `TLS 1.2 with A, B; TLS 1.3 with C`.
pub fn describe(choices: &[Choice]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for version in TlsVersion::ALL {
        let suites: Vec<&str> = choices
            .iter()
            .filter(|c| c.version == version)
            .map(|c| c.suite.as_str())
            .collect();
        if !suites.is_empty() {
            parts.push(format!("{version} with {}", suites.join(", ")));
        }
    }
    parts.join("; ")
}

/// Suites beyond ONTAP's list that a misconfigured server may insist on, and that some OpenSSL
/// builds can still offer in a probe (never in a real connection): 3DES, and NULL encryption.
const LEGACY_SUITES: [&str; 8] = [
    "TLS_RSA_WITH_NULL_SHA256",
    "TLS_RSA_WITH_NULL_SHA",
    "TLS_ECDHE_RSA_WITH_NULL_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_AES_128_CCM_SHA256",
    "TLS_AES_128_CCM_8_SHA256",
];

/// When explaining a refusal, at most this many suites are looked for per version.
const PICKS_PER_VERSION: usize = 3;

/// Some of the versions and suites the server accepts, whatever we offer; within `within`.
pub(crate) async fn server_offer(
    connector: &Connector,
    endpoint: &Endpoint,
    within: Duration,
) -> Vec<Choice> {
    let deadline = Instant::now() + within;
    let mut found = Vec::new();
    for version in TlsVersion::ALL {
        let mut candidates = every_suite(version);
        for _ in 0..PICKS_PER_VERSION {
            let pick =
                tokio::time::timeout_at(deadline, pick(connector, endpoint, version, &candidates))
                    .await;
            let Ok(Pick::Chose(suite)) = pick else {
                break;
            };
            candidates.retain(|c| *c != suite);
            found.push(Choice { version, suite });
        }
    }
    found
}

fn every_suite(version: TlsVersion) -> Vec<String> {
    ONTAP_DEFAULT_CIPHER_SUITES
        .iter()
        .chain(LEGACY_SUITES.iter())
        .filter(|s| is_tls13_suite(s) == (version == TlsVersion::Tls1_3))
        .map(|s| s.to_string())
        .collect()
}

/// What one probing handshake found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The server chose this suite.
    Chose(String),
    /// The server refused every suite offered (or the version).
    Refused,
    /// This client cannot offer the suites (PSK and SRP suites need secrets we do not have, and
    /// some are not built into this OpenSSL).
    CannotOffer(String),
    /// The connection failed for another reason.
    Failed(String),
}

/// One handshake offering `version` with `suites` only.
pub(crate) async fn pick(
    connector: &Connector,
    endpoint: &Endpoint,
    version: TlsVersion,
    suites: &[String],
) -> Pick {
    let list: Vec<&str> = suites.iter().filter_map(|s| openssl_name(s)).collect();
    let list = list.join(":");
    let configured = connector.probe_ssl(&endpoint.host, |builder| {
        builder.set_min_proto_version(Some(version.openssl()))?;
        builder.set_max_proto_version(Some(version.openssl()))?;
        builder.set_security_level(0);
        match version {
            TlsVersion::Tls1_3 => builder.set_ciphersuites(&list),
            _ => builder.set_cipher_list(&list),
        }
    });
    let (ssl, _) = match configured {
        Ok(ssl) => ssl,
        Err(reason) => return Pick::CannotOffer(reason),
    };
    let server = endpoint.to_string();
    let tcp = match resolve(endpoint).await {
        Ok(addresses) => connect(&server, &addresses).await,
        Err(e) => Err(e),
    };
    let tcp = match tcp {
        Ok(tcp) => tcp,
        Err(e) => return Pick::Failed(e.detail),
    };
    let mut tls = match SslStream::new(ssl, tcp) {
        Ok(tls) => tls,
        Err(e) => return Pick::Failed(e.to_string()),
    };
    let result = Pin::new(&mut tls).connect().await;
    let suite = negotiated_suite(tls.ssl());
    match result {
        Ok(()) => {
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
            Pick::Chose(suite)
        }
        Err(e) => match Cause::of(&e) {
            Cause::Alert(alert) if refuses_our_offer(alert) => Pick::Refused,
            // The server chose a suite, then gave up for another reason (our certificate...).
            _ if !suite.is_empty() => Pick::Chose(suite),
            Cause::Other(reason) if reason.contains("no cipher") => Pick::CannotOffer(reason),
            Cause::Other(reason) if reason.contains("unsupported protocol") => Pick::Refused,
            Cause::Closed => Pick::Refused,
            other => Pick::Failed(format!("{other:?}")),
        },
    }
}

/// Whether the server accepts one suite of an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteVerdict {
    pub version: TlsVersion,
    pub suite: String,
    pub fips_approved: bool,
    pub outcome: Pick,
}

/// How many probing handshakes run at once.
const CONCURRENT_PROBES: usize = 8;

/// Tries every suite of `offer` alone, with each version it is offered with; each handshake
/// within `timeout`. In the offer's order, newest version first.
pub async fn scan_suites(
    connector: &Connector,
    endpoint: &Endpoint,
    offer: &TlsOffer,
    timeout: Duration,
) -> Vec<SuiteVerdict> {
    let mut wanted: Vec<(TlsVersion, String)> = Vec::new();
    for version in offer.enabled_versions() {
        for suite in offer.suites_for(version) {
            wanted.push((version, suite.to_string()));
        }
    }
    let mut verdicts = Vec::with_capacity(wanted.len());
    for chunk in wanted.chunks(CONCURRENT_PROBES) {
        let mut probes = JoinSet::new();
        for (index, (version, suite)) in chunk.iter().cloned().enumerate() {
            let connector = connector.clone();
            let endpoint = endpoint.clone();
            probes.spawn(async move {
                let outcome = tokio::time::timeout(
                    timeout,
                    pick(&connector, &endpoint, version, std::slice::from_ref(&suite)),
                )
                .await
                .unwrap_or_else(|_| Pick::Failed("no answer within the timeout".into()));
                (index, version, suite, outcome)
            });
        }
        let mut done: Vec<_> = probes.join_all().await;
        done.sort_by_key(|(index, ..)| *index);
        verdicts.extend(
            done.into_iter()
                .map(|(_, version, suite, outcome)| SuiteVerdict {
                    fips_approved: is_fips_approved(&suite),
                    version,
                    suite,
                    outcome,
                }),
        );
    }
    verdicts
}
