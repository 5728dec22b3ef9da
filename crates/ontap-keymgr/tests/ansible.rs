//! NetApp's Ansible collection (`netapp.ontap` as shipped in the `ansible` package, unmodified,
//! from the test virtualenv) against the real binary and real PyKMIP servers:
//! `tests/ansible/key_manager.yml` installs certificates with `na_ontap_security_certificates`
//! and drives an external key manager and its key servers, then an onboard key manager and its
//! passphrase, with `na_ontap_security_key_manager`, running every step twice to check that the
//! second run changes nothing. This file sets up the
//! world, runs `ansible-playbook` and checks what the service holds afterwards.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{Keymgr, create_svm, wait_bounded};
use test_support::pki::TestPki;
use test_support::pykmip::{PyKmip, PyKmipConfig, python};

/// The playbook takes about ten seconds.
const PLAYBOOK_LIMIT: Duration = Duration::from_secs(120);

#[test]
fn ansible_netapp_ontap_manages_a_key_manager_idempotently() {
    let pki = TestPki::new();
    let servers = PyKmip::start_all(vec![
        PyKmipConfig::good(&pki),
        PyKmipConfig::good(&pki),
        PyKmipConfig::untrusted(&pki),
    ]);
    let [a, b, untrusted] = [&servers[0], &servers[1], &servers[2]];
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");

    let dir = tempfile::tempdir().expect("temp dir");
    let (client_cert, client_key) = pki.client.write(dir.path(), "client");
    let server_ca = pki.ca.write(dir.path(), "server-ca");
    let variables = json!({
        "keymgr_port": keymgr.port,
        "admin_password": keymgr.password,
        "client_cert": client_cert,
        "client_key": client_key,
        "server_ca": server_ca,
        "server_a": a.address(),
        "server_b": b.address(),
        "server_b_alias": format!("localhost:{}", b.port),
        "untrusted": untrusted.address(),
    });
    let output = run_playbook(dir.path(), "key_manager.yml", &variables.to_string());
    let report = format!("{output}\n--- service log\n{}", keymgr.log());
    assert!(output.contains("failed=0"), "{report}");
    assert!(
        output.contains("ignored=2"),
        "two refusals were expected\n{report}"
    );

    // What the playbook left: nothing.
    let certificates = keymgr.get("/api/security/certificates");
    assert_eq!(certificates.body["num_records"], 0, "{certificates:?}");
    let key_managers = keymgr.get("/api/security/key-managers");
    assert_eq!(key_managers.body["num_records"], 0, "{key_managers:?}");
    // The audit trail shows the key servers the collection added and removed, one by one.
    let audit = keymgr.get("/api/security/audit/messages?fields=*&max_records=1000");
    let writes: Vec<String> = audit.body["records"]
        .as_array()
        .expect("audit records")
        .iter()
        .map(|record| format!("{} {}", record["method"], record["path"]))
        .collect();
    let key_server_writes = writes.iter().filter(|w| w.contains("/key-servers")).count();
    assert!(key_server_writes >= 4, "{writes:#?}");

    // The passphrases and the private key the collection sent are nowhere to be read back.
    let key_body = private_key_body(&pki.client.key_pem);
    let everything = [audit.body.to_string(), keymgr.log()];
    for text in &everything {
        assert!(!text.contains("passphrase, long enough"), "{text}");
        assert!(!text.contains(&key_body), "{text}");
    }
}

#[test]
fn ansible_netapp_ontap_changes_the_security_configuration_idempotently() {
    let keymgr = Keymgr::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let variables = json!({ "keymgr_port": keymgr.port, "admin_password": keymgr.password });
    let output = run_playbook(dir.path(), "security_config.yml", &variables.to_string());
    let report = format!("{output}\n--- service log\n{}", keymgr.log());
    assert!(output.contains("failed=0"), "{report}");
    // Switching FIPS off keeps the versions and suites FIPS mode left.
    let security = keymgr.get("/api/security");
    assert_eq!(security.body["fips"]["enabled"], false, "{security:?}");
    assert_eq!(
        security.body["tls"]["protocol_versions"],
        json!(["TLSv1.3", "TLSv1.2"])
    );
    assert_eq!(
        security.body["tls"]["cipher_suites"],
        json!(["TLS_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_128_CBC_SHA256"])
    );
}

/// A distinctive run of a PEM private key's base64 body (JSON escapes its line breaks).
fn private_key_body(pem: &str) -> String {
    let line = pem
        .lines()
        .find(|line| !line.starts_with("-----") && line.len() >= 40)
        .expect("a base64 line");
    line[..40].to_string()
}

/// Runs the playbook with `variables` (JSON) and returns its output; fails the test when
/// `ansible-playbook` cannot run or does not end in time.
fn run_playbook(dir: &Path, playbook: &str, variables: &str) -> String {
    let python = python();
    let playbook_command = python.with_file_name("ansible-playbook");
    assert!(
        playbook_command.exists(),
        "{} does not exist: run scripts/test.sh (or scripts/setup-test-env.sh) first",
        playbook_command.display()
    );
    let playbook = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/ansible")
        .join(playbook);
    let log = dir.join("ansible.log");
    let mut child = Command::new(&playbook_command)
        .args(["-i", "localhost,", "-c", "local", "-e"])
        .arg(format!("ansible_python_interpreter={}", python.display()))
        .arg("-e")
        .arg(variables)
        .arg(&playbook)
        // `requests` lets these override `validate_certs: false`.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        // Ansible refuses to run without a UTF-8 locale, and keeps its files in its home.
        .env("LC_ALL", "C.UTF-8")
        .env("ANSIBLE_HOME", dir.join("ansible-home"))
        .env("ANSIBLE_LOCAL_TEMP", dir.join("ansible-tmp"))
        .env("ANSIBLE_COLLECTIONS_PATH", dir.join("no-user-collections"))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(Stdio::from(
            std::fs::File::options()
                .append(true)
                .open(&log)
                .expect("log file"),
        ))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", playbook_command.display()));
    let status = wait_bounded(&mut child, PLAYBOOK_LIMIT);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(status) => assert!(status.success(), "ansible-playbook: {status}\n{output}"),
        None => panic!("ansible-playbook still running after {PLAYBOOK_LIMIT:?}\n{output}"),
    }
    output
}
