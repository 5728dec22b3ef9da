//! The seeds, end to end: the real binary, real PyKMIP servers on 127.0.0.1 and an HTTPS client.
//! POST, GET, PATCH and DELETE on `/api/security/key-managers/{uuid}/key-servers`, with every
//! ONTAP error code of the seed pages in the situation that raises it.

use crate::support::{
    Keymgr, create_key_manager, create_svm, encoded, good_kmip, key_servers_path, post_all_at_once,
    servers_of,
};
use serde_json::{Value, json};
use test_support::fake::HandshakeFailureServer;
use test_support::pki::TestPki;
use test_support::pykmip::{PyKmip, PyKmipConfig};

/// One PyKMIP answers on two addresses: `127.0.0.1:port` and `localhost:port` (its certificate
/// names both), which gives two distinct key servers per process.
fn aliases(kmip: &PyKmip) -> [String; 2] {
    [kmip.address(), format!("localhost:{}", kmip.port)]
}

#[test]
fn post_verifies_and_adds_servers_that_get_then_shows() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let [first, second] = aliases(&kmip);
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let km = create_key_manager(&keymgr, &pki, Some("svm1"), std::slice::from_ref(&first));
    let path = key_servers_path(&km);

    let added = keymgr.post(&path, &json!({ "server": second }));
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(
        added.location.as_deref(),
        Some(format!("{path}/{}", encoded(&second)).as_str())
    );
    assert_eq!(
        added.body,
        json!({}),
        "records only with return_records=true"
    );

    // The collection shows the key field and links by default, everything with fields=*.
    let listed = keymgr.get(&path);
    assert_eq!(listed.body["num_records"], 2, "{listed:?}");
    assert_eq!(listed.body["records"][1]["server"], second.as_str());
    assert!(
        listed.body["records"][1].get("timeout").is_none(),
        "{listed:?}"
    );
    let all = keymgr.get(&format!("{path}?fields=*"));
    assert_eq!(
        all.body["records"][1]["timeout"], 25,
        "ONTAP's default timeout"
    );
    assert!(
        all.body["records"][1].get("connectivity").is_none(),
        "expensive: not in *"
    );

    // An instance, by its encoded or raw address, or without the default port.
    for key in [encoded(&second), second.clone()] {
        let one = keymgr.get(&format!("{path}/{key}"));
        assert_eq!(one.status, 200, "{one:?}");
        assert_eq!(one.body["server"], second.as_str());
        assert_eq!(one.body["timeout"], 25);
    }

    // Connectivity: measured by a real KMIP round trip, one state per node; the key stays.
    let connectivity = keymgr.get(&format!("{path}/{}?fields=connectivity", encoded(&first)));
    assert_eq!(connectivity.status, 200, "{connectivity:?}");
    assert_eq!(connectivity.body["server"], first.as_str());
    assert_eq!(
        connectivity.body["connectivity"]["cluster_availability"],
        true
    );
    let states = connectivity.body["connectivity"]["node_states"]
        .as_array()
        .expect("states");
    assert_eq!(states.len(), 2);
    assert!(
        states
            .iter()
            .all(|s| s["state"] == "available" && s["node"]["name"].is_string())
    );

    // return_records=true returns what was added.
    drop(keymgr.delete(&format!("{path}/{}", encoded(&second))));
    let returned = keymgr.post(
        &format!("{path}?return_records=true"),
        &json!({ "server": second }),
    );
    assert_eq!(returned.status, 201, "{returned:?}");
    assert_eq!(returned.body["num_records"], 1);
    assert_eq!(returned.body["records"][0]["server"], second.as_str());
}

