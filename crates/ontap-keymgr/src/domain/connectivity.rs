//! Key server connectivity, ONTAP's expensive `connectivity` field: measured by a real KMIP
//! round trip to the primary, falling back to its secondary key servers in order. The health
//! monitor (`health_monitor.rs`) re-checks every key server in the background; reads answer its
//! latest result, and check only a server not checked since it was added or changed.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::cluster::Node;
use super::error::{Error, Result};
use super::kmip_check::{self, NegotiatedTls};
use super::model::{CertificateId, CheckProblem, KeyManagerId, KeyServer, SharedCheck};
use super::service::Service;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connectivity {
    /// True when the server is available from every node.
    pub cluster_availability: bool,
    pub node_states: Vec<(Node, State)>,
    /// Why the server is not available, for the key manager's status.
    pub problem: Option<CheckProblem>,
    /// How the connection to the server (or the secondary that answered) was secured.
    pub tls: Option<NegotiatedTls>,
    /// When the check that found this was made, as ONTAP writes times (RFC 3339, UTC, to the
    /// second).
    pub check_time: Arc<str>,
}

/// What one check of a server found.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    pub(super) state: State,
    pub(super) problem: Option<CheckProblem>,
    tls: Option<NegotiatedTls>,
    /// Formatted once, when the check is made: answers show it many times.
    check_time: Arc<str>,
}

