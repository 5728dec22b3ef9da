//! NetApp's own Python client (`netapp_ontap`, unmodified, from the test virtualenv) against the
//! real binary and real PyKMIP servers: `tests/python/netapp_ontap_client.py` creates an SVM,
//! certificates, an external key manager and key servers through the library's resources, and
//! meets every seed error as a `NetAppRestError`. This file sets up the world and runs the client
//! once per phase: the main flow, then after restarts with an old cluster version, with
//! MetroCluster, with the server CA certificate removed, and with unreadable stored passwords.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Keymgr, edit_database, wait_bounded};
use test_support::fake::HandshakeFailureServer;
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

/// Starts the PyKMIP servers in parallel.
fn start_servers(pki: &TestPki) -> Servers {
    let credentialed = PyKmipConfig {
        credential: Some((KMIP_USERNAME, KMIP_PASSWORD)),
        ..PyKmipConfig::good(pki)
    };
    let mut started = PyKmip::start_all(vec![
        PyKmipConfig::good(pki),
        PyKmipConfig::good(pki),
        PyKmipConfig::untrusted(pki),
        PyKmipConfig::rejecting(pki),
        credentialed,
    ])
    .into_iter();
    let mut next = || started.next().expect("five servers");
    Servers {
        good_a: next(),
        good_b: next(),
        untrusted: next(),
        rejecting: next(),
        credentialed: next(),
    }
}

/// An address nothing listens on.
fn refused_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    format!(
        "127.0.0.1:{}",
        listener.local_addr().expect("address").port()
    )
}

/// What every run of the client is told: where the service and the KMIP servers are.
struct World<'a> {
    /// Holds the PEM files and the client's output.
    dir: &'a Path,
    client_cert: PathBuf,
    client_key: PathBuf,
    server_ca: PathBuf,
    servers: &'a Servers,
    no_common_cipher: SocketAddr,
    refused: String,
    /// The key manager the main phase created, for the phases after it.
    key_manager: String,
}

impl World<'_> {
    fn environment(&self, keymgr: &Keymgr) -> Vec<(&'static str, String)> {
        let servers = self.servers;
        vec![
            ("HOST", "127.0.0.1".into()),
            ("PORT", keymgr.port.to_string()),
            ("USER", keymgr.user.clone()),
            ("PASSWORD", keymgr.password.clone()),
            ("CLIENT_CERT", path_text(&self.client_cert)),
            ("CLIENT_KEY", path_text(&self.client_key)),
            ("SERVER_CA", path_text(&self.server_ca)),
            ("GOOD_A_PORT", servers.good_a.port.to_string()),
            ("GOOD_B_PORT", servers.good_b.port.to_string()),
            ("UNTRUSTED", servers.untrusted.address()),
            ("REJECTING", servers.rejecting.address()),
            ("CREDENTIALED", servers.credentialed.address()),
            ("NO_COMMON_CIPHER", self.no_common_cipher.to_string()),
            ("KMIP_USERNAME", KMIP_USERNAME.into()),
            ("KMIP_PASSWORD", KMIP_PASSWORD.into()),
            ("REFUSED", self.refused.clone()),
            ("KEY_MANAGER", self.key_manager.clone()),
        ]
    }

    /// Runs one phase of the client script against `keymgr`; fails the test with the client's
    /// and the service's output unless the phase passed.
    fn run_client(&self, keymgr: &Keymgr, phase: &str) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/netapp_ontap_client.py");
        let python = python();
        assert!(
            python.exists(),
            "{} does not exist: run scripts/test.sh (or scripts/setup-test-env.sh) first",
            python.display()
        );
        let stdout_path = self.dir.join(format!("{phase}.out"));
        let stderr_path = self.dir.join(format!("{phase}.err"));
        let mut command = Command::new(&python);
        command
            .arg(&script)
            .arg(phase)
            // `requests` lets these override `verify=False`.
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr_path).expect("stderr file"));
        for (name, value) in self.environment(keymgr) {
            command.env(format!("NETAPP_TEST_{name}"), value);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", python.display()));
        let status = wait_bounded(&mut child, CLIENT_LIMIT);
        let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let report = format!(
            "--- client ({phase}) stdout\n{stdout}\n--- client stderr\n{stderr}\n--- service log\n{}",
            keymgr.log()
        );
        match status {
            Some(status) => assert!(status.success(), "client exited with {status}\n{report}"),
            None => panic!("client still running after {CLIENT_LIMIT:?}\n{report}"),
        }
        assert!(stdout.contains("ALL STEPS PASSED"), "{report}");
        println!("{stdout}");
    }
}

fn path_text(path: &Path) -> String {
    path.to_str()
        .expect("temporary paths are UTF-8")
        .to_string()
}

/// Restarts the service on its data dir with `env`, as an operator changing the configuration
/// (or a damaged database) would.
fn restart(keymgr: &mut Keymgr, env: &[(&str, &str)]) -> Keymgr {
    assert!(keymgr.stop(), "clean stop:\n{}", keymgr.log());
    Keymgr::start_in(&keymgr.data_dir, env)
}

#[test]
fn netapp_ontap_python_client_drives_key_servers() {
    let started = Instant::now();
    let pki = TestPki::new();
    let servers = start_servers(&pki);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let no_common_cipher = runtime.block_on(HandshakeFailureServer::start());
    let mut keymgr = Keymgr::start();
    eprintln!("set-up took {:?}", started.elapsed());

    let pems = tempfile::tempdir().expect("temp dir");
    let (client_cert, client_key) = pki.client.write(pems.path(), "client");
    let world = World {
        dir: pems.path(),
        client_cert,
        client_key,
        server_ca: pki.ca.write(pems.path(), "server-ca"),
        servers: &servers,
        no_common_cipher: no_common_cipher.address,
        refused: refused_address(),
        key_manager: String::new(),
    };
    world.run_client(&keymgr, "main");
    let found = keymgr.get("/api/security/key-managers?svm.name=svm1");
    let key_manager = found.body["records"][0]["uuid"].as_str();
    let world = World {
        key_manager: key_manager.expect("svm1's key manager").to_string(),
        ..world
    };

    // The seed errors that only the cluster's configuration or a damaged database can raise,
    // seen through the library too.
    let mut old = restart(&mut keymgr, &[("KEYMGR_CLUSTER_VERSION", "9.5.0")]);
    world.run_client(&old, "old_version");
    let mut metrocluster = restart(&mut old, &[("KEYMGR_CLUSTER_METROCLUSTER", "true")]);
    world.run_client(&metrocluster, "metrocluster");
    assert!(metrocluster.stop());
    edit_database(
        &keymgr,
        "DELETE FROM certificates WHERE type = 'server_ca'",
        // Past the foreign keys, as a hand edit with them off in SQLite.
        "SET session_replication_role = replica; \
         DELETE FROM certificates WHERE type = 'server_ca'",
    );
    let mut certificate_gone = Keymgr::start_in(&keymgr.data_dir, &[]);
    world.run_client(&certificate_gone, "certificate_gone");
    assert!(certificate_gone.stop());
    edit_database(
        &keymgr,
        "UPDATE key_servers SET password = x'00' WHERE password IS NOT NULL",
        "UPDATE key_servers SET password = '\\x00' WHERE password IS NOT NULL",
    );
    let unreadable = Keymgr::start_in(&keymgr.data_dir, &[]);
    world.run_client(&unreadable, "unreadable");
    eprintln!("whole test took {:?}", started.elapsed());
}
