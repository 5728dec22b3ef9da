//! The domain without HTTP: the service's rules over an in-memory SQLite store and test-support's
//! KMIP responder. ONTAP's order of checks for key managers and key servers is pinned here, where
//! a failing assertion names the rule and not a status code: the scope of the key manager first,
//! then the request's own shape (addresses, duplicates, the 4-server limit), then the objects it
//! names (certificates), and only then a connection to a key server.

use std::sync::Arc;

use ontap_keymgr::domain::certificates::{CertificateRef, NewCertificate};
use ontap_keymgr::domain::cluster::{Cluster, ClusterConfig, OntapVersion};
use ontap_keymgr::domain::error::Error;
use ontap_keymgr::domain::key_managers::{NewExternal, NewKeyManager, NewOnboard};
use ontap_keymgr::domain::key_servers::{KeyServerChanges, NewKeyServer};
use ontap_keymgr::domain::model::{KeyManagerId, Secret};
use ontap_keymgr::domain::svms::SvmSelector;
use ontap_keymgr::domain::{Service, ServiceOptions};
use ontap_keymgr::store::read_model::ReadModel;
use ontap_keymgr::store::secrets::SecretBox;
use ontap_keymgr::store::sqlite::SqliteStore;
use test_support::pki::TestPki;
use test_support::responder::KmipResponder;

/// The service over a fresh in-memory store, presenting `version`.
async fn service_presenting(version: &str) -> Service {
    let store = SqliteStore::open_in_memory(SecretBox::from_key([9; 32])).expect("store");
    let config = ClusterConfig {
        name: "domain-test".into(),
        version: OntapVersion::parse(version).expect("version"),
        metrocluster: false,
        nodes: vec!["node-01".into()],
    };
    let service = Service::new(
        Arc::new(ReadModel::new(Arc::new(store))),
        Cluster::new(&config, uuid_v4()),
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
async fn install_certificates(service: &Service, pki: &TestPki) {
    service
        .catalogue
        .install_certificate(NewCertificate {
            cert_type: "client".into(),
            public_certificate: Some(pki.client.cert_pem.clone()),
            private_key: Some(Secret::new(pki.client.key_pem.clone())),
            name: Some("client".into()),
            svm: None,
        })
        .await
        .expect("client certificate");
    service
        .catalogue
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
async fn external_key_manager(service: &Service, responder: &KmipResponder) -> KeyManagerId {
    service
        .catalogue
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
    install_certificates(&service, &pki).await;
    external_key_manager(&service, &kmip).await;
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
    install_certificates(&service, &pki).await;
    let key_manager = external_key_manager(&service, &kmip).await;
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
