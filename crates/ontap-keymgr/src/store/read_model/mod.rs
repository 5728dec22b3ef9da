//! An in-memory read model in front of a store: the objects every request reads (key managers
//! with their key servers, certificates, SVMs) are answered from memory, and any write through
//! the model drops them, to be read again on next use.
//!
//! Why: reading a key manager from SQLite costs a hop to a blocking thread, the connection's
//! mutex and unsealing its secrets; profiled under load (docs/performance.md), the thread
//! hand-offs and wake-ups alone took about a third of the CPU. Reads outnumber writes by far,
//! so the model trades one reload after each write for reads that never leave the async worker.
//!
//! Correctness: every write of the process goes through the model, and other instances' writes
//! to a shared store are seen by [`Store::refresh`] at the start of each request. A read that loads from the
//! store keeps its result only when no write finished meanwhile (a generation counter, bumped
//! after each write), so a load that raced a commit can never leave stale data behind.
//! Secrets are held unsealed here as they are while a request uses them; they never leave the
//! process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    AccountStore, AuditStore, CheckStore, JobStore, KeyStore, ObjectStore, SettingsStore, Store,
    StoreResult, VolumeStore,
};
use crate::domain::model::{
    AuditRecord, AuthKey, Certificate, CertificateId, Job, KeyManager, KeyManagerConfig,
    KeyManagerId, KeyServer, SecuritySettings, SharedCheck, Svm, SvmId, User, Volume, VolumeId,
    VolumeKey,
};
use crate::domain::store::Changes;

/// The key managers in the store's order, and where each is.
struct KeyManagers {
    all: Arc<Vec<KeyManager>>,
    index: HashMap<KeyManagerId, usize>,
}

impl KeyManagers {
    fn new(all: Arc<Vec<KeyManager>>) -> KeyManagers {
        let index = all
            .iter()
            .enumerate()
            .map(|(position, km)| (km.uuid.clone(), position))
            .collect();
        KeyManagers { all, index }
    }

    fn get(&self, uuid: &KeyManagerId) -> Option<KeyManager> {
        self.index
            .get(uuid)
            .map(|&position| self.all[position].clone())
    }
}

#[derive(Default)]
struct Loaded {
    /// Bumped after every write: a load that started before it is not kept.
    generation: u64,
    key_managers: Option<Arc<KeyManagers>>,
    certificates: Option<Arc<Vec<Certificate>>>,
    svms: Option<Arc<Vec<Svm>>>,
}

/// A [`Store`] that answers the hot reads from memory and passes everything else through.
pub struct ReadModel {
    inner: Arc<dyn Store>,
    loaded: Mutex<Loaded>,
}

impl ReadModel {
    pub fn new(inner: Arc<dyn Store>) -> ReadModel {
        ReadModel {
            inner,
            loaded: Mutex::new(Loaded::default()),
        }
    }

    /// The lock is only ever held to copy an `Arc` or swap one in, never across an await or a
    /// panic-prone call, so a poisoned lock still holds consistent data.
    fn lock(&self) -> MutexGuard<'_, Loaded> {
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached value `slot` selects, or the store's, kept when no write finished meanwhile.
    async fn cached<T, Load, Fut>(
        &self,
        slot: fn(&mut Loaded) -> &mut Option<Arc<T>>,
        load: Load,
    ) -> StoreResult<Arc<T>>
    where
        Load: FnOnce() -> Fut,
        Fut: std::future::Future<Output = StoreResult<Arc<T>>>,
    {
        let generation = {
            let mut loaded = self.lock();
            if let Some(value) = slot(&mut loaded) {
                return Ok(Arc::clone(value));
            }
            loaded.generation
        };
        let value = load().await?;
        let mut loaded = self.lock();
        if loaded.generation == generation {
            *slot(&mut loaded) = Some(Arc::clone(&value));
        }
        Ok(value)
    }

    async fn key_managers(&self) -> StoreResult<Arc<KeyManagers>> {
        self.cached(
            |l| &mut l.key_managers,
            || async {
                Ok(Arc::new(KeyManagers::new(
                    self.inner.list_key_managers().await?,
                )))
            },
        )
        .await
    }

    /// Runs a write and forgets everything cached, whether it succeeded or not (a failed
    /// commit may still have changed what a retry reads).
    async fn write<T>(
        &self,
        write: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let result = write.await;
        self.forget();
        result
    }

