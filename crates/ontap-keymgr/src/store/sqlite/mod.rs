//! The SQLite store. One connection, owned by one database thread, so that the async runtime
//! never waits on disk I/O and no lock is shared. Every trait method is one job on that thread:
//! a read runs in its own read transaction; writes queued together are committed together
//! (group commit): one `BEGIN IMMEDIATE`, each write in its own savepoint — a write that fails
//! rolls back to it and changes nothing — then one `COMMIT`, and only then is each write
//! answered. Writes take the write lock up front, so the checks they make (limits, duplicates,
//! references) still hold when they commit, even with other processes on the same file.
//!
//! Why group commit: with `synchronous=FULL` every commit waits for the disk, so one write per
//! commit caps durable writes at the disk's flush rate; 64 clients writing at once share each
//! flush instead (docs/performance.md, measurement 4).
//!
//! A write made for an audited request appends the request's audit record in its savepoint
//! (`crate::domain::audit::pending`): the change and its record commit together or not at all.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit returns only once it is on disk.
//! Secrets are sealed with [`SecretBox`] before they reach SQL, bound to their column and row.

mod audit;
mod certificates;
mod jobs;
mod key_managers;
mod key_servers;
mod keys;
mod schema;
mod security;
mod svms;
#[cfg(test)]
mod tests;
mod users;
mod volumes;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, Transaction, TransactionBehavior};

use self::schema::{configure, create_private_file, migrate};
use super::secrets::SecretBox;
pub(super) use super::secrets::{column, open};
use super::{
    AccountStore, AuditStore, CheckStore, JobStore, KeyStore, ObjectStore, SettingsStore, Store,
    StoreError, StoreResult, VolumeStore,
};
use crate::domain::ids::Id;
/// ONTAP's jobs, apart from this store's own queue of jobs ([`Job`]).
use crate::domain::model::Job as OntapJob;
use crate::domain::model::{
    AuditRecord, AuthKey, Certificate, CertificateId, KeyManager, KeyManagerConfig, KeyManagerId,
    KeyServer, SecuritySettings, SharedCheck, Svm, SvmId, SvmRef, User, Volume, VolumeId,
    VolumeKey,
};
use crate::domain::store::Changes;

/// At most this many writes share one commit.
const MAX_BATCH: usize = 256;

/// A read, run on the database thread; it answers through its own channel.
type ReadJob = Box<dyn FnOnce(&mut Connection, &SecretBox) + Send>;

