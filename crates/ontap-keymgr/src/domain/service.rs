//! The domain's composition root: the [`Service`] builds the parts — accounts, settings,
//! connectivity (with the health monitor), the catalogue, keys and the audit trail — each owning its
//! state, and holds the few operations that span parts: bringing every part up to date with
//! what other instances committed, logging in after that, and the settings changes that make
//! connectivity forget or wake the monitor.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use super::accounts::Accounts;
use super::audit::AuditTrail;
use super::catalogue::Catalogue;
use super::cluster::Cluster;
use super::connectivity::{Connectivity, MonitorSettings};
use super::error::Result;
use super::jobs::{Jobs, Outcome};
use super::keys::{Keys, RestoreFilter};
use super::login::{LockoutPolicy, LoginFailure, LoginRefusal};
use super::model::{Job, KeyManagerConfig, KeyManagerId, Role, VolumeId};
use super::security::SecurityChanges;
use super::settings::{KeyManagerConfigChanges, Settings};
use super::store::{Store, internal};
use super::svms::SvmSelector;
use super::versions::Versions;
use super::volumes::{NewVolume, Volumes};

/// How the service is built, from its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceOptions {
    pub lockout: LockoutPolicy,
    pub monitor: MonitorSettings,
    /// How many audit records are kept.
    pub audit_retention: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            lockout: LockoutPolicy::default(),
            monitor: MonitorSettings::default(),
            audit_retention: super::audit::DEFAULT_RETENTION,
        }
    }
}

pub struct Service {
    store: Arc<dyn Store>,
    pub cluster: Arc<Cluster>,
    pub accounts: Accounts,
    pub settings: Arc<Settings>,
    pub connectivity: Arc<Connectivity>,
    pub catalogue: Catalogue,
    pub keys: Arc<Keys>,
    pub jobs: Jobs,
    pub volumes: Arc<Volumes>,
    pub audit: AuditTrail,
}

impl Service {
    /// The parts over `store`, with ONTAP's default settings until [`Service::load`] reads the
    /// stored ones.
    pub fn new(store: Arc<dyn Store>, cluster: Cluster, options: ServiceOptions) -> Service {
        let cluster = Arc::new(cluster);
        let settings = Arc::new(Settings::new(
            Arc::clone(&store) as _,
            Arc::clone(&store) as _,
            Arc::clone(&cluster),
        ));
        let connectivity = Arc::new(Connectivity::new(
            Arc::clone(&store) as _,
            Arc::clone(&store) as _,
            Arc::clone(&cluster),
            Arc::clone(&settings),
            options.monitor,
        ));
        Service {
            accounts: Accounts::new(Arc::clone(&store) as _, options.lockout),
            catalogue: Catalogue::new(
                Arc::clone(&store) as _,
                Arc::clone(&cluster),
                Arc::clone(&settings),
                Arc::clone(&connectivity),
            ),
            keys: Arc::new(Keys::new(
                Arc::clone(&store) as _,
                Arc::clone(&store) as _,
                Arc::clone(&store) as _,
                Arc::clone(&cluster),
                Arc::clone(&settings),
            )),
            jobs: Jobs::new(Arc::clone(&store) as _),
            volumes: Arc::new(Volumes::new(
                Arc::clone(&store) as _,
                Arc::clone(&store) as _,
                Arc::clone(&cluster),
                Arc::clone(&settings),
            )),
            audit: AuditTrail::new(Arc::clone(&store) as _, options.audit_retention),
            settings,
            connectivity,
            cluster,
            store,
        }
    }

    /// Reads the stored settings, at start.
    pub async fn load(&self) -> Result<()> {
        self.settings.reload().await.map(|_| ())
    }

    /// Brings what this instance keeps in memory up to date with what was committed to the
    /// store, by any instance sharing it: called at the start of every request, before
    /// credentials are checked, and of every monitor round. Free with a store only this
    /// process writes.
    pub async fn refresh(&self) -> Result<()> {
        let changes = self.store.refresh().await.map_err(internal)?;
        if changes.accounts {
            self.accounts.forget_verified();
        }
        if changes.settings {
            let reloaded = self.settings.reload().await?;
            if reloaded.tls_offer {
                self.connectivity.forget_all();
            }
            if reloaded.key_manager_config {
                self.connectivity.wake_monitor();
            }
        }
        Ok(())
    }

    /// The role of a user whose password is right, once this instance is up to date (see
    /// `Accounts::authenticate`).
    pub async fn authenticate(
        &self,
        name: &str,
        password: &str,
        address: Option<IpAddr>,
    ) -> std::result::Result<Role, LoginFailure> {
        self.refresh().await.map_err(|error| LoginFailure {
            error,
            refusal: LoginRefusal::Busy,
        })?;
        self.accounts.authenticate(name, password, address).await
    }