    /// Drops everything cached; loads under way are not kept.
    fn forget(&self) {
        let mut loaded = self.lock();
        *loaded = Loaded {
            generation: loaded.generation.wrapping_add(1),
            ..Loaded::default()
        };
    }
}

#[async_trait]
impl ObjectStore for ReadModel {
    /// The generation: bumped after each write has finished and after another instance's
    /// commits were seen, each time together with dropping what was loaded before.
    fn objects_version(&self) -> Option<u64> {
        Some(self.lock().generation)
    }

    async fn list_svms(&self) -> StoreResult<Vec<Svm>> {
        let svms = self
            .cached(
                |l| &mut l.svms,
                || async { self.inner.list_svms().await.map(Arc::new) },
            )
            .await?;
        Ok(svms.as_ref().clone())
    }

    async fn insert_svm(&self, svm: Svm) -> StoreResult<()> {
        self.write(self.inner.insert_svm(svm)).await
    }

    async fn delete_svm(&self, uuid: &SvmId) -> StoreResult<()> {
        self.write(self.inner.delete_svm(uuid)).await
    }

    async fn list_certificates(&self) -> StoreResult<Arc<Vec<Certificate>>> {
        let certificates = self
            .cached(|l| &mut l.certificates, || self.inner.list_certificates())
            .await?;
        Ok(certificates)
    }

    async fn insert_certificate(&self, certificate: Certificate) -> StoreResult<()> {
        self.write(self.inner.insert_certificate(certificate)).await
    }

    async fn delete_certificate(&self, uuid: &CertificateId) -> StoreResult<()> {
        self.write(self.inner.delete_certificate(uuid)).await
    }

    async fn list_key_managers(&self) -> StoreResult<Arc<Vec<KeyManager>>> {
        Ok(Arc::clone(&self.key_managers().await?.all))
    }

    async fn get_key_manager(&self, uuid: &KeyManagerId) -> StoreResult<Option<KeyManager>> {
        Ok(self.key_managers().await?.get(uuid))
    }

    async fn insert_key_manager(&self, key_manager: KeyManager) -> StoreResult<()> {
        self.write(self.inner.insert_key_manager(key_manager)).await
    }

    async fn update_key_manager(&self, key_manager: KeyManager) -> StoreResult<()> {
        self.write(self.inner.update_key_manager(key_manager)).await
    }

    async fn delete_key_manager(&self, uuid: &KeyManagerId) -> StoreResult<()> {
        self.write(self.inner.delete_key_manager(uuid)).await
    }

    async fn add_key_servers(
        &self,
        key_manager: &KeyManagerId,
        servers: Vec<KeyServer>,
    ) -> StoreResult<()> {
        self.write(self.inner.add_key_servers(key_manager, servers))
            .await
    }

    async fn update_key_server(
        &self,
        key_manager: &KeyManagerId,
        server: KeyServer,
    ) -> StoreResult<()> {
        self.write(self.inner.update_key_server(key_manager, server))
            .await
    }

    async fn delete_key_server(&self, key_manager: &KeyManagerId, server: &str) -> StoreResult<()> {
        self.write(self.inner.delete_key_server(key_manager, server))
            .await
    }
}

/// Keys are read rarely and never polled: not cached, but a write still ends what was loaded
/// before it (a key manager with keys cannot be deleted).
#[async_trait]
impl KeyStore for ReadModel {
    async fn list_auth_keys(&self, key_manager: &KeyManagerId) -> StoreResult<Vec<AuthKey>> {
        self.inner.list_auth_keys(key_manager).await
    }

    async fn insert_auth_key(&self, key: AuthKey) -> StoreResult<()> {
        self.write(self.inner.insert_auth_key(key)).await
    }

    async fn delete_auth_key(&self, key_manager: &KeyManagerId, key_id: &str) -> StoreResult<()> {
        self.write(self.inner.delete_auth_key(key_manager, key_id))
            .await
    }
}

/// Volumes are not objects the read model keeps: passed through.
#[async_trait]
impl VolumeStore for ReadModel {
    async fn list_volumes(&self) -> StoreResult<Vec<Volume>> {
        self.inner.list_volumes().await
    }

