//! `ontap-keymgr kmip check`, the real binary against real PyKMIP servers and faulty peers: each
//! kind of failure has its own message and exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use test_support::fake::HandshakeFailureServer;
use test_support::kmip_server::{Faults, KmipObjectServer};
use test_support::openssl::OpenSslServer;
use test_support::pki::{Issued, TestPki};
use test_support::pykmip::{PyKmip, PyKmipConfig};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(pki: &TestPki) -> Files {
        let dir = tempfile::tempdir().expect("temp dir");
        pki.client.write(dir.path(), "client");
        std::fs::write(dir.path().join("server-ca.pem"), &pki.ca.cert_pem).expect("write CA");
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn check(files: &Files, server: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ontap-keymgr"))
        .args(["kmip", "check", "--server", server])
        .args(match extra.contains(&"--timeout") {
            true => &[][..],
            false => &["--timeout", "10"][..],
        })
        .arg("--client-cert")
        .arg(files.path("client.pem"))
        .arg("--client-key")
        .arg(files.path("client.key"))
        .arg("--server-ca")
        .arg(files.path("server-ca.pem"))
        .args(extra)
        .env_remove("KEYMGR_KMIP_PASSWORD")
        .output()
        .expect("run ontap-keymgr")
}

fn start(server: &Issued, trusted_ca: &test_support::pki::Ca) -> PyKmip {
    PyKmip::start(PyKmipConfig {
        server,
        trusted_ca,
        credential: None,
    })
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn prints_the_versions_of_a_good_server() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let server = start(&pki.server, &pki.ca);
    let output = check(&files, &server.address(), &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        report.contains("KMIP versions: 2.0 1.4 1.3 1.2 1.1 1.0\n"),
        "{report}"
    );
    // PyKMIP's TLS 1.2 suite with an RSA key: CBC suites only, which ONTAP's offer includes.
    assert!(report.contains(": TLSv1.2 with TLS_"), "{report}");
    assert!(report.contains("_CBC_"), "{report}");
}

#[test]
fn each_failure_kind_has_its_own_diagnosis_and_exit_code() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let untrusted = start(&pki.rogue_server, &pki.ca);
    let rejecting = start(&pki.server, &pki.rogue_ca);
    let refused_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let no_common_cipher = runtime.block_on(HandshakeFailureServer::start());

    let cases = [
        (
            untrusted.address(),
            3,
            "server certificate is not signed by any of the key manager's server CA certificates",
        ),
        (rejecting.address(), 4, "client certificate"),
        (no_common_cipher.address.to_string(), 5, "handshake_failure"),
        (format!("127.0.0.1:{refused_port}"), 6, "connection refused"),
    ];
    for (server, code, diagnosis) in cases {
        let output = check(&files, &server, &[]);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(code), "{server}: {message}");
        assert!(message.contains(&server), "{message}");
        assert!(message.contains(diagnosis), "{message}");
        assert!(message.contains("hint: "), "{message}");
        assert!(message.contains("ONTAP would answer "), "{message}");
        assert!(String::from_utf8_lossy(&output.stdout).starts_with("Key server "));
    }
}

#[test]
fn a_wrong_kmip_password_is_an_operation_failure() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let server = PyKmip::start(PyKmipConfig {
        server: &pki.server,
        trusted_ca: &pki.ca,
        credential: Some(("kmip-user", "right-password")),
    });
    let right = check(
        &files,
        &server.address(),
        &["--username", "kmip-user", "--password", "right-password"],
    );
    assert!(right.status.success(), "{}", stderr(&right));

    let wrong = check(
        &files,
        &server.address(),
        &["--username", "kmip-user", "--password", "wrong-password"],
    );
    assert_eq!(wrong.status.code(), Some(7), "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("Authentication Not Successful"));
    assert!(!stderr(&wrong).contains("wrong-password"));
}

#[test]
fn unreadable_files_and_bad_addresses_are_usage_errors() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let missing = check(
        &files,
        "127.0.0.1",
        &[
            "--server-ca",
            Path::new("/nonexistent/ca.pem")
                .to_str()
                .unwrap_or_default(),
        ],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );

    let bad_address = check(&files, "10.0.0.1:99999", &[]);
    assert_eq!(bad_address.status.code(), Some(2));
    assert!(
        stderr(&bad_address).contains("99999"),
        "{}",
        stderr(&bad_address)
    );
}

