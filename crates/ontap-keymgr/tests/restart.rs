//! What survives a restart, a graceful shutdown that lets in-flight requests finish, and the
//! seed errors that only a changed configuration or a damaged database can raise: 65536822 and
//! 65536824 (the cluster's version and MetroCluster setting come from the configuration),
//! 65536821 (a certificate gone) and 65536834 (key servers unreadable).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{
    Keymgr, create_key_manager, create_svm, edit_database, encoded, good_kmip, key_servers_path,
};
use test_support::fake::SilentListener;
use test_support::pki::TestPki;

#[test]
fn everything_survives_a_graceful_restart() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let mut keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let km = create_key_manager(&keymgr, &pki, Some("svm1"), &[kmip.address()]);
    let cluster = keymgr.get("/api/cluster").body;
    let cert = std::fs::read(keymgr.data_dir.join("tls/cert.pem")).expect("cert");
    assert!(
        keymgr.stop(),
        "SIGTERM ends the service cleanly:\n{}",
        keymgr.log()
    );

    let data_dir = keymgr.data_dir.clone();
    let restarted = Keymgr::start_in(&data_dir, &[("KEYMGR_ADMIN_PASSWORD", "ignored-now")]);
    assert_eq!(restarted.get("/api/cluster").body["uuid"], cluster["uuid"]);
    assert_eq!(
        std::fs::read(data_dir.join("tls/cert.pem")).expect("cert"),
        cert
    );
    let servers = restarted.get(&format!("{}?fields=*", key_servers_path(&km)));
    assert_eq!(
        servers.body["records"][0]["server"],
        kmip.address(),
        "{servers:?}"
    );
    assert_eq!(
        restarted.get("/api/svm/svms?name=svm1").body["num_records"],
        1
    );
    // The stored client key still decrypts: the server is still reachable with it.
    let connectivity = restarted.get(&format!(
        "{}/{}?fields=connectivity",
        key_servers_path(&km),
        encoded(&kmip.address())
    ));
    assert_eq!(
        connectivity.body["connectivity"]["cluster_availability"], true,
        "{connectivity:?}"
    );
    drop(keymgr);
}

#[test]
fn shutdown_lets_an_in_flight_request_finish() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let silent = runtime.block_on(SilentListener::start());
    let mut keymgr = Keymgr::start();
    let km = create_key_manager(&keymgr, &pki, None, &[kmip.address()]);
    let path = key_servers_path(&km);

    // A POST whose KMIP check waits out its 3-second timeout on a peer that never answers;
    // SIGINT arrives while it waits.
    let started = Instant::now();
    let in_flight = std::thread::scope(|scope| {
        let request = scope.spawn(|| {
            keymgr.post(
                &path,
                &json!({ "server": silent.address.to_string(), "timeout": 3 }),
            )
        });
        std::thread::sleep(Duration::from_millis(800));
        assert!(!request.is_finished(), "the check is still waiting");
        keymgr.signal("INT");
        request.join().expect("request thread")
    });
    in_flight.assert_error(400, "65536852");
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "answered after its timeout"
    );
    assert!(
        keymgr.wait_for_exit(),
        "SIGINT ends the service cleanly:\n{}",
        keymgr.log()
    );
    assert!(keymgr.log().contains("shutting down"), "{}", keymgr.log());
}

#[test]
fn the_data_dir_and_every_secret_in_it_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let keymgr = Keymgr::start();
    let mode = |relative: &str| {
        let metadata = std::fs::metadata(keymgr.data_dir.join(relative)).expect(relative);
        metadata.permissions().mode() & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data dir");
    // On PostgreSQL the data dir holds no database.
    let database = (!support::on_postgres()).then_some("keymgr.db");
    for private in ["secret.key", "tls/key.pem"].into_iter().chain(database) {
        assert_eq!(mode(private), 0o600, "{private}");
    }
}

