//! The PostgreSQL schema and its migrations, and what instances of one database must share:
//! the cluster's uuid and the key that seals the secrets.

use deadpool_postgres::Transaction;

use super::{PgResultExt, corrupt, execute, get, row};
use crate::store::secrets::SecretBox;
use crate::store::{StoreError, StoreResult};

/// The key of the advisory lock held while the schema is checked and migrated: any number, the
/// same for every instance ("keymgr" in ASCII).
const MIGRATION_LOCK: i64 = 0x6b65_796d_6772;

/// One migration per version: `MIGRATIONS[i]` takes the database from version `i` to `i + 1`.
/// Append new versions; never edit one that has shipped. The tables are SQLite's (same names,
/// same constraints) in PostgreSQL's types, with what instances share besides.
pub(super) const MIGRATIONS: &[&str] = &[
    MIGRATION_1,
    MIGRATION_2,
    MIGRATION_3,
    MIGRATION_4,
    MIGRATION_5,
    MIGRATION_6,
];

/// Volumes, as SQLite's seventh migration.
const MIGRATION_6: &str = r#"
CREATE TABLE volumes (
    uuid TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    svm_uuid TEXT NOT NULL REFERENCES svms (uuid) ON DELETE RESTRICT,
    size BIGINT NOT NULL,
    key_id TEXT,
    key_manager_uuid TEXT REFERENCES key_managers (uuid) ON DELETE RESTRICT,
    stored_on TEXT,
    UNIQUE (svm_uuid, name)
);
"#;

/// ONTAP's jobs, as SQLite's sixth migration.
const MIGRATION_5: &str = r#"
CREATE TABLE jobs (
    uuid TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'success', 'failure')),
    message TEXT NOT NULL,
    code BIGINT NOT NULL,
    start_time BIGINT NOT NULL,
    end_time BIGINT,
    heartbeat BIGINT NOT NULL
);
"#;

/// The records of authentication keys, as SQLite's fifth migration.
const MIGRATION_4: &str = r#"
CREATE TABLE auth_keys (
    key_manager_uuid TEXT NOT NULL REFERENCES key_managers (uuid) ON DELETE RESTRICT,
    key_id TEXT NOT NULL,
    key_tag TEXT NOT NULL,
    stored_on TEXT NOT NULL,
    position BIGSERIAL NOT NULL,
    PRIMARY KEY (key_manager_uuid, key_id)
);
"#;

/// A counter of its own for the security and key manager configurations, so that other writes
/// do not make every instance read them again.
const MIGRATION_3: &str = r#"
CREATE SEQUENCE settings_changes;
SELECT nextval('settings_changes');
"#;

/// The health monitor's work shared by the instances: whose turn it is to check a key manager's
/// servers, and the last checks, for the instances that did not make them. A check goes with
/// its key server (deleted, or changed: the store deletes it).
const MIGRATION_2: &str = r#"
CREATE TABLE monitor_turns (
    key_manager_uuid TEXT PRIMARY KEY REFERENCES key_managers (uuid) ON DELETE CASCADE,
    holder TEXT NOT NULL,
    until BIGINT NOT NULL
);

CREATE TABLE key_server_checks (
    key_manager_uuid TEXT NOT NULL,
    server TEXT NOT NULL,
    state TEXT NOT NULL,
    problem_code BIGINT,
    problem_message TEXT,
    tls_version TEXT,
    tls_suite TEXT,
    check_time TEXT NOT NULL,
    PRIMARY KEY (key_manager_uuid, server),
    FOREIGN KEY (key_manager_uuid, server)
        REFERENCES key_servers (key_manager_uuid, server) ON DELETE CASCADE
);
"#;

const MIGRATION_1: &str = r#"
CREATE TABLE users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'readonly')),
    password_hash TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until BIGINT
);

CREATE TABLE svms (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE certificates (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL
        CHECK (type IN ('client', 'server', 'client_ca', 'server_ca', 'root_ca')),
    svm_uuid TEXT REFERENCES svms (uuid) ON DELETE RESTRICT,
    public_certificate TEXT NOT NULL,
    private_key BYTEA,
    common_name TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    ca TEXT NOT NULL,
    expiry_time TEXT NOT NULL
);
-- NULLs are distinct in a unique index, so the cluster scope (NULL) is compared as ''.
CREATE UNIQUE INDEX certificates_scope_name ON certificates (COALESCE(svm_uuid, ''), name);
CREATE INDEX certificates_svm ON certificates (svm_uuid);

CREATE TABLE key_managers (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    svm_uuid TEXT REFERENCES svms (uuid) ON DELETE RESTRICT,
    kind TEXT NOT NULL CHECK (kind IN ('external', 'onboard')),
    client_certificate_uuid TEXT REFERENCES certificates (uuid) ON DELETE RESTRICT,
    passphrase BYTEA,
    CHECK (CASE kind
        WHEN 'external' THEN client_certificate_uuid IS NOT NULL AND passphrase IS NULL
        ELSE client_certificate_uuid IS NULL AND passphrase IS NOT NULL
    END)
);
-- One key manager per SVM, and one for the cluster (NULL, compared as '').
CREATE UNIQUE INDEX key_managers_scope ON key_managers (COALESCE(svm_uuid, ''));
CREATE INDEX key_managers_svm ON key_managers (svm_uuid);
CREATE INDEX key_managers_client_certificate ON key_managers (client_certificate_uuid);

CREATE TABLE key_manager_server_cas (
    key_manager_uuid TEXT NOT NULL REFERENCES key_managers (uuid) ON DELETE CASCADE,
    certificate_uuid TEXT NOT NULL REFERENCES certificates (uuid) ON DELETE RESTRICT,
    position INTEGER NOT NULL,
    PRIMARY KEY (key_manager_uuid, position)
);
CREATE INDEX key_manager_server_cas_certificate ON key_manager_server_cas (certificate_uuid);

CREATE TABLE key_servers (
    key_manager_uuid TEXT NOT NULL REFERENCES key_managers (uuid) ON DELETE CASCADE,
    server TEXT NOT NULL,
    position INTEGER NOT NULL,
    timeout BIGINT NOT NULL,
    username TEXT,
    password BYTEA,
    secondary_key_servers TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (key_manager_uuid, server),
    UNIQUE (key_manager_uuid, position)
);

CREATE TABLE audit (
    idx BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time TEXT NOT NULL,
    "user" TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    input TEXT NOT NULL,
    status INTEGER NOT NULL,
    error_code TEXT,
    address TEXT
);

CREATE TABLE security_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fips BOOLEAN NOT NULL,
    protocol_versions TEXT NOT NULL,
    cipher_suites TEXT NOT NULL
);