/// Runs `kmip check --format json` and parses its one object.
fn check_json(files: &Files, server: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    let output = check(files, server, &args);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(&output)
        )
    });
    (output.status.code(), report)
}

#[test]
fn the_json_report_of_a_good_server_field_by_field() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let server = start(&pki.server, &pki.ca);
    let (code, report) = check_json(&files, &server.address(), &[]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["server"], server.address());
    assert_eq!(report["ok"], true);
    assert_eq!(report["error"], Value::Null);
    assert_eq!(report["warnings"], serde_json::json!([]));
    assert_eq!(report["offer"]["fips"], false);
    assert_eq!(
        report["offer"]["tls_versions"],
        serde_json::json!(["TLSv1.3", "TLSv1.2"])
    );
    assert_eq!(report["offer"]["cipher_suites"], 128);
    let connection = &report["connection"];
    assert_eq!(connection["tls_version"], "TLSv1.2");
    let suite = connection["cipher_suite"].as_str().expect("suite");
    assert!(
        suite.starts_with("TLS_") && suite.contains("_CBC_"),
        "{suite}"
    );
    assert!(connection["connect_ms"].as_f64().expect("ms") >= 0.0);
    assert!(connection["handshake_ms"].as_f64().expect("ms") > 0.0);
    let certificate = &report["server_certificate"];
    assert_eq!(certificate["subject"], "CN=kmip-server");
    assert_eq!(certificate["issuer"], "CN=test-ca");
    assert_eq!(
        certificate["names"],
        serde_json::json!(["127.0.0.1", "localhost"])
    );
    assert_eq!(certificate["key"], "RSA 2048");
    assert_eq!(certificate["extended_key_usage"], true);
    assert_eq!(certificate["matches"], true);
    let days = certificate["days_to_expiry"].as_i64().expect("days");
    assert!((363..=365).contains(&days), "{days}");
    assert!(
        certificate["not_after"]
            .as_str()
            .expect("date")
            .ends_with('Z')
    );
    let client = &report["client_certificate"];
    assert_eq!(client["subject"], "CN=key-manager");
    assert_eq!(client["extended_key_usage"], true);
    assert_eq!(client["matches"], true);
    let kmip = &report["kmip"];
    assert_eq!(kmip["versions"][0], "2.0");
    assert!(
        kmip["vendor"]
            .as_str()
            .expect("vendor")
            .starts_with("PyKMIP")
    );
    let operations = kmip["operations"].as_array().expect("operations");
    for wanted in ["Register", "Locate", "Get", "Destroy", "Discover Versions"] {
        assert!(
            operations.iter().any(|o| o == wanted),
            "{wanted}: {operations:?}"
        );
    }
    assert_eq!(report["suites"], Value::Null);
    assert_eq!(report["key_round_trip"], Value::Null);
}

/// The steps of a report's key round trip, and whether each succeeded.
fn round_trip_steps(report: &Value) -> Vec<(String, bool)> {
    report["key_round_trip"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["operation"].as_str().unwrap_or("").to_string(),
                s["ok"] == true,
            )
        })
        .collect()
}

fn steps(expected: &[&str]) -> Vec<(String, bool)> {
    expected.iter().map(|s| (s.to_string(), true)).collect()
}

/// PyKMIP refuses ONTAP's custom attributes: the round trip fails at Register (65536921, exit 7)
/// and quotes PyKMIP's own reason; nothing is left behind.
#[test]
fn the_key_round_trip_quotes_pykmips_refusal_of_ontaps_attributes() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let server = start(&pki.server, &pki.ca);
    let (code, report) = check_json(&files, &server.address(), &["--key-round-trip"]);
    assert_eq!(code, Some(7), "{report:#}");
    let trip = &report["key_round_trip"];
    assert_eq!(trip["ok"], false);
    assert_eq!(trip["left_on_server"], false);
    assert_eq!(round_trip_steps(&report), [("Register".to_string(), false)]);
    assert_eq!(report["error"]["ontap_code"], 65536921);
    let message = report["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("The x-NETAPP-KeyId attribute is unsupported."),
        "{message}"
    );
}

