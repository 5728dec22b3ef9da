//! The client against real PyKMIP servers and against peers that misbehave on purpose.

use std::sync::OnceLock;
use std::time::Duration;

use kmip::{
    Connector, Credential, Endpoint, Failure, ProtocolVersion, QueryFunction, TlsIdentity,
    TlsOffer, TlsVersion,
};
use test_support::fake::{FakeTlsServer, HandshakeFailureServer, SilentListener};
use test_support::kmip_server::{Faults, KmipObjectServer};
use test_support::pki::{Issued, KeyKind, TestPki};
use test_support::pykmip::{PyKmip, PyKmipConfig};
use test_support::responder::KmipResponder;

const TIMEOUT: Duration = Duration::from_secs(10);

fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(TestPki::new)
}

/// The key manager's connector: our client certificate, trusting our CA only, offering what
/// ONTAP offers by default.
fn connector_with(client: &Issued) -> Connector {
    let identity = TlsIdentity::from_pem(&client.cert_pem, &client.key_pem, &[&pki().ca.cert_pem])
        .expect("identity");
    Connector::new(&identity, &TlsOffer::ontap_default()).expect("connector")
}

fn connector() -> Connector {
    connector_with(&pki().client)
}

fn local(port: u16) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port,
    }
}

fn good_server() -> PyKmip {
    PyKmip::start(PyKmipConfig {
        server: &pki().server,
        trusted_ca: &pki().ca,
        credential: None,
    })
}

async fn check(endpoint: &Endpoint) -> Result<Vec<ProtocolVersion>, kmip::Error> {
    kmip::discover_versions(&connector(), endpoint, None, TIMEOUT).await
}

#[tokio::test]
async fn discovers_the_versions_pykmip_speaks_and_queries_it() {
    let server = good_server();
    let versions = check(&local(server.port)).await.expect("check succeeds");
    let shown: Vec<String> = versions.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["2.0", "1.4", "1.3", "1.2", "1.1", "1.0"]);

    let answer = kmip::query(
        &connector(),
        &local(server.port),
        None,
        vec![
            QueryFunction::Operations,
            QueryFunction::Objects,
            QueryFunction::ServerInformation,
        ],
        TIMEOUT,
    )
    .await
    .expect("query succeeds");
    const DISCOVER_VERSIONS: u32 = 0x1E;
    assert!(answer.operations.contains(&DISCOVER_VERSIONS), "{answer:?}");
    // PyKMIP answers Query Objects with an empty list, and names itself.
    assert!(answer.object_types.is_empty(), "{answer:?}");
    let vendor = answer.vendor_identification.unwrap_or_default();
    assert!(vendor.starts_with("PyKMIP"), "{vendor}");
}

#[tokio::test]
async fn localhost_is_resolved_and_matched_against_the_certificate() {
    let server = good_server();
    let endpoint = Endpoint {
        host: "localhost".into(),
        port: server.port,
    };
    assert!(check(&endpoint).await.is_ok());
}

#[tokio::test]
async fn a_server_certificate_from_another_ca_is_not_trusted() {
    let server = PyKmip::start(PyKmipConfig {
        server: &pki().rogue_server,
        trusted_ca: &pki().ca,
        credential: None,
    });
    let error = check(&local(server.port)).await.unwrap_err();
    assert_eq!(error.failure, Failure::ServerNotTrusted, "{error}");
    assert_eq!(
        error.to_string(),
        format!(
            "127.0.0.1:{}: server certificate is not signed by any of the key manager's server \
             CA certificates (issuer: CN=rogue-ca)",
            server.port
        )
    );
}

#[tokio::test]
async fn a_server_that_trusts_another_ca_rejects_our_client_certificate() {
    let server = PyKmip::start(PyKmipConfig {
        server: &pki().server,
        trusted_ca: &pki().rogue_ca,
        credential: None,
    });
    let error = check(&local(server.port)).await.unwrap_err();
    assert_eq!(error.failure, Failure::ClientCertificateRejected, "{error}");
    assert!(error.detail.contains("client certificate"), "{error}");
}

