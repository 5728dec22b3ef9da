//! The rules both stores keep (`store/contract.rs`), on PostgreSQL, and what the PostgreSQL store
//! adds: instances starting together, the shared key and cluster uuid, the change counters.

use test_support::postgres::{self, Postgres};

use super::*;
use crate::domain::model::Role;

const KEY: [u8; 32] = [7; 32];

/// A fresh database, on the test run's server or on one started for the test.
fn database() -> (String, Option<Postgres>) {
    if let Some(port) = postgres::shared_port() {
        return (postgres::fresh_database_on(port), None);
    }
    let server = Postgres::start();
    server.create_database("store");
    (server.url("store"), Some(server))
}

async fn open(url: &str, key: [u8; 32], cluster_uuid: &str) -> StoreResult<PostgresStore> {
    PostgresStore::open(url, 4, SecretBox::from_key(key), cluster_uuid).await
}

/// The rules both stores keep, on PostgreSQL: each on a database of its own.
async fn fresh_store() -> (PostgresStore, Option<Postgres>) {
    let (url, server) = database();
    let store = open(&url, KEY, "contract").await.expect("open");
    (store, server)
}
crate::store::contract::contract_tests!(fresh_store);

#[tokio::test]
async fn instances_starting_together_migrate_once_and_share_the_first_cluster_uuid() {
    let (url, _server) = database();
    let opened = futures_join((0..6).map(|i| {
        let url = url.clone();
        tokio::spawn(async move { open(&url, KEY, &format!("uuid-{i}")).await })
    }))
    .await;
    let stores: Vec<PostgresStore> = opened
        .into_iter()
        .map(|joined| joined.expect("task").expect("open"))
        .collect();
    let first = stores[0].cluster_uuid().to_string();
    assert!(first.starts_with("uuid-"), "{first}");
    assert!(stores.iter().all(|s| s.cluster_uuid() == first));
    let again = open(&url, KEY, "another").await.expect("reopen");
    assert_eq!(again.cluster_uuid(), first);
}

async fn futures_join<T>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut results = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        results.push(handle.await);
    }
    results
}

#[tokio::test]
async fn an_instance_with_another_key_is_refused_before_it_writes() {
    let (url, _server) = database();
    open(&url, KEY, "u").await.expect("first");
    let error = open(&url, [8; 32], "u").await.expect_err("another key");
    assert!(
        error.to_string().contains("secret key"),
        "a clear reason: {error}"
    );
}

#[tokio::test]
async fn a_commit_is_news_to_every_instance_once() {
    let (url, _server) = database();
    let a = open(&url, KEY, "u").await.expect("a");
    let b = open(&url, KEY, "u").await.expect("b");
    assert_eq!(b.refresh().await.expect("refresh"), Changes::default());
    a.insert_svm(Svm {
        uuid: SvmId::new_random(),
        name: "svm1".into(),
    })
    .await
    .expect("insert");
    let news = b.refresh().await.expect("refresh");
    assert_eq!(
        news,
        Changes {
            data: true,
            ..Changes::default()
        }
    );
    assert_eq!(b.refresh().await.expect("refresh"), Changes::default());
    a.insert_user(User {
        name: "u1".into(),
        role: Role::Readonly,
        password_hash: "hash".into(),
        failed_logins: 0,
        locked_until: None,
    })
    .await
    .expect("user");
    assert_eq!(
        b.refresh().await.expect("refresh"),
        Changes {
            accounts: true,
            ..Changes::default()
        },
        "a new user drops verified credentials, not the read model"
    );
    // Failed logins below the limit change nothing any instance keeps.
    a.record_failed_login("u1", 3, 60, 0)
        .await
        .expect("failure");
    assert_eq!(b.refresh().await.expect("refresh"), Changes::default());
    a.record_failed_login("u1", 3, 60, 0)
        .await
        .expect("failure");
    let locked = a
        .record_failed_login("u1", 3, 60, 0)
        .await
        .expect("failure");
    assert_eq!(locked, Some(60));
    assert!(
        b.refresh().await.expect("refresh").accounts,
        "a lock is news"
    );
    a.save_key_manager_config(KeyManagerConfig {
        health_monitor_polling_interval: 20,
        cloud_kms_retry_count: 3,
    })
    .await
    .expect("settings");
    assert_eq!(
        b.refresh().await.expect("refresh"),
        Changes {
            settings: true,
            ..Changes::default()
        }
    );
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_within_the_bound() {
    let (url, server) = database();
    let store = open(&url, KEY, "u").await.expect("open");
    drop(server);
    // On the shared server the database stays up: point a store at a port nothing serves.
    let nowhere = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        let port = listener.local_addr().expect("address").port();
        drop(listener);
        postgres::url_on(port, "store")
    };
    let started = std::time::Instant::now();
    let refused = open(&nowhere, KEY, "u").await.expect_err("no server");
    assert!(matches!(refused, StoreError::Unavailable(_)), "{refused:?}");
    assert!(started.elapsed() < OPERATION_LIMIT + Duration::from_secs(1));
    drop(store);
}