/// A server that keeps ONTAP's attributes (test-support's object server): the key is stored
/// with them, found by its `x-NETAPP-KeyId`, confirmed, read back and destroyed.
#[test]
fn the_key_round_trip_stores_a_key_as_ontap_does_and_leaves_nothing() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = runtime.block_on(object_server(&pki, Faults::default()));
    let (code, report) = check_json(&files, &server.address.to_string(), &["--key-round-trip"]);
    assert_eq!(code, Some(0), "{report:#}");
    let trip = &report["key_round_trip"];
    assert_eq!(trip["ok"], true);
    assert_eq!(trip["left_on_server"], false);
    assert_eq!(trip["key_id"].as_str().map(str::len), Some(80));
    assert_eq!(
        round_trip_steps(&report),
        steps(&[
            "Register",
            "Locate",
            "Get Attributes",
            "Get",
            "Destroy",
            "Locate"
        ])
    );
    assert_eq!(report["warnings"], serde_json::json!([]));
    assert!(server.is_empty());
}

/// A server whose Locate ignores ONTAP's filter: a warning names it; the round trip itself, on
/// its own key, succeeds and leaves the other client's key alone.
#[test]
fn an_over_broad_locate_is_a_warning_of_the_key_round_trip() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let faults = Faults {
        locate_ignores_filter: true,
        ..Faults::default()
    };
    let server = runtime.block_on(object_server(&pki, faults));
    server.insert(&[1; 32], &[("x-NETAPP-KeyId", "another-cluster-key")]);
    let (code, report) = check_json(&files, &server.address.to_string(), &["--key-round-trip"]);
    assert_eq!(code, Some(0), "{report:#}");
    let warnings = report["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap_or("").contains("ignores ONTAP's filter")),
        "{warnings:?}"
    );
    assert_eq!(server.len(), 1);
    // The text report shows it too.
    let output = check(&files, &server.address.to_string(), &["--key-round-trip"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("warning: Locate by x-NETAPP-KeyId"), "{text}");
}

/// A key stored through the primary reaches a secondary that replicates it, and not one that
/// does not: the report says which, per secondary, and the check fails (65536921, exit 7).
#[test]
fn replication_is_checked_per_secondary_by_the_keys_id() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let primary = runtime.block_on(object_server(&pki, Faults::default()));
    let replica = runtime.block_on(primary.replica(
        &pki.server.cert_pem,
        &pki.server.key_pem,
        &pki.ca.cert_pem,
    ));
    let alone = runtime.block_on(object_server(&pki, Faults::default()));
    let secondary = replica.address.to_string();
    let (code, report) = check_json(
        &files,
        &primary.address.to_string(),
        &["--replication", "--secondary", &secondary],
    );
    assert_eq!(code, Some(0), "{report:#}");
    let replication = &report["replication"];
    assert_eq!(replication["ok"], true);
    assert_eq!(replication["cleaned_up"], true);
    assert_eq!(replication["secondaries"][0]["server"], secondary.as_str());
    assert_eq!(replication["secondaries"][0]["ok"], true);
    assert!(replication["secondaries"][0]["found_after_ms"].is_u64());
    assert!(primary.is_empty(), "the test key is destroyed");

    let stale = alone.address.to_string();
    let (code, report) = check_json(
        &files,
        &primary.address.to_string(),
        &[
            "--replication",
            "--secondary",
            &secondary,
            "--secondary",
            &stale,
            "--replication-wait",
            "1",
        ],
    );
    assert_eq!(code, Some(7), "{report:#}");
    let secondaries = &report["replication"]["secondaries"];
    assert_eq!(secondaries[0]["ok"], true);
    assert_eq!(secondaries[1]["ok"], false);
    assert_eq!(secondaries[1]["found_after_ms"], Value::Null);
    assert!(
        secondaries[1]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not replicated within 1 s"),
        "{secondaries}"
    );
    assert_eq!(report["error"]["ontap_code"], 65536921);
    assert!(
        report["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains(&stale),
        "{report:#}"
    );
    assert!(primary.is_empty() && alone.is_empty());
}

