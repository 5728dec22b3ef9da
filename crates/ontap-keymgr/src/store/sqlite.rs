//! The SQLite store. One connection, behind a mutex, used from blocking tasks so that the async
//! runtime never waits on disk I/O. Every trait method is one transaction; writes take the write
//! lock up front (`BEGIN IMMEDIATE`), so the checks they make (limits, duplicates, references)
//! still hold when they commit, even with other processes on the same file.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit returns only once it is on disk.
//! Secrets are sealed with [`SecretBox`] before they reach SQL, bound to their column and row.

use std::fmt;
use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{
    Connection, ErrorCode, OptionalExtension, Row, Transaction, TransactionBehavior, params,
};

use super::secrets::SecretBox;
use super::{MAX_PRIMARY_KEY_SERVERS, Store, StoreError, StoreResult};
use crate::domain::address::KeyServerAddress;
use crate::domain::model::{
    AuditRecord, Certificate, CertificateType, KeyManager, KeyManagerKind, KeyServer, Role, Secret,
    Svm, SvmRef, User,
};

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, one migration per version: `MIGRATIONS[i]` takes the database from version `i` to
/// `i + 1` (`PRAGMA user_version`). Append new versions; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[MIGRATION_1];

const MIGRATION_1: &str = r#"
CREATE TABLE users (
    name TEXT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'readonly')),
    password_hash TEXT NOT NULL
) STRICT;

CREATE TABLE svms (
    uuid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE certificates (
    uuid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    type TEXT NOT NULL
        CHECK (type IN ('client', 'server', 'client_ca', 'server_ca', 'root_ca')),
    svm_uuid TEXT REFERENCES svms (uuid) ON DELETE RESTRICT,
    public_certificate TEXT NOT NULL,
    private_key BLOB,
    common_name TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    ca TEXT NOT NULL,
    expiry_time TEXT NOT NULL
) STRICT;
-- NULLs are distinct in a UNIQUE constraint, so the cluster scope (NULL) is compared as ''.
CREATE UNIQUE INDEX certificates_scope_name ON certificates (COALESCE(svm_uuid, ''), name);
CREATE INDEX certificates_svm ON certificates (svm_uuid);

CREATE TABLE key_managers (
    -- An explicit rowid: creation order, and unlike an implicit rowid it survives VACUUM.
    seq INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    svm_uuid TEXT REFERENCES svms (uuid) ON DELETE RESTRICT,
    kind TEXT NOT NULL CHECK (kind IN ('external', 'onboard')),
    client_certificate_uuid TEXT REFERENCES certificates (uuid) ON DELETE RESTRICT,
    passphrase BLOB,
    CHECK (CASE kind
        WHEN 'external' THEN client_certificate_uuid IS NOT NULL AND passphrase IS NULL
        ELSE client_certificate_uuid IS NULL AND passphrase IS NOT NULL
    END)
) STRICT;
-- One key manager per SVM, and one for the cluster (NULL, compared as '').
CREATE UNIQUE INDEX key_managers_scope ON key_managers (COALESCE(svm_uuid, ''));
CREATE INDEX key_managers_svm ON key_managers (svm_uuid);
CREATE INDEX key_managers_client_certificate ON key_managers (client_certificate_uuid);

CREATE TABLE key_manager_server_cas (
    key_manager_uuid TEXT NOT NULL REFERENCES key_managers (uuid) ON DELETE CASCADE,
    certificate_uuid TEXT NOT NULL REFERENCES certificates (uuid) ON DELETE RESTRICT,
    position INTEGER NOT NULL,
    PRIMARY KEY (key_manager_uuid, position)
) STRICT;
CREATE INDEX key_manager_server_cas_certificate ON key_manager_server_cas (certificate_uuid);

CREATE TABLE key_servers (
    key_manager_uuid TEXT NOT NULL REFERENCES key_managers (uuid) ON DELETE CASCADE,
    server TEXT NOT NULL,
    position INTEGER NOT NULL,
    timeout INTEGER NOT NULL,
    username TEXT,
    password BLOB,
    secondary_key_servers TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (key_manager_uuid, server),
    UNIQUE (key_manager_uuid, position)
) STRICT;

CREATE TABLE audit (
    idx INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    user TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    input TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_code TEXT
) STRICT;
"#;

/// The associated data of each sealed column; the row's identity is appended (see [`aad`]).
const AAD_PRIVATE_KEY: &str = "certificates.private_key";
const AAD_PASSPHRASE: &str = "key_managers.passphrase";
const AAD_KEY_SERVER_PASSWORD: &str = "key_servers.password";

/// The [`Store`] on SQLite. Cloning shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
    secrets: Arc<SecretBox>,
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
        self.with_connection(move |connection, secrets| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db()?;
            let value = f(&transaction, secrets)?;
            transaction.commit().db()?;
            Ok(value)
        })
        .await
    }
}

// ---- opening -------------------------------------------------------------------------------

/// Creates the database file readable by its owner only (it holds password hashes), before
/// SQLite creates it with the default umask. SQLite gives its -wal and -shm files the same mode.
fn create_private_file(path: &Path) -> StoreResult<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::Backend(format!(
            "database {}: {error}",
            path.display()
        ))),
    }
}

fn configure(connection: &Connection) -> StoreResult<()> {
    // First, so that the pragmas below wait for another process's lock rather than fail.
    connection.busy_timeout(BUSY_TIMEOUT).db()?;
    let mode: String = connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .db()?;
    // An in-memory database keeps its "memory" journal; a file must be in WAL.
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        return Err(StoreError::Backend(format!(
            "the database refused the WAL journal mode (it is in {mode} mode)"
        )));
    }
    connection.pragma_update(None, "synchronous", "FULL").db()?;
    connection.pragma_update(None, "foreign_keys", true).db()?;
    let foreign_keys: bool = connection
        .pragma_query_value(None, "foreign_keys", |row| row.get(0))
        .db()?;
    if !foreign_keys {
        return Err(StoreError::Backend(
            "the database does not enforce foreign keys".into(),
        ));
    }
    Ok(())
}

/// Applies the missing migrations, each in its own transaction with its version bump. The
/// version is read inside the write transaction, so two processes starting together cannot both
/// apply the same migration.
fn migrate(connection: &mut Connection) -> StoreResult<()> {
    loop {
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .db()?;
        let version = schema_version(&transaction)?;
        let Some(migration) = MIGRATIONS.get(version) else {
            if version > MIGRATIONS.len() {
                return Err(StoreError::Backend(format!(
                    "the database schema is version {version}, newer than this program's {}",
                    MIGRATIONS.len()
                )));
            }
            return Ok(());
        };
        transaction.execute_batch(migration).db()?;
        transaction
            .pragma_update(None, "user_version", to_i64(version + 1)?)
            .db()?;
        transaction.commit().db()?;
        tracing::info!(version = version + 1, "migrated the database schema");
    }
}

fn schema_version(connection: &Connection) -> StoreResult<usize> {
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .db()?;
    usize::try_from(version)
        .map_err(|_| StoreError::Backend(format!("invalid database schema version {version}")))
}

// ---- errors and conversions ----------------------------------------------------------------

/// Maps rusqlite's errors to the store's: a constraint the code did not check first (a race with
/// another process, a dangling reference) is a conflict, anything else a backend failure. SQLite
/// names the constraint, never the values, so no secret can leak through the message.
fn db_error(error: rusqlite::Error) -> StoreError {
    if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) {
        StoreError::Conflict(format!("a conflicting record ({error})"))
    } else {
        StoreError::Backend(error.to_string())
    }
}

