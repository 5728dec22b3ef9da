//! The domain without HTTP: the service's rules over an in-memory SQLite store and test-support's
//! KMIP responder. ONTAP's order of checks for key managers and key servers is pinned here, where
//! a failing assertion names the rule and not a status code: the scope of the key manager first,
//! then the request's own shape (addresses, duplicates, the 4-server limit), then the objects it
//! names (certificates), and only then a connection to a key server. The other parts are each
//! built alone over a store: accounts (lockout, names, the last admin), settings (ONTAP's checks
//! of the polling interval, FIPS, a reload after another instance's change) and connectivity
//! (a monitor round that sees a key server go away and come back).

use std::sync::Arc;

use ontap_keymgr::domain::certificates::{CertificateRef, NewCertificate};
use ontap_keymgr::domain::cluster::{Cluster, ClusterConfig, OntapVersion};
use ontap_keymgr::domain::error::Error;
use ontap_keymgr::domain::key_managers::{NewExternal, NewKeyManager, NewOnboard};
use ontap_keymgr::domain::key_servers::{KeyServerChanges, NewKeyServer};
use ontap_keymgr::domain::model::{KeyManagerId, Secret};
use ontap_keymgr::domain::svms::SvmSelector;
use std::time::Duration;

use ontap_keymgr::domain::accounts::Accounts;
use ontap_keymgr::domain::catalogue::Catalogue;
use ontap_keymgr::domain::connectivity::{Connectivity, MonitorSettings, ServerConnectivity};
use ontap_keymgr::domain::jobs::{Jobs, MAX_RUNNING, MAX_UNFINISHED, wait_for};
use ontap_keymgr::domain::keys::{Keys, MAX_AUTH_KEYS, NewAuthKey};
use ontap_keymgr::domain::login::{LockoutPolicy, LoginRefusal};
use ontap_keymgr::domain::model::JobState;
use ontap_keymgr::domain::model::{KeyManagerConfig, Role};
use ontap_keymgr::domain::security::SecurityChanges;
use ontap_keymgr::domain::settings::{KeyManagerConfigChanges, Settings};
use ontap_keymgr::domain::users::AdminBootstrap;
use ontap_keymgr::domain::{Service, ServiceOptions};
use ontap_keymgr::store::read_model::ReadModel;
use ontap_keymgr::store::secrets::SecretBox;
use ontap_keymgr::store::sqlite::SqliteStore;
use test_support::kmip_server::{Faults, KmipObjectServer};
use test_support::pki::TestPki;
use test_support::responder::KmipResponder;

/// A fresh in-memory store, behind the read model as the service runs it.
fn fresh_store() -> Arc<ReadModel> {
    let store = SqliteStore::open_in_memory(SecretBox::from_key([9; 32])).expect("store");
    Arc::new(ReadModel::new(Arc::new(store)))
}

/// A one-node cluster presenting `version`.
fn cluster_presenting(version: &str) -> Cluster {
    let config = ClusterConfig {
        name: "domain-test".into(),
        version: OntapVersion::parse(version).expect("version"),
        metrocluster: false,
        nodes: vec!["node-01".into()],
    };
    Cluster::new(&config, uuid_v4())
}

/// The service over a fresh in-memory store, presenting `version`.
async fn service_presenting(version: &str) -> Service {
    let service = Service::new(
        fresh_store(),
        cluster_presenting(version),
        ServiceOptions::default(),
    );
    service.load().await.expect("settings");
    service
}

fn uuid_v4() -> uuid::Uuid {
    uuid::Uuid::new_v4()
}

fn server(address: &str) -> NewKeyServer {
    NewKeyServer {
        server: address.into(),
        ..NewKeyServer::default()
    }
}

fn by_name(name: &str) -> CertificateRef {
    CertificateRef {
        name: Some(name.into()),
        uuid: None,
    }
}