impl Probe {
    fn unknown(problem: Option<&Error>) -> Probe {
        Probe {
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
    pub(super) fn from_shared(check: SharedCheck) -> Option<Probe> {
        Some(Probe {
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

/// A key server, as the measurements name it.
type ServerKey = (KeyManagerId, String);

pub(super) fn server_key(key_manager: &KeyManagerId, server: &KeyServer) -> ServerKey {
    (key_manager.clone(), server.server.to_string())
}

/// When a check started, to tell whether what it measured still applies when it ends: a change
/// of the key manager's servers, or of the TLS offer, meanwhile makes it stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Epoch {
    all: u64,
    key_manager: u64,
}

/// A check, with the settings of the server it checked: a result applies only while the server
/// keeps them, whoever changed them (this instance, or another sharing the store).
struct Measured {
    settings: KeyServer,
    probe: Arc<Probe>,
}

#[derive(Default)]
struct Measurements {
    /// By key manager, then by server address: a key manager's servers are read under one lock
    /// and without building a key per server.
    latest: HashMap<KeyManagerId, HashMap<String, Measured>>,
    /// Bumped when everything is forgotten (the TLS offer changed).
    all_epoch: u64,
    /// Set from `epoch_counter` when a key manager's servers change; pruned to the live key
    /// managers. A key manager without an entry is at `epoch_floor`.
    key_manager_epochs: HashMap<KeyManagerId, u64>,
    /// Only grows, so that an epoch is never seen twice.
    epoch_counter: u64,
    /// The counter when the epochs were last pruned: a check that started before a prune is
    /// never taken for current, even for a key manager whose entry the prune removed.
    epoch_floor: u64,
    /// Held while requests check a key manager's unchecked servers, so that many requests
    /// arriving together make one check, not one each; pruned to the live key managers.
    checking: HashMap<KeyManagerId, Arc<tokio::sync::Mutex<()>>>,
}

impl Measurements {
    fn epoch(&self, key_manager: &KeyManagerId) -> Epoch {
        Epoch {
            all: self.all_epoch,
            key_manager: self
                .key_manager_epochs
                .get(key_manager)
                .copied()
                .unwrap_or(self.epoch_floor),
        }
    }
}

/// The latest check of each key server.
#[derive(Default)]
pub struct ConnectivityCache {
    measurements: Mutex<Measurements>,
    /// Bumped after every change of what is measured, once the change is visible: an answer
    /// that showed checks (their times) and was computed before is no longer current.
    checks: AtomicU64,
    /// Bumped after a change of some server's state or problem, the only parts of a check a
    /// key manager's `status` shows: checks that found the same again leave it as it was.
    states: AtomicU64,
}

/// How far what is measured has changed (see [`ConnectivityCache::versions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MeasuredVersions {
    pub(super) checks: u64,
    pub(super) states: u64,
}

impl ConnectivityCache {
    /// Held only to read or swap entries, never across an await: a poisoned lock's data is
    /// whole.
    fn lock(&self) -> MutexGuard<'_, Measurements> {
        self.measurements
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn epoch(&self, key_manager: &KeyManagerId) -> Epoch {
        self.lock().epoch(key_manager)
    }

    /// Read before an answer is computed: a change that becomes visible later bumps them.
    pub(super) fn versions(&self) -> MeasuredVersions {
        MeasuredVersions {
            checks: self.checks.load(Ordering::Acquire),
            states: self.states.load(Ordering::Acquire),
        }
    }

    /// Called after a change, never before it is visible: an answer computed from what was
    /// there before the change must not carry the versions that follow it.
    fn changed(&self, states: bool) {
        if states {
            self.states.fetch_add(1, Ordering::Release);
        }
        self.checks.fetch_add(1, Ordering::Release);
    }

    fn checking(&self, key_manager: &KeyManagerId) -> Arc<tokio::sync::Mutex<()>> {
        Arc::clone(self.lock().checking.entry(key_manager.clone()).or_default())
    }

    /// The latest check of each of a key manager's servers, in order: none for a server whose
    /// settings changed since.
    pub(super) fn latest(
        &self,
        key_manager: &KeyManagerId,
        servers: &[KeyServer],
    ) -> Vec<Option<Arc<Probe>>> {
        let measurements = self.lock();
        let known = measurements.latest.get(key_manager);
        servers
            .iter()
            .map(|s| {
                known
                    .and_then(|known| known.get(s.server.as_str()))
                    .filter(|measured| measured.settings == *s)
                    .map(|measured| Arc::clone(&measured.probe))
            })
            .collect()
    }

    /// Keeps `probe` of `server` unless the key manager changed since `epoch`. Answers the
    /// state it replaced, if any.
    pub(super) fn put(
        &self,
        key_manager: &KeyManagerId,
        server: &KeyServer,
        probe: Probe,
        epoch: Epoch,
    ) -> Option<State> {
        let mut measurements = self.lock();
        if measurements.epoch(key_manager) != epoch {
            return None;
        }
        let (state, problem) = (probe.state, probe.problem.clone());
        let measured = Measured {
            settings: server.clone(),
            probe: Arc::new(probe),
        };
        let previous = measurements
            .latest
            .entry(key_manager.clone())
            .or_default()
            .insert(server.server.to_string(), measured);
        drop(measurements);
        let same_state = previous.as_ref().is_some_and(|previous| {
            previous.settings == *server
                && previous.probe.state == state
                && previous.probe.problem == problem
        });
        self.changed(!same_state);
        previous.map(|previous| previous.probe.state)
    }

    /// Drops everything measured, after the TLS offer changed.
    pub fn forget_all(&self) {
        let mut measurements = self.lock();
        measurements.latest.clear();
        measurements.all_epoch = measurements.all_epoch.wrapping_add(1);
        drop(measurements);
        self.changed(true);
    }

    /// Drops what is known of a key manager's servers after they changed.
    pub fn forget(&self, key_manager: &KeyManagerId) {
        let mut measurements = self.lock();
        measurements.latest.remove(key_manager);
        measurements.epoch_counter += 1;
        let epoch = measurements.epoch_counter;
        measurements
            .key_manager_epochs
            .insert(key_manager.clone(), epoch);
        drop(measurements);
        self.changed(true);
    }

    /// Keeps only what concerns the servers configured now, so that deleted key managers and
    /// servers leave nothing behind.
    pub(super) fn retain(&self, configured: &HashSet<ServerKey>) {
        let key_managers: HashSet<&KeyManagerId> = configured.iter().map(|(km, _)| km).collect();
        let mut measurements = self.lock();
        let before: usize = measurements.latest.values().map(HashMap::len).sum();
        measurements.latest.retain(|km, servers| {
            servers.retain(|server, _| configured.contains(&(km.clone(), server.clone())));
            !servers.is_empty()
        });
        let removed = measurements
            .latest
            .values()
            .map(HashMap::len)
            .sum::<usize>()
            != before;
        measurements
            .key_manager_epochs
            .retain(|km, _| key_managers.contains(km));
        measurements.epoch_floor = measurements.epoch_counter;
        measurements
            .checking
            .retain(|km, _| key_managers.contains(km));
        drop(measurements);
        if removed {
            // A check made between the round's listing and now can be among them.
            self.changed(true);
        }
    }
}

impl Service {
    /// The connectivity of each server, in order: the latest check of each, and a check now of
    /// those never checked (concurrently).
    pub async fn connectivity(
        &self,
        key_manager: &KeyManagerId,
        servers: &[KeyServer],
    ) -> Result<Vec<Connectivity>> {
        Ok(self
            .latest_checks(key_manager, servers)
            .await?
            .iter()
            .map(|probe| self.per_node(probe))
            .collect())
    }

    /// The latest check of each server, in order, checking now those never checked.
    pub(super) async fn latest_checks(
        &self,
        key_manager: &KeyManagerId,
        servers: &[KeyServer],
    ) -> Result<Vec<Arc<Probe>>> {
        let mut measured = self.connectivity.latest(key_manager, servers);
        // One request checks; those arriving meanwhile wait for it, then read its result.
        let mut _turn = None;
        if measured.iter().any(Option::is_none) {
            _turn = Some(self.connectivity.checking(key_manager).lock_owned().await);
            measured = self.connectivity.latest(key_manager, servers);
        }
        if measured.iter().any(Option::is_none) {
            // Another instance sharing the store may have checked them.
            self.adopt_shared_checks(Some(key_manager), &HashSet::new())
                .await;
            measured = self.connectivity.latest(key_manager, servers);
        }
        let unchecked: Vec<KeyServer> = servers
            .iter()
            .zip(&measured)
            .filter(|(_, m)| m.is_none())
            .map(|(s, _)| s.clone())
            .collect();
        if !unchecked.is_empty() {
            let epoch = self.connectivity.epoch(key_manager);
            let (connector, certificates) = self.connector_of(key_manager).await?;
            let checked = probe_all(&connector, unchecked, &self.check_permits).await;
            self.share_checks(key_manager, certificates, &checked).await;
            for (server, probe) in checked {
                self.connectivity
                    .put(key_manager, &server, probe.clone(), epoch);
                if let Some(index) = servers.iter().position(|s| s.server == server.server) {
                    measured[index] = Some(Arc::new(probe));
                }
            }
        }
        Ok(measured
            .into_iter()
            .map(|m| m.unwrap_or_else(|| Arc::new(Probe::unknown(None))))
            .collect())
    }

    /// How the key manager reaches its servers, or why it cannot (its certificates are gone),
    /// and its certificates (the client's, then the server CAs).
    async fn connector_of(
        &self,
        key_manager: &KeyManagerId,
    ) -> Result<(
        std::result::Result<kmip::Connector, Error>,
        Vec<CertificateId>,
    )> {
        let external = self.external_key_manager(key_manager).await?;
        let connector = self
            .key_manager_connector(
                &external.client_certificate,
                &external.server_ca_certificates,
            )
            .await;
        let certificates = std::iter::once(external.client_certificate)
            .chain(external.server_ca_certificates)
            .collect();
        Ok((connector, certificates))
    }

    /// Shares checks with the other instances of a shared store (a store only this process
    /// uses keeps none). Losing them costs the others a check of their own: logged, not failed.
    pub(super) async fn share_checks(
        &self,
        key_manager: &KeyManagerId,
        certificates: Vec<CertificateId>,
        checked: &[(KeyServer, Probe)],
    ) {
        let checks = checked
            .iter()
            .map(|(server, probe)| (server.clone(), probe.shared(server)))
            .collect();
        if let Err(error) = self
            .store
            .share_checks(key_manager, &certificates, checks)
            .await
        {
            tracing::warn!(%error, "cannot share key server checks with the other instances");
        }
    }

    /// Takes what other instances checked of `key_manager`'s servers (of every key manager's
    /// but those in `skip` when none) into this instance's measurements, for the servers as
    /// configured now. Answers how many checks it took.
    pub(super) async fn adopt_shared_checks(
        &self,
        key_manager: Option<&KeyManagerId>,
        skip: &HashSet<KeyManagerId>,
    ) -> usize {
        let Ok(key_managers) = self.key_managers().await else {
            return 0;
        };
        // Taken before the checks are read: a change meanwhile makes them stale.
        let configured: HashMap<&KeyManagerId, (&[KeyServer], Epoch)> = key_managers
            .iter()
            .filter(|km| key_manager.is_none_or(|only| *only == km.uuid))
            .map(|km| (&km.uuid, (km.servers(), self.connectivity.epoch(&km.uuid))))
            .collect();
        let shared = match self.store.shared_checks(key_manager).await {
            Ok(shared) => shared,
            Err(error) => {
                tracing::warn!(%error, "cannot read the other instances' key server checks");
                return 0;
            }
        };
        let mut adopted = 0;
        for (uuid, check) in shared {
            let Some((servers, epoch)) = configured.get(&uuid).filter(|_| !skip.contains(&uuid))
            else {
                continue;
            };
            let Some(server) = servers.iter().find(|s| s.server.as_str() == check.server) else {
                continue;
            };
            if let Some(probe) = Probe::from_shared(check) {
                self.connectivity.put(&uuid, server, probe, *epoch);
                adopted += 1;
            }
        }
        adopted
    }

    /// The service is one host: every node sees the same state.
    fn per_node(&self, probe: &Probe) -> Connectivity {
        Connectivity {
            cluster_availability: probe.state == State::Available,
            node_states: self
                .cluster
                .nodes
                .iter()
                .map(|node| (node.clone(), probe.state))
                .collect(),
            problem: probe.problem.clone(),
            tls: probe.tls.clone(),
            check_time: Arc::clone(&probe.check_time),
        }
    }
}

/// Checks `servers`, at most as many at once as `permits` allows; with no connector, each is
/// `unknown` for the reason the connector could not be made.
pub(super) async fn probe_all(
    connector: &std::result::Result<kmip::Connector, Error>,
    servers: Vec<KeyServer>,
    permits: &Arc<Semaphore>,
) -> Vec<(KeyServer, Probe)> {
    let connector = match connector {
        Ok(connector) => connector,
        Err(error) => {
            return servers
                .into_iter()
                .map(|s| (s, Probe::unknown(Some(error))))
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
            let probe = probe(&connector, &server).await;
            (server, probe)
        });
    }
    let mut probes = Vec::new();
    while let Some(joined) = checks.join_next().await {
        if let Ok(result) = joined {
            probes.push(result);
        }
    }
    probes
}

/// The primary first, then each secondary on the primary's port, until one answers.
async fn probe(connector: &kmip::Connector, server: &KeyServer) -> Probe {
    let credential = kmip_check::credential_of(server);
    let mut candidates = vec![server.server.clone()];
    candidates.extend(
        server
            .secondary_key_servers
            .iter()
            .filter_map(|host| server.server.with_host(host).ok()),
    );
    let mut first_problem = None;
    for address in candidates {
        match kmip_check::check_one(connector, &address, credential.as_ref(), server.timeout).await
        {
            Ok(tls) => {
                return Probe {
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
    Probe {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::address::KeyServerAddress;
    use crate::domain::model::KeyServerTimeout;
    use std::time::{Duration, Instant};
    use test_support::fake::SilentListener;
    use test_support::pki::TestPki;

    /// A key manager's id and a server of it, for the cache's bookkeeping.
    fn key_manager_and_server() -> (KeyManagerId, KeyServer) {
        let server = KeyServer {
            server: KeyServerAddress::parse("ks1:5696").expect("address"),
            timeout: KeyServerTimeout::Seconds(5),
            username: None,
            password: None,
            secondary_key_servers: vec![],
        };
        (crate::domain::ids::Id::from_stored("km".to_owned()), server)
    }

    /// A check that started before its key manager changed is dropped, even when a monitor
    /// round pruned the key manager's epoch meanwhile.
    #[test]
    fn a_check_older_than_a_change_is_dropped_even_across_a_prune() {
        let cache = ConnectivityCache::default();
        let (km, server) = key_manager_and_server();
        let stale = cache.epoch(&km);
        cache.forget(&km);
        cache.retain(&HashSet::new());
        cache.put(&km, &server, Probe::unknown(None), stale);
        assert!(cache.latest(&km, std::slice::from_ref(&server))[0].is_none());

        let current = cache.epoch(&km);
        cache.put(&km, &server, Probe::unknown(None), current);
        assert!(cache.latest(&km, std::slice::from_ref(&server))[0].is_some());
    }

    /// Answers kept by the response cache rest on these: every check moves `checks`, only a
    /// change of state or problem moves `states`, and forgetting moves both.
    #[test]
    fn the_versions_move_with_what_answers_show() {
        let cache = ConnectivityCache::default();
        let (km, server) = key_manager_and_server();
        let moved = |before: MeasuredVersions| {
            let now = cache.versions();
            (now.checks != before.checks, now.states != before.states)
        };
        let before = cache.versions();
        cache.put(&km, &server, Probe::unknown(None), cache.epoch(&km));
        assert_eq!(moved(before), (true, true), "a first check");
        let before = cache.versions();
        cache.put(&km, &server, Probe::unknown(None), cache.epoch(&km));
        assert_eq!(moved(before), (true, false), "the same state again");
        let before = cache.versions();
        let problem = Error::NotFound { target: "uuid" };
        cache.put(
            &km,
            &server,
            Probe::unknown(Some(&problem)),
            cache.epoch(&km),
        );
        assert_eq!(moved(before), (true, true), "another problem");
        let before = cache.versions();
        let stale = cache.epoch(&km);
        cache.forget(&km);
        assert_eq!(moved(before), (true, true), "forgotten");
        let before = cache.versions();
        cache.put(&km, &server, Probe::unknown(None), stale);
        assert_eq!(moved(before), (false, false), "a stale check is not kept");
        cache.put(&km, &server, Probe::unknown(None), cache.epoch(&km));
        let before = cache.versions();
        cache.retain(&HashSet::new());
        assert_eq!(moved(before), (true, true), "pruned");
        let before = cache.versions();
        cache.forget_all();
        assert_eq!(moved(before), (true, true), "everything forgotten");
    }

    /// Another instance sharing the store changed the server: what was checked with the old
    /// settings no longer answers for it, though nothing here was told.
    #[test]
    fn a_check_applies_only_to_the_settings_it_checked() {
        let cache = ConnectivityCache::default();
        let (km, server) = key_manager_and_server();
        let server = KeyServer {
            username: Some("user".into()),
            password: Some(crate::domain::model::Secret::new("old")),
            ..server
        };
        cache.put(&km, &server, Probe::unknown(None), cache.epoch(&km));
        assert!(cache.latest(&km, std::slice::from_ref(&server))[0].is_some());
        let changed = KeyServer {
            password: Some(crate::domain::model::Secret::new("new")),
            ..server
        };
        assert!(cache.latest(&km, &[changed])[0].is_none());
    }

    /// Checks of servers that never answer each wait out their timeout (1 s), so with two
    /// permits four checks take two rounds of waiting: they never run more than two at once.
    #[tokio::test]
    async fn checks_never_exceed_their_permits() {
        let pki = TestPki::new();
        let connector = crate::domain::kmip_check::test_connector(&pki);
        let silent = SilentListener::start().await;
        let server = KeyServer {
            server: KeyServerAddress::parse(&silent.address.to_string()).expect("address"),
            timeout: KeyServerTimeout::Seconds(1),
            username: None,
            password: None,
            secondary_key_servers: vec![],
        };
        let started = Instant::now();
        let probes = probe_all(
            &Ok(connector),
            vec![server; 4],
            &Arc::new(Semaphore::new(2)),
        )
        .await;
        assert_eq!(probes.len(), 4);
        assert!(probes.iter().all(|(_, p)| p.state == State::NotResponding));
        assert!(
            started.elapsed() >= Duration::from_millis(1_900),
            "4 checks of 1 s with 2 permits ended after {:?}",
            started.elapsed()
        );
    }
}