trait SqlResultExt<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> SqlResultExt<T> for rusqlite::Result<T> {
    fn db(self) -> StoreResult<T> {
        self.map_err(db_error)
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unreadable(format!("invalid data in the database: {what}"))
}

fn to_i64(value: usize) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| corrupt("a count out of range"))
}

/// A sealed column's associated data: the column, then the identity of its row, so that a value
/// copied into another column or another row does not open. The parts are uuids and normalized
/// addresses, which never contain the NUL separator.
fn aad(column: &str, row: &[&str]) -> String {
    let mut aad = column.to_string();
    for part in row {
        aad.push('\0');
        aad.push_str(part);
    }
    aad
}

fn seal(secrets: &SecretBox, secret: &Secret, column: &str, row: &[&str]) -> StoreResult<Vec<u8>> {
    secrets.seal(secret.expose(), &aad(column, row))
}

/// Opens a sealed column, saying which one failed (never what it held).
fn open(secrets: &SecretBox, sealed: &[u8], column: &str, row: &[&str]) -> StoreResult<Secret> {
    secrets
        .open(sealed, &aad(column, row))
        .map(Secret::new)
        .map_err(|error| StoreError::Unreadable(format!("{column} of {}: {error}", row.join(" "))))
}

/// An SVM reference from `svm_uuid` and the joined `svms.name`.
fn svm_ref(uuid: Option<String>, name: Option<String>) -> StoreResult<Option<SvmRef>> {
    match (uuid, name) {
        (None, _) => Ok(None),
        (Some(uuid), Some(name)) => Ok(Some(SvmRef { uuid, name })),
        (Some(uuid), None) => Err(corrupt(&format!("reference to a missing SVM {uuid}"))),
    }
}

fn scope_description(svm: Option<&SvmRef>) -> String {
    match svm {
        Some(svm) => format!("SVM \"{}\"", svm.name),
        None => "the cluster".to_string(),
    }
}

// ---- users ---------------------------------------------------------------------------------

fn count_users(connection: &Connection) -> StoreResult<usize> {
    let count: i64 = connection
        .query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))
        .db()?;
    usize::try_from(count).map_err(|_| corrupt("a negative count"))
}

fn insert_user(connection: &Connection, user: &User) -> StoreResult<()> {
    if find_user(connection, &user.name)?.is_some() {
        return Err(StoreError::Conflict(format!("user \"{}\"", user.name)));
    }
    connection
        .execute(
            "INSERT INTO users (name, role, password_hash) VALUES (?1, ?2, ?3)",
            params![user.name, user.role.as_str(), user.password_hash],
        )
        .db()?;
    Ok(())
}

fn find_user(connection: &Connection, name: &str) -> StoreResult<Option<User>> {
    let row = connection
        .query_row(
            "SELECT name, role, password_hash FROM users WHERE name = ?1",
            [name],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get(2)?,
                ))
            },
        )
        .optional()
        .db()?;
    row.map(|(name, role, password_hash)| {
        let role = Role::parse(&role).ok_or_else(|| corrupt(&format!("role {role}")))?;
        Ok(User {
            name,
            role,
            password_hash,
        })
    })
    .transpose()
}

fn list_users(connection: &Connection) -> StoreResult<Vec<User>> {
    let mut statement = connection
        .prepare("SELECT name FROM users ORDER BY name")
        .db()?;
    let names = statement
        .query_map([], |row| row.get::<_, String>(0))
        .db()?
        .collect::<Result<Vec<_>, _>>()
        .db()?;
    names
        .iter()
        .filter_map(|name| find_user(connection, name).transpose())
        .collect()
}

fn delete_user(connection: &Connection, name: &str) -> StoreResult<()> {
    let user = find_user(connection, name)?.ok_or(StoreError::NotFound)?;
    if user.role == Role::Admin {
        let admins: i64 = connection
            .query_row(
                "SELECT COUNT(*) FROM users WHERE role = 'admin'",
                [],
                |row| row.get(0),
            )
            .db()?;
        if admins <= 1 {
            // The message reads with the error's "... already exists".
            return Err(StoreError::Conflict("no other admin user".into()));
        }
    }
    connection
        .execute("DELETE FROM users WHERE name = ?1", [name])
        .db()?;
    Ok(())
}

// ---- SVMs ----------------------------------------------------------------------------------

fn list_svms(connection: &Connection) -> StoreResult<Vec<Svm>> {
    let mut statement = connection
        .prepare_cached("SELECT uuid, name FROM svms ORDER BY name, uuid")
        .db()?;
    let rows = statement
        .query_map([], |row| {
            Ok(Svm {
                uuid: row.get(0)?,
                name: row.get(1)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

fn insert_svm(connection: &Connection, svm: &Svm) -> StoreResult<()> {
    let taken: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM svms WHERE name = ?1)",
            [&svm.name],
            |row| row.get(0),
        )
        .db()?;
    if taken {
        return Err(StoreError::Conflict(format!("SVM \"{}\"", svm.name)));
    }
    connection
        .execute(
            "INSERT INTO svms (uuid, name) VALUES (?1, ?2)",
            params![svm.uuid, svm.name],
        )
        .db()?;
    Ok(())
}

fn delete_svm(connection: &Connection, uuid: &str) -> StoreResult<()> {
    let name: String = connection
        .query_row("SELECT name FROM svms WHERE uuid = ?1", [uuid], |row| {
            row.get(0)
        })
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)?;
    // The messages read with the error's "... already exists".
    if exists(
        connection,
        "SELECT 1 FROM certificates WHERE svm_uuid = ?1",
        uuid,
    )? {
        return Err(StoreError::Conflict(format!(
            "a certificate of SVM \"{name}\""
        )));
    }
    if exists(
        connection,
        "SELECT 1 FROM key_managers WHERE svm_uuid = ?1",
        uuid,
    )? {
        return Err(StoreError::Conflict(format!(
            "a key manager of SVM \"{name}\""
        )));
    }
    connection
        .execute("DELETE FROM svms WHERE uuid = ?1", [uuid])
        .db()?;
    Ok(())
}

/// Whether `query` (with one parameter) returns a row.
fn exists(connection: &Connection, query: &str, parameter: &str) -> StoreResult<bool> {
    let mut statement = connection.prepare_cached(query).db()?;
    statement.exists([parameter]).db()
}

// ---- certificates --------------------------------------------------------------------------

/// A certificates row, before its secret is opened.
struct CertificateRow {
    uuid: String,
    name: String,
    cert_type: String,
    svm_uuid: Option<String>,
    svm_name: Option<String>,
    public_certificate: String,
    private_key: Option<Vec<u8>>,
    common_name: String,
    serial_number: String,
    ca: String,
    expiry_time: String,
}

impl CertificateRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<CertificateRow> {
        Ok(CertificateRow {
            uuid: row.get(0)?,
            name: row.get(1)?,
            cert_type: row.get(2)?,
            svm_uuid: row.get(3)?,
            svm_name: row.get(4)?,
            public_certificate: row.get(5)?,
            private_key: row.get(6)?,
            common_name: row.get(7)?,
            serial_number: row.get(8)?,
            ca: row.get(9)?,
            expiry_time: row.get(10)?,
        })
    }

    fn into_certificate(self, secrets: &SecretBox) -> StoreResult<Certificate> {
        let cert_type = CertificateType::parse(&self.cert_type)
            .ok_or_else(|| corrupt(&format!("certificate type {}", self.cert_type)))?;
        let private_key = self
            .private_key
            .map(|sealed| open(secrets, &sealed, AAD_PRIVATE_KEY, &[&self.uuid]))
            .transpose()?;
        Ok(Certificate {
            svm: svm_ref(self.svm_uuid, self.svm_name)?,
            uuid: self.uuid,
            name: self.name,
            cert_type,
            public_certificate: self.public_certificate,
            private_key,
            common_name: self.common_name,
            serial_number: self.serial_number,
            ca: self.ca,
            expiry_time: self.expiry_time,
        })
    }
}

fn list_certificates(
    connection: &Connection,
    secrets: &SecretBox,
) -> StoreResult<Vec<Certificate>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT c.uuid, c.name, c.type, c.svm_uuid, s.name, c.public_certificate,
                    c.private_key, c.common_name, c.serial_number, c.ca, c.expiry_time
             FROM certificates c LEFT JOIN svms s ON s.uuid = c.svm_uuid
             ORDER BY c.name, c.uuid",
        )
        .db()?;
    let rows = statement
        .query_map([], CertificateRow::from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    rows.into_iter()
        .map(|row| row.into_certificate(secrets))
        .collect()
}