#[test]
fn records_are_added_all_or_nothing() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let other = good_kmip(&pki);
    let untrusted = PyKmip::start(PyKmipConfig {
        server: &pki.rogue_server,
        trusted_ca: &pki.ca,
        credential: None,
    });
    let [first, second] = aliases(&kmip);
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let km = create_key_manager(&keymgr, &pki, Some("svm1"), std::slice::from_ref(&first));
    let path = key_servers_path(&km);

    let mixed = keymgr.post(
        &path,
        &json!({ "records": [{ "server": second }, { "server": untrusted.address() }] }),
    );
    mixed.assert_error(400, "66060338");
    assert!(mixed.message().contains(&untrusted.address()), "{mixed:?}");
    assert_eq!(
        servers_of(&keymgr, &km),
        [first.as_str()],
        "nothing was added"
    );

    let both = keymgr.post(
        &format!("{path}?return_records=true"),
        &json!({ "records": [{ "server": second }, { "server": other.address(), "timeout": 30 }] }),
    );
    assert_eq!(both.status, 201, "{both:?}");
    assert_eq!(both.body["num_records"], 2);
    assert_eq!(servers_of(&keymgr, &km), [first, second, other.address()]);
    let timeout = keymgr.get(&format!(
        "{path}/{}?fields=timeout",
        encoded(&other.address())
    ));
    assert_eq!(timeout.body["timeout"], 30, "{timeout:?}");
}

#[test]
fn post_errors_carry_the_seed_codes() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let kmip2 = good_kmip(&pki);
    let untrusted = PyKmip::start(PyKmipConfig {
        server: &pki.rogue_server,
        trusted_ca: &pki.ca,
        credential: None,
    });
    let rejecting = PyKmip::start(PyKmipConfig {
        server: &pki.server,
        trusted_ca: &pki.rogue_ca,
        credential: None,
    });
    let with_credentials = PyKmip::start(PyKmipConfig {
        server: &pki.server,
        trusted_ca: &pki.ca,
        credential: Some(("kmip-user", "kmip-secret-1")),
    });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let no_common_cipher = runtime.block_on(HandshakeFailureServer::start());
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!(
            "127.0.0.1:{}",
            listener.local_addr().expect("address").port()
        )
    };
    let [first, second] = aliases(&kmip);
    let [third, fourth] = aliases(&kmip2);

    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let km = create_key_manager(&keymgr, &pki, Some("svm1"), std::slice::from_ref(&first));
    let path = key_servers_path(&km);
    let post = |body: Value| keymgr.post(&path, &body);

    // Unknown key manager, onboard key manager.
    keymgr
        .post(
            &key_servers_path("00000000-0000-0000-0000-000000000000"),
            &json!({ "server": second }),
        )
        .assert_error(404, "4");
    let onboard = keymgr.post(
        "/api/security/key-managers",
        &json!({ "onboard": { "passphrase": "p".repeat(32) } }),
    );
    let onboard_uuid = onboard.created_uuid();
    keymgr
        .post(
            &key_servers_path(&onboard_uuid),
            &json!({ "server": second }),
        )
        .assert_error(400, "65536828");

    // Body shape.
    post(json!({ "server": second, "port": 1 })).assert_error(400, "262179");
    post(json!({ "server": 5 })).assert_error(400, "262197");
    post(json!({ "server": second, "records": [{ "server": third }] })).assert_error(400, "262186");
    post(json!({ "server": "bad host name" })).assert_error(400, "262197");
    post(json!({ "server": second, "timeout": 61 })).assert_error(400, "262197");

    // Credentials come in pairs.
    let missing_password = post(json!({ "server": second, "username": "u" }));
    missing_password.assert_error(400, "65536846");
    assert_eq!(missing_password.target(), "password");
    let missing_username = post(json!({ "server": second, "password": "kmip-secret-1" }));
    missing_username.assert_error(400, "65536845");
    assert_eq!(missing_username.target(), "username");

    // Duplicates, in the request and with what is configured (after normalizing the port).
    post(json!({ "records": [{ "server": third }, { "server": third.to_uppercase() }] }))
        .assert_error(400, "65536871");
    let default_port_twin = keymgr.post(&path, &json!({ "server": first.clone() }));
    default_port_twin.assert_error(400, "65536870");

    // The KMIP check of each server, each failure with its own code and a precise message.
    let untrusted_answer = post(json!({ "server": untrusted.address() }));
    untrusted_answer.assert_error(400, "66060338");
    assert!(
        untrusted_answer.message().contains("issuer: CN=rogue-ca"),
        "{untrusted_answer:?}"
    );
    let rejected = post(json!({ "server": rejecting.address() }));
    rejected.assert_error(400, "66060339");
    assert!(
        rejected.message().contains("client certificate"),
        "{rejected:?}"
    );
    let cryptsoft = post(json!({ "server": no_common_cipher.address.to_string() }));
    cryptsoft.assert_error(400, "66060340");
    assert!(
        cryptsoft.message().contains("handshake_failure"),
        "{cryptsoft:?}"
    );
    let unreachable = post(json!({ "server": refused }));
    unreachable.assert_error(400, "65536852");
    assert!(
        unreachable.message().contains("connection refused"),
        "{unreachable:?}"
    );
    let wrong_password = post(json!({
        "server": with_credentials.address(), "username": "kmip-user", "password": "wrong-secret-9",
    }));
    wrong_password.assert_error(400, "65536921");
    assert!(
        wrong_password
            .message()
            .contains("Authentication Not Successful"),
        "{wrong_password:?}"
    );
    assert!(!wrong_password.message().contains("wrong-secret-9"));
    let right_password = post(json!({
        "server": with_credentials.address(), "username": "kmip-user", "password": "kmip-secret-1",
    }));
    assert_eq!(right_password.status, 201, "{right_password:?}");

    // At most four primaries: two configured, two more fit, a fifth does not.
    post(json!({ "records": [{ "server": second }, { "server": third }, { "server": fourth }] }))
        .assert_error(400, "65536038");
    assert_eq!(
        post(json!({ "records": [{ "server": second }, { "server": third }] })).status,
        201
    );
    let limit = post(json!({ "server": fourth }));
    limit.assert_error(400, "65536038");
    assert_eq!(servers_of(&keymgr, &km).len(), 4);

    // Cheapest check first: an unknown field wins over a duplicate, a missing key manager over all.
    post(json!({ "server": first, "bogus": true })).assert_error(400, "262179");
}

