//! The rules every store keeps, as one suite that runs against each of them
//! (`contract_tests!` in `sqlite/tests.rs` and `postgres/tests.rs`): what the domain relies on
//! whichever store is configured. Each store's own tests add what only it has (files and
//! migrations, group commit, instances sharing a database).

use crate::domain::address::KeyServerAddress;
use crate::domain::ids::Id;
use crate::domain::model::{
    AuditRecord, Certificate, CertificateType, KeyManager, KeyManagerKind, KeyServer,
    KeyServerTimeout, Role, Secret, Svm, SvmRef, User,
};
use crate::store::{Store, StoreError};

/// Tests name objects with readable words; the store takes any identifier it is given.
pub(crate) fn id<K>(text: &str) -> Id<K> {
    Id::from_stored(text.to_owned())
}

pub(crate) fn svm(uuid: &str, name: &str) -> Svm {
    Svm {
        uuid: id(uuid),
        name: name.into(),
    }
}

pub(crate) fn certificate(uuid: &str, name: &str, svm: Option<&Svm>) -> Certificate {
    Certificate {
        uuid: id(uuid),
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

pub(crate) fn server_ca(uuid: &str, name: &str, svm: Option<&Svm>) -> Certificate {
    Certificate {
        cert_type: CertificateType::ServerCa,
        private_key: None,
        ..certificate(uuid, name, svm)
    }
}

pub(crate) fn key_server(address: &str) -> KeyServer {
    KeyServer {
        server: KeyServerAddress::parse(address).expect("address"),
        timeout: KeyServerTimeout::DEFAULT,
        username: Some("kmip-user".into()),
        password: Some(Secret::new("KS-PASSWORD-PLAINTEXT")),
        secondary_key_servers: vec!["backup1.example.com".into(), "10.0.0.9".into()],
    }
}

pub(crate) fn external(uuid: &str, svm: Option<&Svm>, servers: Vec<KeyServer>) -> KeyManager {
    KeyManager {
        uuid: id(uuid),
        svm: svm.map(SvmRef::from),
        kind: KeyManagerKind::External {
            client_certificate: id("client-cert"),
            server_ca_certificates: vec![id("ca-2"), id("ca-1")],
            servers,
        },
    }
}

/// An SVM, a client certificate and two server CAs: what an external key manager needs.
pub(crate) async fn with_certificates(store: &dyn Store) -> Svm {
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

/// The SVM of [`with_certificates`], with its external key manager `km` and these servers.
pub(crate) async fn with_key_manager(store: &dyn Store, servers: &[&str]) -> Svm {
    let vs0 = with_certificates(store).await;
    let servers = servers.iter().map(|address| key_server(address)).collect();
    store
        .insert_key_manager(external("km", Some(&vs0), servers))
        .await
        .expect("insert");
    vs0
}

pub(crate) async fn stored_servers(store: &dyn Store, key_manager: &str) -> Vec<String> {
    let key_manager = store
        .get_key_manager(&id(key_manager))
        .await
        .expect("get")
        .expect("exists");
    key_manager
        .servers()
        .iter()
        .map(|s| s.server.to_string())
        .collect()
}

pub(crate) async fn users_round_trip(store: &dyn Store) {
    assert_eq!(store.count_users().await.expect("count"), 0);
    let admin = User {
        name: "admin".into(),
        role: Role::Admin,
        password_hash: "$argon2id$v=19$...".into(),
        failed_logins: 0,
        locked_until: None,
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

pub(crate) async fn svms_are_listed_by_name_and_names_are_unique(store: &dyn Store) {
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
    store.delete_svm(&id("u2")).await.expect("delete");
    assert_eq!(store.delete_svm(&id("u2")).await, Err(StoreError::NotFound));
}

pub(crate) async fn certificate_names_are_unique_within_their_scope(store: &dyn Store) {
    let vs0 = with_certificates(store).await;
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

pub(crate) async fn one_key_manager_per_svm_and_one_for_the_cluster(store: &dyn Store) {
    let vs0 = with_certificates(store).await;
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

pub(crate) async fn inserting_a_key_manager_checks_its_servers(store: &dyn Store) {
    let vs0 = with_certificates(store).await;
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

pub(crate) async fn adding_key_servers_keeps_the_limit_and_refuses_duplicates_all_or_nothing(
    store: &dyn Store,
) {
    with_key_manager(store, &["ks1.example.com"]).await;
    assert_eq!(
        store
            .add_key_servers(&id("missing"), vec![key_server("ks2.example.com")])
            .await,
        Err(StoreError::NotFound)
    );
    // ks2 is new but ks1 is stored: neither is added.
    assert_eq!(
        store
            .add_key_servers(
                &id("km"),
                vec![key_server("ks2.example.com"), key_server("ks1.example.com")]
            )
            .await,
        Err(StoreError::KeyServerExists("ks1.example.com:5696".into()))
    );
    assert_eq!(stored_servers(store, "km").await, ["ks1.example.com:5696"]);
    let four_more = (2..=5)
        .map(|i| key_server(&format!("ks{i}.example.com")))
        .collect();
    assert_eq!(
        store.add_key_servers(&id("km"), four_more).await,
        Err(StoreError::KeyServerLimit { existing: 1 })
    );
    assert_eq!(stored_servers(store, "km").await.len(), 1);

    let three_more = (2..=4)
        .map(|i| key_server(&format!("ks{i}.example.com")))
        .collect();
    store
        .add_key_servers(&id("km"), three_more)
        .await
        .expect("add");
    assert_eq!(
        stored_servers(store, "km").await,
        [
            "ks1.example.com:5696",
            "ks2.example.com:5696",
            "ks3.example.com:5696",
            "ks4.example.com:5696"
        ]
    );
    assert_eq!(
        store
            .add_key_servers(&id("km"), vec![key_server("ks5.example.com")])
            .await,
        Err(StoreError::KeyServerLimit { existing: 4 })
    );
}

pub(crate) async fn key_servers_are_updated_and_deleted_by_address(store: &dyn Store) {
    with_key_manager(store, &["ks1.example.com", "ks2.example.com"]).await;
    let changed = KeyServer {
        timeout: KeyServerTimeout::WaitIndefinitely,
        username: Some("other".into()),
        password: Some(Secret::new("new password")),
        secondary_key_servers: vec!["10.1.1.1".into()],
        ..key_server("ks1.example.com")
    };
    store
        .update_key_server(&id("km"), changed.clone())
        .await
        .expect("update");
    assert_eq!(
        store
            .update_key_server(&id("km"), key_server("ks9.example.com"))
            .await,
        Err(StoreError::NotFound)
    );
    store
        .delete_key_server(&id("km"), "ks2.example.com:5696")
        .await
        .expect("delete");
    assert_eq!(
        store
            .delete_key_server(&id("km"), "ks2.example.com:5696")
            .await,
        Err(StoreError::NotFound)
    );
    // Re-adding goes after the last one.
    store
        .add_key_servers(&id("km"), vec![key_server("ks0.example.com")])
        .await
        .expect("add");
    let stored = store
        .get_key_manager(&id("km"))
        .await
        .expect("get")
        .expect("exists");
    assert_eq!(stored.servers(), [changed, key_server("ks0.example.com")]);
}

pub(crate) async fn audit_records_are_numbered_by_the_store(store: &dyn Store) {
    let record = |status: u16, error_code: Option<&str>| AuditRecord {
        index: 999,
        time: "2025-01-01T00:00:00Z".into(),
        user: "admin".into(),
        method: "POST".into(),
        path: "/api/security/key-managers".into(),
        input: "{\"password\":\"<redacted>\"}".into(),
        status,
        error_code: error_code.map(String::from),
        address: Some("192.0.2.7".into()),
    };
    store
        .append_audit(record(201, None), 10)
        .await
        .expect("append");
    store
        .append_audit(record(409, Some("65536823")), 10)
        .await
        .expect("append");
    let listed = store.list_audit_after(0, 100).await.expect("list");
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

pub(crate) async fn the_trail_is_read_by_pages_and_keeps_only_the_newest(store: &dyn Store) {
    let record = |n: u16| AuditRecord {
        index: 0,
        time: "2025-01-01T00:00:00Z".into(),
        user: "admin".into(),
        method: "POST".into(),
        path: format!("/api/svm/svms/{n}"),
        input: String::new(),
        status: 201,
        error_code: None,
        address: None,
    };
    for n in 1..=25 {
        store.append_audit(record(n), 20).await.expect("append");
    }
    let indexes = |records: Vec<AuditRecord>| records.iter().map(|r| r.index).collect::<Vec<_>>();
    // The 5 oldest are gone; pages by key.
    let first = store.list_audit_after(0, 8).await.expect("page");
    assert_eq!(indexes(first), (6..=13).collect::<Vec<_>>());
    let next = store.list_audit_after(13, 100).await.expect("page");
    assert_eq!(indexes(next), (14..=25).collect::<Vec<_>>());
    assert!(
        store
            .list_audit_after(25, 8)
            .await
            .expect("page")
            .is_empty()
    );
}

pub(crate) async fn failed_logins_lock_an_account_at_the_limit_and_a_success_clears_them(
    store: &dyn Store,
) {
    let user = User {
        name: "ops".into(),
        role: Role::Admin,
        password_hash: "$argon2id$v=19$...".into(),
        failed_logins: 0,
        locked_until: None,
    };
    store.insert_user(user).await.expect("insert");
    for _ in 0..2 {
        let locked = store.record_failed_login("ops", 3, 60, 1_000).await;
        assert_eq!(locked.expect("count"), None);
    }
    let found = store.find_user("ops").await.expect("find").expect("user");
    assert_eq!((found.failed_logins, found.locked_until), (2, None));
    let locked = store.record_failed_login("ops", 3, 60, 1_000).await;
    assert_eq!(locked.expect("count"), Some(1_060));
    let found = store.find_user("ops").await.expect("find").expect("user");
    assert_eq!((found.failed_logins, found.locked_until), (0, Some(1_060)));
    store.clear_failed_logins("ops").await.expect("clear");
    let found = store.find_user("ops").await.expect("find").expect("user");
    assert_eq!((found.failed_logins, found.locked_until), (0, None));
    // 0 never locks.
    for _ in 0..10 {
        let locked = store.record_failed_login("ops", 0, 60, 1_000).await;
        assert_eq!(locked.expect("count"), None);
    }
}

pub(crate) async fn updating_a_key_manager_replaces_its_settings_but_not_its_servers(
    store: &dyn Store,
) {
    let vs0 = with_key_manager(store, &["ks1.example.com"]).await;
    store
        .insert_certificate(certificate("client-2", "client 2", Some(&vs0)))
        .await
        .expect("certificate");
    let updated = KeyManager {
        uuid: id("km"),
        svm: Some(SvmRef::from(&vs0)),
        kind: KeyManagerKind::External {
            client_certificate: id("client-2"),
            server_ca_certificates: vec![id("ca-1")],
            servers: vec![],
        },
    };
    store.update_key_manager(updated).await.expect("update");
    let stored = store
        .get_key_manager(&id("km"))
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
    assert_eq!(client_certificate, id("client-2"));
    assert_eq!(server_ca_certificates, [id("ca-1")]);
    assert_eq!(servers, [key_server("ks1.example.com")]);
    // The replaced certificates are free again.
    store
        .delete_certificate(&id("ca-2"))
        .await
        .expect("delete unused ca");

    let missing = external("missing", None, vec![]);
    assert_eq!(
        store.update_key_manager(missing).await,
        Err(StoreError::NotFound)
    );
}

pub(crate) async fn an_onboard_passphrase_is_updated(store: &dyn Store) {
    let onboard = |passphrase: &str| KeyManager {
        uuid: id("km"),
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
        store.get_key_manager(&id("km")).await.expect("get"),
        Some(onboard("second"))
    );
    assert!(matches!(
        store
            .add_key_servers(&id("km"), vec![key_server("ks.example.com")])
            .await,
        Err(StoreError::Conflict(_))
    ));
}

pub(crate) async fn deleting_a_key_manager_deletes_its_servers_and_frees_its_certificates(
    store: &dyn Store,
) {
    with_key_manager(store, &["ks1.example.com"]).await;
    let error = store
        .delete_certificate(&id("client-cert"))
        .await
        .expect_err("in use");
    assert!(matches!(error, StoreError::Conflict(m) if m.contains("client")));
    let error = store
        .delete_certificate(&id("ca-1"))
        .await
        .expect_err("in use");
    assert!(matches!(error, StoreError::Conflict(_)));
    let error = store.delete_svm(&id("svm-0")).await.expect_err("in use");
    assert!(matches!(error, StoreError::Conflict(m) if m.contains("vs0")));

    store.delete_key_manager(&id("km")).await.expect("delete");
    assert_eq!(
        store.delete_key_manager(&id("km")).await,
        Err(StoreError::NotFound)
    );
    assert!(store.list_key_managers().await.expect("list").is_empty());

    // The certificates still hold the SVM; once they are gone, so can it be.
    assert!(matches!(
        store.delete_svm(&id("svm-0")).await,
        Err(StoreError::Conflict(_))
    ));
    for uuid in ["client-cert", "ca-1", "ca-2"] {
        store
            .delete_certificate(&id(uuid))
            .await
            .expect("delete certificate");
    }
    assert_eq!(
        store.delete_certificate(&id("ca-1")).await,
        Err(StoreError::NotFound)
    );
    store.delete_svm(&id("svm-0")).await.expect("delete svm");
}

pub(crate) async fn auth_keys_are_kept_in_order_and_hold_their_key_manager(store: &dyn Store) {
    use crate::domain::model::{AuthKey, StoredOn};
    with_key_manager(store, &["ks1.example.com"]).await;
    let key = |key_id: &str| AuthKey {
        key_manager: id("km"),
        key_id: key_id.into(),
        key_tag: format!("tag of {key_id}"),
        stored_on: vec![StoredOn {
            server: "ks1.example.com:5696".into(),
            unique_identifier: format!("uid-{key_id}"),
        }],
    };
    for key_id in ["b", "a", "c"] {
        store.insert_auth_key(key(key_id)).await.expect("insert");
    }
    let listed = store.list_auth_keys(&id("km")).await.expect("list");
    assert_eq!(listed, [key("b"), key("a"), key("c")]);
    assert!(matches!(
        store.insert_auth_key(key("a")).await,
        Err(StoreError::Conflict(_))
    ));
    let elsewhere = AuthKey {
        key_manager: id("missing"),
        ..key("d")
    };
    assert_eq!(
        store.insert_auth_key(elsewhere).await,
        Err(StoreError::NotFound)
    );
    // A key manager that holds keys stays until they are gone.
    assert!(matches!(
        store.delete_key_manager(&id("km")).await,
        Err(StoreError::Conflict(_))
    ));
    for key_id in ["a", "b", "c"] {
        store
            .delete_auth_key(&id("km"), key_id)
            .await
            .expect("delete");
    }
    assert_eq!(
        store.delete_auth_key(&id("km"), "a").await,
        Err(StoreError::NotFound)
    );
    assert!(
        store
            .list_auth_keys(&id("km"))
            .await
            .expect("list")
            .is_empty()
    );
    store.delete_key_manager(&id("km")).await.expect("delete");
}

pub(crate) async fn jobs_are_kept_failed_when_abandoned_and_pruned_when_old(store: &dyn Store) {
    use crate::domain::model::{Job, JobState};
    let job = |uuid: &str, start_time: i64, end_time: Option<i64>| Job {
        uuid: uuid.into(),
        description: format!("job {uuid}"),
        state: match end_time {
            Some(_) => JobState::Success,
            None => JobState::Running,
        },
        message: String::new(),
        code: 0,
        start_time,
        end_time,
        heartbeat: start_time,
    };
    store.save_job(job("old", 100, None)).await.expect("save");
    store.save_job(job("new", 200, None)).await.expect("save");
    store
        .save_job(job("done", 50, Some(60)))
        .await
        .expect("save");
    let uuids = |jobs: Vec<Job>| jobs.into_iter().map(|j| j.uuid).collect::<Vec<_>>();
    assert_eq!(
        uuids(store.list_jobs().await.expect("list")),
        ["done", "old", "new"]
    );
    // Saving again replaces.
    let ended = Job {
        state: JobState::Success,
        message: "ok".into(),
        end_time: Some(250),
        ..job("new", 200, None)
    };
    store.save_job(ended.clone()).await.expect("update");
    // Only unfinished jobs whose heartbeat is older than the bound are failed.
    let failed = store
        .fail_unfinished_jobs(150, "interrupted", 262145, 300)
        .await
        .expect("fail");
    assert_eq!(failed, 1);
    let jobs = store.list_jobs().await.expect("list");
    let old = jobs.iter().find(|j| j.uuid == "old").expect("old");
    assert_eq!(
        (old.state, old.message.as_str(), old.code, old.end_time),
        (JobState::Failure, "interrupted", 262145, Some(300))
    );
    assert!(jobs.contains(&ended));
    // Ended before 100: gone; of the rest, only the newest one is kept.
    store.prune_jobs(100, 10).await.expect("prune");
    assert_eq!(
        uuids(store.list_jobs().await.expect("list")),
        ["old", "new"]
    );
    store.prune_jobs(0, 1).await.expect("prune");
    assert_eq!(uuids(store.list_jobs().await.expect("list")), ["old"]);
}

pub(crate) async fn volumes_hold_their_svm_and_their_keys_key_manager(store: &dyn Store) {
    use crate::domain::model::{StoredOn, Volume, VolumeKey};
    let vs0 = with_key_manager(store, &["ks1.example.com"]).await;
    let volume = |uuid: &str, name: &str, encrypted: bool| Volume {
        uuid: id(uuid),
        name: name.into(),
        svm: SvmRef::from(&vs0),
        size: 20 << 20,
        key: encrypted.then(|| VolumeKey {
            key_id: format!("key of {name}"),
            key_manager: id("km"),
            stored_on: vec![StoredOn {
                server: "ks1.example.com:5696".into(),
                unique_identifier: "7".into(),
            }],
        }),
    };
    store
        .insert_volume(volume("v2", "vol_b", true))
        .await
        .expect("insert");
    store
        .insert_volume(volume("v1", "vol_a", false))
        .await
        .expect("insert");
    assert_eq!(
        store.list_volumes().await.expect("list"),
        [volume("v1", "vol_a", false), volume("v2", "vol_b", true)]
    );
    assert!(matches!(
        store.insert_volume(volume("v3", "vol_a", false)).await,
        Err(StoreError::Conflict(_))
    ));
    let elsewhere = Volume {
        svm: SvmRef {
            uuid: id("missing"),
            name: "missing".into(),
        },
        ..volume("v4", "vol_c", false)
    };
    assert_eq!(
        store.insert_volume(elsewhere).await,
        Err(StoreError::NotFound)
    );
    // The SVM and the key manager stay while a volume needs them.
    assert!(matches!(
        store.delete_key_manager(&id("km")).await,
        Err(StoreError::Conflict(_))
    ));
    store.delete_volume(&id("v2")).await.expect("delete");
    assert_eq!(
        store.delete_volume(&id("v2")).await,
        Err(StoreError::NotFound)
    );
    store
        .delete_key_manager(&id("km"))
        .await
        .expect("no key left");
    for uuid in ["client-cert", "ca-1", "ca-2"] {
        store
            .delete_certificate(&id(uuid))
            .await
            .expect("certificate");
    }
    assert!(matches!(
        store.delete_svm(&vs0.uuid).await,
        Err(StoreError::Conflict(_))
    ));
    store.delete_volume(&id("v1")).await.expect("delete");
    store.delete_svm(&vs0.uuid).await.expect("empty");
}

/// One `#[tokio::test]` per rule of this suite, each on a fresh store from `$fresh` (an async
/// function answering the store and whatever must live as long as it).
macro_rules! contract_tests {
    ($fresh:ident) => {
        mod contract {
            use super::$fresh;
            $crate::store::contract::contract_tests!(@each $fresh,
                users_round_trip,
                svms_are_listed_by_name_and_names_are_unique,
                certificate_names_are_unique_within_their_scope,
                one_key_manager_per_svm_and_one_for_the_cluster,
                inserting_a_key_manager_checks_its_servers,
                adding_key_servers_keeps_the_limit_and_refuses_duplicates_all_or_nothing,
                key_servers_are_updated_and_deleted_by_address,
                audit_records_are_numbered_by_the_store,
                the_trail_is_read_by_pages_and_keeps_only_the_newest,
                failed_logins_lock_an_account_at_the_limit_and_a_success_clears_them,
                updating_a_key_manager_replaces_its_settings_but_not_its_servers,
                an_onboard_passphrase_is_updated,
                deleting_a_key_manager_deletes_its_servers_and_frees_its_certificates,
                auth_keys_are_kept_in_order_and_hold_their_key_manager,
                jobs_are_kept_failed_when_abandoned_and_pruned_when_old,
                volumes_hold_their_svm_and_their_keys_key_manager
            );
        }
    };
    (@each $fresh:ident, $($rule:ident),*) => {
        $(
            #[tokio::test]
            async fn $rule() {
                let (store, _lives) = $fresh().await;
                $crate::store::contract::$rule(&store).await;
            }
        )*
    };
}
pub(crate) use contract_tests;
