//! The store port: what the domain needs from persistence, the one rule a store must enforce
//! inside its transactions (at most [`MAX_PRIMARY_KEY_SERVERS`] key servers per key manager), and
//! the one place where a store's failures become ONTAP errors ([`StoreFailure`]). `crate::store`
//! implements it; the domain never looks there.

use std::sync::Arc;

use async_trait::async_trait;

use super::error::Error;

use super::model::{
    AuditRecord, AuthKey, Certificate, CertificateId, Job, KeyManager, KeyManagerConfig,
    KeyManagerId, KeyServer, SecuritySettings, SharedCheck, Svm, SvmId, User, Volume, VolumeId,
    VolumeKey,
};

/// ONTAP allows at most this many primary key servers per key manager.
pub const MAX_PRIMARY_KEY_SERVERS: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The object to change does not exist.
    #[error("not found")]
    NotFound,
    /// A unique value is taken: an SVM name, a certificate name within its scope, the key
    /// manager of an SVM (or of the cluster).
    #[error("{0} already exists")]
    Conflict(String),
    /// Adding the key servers would exceed [`MAX_PRIMARY_KEY_SERVERS`].
    #[error("the key manager already has {existing} key servers")]
    KeyServerLimit { existing: usize },
    /// A key server of this address is already configured on the key manager.
    #[error("key server {0} already exists")]
    KeyServerExists(String),
    /// A stored value cannot be read back: a secret that does not decrypt (a wrong key file, or
    /// altered data) or a row the code cannot parse.
    #[error("unreadable stored data: {0}")]
    Unreadable(String),
    /// The disk holding the database is full: writes fail until space is freed.
    #[error("the disk holding the database is full: {0}")]
    Full(String),
    /// The database cannot be reached (down, restarting, unreachable) within a bounded time:
    /// nothing was changed, and a retry may succeed.
    #[error("the database is unreachable: {0}")]
    Unavailable(String),
    /// The database failed (I/O, a lock held too long).
    #[error("storage failure: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What was committed to a shared store since this process last asked, by itself or by other
/// instances: what this process keeps in memory of it is to be read again.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    /// Configuration objects (SVMs, certificates, key managers).
    pub data: bool,
    /// Users' passwords, roles, existence or locks.
    pub accounts: bool,
    /// The security and key manager configurations.
    pub settings: bool,
}

/// Everything the service persists, one port per part it serves: the catalogue's objects, the
/// accounts, the settings, the health monitor's shared checks and the audit trail. Every method
/// is one transaction: a write is acknowledged only once it is durable. A write made while a
/// request's audit record is pending (`super::audit::pending`) appends that record in its
/// transaction, and says so (`super::audit::recorded`) once committed.
///
/// No method has a default: a store, or a layer in front of one (the read model), that forgot
/// one would otherwise do nothing, silently.
#[async_trait]
pub trait Store:
    ObjectStore
    + KeyStore
    + VolumeStore
    + JobStore
    + AccountStore
    + SettingsStore
    + CheckStore
    + AuditStore
{
    /// Called at the start of each request. A store only this process writes (SQLite) knows of
    /// every change already, and answers none without any I/O.
    async fn refresh(&self) -> StoreResult<Changes>;
}

/// The catalogue's objects: SVMs, certificates, key managers and their key servers.
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// A number that changes after every change of the configuration objects (SVMs,
    /// certificates, key managers and their servers) becomes visible to this process's reads,
    /// or `None` when the store does not keep one: answers computed from those objects are then
    /// never served again.
    fn objects_version(&self) -> Option<u64>;

    // SVMs: names are unique.
    async fn list_svms(&self) -> StoreResult<Vec<Svm>>;
    async fn insert_svm(&self, svm: Svm) -> StoreResult<()>;
    /// Fails with `Conflict` when a certificate or key manager still belongs to the SVM.
    async fn delete_svm(&self, uuid: &SvmId) -> StoreResult<()>;

    // Certificates: names are unique within their SVM (or the cluster scope).
    /// Shared, not copied: a listing of thousands of certificates (PEMs included) is read by
    /// every key manager listing.
    async fn list_certificates(&self) -> StoreResult<Arc<Vec<Certificate>>>;
    async fn insert_certificate(&self, certificate: Certificate) -> StoreResult<()>;
    /// Fails with `Conflict` when a key manager uses the certificate.
    async fn delete_certificate(&self, uuid: &CertificateId) -> StoreResult<()>;

    // Key managers: at most one per SVM, and one for the cluster (svm = None).
    async fn list_key_managers(&self) -> StoreResult<Arc<Vec<KeyManager>>>;
    async fn get_key_manager(&self, uuid: &KeyManagerId) -> StoreResult<Option<KeyManager>>;
    /// Inserts the key manager with its key servers, if any.
    async fn insert_key_manager(&self, key_manager: KeyManager) -> StoreResult<()>;
    /// Replaces the key manager's own settings (certificates, passphrase); its key servers are
    /// left as they are.
    async fn update_key_manager(&self, key_manager: KeyManager) -> StoreResult<()>;
    async fn delete_key_manager(&self, uuid: &KeyManagerId) -> StoreResult<()>;

    // Key servers of external key managers.
    /// Adds all the servers or none, in one transaction that re-checks the limit and the
    /// duplicates, so that concurrent requests can never exceed them.
    async fn add_key_servers(
        &self,
        key_manager: &KeyManagerId,
        servers: Vec<KeyServer>,
    ) -> StoreResult<()>;
    /// Replaces the stored settings of the server with the same address.
    async fn update_key_server(
        &self,
        key_manager: &KeyManagerId,
        server: KeyServer,
    ) -> StoreResult<()>;
    async fn delete_key_server(&self, key_manager: &KeyManagerId, server: &str) -> StoreResult<()>;
}