#[test]
fn patch_changes_timeout_credentials_and_secondaries() {
    let pki = TestPki::new();
    let with_credentials = PyKmip::start(PyKmipConfig {
        server: &pki.server,
        trusted_ca: &pki.ca,
        credential: Some(("kmip-user", "kmip-secret-1")),
    });
    let plain = good_kmip(&pki);
    let server = with_credentials.address();
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let km = create_key_manager(&keymgr, &pki, Some("svm1"), &[plain.address()]);
    let path = key_servers_path(&km);
    let added = keymgr.post(
        &path,
        &json!({ "server": server, "username": "kmip-user", "password": "kmip-secret-1" }),
    );
    assert_eq!(added.status, 201, "{added:?}");
    let instance = format!("{path}/{}", encoded(&server));
    let patch = |body: Value| keymgr.patch(&instance, &body);

    // Timeout.
    let changed = patch(json!({ "timeout": 40 }));
    assert_eq!(
        (changed.status, &changed.body),
        (200, &json!({})),
        "{changed:?}"
    );
    assert_eq!(
        keymgr.get(&format!("{instance}?fields=timeout")).body["timeout"],
        40
    );
    patch(json!({ "timeout": "60" })); // ONTAP's own example sends a string
    assert_eq!(
        keymgr.get(&format!("{instance}?fields=timeout")).body["timeout"],
        60
    );
    let out_of_range = patch(json!({ "timeout": 61 }));
    out_of_range.assert_error(400, "262197");
    assert_eq!(out_of_range.target(), "timeout");
    assert_eq!(patch(json!({ "timeout": -1 })).status, 200);

    // Credentials are proven against the server before they are stored.
    let wrong = patch(json!({ "username": "kmip-user", "password": "not-the-secret" }));
    wrong.assert_error(400, "65536921");
    let right = patch(json!({ "username": "kmip-user", "password": "kmip-secret-1" }));
    assert_eq!(right.status, 200, "{right:?}");
    // A password alone goes with the stored username.
    assert_eq!(patch(json!({ "password": "kmip-secret-1" })).status, 200);
    patch(json!({ "username": "someone" })).assert_error(400, "65536846");
    let shown = keymgr.get(&format!("{instance}?fields=*"));
    assert_eq!(shown.body["username"], "kmip-user");
    assert!(shown.body.get("password").is_none(), "{shown:?}");

    // A password alone, with no username stored anywhere.
    let plain_instance = format!("{path}/{}", encoded(&plain.address()));
    keymgr
        .patch(&plain_instance, &json!({ "password": "p" }))
        .assert_error(400, "65536845");

    // Secondary key servers replace the list.
    assert_eq!(
        patch(json!({ "secondary_key_servers": ["ks2.example.com", "10.0.0.2"] })).status,
        200
    );
    assert_eq!(
        keymgr
            .get(&format!("{instance}?fields=secondary_key_servers"))
            .body["secondary_key_servers"],
        json!(["ks2.example.com", "10.0.0.2"])
    );
    assert_eq!(
        patch(json!({ "secondary_key_servers": ["ks3.example.com"] })).status,
        200
    );
    assert_eq!(
        keymgr
            .get(&format!("{instance}?fields=secondary_key_servers"))
            .body["secondary_key_servers"],
        json!(["ks3.example.com"])
    );
    patch(json!({ "secondary_key_servers": ["a", "b", "c", "d"] })).assert_error(400, "65537400");
    patch(json!({ "secondary_key_servers": ["a", "a"] })).assert_error(400, "65538408");
    patch(json!({ "secondary_key_servers": "a,b" })).assert_error(400, "262254");

    // Errors of the seed page.
    patch(json!({})).assert_error(400, "65536880");
    patch(json!({ "bogus": 1 })).assert_error(400, "262179");
    keymgr
        .patch(
            &format!("{path}/{}", encoded("10.9.9.9:5696")),
            &json!({ "timeout": 10 }),
        )
        .assert_error(404, "65536843");
    keymgr
        .patch(
            &format!(
                "{}/{}",
                key_servers_path("00000000-0000-0000-0000-000000000000"),
                encoded(&server)
            ),
            &json!({ "timeout": 10 }),
        )
        .assert_error(404, "4");
}

