//! The rules both stores keep (`store/contract.rs`), on SQLite, and what only the SQLite store
//! has: sealing as the file holds it, migrations, files, group commit, a full disk.

use super::schema::{MIGRATIONS, schema_version};
use super::*;
use crate::domain::model::{AuditRecord, KeyManager, KeyManagerKind, KeyServer, Secret};
use crate::store::contract::{
    certificate, external, id, key_server, stored_servers, svm, with_certificates, with_key_manager,
};

/// The rules both stores keep, on SQLite.
async fn fresh_store() -> (SqliteStore, ()) {
    (memory_store(), ())
}
crate::store::contract::contract_tests!(fresh_store);

const KEY: [u8; 32] = [42; 32];

fn memory_store() -> SqliteStore {
    SqliteStore::open_in_memory(SecretBox::from_key(KEY)).expect("open in memory")
}

fn file_store(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SecretBox::from_key(KEY)).expect("open file")
}

/// Every stored blob of a sealed column, as the database holds it.
fn raw_blobs(store: &SqliteStore, query: &str) -> Vec<Vec<u8>> {
    let query = query.to_string();
    store.on_connection(move |connection| {
        let mut statement = connection.prepare(&query).expect("prepare");
        statement
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    })
}

/// Asserts that `table.column` holds at least one value and that none shows `plaintext`.
fn assert_sealed(store: &SqliteStore, table: &str, column: &str, plaintext: &str) {
    let blobs = raw_blobs(
        store,
        &format!("SELECT {column} FROM {table} WHERE {column} IS NOT NULL"),
    );
    assert!(!blobs.is_empty(), "no {table}.{column} stored");
    for blob in blobs {
        assert!(!contains(&blob, plaintext), "{table}.{column} holds it");
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
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

    assert_sealed(
        &store,
        "certificates",
        "private_key",
        "PRIVATE-KEY-PLAINTEXT",
    );
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
        uuid: id("km-cluster"),
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
        *store.list_key_managers().await.expect("list"),
        vec![svm_manager.clone(), onboard.clone()]
    );
    assert_eq!(
        store.get_key_manager(&id("km-svm")).await.expect("get"),
        Some(svm_manager)
    );
    assert_eq!(
        store.get_key_manager(&id("missing")).await.expect("get"),
        None
    );

    assert_sealed(&store, "key_servers", "password", "KS-PASSWORD-PLAINTEXT");
    assert_sealed(
        &store,
        "key_managers",
        "passphrase",
        "ONBOARD-PASSPHRASE-PLAINTEXT",
    );
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
    store.on_connection(|connection| {
        connection
            .execute(
                "UPDATE key_servers SET password =
                     (SELECT password FROM key_servers WHERE server = 'a.example.com:5696')
                 WHERE server = 'b.example.com:5696'",
                [],
            )
            .expect("swap");
    });
    let error = store
        .get_key_manager(&id("km"))
        .await
        .expect_err("swapped secret");
    assert!(matches!(&error, StoreError::Unreadable(m) if m.contains("key_servers.password")));
    assert!(!error.to_string().contains("PLAINTEXT"));
}

