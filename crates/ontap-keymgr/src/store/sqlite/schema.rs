//! The schema and its migrations, and how the database file is opened and configured.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::{SqlResultExt, to_i64};
use crate::store::{StoreError, StoreResult};

/// How long a statement waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The schema, one migration per version: `MIGRATIONS[i]` takes the database from version `i` to
/// `i + 1` (`PRAGMA user_version`). Append new versions; never edit one that has shipped.
pub(super) const MIGRATIONS: &[&str] = &[
    MIGRATION_1,
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5,
    MIGRATION_6,
    MIGRATION_7,
];

/// Volumes: an SVM with volumes, and a key manager with volume keys, cannot be deleted.
const MIGRATION_7: &str = r#"
CREATE TABLE volumes (
    uuid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    svm_uuid TEXT NOT NULL REFERENCES svms (uuid) ON DELETE RESTRICT,
    size INTEGER NOT NULL,
    key_id TEXT,
    key_manager_uuid TEXT REFERENCES key_managers (uuid) ON DELETE RESTRICT,
    stored_on TEXT,
    UNIQUE (svm_uuid, name)
) STRICT;
"#;

/// ONTAP's jobs, kept a while after they end.
const MIGRATION_6: &str = r#"
CREATE TABLE jobs (
    uuid TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failure')),
    message TEXT NOT NULL,
    code INTEGER NOT NULL,
    start_time INTEGER NOT NULL,
    end_time INTEGER,
    heartbeat INTEGER NOT NULL
) STRICT;
"#;

/// The records of authentication keys: a key manager with keys cannot be deleted.
const MIGRATION_5: &str = r#"
CREATE TABLE auth_keys (
    key_manager_uuid TEXT NOT NULL REFERENCES key_managers (uuid) ON DELETE RESTRICT,
    key_id TEXT NOT NULL,
    key_tag TEXT NOT NULL,
    stored_on TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (key_manager_uuid, key_id)
) STRICT;
"#;

/// The key manager configuration (`/api/security/key-manager-configs`): one row once changed.
const MIGRATION_4: &str = r#"
CREATE TABLE key_manager_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    health_monitor_polling_interval INTEGER NOT NULL CHECK (health_monitor_polling_interval > 0),
    cloud_kms_retry_count INTEGER NOT NULL CHECK (cloud_kms_retry_count >= 0)
) STRICT;
"#;

/// Failed logins and lockouts per account; the client address of audited requests.
const MIGRATION_3: &str = r#"
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0);
ALTER TABLE users ADD COLUMN locked_until INTEGER;
ALTER TABLE audit ADD COLUMN address TEXT;
"#;

/// The cluster's security configuration (`/api/security`): one row, written when first changed.
const MIGRATION_2: &str = r#"
CREATE TABLE security_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fips INTEGER NOT NULL CHECK (fips IN (0, 1)),
    protocol_versions TEXT NOT NULL,
    cipher_suites TEXT NOT NULL
) STRICT;
"#;

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

/// Creates the database file readable by its owner only (it holds password hashes), before
/// SQLite creates it with the default umask. SQLite gives its -wal and -shm files the same mode.
pub(super) fn create_private_file(path: &Path) -> StoreResult<()> {
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

pub(super) fn configure(connection: &Connection) -> StoreResult<()> {
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
pub(super) fn migrate(connection: &mut Connection) -> StoreResult<()> {
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

pub(super) fn schema_version(connection: &Connection) -> StoreResult<usize> {
    let version: i64 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .db()?;
    usize::try_from(version)
        .map_err(|_| StoreError::Backend(format!("invalid database schema version {version}")))
}