/// The records of the keys key managers hold (the keys live on the key servers).
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// A key manager's authentication keys, oldest first.
    async fn list_auth_keys(&self, key_manager: &KeyManagerId) -> StoreResult<Vec<AuthKey>>;
    /// Fails with `Conflict` when the key id is taken, `NotFound` without the key manager.
    async fn insert_auth_key(&self, key: AuthKey) -> StoreResult<()>;
    async fn delete_auth_key(&self, key_manager: &KeyManagerId, key_id: &str) -> StoreResult<()>;
}

/// Volumes and their keys' records: a volume holds its SVM and the key manager of its key.
#[async_trait]
pub trait VolumeStore: Send + Sync + 'static {
    /// Every volume, by SVM name then name.
    async fn list_volumes(&self) -> StoreResult<Vec<Volume>>;
    /// `Conflict` when its SVM has a volume of that name, `NotFound` without its SVM (or its
    /// key's key manager).
    async fn insert_volume(&self, volume: Volume) -> StoreResult<()>;
    async fn delete_volume(&self, uuid: &VolumeId) -> StoreResult<()>;
    /// Replaces a volume's key (its key manager and copies, after a migration); `NotFound`
    /// without the volume.
    async fn update_volume_key(&self, uuid: &VolumeId, key: VolumeKey) -> StoreResult<()>;
}

/// ONTAP's jobs, kept a while after they end so that clients can read how they ended.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Inserts the job, or replaces the one with its uuid.
    async fn save_job(&self, job: Job) -> StoreResult<()>;
    /// Every job kept, oldest first.
    async fn list_jobs(&self) -> StoreResult<Vec<Job>>;
    /// Ends as failed, with `message` and `code`, every unfinished job whose heartbeat is older
    /// than `stale_before` (seconds): jobs no instance is running any more. Answers how many.
    async fn fail_unfinished_jobs(
        &self,
        stale_before: i64,
        message: &str,
        code: u64,
        now: i64,
    ) -> StoreResult<usize>;
    /// Forgets the jobs that ended before `ended_before`, and the oldest ended ones beyond the
    /// newest `keep`.
    async fn prune_jobs(&self, ended_before: i64, keep: usize) -> StoreResult<()>;
}

/// The API's accounts and their failed logins.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn count_users(&self) -> StoreResult<usize>;
    async fn insert_user(&self, user: User) -> StoreResult<()>;
    async fn find_user(&self, name: &str) -> StoreResult<Option<User>>;
    /// Users by name.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Fails with `Conflict` when it would remove the last admin.
    async fn delete_user(&self, name: &str) -> StoreResult<()>;
    /// Counts a failed login; at `max_attempts` (when not 0) locks the account until
    /// `now + lockout_seconds` and restarts the count. Answers the lock's end when it locked.
    async fn record_failed_login(
        &self,
        name: &str,
        max_attempts: u32,
        lockout_seconds: i64,
        now: i64,
    ) -> StoreResult<Option<i64>>;
    /// Replaces a user's password hash; failures and any lock are cleared. `NotFound` when there
    /// is no such user.
    async fn set_password_hash(&self, name: &str, hash: &str) -> StoreResult<()>;
    /// After a successful login: no failures, no lock.
    async fn clear_failed_logins(&self, name: &str) -> StoreResult<()>;
}

/// The cluster's security configuration and the key manager configuration: none until first
/// changed.
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    async fn load_security(&self) -> StoreResult<Option<SecuritySettings>>;
    async fn save_security(&self, settings: SecuritySettings) -> StoreResult<()>;
    async fn load_key_manager_config(&self) -> StoreResult<Option<KeyManagerConfig>>;
    async fn save_key_manager_config(&self, config: KeyManagerConfig) -> StoreResult<()>;
}

/// The health monitor's work, shared by the instances of a shared store. A store only this
/// process uses shares nothing: every turn is this process's, no check is kept.
#[async_trait]
pub trait CheckStore: Send + Sync + 'static {
    /// Takes the monitor's turn to check `key_manager`'s servers until `until` (milliseconds
    /// since the epoch), unless another holder's turn runs past `now`: whether it is this
    /// holder's.
    async fn take_monitor_turn(
        &self,
        key_manager: &KeyManagerId,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool>;
    /// Keeps checks of `key_manager`'s servers for the other instances: those whose server and
    /// key manager certificates (`certificates`: the client's, then the server CAs) are still
    /// what was checked; others are dropped.
    async fn share_checks(
        &self,
        key_manager: &KeyManagerId,
        certificates: &[CertificateId],
        checks: Vec<(KeyServer, SharedCheck)>,
    ) -> StoreResult<()>;
    /// The checks kept, of one key manager or of all, for the servers as configured now.
    async fn shared_checks(
        &self,
        key_manager: Option<&KeyManagerId>,
    ) -> StoreResult<Vec<(KeyManagerId, SharedCheck)>>;
}