#[tokio::test]
async fn a_client_certificate_without_client_auth_usage_is_rejected_with_a_hint() {
    // PyKMIP refuses it in KMIP ("Authentication Not Successful"), after the TLS handshake.
    let server = good_server();
    let client = pki().ca.client_without_client_auth("no-eku");
    let result =
        kmip::discover_versions(&connector_with(&client), &local(server.port), None, TIMEOUT).await;
    let error = result.unwrap_err();
    assert_eq!(error.failure, Failure::ClientCertificateRejected, "{error}");
    assert!(
        error.detail.contains("Authentication Not Successful"),
        "{error}"
    );
    assert!(
        error.detail.contains(
            "no extended key usage clientAuth, which PyKMIP and many key servers require"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn pykmip_on_rsa_certificates_is_reached_over_tls_1_2_with_a_cbc_suite() {
    // PyKMIP's TLS 1.2 auth suite with an RSA key offers CBC suites only (static RSA and
    // ECDHE-RSA with SHA-256/384): what ONTAP's default offer must reach.
    let server = good_server();
    let mut session = connector()
        .connect(&local(server.port), TIMEOUT)
        .await
        .expect("handshake");
    let handshake = session.handshake().clone();
    assert_eq!(handshake.version, Some(TlsVersion::Tls1_2));
    assert!(
        handshake.cipher_suite.contains("_CBC_"),
        "{}",
        handshake.cipher_suite
    );
    let certificate = handshake.server_certificate.expect("server certificate");
    assert_eq!(certificate.key, "RSA 2048");
    assert!(certificate.names_host("127.0.0.1"));
    let versions = session.discover_versions(None).await.expect("versions");
    assert!(versions.contains(&ProtocolVersion { major: 1, minor: 4 }));
    session.close().await;
}

#[tokio::test]
async fn ecdsa_certificates_work_as_well() {
    let ecdsa = TestPki::with_keys(KeyKind::EcdsaP256);
    let server = PyKmip::start(PyKmipConfig::good(&ecdsa));
    let identity = TlsIdentity::from_pem(
        &ecdsa.client.cert_pem,
        &ecdsa.client.key_pem,
        &[&ecdsa.ca.cert_pem],
    )
    .expect("identity");
    let connector = Connector::new(&identity, &TlsOffer::ontap_default()).expect("connector");
    let session = connector
        .connect(&local(server.port), TIMEOUT)
        .await
        .expect("handshake");
    assert!(
        session.handshake().cipher_suite.contains("ECDSA"),
        "{}",
        session.handshake().cipher_suite
    );
    session.close().await;
}

#[tokio::test]
async fn an_expired_server_certificate_is_not_trusted_and_its_date_is_given() {
    let expired = pki().ca.expired_server("old-kmip", &["127.0.0.1"]);
    let fake = FakeTlsServer::start(&expired, Vec::new()).await;
    let error = check(&local(fake.address.port())).await.unwrap_err();
    assert_eq!(error.failure, Failure::ServerNotTrusted, "{error}");
    assert!(
        error.detail.contains("has expired: it was valid until 20"),
        "{error}"
    );
}

#[tokio::test]
async fn credentials_are_sent_and_a_wrong_password_is_refused_in_kmip() {
    let server = PyKmip::start(PyKmipConfig {
        server: &pki().server,
        trusted_ca: &pki().ca,
        credential: Some(("kmip-user", "right-password")),
    });
    let endpoint = local(server.port);
    let right = Credential {
        username: "kmip-user".into(),
        password: "right-password".into(),
    };
    let wrong = Credential {
        password: "wrong-password".into(),
        ..right.clone()
    };
    assert!(
        kmip::discover_versions(&connector(), &endpoint, Some(&right), TIMEOUT)
            .await
            .is_ok()
    );
    for credential in [Some(&wrong), None] {
        let error = kmip::discover_versions(&connector(), &endpoint, credential, TIMEOUT)
            .await
            .unwrap_err();
        assert_eq!(error.failure, Failure::OperationFailed, "{error}");
        assert_eq!(error.result.and_then(|(_, reason)| reason), Some(0x03));
        assert!(!error.to_string().contains("password"), "{error}");
    }
}

#[tokio::test]
async fn a_refused_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = check(&local(port)).await.unwrap_err();
    assert_eq!(error.failure, Failure::Unreachable);
    assert!(error.detail.contains("connection refused"), "{error}");
}

#[tokio::test]
async fn an_unknown_host_name_is_unreachable() {
    let endpoint = Endpoint {
        host: "no-such-host.invalid".into(),
        port: 5696,
    };
    let error = check(&endpoint).await.unwrap_err();
    assert_eq!(error.failure, Failure::Unreachable);
    assert!(error.detail.contains("cannot resolve"), "{error}");
}

#[tokio::test]
async fn a_silent_server_is_cut_off_by_the_timeout() {
    let silent = SilentListener::start().await;
    let endpoint = local(silent.address.port());
    let timeout = Duration::from_millis(300);
    // The outer bound only keeps a broken build from hanging the suite.
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        kmip::discover_versions(&connector(), &endpoint, None, timeout),
    )
    .await
    .expect("the client's own timeout fires");
    let error = result.unwrap_err();
    assert_eq!(error.failure, Failure::Unreachable);
    assert!(
        error.detail.contains("timeout, during the TLS handshake"),
        "{error}"
    );
}

#[tokio::test]
async fn a_certificate_for_another_name_is_not_trusted() {
    let elsewhere = pki().ca.server("elsewhere", &["kmip.example.com"]);
    let fake = FakeTlsServer::start(&elsewhere, Vec::new()).await;
    let error = check(&local(fake.address.port())).await.unwrap_err();
    assert_eq!(error.failure, Failure::ServerNotTrusted);
    assert!(error.detail.contains("kmip.example.com"), "{error}");
}

#[tokio::test]
async fn garbage_answers_are_errors_not_panics() {
    let huge_length = vec![0x42, 0x00, 0x7B, 0x01, 0x7F, 0xFF, 0xFF, 0xF8];
    let not_kmip = b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec();
    let truncated = vec![0x42, 0x00, 0x7B, 0x01, 0x00, 0x00, 0x00, 0x10, 0x42];
    let not_a_response = kmip::message::encode_request(&[], None);
    let cases = [
        (huge_length, "exceeds the 1048576-byte limit"),
        (not_kmip, "did not answer with a KMIP message"),
        (truncated, "ended in the middle"),
        (not_a_response, "unexpected KMIP response"),
    ];
    for (reply, expected) in cases {
        let fake = FakeTlsServer::start(&pki().server, reply).await;
        let error = check(&local(fake.address.port())).await.unwrap_err();
        assert_eq!(error.failure, Failure::Unreachable, "{error}");
        assert!(error.detail.contains(expected), "{error}");
    }
}

#[tokio::test]
async fn a_handshake_failure_alert_is_a_tls_failure() {
    let peer = HandshakeFailureServer::start().await;
    let error = check(&local(peer.address.port())).await.unwrap_err();
    assert_eq!(error.failure, Failure::Tls, "{error}");
    assert!(error.detail.contains("handshake"), "{error}");
}

/// The key round trip against a server, on one session.
async fn round_trip_on(endpoint: &Endpoint) -> kmip::round_trip::RoundTrip {
    let mut session = connector()
        .connect(endpoint, TIMEOUT)
        .await
        .expect("handshake");
    let trip = kmip::round_trip::key_round_trip(&mut session, None).await;
    session.close().await;
    trip
}

fn object_server(faults: Faults) -> impl std::future::Future<Output = KmipObjectServer> {
    KmipObjectServer::start_for(pki(), faults)
}

/// PyKMIP cannot keep ONTAP's keys: it refuses ONTAP's custom attributes, and the round trip
/// says so in PyKMIP's own words, with nothing left behind.
#[tokio::test]
async fn pykmip_refuses_ontaps_key_attributes_by_name() {
    let server = good_server();
    let trip = round_trip_on(&local(server.port)).await;
    assert!(!trip.succeeded(), "{trip:?}");
    let operations: Vec<(&str, bool)> = trip.steps.iter().map(|s| (s.operation, s.ok)).collect();
    assert_eq!(operations, [("Register", false)]);
    let error = trip.error.as_ref().expect("error");
    assert_eq!(error.failure, Failure::OperationFailed, "{error}");
    assert!(
        error
            .detail
            .contains("The x-NETAPP-KeyId attribute is unsupported."),
        "{error}"
    );
    assert!(!trip.key_left_behind());
}

/// A server that keeps ONTAP's attributes: the key is stored, found by its key id, confirmed,
/// read back and destroyed, and nothing is left on the server.
#[tokio::test]
async fn a_key_round_trip_stores_a_key_as_ontap_does_and_removes_it() {
    let server = object_server(Faults::default()).await;
    let endpoint = local(server.address.port());
    let trip = round_trip_on(&endpoint).await;
    assert!(trip.succeeded(), "{trip:?}");
    assert!(trip.warnings.is_empty(), "{:?}", trip.warnings);
    assert!(!trip.key_left_behind());
    let operations: Vec<&str> = trip.steps.iter().map(|s| s.operation).collect();
    assert_eq!(
        operations,
        [
            "Register",
            "Locate",
            "Get Attributes",
            "Get",
            "Destroy",
            "Locate"
        ]
    );
    assert_eq!(trip.key_id.len(), 80);
    assert!(server.is_empty(), "{:?}", server.attributes());

    // Asked afresh, the server holds nothing under that key id, nor that identifier.
    let mut session = connector()
        .connect(&endpoint, TIMEOUT)
        .await
        .expect("handshake");
    let located = kmip::ontap::locate(&mut session, None, &trip.key_id)
        .await
        .expect("locate");
    assert_eq!(located, kmip::ontap::Located::default());
    let id = trip.unique_identifier.clone().expect("registered");
    let error = kmip::ontap::get(&mut session, None, &id).await.unwrap_err();
    assert_eq!(error.failure, Failure::OperationFailed, "{error}");
    session.close().await;
}

/// While the key is there, the server holds it with every attribute ONTAP writes.
#[tokio::test]
async fn a_key_is_registered_with_ontaps_attributes() {
    let server = object_server(Faults::default()).await;
    let mut session = connector()
        .connect(&local(server.address.port()), TIMEOUT)
        .await
        .expect("handshake");
    let key = kmip::ontap::OntapKey::generate(
        kmip::ontap::KeyKind::Authentication,
        kmip::round_trip::test_labels(),
    )
    .expect("key");
    let id = kmip::ontap::register(&mut session, None, &key)
        .await
        .expect("register");
    session.close().await;
    let stored = server.attributes();
    let attributes: Vec<(&str, &str)> = stored[&id]
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        attributes,
        [
            ("x-NETAPP-KeyId", key.key_id.as_str()),
            ("x-NETAPP-ClusterName", "ontap-keymgr-check"),
            ("x-NETAPP-ClusterId", "00000000-0000-0000-0000-000000000000"),
            ("x-NETAPP-NodeId", "00000000-0000-0000-0000-000000000000"),
            ("x-NETAPP-VserverId", "00000000-0000-0000-0000-000000000000"),
            ("x-NETAPP-KeyType", "vek"),
            ("x-NETAPP-Product", "Data ONTAP"),
        ]
    );
}