    async fn insert_volume(&self, volume: Volume) -> StoreResult<()> {
        self.inner.insert_volume(volume).await
    }

    async fn delete_volume(&self, uuid: &VolumeId) -> StoreResult<()> {
        self.inner.delete_volume(uuid).await
    }

    async fn update_volume_key(&self, uuid: &VolumeId, key: VolumeKey) -> StoreResult<()> {
        self.inner.update_volume_key(uuid, key).await
    }
}

/// Jobs are not objects the read model keeps: passed through.
#[async_trait]
impl JobStore for ReadModel {
    async fn save_job(&self, job: Job) -> StoreResult<()> {
        self.inner.save_job(job).await
    }

    async fn list_jobs(&self) -> StoreResult<Vec<Job>> {
        self.inner.list_jobs().await
    }

    async fn fail_unfinished_jobs(
        &self,
        stale_before: i64,
        message: &str,
        code: u64,
        now: i64,
    ) -> StoreResult<usize> {
        self.inner
            .fail_unfinished_jobs(stale_before, message, code, now)
            .await
    }

    async fn prune_jobs(&self, ended_before: i64, keep: usize) -> StoreResult<()> {
        self.inner.prune_jobs(ended_before, keep).await
    }
}

#[async_trait]
impl AccountStore for ReadModel {
    async fn count_users(&self) -> StoreResult<usize> {
        self.inner.count_users().await
    }

    async fn insert_user(&self, user: User) -> StoreResult<()> {
        self.inner.insert_user(user).await
    }

    async fn find_user(&self, name: &str) -> StoreResult<Option<User>> {
        self.inner.find_user(name).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.inner.list_users().await
    }

    async fn delete_user(&self, name: &str) -> StoreResult<()> {
        self.inner.delete_user(name).await
    }

    async fn record_failed_login(
        &self,
        name: &str,
        max_attempts: u32,
        lockout_seconds: i64,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        self.inner
            .record_failed_login(name, max_attempts, lockout_seconds, now)
            .await
    }

    async fn set_password_hash(&self, name: &str, hash: &str) -> StoreResult<()> {
        self.inner.set_password_hash(name, hash).await
    }

    async fn clear_failed_logins(&self, name: &str) -> StoreResult<()> {
        self.inner.clear_failed_logins(name).await
    }
}

#[async_trait]
impl SettingsStore for ReadModel {
    async fn load_security(&self) -> StoreResult<Option<SecuritySettings>> {
        self.inner.load_security().await
    }

    async fn save_security(&self, settings: SecuritySettings) -> StoreResult<()> {
        self.inner.save_security(settings).await
    }

    async fn load_key_manager_config(&self) -> StoreResult<Option<KeyManagerConfig>> {
        self.inner.load_key_manager_config().await
    }

    async fn save_key_manager_config(&self, config: KeyManagerConfig) -> StoreResult<()> {
        self.inner.save_key_manager_config(config).await
    }
}

#[async_trait]
impl CheckStore for ReadModel {
    async fn take_monitor_turn(
        &self,
        key_manager: &KeyManagerId,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        self.inner
            .take_monitor_turn(key_manager, holder, now, until)
            .await
    }

    async fn share_checks(
        &self,
        key_manager: &KeyManagerId,
        certificates: &[CertificateId],
        checks: Vec<(KeyServer, SharedCheck)>,
    ) -> StoreResult<()> {
        self.inner
            .share_checks(key_manager, certificates, checks)
            .await
    }

    async fn shared_checks(
        &self,
        key_manager: Option<&KeyManagerId>,
    ) -> StoreResult<Vec<(KeyManagerId, SharedCheck)>> {
        self.inner.shared_checks(key_manager).await
    }
}

#[async_trait]
impl AuditStore for ReadModel {
    async fn append_audit(&self, record: AuditRecord, keep: usize) -> StoreResult<()> {
        self.inner.append_audit(record, keep).await
    }

    async fn list_audit_after(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        self.inner.list_audit_after(after, limit).await
    }
}

#[async_trait]
impl Store for ReadModel {
    /// Another instance's commit drops what is cached, as this instance's own writes do.
    async fn refresh(&self) -> StoreResult<Changes> {
        let changes = self.inner.refresh().await?;
        if changes.data {
            self.forget();
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests;