CREATE TABLE key_manager_config (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    health_monitor_polling_interval INTEGER NOT NULL CHECK (health_monitor_polling_interval > 0),
    cloud_kms_retry_count INTEGER NOT NULL CHECK (cloud_kms_retry_count >= 0)
);

-- What the instances of this database share: the cluster's uuid, the key check.
CREATE TABLE shared (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- Bumped after each commit, read at the start of each request (see the module's docs).
-- Called once here, so that the first bump moves `last_value`.
CREATE SEQUENCE data_changes;
CREATE SEQUENCE account_changes;
SELECT nextval('data_changes'), nextval('account_changes');
"#;

/// What [`prepare`] found shared, or made so.
pub(super) struct Shared {
    pub(super) cluster_uuid: String,
    /// The change counters now.
    pub(super) changes: super::Counters,
}

/// In `transaction`, under the migration lock: applies the missing migrations, then checks the
/// key and the cluster uuid (recording them when this is the first instance).
pub(super) async fn prepare(
    transaction: &Transaction<'_>,
    secrets: &SecretBox,
    cluster_uuid: &str,
) -> StoreResult<Shared> {
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .db()?;
    migrate(transaction).await?;
    check_key(transaction, secrets).await?;
    let cluster_uuid = shared_value(transaction, "cluster_uuid", cluster_uuid.as_bytes()).await?;
    let cluster_uuid = String::from_utf8(cluster_uuid).map_err(|_| corrupt("the cluster uuid"))?;
    let counters = transaction.query_one(super::COUNTERS, &[]).await.db()?;
    Ok(Shared {
        cluster_uuid,
        changes: super::counters(&counters)?,
    })
}

async fn migrate(transaction: &Transaction<'_>) -> StoreResult<()> {
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS keymgr_schema (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 version INTEGER NOT NULL
             );
             INSERT INTO keymgr_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
        )
        .await
        .db()?;
    let version: i32 = get(
        &transaction
            .query_one("SELECT version FROM keymgr_schema", &[])
            .await
            .db()?,
        0,
    )?;
    let version = usize::try_from(version)
        .map_err(|_| StoreError::Backend(format!("invalid schema version {version}")))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database schema is version {version}, newer than this program's {}",
            MIGRATIONS.len()
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        transaction.batch_execute(migration).await.db()?;
        let reached = i32::try_from(index + 1).map_err(|_| corrupt("a schema version"))?;
        execute(
            transaction,
            "UPDATE keymgr_schema SET version = $1",
            &[&reached],
        )
        .await?;
        tracing::info!(version = reached, "migrated the PostgreSQL schema");
    }
    Ok(())
}

/// The first instance records a value only its key opens; an instance with another key is
/// refused before it writes anything the others could not read.
async fn check_key(transaction: &Transaction<'_>, secrets: &SecretBox) -> StoreResult<()> {
    let recorded = shared_value(transaction, "key_check", &secrets.key_check()?).await?;
    if secrets.opens_key_check(&recorded) {
        return Ok(());
    }
    Err(StoreError::Unreadable(
        "this instance's secret key is not the one the database's secrets are sealed with: give \
         every instance of one database the same key file (secret_key_file in [store], or \
         KEYMGR_SECRET_KEY_FILE), copied from the first instance's data dir"
            .into(),
    ))
}

/// The shared value `name`: the one recorded, or `proposed`, recorded now.
async fn shared_value(
    transaction: &Transaction<'_>,
    name: &str,
    proposed: &[u8],
) -> StoreResult<Vec<u8>> {
    execute(
        transaction,
        "INSERT INTO shared (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        &[&name, &proposed],
    )
    .await?;
    let found = row(
        transaction,
        "SELECT value FROM shared WHERE name = $1",
        &[&name],
    )
    .await?
    .ok_or_else(|| corrupt(&format!("shared value {name}")))?;
    get(&found, 0)
}