fn insert_certificate(
    connection: &Connection,
    secrets: &SecretBox,
    certificate: &Certificate,
) -> StoreResult<()> {
    let svm_uuid = certificate.svm.as_ref().map(|svm| svm.uuid.as_str());
    let taken: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM certificates
                            WHERE COALESCE(svm_uuid, '') = COALESCE(?1, '') AND name = ?2)",
            params![svm_uuid, certificate.name],
            |row| row.get(0),
        )
        .db()?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "certificate \"{}\" in {}",
            certificate.name,
            scope_description(certificate.svm.as_ref())
        )));
    }
    let private_key = certificate
        .private_key
        .as_ref()
        .map(|key| seal(secrets, key, AAD_PRIVATE_KEY, &[&certificate.uuid]))
        .transpose()?;
    connection
        .execute(
            "INSERT INTO certificates (uuid, name, type, svm_uuid, public_certificate,
                 private_key, common_name, serial_number, ca, expiry_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                certificate.uuid,
                certificate.name,
                certificate.cert_type.as_str(),
                svm_uuid,
                certificate.public_certificate,
                private_key,
                certificate.common_name,
                certificate.serial_number,
                certificate.ca,
                certificate.expiry_time,
            ],
        )
        .db()?;
    Ok(())
}

fn delete_certificate(connection: &Connection, uuid: &str) -> StoreResult<()> {
    let name: String = connection
        .query_row(
            "SELECT name FROM certificates WHERE uuid = ?1",
            [uuid],
            |row| row.get(0),
        )
        .optional()
        .db()?
        .ok_or(StoreError::NotFound)?;
    let used = exists(
        connection,
        "SELECT 1 FROM key_managers WHERE client_certificate_uuid = ?1
         UNION ALL SELECT 1 FROM key_manager_server_cas WHERE certificate_uuid = ?1",
        uuid,
    )?;
    if used {
        return Err(StoreError::Conflict(format!(
            "a key manager using certificate \"{name}\""
        )));
    }
    connection
        .execute("DELETE FROM certificates WHERE uuid = ?1", [uuid])
        .db()?;
    Ok(())
}

// ---- key managers --------------------------------------------------------------------------

const KEY_MANAGER_COLUMNS: &str = "SELECT k.uuid, k.svm_uuid, s.name, k.kind,
        k.client_certificate_uuid, k.passphrase
    FROM key_managers k LEFT JOIN svms s ON s.uuid = k.svm_uuid";

/// A key_managers row, before its secret is opened and its lists are loaded.
struct KeyManagerRow {
    uuid: String,
    svm_uuid: Option<String>,
    svm_name: Option<String>,
    kind: String,
    client_certificate: Option<String>,
    passphrase: Option<Vec<u8>>,
}

impl KeyManagerRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<KeyManagerRow> {
        Ok(KeyManagerRow {
            uuid: row.get(0)?,
            svm_uuid: row.get(1)?,
            svm_name: row.get(2)?,
            kind: row.get(3)?,
            client_certificate: row.get(4)?,
            passphrase: row.get(5)?,
        })
    }

    fn into_key_manager(
        self,
        connection: &Connection,
        secrets: &SecretBox,
    ) -> StoreResult<KeyManager> {
        let kind = match (self.kind.as_str(), self.client_certificate, self.passphrase) {
            ("external", Some(client_certificate), None) => KeyManagerKind::External {
                client_certificate,
                server_ca_certificates: load_server_cas(connection, &self.uuid)?,
                servers: load_key_servers(connection, secrets, &self.uuid)?,
            },
            ("onboard", None, Some(sealed)) => KeyManagerKind::Onboard {
                passphrase: open(secrets, &sealed, AAD_PASSPHRASE, &[&self.uuid])?,
            },
            _ => return Err(corrupt(&format!("key manager {}", self.uuid))),
        };
        Ok(KeyManager {
            svm: svm_ref(self.svm_uuid, self.svm_name)?,
            uuid: self.uuid,
            kind,
        })
    }
}

fn list_key_managers(connection: &Connection, secrets: &SecretBox) -> StoreResult<Vec<KeyManager>> {
    let mut statement = connection
        .prepare_cached(&format!("{KEY_MANAGER_COLUMNS} ORDER BY k.seq"))
        .db()?;
    let rows = statement
        .query_map([], KeyManagerRow::from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    rows.into_iter()
        .map(|row| row.into_key_manager(connection, secrets))
        .collect()
}

fn get_key_manager(
    connection: &Connection,
    secrets: &SecretBox,
    uuid: &str,
) -> StoreResult<Option<KeyManager>> {
    let row = connection
        .query_row(
            &format!("{KEY_MANAGER_COLUMNS} WHERE k.uuid = ?1"),
            [uuid],
            KeyManagerRow::from_row,
        )
        .optional()
        .db()?;
    row.map(|row| row.into_key_manager(connection, secrets))
        .transpose()
}

fn load_server_cas(connection: &Connection, key_manager: &str) -> StoreResult<Vec<String>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT certificate_uuid FROM key_manager_server_cas
             WHERE key_manager_uuid = ?1 ORDER BY position",
        )
        .db()?;
    let rows = statement.query_map([key_manager], |row| row.get(0)).db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

/// The key manager's uuid and kind, if it exists.
fn key_manager_kind(connection: &Connection, uuid: &str) -> StoreResult<Option<String>> {
    connection
        .query_row(
            "SELECT kind FROM key_managers WHERE uuid = ?1",
            [uuid],
            |row| row.get(0),
        )
        .optional()
        .db()
}

fn kind_name(kind: &KeyManagerKind) -> &'static str {
    match kind {
        KeyManagerKind::External { .. } => "external",
        KeyManagerKind::Onboard { .. } => "onboard",
    }
}

