//! The SQLite store. One connection, behind a mutex, used from blocking tasks so that the async
//! runtime never waits on disk I/O. Every trait method is one transaction; writes take the write
//! lock up front (`BEGIN IMMEDIATE`), so the checks they make (limits, duplicates, references)
//! still hold when they commit, even with other processes on the same file.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit returns only once it is on disk.
//! Secrets are sealed with [`SecretBox`] before they reach SQL, bound to their column and row.

mod audit;
mod certificates;
mod key_managers;
mod key_servers;
mod schema;
mod security;
mod svms;
#[cfg(test)]
mod tests;
mod users;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use self::schema::{configure, create_private_file, migrate};
use super::secrets::SecretBox;
use super::{Store, StoreError, StoreResult};
use crate::domain::ids::Id;
use crate::domain::model::{
    AuditRecord, Certificate, CertificateId, KeyManager, KeyManagerConfig, KeyManagerId, KeyServer,
    Secret, SecuritySettings, Svm, SvmId, SvmRef, User,
};

/// The [`Store`] on SQLite. Cloning shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    secrets: Arc<SecretBox>,
    /// Whether the last write found the disk full: logged once when it starts, once when it ends.
    disk_full: Arc<AtomicBool>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (or creates, mode 0600) the database file and brings its schema up to date.
    pub fn open(path: &Path, secrets: SecretBox) -> StoreResult<SqliteStore> {
        create_private_file(path)?;
        let connection = Connection::open(path).db()?;
        SqliteStore::initialize(connection, secrets)
    }

    /// A private, empty database that lives as long as the store: for tests.
    pub fn open_in_memory(secrets: SecretBox) -> StoreResult<SqliteStore> {
        let connection = Connection::open_in_memory().db()?;
        SqliteStore::initialize(connection, secrets)
    }

    fn initialize(mut connection: Connection, secrets: SecretBox) -> StoreResult<SqliteStore> {
        configure(&connection)?;
        migrate(&mut connection)?;
        Ok(SqliteStore {
            connection: Arc::new(Mutex::new(connection)),
            secrets: Arc::new(secrets),
            disk_full: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Runs `f` on the connection in a blocking task.
    async fn with_connection<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &SecretBox) -> StoreResult<T> + Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        let secrets = Arc::clone(&self.secrets);
        tokio::task::spawn_blocking(move || {
            let mut connection = connection.lock().map_err(|_| {
                StoreError::Backend("the database connection is unusable after a panic".into())
            })?;
            f(&mut connection, &secrets)
        })
        .await
        .map_err(|error| StoreError::Backend(format!("the database task failed: {error}")))?
    }

    /// Runs `f` in a read transaction, for a consistent view across its queries.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &SecretBox) -> StoreResult<T> + Send + 'static,
    {
        self.with_connection(move |connection, secrets| {
            let transaction = connection.transaction().db()?;
            f(&transaction, secrets)
        })
        .await
    }

    /// Runs `f` in a write transaction that holds the write lock from its start, and commits
    /// when `f` succeeds. When `f` fails, dropping the transaction rolls everything back.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &SecretBox) -> StoreResult<T> + Send + 'static,
    {
        let result = self
            .with_connection(move |connection, secrets| {
                let transaction = connection
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .db()?;
                let value = f(&transaction, secrets)?;
                transaction.commit().db()?;
                Ok(value)
            })
            .await;
        self.note_disk_space(&result);
        result
    }

    /// Logs a full disk when writes start failing for it, and again when they succeed: once per
    /// episode, not once per request.
    fn note_disk_space<T>(&self, result: &StoreResult<T>) {
        match result {
            Err(StoreError::Full(detail)) => {
                if !self.disk_full.swap(true, Ordering::Relaxed) {
                    tracing::error!(%detail, "the disk holding the database is full: writes are refused until space is freed");
                }
            }
            Ok(_) => {
                if self.disk_full.swap(false, Ordering::Relaxed) {
                    tracing::info!("writes to the database succeed again");
                }
            }
            Err(_) => {}
        }
    }
}

// ---- errors and conversions ----------------------------------------------------------------

/// Identifiers are stored as their uuid text.
impl<K> rusqlite::types::ToSql for Id<K> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.as_str()))
    }
}

impl<K> rusqlite::types::FromSql for Id<K> {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        String::column_result(value).map(Id::from_stored)
    }
}

