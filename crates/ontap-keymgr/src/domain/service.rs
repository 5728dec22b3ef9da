//! The entry point of the domain: one [`Service`] holds the store, the cluster and the caches,
//! and its methods (spread over this folder's files, one per kind of object) apply the rules.

use std::sync::Arc;

use super::store::Store;
use super::store::{internal, key_manager_read_error};

use super::cluster::Cluster;
use super::connectivity::ConnectivityCache;
use super::error::{CertificateRole, Error, Result};
use super::model::{
    Certificate, CertificateId, KeyManager, KeyManagerId, KeyManagerKind, KeyServer,
};

pub struct Service {
    pub(super) store: Arc<dyn Store>,
    pub(super) cluster: Cluster,
    pub(super) connectivity: ConnectivityCache,
    pub(super) credentials: super::users::CredentialCache,
    pub(super) login: super::login::LoginGuard,
    /// How many audit records are kept.
    pub(super) audit_retention: usize,
    /// The cluster's TLS offer to key servers (see `security.rs`).
    pub(super) tls_offer: std::sync::RwLock<kmip::TlsOffer>,
    /// Changes of the security and key manager configurations, one at a time.
    pub(super) security_writes: tokio::sync::Mutex<()>,
    /// `/api/security/key-manager-configs`.
    pub(super) key_manager_config: std::sync::RwLock<super::model::KeyManagerConfig>,
    pub(super) monitor: super::health_monitor::MonitorSettings,
    /// Wakes the health monitor when its interval changed.
    pub(super) monitor_changed: tokio::sync::Notify,
    /// Every KMIP check of the service, the monitor's and requests', shares these.
    pub(super) check_permits: Arc<tokio::sync::Semaphore>,
    /// This process, among the instances sharing a store (the health monitor's turns).
    pub(super) instance: String,
    /// The health monitor's connectors, kept across rounds to resume TLS sessions.
    pub(super) monitor_connectors: super::health_monitor::MonitorConnectors,
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        cluster: Cluster,
        lockout: super::login::LockoutPolicy,
    ) -> Service {
        Service {
            store,
            cluster,
            connectivity: ConnectivityCache::default(),
            credentials: Default::default(),
            login: super::login::LoginGuard::new(lockout),
            audit_retention: super::audit::DEFAULT_RETENTION,
            tls_offer: Default::default(),
            security_writes: Default::default(),
            key_manager_config: Default::default(),
            monitor: Default::default(),
            monitor_changed: Default::default(),
            check_permits: Arc::new(tokio::sync::Semaphore::new(
                super::health_monitor::MonitorSettings::default().max_concurrent_checks,
            )),
            instance: uuid::Uuid::new_v4().to_string(),
            monitor_connectors: Default::default(),
        }
    }

    /// How the health monitor runs.
    pub fn with_monitor(mut self, monitor: super::health_monitor::MonitorSettings) -> Service {
        self.check_permits = Arc::new(tokio::sync::Semaphore::new(
            monitor.max_concurrent_checks.max(1),
        ));
        self.monitor = monitor;
        self
    }

    /// Keeps at most `records` audit records (at least one).
    pub fn with_audit_retention(mut self, records: usize) -> Service {
        self.audit_retention = records.max(1);
        self
    }

    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Brings what this instance keeps in memory up to date with what was committed to the
    /// store, by any instance sharing it: called at the start of every request, before
    /// credentials are checked. Free with a store only this process writes.
    pub(super) async fn refresh(&self) -> Result<()> {
        let changes = self.store.refresh().await.map_err(internal)?;
        if changes.accounts {
            self.credentials.clear();
        }
        if changes.settings {
            let offer = self.tls_offer();
            self.load_security().await?;
            if self.tls_offer() != offer {
                self.connectivity.forget_all();
            }
            let config = self.key_manager_config();
            self.load_key_manager_config().await?;
            if self.key_manager_config() != config {
                self.monitor_changed.notify_one();
            }
        }
        Ok(())
    }

    /// A key manager, or 404 with target `uuid`.
    pub async fn key_manager(&self, uuid: &KeyManagerId) -> Result<KeyManager> {
        self.store
            .get_key_manager(uuid)
            .await
            .map_err(key_manager_read_error)?
            .ok_or(Error::NotFound { target: "uuid" })
    }

    /// An external key manager on which key server operations are allowed: it exists, it is
    /// external, and the cluster supports its scope. The checks ONTAP makes first.
    pub async fn external_key_manager(&self, uuid: &KeyManagerId) -> Result<ExternalKeyManager> {
        let key_manager = self
            .store
            .get_key_manager(uuid)
            .await
            .map_err(key_manager_read_error)?
            .ok_or(Error::NotFound { target: "uuid" })?;
        let KeyManagerKind::External {
            client_certificate,
            server_ca_certificates,
            servers,
        } = key_manager.kind.clone()
        else {
            return Err(Error::NotExternal(key_manager.uuid.to_string()));
        };
        self.cluster.check_multitenant(key_manager.svm.as_ref())?;
        Ok(ExternalKeyManager {
            key_manager,
            client_certificate,
            server_ca_certificates,
            servers,
        })
    }

    /// The KMIP check of `servers` with the key manager's certificates, which must still be
    /// installed: the one way a key server gets verified.
    pub(super) async fn check_servers(
        &self,
        client_uuid: &CertificateId,
        server_ca_uuids: &[CertificateId],
        servers: &[KeyServer],
    ) -> Result<()> {
        let connector = self
            .key_manager_connector(client_uuid, server_ca_uuids)
            .await?;
        super::kmip_check::check_all(&connector, servers).await
    }

    /// How the key manager with these certificates reaches its key servers, offering what the
    /// cluster's security configuration says.
    pub(super) async fn key_manager_connector(
        &self,
        client_uuid: &CertificateId,
        server_ca_uuids: &[CertificateId],
    ) -> Result<kmip::Connector> {
        let (client, cas) = self
            .installed_certificates(client_uuid, server_ca_uuids)
            .await?;
        super::kmip_check::connector(&client, &cas, &self.tls_offer(), None)
    }

    /// The key manager's certificates, which must still be installed (65536821).
    pub(super) async fn installed_certificates(
        &self,
        client_uuid: &CertificateId,
        server_ca_uuids: &[CertificateId],
    ) -> Result<(Certificate, Vec<Certificate>)> {
        let all = self.store.list_certificates().await.map_err(internal)?;
        let find = |uuid: &CertificateId, role| {
            all.iter()
                .find(|c| &c.uuid == uuid)
                .cloned()
                .ok_or_else(|| Error::CertificateNotInstalled {
                    role,
                    uuid: uuid.to_string(),
                })
        };
        let client = find(client_uuid, CertificateRole::Client)?;
        let cas = server_ca_uuids
            .iter()
            .map(|uuid| find(uuid, CertificateRole::ServerCa))
            .collect::<Result<Vec<_>>>()?;
        Ok((client, cas))
    }
}

/// An external key manager, unpacked.
pub struct ExternalKeyManager {
    pub key_manager: KeyManager,
    pub client_certificate: CertificateId,
    pub server_ca_certificates: Vec<CertificateId>,
    pub servers: Vec<KeyServer>,
}