/// Installs the test PKI's client certificate and CA for the cluster.
async fn install_certificates(catalogue: &Catalogue, pki: &TestPki) {
    catalogue
        .install_certificate(NewCertificate {
            cert_type: "client".into(),
            public_certificate: Some(pki.client.cert_pem.clone()),
            private_key: Some(Secret::new(pki.client.key_pem.clone())),
            name: Some("client".into()),
            svm: None,
        })
        .await
        .expect("client certificate");
    catalogue
        .install_certificate(NewCertificate {
            cert_type: "server_ca".into(),
            public_certificate: Some(pki.ca.cert_pem.clone()),
            private_key: None,
            name: Some("server-ca".into()),
            svm: None,
        })
        .await
        .expect("server CA");
}

fn external(servers: Vec<NewKeyServer>) -> NewExternal {
    NewExternal {
        client_certificate: Some(by_name("client")),
        server_ca_certificates: vec![by_name("server-ca")],
        servers,
    }
}

/// The cluster's external key manager with one key server on `responder`.
async fn external_key_manager(catalogue: &Catalogue, responder: &KmipResponder) -> KeyManagerId {
    catalogue
        .create_key_manager(NewKeyManager {
            svm: None,
            external: Some(external(vec![server(&responder.address.to_string())])),
            onboard: None,
        })
        .await
        .expect("key manager")
        .uuid
}

async fn responder(pki: &TestPki) -> KmipResponder {
    KmipResponder::start(&pki.server.cert_pem, &pki.server.key_pem, &pki.ca.cert_pem).await
}

#[tokio::test]
async fn a_new_key_manager_is_checked_scope_then_shape_then_certificates_then_servers() {
    let pki = TestPki::new();
    let kmip = responder(&pki).await;
    // An SVM's key manager before ONTAP 9.6: the version decides before anything else.
    let old = service_presenting("9.5.0").await;
    old.catalogue.create_svm("svm1").await.expect("svm");
    let refused = old
        .catalogue
        .create_key_manager(NewKeyManager {
            svm: Some(SvmSelector {
                name: Some("svm1".into()),
                uuid: None,
            }),
            external: Some(external(vec![server("bad address:1:2")])),
            onboard: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), 65536822, "{refused}");

    let service = service_presenting("9.14.1").await;
    // A bad address is refused before the certificates are looked for (none is installed).
    let refused = service
        .catalogue
        .create_key_manager(NewKeyManager {
            svm: None,
            external: Some(external(vec![server("ks1:99999")])),
            onboard: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), 262197, "{refused}");
    assert_eq!(refused.target().as_deref(), Some("external.servers.server"));
    // Five servers: the limit, before the certificates.
    let five = (1..=5).map(|n| server(&format!("ks{n}"))).collect();
    let refused = service
        .catalogue
        .create_key_manager(NewKeyManager {
            svm: None,
            external: Some(external(five)),
            onboard: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), 65536038, "{refused}");
    // Well-formed, but the certificates are missing: refused before any connection.
    let refused = service
        .catalogue
        .create_key_manager(NewKeyManager {
            svm: None,
            external: Some(external(vec![server(&kmip.address.to_string())])),
            onboard: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), 65536821, "{refused}");
    assert_eq!(
        kmip.accepted(),
        0,
        "no server is contacted before the rules pass"
    );
    // With them, the server is checked, and the key manager made.
    install_certificates(&service.catalogue, &pki).await;
    external_key_manager(&service.catalogue, &kmip).await;
    assert_eq!(kmip.accepted(), 1);
    // One per scope.
    let again = service
        .catalogue
        .create_key_manager(NewKeyManager {
            svm: None,
            external: None,
            onboard: Some(NewOnboard {
                passphrase: Some(Secret::new("x".repeat(40))),
            }),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(
            again,
            Error::AdminKeyManagerExists | Error::KeyManagerExists
        ),
        "{again}"
    );
}

#[tokio::test]
async fn key_servers_are_checked_scope_then_shape_then_limit_then_the_server() {
    let pki = TestPki::new();
    let kmip = responder(&pki).await;
    let service = service_presenting("9.14.1").await;
    install_certificates(&service.catalogue, &pki).await;
    let key_manager = external_key_manager(&service.catalogue, &kmip).await;
    let contacted = kmip.accepted();

    // A bad address and a duplicate in one request: the address is reported first.
    let refused = service
        .catalogue
        .add_key_servers(
            &key_manager,
            vec![server("ks1:0"), server("ks2"), server("ks2")],
        )
        .await
        .unwrap_err();
    assert_eq!(refused.target().as_deref(), Some("server"), "{refused}");
    // A server already configured.
    let configured = kmip.address.to_string();
    let refused = service
        .catalogue
        .add_key_servers(&key_manager, vec![server(&configured)])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), 65536870, "{refused}");
    // Four more than the one configured: the limit, before any connection.
    let four = (1..=4).map(|n| server(&format!("ks{n}.example"))).collect();
    let refused = service
        .catalogue
        .add_key_servers(&key_manager, four)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), 65536038, "{refused}");
    assert_eq!(
        kmip.accepted(),
        contacted,
        "no server contacted for a refused shape"
    );
    // A server that does not answer is refused by its check, and nothing is added.
    let silent = test_support::fake::SilentListener::start().await;
    let refused = service
        .catalogue
        .add_key_servers(
            &key_manager,
            vec![NewKeyServer {
                timeout: Some(1),
                ..server(&silent.address.to_string())
            }],
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), 65536852, "{refused}");
    assert_eq!(
        service
            .catalogue
            .key_servers(&key_manager)
            .await
            .expect("servers")
            .len(),
        1
    );

    // A PATCH names an unknown server before it is told there is nothing to change.
    let unknown = service
        .catalogue
        .modify_key_server(&key_manager, "ks9", KeyServerChanges::default())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), 65536843, "{unknown}");
    let nothing = service
        .catalogue
        .modify_key_server(&key_manager, &configured, KeyServerChanges::default())
        .await
        .unwrap_err();
    assert_eq!(nothing.code(), 65536880, "{nothing}");

    // Key servers of an onboard key manager: its kind is reported, whatever the request.
    let onboard_service = service_presenting("9.14.1").await;
    let onboard = onboard_service
        .catalogue
        .create_key_manager(NewKeyManager {
            svm: None,
            external: None,
            onboard: Some(NewOnboard {
                passphrase: Some(Secret::new("y".repeat(40))),
            }),
        })
        .await
        .expect("onboard")
        .uuid;
    let refused = onboard_service
        .catalogue
        .add_key_servers(&onboard, vec![server("ks1:0")])
        .await
        .unwrap_err();
    assert_eq!(refused.code(), 65536828, "{refused}");
}

