//! The connectivity part: ONTAP's expensive `connectivity` field, measured by a real KMIP round
//! trip to the primary, falling back to its secondary key servers in order (`kmip_check.rs`).
//! The health monitor (`health_monitor.rs`) checks every key server again in the background;
//! reads answer its latest check (`check_cache.rs`), and check only a server not checked since
//! it was added or changed. Instances sharing a store share their checks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use super::check_cache::{CheckCache, CheckVersions, Epoch};
use super::cluster::{Cluster, Node};
use super::error::{Error, Result};
use super::kmip_check::{Check, NegotiatedTls, State, check_servers};
use super::lookups::{external_connector, external_key_manager};
use super::model::{CertificateId, CheckProblem, KeyManagerId, KeyServer};
use super::monitor_connectors::MonitorConnectors;
use super::settings::Settings;
use super::store::{CheckStore, ObjectStore};

/// A key server's connectivity, as ONTAP shows the latest check of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConnectivity {
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

/// How the health monitor runs, from the service's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonitorSettings {
    /// Polls at this interval instead of `health_monitor_polling_interval` (tests, demos).
    pub interval: Option<Duration>,
    /// How many KMIP checks may run at once, the monitor's and requests' together.
    pub max_concurrent_checks: usize,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        MonitorSettings {
            interval: None,
            max_concurrent_checks: 32,
        }
    }
}

pub struct Connectivity {
    pub(super) store: Arc<dyn ObjectStore>,
    /// Where instances sharing a store share the monitor's turns and checks.
    pub(super) shared: Arc<dyn CheckStore>,
    pub(super) cluster: Arc<Cluster>,
    pub(super) settings: Arc<Settings>,
    pub(super) checks: CheckCache,
    /// Every KMIP check of the service, the monitor's and requests', shares these.
    pub(super) permits: Arc<Semaphore>,
    pub(super) monitor: MonitorSettings,
    /// Wakes the health monitor when its interval changed.
    pub(super) monitor_changed: Notify,
    /// This process, among the instances sharing a store (the health monitor's turns).
    pub(super) instance: String,
    /// The health monitor's connectors, kept across rounds to resume TLS sessions.
    pub(super) monitor_connectors: MonitorConnectors,
}

impl Connectivity {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        shared: Arc<dyn CheckStore>,
        cluster: Arc<Cluster>,
        settings: Arc<Settings>,
        monitor: MonitorSettings,
    ) -> Connectivity {
        Connectivity {
            store,
            shared,
            cluster,
            settings,
            checks: CheckCache::default(),
            permits: Arc::new(Semaphore::new(monitor.max_concurrent_checks.max(1))),
            monitor,
            monitor_changed: Notify::new(),
            instance: uuid::Uuid::new_v4().to_string(),
            monitor_connectors: MonitorConnectors::default(),
        }
    }

    /// How far the checks have changed, read before an answer that shows them is computed.
    pub(super) fn versions(&self) -> CheckVersions {
        self.checks.versions()
    }

    /// Drops what is known of a key manager's servers after they changed.
    pub fn forget(&self, key_manager: &KeyManagerId) {
        self.checks.forget(key_manager);
    }

    /// Drops every check, after the TLS offer changed: what was found with the old offer may
    /// no longer hold.
    pub fn forget_all(&self) {
        self.checks.forget_all();
    }

    /// Tells the health monitor its interval changed, so that it applies at once.
    pub fn wake_monitor(&self) {
        self.monitor_changed.notify_one();
    }

    /// The connectivity of each server, in order: the latest check of each, and a check now of
    /// those never checked (concurrently).
    pub async fn of(
        &self,
        key_manager: &KeyManagerId,
        servers: &[KeyServer],
    ) -> Result<Vec<ServerConnectivity>> {
        Ok(self
            .latest_checks(key_manager, servers)
            .await?
            .iter()
            .map(|check| self.per_node(check))
            .collect())
    }

    /// The latest check of each server, in order, checking now those never checked.
    pub(super) async fn latest_checks(
        &self,
        key_manager: &KeyManagerId,
        servers: &[KeyServer],
    ) -> Result<Vec<Arc<Check>>> {
        let mut latest = self.checks.latest(key_manager, servers);
        // One request checks; those arriving meanwhile wait for it, then read its result.
        let mut _turn = None;
        if latest.iter().any(Option::is_none) {
            _turn = Some(self.checks.checking(key_manager).lock_owned().await);
            latest = self.checks.latest(key_manager, servers);
        }
        if latest.iter().any(Option::is_none) {
            // Another instance sharing the store may have checked them.
            self.adopt_shared_checks(Some(key_manager), &HashSet::new())
                .await;
            latest = self.checks.latest(key_manager, servers);
        }
        let unchecked: Vec<KeyServer> = servers
            .iter()
            .zip(&latest)
            .filter(|(_, m)| m.is_none())
            .map(|(s, _)| s.clone())
            .collect();
        if !unchecked.is_empty() {
            let epoch = self.checks.epoch(key_manager);
            let (connector, certificates) = self.connector_of(key_manager).await?;
            let checked = check_servers(&connector, unchecked, &self.permits).await;
            self.share_checks(key_manager, certificates, &checked).await;
            for (server, check) in checked {
                self.checks.put(key_manager, &server, check.clone(), epoch);
                if let Some(index) = servers.iter().position(|s| s.server == server.server) {
                    latest[index] = Some(Arc::new(check));
                }
            }
        }
        Ok(latest
            .into_iter()
            .map(|m| m.unwrap_or_else(|| Arc::new(Check::unknown(None))))
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
        let external = external_key_manager(&*self.store, &self.cluster, key_manager).await?;
        let connector =
            external_connector(&*self.store, &self.settings.tls_offer(), &external).await;
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
        checked: &[(KeyServer, Check)],
    ) {
        let checks = checked
            .iter()
            .map(|(server, check)| (server.clone(), check.shared(server)))
            .collect();
        if let Err(error) = self
            .shared
            .share_checks(key_manager, &certificates, checks)
            .await
        {
            tracing::warn!(%error, "cannot share key server checks with the other instances");
        }
    }

    /// Takes what other instances checked of `key_manager`'s servers (of every key manager's
    /// but those in `skip` when none) into this instance's checks, for the servers as
    /// configured now. Answers how many checks it took.
    pub(super) async fn adopt_shared_checks(
        &self,
        key_manager: Option<&KeyManagerId>,
        skip: &HashSet<KeyManagerId>,
    ) -> usize {
        let Ok(key_managers) = self.store.list_key_managers().await else {
            return 0;
        };
        // Taken before the checks are read: a change meanwhile makes them stale.
        let configured: HashMap<&KeyManagerId, (&[KeyServer], Epoch)> = key_managers
            .iter()
            .filter(|km| key_manager.is_none_or(|only| *only == km.uuid))
            .map(|km| (&km.uuid, (km.servers(), self.checks.epoch(&km.uuid))))
            .collect();
        let shared = match self.shared.shared_checks(key_manager).await {
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
            if let Some(check) = Check::from_shared(check) {
                self.checks.put(&uuid, server, check, *epoch);
                adopted += 1;
            }
        }
        adopted
    }

    /// The service is one host: every node sees the same state.
    fn per_node(&self, check: &Check) -> ServerConnectivity {
        ServerConnectivity {
            cluster_availability: check.state == State::Available,
            node_states: self
                .cluster
                .nodes
                .iter()
                .map(|node| (node.clone(), check.state))
                .collect(),
            problem: check.problem.clone(),
            tls: check.tls.clone(),
            check_time: Arc::clone(&check.check_time),
        }
    }
}