/// What the contract's deletion rule cannot see: no row of the key manager's servers or server
/// CAs is left behind.
#[tokio::test]
async fn deleting_a_key_manager_leaves_no_row_of_its_servers() {
    let store = memory_store();
    with_key_manager(&store, &["ks1.example.com"]).await;
    store.delete_key_manager(&id("km")).await.expect("delete");
    assert!(raw_blobs(&store, "SELECT password FROM key_servers").is_empty());
    assert!(
        raw_blobs(
            &store,
            "SELECT CAST(certificate_uuid AS BLOB) FROM key_manager_server_cas"
        )
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_additions_never_exceed_the_limit() {
    let directory = tempfile::tempdir().expect("tempdir");
    let path = directory.path().join("keymgr.db");
    let store = file_store(&path);
    with_key_manager(&store, &["ks1.example.com", "ks2.example.com"]).await;
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
                    .add_key_servers(&id("km"), vec![key_server(&format!("new{i}.example.com"))])
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
    assert_eq!(*store.list_key_managers().await.expect("list"), [manager]);
    assert_eq!(store.list_certificates().await.expect("list").len(), 3);
    let (version, mode) = store.on_connection(|connection| {
        let mode: String = connection
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("journal mode");
        (schema_version(connection).expect("version"), mode)
    });
    assert_eq!(version, MIGRATIONS.len());
    assert_eq!(mode, "wal");
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

#[tokio::test]
async fn a_full_disk_is_told_apart_from_other_failures() {
    let store = memory_store();
    // A database that may not grow past 40 pages stands for a full disk.
    store.on_connection(|connection| {
        connection
            .pragma_update(None, "max_page_count", 40)
            .expect("pragma")
    });
    let record = AuditRecord {
        index: 0,
        time: "2025-01-01T00:00:00Z".into(),
        user: "admin".into(),
        method: "POST".into(),
        path: "/api/svm/svms".into(),
        input: "x".repeat(4000),
        status: 201,
        error_code: None,
        address: None,
    };
    let mut outcome = Ok(());
    for _ in 0..200 {
        outcome = store.append_audit(record.clone(), 100_000).await;
        if outcome.is_err() {
            break;
        }
    }
    assert!(matches!(outcome, Err(StoreError::Full(_))), "{outcome:?}");
}

#[tokio::test]
async fn writes_queued_together_commit_together_and_a_failing_one_changes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let store = file_store(&dir.path().join("keymgr.db"));
    // Hold the database thread, so that every write below waits in its queue and all of them
    // go into one batch when it is released.
    let (release, held) = std::sync::mpsc::channel::<()>();
    store
        .submit(Job::Read(Box::new(move |_, _| {
            let _ = held.recv();
        })))
        .expect("hold");
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..20 {
        let store = store.clone();
        let svm = svm(&format!("u{n}"), &format!("vs{n}"));
        writes.spawn(async move { store.insert_svm(svm).await });
    }
    let duplicate = store.clone();
    writes.spawn(async move { duplicate.insert_svm(svm("u-dup", "vs7")).await });
    // A write that changes something, then fails: its savepoint is rolled back.
    let failing = store.clone();
    writes.spawn(async move {
        failing
            .write(|transaction, _| {
                svms::insert_svm(transaction, &svm("u-ghost", "ghost"))?;
                Err(StoreError::Conflict("changed its mind".into()))
            })
            .await
    });
    // The writes are submitted as soon as this task lets them run.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    release.send(()).expect("release");
    let mut outcomes = Vec::new();
    while let Some(outcome) = writes.join_next().await {
        outcomes.push(outcome.expect("task"));
    }
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 20);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| matches!(o, Err(StoreError::Conflict(_))))
            .count(),
        2,
        "{outcomes:?}"
    );
    let svms = store.list_svms().await.expect("list");
    assert_eq!(svms.len(), 20);
    assert!(
        svms.iter()
            .all(|s| s.uuid.as_str() != "u-dup" && s.name != "ghost")
    );
    // And they are on disk: a new store on the file reads them.
    drop(store);
    let reopened = file_store(&dir.path().join("keymgr.db"));
    assert_eq!(reopened.list_svms().await.expect("list").len(), 20);
}

fn audit_record(path: &str) -> AuditRecord {
    AuditRecord {
        index: 0,
        time: "2026-11-23T00:00:00Z".into(),
        user: "admin".into(),
        method: "POST".into(),
        path: path.into(),
        input: "{}".into(),
        status: 201,
        error_code: None,
        address: None,
    }
}

/// A request's change and its audit record commit together: the record is there with the
/// change, and when the record cannot be written the change is not made either.
#[tokio::test]
async fn a_change_commits_with_its_audit_record_or_not_at_all() {
    use crate::domain::audit::with_pending;
    let store = memory_store();
    let (inserted, recorded) = with_pending(
        audit_record("/api/svm/svms"),
        10,
        store.insert_svm(svm("u1", "svm1")),
    )
    .await;
    inserted.expect("insert");
    assert!(recorded);
    let trail = store.list_audit_after(0, 10).await.expect("trail");
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0].path, "/api/svm/svms");

    // A second write of the same request does not record it twice.
    let ((), recorded) = with_pending(audit_record("/api/x"), 10, async {
        store.insert_svm(svm("u2", "svm2")).await.expect("first");
        store.insert_svm(svm("u3", "svm3")).await.expect("second");
    })
    .await;
    assert!(recorded);
    assert_eq!(store.list_audit_after(0, 10).await.expect("trail").len(), 2);

    // The trail cannot take the record: the change is refused with it.
    store.on_connection(|connection| {
        connection
            .execute_batch("DROP TABLE audit")
            .expect("drop the trail")
    });
    let (refused, recorded) = with_pending(
        audit_record("/api/svm/svms"),
        10,
        store.insert_svm(svm("u4", "svm4")),
    )
    .await;
    assert!(refused.is_err());
    assert!(!recorded);
    let names: Vec<String> = store
        .list_svms()
        .await
        .expect("svms")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["svm1", "svm2", "svm3"]);
    // Outside a request, a write carries no record.
    store.insert_svm(svm("u5", "svm5")).await.expect("insert");
}