/// The audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// Appends a record, then drops the oldest beyond the newest `keep`.
    async fn append_audit(&self, record: AuditRecord, keep: usize) -> StoreResult<()>;
    /// At most `limit` records with an index above `after`, oldest first: a page by key, so that
    /// reading the trail never loads it whole.
    async fn list_audit_after(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditRecord>>;
}

/// How one operation names the failures a store reports. Every mapping of a [`StoreError`] to the
/// domain's [`Error`] goes through [`StoreFailure::into_error`]: an operation says what a missing
/// object or a conflict means for it, the rest is the same everywhere.
pub struct StoreFailure {
    /// `NotFound`: the object is gone (a concurrent DELETE, or it never was).
    pub missing: Error,
    /// `Conflict`: a unique value is taken, or the object is still in use.
    pub conflict: Error,
    /// For `KeyServerLimit`: how many key servers the request adds.
    pub servers_added: usize,
    /// `KeyServerExists`: a key server named twice within the request (creating a key manager)
    /// rather than one already configured (adding key servers).
    pub duplicate_in_request: bool,
    /// `Unreadable` means key servers' secrets that do not decrypt (65536834), rather than some
    /// other damaged row.
    pub key_servers_read: bool,
}

impl Default for StoreFailure {
    fn default() -> Self {
        StoreFailure {
            missing: Error::NotFound { target: "uuid" },
            conflict: Error::Internal("an unexpected conflict in the store".into()),
            servers_added: 0,
            duplicate_in_request: false,
            key_servers_read: false,
        }
    }
}

impl StoreFailure {
    pub fn into_error(self, error: StoreError) -> Error {
        match error {
            StoreError::NotFound => self.missing,
            StoreError::Conflict(_) => self.conflict,
            StoreError::KeyServerLimit { existing } => Error::TooManyKeyServers {
                existing,
                added: self.servers_added,
            },
            StoreError::KeyServerExists(server) if self.duplicate_in_request => {
                Error::DuplicateKeyServers(server)
            }
            StoreError::KeyServerExists(server) => Error::KeyServerAlreadyConfigured(server),
            StoreError::Unreadable(detail) if self.key_servers_read => {
                Error::KeyServersUnreadable(detail)
            }
            // Not internal: clients should retry once space is freed (the store logs it once).
            StoreError::Full(_) => Error::StorageFull,
            StoreError::Unavailable(_) => Error::StoreUnavailable,
            other => Error::Internal(other.to_string()),
        }
    }
}

/// A store failure the client cannot do anything about (reads, and writes whose object cannot
/// be missing).
pub fn internal(error: StoreError) -> Error {
    StoreFailure::default().into_error(error)
}

/// The failure of a write to one object: `NotFound` means the object went away since it was
/// read (a concurrent DELETE) and is answered as `missing`.
pub fn write_error(missing: Error) -> impl FnOnce(StoreError) -> Error {
    move |error| {
        StoreFailure {
            missing,
            ..StoreFailure::default()
        }
        .into_error(error)
    }
}

/// Reading a key manager reads its key servers, secrets included: when they cannot be read back
/// (a wrong key file, altered data), ONTAP's 65536834 says so.
pub fn key_manager_read_error(error: StoreError) -> Error {
    StoreFailure {
        key_servers_read: true,
        ..StoreFailure::default()
    }
    .into_error(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;

    #[test]
    fn a_full_disk_is_503_for_clients_to_retry() {
        let error = internal(StoreError::Full("database or disk is full".into()));
        assert_eq!(error.status(), Status::Unavailable);
        assert_eq!(error.retry_after(), Some(30));
        assert_eq!(
            internal(StoreError::Backend("I/O".into())).status(),
            Status::Internal
        );
    }

    #[test]
    fn each_operation_names_missing_objects_and_conflicts_its_way() {
        let failure = || StoreFailure {
            missing: Error::NotFound { target: "name" },
            conflict: Error::InUse("in use".into()),
            servers_added: 2,
            ..StoreFailure::default()
        };
        assert_eq!(
            failure().into_error(StoreError::NotFound),
            Error::NotFound { target: "name" }
        );
        assert_eq!(
            failure()
                .into_error(StoreError::Conflict("x".into()))
                .code(),
            8
        );
        assert_eq!(
            failure().into_error(StoreError::KeyServerLimit { existing: 3 }),
            Error::TooManyKeyServers {
                existing: 3,
                added: 2
            }
        );
        assert_eq!(
            failure()
                .into_error(StoreError::Unreadable("x".into()))
                .code(),
            262145
        );
        assert_eq!(
            key_manager_read_error(StoreError::Unreadable("x".into())).code(),
            65536834
        );
    }
}
