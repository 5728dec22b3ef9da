//! The KMIP check ONTAP makes before it accepts a key server, for real: mutual TLS with the key
//! manager's client certificate, trusting only its server CA certificates, then DiscoverVersions
//! (with the Username and Password credential when one is configured). Checks of several servers
//! run concurrently, each bounded by its own timeout.

use std::sync::Arc;
use std::time::Duration;

use kmip::{Connector, Credential, Failure, TlsIdentity, TlsOffer};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::address::KeyServerAddress;
use super::error::{CertificateRole, Error, Result};
use super::model::{Certificate, CheckProblem, KeyServer, KeyServerTimeout, SharedCheck};

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
pub async fn check_all_answer(connector: &Connector, servers: &[KeyServer]) -> Result<()> {
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

/// ONTAP's key server states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Available,
    NotResponding,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Available => "available",
            State::NotResponding => "not_responding",
            State::Unknown => "unknown",
        }
    }

    fn parse(text: &str) -> Option<State> {
        [State::Available, State::NotResponding, State::Unknown]
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// What one check of a server found.
#[derive(Debug, Clone)]
pub(super) struct Check {
    pub(super) state: State,
    pub(super) problem: Option<CheckProblem>,
    pub(super) tls: Option<NegotiatedTls>,
    /// Formatted once, when the check is made: answers show it many times.
    pub(super) check_time: Arc<str>,
}

impl Check {
    pub(super) fn unknown(problem: Option<&Error>) -> Check {
        Check {
            state: State::Unknown,
            problem: problem.map(problem_of),
            tls: None,
            check_time: now_rfc3339(),
        }
    }

    /// As instances sharing a store share it.
    pub(super) fn shared(&self, server: &KeyServer) -> SharedCheck {
        SharedCheck {
            server: server.server.to_string(),
            state: self.state.as_str().to_string(),
            problem: self.problem.clone(),
            tls: self
                .tls
                .as_ref()
                .map(|tls| (tls.version.clone(), tls.cipher_suite.clone())),
            check_time: self.check_time.to_string(),
        }
    }

    /// What another instance found; none for a state this program does not know.
    pub(super) fn from_shared(check: SharedCheck) -> Option<Check> {
        Some(Check {
            state: State::parse(&check.state)?,
            problem: check.problem,
            tls: check.tls.map(|(version, cipher_suite)| NegotiatedTls {
                version,
                cipher_suite,
            }),
            check_time: check.check_time.into(),
        })
    }
}

/// How ONTAP reports `error` as a key server's problem.
fn problem_of(error: &Error) -> CheckProblem {
    CheckProblem {
        code: error.code(),
        message: error.to_string(),
    }
}

/// Checks `servers`, at most as many at once as `permits` allows; with no connector, each is
/// `unknown` for the reason the connector could not be made.
pub(super) async fn check_servers(
    connector: &std::result::Result<kmip::Connector, Error>,
    servers: Vec<KeyServer>,
    permits: &Arc<Semaphore>,
) -> Vec<(KeyServer, Check)> {
    let connector = match connector {
        Ok(connector) => connector,
        Err(error) => {
            return servers
                .into_iter()
                .map(|s| (s, Check::unknown(Some(error))))
                .collect();
        }
    };
    let mut checks = JoinSet::new();
    for server in servers {
        let connector = connector.clone();
        let permits = Arc::clone(permits);
        checks.spawn(async move {
            // The semaphore is never closed; without a permit the check runs unbounded rather
            // than not at all.
            let _permit = permits.acquire_owned().await.ok();
            let check = check_server(&connector, &server).await;
            (server, check)
        });
    }
    let mut checks_done = Vec::new();
    while let Some(joined) = checks.join_next().await {
        if let Ok(result) = joined {
            checks_done.push(result);
        }
    }
    checks_done
}

/// The primary first, then each secondary on the primary's port, until one answers.
async fn check_server(connector: &kmip::Connector, server: &KeyServer) -> Check {
    let credential = credential_of(server);
    let mut candidates = vec![server.server.clone()];
    candidates.extend(
        server
            .secondary_key_servers
            .iter()
            .filter_map(|host| server.server.with_host(host).ok()),
    );
    let mut first_problem = None;
    for address in candidates {
        match check_one(connector, &address, credential.as_ref(), server.timeout).await {
            Ok(tls) => {
                return Check {
                    state: State::Available,
                    problem: None,
                    tls: Some(tls),
                    check_time: now_rfc3339(),
                };
            }
            Err(error) => {
                first_problem.get_or_insert(error);
            }
        }
    }
    Check {
        state: State::NotResponding,
        problem: first_problem.as_ref().map(problem_of),
        tls: None,
        check_time: now_rfc3339(),
    }
}

/// Now, as ONTAP writes times: RFC 3339 in UTC, to the second.
fn now_rfc3339() -> Arc<str> {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
        .into()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use test_support::fake::SilentListener;
    use test_support::pki::TestPki;
    use tokio::sync::Semaphore;

    /// Checks of servers that never answer each wait out their timeout (1 s), so with two
    /// permits four checks take two rounds of waiting: they never run more than two at once.
    #[tokio::test]
    async fn checks_never_exceed_their_permits() {
        let pki = TestPki::new();
        let connector = test_connector(&pki);
        let silent = SilentListener::start().await;
        let server = KeyServer {
            server: KeyServerAddress::parse(&silent.address.to_string()).expect("address"),
            timeout: KeyServerTimeout::Seconds(1),
            username: None,
            password: None,
            secondary_key_servers: vec![],
        };
        let started = Instant::now();
        let checks = check_servers(
            &Ok(connector),
            vec![server; 4],
            &Arc::new(Semaphore::new(2)),
        )
        .await;
        assert_eq!(checks.len(), 4);
        assert!(checks.iter().all(|(_, c)| c.state == State::NotResponding));
        assert!(
            started.elapsed() >= Duration::from_millis(1_900),
            "4 checks of 1 s with 2 permits ended after {:?}",
            started.elapsed()
        );
    }
}
