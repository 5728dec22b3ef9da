//! The KMIP check ONTAP makes before it accepts a key server, for real: mutual TLS with the key
//! manager's client certificate, trusting only its server CA certificates, then DiscoverVersions
//! (with the Username and Password credential when one is configured). Checks of several servers
//! run concurrently, each bounded by its own timeout.

use std::time::Duration;

use kmip::{Connector, Credential, Failure, TlsIdentity, TlsOffer};
use tokio::task::JoinSet;

use super::address::KeyServerAddress;
use super::error::{CertificateRole, Error, Result};
use super::model::{Certificate, KeyServer, KeyServerTimeout};

/// How a key manager connects to its key servers: its client certificate and key, its server
/// CAs, and the cluster's TLS offer; resuming TLS sessions for `resume` after each full
/// handshake, or never.
pub fn connector(
    client: &Certificate,
    server_cas: &[Certificate],
    offer: &TlsOffer,
    resume: Option<Duration>,
) -> Result<Connector> {
    let key = client
        .private_key
        .as_ref()
        .ok_or_else(|| Error::CertificateNotInstalled {
            role: CertificateRole::Client,
            uuid: client.uuid.to_string(),
        })?;
    let cas: Vec<&str> = server_cas
        .iter()
        .map(|c| c.public_certificate.as_str())
        .collect();
    let unusable = |e: kmip::IdentityError| {
        Error::Kmip(kmip::Error {
            server: "key manager".into(),
            failure: Failure::Tls,
            detail: e.to_string(),
            result: None,
        })
    };
    let identity =
        TlsIdentity::from_pem(&client.public_certificate, key.expose(), &cas).map_err(unusable)?;
    match resume {
        None => Connector::new(&identity, offer),
        Some(max_age) => Connector::resuming(&identity, offer, max_age),
    }
    .map_err(unusable)
}

/// The TLS version and suite a check negotiated with a key server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedTls {
    /// ONTAP's name: `TLSv1.2`.
    pub version: String,
    /// The IANA name.
    pub cipher_suite: String,
}

/// Asks one server which KMIP versions it speaks; answers how the connection was secured.
pub async fn check_one(
    connector: &Connector,
    address: &KeyServerAddress,
    credential: Option<&Credential>,
    timeout: KeyServerTimeout,
) -> Result<NegotiatedTls> {
    let mut session = connector
        .connect(address.endpoint(), timeout.check_duration())
        .await
        .map_err(Error::Kmip)?;
    let handshake = session.handshake();
    let negotiated = NegotiatedTls {
        version: handshake
            .version
            .map(|v| v.ontap_name().to_string())
            .unwrap_or_default(),
        cipher_suite: handshake.cipher_suite.clone(),
    };
    let versions = session.discover_versions(credential).await;
    session.close().await;
    versions.map(|_| negotiated).map_err(Error::Kmip)
}

/// Checks every server concurrently; the first failure in request order wins, so the answer
/// does not depend on which server was slowest.
pub async fn check_all(connector: &Connector, servers: &[KeyServer]) -> Result<()> {
    let mut checks = JoinSet::new();
    for (index, server) in servers.iter().enumerate() {
        let connector = connector.clone();
        let address = server.server.clone();
        let credential = credential_of(server);
        let timeout = server.timeout;
        checks.spawn(async move {
            let result = check_one(&connector, &address, credential.as_ref(), timeout).await;
            (index, result)
        });
    }
    let mut failures: Vec<(usize, Error)> = Vec::new();
    while let Some(joined) = checks.join_next().await {
        match joined {
            Ok((_, Ok(_))) => {}
            Ok((index, Err(error))) => failures.push((index, error)),
            Err(join_error) => failures.push((usize::MAX, Error::Internal(join_error.to_string()))),
        }
    }
    failures.sort_by_key(|(index, _)| *index);
    match failures.into_iter().next() {
        Some((_, error)) => Err(error),
        None => Ok(()),
    }
}

/// The KMIP credential of a server, when both username and password are set.
pub fn credential_of(server: &KeyServer) -> Option<Credential> {
    match (&server.username, &server.password) {
        (Some(username), Some(password)) => Some(Credential {
            username: username.clone(),
            password: password.expose().to_string(),
        }),
        _ => None,
    }
}

/// A connector with the test PKI's client certificate, trusting its CA, offering the default.
#[cfg(test)]
pub(crate) fn test_connector(pki: &test_support::pki::TestPki) -> Connector {
    let identity = TlsIdentity::from_pem(
        &pki.client.cert_pem,
        &pki.client.key_pem,
        &[pki.ca.cert_pem.as_str()],
    )
    .expect("identity");
    Connector::new(&identity, &TlsOffer::default()).expect("connector")
}