/// The kind-specific columns: the client certificate of an external key manager, the sealed
/// passphrase of an onboard one.
fn kind_columns(
    secrets: &SecretBox,
    key_manager: &KeyManager,
) -> StoreResult<(Option<String>, Option<Vec<u8>>)> {
    match &key_manager.kind {
        KeyManagerKind::External {
            client_certificate, ..
        } => Ok((Some(client_certificate.clone()), None)),
        KeyManagerKind::Onboard { passphrase } => {
            let sealed = seal(secrets, passphrase, AAD_PASSPHRASE, &[&key_manager.uuid])?;
            Ok((None, Some(sealed)))
        }
    }
}

fn insert_key_manager(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &KeyManager,
) -> StoreResult<()> {
    let svm_uuid = key_manager.svm.as_ref().map(|svm| svm.uuid.as_str());
    let taken: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM key_managers
                            WHERE COALESCE(svm_uuid, '') = COALESCE(?1, ''))",
            [svm_uuid],
            |row| row.get(0),
        )
        .db()?;
    if taken {
        return Err(StoreError::Conflict(format!(
            "the key manager of {}",
            scope_description(key_manager.svm.as_ref())
        )));
    }
    let servers = key_manager.servers();
    if servers.len() > MAX_PRIMARY_KEY_SERVERS {
        return Err(StoreError::KeyServerLimit { existing: 0 });
    }
    check_no_duplicates(servers)?;

    let (client_certificate, passphrase) = kind_columns(secrets, key_manager)?;
    connection
        .execute(
            "INSERT INTO key_managers (uuid, svm_uuid, kind, client_certificate_uuid, passphrase)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                key_manager.uuid,
                svm_uuid,
                kind_name(&key_manager.kind),
                client_certificate,
                passphrase,
            ],
        )
        .db()?;
    if let KeyManagerKind::External {
        server_ca_certificates,
        ..
    } = &key_manager.kind
    {
        insert_server_cas(connection, &key_manager.uuid, server_ca_certificates)?;
    }
    insert_key_servers(connection, secrets, &key_manager.uuid, 0, servers)
}

fn insert_server_cas(
    connection: &Connection,
    key_manager: &str,
    certificates: &[String],
) -> StoreResult<()> {
    let mut statement = connection
        .prepare_cached(
            "INSERT INTO key_manager_server_cas (key_manager_uuid, certificate_uuid, position)
             VALUES (?1, ?2, ?3)",
        )
        .db()?;
    for (position, certificate) in certificates.iter().enumerate() {
        statement
            .execute(params![key_manager, certificate, to_i64(position)?])
            .db()?;
    }
    Ok(())
}

fn update_key_manager(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &KeyManager,
) -> StoreResult<()> {
    let kind = key_manager_kind(connection, &key_manager.uuid)?.ok_or(StoreError::NotFound)?;
    // Changing the kind would strand (or invent) key servers; a key manager is deleted and
    // created again instead.
    if kind != kind_name(&key_manager.kind) {
        return Err(StoreError::Conflict(format!(
            "key manager {} of another kind ({kind})",
            key_manager.uuid
        )));
    }
    let (client_certificate, passphrase) = kind_columns(secrets, key_manager)?;
    connection
        .execute(
            "UPDATE key_managers SET client_certificate_uuid = ?2, passphrase = ?3
             WHERE uuid = ?1",
            params![key_manager.uuid, client_certificate, passphrase],
        )
        .db()?;
    if let KeyManagerKind::External {
        server_ca_certificates,
        ..
    } = &key_manager.kind
    {
        connection
            .execute(
                "DELETE FROM key_manager_server_cas WHERE key_manager_uuid = ?1",
                [&key_manager.uuid],
            )
            .db()?;
        insert_server_cas(connection, &key_manager.uuid, server_ca_certificates)?;
    }
    Ok(())
}

fn delete_key_manager(connection: &Connection, uuid: &str) -> StoreResult<()> {
    // Its key servers and server CA links go with it (ON DELETE CASCADE).
    let deleted = connection
        .execute("DELETE FROM key_managers WHERE uuid = ?1", [uuid])
        .db()?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

// ---- key servers ---------------------------------------------------------------------------

/// A key_servers row, before its secret is opened and its address parsed.
struct KeyServerRow {
    server: String,
    timeout: i64,
    username: Option<String>,
    password: Option<Vec<u8>>,
    secondary_key_servers: String,
}

impl KeyServerRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<KeyServerRow> {
        Ok(KeyServerRow {
            server: row.get(0)?,
            timeout: row.get(1)?,
            username: row.get(2)?,
            password: row.get(3)?,
            secondary_key_servers: row.get(4)?,
        })
    }

    fn into_key_server(self, secrets: &SecretBox, key_manager: &str) -> StoreResult<KeyServer> {
        let server = KeyServerAddress::parse(&self.server)
            .map_err(|error| corrupt(&format!("key server address {}: {error}", self.server)))?;
        let password = self
            .password
            .map(|sealed| {
                open(
                    secrets,
                    &sealed,
                    AAD_KEY_SERVER_PASSWORD,
                    &[key_manager, server.as_str()],
                )
            })
            .transpose()?;
        let secondary_key_servers = serde_json::from_str(&self.secondary_key_servers)
            .map_err(|error| corrupt(&format!("secondary key servers of {server}: {error}")))?;
        Ok(KeyServer {
            server,
            timeout: self.timeout,
            username: self.username,
            password,
            secondary_key_servers,
        })
    }
}

fn load_key_servers(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &str,
) -> StoreResult<Vec<KeyServer>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT server, timeout, username, password, secondary_key_servers
             FROM key_servers WHERE key_manager_uuid = ?1 ORDER BY position",
        )
        .db()?;
    let rows = statement
        .query_map([key_manager], KeyServerRow::from_row)
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()?;
    rows.into_iter()
        .map(|row| row.into_key_server(secrets, key_manager))
        .collect()
}

/// The first address given twice in `servers`, as `KeyServerExists`.
fn check_no_duplicates(servers: &[KeyServer]) -> StoreResult<()> {
    for (index, server) in servers.iter().enumerate() {
        if servers[..index].iter().any(|s| s.server == server.server) {
            return Err(StoreError::KeyServerExists(server.server.to_string()));
        }
    }
    Ok(())
}

/// The sealed password and the JSON secondaries of a key server.
fn key_server_columns(
    secrets: &SecretBox,
    key_manager: &str,
    server: &KeyServer,
) -> StoreResult<(Option<Vec<u8>>, String)> {
    let password = server
        .password
        .as_ref()
        .map(|password| {
            seal(
                secrets,
                password,
                AAD_KEY_SERVER_PASSWORD,
                &[key_manager, server.server.as_str()],
            )
        })
        .transpose()?;
    let secondaries = serde_json::to_string(&server.secondary_key_servers)
        .map_err(|error| StoreError::Backend(format!("secondary key servers: {error}")))?;
    Ok((password, secondaries))
}

/// Inserts `servers` at positions `first_position`, `first_position + 1`, ...
fn insert_key_servers(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &str,
    first_position: i64,
    servers: &[KeyServer],
) -> StoreResult<()> {
    let mut statement = connection
        .prepare_cached(
            "INSERT INTO key_servers (key_manager_uuid, server, position, timeout, username,
                 password, secondary_key_servers)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .db()?;
    for (offset, server) in servers.iter().enumerate() {
        let (password, secondaries) = key_server_columns(secrets, key_manager, server)?;
        statement
            .execute(params![
                key_manager,
                server.server.as_str(),
                first_position + to_i64(offset)?,
                server.timeout,
                server.username,
                password,
                secondaries,
            ])
            .db()?;
    }
    Ok(())
}