// The accounts part, built alone.

/// The refusal of a login, or the role it logs in as.
async fn login(accounts: &Accounts, name: &str, password: &str) -> Result<Role, LoginRefusal> {
    accounts
        .authenticate(name, password, None)
        .await
        .map_err(|failure| failure.refusal)
}

#[tokio::test]
async fn an_account_locks_at_the_limit_and_a_new_password_unlocks_it() {
    let policy = LockoutPolicy {
        max_failed_login_attempts: 2,
        lockout_duration: Duration::from_secs(3_600),
        max_failed_logins_per_address: 0,
    };
    let accounts = Accounts::new(fresh_store(), policy);
    let outcome = accounts
        .bootstrap_admin(Some("first-password"), false)
        .await
        .expect("admin");
    assert_eq!(outcome, AdminBootstrap::Configured);
    assert_eq!(
        login(&accounts, "admin", "first-password").await,
        Ok(Role::Admin)
    );
    for _ in 0..2 {
        assert_eq!(
            login(&accounts, "admin", "wrong-password").await,
            Err(LoginRefusal::WrongPassword)
        );
    }
    // Locked: the right password, though verified before, is refused now.
    assert_eq!(
        login(&accounts, "admin", "first-password").await,
        Err(LoginRefusal::Locked)
    );
    accounts
        .set_password("admin", "second-password")
        .await
        .expect("new password");
    assert_eq!(
        login(&accounts, "admin", "second-password").await,
        Ok(Role::Admin)
    );
    assert_eq!(
        login(&accounts, "admin", "first-password").await,
        Err(LoginRefusal::WrongPassword)
    );
    assert_eq!(
        login(&accounts, "nobody", "first-password").await,
        Err(LoginRefusal::UnknownUser)
    );
}

