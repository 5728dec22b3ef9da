//! The key server health monitor and `/api/security/key-manager-configs`, end to end: the
//! monitor re-checks key servers in the background, so `connectivity` and `status` follow a
//! server going away without any request asking for a check.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;
use test_support::pki::TestPki;
use test_support::responder::KmipResponder;

const CONFIGS: &str = "/api/security/key-manager-configs";

/// A service whose monitor polls every second.
fn fast_monitor() -> Keymgr {
    Keymgr::spawn_app_with(|config| {
        config.health_monitor.interval = Some(Duration::from_secs(1));
    })
}

/// `check_time`, `cluster_availability` and the state of the first node, for `server`.
fn connectivity(keymgr: &Keymgr, km: &str, server: &str) -> (String, bool, String) {
    let shown = keymgr.get(&format!(
        "{}/{}?fields=connectivity",
        key_servers_path(km),
        encoded(server)
    ));
    assert_eq!(shown.status, 200, "{shown:?}");
    let c = &shown.body["connectivity"];
    (
        c["check_time"].as_str().unwrap_or_default().to_string(),
        c["cluster_availability"] == true,
        c["node_states"][0]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Polls `probe` every 200 ms until it holds, for at most `limit`.
fn eventually(limit: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if probe() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    probe()
}

#[test]
fn the_monitor_follows_a_key_server_that_goes_away() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let server = format!("127.0.0.1:{}", kmip.port);
    let keymgr = fast_monitor();
    let km = create_key_manager(&keymgr, &pki, None, std::slice::from_ref(&server));

    let (first_check, available, state) = connectivity(&keymgr, &km, &server);
    assert!(available, "{state}");
    assert_eq!(state, "available");
    assert!(first_check.ends_with('Z'), "{first_check}");

    // Re-checked in the background: a later GET shows a later check, with no write between.
    assert!(
        eventually(Duration::from_secs(10), || connectivity(
            &keymgr, &km, &server
        )
        .0 > first_check),
        "the monitor did not re-check {server}"
    );

    // Polled as automation polls, the listing of statuses answers the same URL again and again.
    let statuses = "/api/security/key-managers?fields=status";
    let status_code = || keymgr.get(statuses).body["records"][0]["status"]["code"].clone();
    for _ in 0..3 {
        assert_eq!(status_code(), 65537200);
    }

    // The server goes away: the monitor notices, and the key manager's status says so.
    drop(kmip);
    assert!(
        eventually(Duration::from_secs(15), || {
            let (_, available, state) = connectivity(&keymgr, &km, &server);
            !available && state == "not_responding"
        }),
        "the monitor did not notice {server} going away"
    );
    let status = keymgr.get(&format!("/api/security/key-managers/{km}?fields=status"));
    assert_eq!(status.body["status"]["code"], 65536852, "{status:?}");
    assert_eq!(status_code(), 65536852);
}

#[test]
fn key_manager_configs_show_and_change_the_polling_interval_as_ontap() {
    let keymgr = Keymgr::spawn_app();
    let shown = keymgr.get(CONFIGS);
    assert_eq!(shown.status, 200, "{shown:?}");
    assert_eq!(shown.body["health_monitor_polling_interval"], 15);
    assert_eq!(shown.body["cloud_kms_retry_count"], 3);
    assert_eq!(shown.body["cc_mode_enabled"], false);
    assert_eq!(shown.body["_links"]["self"]["href"], CONFIGS);

    // ONTAP refuses a polling interval while no external key manager is configured.
    keymgr
        .patch(CONFIGS, &json!({ "health_monitor_polling_interval": 20 }))
        .assert_error(400, "65537304");

    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    create_key_manager(&keymgr, &pki, None, &[format!("127.0.0.1:{}", kmip.port)]);
    let changed = keymgr.patch(
        CONFIGS,
        &json!({ "health_monitor_polling_interval": 20, "cloud_kms_retry_count": 5 }),
    );
    assert_eq!(changed.status, 200, "{changed:?}");
    let refusals: [(Value, &str); 6] = [
        (json!({ "health_monitor_polling_interval": 14 }), "262197"),
        (json!({ "health_monitor_polling_interval": 31 }), "262197"),
        (json!({ "cloud_kms_retry_count": -1 }), "262197"),
        (
            json!({ "cc_mode_enabled": true, "passphrase": "x".repeat(64) }),
            "65536809",
        ),
        (json!({ "polling": 20 }), "262179"),
        (
            json!({ "health_monitor_polling_interval": "often" }),
            "262197",
        ),
    ];
    for (body, code) in refusals {
        let refused = keymgr.patch(CONFIGS, &body);
        assert_eq!(refused.status, 400, "{body}: {refused:?}");
        assert_eq!(refused.code(), code, "{body}: {refused:?}");
    }
    // Nothing refused changed anything; the passphrase is never shown.
    let shown = keymgr.get(CONFIGS);
    assert_eq!(shown.body["health_monitor_polling_interval"], 20);
    assert_eq!(shown.body["cloud_kms_retry_count"], 5);
    assert!(shown.body.get("passphrase").is_none(), "{shown:?}");
    let fields = keymgr.get(&format!("{CONFIGS}?fields=health_monitor_polling_interval"));
    assert_eq!(
        fields.body,
        json!({ "health_monitor_polling_interval": 20, "_links": { "self": { "href": CONFIGS } } })
    );
}

#[test]
fn the_polling_interval_needs_ontap_9_10() {
    let keymgr = Keymgr::spawn_app_with(|config| {
        config.cluster.version =
            ontap_keymgr::config::OntapVersion::parse("9.9.1").expect("version");
    });
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    create_key_manager(&keymgr, &pki, None, &[format!("127.0.0.1:{}", kmip.port)]);
    let refused = keymgr.patch(CONFIGS, &json!({ "health_monitor_polling_interval": 20 }));
    refused.assert_error(400, "65537303");
    assert!(refused.message().contains("9.9.1"), "{refused:?}");
    assert_eq!(
        keymgr.get(CONFIGS).body["health_monitor_polling_interval"],
        15
    );
}

/// Every key server of every key manager is re-checked each round, against the fast responder.
#[test]
fn each_round_checks_every_key_server_of_every_key_manager() {
    let pki = TestPki::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let start = || {
        runtime.block_on(KmipResponder::start(
            &pki.server.cert_pem,
            &pki.server.key_pem,
            &pki.ca.cert_pem,
        ))
    };
    let (first, second) = (start(), start());
    let servers: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|r| {
            let port = r.address.port();
            [format!("127.0.0.1:{port}"), format!("localhost:{port}")]
        })
        .collect();
    let keymgr = fast_monitor();
    let mut key_managers = vec![create_key_manager(&keymgr, &pki, None, &servers)];
    for n in 0..9 {
        let svm = format!("vs{n}");
        create_svm(&keymgr, &svm);
        key_managers.push(create_key_manager(&keymgr, &pki, Some(&svm), &servers));
    }
    let checked_at = |km: &str| -> Vec<String> {
        servers
            .iter()
            .map(|server| connectivity(&keymgr, km, server).0)
            .collect()
    };
    let before: Vec<Vec<String>> = key_managers.iter().map(|km| checked_at(km)).collect();
    assert!(
        eventually(Duration::from_secs(15), || key_managers
            .iter()
            .zip(&before)
            .all(|(km, before)| checked_at(km)
                .iter()
                .zip(before)
                .all(|(now, then)| now > then))),
        "not every key server was re-checked"
    );
    // The monitor keeps each key manager's connector: from its second round on, the servers
    // resume their TLS sessions instead of a full handshake.
    assert!(
        eventually(Duration::from_secs(10), || first.resumed() >= servers.len()),
        "{} of {} handshakes resumed",
        first.resumed(),
        first.accepted()
    );

    // One responder stops: the servers on it, in every key manager, are not responding.
    drop(second);
    let states = |km: &str| -> Vec<bool> {
        servers
            .iter()
            .map(|server| connectivity(&keymgr, km, server).1)
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(15), || key_managers
            .iter()
            .all(|km| states(km) == [true, true, false, false])),
        "{:?}",
        key_managers.iter().map(|km| states(km)).collect::<Vec<_>>()
    );
}

/// Many requests asking at once for servers not checked yet make one check of each.
#[test]
fn requests_arriving_together_share_one_check() {
    let pki = TestPki::new();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let responder = runtime.block_on(KmipResponder::start(
        &pki.server.cert_pem,
        &pki.server.key_pem,
        &pki.ca.cert_pem,
    ));
    let port = responder.address.port();
    let servers = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    let keymgr = Keymgr::spawn_app();
    let km = create_key_manager(&keymgr, &pki, None, &servers);
    // Adding the servers checked each once, and forgot what it measured.
    let before = responder.accepted();
    std::thread::scope(|scope| {
        for _ in 0..20 {
            scope.spawn(|| {
                let listed = keymgr.get(&format!("{}?fields=connectivity", key_servers_path(&km)));
                assert_eq!(listed.status, 200, "{listed:?}");
                assert_eq!(
                    listed.body["records"][0]["connectivity"]["cluster_availability"],
                    true
                );
            });
        }
    });
    assert_eq!(
        responder.accepted() - before,
        servers.len(),
        "20 requests, one check per server"
    );
}