/// The check-then-insert that keeps the limit: it runs inside the caller's `BEGIN IMMEDIATE`
/// transaction, so no other writer can add a server between the count and the insert.
fn add_key_servers(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &str,
    servers: &[KeyServer],
) -> StoreResult<()> {
    let kind = key_manager_kind(connection, key_manager)?.ok_or(StoreError::NotFound)?;
    if kind != "external" {
        return Err(StoreError::Conflict(format!(
            "an onboard key manager {key_manager} (which takes no key servers)"
        )));
    }
    let (count, last_position): (i64, Option<i64>) = connection
        .query_row(
            "SELECT COUNT(*), MAX(position) FROM key_servers WHERE key_manager_uuid = ?1",
            [key_manager],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .db()?;
    let existing = usize::try_from(count).map_err(|_| corrupt("a negative count"))?;
    if existing + servers.len() > MAX_PRIMARY_KEY_SERVERS {
        return Err(StoreError::KeyServerLimit { existing });
    }
    check_no_duplicates(servers)?;
    for server in servers {
        let stored: bool = connection
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM key_servers
                                WHERE key_manager_uuid = ?1 AND server = ?2)",
                params![key_manager, server.server.as_str()],
                |row| row.get(0),
            )
            .db()?;
        if stored {
            return Err(StoreError::KeyServerExists(server.server.to_string()));
        }
    }
    let first_position = last_position.map_or(0, |last| last + 1);
    insert_key_servers(connection, secrets, key_manager, first_position, servers)
}

fn update_key_server(
    connection: &Connection,
    secrets: &SecretBox,
    key_manager: &str,
    server: &KeyServer,
) -> StoreResult<()> {
    let (password, secondaries) = key_server_columns(secrets, key_manager, server)?;
    let updated = connection
        .execute(
            "UPDATE key_servers
             SET timeout = ?3, username = ?4, password = ?5, secondary_key_servers = ?6
             WHERE key_manager_uuid = ?1 AND server = ?2",
            params![
                key_manager,
                server.server.as_str(),
                server.timeout,
                server.username,
                password,
                secondaries,
            ],
        )
        .db()?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn delete_key_server(connection: &Connection, key_manager: &str, server: &str) -> StoreResult<()> {
    let deleted = connection
        .execute(
            "DELETE FROM key_servers WHERE key_manager_uuid = ?1 AND server = ?2",
            [key_manager, server],
        )
        .db()?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

// ---- audit ---------------------------------------------------------------------------------

fn append_audit(connection: &Connection, record: &AuditRecord) -> StoreResult<()> {
    // `record.index` is ignored: the database numbers the records.
    connection
        .execute(
            "INSERT INTO audit (time, user, method, path, input, status, error_code)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                record.time,
                record.user,
                record.method,
                record.path,
                record.input,
                record.status,
                record.error_code,
            ],
        )
        .db()?;
    Ok(())
}

fn list_audit(connection: &Connection) -> StoreResult<Vec<AuditRecord>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT idx, time, user, method, path, input, status, error_code
             FROM audit ORDER BY idx",
        )
        .db()?;
    let rows = statement
        .query_map([], |row| {
            Ok(AuditRecord {
                index: row.get(0)?,
                time: row.get(1)?,
                user: row.get(2)?,
                method: row.get(3)?,
                path: row.get(4)?,
                input: row.get(5)?,
                status: row.get(6)?,
                error_code: row.get(7)?,
            })
        })
        .db()?;
    rows.collect::<rusqlite::Result<_>>().db()
}

// ---- the trait -----------------------------------------------------------------------------

#[async_trait]
impl Store for SqliteStore {
    async fn count_users(&self) -> StoreResult<usize> {
        self.read(|connection, _| count_users(connection)).await
    }

    async fn insert_user(&self, user: User) -> StoreResult<()> {
        self.write(move |connection, _| insert_user(connection, &user))
            .await
    }

    async fn find_user(&self, name: &str) -> StoreResult<Option<User>> {
        let name = name.to_string();
        self.read(move |connection, _| find_user(connection, &name))
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read(|connection, _| list_users(connection)).await
    }