#[tokio::test]
async fn accounts_keep_ontaps_names_passwords_and_one_admin_at_least() {
    let accounts = Accounts::new(fresh_store(), LockoutPolicy::default());
    accounts
        .bootstrap_admin(Some("admin-password"), false)
        .await
        .expect("admin");
    let code = |result: Result<(), Error>| result.expect_err("refused").code();
    let create = |name: &'static str, password: &'static str| {
        accounts.create_user(name, password, Role::Readonly)
    };
    assert_eq!(
        code(create("ab", "long-enough").await),
        262197,
        "short name"
    );
    assert_eq!(
        code(create("reader", "short").await),
        262197,
        "short password"
    );
    create("reader", "long-enough").await.expect("reader");
    assert_eq!(code(create("reader", "long-enough").await), 1, "taken name");
    assert_eq!(
        code(accounts.delete_user("admin").await),
        8,
        "the last admin"
    );
    accounts.delete_user("reader").await.expect("delete");
    let names: Vec<String> = accounts
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["admin"]);
    // A second start keeps the admin as it is.
    let again = accounts
        .bootstrap_admin(Some("other-password"), false)
        .await
        .expect("again");
    assert_eq!(again, AdminBootstrap::Existing);
}

/// A flooded address: the credentials verified before are still served from it; an unverified
/// attempt is throttled, even with a right password; another address is not concerned.
#[tokio::test]
async fn the_throttle_holds_back_only_unverified_attempts() {
    let policy = LockoutPolicy {
        max_failed_login_attempts: 0,
        lockout_duration: Duration::from_secs(3_600),
        max_failed_logins_per_address: 3,
    };
    let accounts = Accounts::new(fresh_store(), policy);
    accounts
        .bootstrap_admin(Some("admin-password"), false)
        .await
        .expect("admin");
    accounts
        .create_user("reader", "reader-password", Role::Readonly)
        .await
        .expect("reader");
    let flooded: std::net::IpAddr = "127.0.0.2".parse().expect("address");
    let other: std::net::IpAddr = "127.0.0.3".parse().expect("address");
    let from = |address, name: &'static str, password: &'static str| {
        let accounts = &accounts;
        async move {
            accounts
                .authenticate(name, password, Some(address))
                .await
                .map_err(|f| f.refusal)
        }
    };
    assert_eq!(
        from(flooded, "admin", "admin-password").await,
        Ok(Role::Admin)
    );
    for _ in 0..3 {
        assert_eq!(
            from(flooded, "admin", "wrong-password").await,
            Err(LoginRefusal::WrongPassword)
        );
    }
    assert_eq!(
        from(flooded, "admin", "wrong-password").await,
        Err(LoginRefusal::AddressThrottled)
    );
    assert_eq!(
        from(flooded, "reader", "reader-password").await,
        Err(LoginRefusal::AddressThrottled),
        "never verified"
    );
    assert_eq!(
        from(flooded, "admin", "admin-password").await,
        Ok(Role::Admin)
    );
    assert_eq!(
        from(other, "reader", "reader-password").await,
        Ok(Role::Readonly)
    );
    // A new password drops what was verified: the old one is no longer served, the new one
    // is throttled until verified elsewhere.
    accounts
        .set_password("admin", "admin-password-2")
        .await
        .expect("new password");
    assert_eq!(
        from(flooded, "admin", "admin-password").await,
        Err(LoginRefusal::AddressThrottled)
    );
    assert_eq!(
        from(other, "admin", "admin-password-2").await,
        Ok(Role::Admin)
    );
    assert_eq!(
        from(flooded, "admin", "admin-password-2").await,
        Ok(Role::Admin)
    );
}

// The settings part, built alone.

fn settings_over(store: &Arc<ReadModel>, version: &str) -> Settings {
    Settings::new(
        Arc::clone(store) as _,
        Arc::clone(store) as _,
        Arc::new(cluster_presenting(version)),
    )
}