/// Maps rusqlite's errors to the store's: a constraint the code did not check first (a race with
/// another process, a dangling reference) is a conflict, anything else a backend failure. SQLite
/// names the constraint, never the values, so no secret can leak through the message.
fn db_error(error: rusqlite::Error) -> StoreError {
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => {
            StoreError::Conflict(format!("a conflicting record ({error})"))
        }
        Some(ErrorCode::DiskFull) => StoreError::Full(error.to_string()),
        _ => StoreError::Backend(error.to_string()),
    }
}

pub(super) trait SqlResultExt<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> SqlResultExt<T> for rusqlite::Result<T> {
    fn db(self) -> StoreResult<T> {
        self.map_err(db_error)
    }
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Unreadable(format!("invalid data in the database: {what}"))
}

pub(super) fn to_i64(value: usize) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| corrupt("a count out of range"))
}

/// A sealed column's associated data: the column, then the identity of its row, so that a value
/// copied into another column or another row does not open. The parts are uuids and normalized
/// addresses, which never contain the NUL separator.
pub(super) fn aad(column: &str, row: &[&str]) -> String {
    let mut aad = column.to_string();
    for part in row {
        aad.push('\0');
        aad.push_str(part);
    }
    aad
}

pub(super) fn seal(
    secrets: &SecretBox,
    secret: &Secret,
    column: &str,
    row: &[&str],
) -> StoreResult<Vec<u8>> {
    secrets.seal(secret.expose(), &aad(column, row))
}

/// Opens a sealed column, saying which one failed (never what it held).
pub(super) fn open(
    secrets: &SecretBox,
    sealed: &[u8],
    column: &str,
    row: &[&str],
) -> StoreResult<Secret> {
    secrets
        .open(sealed, &aad(column, row))
        .map(Secret::new)
        .map_err(|error| StoreError::Unreadable(format!("{column} of {}: {error}", row.join(" "))))
}

/// An SVM reference from `svm_uuid` and the joined `svms.name`.
pub(super) fn svm_ref(uuid: Option<String>, name: Option<String>) -> StoreResult<Option<SvmRef>> {
    match (uuid, name) {
        (None, _) => Ok(None),
        (Some(uuid), Some(name)) => Ok(Some(SvmRef {
            uuid: SvmId::from_stored(uuid),
            name,
        })),
        (Some(uuid), None) => Err(corrupt(&format!("reference to a missing SVM {uuid}"))),
    }
}

pub(super) fn scope_description(svm: Option<&SvmRef>) -> String {
    match svm {
        Some(svm) => format!("SVM \"{}\"", svm.name),
        None => "the cluster".to_string(),
    }
}

/// Whether `query` (with one parameter) returns a row.
pub(super) fn exists(connection: &Connection, query: &str, parameter: &str) -> StoreResult<bool> {
    let mut statement = connection.prepare_cached(query).db()?;
    statement.exists([parameter]).db()
}

// ---- the trait -----------------------------------------------------------------------------

#[async_trait]
impl Store for SqliteStore {
    async fn count_users(&self) -> StoreResult<usize> {
        self.read(|connection, _| users::count_users(connection))
            .await
    }

    async fn insert_user(&self, user: User) -> StoreResult<()> {
        self.write(move |connection, _| users::insert_user(connection, &user))
            .await
    }

    async fn find_user(&self, name: &str) -> StoreResult<Option<User>> {
        let name = name.to_string();
        self.read(move |connection, _| users::find_user(connection, &name))
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read(|connection, _| users::list_users(connection))
            .await
    }