#[test]
fn a_generated_admin_password_is_printed_once() {
    let dir = tempfile::tempdir().expect("dir");
    let data_dir = dir.path().join("data");
    let mut keymgr = Keymgr::start_in(&data_dir, &[("KEYMGR_ADMIN_PASSWORD", "")]);
    let output = keymgr.output();
    let password = output
        .lines()
        .find_map(|line| line.strip_prefix("Created user \"admin\" with password: "))
        .expect("the password is printed")
        .to_string();
    assert!(password.len() >= 20);
    assert!(
        !keymgr.log().contains(&password),
        "the password is not logged"
    );
    assert_eq!(
        keymgr
            .request_as("admin", &password, "GET", "/api/cluster", None)
            .status,
        200
    );
    assert!(keymgr.stop());
    let again = Keymgr::start_in(&data_dir, &[("KEYMGR_ADMIN_PASSWORD", "")]);
    assert_eq!(
        again.output().matches("Created user").count(),
        1,
        "printed only once"
    );
    assert_eq!(
        again
            .request_as("admin", &password, "GET", "/api/cluster", None)
            .status,
        200
    );
}

#[test]
fn cluster_version_and_metrocluster_rules() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let [first, second] = [kmip.address(), format!("localhost:{}", kmip.port)];
    let mut keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let km = create_key_manager(&keymgr, &pki, Some("svm1"), std::slice::from_ref(&first));
    let data_dir = keymgr.data_dir.clone();
    assert!(keymgr.stop());

    let mut old = Keymgr::start_in(&data_dir, &[("KEYMGR_CLUSTER_VERSION", "9.5.0")]);
    let path = key_servers_path(&km);
    old.post(&path, &json!({ "server": second }))
        .assert_error(400, "65536822");
    old.patch(
        &format!("{path}/{}", encoded(&first)),
        &json!({ "timeout": 10 }),
    )
    .assert_error(400, "65536822");
    create_svm(&old, "svm2");
    let svm_scoped =
        json!({ "svm": { "name": "svm2" }, "onboard": { "passphrase": "x".repeat(32) } });
    old.post("/api/security/key-managers", &svm_scoped)
        .assert_error(400, "65536822");
    assert!(old.stop());

    let metrocluster = Keymgr::start_in(&data_dir, &[("KEYMGR_CLUSTER_METROCLUSTER", "true")]);
    metrocluster
        .post(&path, &json!({ "server": second }))
        .assert_error(400, "65536824");
    metrocluster
        .patch(
            &format!("{path}/{}", encoded(&first)),
            &json!({ "timeout": 10 }),
        )
        .assert_error(400, "65536824");
    drop(keymgr);
}

#[test]
fn a_missing_certificate_and_unreadable_key_servers_have_their_codes() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let second = format!("localhost:{}", kmip.port);
    let mut keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let km = create_key_manager(&keymgr, &pki, Some("svm1"), &[kmip.address()]);
    let path = key_servers_path(&km);
    assert!(keymgr.stop());
    let data_dir = keymgr.data_dir.clone();

    // The server CA certificate removed behind the service's back (foreign keys are off in
    // Python's sqlite3 by default, as in any hand edit).
    edit_database(
        &keymgr,
        "DELETE FROM certificates WHERE type = 'server_ca'",
        "SET session_replication_role = replica; \
         DELETE FROM certificates WHERE type = 'server_ca'",
    );
    let mut damaged = Keymgr::start_in(&data_dir, &[]);
    let missing = damaged.post(&path, &json!({ "server": second }));
    missing.assert_error(400, "65536821");
    assert_eq!(missing.target(), "external.server_ca_certificates");
    assert!(damaged.stop());

    // A key server whose stored password no longer decrypts.
    edit_database(
        &keymgr,
        "UPDATE key_servers SET username = 'u', password = x'00'",
        "UPDATE key_servers SET username = 'u', password = '\\x00'",
    );
    let unreadable = Keymgr::start_in(&data_dir, &[]);
    unreadable
        .post(&path, &json!({ "server": second }))
        .assert_error(500, "65536834");
    unreadable.get(&path).assert_error(500, "65536834");
    // The key manager holds its key servers: reading it fails the same way, not as a bare 500.
    unreadable
        .get(&format!("/api/security/key-managers/{km}"))
        .assert_error(500, "65536834");
    unreadable
        .get("/api/security/key-managers")
        .assert_error(500, "65536834");
    drop(keymgr);
}