/// A server whose Locate ignores ONTAP's filter answers another client's key too: the round
/// trip confirms its own key by its attributes, warns of the other, and leaves it alone; a
/// server that demands revocation gets one before Destroy.
#[tokio::test]
async fn an_over_broad_locate_is_a_warning_and_revocation_is_given_when_demanded() {
    let faults = Faults {
        locate_ignores_filter: true,
        destroy_demands_revocation: true,
    };
    let server = object_server(faults).await;
    let other = server.insert(&[7; 32], &[("x-NETAPP-KeyId", "someone-else")]);
    let trip = round_trip_on(&local(server.address.port())).await;
    assert!(trip.succeeded(), "{trip:?}");
    assert_eq!(trip.warnings.len(), 1, "{:?}", trip.warnings);
    assert!(
        trip.warnings[0].contains("ignores ONTAP's filter") && trip.warnings[0].contains(&other),
        "{:?}",
        trip.warnings
    );
    let operations: Vec<&str> = trip.steps.iter().map(|s| s.operation).collect();
    assert_eq!(
        operations,
        [
            "Register",
            "Locate",
            "Get Attributes",
            "Get",
            "Revoke",
            "Destroy",
            "Locate"
        ]
    );
    assert_eq!(server.attributes().keys().collect::<Vec<_>>(), [&other]);
}