#[tokio::test]
async fn the_polling_interval_is_checked_range_then_version_then_key_managers() {
    let store = fresh_store();
    let interval = |minutes| KeyManagerConfigChanges {
        health_monitor_polling_interval: Some(minutes),
        ..KeyManagerConfigChanges::default()
    };
    let old = settings_over(&store, "9.9.1");
    let code = |result: Result<KeyManagerConfig, Error>| result.expect_err("refused").code();
    assert_eq!(
        code(old.modify_key_manager_config(interval(14)).await),
        262197
    );
    assert_eq!(
        code(old.modify_key_manager_config(interval(20)).await),
        65537303
    );
    let settings = settings_over(&store, "9.17.1");
    assert_eq!(
        code(settings.modify_key_manager_config(interval(20)).await),
        65537304,
        "no external key manager yet"
    );
    let common_criteria = KeyManagerConfigChanges {
        cc_mode_enabled: Some(true),
        ..KeyManagerConfigChanges::default()
    };
    assert_eq!(
        code(settings.modify_key_manager_config(common_criteria).await),
        65536809
    );
    // Nothing refused was kept.
    assert_eq!(settings.key_manager_config(), KeyManagerConfig::default());
}

#[tokio::test]
async fn a_settings_change_is_stored_and_another_instance_reloads_it() {
    let store = fresh_store();
    let here = settings_over(&store, "9.17.1");
    let there = settings_over(&store, "9.17.1");
    let fips = SecurityChanges {
        fips: Some(true),
        ..SecurityChanges::default()
    };
    let offer = here.modify_security(fips).await.expect("FIPS on");
    assert!(offer.fips());
    assert!(!there.tls_offer().fips(), "not read yet");
    let reloaded = there.reload().await.expect("reload");
    assert!(reloaded.tls_offer && !reloaded.key_manager_config);
    assert_eq!(there.tls_offer(), offer);
    assert!(!there.reload().await.expect("again").tls_offer, "no change");
    // FIPS refuses what it does not allow, named by ONTAP's code.
    let tls_1_0 = SecurityChanges {
        protocol_versions: Some(vec!["TLSv1".into()]),
        ..SecurityChanges::default()
    };
    let refused = here.modify_security(tls_1_0).await.expect_err("not FIPS");
    assert_eq!(refused.code(), 52428824);
    assert_eq!(here.tls_offer(), offer);
}

/// The parts a test of connectivity or keys builds alone over `store`, with the catalogue whose
/// objects they read.
struct Parts {
    cluster: Arc<Cluster>,
    settings: Arc<Settings>,
    connectivity: Arc<Connectivity>,
    catalogue: Catalogue,
}

impl Parts {
    fn over(store: &Arc<ReadModel>) -> Parts {
        let cluster = Arc::new(cluster_presenting("9.17.1"));
        let settings = Arc::new(settings_over(store, "9.17.1"));
        let connectivity = Arc::new(Connectivity::new(
            Arc::clone(store) as _,
            Arc::clone(store) as _,
            Arc::clone(&cluster),
            Arc::clone(&settings),
            MonitorSettings::default(),
        ));
        let catalogue = Catalogue::new(
            Arc::clone(store) as _,
            Arc::clone(&cluster),
            Arc::clone(&settings),
            Arc::clone(&connectivity),
        );
        Parts {
            cluster,
            settings,
            connectivity,
            catalogue,
        }
    }
}

// The connectivity part, built alone over a catalogue's objects.

#[tokio::test]
async fn a_monitor_round_sees_a_key_server_go_away_and_come_back() {
    let pki = TestPki::new();
    let kmip = responder(&pki).await;
    let store = fresh_store();
    let parts = Parts::over(&store);
    let (connectivity, catalogue) = (parts.connectivity, parts.catalogue);
    install_certificates(&catalogue, &pki).await;
    let key_manager = external_key_manager(&catalogue, &kmip).await;
    let servers = catalogue.key_servers(&key_manager).await.expect("servers");
    let round = connectivity
        .check_all_key_servers(Duration::ZERO)
        .await
        .expect("round");
    assert_eq!((round.key_servers, round.not_available), (1, 0));
    let available = |c: &[ServerConnectivity]| c[0].cluster_availability;
    let seen = connectivity.of(&key_manager, &servers).await.expect("seen");
    assert!(available(&seen), "{seen:?}");

    let address = kmip.address;
    drop(kmip);
    let round = connectivity
        .check_all_key_servers(Duration::ZERO)
        .await
        .expect("round");
    assert_eq!(round.not_available, 1);
    let seen = connectivity.of(&key_manager, &servers).await.expect("seen");
    assert!(!available(&seen));
    assert_eq!(seen[0].problem.as_ref().map(|p| p.code), Some(65536852));

    let _back = KmipResponder::start_on(
        address,
        &pki.server.cert_pem,
        &pki.server.key_pem,
        &pki.ca.cert_pem,
    )
    .await;
    connectivity
        .check_all_key_servers(Duration::ZERO)
        .await
        .expect("round");
    let seen = connectivity.of(&key_manager, &servers).await.expect("seen");
    assert!(available(&seen), "{seen:?}");
}