#[test]
fn delete_removes_one_server() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let [first, second] = aliases(&kmip);
    let keymgr = Keymgr::start();
    let km = create_key_manager(&keymgr, &pki, None, &[first.clone(), second.clone()]);
    let path = key_servers_path(&km);
    let instance = format!("{path}/{}", encoded(&second));
    let deleted = keymgr.delete(&instance);
    assert_eq!(
        (deleted.status, &deleted.body),
        (200, &json!({})),
        "{deleted:?}"
    );
    keymgr.get(&instance).assert_error(404, "65536843");
    keymgr.delete(&instance).assert_error(404, "65536843");
    assert_eq!(servers_of(&keymgr, &km), [first]);
}

/// Automation polls the same URLs: answers to them may be served again (the response cache),
/// but never once a change was acknowledged.
#[test]
fn a_polled_url_shows_each_change_as_soon_as_it_is_acknowledged() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let [first, second] = aliases(&kmip);
    let keymgr = Keymgr::start();
    let km = create_key_manager(&keymgr, &pki, None, std::slice::from_ref(&first));
    let listing = format!("{}?fields=timeout", key_servers_path(&km));
    let instance = format!(
        "{}/{}?fields=timeout",
        key_servers_path(&km),
        encoded(&first)
    );
    let key_managers = "/api/security/key-managers?fields=external.servers.timeout";
    let timeouts = |keymgr: &Keymgr| {
        let listed = keymgr.get(&listing).body["records"].clone();
        let listed: Vec<(String, i64)> = listed
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["server"].as_str().unwrap_or_default().to_string(),
                    r["timeout"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        let one = keymgr.get(&instance).body["timeout"].as_i64().unwrap_or(-1);
        let embedded = keymgr.get(key_managers).body["records"][0]["external"]["servers"]
            .as_array()
            .map_or(0, Vec::len);
        (listed, one, embedded)
    };
    for _ in 0..3 {
        assert_eq!(timeouts(&keymgr), (vec![(first.clone(), 25)], 25, 1));
    }

    let patched = keymgr.patch(
        &format!("{}/{}", key_servers_path(&km), encoded(&first)),
        &json!({ "timeout": 40 }),
    );
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(timeouts(&keymgr), (vec![(first.clone(), 40)], 40, 1));

    let added = keymgr.post(&key_servers_path(&km), &json!({ "server": second }));
    assert_eq!(added.status, 201, "{added:?}");
    let expected = vec![(first.clone(), 40), (second.clone(), 25)];
    assert_eq!(timeouts(&keymgr), (expected, 40, 2));

    let deleted = keymgr.delete(&format!("{}/{}", key_servers_path(&km), encoded(&first)));
    assert_eq!(deleted.status, 200, "{deleted:?}");
    let gone = timeouts(&keymgr);
    assert_eq!((gone.0, gone.2), (vec![(second, 25)], 1));
    keymgr.get(&instance).assert_error(404, "65536843");
}