/// Whether a connection's handshake resumed a session; the answer is read, since TLS 1.3
/// servers send their session tickets after the handshake.
async fn resumed(connector: &Connector, endpoint: &Endpoint) -> bool {
    let mut session = connector
        .connect(endpoint, TIMEOUT)
        .await
        .expect("connects");
    session.discover_versions(None).await.expect("answers");
    let resumed = session.handshake().resumed;
    assert!(session.handshake().server_certificate.is_some());
    session.close().await;
    resumed
}

async fn three_connections(connector: &Connector, endpoint: &Endpoint) -> [bool; 3] {
    [
        resumed(connector, endpoint).await,
        resumed(connector, endpoint).await,
        resumed(connector, endpoint).await,
    ]
}

fn resuming(max_age: Duration) -> Connector {
    let client = &pki().client;
    let identity = TlsIdentity::from_pem(&client.cert_pem, &client.key_pem, &[&pki().ca.cert_pem])
        .expect("identity");
    Connector::resuming(&identity, &TlsOffer::ontap_default(), max_age).expect("connector")
}

#[tokio::test]
async fn a_resuming_connector_resumes_sessions_where_servers_allow_it() {
    let server = &pki().server;
    let responder =
        KmipResponder::start(&server.cert_pem, &server.key_pem, &pki().ca.cert_pem).await;
    let fast = local(responder.address.port());
    // TLS 1.3 tickets (rustls): each resumed connection gets new ones.
    let hour = Duration::from_secs(3600);
    assert_eq!(
        three_connections(&resuming(hour), &fast).await,
        [false, true, true]
    );
    // What verifies a configuration never resumes, nor does a connector whose sessions are
    // too old to stand for a certificate check.
    assert_eq!(three_connections(&connector(), &fast).await, [false; 3]);
    assert_eq!(
        three_connections(&resuming(Duration::ZERO), &fast).await,
        [false; 3]
    );

    // PyKMIP: TLS 1.2 with a CBC suite, Python's server-side session cache.
    let pykmip = good_server();
    let shown = three_connections(&resuming(hour), &local(pykmip.port)).await;
    assert_eq!(shown, [false, true, true]);
}
