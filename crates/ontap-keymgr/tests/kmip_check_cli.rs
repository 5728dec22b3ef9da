//! `ontap-keymgr kmip check`, the real binary against real PyKMIP servers and faulty peers: each
//! kind of failure has its own message and exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::fake::HandshakeFailureServer;
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
        .args(["kmip", "check", "--server", server, "--timeout", "10"])
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
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "2.0 1.4 1.3 1.2 1.1 1.0\n"
    );
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
        assert!(output.stdout.is_empty());
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
