//! What the PostgreSQL store adds to the rules both stores keep (which the end-to-end suite
//! checks against both): instances starting together, the shared key and cluster uuid, the
//! change counters.

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
            accounts: false
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
    assert!(b.refresh().await.expect("refresh").accounts);
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