/// As in SQLite: a request's change commits with its audit record, or not at all.
#[tokio::test]
async fn a_change_commits_with_its_audit_record_or_not_at_all() {
    use crate::domain::audit::with_pending;
    let (url, _server) = database();
    let store = open(&url, KEY, "u").await.expect("open");
    let record = AuditRecord {
        index: 0,
        time: "2026-11-23T00:00:00Z".into(),
        user: "admin".into(),
        method: "POST".into(),
        path: "/api/svm/svms".into(),
        input: "{}".into(),
        status: 201,
        error_code: None,
        address: None,
    };
    let svm = |name: &str| Svm {
        uuid: SvmId::new_random(),
        name: name.into(),
    };
    let (inserted, recorded) =
        with_pending(record.clone(), 10, store.insert_svm(svm("svm1"))).await;
    inserted.expect("insert");
    assert!(recorded);
    assert_eq!(store.list_audit_after(0, 10).await.expect("trail").len(), 1);

    // Bookkeeping written on the way (login counters, shared checks) does not take the record.
    let ((), recorded) = with_pending(record.clone(), 10, async {
        store
            .record_failed_login("nobody", 3, 60, 0)
            .await
            .expect("bookkeeping");
        store.insert_svm(svm("svm0")).await.expect("insert");
    })
    .await;
    assert!(recorded);
    let trail = store.list_audit_after(0, 10).await.expect("trail");
    assert_eq!(trail.len(), 2);

    // The trail refuses the record: the change is refused with it.
    let client = store.pool.get().await.expect("connection");
    client
        .batch_execute("ALTER TABLE audit ADD CONSTRAINT refuse_all CHECK (status < 0) NOT VALID")
        .await
        .expect("constraint");
    let (refused, recorded) = with_pending(record, 10, store.insert_svm(svm("svm2"))).await;
    assert!(refused.is_err());
    assert!(!recorded);
    let names: Vec<String> = store
        .list_svms()
        .await
        .expect("svms")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["svm0", "svm1"]);
}

/// PostgreSQL over TLS, started for the test with the test PKI's server certificate (it names
/// 127.0.0.1 and localhost): `verify-full` and `verify-ca` with the right root certificate
/// connect; another CA's root, a name the certificate does not hold (with `verify-full`) and a
/// root file that is not there fail at open with the reason; `require` encrypts without one.
#[tokio::test]
async fn tls_to_postgresql_is_verified_as_sslmode_says() {
    let pki = test_support::pki::TestPki::new();
    let server = Postgres::start_tls(&pki.server.cert_pem, &pki.server.key_pem);
    let dir = tempfile::tempdir().expect("dir");
    let root = dir.path().join("root.pem");
    std::fs::write(&root, &pki.ca.cert_pem).expect("root");
    let rogue = dir.path().join("rogue.pem");
    std::fs::write(&rogue, &pki.rogue_ca.cert_pem).expect("rogue root");
    let url = |host: &str, database: &str, query: &str| {
        format!(
            "postgres://keymgr@{host}:{}/{database}?{query}",
            server.port
        )
    };
    let with_root = |path: &std::path::Path, mode: &str| {
        format!("sslmode={mode}&sslrootcert={}", path.display())
    };
    for (index, query) in [
        with_root(&root, "verify-full"),
        with_root(&root, "verify-ca"),
        "sslmode=require".to_string(),
    ]
    .iter()
    .enumerate()
    {
        let database = format!("tls{index}");
        server.create_database(&database);
        let store = open(&url("127.0.0.1", &database, query), KEY, "u")
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        store
            .insert_svm(crate::domain::model::Svm {
                uuid: SvmId::new_random(),
                name: "over-tls".into(),
            })
            .await
            .expect("a write over TLS");
        let in_tls = server.psql(
            &database,
            "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid \
             WHERE s.ssl AND a.application_name = 'ontap-keymgr'",
        );
        assert_ne!(in_tls.trim(), "0", "{query}: the connections use TLS");
    }
    server.create_database("refused");
    let refusals = [
        (
            url("127.0.0.1", "refused", &with_root(&rogue, "verify-full")),
            "certificate",
        ),
        (
            url(
                "db.invalid",
                "refused",
                &format!("{}&hostaddr=127.0.0.1", with_root(&root, "verify-full")),
            ),
            "certificate",
        ),
        (
            url(
                "127.0.0.1",
                "refused",
                &with_root(&dir.path().join("missing.pem"), "verify-ca"),
            ),
            "sslrootcert",
        ),
    ];
    for (refused, reason) in refusals {
        let error = open(&refused, KEY, "u").await.expect_err("refused");
        assert!(
            error.to_string().to_lowercase().contains(reason),
            "{refused}: {error}"
        );
    }
}