#[test]
fn concurrent_posts_never_exceed_four_servers() {
    let pki = TestPki::new();
    let a = good_kmip(&pki);
    let b = good_kmip(&pki);
    let c = good_kmip(&pki);
    let keymgr = Keymgr::start();
    let [a1, a2] = aliases(&a);
    let km = create_key_manager(&keymgr, &pki, None, &[a1, a2]);
    let path = key_servers_path(&km);
    // Two free slots, four candidates posted at once: exactly two win.
    let candidates: Vec<String> = [aliases(&b), aliases(&c)].concat();
    let statuses = post_all_at_once(&[&keymgr], &path, &candidates);
    let created = statuses.iter().filter(|(status, _)| *status == 201).count();
    assert_eq!(created, 2, "{statuses:?}");
    assert!(
        statuses
            .iter()
            .filter(|(s, _)| *s != 201)
            .all(|(s, code)| *s == 400 && code == "65536038"),
        "{statuses:?}"
    );
    let servers = servers_of(&keymgr, &km);
    assert_eq!(servers.len(), 4, "{servers:?}");
    let mut unique = servers.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{servers:?}");
}

/// The connectivity of `server` (cluster availability, and the state every node reports) and
/// the key manager's status code.
fn measured(keymgr: &Keymgr, key_manager: &str, server: &str) -> (bool, String, u64) {
    let path = format!(
        "{}/{}?fields=connectivity",
        key_servers_path(key_manager),
        encoded(server)
    );
    let shown = keymgr.get(&path);
    assert_eq!(shown.status, 200, "{shown:?}");
    let connectivity = &shown.body["connectivity"];
    let states: Vec<&str> = connectivity["node_states"]
        .as_array()
        .expect("node states")
        .iter()
        .map(|s| s["state"].as_str().expect("state"))
        .collect();
    assert!(states.windows(2).all(|w| w[0] == w[1]), "{shown:?}");
    let status = keymgr.get(&format!(
        "/api/security/key-managers/{key_manager}?fields=status"
    ));
    (
        connectivity["cluster_availability"] == true,
        states[0].to_string(),
        status.body["status"]["code"].as_u64().expect("status code"),
    )
}

#[test]
fn connectivity_falls_back_to_secondaries_and_tells_when_servers_fail() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let port = kmip.port;
    let primary = format!("localhost:{port}");
    let keymgr = Keymgr::start();
    let km = create_key_manager(&keymgr, &pki, None, std::slice::from_ref(&primary));
    let server_path = format!("{}/{}", key_servers_path(&km), encoded(&primary));
    let secondaries = |list: Value| {
        let patched = keymgr.patch(&server_path, &json!({ "secondary_key_servers": list }));
        assert_eq!(patched.status, 200, "{patched:?}");
    };
    secondaries(json!(["127.0.0.1"]));

    // The server comes back with a certificate that names 127.0.0.1 only: the primary, reached
    // as localhost, no longer verifies; its secondary, the same port on 127.0.0.1, does.
    drop(kmip);
    let ip_only = pki.ca.server("kmip-server", &["127.0.0.1"]);
    let renamed = PyKmip::start_on(
        PyKmipConfig {
            server: &ip_only,
            ..PyKmipConfig::good(&pki)
        },
        port,
    );
    assert_eq!(
        measured(&keymgr, &km, &primary),
        (true, "available".into(), 65537200)
    );

    // Without the secondary, the primary alone is not available, and the key manager's status
    // says why with the KMIP check's code.
    secondaries(json!([]));
    assert_eq!(
        measured(&keymgr, &km, &primary),
        (false, "not_responding".into(), 66060338)
    );

    // With the server gone, the secondary cannot help either.
    secondaries(json!(["127.0.0.1"]));
    drop(renamed);
    assert_eq!(
        measured(&keymgr, &km, &primary),
        (false, "not_responding".into(), 65536852)
    );
}
