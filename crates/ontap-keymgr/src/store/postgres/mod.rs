//! The PostgreSQL store: several instances of the service share one database, and every rule
//! that holds on one instance holds across them, inside PostgreSQL's transactions.
//!
//! Why `tokio-postgres` with a `deadpool` pool rather than `sqlx`: the store's SQL is written by
//! hand either way (the SQLite store's is, and sqlx's compile-time checks need a database at
//! build time, which CI does not have); tokio-postgres is the driver sqlx's own benchmarks are
//! measured against, gives typed rows and prepared-statement caching per connection, and brings
//! about 30 crates where sqlx-postgres brings about 90. deadpool bounds the connections, and the
//! time to get one.
//!
//! - Writes run in one transaction each, acknowledged only after `COMMIT` returned; the audit
//!   record of the request that made the change is appended in the same transaction. Rules that
//!   read before they write lock what they read first (`SELECT ... FOR UPDATE` on the key
//!   manager before counting its key servers; the admins before removing one), so that
//!   instances cannot both pass a check; unique indexes back every unique name.
//! - Other instances' changes: each write bumps a sequence (`data_changes` for configuration
//!   objects, `account_changes` for users' passwords and locks, `settings_changes` for the
//!   security and key manager configurations) before its commit and again after it. [`Store::refresh`] reads both in one round trip at the start of each request;
//!   what an instance keeps in memory is dropped when they moved. Sequences are not
//!   transactional: the first bump is seen before the change is, so a reader that loaded in
//!   between is told again by the second; one that sees the second also sees the change.
//! - Every operation is bounded in time ([`OPERATION_LIMIT`]): a database that does not answer
//!   makes requests fail with [`StoreError::Unavailable`] (503) rather than hang, and the pool
//!   reconnects by itself once it answers again.
//! - Secrets are sealed before they reach SQL, bound to their column and row, as in SQLite.

mod checks;
mod jobs;
mod keys;
mod objects;
mod schema;
mod settings;
mod tls;
mod users;
mod volumes;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{
    Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, Transaction,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, Row};

use super::secrets::SecretBox;
use super::{
    AccountStore, AuditStore, CheckStore, JobStore, KeyStore, ObjectStore, SettingsStore, Store,
    StoreError, StoreResult, VolumeStore,
};
use crate::domain::model::{
    AuditRecord, AuthKey, Certificate, CertificateId, Job, KeyManager, KeyManagerConfig,
    KeyManagerId, KeyServer, SecuritySettings, SharedCheck, Svm, SvmId, User, Volume, VolumeId,
    VolumeKey,
};
use crate::domain::store::Changes;

/// How long any one operation (getting a connection included) may take before it fails as
/// unavailable.
pub const OPERATION_LIMIT: Duration = Duration::from_secs(5);
/// How long opening a connection may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(3);

/// What a write changed, for the other instances' caches: each has its counter, so that a
/// change drops only what it makes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Changed {
    /// SVMs, certificates, key managers and their servers: the read model.
    Data,
    /// A user's password, role, existence or lock: verified credentials.
    Accounts,
    /// The security and key manager configurations.
    Settings,
    /// Failed-login counters, the audit trail, the monitor's turns and checks: nothing any
    /// instance caches.
    Nothing,
}

/// The change counters, in the order [`COUNTERS`] reads them.
type Counters = [i64; 3];

/// Reads the counters of [`Changed::Data`], [`Changed::Accounts`] and [`Changed::Settings`].
const COUNTERS: &str = "SELECT (SELECT last_value FROM data_changes),
        (SELECT last_value FROM account_changes), (SELECT last_value FROM settings_changes)";