// The jobs part, built alone.

/// At most four jobs run at once and 64 are unfinished: the 65th is refused as busy; each ends
/// with its outcome, a failure with its ONTAP code.
#[tokio::test]
async fn jobs_run_a_few_at_once_and_refuse_beyond_their_bound() {
    let jobs = Jobs::new(fresh_store());
    let (release, gate) = tokio::sync::watch::channel(false);
    let mut outcomes = Vec::new();
    for _ in 0..MAX_UNFINISHED {
        let mut gate = gate.clone();
        let work = async move {
            let _ = gate.wait_for(|open| *open).await;
            Ok("done".to_string())
        };
        let (job, outcome) = jobs.start("waits", work).await.expect("job");
        assert_eq!(job.state, JobState::Queued);
        outcomes.push(outcome);
    }
    let refused = jobs
        .start("one too many", async { Ok(String::new()) })
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Error::Busy.code());
    let jobs = &jobs;
    let count = |state| async move {
        jobs.jobs()
            .await
            .expect("jobs")
            .iter()
            .filter(|j| j.state == state)
            .count()
    };
    let started = std::time::Instant::now();
    while count(JobState::Running).await < MAX_RUNNING && started.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(JobState::Running).await, MAX_RUNNING);
    assert_eq!(count(JobState::Queued).await, MAX_UNFINISHED - MAX_RUNNING);
    release.send(true).expect("release");
    for outcome in outcomes {
        let ended = wait_for(outcome, 10).await.expect("ended");
        assert_eq!(
            (ended.state, ended.message.as_str()),
            (JobState::Success, "done")
        );
    }
    let (_, outcome) = jobs
        .start("fails", async { Err(Error::NotFound { target: "uuid" }) })
        .await
        .expect("job");
    let ended = wait_for(outcome, 10).await.expect("ended");
    assert_eq!((ended.state, ended.code), (JobState::Failure, 4));
    assert!(ended.end_time.is_some());
}

// The keys part, built alone over a catalogue's key manager.

/// The 257th authentication key is refused (65536048), and nothing more is stored.
#[tokio::test]
async fn authentication_keys_stop_at_ontaps_limit() {
    let pki = TestPki::new();
    let kmip = KmipObjectServer::start_for(&pki, Faults::default()).await;
    let store = fresh_store();
    let Parts {
        cluster,
        settings,
        catalogue,
        ..
    } = Parts::over(&store);
    install_certificates(&catalogue, &pki).await;
    let key_manager = catalogue
        .create_key_manager(NewKeyManager {
            svm: None,
            external: Some(external(vec![server(&kmip.address.to_string())])),
            onboard: None,
        })
        .await
        .expect("key manager")
        .uuid;
    let keys = Keys::new(
        Arc::clone(&store) as _,
        Arc::clone(&store) as _,
        Arc::clone(&store) as _,
        cluster,
        settings,
    );
    for _ in 0..MAX_AUTH_KEYS {
        keys.create_auth_key(&key_manager, NewAuthKey::default())
            .await
            .expect("key");
    }
    let refused = keys
        .create_auth_key(&key_manager, NewAuthKey::default())
        .await
        .expect_err("over the limit");
    assert_eq!(refused.code(), 65536048);
    assert_eq!(kmip.len(), MAX_AUTH_KEYS);
    assert_eq!(
        keys.auth_keys(&key_manager).await.expect("keys").len(),
        MAX_AUTH_KEYS
    );
}