/// A write, run inside the batch's transaction (or refused with the error that prevented the
/// batch). It says whether it succeeded, and how to answer once the commit is known.
type WriteJob =
    Box<dyn FnOnce(Result<&Transaction<'_>, &StoreError>, &SecretBox) -> Written + Send>;

/// Called with the commit's failure, if any: a write is acknowledged only once committed.
type Answer = Box<dyn FnOnce(Option<&StoreError>) + Send>;

struct Written {
    succeeded: bool,
    answer: Answer,
}

enum Job {
    Read(ReadJob),
    Write(WriteJob),
}

/// The [`Store`] on SQLite. Cloning shares the database thread.
#[derive(Clone)]
pub struct SqliteStore {
    /// Unbounded, but each job is one request's, and requests are bounded by the connection
    /// limit.
    jobs: mpsc::Sender<Job>,
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
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("database".into())
            .spawn(move || run_database(connection, secrets, queue))
            .map_err(|e| StoreError::Backend(format!("cannot start the database thread: {e}")))?;
        Ok(SqliteStore {
            jobs,
            disk_full: Arc::new(AtomicBool::new(false)),
        })
    }

    fn submit(&self, job: Job) -> StoreResult<()> {
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Backend("the database thread has stopped".into()))
    }

    /// Runs `f` in a read transaction, for a consistent view across its queries.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &SecretBox) -> StoreResult<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.submit(Job::Read(Box::new(move |connection, secrets| {
            let result = connection
                .transaction()
                .db()
                .and_then(|transaction| f(&transaction, secrets));
            let _ = answer.send(result);
        })))?;
        answered.await.map_err(|_| job_lost())?
    }

    /// Runs `f` in the next group commit, in a savepoint of its own, and answers once the
    /// commit is durable. When `f` fails, its savepoint is rolled back: it changed nothing.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, &SecretBox) -> StoreResult<T> + Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        // The request's audit record, committed with its change (in the same savepoint).
        let audit = crate::domain::audit::pending();
        let has_audit = audit.is_some();
        self.submit(Job::Write(Box::new(move |transaction, secrets| {
            let result = match transaction {
                Ok(transaction) => f(transaction, secrets).and_then(|value| {
                    if let Some((record, keep)) = &audit {
                        audit::append_audit(transaction, record, *keep)?;
                    }
                    Ok(value)
                }),
                Err(error) => Err(error.clone()),
            };
            Written {
                succeeded: result.is_ok(),
                answer: Box::new(move |commit_failure| {
                    let result = match (result, commit_failure) {
                        (Ok(_), Some(failure)) => Err(failure.clone()),
                        (result, _) => result,
                    };
                    let _ = answer.send(result);
                }),
            }
        })))?;
        let result = answered.await.map_err(|_| job_lost())?;
        self.note_disk_space(&result);
        if result.is_ok() && has_audit {
            crate::domain::audit::recorded();
        }
        result
    }

    /// Runs `f` on the connection, on the database thread, and waits for it: tests only.
    #[cfg(test)]
    fn on_connection<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> T {
        let (answer, answered) = mpsc::channel();
        self.submit(Job::Read(Box::new(move |connection, _| {
            let _ = answer.send(f(connection));
        })))
        .expect("database thread");
        answered.recv().expect("answer")
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

fn job_lost() -> StoreError {
    StoreError::Backend("the database thread failed while running the request".into())
}

/// The database thread: jobs in order, writes waiting together committed together. Ends when
/// every store handle is gone.
fn run_database(mut connection: Connection, secrets: SecretBox, jobs: mpsc::Receiver<Job>) {
    let mut reads_after_commit: Vec<ReadJob> = Vec::new();
    while let Ok(job) = jobs.recv() {
        match job {
            Job::Read(read) => run_read(read, &mut connection, &secrets),
            Job::Write(first) => {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(Job::Write(write)) => batch.push(write),
                        // Not yet answered, the batch's writes may come before or after it.
                        Ok(Job::Read(read)) => reads_after_commit.push(read),
                        Err(_) => break,
                    }
                }
                commit_batch(&mut connection, &secrets, batch);
                for read in reads_after_commit.drain(..) {
                    run_read(read, &mut connection, &secrets);
                }
            }
        }
    }
}

/// A read that panics loses only its own answer (its caller gets an error).
fn run_read(read: ReadJob, connection: &mut Connection, secrets: &SecretBox) {
    let _ = catch_unwind(AssertUnwindSafe(|| read(connection, secrets)));
}