/// The [`Store`] on PostgreSQL. Cloning shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    secrets: Arc<SecretBox>,
    /// The change counters as this instance last read them.
    seen: Arc<Mutex<Counters>>,
    cluster_uuid: String,
    /// The database and its hosts, for the log: never the URL, which may hold a password.
    description: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects, brings the schema up to date (under an advisory lock, so that instances
    /// starting together apply each migration once), and checks that `secrets` is the key the
    /// database's secrets are sealed with: the first instance records a check value, others
    /// with another key are refused. `cluster_uuid` is this instance's proposal; the database
    /// keeps the first one it is given, and [`PostgresStore::cluster_uuid`] answers it.
    pub async fn open(
        url: &str,
        max_connections: usize,
        secrets: SecretBox,
        cluster_uuid: &str,
    ) -> StoreResult<PostgresStore> {
        let tls = tls::settings(url)?;
        let mut config: tokio_postgres::Config = tls
            .url
            .parse()
            .map_err(|e| StoreError::Backend(format!("invalid database URL: {e}")))?;
        config.ssl_mode(tls::postgres_mode(tls.mode));
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_LIMIT);
        }
        if config.get_application_name().is_none() {
            config.application_name("ontap-keymgr");
        }
        let description = describe(&config);
        let manager = Manager::from_config(
            config,
            tls::connector(&tls)?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(OPERATION_LIMIT))
            .create_timeout(Some(CONNECT_LIMIT))
            .recycle_timeout(Some(CONNECT_LIMIT))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))?;
        let mut store = PostgresStore {
            pool,
            secrets: Arc::new(secrets),
            seen: Arc::new(Mutex::new([0; 3])),
            cluster_uuid: String::new(),
            description,
        };
        let mut client = store.pool.get().await.map_err(pool_error)?;
        let transaction = client.transaction().await.db()?;
        let shared = schema::prepare(&transaction, &store.secrets, cluster_uuid).await?;
        transaction.commit().await.db()?;
        store.cluster_uuid = shared.cluster_uuid;
        *store.lock_seen() = shared.changes;
        Ok(store)
    }

    /// The cluster's uuid, the same for every instance of the database.
    pub fn cluster_uuid(&self) -> &str {
        &self.cluster_uuid
    }

    /// Which database, for the log.
    pub fn describe(&self) -> &str {
        &self.description
    }

    fn lock_seen(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `operation` within [`OPERATION_LIMIT`].
    async fn bounded<T>(&self, operation: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        tokio::time::timeout(OPERATION_LIMIT, operation)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "no answer within {} seconds",
                    OPERATION_LIMIT.as_secs()
                )))
            })
    }

    /// Runs `read` in a read-only repeatable-read transaction: one consistent view across its
    /// queries.
    async fn read<T, F>(&self, read: F) -> StoreResult<T>
    where
        F: AsyncFnOnce(&Transaction<'_>, &SecretBox) -> StoreResult<T>,
    {
        self.bounded(async {
            let mut client = self.pool.get().await.map_err(pool_error)?;
            let transaction = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .db()?;
            let value = read(&transaction, &self.secrets).await?;
            transaction.commit().await.db()?;
            Ok(value)
        })
        .await
    }

    /// Runs `write` in a read-committed transaction, commits, and tells the other instances
    /// what changed; answers only then.
    async fn write<T, F>(&self, changed: Changed, write: F) -> StoreResult<T>
    where
        F: AsyncFnOnce(&Transaction<'_>, &SecretBox) -> StoreResult<T>,
    {
        // The request's audit record, committed with its change (not with the bookkeeping a
        // request may write on the way: shared checks, login counters).
        let audit = match changed {
            Changed::Nothing => None,
            _ => crate::domain::audit::pending(),
        };
        let bump = match changed {
            Changed::Data => Some("SELECT nextval('data_changes')"),
            Changed::Accounts => Some("SELECT nextval('account_changes')"),
            Changed::Settings => Some("SELECT nextval('settings_changes')"),
            Changed::Nothing => None,
        };
        self.bounded(async {
            let mut client = self.pool.get().await.map_err(pool_error)?;
            let transaction = client.transaction().await.db()?;
            let value = write(&transaction, &self.secrets).await?;
            if let Some((record, keep)) = &audit {
                settings::append_audit(&transaction, record, *keep).await?;
            }
            // Sequences are not transactional: this bump is seen at once, so that a reader
            // that loaded what was there before it reloads...
            if let Some(bump) = bump {
                rows(&transaction, bump, &[]).await?;
            }
            transaction.commit().await.db()?;
            if audit.is_some() {
                crate::domain::audit::recorded();
            }
            // ...and this one after the commit, for a reader that loaded between the two. The
            // change is committed whatever becomes of it: acknowledged, not refused.
            if let Some(bump) = bump {
                let bumped = async {
                    let statement = client.prepare_cached(bump).await.db()?;
                    client.query(&statement, &[]).await.db()
                };
                if let Err(error) = bumped.await {
                    tracing::warn!(%error, "a change committed, but the other instances were not told at once");
                }
            }
            Ok(value)
        })
        .await
    }
}

/// "database keymgr on 127.0.0.1:5432": what a log may say of a URL.
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .zip(config.get_ports().iter().chain(std::iter::repeat(&5432)))
        .map(|(host, port)| match host {
            tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "database {} on {}",
        config.get_dbname().or(config.get_user()).unwrap_or("?"),
        hosts.join(",")
    )
}

// ---- errors and rows -----------------------------------------------------------------------

/// Maps the driver's errors to the store's: a constraint the code did not check first (a race
/// with another instance) is a conflict; a lost or refused connection is unavailability;
/// anything else a backend failure. PostgreSQL's messages name constraints, and the store never
/// passes a secret as anything but a sealed parameter, so no secret can leak through them.
fn db_error(error: tokio_postgres::Error) -> StoreError {
    if let Some(code) = error.code() {
        return match code {
            c if *c == SqlState::UNIQUE_VIOLATION
                || *c == SqlState::FOREIGN_KEY_VIOLATION
                || *c == SqlState::CHECK_VIOLATION
                || *c == SqlState::EXCLUSION_VIOLATION =>
            {
                StoreError::Conflict(format!("a conflicting record ({error})"))
            }
            c if *c == SqlState::DISK_FULL => StoreError::Full(error.to_string()),
            c if c.code().starts_with("08")
                || *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CRASH_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::TOO_MANY_CONNECTIONS =>
            {
                StoreError::Unavailable(error.to_string())
            }
            _ => StoreError::Backend(error.to_string()),
        };
    }
    let io = std::error::Error::source(&error).is_some_and(|s| s.is::<std::io::Error>());
    if error.is_closed() || io {
        StoreError::Unavailable(with_causes(&error))
    } else {
        StoreError::Backend(with_causes(&error))
    }
}

/// An error with its causes: "error performing TLS handshake" alone does not say that the
/// server's certificate failed verification.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = inner.source();
    }
    text
}