async fn object_server(pki: &TestPki, faults: Faults) -> KmipObjectServer {
    KmipObjectServer::start_for(pki, faults).await
}

/// An `openssl s_server` answers no KMIP: the check ends waiting for the KMIP response (65536852,
/// exit 6), after the TLS facts are in the report.
fn tls_facts(report: &Value) -> (String, String) {
    let connection = &report["connection"];
    (
        connection["tls_version"].as_str().unwrap_or("").to_string(),
        connection["cipher_suite"]
            .as_str()
            .unwrap_or("")
            .to_string(),
    )
}

#[test]
fn the_negotiated_version_and_suite_are_reported_one_suite_at_a_time() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let cases = [
        (vec!["-tls1_3"], "TLSv1.3", "TLS_AES_128_GCM_SHA256"),
        (
            vec!["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"],
            "TLSv1.2",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ),
        (
            vec!["-tls1_2", "-cipher", "AES256-SHA256"],
            "TLSv1.2",
            "TLS_RSA_WITH_AES_256_CBC_SHA256",
        ),
    ];
    for (options, version, suite) in cases {
        let server = OpenSslServer::start(&pki.server, &pki.ca, &options);
        let (code, report) = check_json(&files, &server.address(), &["--timeout", "2"]);
        assert_eq!(
            tls_facts(&report),
            (version.into(), suite.into()),
            "{report:#}"
        );
        assert_eq!(code, Some(6), "{report:#}");
        assert_eq!(report["error"]["ontap_code"], 65536852);
        assert_eq!(report["error"]["kind"], "unreachable");
    }
}

#[test]
fn a_suite_outside_ontaps_offer_is_66060340_naming_both_offers() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let server = OpenSslServer::start(
        &pki.server,
        &pki.ca,
        &["-tls1_2", "-cipher", "NULL-SHA256:@SECLEVEL=0"],
    );
    let (code, report) = check_json(&files, &server.address(), &[]);
    assert_eq!(code, Some(5), "{report:#}");
    assert_eq!(report["error"]["ontap_code"], 66060340);
    assert_eq!(report["error"]["kind"], "tls");
    let message = report["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("We offer TLS 1.3, TLS 1.2 with 128 cipher suites (FIPS mode off)"),
        "{message}"
    );
    assert!(
        message.contains("the server accepts TLS 1.2 with TLS_RSA_WITH_NULL_SHA256"),
        "{message}"
    );
}

#[test]
fn fips_mode_refuses_a_non_fips_suite_and_accepts_a_fips_one() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let chacha = OpenSslServer::start(
        &pki.server,
        &pki.ca,
        &["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"],
    );
    let (code, report) = check_json(&files, &chacha.address(), &["--fips", "--timeout", "2"]);
    assert_eq!(code, Some(5), "{report:#}");
    assert_eq!(report["offer"]["fips"], true);
    assert_eq!(report["error"]["ontap_code"], 66060340);
    // Without FIPS mode, ONTAP's default offer includes it.
    let (_, report) = check_json(&files, &chacha.address(), &["--timeout", "2"]);
    assert_eq!(
        tls_facts(&report).1,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
    );

    let aes = OpenSslServer::start(
        &pki.server,
        &pki.ca,
        &["-tls1_2", "-cipher", "AES128-GCM-SHA256"],
    );
    let (code, report) = check_json(&files, &aes.address(), &["--fips", "--timeout", "2"]);
    assert_eq!(
        tls_facts(&report),
        ("TLSv1.2".into(), "TLS_RSA_WITH_AES_128_GCM_SHA256".into())
    );
    assert_eq!(code, Some(6), "{report:#}");
}

#[test]
fn untrusted_server_certificates_say_why() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let expired = pki.ca.expired_server("old-kmip", &["127.0.0.1"]);
    let elsewhere = pki
        .ca
        .server("elsewhere", &["kmip.example.com", "10.9.8.7"]);
    let cases = [
        (expired, "has expired: it was valid until 20"),
        (
            elsewhere,
            "is not valid for this address (names in the certificate: kmip.example.com, 10.9.8.7)",
        ),
    ];
    for (certificate, why) in cases {
        let server = OpenSslServer::start(&certificate, &pki.ca, &[]);
        let (code, report) = check_json(&files, &server.address(), &[]);
        assert_eq!(code, Some(3), "{report:#}");
        assert_eq!(report["error"]["ontap_code"], 66060338);
        let message = report["error"]["message"].as_str().expect("message");
        assert!(message.contains(why), "{message}");
    }
}

