//! Persistence behind the [`Store`] trait: SQLite now ([`sqlite::SqliteStore`]), PostgreSQL can
//! follow. A store keeps the domain's objects, encrypts their secrets at rest, and enforces the
//! invariants that must hold under concurrent requests (unique names, at most
//! [`MAX_PRIMARY_KEY_SERVERS`] key servers per key manager) inside its own transactions.

pub mod secrets;
pub mod sqlite;

use async_trait::async_trait;

use crate::domain::model::{
    AuditRecord, Certificate, KeyManager, KeyServer, SecuritySettings, Svm, User,
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
    /// The database failed (I/O, a lock held too long).
    #[error("storage failure: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything the service persists. Every method is one transaction: a write is acknowledged
/// only once it is durable.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Users
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

    // SVMs: names are unique.
    async fn list_svms(&self) -> StoreResult<Vec<Svm>>;
    async fn insert_svm(&self, svm: Svm) -> StoreResult<()>;
    /// Fails with `Conflict` when a certificate or key manager still belongs to the SVM.
    async fn delete_svm(&self, uuid: &str) -> StoreResult<()>;

    // Certificates: names are unique within their SVM (or the cluster scope).
    async fn list_certificates(&self) -> StoreResult<Vec<Certificate>>;
    async fn insert_certificate(&self, certificate: Certificate) -> StoreResult<()>;
    /// Fails with `Conflict` when a key manager uses the certificate.
    async fn delete_certificate(&self, uuid: &str) -> StoreResult<()>;

    // Key managers: at most one per SVM, and one for the cluster (svm = None).
    async fn list_key_managers(&self) -> StoreResult<Vec<KeyManager>>;
    async fn get_key_manager(&self, uuid: &str) -> StoreResult<Option<KeyManager>>;
    /// Inserts the key manager with its key servers, if any.
    async fn insert_key_manager(&self, key_manager: KeyManager) -> StoreResult<()>;
    /// Replaces the key manager's own settings (certificates, passphrase); its key servers are
    /// left as they are.
    async fn update_key_manager(&self, key_manager: KeyManager) -> StoreResult<()>;
    async fn delete_key_manager(&self, uuid: &str) -> StoreResult<()>;

    // Key servers of external key managers.
    /// Adds all the servers or none, in one transaction that re-checks the limit and the
    /// duplicates, so that concurrent requests can never exceed them.
    async fn add_key_servers(&self, key_manager: &str, servers: Vec<KeyServer>) -> StoreResult<()>;
    /// Replaces the stored settings of the server with the same address.
    async fn update_key_server(&self, key_manager: &str, server: KeyServer) -> StoreResult<()>;
    async fn delete_key_server(&self, key_manager: &str, server: &str) -> StoreResult<()>;

    // The cluster's security configuration: none until first changed.
    async fn load_security(&self) -> StoreResult<Option<SecuritySettings>>;
    async fn save_security(&self, settings: SecuritySettings) -> StoreResult<()>;

    // The audit trail.
    /// Appends a record, then drops the oldest beyond the newest `keep`.
    async fn append_audit(&self, record: AuditRecord, keep: usize) -> StoreResult<()>;
    /// At most `limit` records with an index above `after`, oldest first: a page by key, so that
    /// reading the trail never loads it whole.
    async fn list_audit_after(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditRecord>>;
}