fn pool_error(error: PoolError) -> StoreError {
    match error {
        PoolError::Backend(error) => db_error(error),
        other => StoreError::Unavailable(format!("no database connection: {other}")),
    }
}

trait PgResultExt<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> PgResultExt<T> for Result<T, tokio_postgres::Error> {
    fn db(self) -> StoreResult<T> {
        self.map_err(db_error)
    }
}

fn counters(row: &Row) -> StoreResult<Counters> {
    Ok([get(row, 0)?, get(row, 1)?, get(row, 2)?])
}

/// A column of a row, or why it cannot be read.
fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, column: usize) -> StoreResult<T> {
    row.try_get(column)
        .map_err(|e| corrupt(&format!("column {column}: {e}")))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unreadable(format!("invalid data in the database: {what}"))
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// The rows of a prepared (and cached) statement.
async fn rows(
    transaction: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Vec<Row>> {
    let statement = transaction.prepare_cached(sql).await.db()?;
    transaction.query(&statement, params).await.db()
}

async fn row(
    transaction: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
) -> StoreResult<Option<Row>> {
    let statement = transaction.prepare_cached(sql).await.db()?;
    transaction.query_opt(&statement, params).await.db()
}

/// How many rows a statement changed.
async fn execute(transaction: &Transaction<'_>, sql: &str, params: Params<'_>) -> StoreResult<u64> {
    let statement = transaction.prepare_cached(sql).await.db()?;
    transaction.execute(&statement, params).await.db()
}

async fn exists(transaction: &Transaction<'_>, sql: &str, params: Params<'_>) -> StoreResult<bool> {
    Ok(row(transaction, sql, params).await?.is_some())
}

// ---- the trait -----------------------------------------------------------------------------

#[async_trait]
impl ObjectStore for PostgresStore {
    /// The read model in front keeps the version (from the change counters `refresh` reads).
    fn objects_version(&self) -> Option<u64> {
        None
    }

    async fn list_svms(&self) -> StoreResult<Vec<Svm>> {
        self.read(async |t, _| objects::list_svms(t).await).await
    }

    async fn insert_svm(&self, svm: Svm) -> StoreResult<()> {
        self.write(Changed::Data, async |t, _| {
            objects::insert_svm(t, &svm).await
        })
        .await
    }

    async fn delete_svm(&self, uuid: &SvmId) -> StoreResult<()> {
        self.write(Changed::Data, async |t, _| {
            objects::delete_svm(t, uuid.as_str()).await
        })
        .await
    }

    async fn list_certificates(&self) -> StoreResult<Arc<Vec<Certificate>>> {
        self.read(async |t, secrets| objects::list_certificates(t, secrets).await)
            .await
            .map(Arc::new)
    }

    async fn insert_certificate(&self, certificate: Certificate) -> StoreResult<()> {
        self.write(Changed::Data, async |t, secrets| {
            objects::insert_certificate(t, secrets, &certificate).await
        })
        .await
    }

    async fn delete_certificate(&self, uuid: &CertificateId) -> StoreResult<()> {
        self.write(Changed::Data, async |t, _| {
            objects::delete_certificate(t, uuid.as_str()).await
        })
        .await
    }

    async fn list_key_managers(&self) -> StoreResult<Arc<Vec<KeyManager>>> {
        self.read(async |t, secrets| objects::load_key_managers(t, secrets, None).await)
            .await
            .map(Arc::new)
    }

    async fn get_key_manager(&self, uuid: &KeyManagerId) -> StoreResult<Option<KeyManager>> {
        let found = self
            .read(async |t, secrets| {
                objects::load_key_managers(t, secrets, Some(uuid.as_str())).await
            })
            .await?;
        Ok(found.into_iter().next())
    }

    async fn insert_key_manager(&self, key_manager: KeyManager) -> StoreResult<()> {
        self.write(Changed::Data, async |t, secrets| {
            objects::insert_key_manager(t, secrets, &key_manager).await
        })
        .await
    }

    async fn update_key_manager(&self, key_manager: KeyManager) -> StoreResult<()> {
        self.write(Changed::Data, async |t, secrets| {
            objects::update_key_manager(t, secrets, &key_manager).await
        })
        .await
    }

    async fn delete_key_manager(&self, uuid: &KeyManagerId) -> StoreResult<()> {
        self.write(Changed::Data, async |t, _| {
            objects::delete_key_manager(t, uuid.as_str()).await
        })
        .await
    }

    async fn add_key_servers(
        &self,
        key_manager: &KeyManagerId,
        servers: Vec<KeyServer>,
    ) -> StoreResult<()> {
        self.write(Changed::Data, async |t, secrets| {
            objects::add_key_servers(t, secrets, key_manager.as_str(), &servers).await
        })
        .await
    }

    async fn update_key_server(
        &self,
        key_manager: &KeyManagerId,
        server: KeyServer,
    ) -> StoreResult<()> {
        self.write(Changed::Data, async |t, secrets| {
            objects::update_key_server(t, secrets, key_manager.as_str(), &server).await
        })
        .await
    }

    async fn delete_key_server(&self, key_manager: &KeyManagerId, server: &str) -> StoreResult<()> {
        self.write(Changed::Data, async |t, _| {
            objects::delete_key_server(t, key_manager.as_str(), server).await
        })
        .await
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn list_auth_keys(&self, key_manager: &KeyManagerId) -> StoreResult<Vec<AuthKey>> {
        self.read(async |t, _| keys::list_auth_keys(t, key_manager).await)
            .await
    }

    async fn insert_auth_key(&self, key: AuthKey) -> StoreResult<()> {
        self.write(Changed::Data, async |t, _| {
            keys::insert_auth_key(t, &key).await
        })
        .await
    }

    async fn delete_auth_key(&self, key_manager: &KeyManagerId, key_id: &str) -> StoreResult<()> {
        self.write(Changed::Data, async |t, _| {
            keys::delete_auth_key(t, key_manager, key_id).await
        })
        .await
    }
}

/// Volumes are not cached (the read model keeps the configuration objects only).
#[async_trait]
impl VolumeStore for PostgresStore {
    async fn list_volumes(&self) -> StoreResult<Vec<Volume>> {
        self.read(async |t, _| volumes::list_volumes(t).await).await
    }

    async fn insert_volume(&self, volume: Volume) -> StoreResult<()> {
        self.write(Changed::Nothing, async |t, _| {
            volumes::insert_volume(t, &volume).await
        })
        .await
    }

    async fn delete_volume(&self, uuid: &VolumeId) -> StoreResult<()> {
        self.write(Changed::Nothing, async |t, _| {
            volumes::delete_volume(t, uuid.as_str()).await
        })
        .await
    }

    async fn update_volume_key(&self, uuid: &VolumeId, key: VolumeKey) -> StoreResult<()> {
        self.write(Changed::Nothing, async |t, _| {
            volumes::update_volume_key(t, uuid.as_str(), &key).await
        })
        .await
    }
}

/// Jobs are cached by no instance: their writes move no change counter.
#[async_trait]
impl JobStore for PostgresStore {
    async fn save_job(&self, job: Job) -> StoreResult<()> {
        self.write(Changed::Nothing, async |t, _| jobs::save_job(t, &job).await)
            .await
    }

    async fn list_jobs(&self) -> StoreResult<Vec<Job>> {
        self.read(async |t, _| jobs::list_jobs(t).await).await
    }

    async fn fail_unfinished_jobs(
        &self,
        stale_before: i64,
        message: &str,
        code: u64,
        now: i64,
    ) -> StoreResult<usize> {
        self.write(Changed::Nothing, async |t, _| {
            jobs::fail_unfinished_jobs(t, stale_before, message, code, now).await
        })
        .await
    }

    async fn prune_jobs(&self, ended_before: i64, keep: usize) -> StoreResult<()> {
        self.write(Changed::Nothing, async |t, _| {
            jobs::prune_jobs(t, ended_before, keep).await
        })
        .await
    }
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn count_users(&self) -> StoreResult<usize> {
        self.read(async |t, _| users::count_users(t).await).await
    }

    async fn insert_user(&self, user: User) -> StoreResult<()> {
        self.write(Changed::Accounts, async |t, _| {
            users::insert_user(t, &user).await
        })
        .await
    }

    async fn find_user(&self, name: &str) -> StoreResult<Option<User>> {
        self.read(async |t, _| users::find_user(t, name).await)
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read(async |t, _| users::list_users(t).await).await
    }

    async fn delete_user(&self, name: &str) -> StoreResult<()> {
        self.write(Changed::Accounts, async |t, _| {
            users::delete_user(t, name).await
        })
        .await
    }

    async fn record_failed_login(
        &self,
        name: &str,
        max_attempts: u32,
        lockout_seconds: i64,
        now: i64,
    ) -> StoreResult<Option<i64>> {
        let locked = self
            .write(Changed::Nothing, async |t, _| {
                users::record_failed_login(t, name, max_attempts, lockout_seconds, now).await
            })
            .await?;
        if locked.is_some() {
            // A lock ends what every instance has verified for the account.
            self.write(Changed::Accounts, async |_, _| Ok(())).await?;
        }
        Ok(locked)
    }

    async fn set_password_hash(&self, name: &str, hash: &str) -> StoreResult<()> {
        self.write(Changed::Accounts, async |t, _| {
            users::set_password_hash(t, name, hash).await
        })
        .await
    }

    async fn clear_failed_logins(&self, name: &str) -> StoreResult<()> {
        self.write(Changed::Nothing, async |t, _| {
            users::clear_failed_logins(t, name).await
        })
        .await
    }
}

#[async_trait]
impl SettingsStore for PostgresStore {
    async fn load_security(&self) -> StoreResult<Option<SecuritySettings>> {
        self.read(async |t, _| settings::load_security(t).await)
            .await
    }

    async fn save_security(&self, security: SecuritySettings) -> StoreResult<()> {
        self.write(Changed::Settings, async |t, _| {
            settings::save_security(t, &security).await
        })
        .await
    }

    async fn load_key_manager_config(&self) -> StoreResult<Option<KeyManagerConfig>> {
        self.read(async |t, _| settings::load_key_manager_config(t).await)
            .await
    }

    async fn save_key_manager_config(&self, config: KeyManagerConfig) -> StoreResult<()> {
        self.write(Changed::Settings, async |t, _| {
            settings::save_key_manager_config(t, &config).await
        })
        .await
    }
}

#[async_trait]
impl CheckStore for PostgresStore {
    async fn take_monitor_turn(
        &self,
        key_manager: &KeyManagerId,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<bool> {
        self.write(Changed::Nothing, async |t, _| {
            checks::take_monitor_turn(t, key_manager.as_str(), holder, now, until).await
        })
        .await
    }

    async fn share_checks(
        &self,
        key_manager: &KeyManagerId,
        certificates: &[CertificateId],
        checks: Vec<(KeyServer, SharedCheck)>,
    ) -> StoreResult<()> {
        self.write(Changed::Nothing, async |t, secrets| {
            checks::share_checks(t, secrets, key_manager.as_str(), certificates, checks).await
        })
        .await
    }

    async fn shared_checks(
        &self,
        key_manager: Option<&KeyManagerId>,
    ) -> StoreResult<Vec<(KeyManagerId, SharedCheck)>> {
        let found = self
            .read(async |t, _| checks::shared_checks(t, key_manager.map(|k| k.as_str())).await)
            .await?;
        Ok(found
            .into_iter()
            .map(|(uuid, check)| (KeyManagerId::from_stored(uuid), check))
            .collect())
    }
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn append_audit(&self, record: AuditRecord, keep: usize) -> StoreResult<()> {
        self.write(Changed::Nothing, async |t, _| {
            settings::append_audit(t, &record, keep).await
        })
        .await
    }

    async fn list_audit_after(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        self.read(async |t, _| settings::list_audit_after(t, after, limit).await)
            .await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn refresh(&self) -> StoreResult<Changes> {
        let counters = self
            .bounded(async {
                let client = self.pool.get().await.map_err(pool_error)?;
                let statement = client.prepare_cached(COUNTERS).await.db()?;
                counters(&client.query_one(&statement, &[]).await.db()?)
            })
            .await?;
        let mut seen = self.lock_seen();
        // Answers may arrive out of order: only a newer value is news.
        let news = |i: usize| counters[i] > seen[i];
        let changes = Changes {
            data: news(0),
            accounts: news(1),
            settings: news(2),
        };
        for (seen, now) in seen.iter_mut().zip(counters) {
            *seen = (*seen).max(now);
        }
        Ok(changes)
    }
}

#[cfg(test)]
mod tests;