#[test]
fn a_client_certificate_without_client_auth_is_66060339_with_the_reason() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    pki.ca
        .client_without_client_auth("no-eku")
        .write(files.dir.path(), "client");
    let server = start(&pki.server, &pki.ca);
    let (code, report) = check_json(&files, &server.address(), &[]);
    assert_eq!(code, Some(4), "{report:#}");
    assert_eq!(report["error"]["ontap_code"], 66060339);
    let message = report["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("no extended key usage clientAuth"),
        "{message}"
    );
    assert_eq!(
        report["client_certificate"]["extended_key_usage"],
        Value::Null
    );
    assert!(
        report["warnings"][0]
            .as_str()
            .expect("warning")
            .contains("has no extended key usage clientAuth")
    );
}

#[test]
fn suites_lists_which_of_ontaps_suites_the_server_accepts() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let server = OpenSslServer::start(
        &pki.server,
        &pki.ca,
        &[
            "-tls1_2",
            "-cipher",
            "AES128-SHA256:ECDHE-RSA-AES256-GCM-SHA384",
        ],
    );
    let (_, report) = check_json(&files, &server.address(), &["--suites", "--timeout", "2"]);
    let suites = report["suites"].as_array().expect("suites");
    assert_eq!(
        suites.len(),
        128,
        "one line per version and suite of ONTAP's offer"
    );
    let accepted: Vec<&str> = suites
        .iter()
        .filter(|s| s["result"] == "accepted")
        .map(|s| s["cipher_suite"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        accepted,
        [
            "TLS_RSA_WITH_AES_128_CBC_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        ]
    );
    let psk = suites
        .iter()
        .find(|s| s["cipher_suite"] == "TLS_PSK_WITH_AES_128_GCM_SHA256")
        .expect("a PSK suite");
    assert_eq!(psk["result"], "not_offerable");
    assert_eq!(psk["fips_approved"], false);
}

#[test]
fn a_server_certificate_near_expiry_is_a_warning_not_a_failure() {
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let soon = pki.ca.server_expiring_in("kmip-server", &["127.0.0.1"], 10);
    let server = start(&soon, &pki.ca);
    let (code, report) = check_json(&files, &server.address(), &[]);
    assert_eq!(code, Some(0), "{report:#}");
    let days = report["server_certificate"]["days_to_expiry"]
        .as_i64()
        .expect("days");
    assert!((9..=10).contains(&days), "{days}");
    let warnings = report["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap_or("").starts_with(&format!(
                "the server certificate expires in {days} days, on 20"
            ))),
        "{warnings:?}"
    );
}

#[test]
fn an_offer_the_server_does_not_share_names_what_it_accepts() {
    // PyKMIP speaks TLS 1.2 only.
    let pki = TestPki::new();
    let files = Files::new(&pki);
    let server = start(&pki.server, &pki.ca);
    let (code, report) = check_json(&files, &server.address(), &["--tls-versions", "TLSv1.3"]);
    assert_eq!(code, Some(5), "{report:#}");
    assert_eq!(
        report["offer"]["tls_versions"],
        serde_json::json!(["TLSv1.3"])
    );
    let message = report["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("it shares no TLS version or cipher suite"),
        "{message}"
    );
    assert!(
        message.contains("We offer TLS 1.3 with 3 cipher suites"),
        "{message}"
    );
    assert!(
        message.contains("the server accepts TLS 1.2 with TLS_"),
        "{message}"
    );
    // And with TLS 1.2 and one of PyKMIP's suites only, it is reached.
    let (code, report) = check_json(
        &files,
        &server.address(),
        &[
            "--tls-versions",
            "TLSv1.2",
            "--cipher-suites",
            "TLS_RSA_WITH_AES_256_CBC_SHA256",
        ],
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(
        report["connection"]["cipher_suite"],
        "TLS_RSA_WITH_AES_256_CBC_SHA256"
    );
}
