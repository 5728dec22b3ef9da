//! NetApp's own Python client (`netapp_ontap`, unmodified, from the test virtualenv) against the
//! real binary and real PyKMIP servers: `tests/python/netapp_ontap_client.py` creates an SVM,
//! certificates, an external key manager and key servers through the library's resources, and
//! meets every seed error as a `NetAppRestError`. This file sets up the world and runs it.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::Keymgr;
use test_support::pki::TestPki;
use test_support::pykmip::{PyKmip, PyKmipConfig, python};

const KMIP_USERNAME: &str = "kmip-user";
const KMIP_PASSWORD: &str = "kmip-secret-1";

/// The client may take this long (it runs in a few seconds).
const CLIENT_LIMIT: Duration = Duration::from_secs(45);

struct Servers {
    good_a: PyKmip,
    good_b: PyKmip,
    untrusted: PyKmip,
    rejecting: PyKmip,
    credentialed: PyKmip,
}

/// Starts the PyKMIP servers in parallel (each needs about a second).
fn start_servers(pki: &TestPki) -> Servers {
    let good = || PyKmipConfig {
        server: &pki.server,
        trusted_ca: &pki.ca,
        credential: None,
    };
    std::thread::scope(|scope| {
        let good_a = scope.spawn(|| PyKmip::start(good()));
        let good_b = scope.spawn(|| PyKmip::start(good()));
        let untrusted = scope.spawn(|| {
            PyKmip::start(PyKmipConfig {
                server: &pki.rogue_server,
                ..good()
            })
        });
        let rejecting = scope.spawn(|| {
            PyKmip::start(PyKmipConfig {
                trusted_ca: &pki.rogue_ca,
                ..good()
            })
        });
        let credentialed = scope.spawn(|| {
            PyKmip::start(PyKmipConfig {
                credential: Some((KMIP_USERNAME, KMIP_PASSWORD)),
                ..good()
            })
        });
        let join = |handle: std::thread::ScopedJoinHandle<'_, PyKmip>| {
            handle.join().expect("PyKMIP start")
        };
        Servers {
            good_a: join(good_a),
            good_b: join(good_b),
            untrusted: join(untrusted),
            rejecting: join(rejecting),
            credentialed: join(credentialed),
        }
    })
}

/// An address nothing listens on.
fn refused_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!(
        "127.0.0.1:{}",
        listener.local_addr().expect("address").port()
    )
}

#[test]
fn netapp_ontap_python_client_drives_key_servers() {
    let started = Instant::now();
    let pki = TestPki::new();
    let servers = start_servers(&pki);
    let keymgr = Keymgr::start();
    eprintln!("set-up took {:?}", started.elapsed());

    let pems = tempfile::tempdir().expect("temp dir");
    let (client_cert, client_key) = pki.client.write(pems.path(), "client");
    let server_ca = pki.ca.write(pems.path(), "server-ca");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/netapp_ontap_client.py");
    let python = python();
    assert!(
        python.exists(),
        "{} does not exist: run scripts/test.sh (or scripts/setup-test-env.sh) first",
        python.display()
    );
    let stdout_path = pems.path().join("client.out");
    let stderr_path = pems.path().join("client.err");
    let mut child = Command::new(&python)
        .arg(&script)
        // `requests` lets these override `verify=False`.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NETAPP_TEST_HOST", "127.0.0.1")
        .env("NETAPP_TEST_PORT", keymgr.port.to_string())
        .env("NETAPP_TEST_USER", &keymgr.user)
        .env("NETAPP_TEST_PASSWORD", &keymgr.password)
        .env("NETAPP_TEST_CLIENT_CERT", &client_cert)
        .env("NETAPP_TEST_CLIENT_KEY", &client_key)
        .env("NETAPP_TEST_SERVER_CA", &server_ca)
        .env("NETAPP_TEST_GOOD_A_PORT", servers.good_a.port.to_string())
        .env("NETAPP_TEST_GOOD_B_PORT", servers.good_b.port.to_string())
        .env("NETAPP_TEST_UNTRUSTED", servers.untrusted.address())
        .env("NETAPP_TEST_REJECTING", servers.rejecting.address())
        .env("NETAPP_TEST_CREDENTIALED", servers.credentialed.address())
        .env("NETAPP_TEST_KMIP_USERNAME", KMIP_USERNAME)
        .env("NETAPP_TEST_KMIP_PASSWORD", KMIP_PASSWORD)
        .env("NETAPP_TEST_REFUSED", refused_address())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", python.display()));

    let deadline = Instant::now() + CLIENT_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let report = format!(
        "--- client stdout\n{stdout}\n--- client stderr\n{stderr}\n--- service log\n{}",
        keymgr.log()
    );
    match status {
        Some(status) => assert!(status.success(), "client exited with {status}\n{report}"),
        None => panic!("client still running after {CLIENT_LIMIT:?}\n{report}"),
    }
    assert!(stdout.contains("ALL STEPS PASSED"), "{report}");
    println!("{stdout}");
    eprintln!("whole test took {:?}", started.elapsed());
}