    async fn delete_user(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |connection, _| delete_user(connection, &name))
            .await
    }

    async fn list_svms(&self) -> StoreResult<Vec<Svm>> {
        self.read(|connection, _| list_svms(connection)).await
    }

    async fn insert_svm(&self, svm: Svm) -> StoreResult<()> {
        self.write(move |connection, _| insert_svm(connection, &svm))
            .await
    }

    async fn delete_svm(&self, uuid: &str) -> StoreResult<()> {
        let uuid = uuid.to_string();
        self.write(move |connection, _| delete_svm(connection, &uuid))
            .await
    }

    async fn list_certificates(&self) -> StoreResult<Vec<Certificate>> {
        self.read(|connection, secrets| list_certificates(connection, secrets))
            .await
    }

    async fn insert_certificate(&self, certificate: Certificate) -> StoreResult<()> {
        self.write(move |connection, secrets| insert_certificate(connection, secrets, &certificate))
            .await
    }

    async fn delete_certificate(&self, uuid: &str) -> StoreResult<()> {
        let uuid = uuid.to_string();
        self.write(move |connection, _| delete_certificate(connection, &uuid))
            .await
    }

    async fn list_key_managers(&self) -> StoreResult<Vec<KeyManager>> {
        self.read(|connection, secrets| list_key_managers(connection, secrets))
            .await
    }

    async fn get_key_manager(&self, uuid: &str) -> StoreResult<Option<KeyManager>> {
        let uuid = uuid.to_string();
        self.read(move |connection, secrets| get_key_manager(connection, secrets, &uuid))
            .await
    }

    async fn insert_key_manager(&self, key_manager: KeyManager) -> StoreResult<()> {
        self.write(move |connection, secrets| insert_key_manager(connection, secrets, &key_manager))
            .await
    }

    async fn update_key_manager(&self, key_manager: KeyManager) -> StoreResult<()> {
        self.write(move |connection, secrets| update_key_manager(connection, secrets, &key_manager))
            .await
    }

    async fn delete_key_manager(&self, uuid: &str) -> StoreResult<()> {
        let uuid = uuid.to_string();
        self.write(move |connection, _| delete_key_manager(connection, &uuid))
            .await
    }

    async fn add_key_servers(&self, key_manager: &str, servers: Vec<KeyServer>) -> StoreResult<()> {
        let key_manager = key_manager.to_string();
        self.write(move |connection, secrets| {
            add_key_servers(connection, secrets, &key_manager, &servers)
        })
        .await
    }

    async fn update_key_server(&self, key_manager: &str, server: KeyServer) -> StoreResult<()> {
        let key_manager = key_manager.to_string();
        self.write(move |connection, secrets| {
            update_key_server(connection, secrets, &key_manager, &server)
        })
        .await
    }

    async fn delete_key_server(&self, key_manager: &str, server: &str) -> StoreResult<()> {
        let key_manager = key_manager.to_string();
        let server = server.to_string();
        self.write(move |connection, _| delete_key_server(connection, &key_manager, &server))
            .await
    }

    async fn append_audit(&self, record: AuditRecord) -> StoreResult<()> {
        self.write(move |connection, _| append_audit(connection, &record))
            .await
    }

    async fn list_audit(&self) -> StoreResult<Vec<AuditRecord>> {
        self.read(|connection, _| list_audit(connection)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [42; 32];

    fn memory_store() -> SqliteStore {
        SqliteStore::open_in_memory(SecretBox::from_key(KEY)).expect("open in memory")
    }

    fn file_store(path: &Path) -> SqliteStore {
        SqliteStore::open(path, SecretBox::from_key(KEY)).expect("open file")
    }

    fn svm(uuid: &str, name: &str) -> Svm {
        Svm {
            uuid: uuid.into(),
            name: name.into(),
        }
    }

    fn certificate(uuid: &str, name: &str, svm: Option<&Svm>) -> Certificate {
        Certificate {
            uuid: uuid.into(),
            name: name.into(),
            cert_type: CertificateType::Client,
            svm: svm.map(SvmRef::from),
            public_certificate: "-----BEGIN CERTIFICATE-----".into(),
            private_key: Some(Secret::new("PRIVATE-KEY-PLAINTEXT")),
            common_name: "client".into(),
            serial_number: "01".into(),
            ca: "root".into(),
            expiry_time: "2030-01-01T00:00:00Z".into(),
        }
    }

    fn server_ca(uuid: &str, name: &str, svm: Option<&Svm>) -> Certificate {
        Certificate {
            cert_type: CertificateType::ServerCa,
            private_key: None,
            ..certificate(uuid, name, svm)
        }
    }

    fn key_server(address: &str) -> KeyServer {
        KeyServer {
            server: KeyServerAddress::parse(address).expect("address"),
            timeout: 25,
            username: Some("kmip-user".into()),
            password: Some(Secret::new("KS-PASSWORD-PLAINTEXT")),
            secondary_key_servers: vec!["backup1.example.com".into(), "10.0.0.9".into()],
        }
    }

    fn external(uuid: &str, svm: Option<&Svm>, servers: Vec<KeyServer>) -> KeyManager {
        KeyManager {
            uuid: uuid.into(),
            svm: svm.map(SvmRef::from),
            kind: KeyManagerKind::External {
                client_certificate: "client-cert".into(),
                server_ca_certificates: vec!["ca-2".into(), "ca-1".into()],
                servers,
            },
        }
    }

    /// An SVM, a client certificate and two server CAs: what an external key manager needs.
    async fn with_certificates(store: &SqliteStore) -> Svm {
        let vs0 = svm("svm-0", "vs0");
        store.insert_svm(vs0.clone()).await.expect("svm");
        store
            .insert_certificate(certificate("client-cert", "client", Some(&vs0)))
            .await
            .expect("client certificate");
        for (uuid, name) in [("ca-1", "ca one"), ("ca-2", "ca two")] {
            store
                .insert_certificate(server_ca(uuid, name, Some(&vs0)))
                .await
                .expect("server ca");
        }
        vs0
    }

    async fn stored_servers(store: &SqliteStore, key_manager: &str) -> Vec<String> {
        let key_manager = store
            .get_key_manager(key_manager)
            .await
            .expect("get")
            .expect("exists");
        key_manager
            .servers()
            .iter()
            .map(|s| s.server.to_string())
            .collect()
    }

    /// Every stored blob of a sealed column, as the database holds it.
    fn raw_blobs(store: &SqliteStore, query: &str) -> Vec<Vec<u8>> {
        let connection = store.connection.lock().expect("lock");
        let mut statement = connection.prepare(query).expect("prepare");
        statement
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    }

    fn contains(haystack: &[u8], needle: &str) -> bool {
        haystack
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    }

    #[tokio::test]
    async fn users_round_trip() {
        let store = memory_store();
        assert_eq!(store.count_users().await.expect("count"), 0);
        let admin = User {
            name: "admin".into(),
            role: Role::Admin,
            password_hash: "$argon2id$v=19$...".into(),
        };
        store.insert_user(admin.clone()).await.expect("insert");
        assert_eq!(store.count_users().await.expect("count"), 1);
        assert_eq!(
            store.find_user("admin").await.expect("find"),
            Some(admin.clone())
        );
        assert_eq!(store.find_user("nobody").await.expect("find"), None);
        assert!(matches!(
            store.insert_user(admin).await,
            Err(StoreError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn svms_are_listed_by_name_and_names_are_unique() {
        let store = memory_store();
        store.insert_svm(svm("u2", "zeta")).await.expect("insert");
        store.insert_svm(svm("u1", "alpha")).await.expect("insert");
        let names: Vec<_> = store
            .list_svms()
            .await
            .expect("list")
            .into_iter()
            .map(|s| s.name)
            .collect();
        assert_eq!(names, ["alpha", "zeta"]);
        let error = store
            .insert_svm(svm("u3", "alpha"))
            .await
            .expect_err("taken");
        assert_eq!(error, StoreError::Conflict("SVM \"alpha\"".into()));
        // A reused uuid is caught by the primary key, not by a pre-check.
        assert!(matches!(
            store.insert_svm(svm("u1", "other")).await,
            Err(StoreError::Conflict(_))
        ));
        store.delete_svm("u2").await.expect("delete");
        assert_eq!(store.delete_svm("u2").await, Err(StoreError::NotFound));
    }

    #[tokio::test]
    async fn certificates_round_trip_with_the_private_key_sealed() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        let cluster = certificate("cluster-cert", "client", None);
        store
            .insert_certificate(cluster.clone())
            .await
            .expect("cluster scope");

        let listed = store.list_certificates().await.expect("list");
        let names: Vec<_> = listed
            .iter()
            .map(|c| (c.name.as_str(), c.uuid.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("ca one", "ca-1"),
                ("ca two", "ca-2"),
                ("client", "client-cert"),
                ("client", "cluster-cert")
            ]
        );
        assert_eq!(listed[2], certificate("client-cert", "client", Some(&vs0)));
        assert_eq!(listed[3], cluster);
        assert_eq!(listed[0].private_key, None);

        for blob in raw_blobs(
            &store,
            "SELECT private_key FROM certificates WHERE private_key IS NOT NULL",
        ) {
            assert!(!contains(&blob, "PRIVATE-KEY-PLAINTEXT"));
        }
    }

    #[tokio::test]
    async fn certificate_names_are_unique_within_their_scope() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        let vs1 = svm("svm-1", "vs1");
        store.insert_svm(vs1.clone()).await.expect("svm");
        // The same name in another SVM, and twice in the cluster scope would conflict.
        store
            .insert_certificate(certificate("c-vs1", "client", Some(&vs1)))
            .await
            .expect("other svm");
        store
            .insert_certificate(certificate("c-cluster", "client", None))
            .await
            .expect("cluster");
        let error = store
            .insert_certificate(certificate("c-cluster-2", "client", None))
            .await
            .expect_err("cluster duplicate");
        assert!(matches!(error, StoreError::Conflict(m) if m.contains("the cluster")));
        let error = store
            .insert_certificate(certificate("c-vs0-2", "client", Some(&vs0)))
            .await
            .expect_err("svm duplicate");
        assert!(matches!(error, StoreError::Conflict(m) if m.contains("vs0")));
    }

    #[tokio::test]
    async fn key_managers_round_trip_with_servers_in_order_and_secrets_sealed() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        let servers = vec![
            key_server("ks2.example.com"),
            key_server("10.0.0.1:15696"),
            KeyServer {
                username: None,
                password: None,
                secondary_key_servers: vec![],
                ..key_server("[fd00::1]")
            },
        ];
        let svm_manager = external("km-svm", Some(&vs0), servers);
        store
            .insert_key_manager(svm_manager.clone())
            .await
            .expect("insert external");
        let onboard = KeyManager {
            uuid: "km-cluster".into(),
            svm: None,
            kind: KeyManagerKind::Onboard {
                passphrase: Secret::new("ONBOARD-PASSPHRASE-PLAINTEXT"),
            },
        };
        store
            .insert_key_manager(onboard.clone())
            .await
            .expect("insert onboard");

        assert_eq!(
            store.list_key_managers().await.expect("list"),
            [svm_manager.clone(), onboard.clone()]
        );
        assert_eq!(
            store.get_key_manager("km-svm").await.expect("get"),
            Some(svm_manager)
        );
        assert_eq!(store.get_key_manager("missing").await.expect("get"), None);

        for blob in raw_blobs(
            &store,
            "SELECT password FROM key_servers WHERE password IS NOT NULL",
        ) {
            assert!(!contains(&blob, "KS-PASSWORD-PLAINTEXT"));
        }
        for blob in raw_blobs(
            &store,
            "SELECT passphrase FROM key_managers WHERE passphrase IS NOT NULL",
        ) {
            assert!(!contains(&blob, "ONBOARD-PASSPHRASE-PLAINTEXT"));
        }
    }

    #[tokio::test]
    async fn a_sealed_value_moved_to_another_row_does_not_open() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        let manager = external(
            "km",
            Some(&vs0),
            vec![key_server("a.example.com"), key_server("b.example.com")],
        );
        store.insert_key_manager(manager).await.expect("insert");
        {
            let connection = store.connection.lock().expect("lock");
            connection
                .execute(
                    "UPDATE key_servers SET password =
                         (SELECT password FROM key_servers WHERE server = 'a.example.com:5696')
                     WHERE server = 'b.example.com:5696'",
                    [],
                )
                .expect("swap");
        }
        let error = store
            .get_key_manager("km")
            .await
            .expect_err("swapped secret");
        assert!(matches!(&error, StoreError::Unreadable(m) if m.contains("key_servers.password")));
        assert!(!error.to_string().contains("PLAINTEXT"));
    }

    #[tokio::test]
    async fn one_key_manager_per_svm_and_one_for_the_cluster() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        store
            .insert_key_manager(external("km-1", Some(&vs0), vec![]))
            .await
            .expect("first");
        let error = store
            .insert_key_manager(external("km-2", Some(&vs0), vec![]))
            .await
            .expect_err("second for the svm");
        assert!(matches!(error, StoreError::Conflict(m) if m.contains("vs0")));
        store
            .insert_key_manager(external("km-3", None, vec![]))
            .await
            .expect("cluster");
        let error = store
            .insert_key_manager(external("km-4", None, vec![]))
            .await
            .expect_err("second for the cluster");
        assert!(matches!(error, StoreError::Conflict(m) if m.contains("cluster")));
    }

    #[tokio::test]
    async fn inserting_a_key_manager_checks_its_servers() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        let five = (1..=5)
            .map(|i| key_server(&format!("ks{i}.example.com")))
            .collect();
        assert_eq!(
            store
                .insert_key_manager(external("km", Some(&vs0), five))
                .await,
            Err(StoreError::KeyServerLimit { existing: 0 })
        );
        let twice = vec![
            key_server("ks1.example.com"),
            key_server("KS1.example.com:5696"),
        ];
        assert_eq!(
            store
                .insert_key_manager(external("km", Some(&vs0), twice))
                .await,
            Err(StoreError::KeyServerExists("ks1.example.com:5696".into()))
        );
        // Nothing of the refused key managers was kept.
        assert!(store.list_key_managers().await.expect("list").is_empty());
    }

    #[tokio::test]
    async fn updating_a_key_manager_replaces_its_settings_but_not_its_servers() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        store
            .insert_key_manager(external(
                "km",
                Some(&vs0),
                vec![key_server("ks1.example.com")],
            ))
            .await
            .expect("insert");
        store
            .insert_certificate(certificate("client-2", "client 2", Some(&vs0)))
            .await
            .expect("certificate");
        let updated = KeyManager {
            uuid: "km".into(),
            svm: Some(SvmRef::from(&vs0)),
            kind: KeyManagerKind::External {
                client_certificate: "client-2".into(),
                server_ca_certificates: vec!["ca-1".into()],
                servers: vec![],
            },
        };
        store.update_key_manager(updated).await.expect("update");
        let stored = store
            .get_key_manager("km")
            .await
            .expect("get")
            .expect("exists");
        let KeyManagerKind::External {
            client_certificate,
            server_ca_certificates,
            servers,
        } = stored.kind
        else {
            panic!("not external");
        };
        assert_eq!(client_certificate, "client-2");
        assert_eq!(server_ca_certificates, ["ca-1"]);
        assert_eq!(servers, [key_server("ks1.example.com")]);
        // The replaced certificates are free again.
        store
            .delete_certificate("ca-2")
            .await
            .expect("delete unused ca");

        let missing = external("missing", None, vec![]);
        assert_eq!(
            store.update_key_manager(missing).await,
            Err(StoreError::NotFound)
        );
    }

    #[tokio::test]
    async fn an_onboard_passphrase_is_updated() {
        let store = memory_store();
        let onboard = |passphrase: &str| KeyManager {
            uuid: "km".into(),
            svm: None,
            kind: KeyManagerKind::Onboard {
                passphrase: Secret::new(passphrase),
            },
        };
        store
            .insert_key_manager(onboard("first"))
            .await
            .expect("insert");
        store
            .update_key_manager(onboard("second"))
            .await
            .expect("update");
        assert_eq!(
            store.get_key_manager("km").await.expect("get"),
            Some(onboard("second"))
        );
        assert!(matches!(
            store
                .add_key_servers("km", vec![key_server("ks.example.com")])
                .await,
            Err(StoreError::Conflict(_))
        ));
    }

    #[tokio::test]
    async fn adding_key_servers_keeps_the_limit_and_refuses_duplicates_all_or_nothing() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        store
            .insert_key_manager(external(
                "km",
                Some(&vs0),
                vec![key_server("ks1.example.com")],
            ))
            .await
            .expect("insert");
        assert_eq!(
            store
                .add_key_servers("missing", vec![key_server("ks2.example.com")])
                .await,
            Err(StoreError::NotFound)
        );
        // ks2 is new but ks1 is stored: neither is added.
        assert_eq!(
            store
                .add_key_servers(
                    "km",
                    vec![key_server("ks2.example.com"), key_server("ks1.example.com")]
                )
                .await,
            Err(StoreError::KeyServerExists("ks1.example.com:5696".into()))
        );
        assert_eq!(stored_servers(&store, "km").await, ["ks1.example.com:5696"]);
        let four_more = (2..=5)
            .map(|i| key_server(&format!("ks{i}.example.com")))
            .collect();
        assert_eq!(
            store.add_key_servers("km", four_more).await,
            Err(StoreError::KeyServerLimit { existing: 1 })
        );
        assert_eq!(stored_servers(&store, "km").await.len(), 1);

        let three_more = (2..=4)
            .map(|i| key_server(&format!("ks{i}.example.com")))
            .collect();
        store.add_key_servers("km", three_more).await.expect("add");
        assert_eq!(
            stored_servers(&store, "km").await,
            [
                "ks1.example.com:5696",
                "ks2.example.com:5696",
                "ks3.example.com:5696",
                "ks4.example.com:5696"
            ]
        );
        assert_eq!(
            store
                .add_key_servers("km", vec![key_server("ks5.example.com")])
                .await,
            Err(StoreError::KeyServerLimit { existing: 4 })
        );
    }

    #[tokio::test]
    async fn key_servers_are_updated_and_deleted_by_address() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        store
            .insert_key_manager(external(
                "km",
                Some(&vs0),
                vec![key_server("ks1.example.com"), key_server("ks2.example.com")],
            ))
            .await
            .expect("insert");
        let changed = KeyServer {
            timeout: -1,
            username: Some("other".into()),
            password: Some(Secret::new("new password")),
            secondary_key_servers: vec!["10.1.1.1".into()],
            ..key_server("ks1.example.com")
        };
        store
            .update_key_server("km", changed.clone())
            .await
            .expect("update");
        assert_eq!(
            store
                .update_key_server("km", key_server("ks9.example.com"))
                .await,
            Err(StoreError::NotFound)
        );
        store
            .delete_key_server("km", "ks2.example.com:5696")
            .await
            .expect("delete");
        assert_eq!(
            store.delete_key_server("km", "ks2.example.com:5696").await,
            Err(StoreError::NotFound)
        );
        // Re-adding goes after the last one.
        store
            .add_key_servers("km", vec![key_server("ks0.example.com")])
            .await
            .expect("add");
        let stored = store
            .get_key_manager("km")
            .await
            .expect("get")
            .expect("exists");
        assert_eq!(stored.servers(), [changed, key_server("ks0.example.com")]);
    }

    #[tokio::test]
    async fn deleting_a_key_manager_deletes_its_servers_and_frees_its_certificates() {
        let store = memory_store();
        let vs0 = with_certificates(&store).await;
        store
            .insert_key_manager(external(
                "km",
                Some(&vs0),
                vec![key_server("ks1.example.com")],
            ))
            .await
            .expect("insert");
        let error = store
            .delete_certificate("client-cert")
            .await
            .expect_err("in use");
        assert!(matches!(error, StoreError::Conflict(m) if m.contains("client")));
        let error = store.delete_certificate("ca-1").await.expect_err("in use");
        assert!(matches!(error, StoreError::Conflict(_)));
        let error = store.delete_svm("svm-0").await.expect_err("in use");
        assert!(matches!(error, StoreError::Conflict(m) if m.contains("vs0")));

        store.delete_key_manager("km").await.expect("delete");
        assert_eq!(
            store.delete_key_manager("km").await,
            Err(StoreError::NotFound)
        );
        assert!(raw_blobs(&store, "SELECT password FROM key_servers").is_empty());
        assert!(
            raw_blobs(
                &store,
                "SELECT CAST(certificate_uuid AS BLOB) FROM key_manager_server_cas"
            )
            .is_empty()
        );

        // The certificates still hold the SVM; once they are gone, so can it be.
        assert!(matches!(
            store.delete_svm("svm-0").await,
            Err(StoreError::Conflict(_))
        ));
        for uuid in ["client-cert", "ca-1", "ca-2"] {
            store
                .delete_certificate(uuid)
                .await
                .expect("delete certificate");
        }
        assert_eq!(
            store.delete_certificate("ca-1").await,
            Err(StoreError::NotFound)
        );
        store.delete_svm("svm-0").await.expect("delete svm");
    }

    #[tokio::test]
    async fn audit_records_are_numbered_by_the_store() {
        let store = memory_store();
        let record = |status: u16, error_code: Option<&str>| AuditRecord {
            index: 999,
            time: "2025-01-01T00:00:00Z".into(),
            user: "admin".into(),
            method: "POST".into(),
            path: "/api/security/key-managers".into(),
            input: "{\"password\":\"<redacted>\"}".into(),
            status,
            error_code: error_code.map(String::from),
        };
        store.append_audit(record(201, None)).await.expect("append");
        store
            .append_audit(record(409, Some("65536823")))
            .await
            .expect("append");
        let listed = store.list_audit().await.expect("list");
        assert_eq!(
            listed,
            [
                AuditRecord {
                    index: 1,
                    ..record(201, None)
                },
                AuditRecord {
                    index: 2,
                    ..record(409, Some("65536823"))
                },
            ]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_additions_never_exceed_the_limit() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("keymgr.db");
        let store = file_store(&path);
        let vs0 = with_certificates(&store).await;
        store
            .insert_key_manager(external(
                "km",
                Some(&vs0),
                vec![key_server("ks1.example.com"), key_server("ks2.example.com")],
            ))
            .await
            .expect("insert");
        // A second connection to the same file, as a second process would have: the limit must
        // hold across connections, not only behind the mutex.
        let other = file_store(&path);

        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = if i % 2 == 0 {
                    store.clone()
                } else {
                    other.clone()
                };
                tokio::spawn(async move {
                    store
                        .add_key_servers("km", vec![key_server(&format!("new{i}.example.com"))])
                        .await
                })
            })
            .collect();
        let mut added = 0;
        let mut refused = 0;
        for task in tasks {
            match task.await.expect("join") {
                Ok(()) => added += 1,
                Err(StoreError::KeyServerLimit { existing }) => {
                    assert!(existing >= 3);
                    refused += 1;
                }
                Err(other) => panic!("unexpected error {other:?}"),
            }
        }
        assert_eq!((added, refused), (2, 6));
        assert_eq!(stored_servers(&store, "km").await.len(), 4);
        assert_eq!(stored_servers(&other, "km").await.len(), 4);
    }

    #[tokio::test]
    async fn a_reopened_database_keeps_its_data_and_schema_version() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("keymgr.db");
        let manager = {
            let store = file_store(&path);
            let vs0 = with_certificates(&store).await;
            let manager = external("km", Some(&vs0), vec![key_server("ks1.example.com")]);
            store
                .insert_key_manager(manager.clone())
                .await
                .expect("insert");
            manager
        };
        let store = file_store(&path);
        assert_eq!(store.list_key_managers().await.expect("list"), [manager]);
        assert_eq!(store.list_certificates().await.expect("list").len(), 3);
        {
            let connection = store.connection.lock().expect("lock");
            assert_eq!(
                schema_version(&connection).expect("version"),
                MIGRATIONS.len()
            );
            let mode: String = connection
                .pragma_query_value(None, "journal_mode", |row| row.get(0))
                .expect("journal mode");
            assert_eq!(mode, "wal");
        }
        let permissions = std::fs::metadata(&path).expect("metadata").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&permissions) & 0o077,
            0
        );

        // Under another key the secrets do not open, and say so without showing them.
        let wrong_key = SqliteStore::open(&path, SecretBox::from_key([1; 32])).expect("open");
        let error = wrong_key.list_key_managers().await.expect_err("wrong key");
        assert!(matches!(&error, StoreError::Unreadable(_)));
        assert!(!error.to_string().contains("PLAINTEXT"));
    }

    #[tokio::test]
    async fn a_database_from_a_newer_program_is_refused() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("keymgr.db");
        drop(file_store(&path));
        {
            let connection = Connection::open(&path).expect("open");
            connection
                .pragma_update(None, "user_version", 99)
                .expect("set version");
        }
        let error = SqliteStore::open(&path, SecretBox::from_key(KEY)).expect_err("too new");
        assert!(matches!(error, StoreError::Backend(m) if m.contains("99")));
    }
}