    async fn delete_user(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |connection, _| users::delete_user(connection, &name))
            .await
    }

    async fn record_failed_login(
        &self,
        name: &str,
        max_attempts: u32,
        lockout_seconds: i64,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        let name = name.to_string();
        self.write(move |connection, _| {
            users::record_failed_login(connection, &name, max_attempts, lockout_seconds, now)
        })
        .await
    }

    async fn set_password_hash(&self, name: &str, hash: &str) -> StoreResult<()> {
        let (name, hash) = (name.to_string(), hash.to_string());
        self.write(move |connection, _| users::set_password_hash(connection, &name, &hash))
            .await
    }

    async fn clear_failed_logins(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |connection, _| users::clear_failed_logins(connection, &name))
            .await
    }

    async fn load_security(&self) -> StoreResult<Option<SecuritySettings>> {
        self.read(|connection, _| security::load_security(connection))
            .await
    }

    async fn save_security(&self, settings: SecuritySettings) -> StoreResult<()> {
        self.write(move |connection, _| security::save_security(connection, &settings))
            .await
    }

    async fn load_key_manager_config(&self) -> StoreResult<Option<KeyManagerConfig>> {
        self.read(|connection, _| security::load_key_manager_config(connection))
            .await
    }

    async fn save_key_manager_config(&self, config: KeyManagerConfig) -> StoreResult<()> {
        self.write(move |connection, _| security::save_key_manager_config(connection, &config))
            .await
    }

    async fn list_svms(&self) -> StoreResult<Vec<Svm>> {
        self.read(|connection, _| svms::list_svms(connection)).await
    }

    async fn insert_svm(&self, svm: Svm) -> StoreResult<()> {
        self.write(move |connection, _| svms::insert_svm(connection, &svm))
            .await
    }

    async fn delete_svm(&self, uuid: &SvmId) -> StoreResult<()> {
        let uuid = uuid.to_string();
        self.write(move |connection, _| svms::delete_svm(connection, &uuid))
            .await
    }

    async fn list_certificates(&self) -> StoreResult<Vec<Certificate>> {
        self.read(|connection, secrets| certificates::list_certificates(connection, secrets))
            .await
    }

    async fn insert_certificate(&self, certificate: Certificate) -> StoreResult<()> {
        self.write(move |connection, secrets| {
            certificates::insert_certificate(connection, secrets, &certificate)
        })
        .await
    }

    async fn delete_certificate(&self, uuid: &CertificateId) -> StoreResult<()> {
        let uuid = uuid.to_string();
        self.write(move |connection, _| certificates::delete_certificate(connection, &uuid))
            .await
    }

    async fn list_key_managers(&self) -> StoreResult<Vec<KeyManager>> {
        self.read(|connection, secrets| key_managers::list_key_managers(connection, secrets))
            .await
    }

    async fn get_key_manager(&self, uuid: &KeyManagerId) -> StoreResult<Option<KeyManager>> {
        let uuid = uuid.to_string();
        self.read(move |connection, secrets| {
            key_managers::get_key_manager(connection, secrets, &uuid)
        })
        .await
    }

    async fn insert_key_manager(&self, key_manager: KeyManager) -> StoreResult<()> {
        self.write(move |connection, secrets| {
            key_managers::insert_key_manager(connection, secrets, &key_manager)
        })
        .await
    }

    async fn update_key_manager(&self, key_manager: KeyManager) -> StoreResult<()> {
        self.write(move |connection, secrets| {
            key_managers::update_key_manager(connection, secrets, &key_manager)
        })
        .await
    }

    async fn delete_key_manager(&self, uuid: &KeyManagerId) -> StoreResult<()> {
        let uuid = uuid.to_string();
        self.write(move |connection, _| key_managers::delete_key_manager(connection, &uuid))
            .await
    }

    async fn add_key_servers(
        &self,
        key_manager: &KeyManagerId,
        servers: Vec<KeyServer>,
    ) -> StoreResult<()> {
        let key_manager = key_manager.to_string();
        self.write(move |connection, secrets| {
            key_servers::add_key_servers(connection, secrets, &key_manager, &servers)
        })
        .await
    }

    async fn update_key_server(
        &self,
        key_manager: &KeyManagerId,
        server: KeyServer,
    ) -> StoreResult<()> {
        let key_manager = key_manager.to_string();
        self.write(move |connection, secrets| {
            key_servers::update_key_server(connection, secrets, &key_manager, &server)
        })
        .await
    }

    async fn delete_key_server(&self, key_manager: &KeyManagerId, server: &str) -> StoreResult<()> {
        let key_manager = key_manager.to_string();
        let server = server.to_string();
        self.write(move |connection, _| {
            key_servers::delete_key_server(connection, &key_manager, &server)
        })
        .await
    }

    async fn append_audit(&self, record: AuditRecord, keep: usize) -> StoreResult<()> {
        self.write(move |connection, _| audit::append_audit(connection, &record, keep))
            .await
    }

    async fn list_audit_after(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        self.read(move |connection, _| audit::list_audit_after(connection, after, limit))
            .await
    }
}