/// A migration killed half way (SIGKILL while the destination server is slow) loses no key:
/// every volume's key is on the servers of the key manager that claims it; the job ends as
/// failed once its heartbeat is stale; running the migration again finishes it without a second
/// copy of any key.
#[test]
fn a_migration_killed_half_way_loses_no_key_and_a_rerun_finishes_it() {
    use test_support::kmip_server::{Faults, KmipObjectServer};
    let pki = TestPki::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let start = || runtime.block_on(KmipObjectServer::start_for(&pki, Faults::default()));
    let (svm_kmip, cluster_kmip) = (start(), start());
    let mut keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let svm_km = create_key_manager(&keymgr, &pki, Some("svm1"), &[svm_kmip.address.to_string()]);
    let cluster_km = create_key_manager(&keymgr, &pki, None, &[cluster_kmip.address.to_string()]);
    const VOLUMES: usize = 6;
    for i in 0..VOLUMES {
        let body = json!({ "name": format!("vol_{i}"), "svm": { "name": "svm1" }, "encryption": { "enabled": true } });
        let made = keymgr.post("/api/storage/volumes?return_timeout=30", &body);
        assert_eq!(made.status, 201, "{made:?}");
    }
    let key_ids = |server: &KmipObjectServer| -> Vec<String> {
        let mut ids: Vec<String> = server
            .attributes()
            .into_values()
            .filter_map(|a| {
                a.into_iter()
                    .find(|(n, _)| n == "x-NETAPP-KeyId")
                    .map(|(_, v)| v)
            })
            .collect();
        ids.sort();
        ids
    };
    let all_keys = key_ids(&svm_kmip);
    assert_eq!(all_keys.len(), VOLUMES);

    // Slow the destination, start the migration, and kill the service once two keys are copied.
    cluster_kmip.set_delay(Duration::from_millis(300));
    let accepted = keymgr.post(
        &format!("/api/security/key-managers/{svm_km}/migrate"),
        &json!({ "uuid": cluster_km }),
    );
    assert_eq!(accepted.status, 202, "{accepted:?}");
    let job = accepted.body["job"]["_links"]["self"]["href"]
        .as_str()
        .expect("job")
        .to_string();
    support::wait_until("two keys copied", Duration::from_secs(60), || {
        cluster_kmip.len() >= 2
    });
    keymgr.signal("KILL");
    keymgr.wait_for_exit();
    cluster_kmip.set_delay(Duration::ZERO);
    let restarted = Keymgr::start_in(&keymgr.data_dir, &[]);

    // Nothing lost: each key is claimed by one key manager, whose server holds it.
    let node = restarted.get("/api/cluster/nodes").body["records"][0]["uuid"]
        .as_str()
        .expect("node")
        .to_string();
    let claimed = |km: &str| -> Vec<String> {
        let held = restarted.get(&format!(
            "/api/security/key-managers/{km}/keys/{node}/key-ids?fields=key_id"
        ));
        held.body["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter_map(|r| r["key_id"].as_str().map(str::to_string))
            .collect()
    };
    let (on_svm, on_cluster) = (claimed(&svm_km), claimed(&cluster_km));
    assert!(
        !on_cluster.is_empty() && on_cluster.len() < VOLUMES,
        "{on_cluster:?}"
    );
    let mut every: Vec<String> = on_svm.iter().chain(&on_cluster).cloned().collect();
    every.sort();
    assert_eq!(every, all_keys, "each key claimed once");
    for key in &on_svm {
        assert!(
            key_ids(&svm_kmip).contains(key),
            "{key} is on the SVM's server"
        );
    }
    for key in &on_cluster {
        assert!(
            key_ids(&cluster_kmip).contains(key),
            "{key} is on the cluster's server"
        );
    }

    // The killed job ends as failed, once its heartbeat is stale.
    let mut state = String::new();
    support::wait_until("the killed job fails", Duration::from_secs(40), || {
        let found = restarted.get(&job);
        state = found.body["state"].as_str().unwrap_or("").to_string();
        state == "failure"
    });
    assert_eq!(restarted.get(&job).body["code"], 262145);

    // Running it again finishes it: every key on the cluster's server, once.
    let rerun = restarted.post(
        &format!("/api/security/key-managers/{svm_km}/migrate?return_timeout=60"),
        &json!({ "uuid": cluster_km }),
    );
    assert_eq!(rerun.status, 200, "{rerun:?}");
    assert!(key_ids(&svm_kmip).is_empty());
    assert_eq!(key_ids(&cluster_kmip), all_keys, "no key twice");
    drop(keymgr);
}