    /// Changes the security configuration; checks made with the old TLS offer are forgotten.
    pub async fn modify_security(&self, changes: SecurityChanges) -> Result<kmip::TlsOffer> {
        let offer = self.settings.modify_security(changes).await?;
        self.connectivity.forget_all();
        Ok(offer)
    }

    /// Changes the key manager configuration; a new polling interval applies at once.
    pub async fn modify_key_manager_config(
        &self,
        changes: KeyManagerConfigChanges,
    ) -> Result<KeyManagerConfig> {
        let config = self.settings.modify_key_manager_config(changes).await?;
        self.connectivity.wake_monitor();
        Ok(config)
    }

    /// Removes a key server, unless it holds the only copy of a key the key manager still
    /// needs (65536700), as ONTAP refuses.
    pub async fn remove_key_server(&self, key_manager: &KeyManagerId, server: &str) -> Result<()> {
        let keys = self.keys.keys_only_on(key_manager, server).await?;
        if keys > 0 {
            return Err(super::error::Error::KeysOnlyOnServer {
                server: server.to_string(),
                keys,
            });
        }
        self.catalogue.remove_key_server(key_manager, server).await
    }

    /// Restores a key manager's keys from its key servers, as a job (after the checks that
    /// need no key server).
    pub async fn restore_keys(
        &self,
        key_manager: &KeyManagerId,
        filter: RestoreFilter,
    ) -> Result<(Job, Outcome)> {
        self.keys.check_restore(key_manager, &filter).await?;
        let keys = Arc::clone(&self.keys);
        let key_manager = key_manager.clone();
        let description = format!("Restore the keys of key manager {key_manager}");
        self.jobs
            .start(&description, async move {
                keys.restore(&key_manager, filter).await
            })
            .await
    }

    /// Creates a volume as a job (after the checks that need no key server): answers the
    /// volume's uuid with the job.
    pub async fn create_volume(
        &self,
        name: String,
        svm: &SvmSelector,
        size: Option<i64>,
        encrypted: bool,
    ) -> Result<(VolumeId, Job, Outcome)> {
        let svm = self.catalogue.resolve_svm(svm).await?;
        let new = NewVolume {
            name,
            svm,
            size,
            encrypted,
        };
        self.volumes.check_new(&new).await?;
        let uuid = VolumeId::new_random();
        let volumes = Arc::clone(&self.volumes);
        let description = format!("Create volume {}", new.name);
        let created = uuid.clone();
        let (job, outcome) = self
            .jobs
            .start(&description, async move {
                let volume = volumes.create(new, created).await?;
                Ok(format!("Volume {} created.", volume.name))
            })
            .await?;
        Ok((uuid, job, outcome))
    }

    /// Deletes a volume (and destroys its key) as a job.
    pub async fn delete_volume(&self, uuid: &VolumeId) -> Result<(Job, Outcome)> {
        let volume = self.volumes.volume(uuid).await?;
        let volumes = Arc::clone(&self.volumes);
        let uuid = uuid.clone();
        let description = format!("Delete volume {}", volume.name);
        self.jobs
            .start(&description, async move {
                volumes.delete(&uuid).await?;
                Ok(format!("Volume {} deleted.", volume.name))
            })
            .await
    }

    /// Migrates an SVM's keys between the cluster's key manager and the SVM's, as a job (after
    /// the checks that need no key server).
    pub async fn migrate_keys(
        &self,
        source: &KeyManagerId,
        destination: &KeyManagerId,
    ) -> Result<(Job, Outcome)> {
        let svm = self.volumes.check_migrate(source, destination).await?;
        let volumes = Arc::clone(&self.volumes);
        let (source, destination) = (source.clone(), destination.clone());
        let description = format!(
            "Migrate the keys of SVM {} to key manager {destination}",
            svm.name
        );
        self.jobs
            .start(&description, async move {
                volumes.migrate(&source, &destination).await
            })
            .await
    }

    /// Runs the health monitor until `shutdown` resolves, each round after a refresh.
    pub async fn run_health_monitor(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        let refresh = || self.refresh();
        Arc::clone(&self.connectivity)
            .run_health_monitor(refresh, shutdown)
            .await;
    }

    /// The versions now, to be read before an answer is computed; `None` when the store keeps
    /// no version of its objects, and no answer can be told current.
    pub fn versions(&self) -> Option<Versions> {
        Some(Versions::new(
            self.store.objects_version()?,
            self.connectivity.versions(),
        ))
    }
}