fn commit_batch(connection: &mut Connection, secrets: &SecretBox, batch: Vec<WriteJob>) {
    let transaction = match connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()
    {
        Ok(transaction) => transaction,
        Err(error) => {
            for write in batch {
                (write(Err(&error), secrets).answer)(None);
            }
            return;
        }
    };
    let mut answers = Vec::with_capacity(batch.len());
    for write in batch {
        if let Err(error) = transaction.execute_batch("SAVEPOINT write").db() {
            answers.push(write(Err(&error), secrets).answer);
            continue;
        }
        // A write that panics is rolled back like one that fails; its caller gets an error.
        let written = catch_unwind(AssertUnwindSafe(|| write(Ok(&transaction), secrets)));
        let end = match &written {
            Ok(written) if written.succeeded => "RELEASE write",
            _ => "ROLLBACK TO write; RELEASE write",
        };
        // Should ending the savepoint fail, the transaction is broken and the commit says so.
        let _ = transaction.execute_batch(end);
        if let Ok(written) = written {
            answers.push(written.answer);
        }
    }
    let commit_failure = transaction.commit().db().err();
    for answer in answers {
        answer(commit_failure.as_ref());
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

pub(super) use crate::store::scope_description;

/// Whether `query` (with one parameter) returns a row.
pub(super) fn exists(connection: &Connection, query: &str, parameter: &str) -> StoreResult<bool> {
    let mut statement = connection.prepare_cached(query).db()?;
    statement.exists([parameter]).db()
}

// ---- the trait -----------------------------------------------------------------------------

#[async_trait]
impl ObjectStore for SqliteStore {
    /// The read model in front keeps the version.
    fn objects_version(&self) -> Option<u64> {
        None
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

    async fn list_certificates(&self) -> StoreResult<Arc<Vec<Certificate>>> {
        self.read(|connection, secrets| certificates::list_certificates(connection, secrets))
            .await
            .map(Arc::new)
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

    async fn list_key_managers(&self) -> StoreResult<Arc<Vec<KeyManager>>> {
        self.read(|connection, secrets| key_managers::list_key_managers(connection, secrets))
            .await
            .map(Arc::new)
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
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn list_auth_keys(&self, key_manager: &KeyManagerId) -> StoreResult<Vec<AuthKey>> {
        let key_manager = key_manager.clone();
        self.read(move |connection, _| keys::list_auth_keys(connection, &key_manager))
            .await
    }

    async fn insert_auth_key(&self, key: AuthKey) -> StoreResult<()> {
        self.write(move |connection, _| keys::insert_auth_key(connection, &key))
            .await
    }

    async fn delete_auth_key(&self, key_manager: &KeyManagerId, key_id: &str) -> StoreResult<()> {
        let (key_manager, key_id) = (key_manager.clone(), key_id.to_string());
        self.write(move |connection, _| keys::delete_auth_key(connection, &key_manager, &key_id))
            .await
    }
}

#[async_trait]
impl VolumeStore for SqliteStore {
    async fn list_volumes(&self) -> StoreResult<Vec<Volume>> {
        self.read(|connection, _| volumes::list_volumes(connection))
            .await
    }

    async fn insert_volume(&self, volume: Volume) -> StoreResult<()> {
        self.write(move |connection, _| volumes::insert_volume(connection, &volume))
            .await
    }

    async fn delete_volume(&self, uuid: &VolumeId) -> StoreResult<()> {
        let uuid = uuid.to_string();
        self.write(move |connection, _| volumes::delete_volume(connection, &uuid))
            .await
    }

    async fn update_volume_key(&self, uuid: &VolumeId, key: VolumeKey) -> StoreResult<()> {
        let uuid = uuid.to_string();
        self.write(move |connection, _| volumes::update_volume_key(connection, &uuid, &key))
            .await
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn save_job(&self, job: OntapJob) -> StoreResult<()> {
        self.write(move |connection, _| jobs::save_job(connection, &job))
            .await
    }

    async fn list_jobs(&self) -> StoreResult<Vec<OntapJob>> {
        self.read(|connection, _| jobs::list_jobs(connection)).await
    }

    async fn fail_unfinished_jobs(
        &self,
        stale_before: i64,
        message: &str,
        code: u64,
        now: i64,
    ) -> StoreResult<usize> {
        let message = message.to_string();
        self.write(move |connection, _| {
            jobs::fail_unfinished_jobs(connection, stale_before, &message, code, now)
        })
        .await
    }

    async fn prune_jobs(&self, ended_before: i64, keep: usize) -> StoreResult<()> {
        self.write(move |connection, _| jobs::prune_jobs(connection, ended_before, keep))
            .await
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
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
}

#[async_trait]
impl SettingsStore for SqliteStore {
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
}

#[async_trait]
impl CheckStore for SqliteStore {
    // The health monitor's work is shared with nobody: every turn is this process's, and no
    // check is kept for other instances.
    async fn take_monitor_turn(
        &self,
        _key_manager: &KeyManagerId,
        _holder: &str,
        _now: i64,
        _until: i64,
    ) -> StoreResult<bool> {
        Ok(true)
    }

    async fn share_checks(
        &self,
        _key_manager: &KeyManagerId,
        _certificates: &[CertificateId],
        _checks: Vec<(KeyServer, SharedCheck)>,
    ) -> StoreResult<()> {
        Ok(())
    }

    async fn shared_checks(
        &self,
        _key_manager: Option<&KeyManagerId>,
    ) -> StoreResult<Vec<(KeyManagerId, SharedCheck)>> {
        Ok(Vec::new())
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, record: AuditRecord, keep: usize) -> StoreResult<()> {
        self.write(move |connection, _| audit::append_audit(connection, &record, keep))
            .await
    }

    async fn list_audit_after(&self, after: i64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        self.read(move |connection, _| audit::list_audit_after(connection, after, limit))
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    /// Only this process writes the file: it knows of every change already.
    async fn refresh(&self) -> StoreResult<Changes> {
        Ok(Changes::default())
    }
}
