//! ONTAP's conventions end to end, on every resource besides the key-server seeds: Basic auth,
//! envelopes, `fields`, filters, `order_by`, `max_records` with `_links.next`, the error
//! envelope, SVMs, certificates, key managers, the audit trail — and that no secret ever leaves.

use crate::support::{
    Keymgr, create_key_manager, create_svm, database_contents, encoded, good_kmip,
    install_certificates, key_servers_path,
};
use serde_json::{Value, json};
use test_support::pki::TestPki;
use test_support::pykmip::{PyKmip, PyKmipConfig};

#[test]
fn every_request_needs_basic_credentials() {
    let keymgr = Keymgr::spawn_app();
    let anonymous = keymgr.request_as("", "", "GET", "/api/cluster", None);
    anonymous.assert_error(401, "6");
    let wrong = keymgr.request_as("admin", "wrong", "GET", "/api/svm/svms", None);
    wrong.assert_error(401, "6");
    let unknown = keymgr.request_as(
        "nobody",
        "x",
        "POST",
        "/api/svm/svms",
        Some(r#"{"name":"a"}"#),
    );
    unknown.assert_error(401, "6");
    assert_eq!(
        keymgr.get("/api/svm/svms").body["num_records"],
        0,
        "nothing was created"
    );
}

#[test]
fn cluster_answers_with_its_configured_identity() {
    let keymgr = Keymgr::spawn_app();
    let cluster = keymgr.get("/api/cluster");
    assert_eq!(cluster.status, 200, "{cluster:?}");
    assert_eq!(cluster.body["version"]["generation"], 9);
    assert_eq!(cluster.body["version"]["major"], 14);
    assert_eq!(cluster.body["version"]["minor"], 1);
    assert!(cluster.body["uuid"].is_string());
    assert_eq!(cluster.body["_links"]["self"]["href"], "/api/cluster");
    let version_only = keymgr.get("/api/cluster?fields=version");
    assert!(version_only.body.get("name").is_none(), "{version_only:?}");
    let nodes = keymgr.get("/api/cluster/nodes");
    assert_eq!(nodes.body["num_records"], 2, "{nodes:?}");
}

#[test]
fn collections_filter_sort_and_page_like_ontap() {
    let keymgr = Keymgr::spawn_app();
    for name in ["vs_b", "vs_a", "vs_c", "other"] {
        create_svm(&keymgr, name);
    }
    let all = keymgr.get("/api/svm/svms");
    assert_eq!(all.body["num_records"], 4);
    let first = &all.body["records"][0];
    assert!(first["uuid"].is_string() && first["name"].is_string() && first["_links"].is_object());
    assert!(
        first.get("state").is_none(),
        "collections show keys only by default: {first}"
    );

    let filtered = keymgr.get("/api/svm/svms?name=vs_*&order_by=name%20desc&fields=name,state");
    let names: Vec<&str> = filtered.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["vs_c", "vs_b", "vs_a"], "{filtered:?}");
    assert_eq!(filtered.body["records"][0]["state"], "running");
    let or_not = keymgr.get("/api/svm/svms?name=other|vs_a&order_by=name");
    assert_eq!(or_not.body["num_records"], 2, "{or_not:?}");
    let not = keymgr.get("/api/svm/svms?name=!vs_*");
    assert_eq!(not.body["num_records"], 1, "{not:?}");

    // max_records cuts, and _links.next carries the original parameters.
    let page = keymgr.get("/api/svm/svms?order_by=name&max_records=3&fields=name");
    assert_eq!(page.body["num_records"], 3, "{page:?}");
    let next = page.body["_links"]["next"]["href"]
        .as_str()
        .expect("next link")
        .to_string();
    assert!(
        next.starts_with("/api/svm/svms?") && next.contains("max_records=3"),
        "{next}"
    );
    let rest = keymgr.get(&next);
    assert_eq!(rest.body["num_records"], 1, "{rest:?}");
    assert_eq!(rest.body["records"][0]["name"], "vs_c");
    assert!(rest.body["_links"].get("next").is_none());

    let count_only = keymgr.get("/api/svm/svms?return_records=false");
    assert_eq!(count_only.body["num_records"], 4);
    assert!(count_only.body.get("records").is_none(), "{count_only:?}");
}

#[test]
fn bad_requests_get_ontap_error_envelopes_and_change_nothing() {
    let keymgr = Keymgr::spawn_app();
    keymgr
        .get("/api/svm/svms?colour=blue")
        .assert_error(400, "262179");
    let fields = keymgr.get("/api/svm/svms?fields=colour");
    fields.assert_error(400, "262197");
    assert_eq!(fields.target(), "fields");
    keymgr
        .get("/api/svm/svms?max_records=lots")
        .assert_error(400, "262197");
    keymgr
        .request_as(
            "admin",
            crate::support::ADMIN_PASSWORD,
            "POST",
            "/api/svm/svms",
            Some("{not json"),
        )
        .assert_error(400, "262199");
    keymgr
        .post("/api/svm/svms", &json!({ "name": "ok", "colour": "blue" }))
        .assert_error(400, "262179");
    keymgr
        .post("/api/svm/svms", &json!({ "name": 7 }))
        .assert_error(400, "262197");
    keymgr
        .post("/api/svm/svms", &json!({}))
        .assert_error(400, "262212");
    keymgr
        .post("/api/svm/svms", &json!({ "name": "bad name!" }))
        .assert_error(400, "262197");
    keymgr
        .request("PUT", "/api/svm/svms", Some(&json!({})))
        .assert_error(405, "3");
    let missing = keymgr.get("/api/svm/svms/00000000-0000-0000-0000-000000000000");
    missing.assert_error(404, "4");
    assert_eq!(missing.target(), "uuid");
    assert_eq!(missing.message(), "entry doesn't exist");
    assert_eq!(
        keymgr.get("/api/svm/svms").body["num_records"],
        0,
        "nothing was created"
    );

    let uuid = create_svm(&keymgr, "svm1");
    keymgr
        .post("/api/svm/svms", &json!({ "name": "svm1" }))
        .assert_error(409, "1");

    // A path names an object by its uuid, in either case; anything else names nothing.
    let upper = keymgr.get(&format!("/api/svm/svms/{}", uuid.to_uppercase()));
    assert_eq!(upper.status, 200);
    assert_eq!(upper.body["uuid"], uuid.as_str(), "answered in lower case");
    for not_a_uuid in ["svm1", &uuid.replace('-', ""), &format!("{{{uuid}}}")] {
        let missing = keymgr.get(&format!("/api/svm/svms/{not_a_uuid}"));
        missing.assert_error(404, "4");
        assert_eq!(missing.target(), "uuid");
    }
}

#[test]
fn certificates_are_parsed_checked_and_never_show_their_key() {
    let pki = TestPki::new();
    let keymgr = Keymgr::spawn_app();
    create_svm(&keymgr, "svm1");
    let post = |body: Value| keymgr.post("/api/security/certificates", &body);
    let client = |extra: Value| {
        let mut body = json!({ "type": "client", "public_certificate": pki.client.cert_pem, "private_key": pki.client.key_pem });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        body
    };
    post(json!({ "type": "client", "public_certificate": "garbage", "private_key": pki.client.key_pem })).assert_error(400, "52559975");
    post(client(json!({ "private_key": pki.rogue_client.key_pem }))).assert_error(400, "52559976");
    post(client(
        json!({ "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n" }),
    ))
    .assert_error(400, "52560123");
    post(json!({ "type": "client", "public_certificate": pki.client.cert_pem }))
        .assert_error(400, "3735693");
    post(json!({ "type": "server_ca", "public_certificate": pki.ca.cert_pem, "private_key": pki.client.key_pem })).assert_error(400, "3735618");
    post(json!({ "type": "nonsense", "public_certificate": pki.ca.cert_pem }))
        .assert_error(400, "3735622");
    let mistyped = post(json!({ "type": "server-ca", "public_certificate": pki.ca.cert_pem }));
    mistyped.assert_error(400, "3735622");
    assert!(
        mistyped.message().contains("Did you mean \"server_ca\"?"),
        "{mistyped:?}"
    );
    post(client(json!({ "svm": { "name": "nope" } }))).assert_error(400, "2621462");

    let installed = post(client(
        json!({ "name": "kmip-client", "svm": { "name": "svm1" } }),
    ));
    let uuid = installed.created_uuid();
    post(client(
        json!({ "name": "kmip-client", "svm": { "name": "svm1" } }),
    ))
    .assert_error(409, "1");
    let shown = keymgr.get(&format!("/api/security/certificates/{uuid}"));
    assert_eq!(shown.body["common_name"], "key-manager", "{shown:?}");
    assert_eq!(shown.body["ca"], "test-ca");
    assert_eq!(shown.body["type"], "client");
    assert_eq!(shown.body["scope"], "svm");
    assert_eq!(shown.body["svm"]["name"], "svm1");
    assert!(shown.body["serial_number"].is_string() && shown.body["expiry_time"].is_string());
    keymgr
        .get("/api/security/certificates?fields=private_key")
        .assert_error(400, "262197");

    let found = keymgr.get("/api/security/certificates?name=kmip-client&scope=svm&svm.name=svm1");
    assert_eq!(found.body["num_records"], 1, "{found:?}");
    let key_text = pki.client.key_pem.lines().nth(1).expect("key line");
    for path in [
        "/api/security/certificates?fields=**",
        &format!("/api/security/certificates/{uuid}?fields=**"),
    ] {
        let response = keymgr.get(path);
        assert!(
            !response.body.to_string().contains(key_text),
            "{path} leaks the key"
        );
        assert!(!response.body.to_string().contains("private_key"), "{path}");
    }
    assert_eq!(
        keymgr
            .delete(&format!("/api/security/certificates/{uuid}"))
            .status,
        200
    );
    keymgr
        .get(&format!("/api/security/certificates/{uuid}"))
        .assert_error(404, "4");
}

#[test]
fn key_managers_have_ontaps_shape_rules_and_status() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let keymgr = Keymgr::spawn_app();
    create_svm(&keymgr, "svm1");
    create_svm(&keymgr, "svm2");
    let km = create_key_manager(&keymgr, &pki, Some("svm1"), &[kmip.address()]);

    let shown = keymgr.get(&format!(
        "/api/security/key-managers/{km}?fields=status,external,uuid,onboard,svm,scope"
    ));
    assert_eq!(shown.status, 200, "{shown:?}");
    assert_eq!(shown.body["scope"], "svm");
    assert_eq!(shown.body["svm"]["name"], "svm1");
    assert_eq!(shown.body["status"]["code"], 65537200, "{shown:?}");
    assert_eq!(
        shown.body["status"]["message"],
        "No action needed at this time."
    );
    assert_eq!(
        shown.body["external"]["client_certificate"]["name"],
        "svm1-client"
    );
    let cas = shown.body["external"]["server_ca_certificates"]
        .as_array()
        .expect("cas");
    let mut keys: Vec<&String> = cas[0].as_object().expect("ca").keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        ["_links", "uuid"],
        "Ansible compares {{uuid}} exactly"
    );
    assert_eq!(
        shown.body["external"]["servers"][0]["server"],
        kmip.address()
    );
    assert_eq!(shown.body["external"]["servers"][0]["timeout"], 25);
    let star = keymgr.get(&format!("/api/security/key-managers/{km}?fields=*"));
    assert!(
        star.body.get("status").is_none(),
        "status is expensive: {star:?}"
    );

    let filtered = keymgr.get(&format!(
        "/api/security/key-managers?external.servers.server={}",
        kmip.address()
    ));
    assert_eq!(filtered.body["num_records"], 1, "{filtered:?}");
    let svm_filter = keymgr.get("/api/security/key-managers?svm.name=svm2");
    assert_eq!(svm_filter.body["num_records"], 0, "{svm_filter:?}");

    // One key manager per SVM; certificates must exist; servers are checked.
    let again = json!({ "svm": { "name": "svm1" }, "external": {
        "client_certificate": { "name": "svm1-client" }, "server_ca_certificates": [{ "name": "svm1-server-ca" }],
        "servers": [{ "server": kmip.address() }] } });
    keymgr
        .post("/api/security/key-managers", &again)
        .assert_error(400, "65536823");
    let no_cert = json!({ "svm": { "name": "svm2" }, "external": {
        "client_certificate": { "name": "missing" }, "server_ca_certificates": [{ "name": "missing-ca" }],
        "servers": [{ "server": kmip.address() }] } });
    keymgr
        .post("/api/security/key-managers", &no_cert)
        .assert_error(400, "65536821");
    // A refusal about an embedded server names the field's whole path, as ONTAP does.
    for (server, target) in [
        (
            json!({ "server": kmip.address(), "timeout": 99 }),
            "external.servers.timeout",
        ),
        (json!({ "server": "ks1:99999" }), "external.servers.server"),
        (
            json!({ "server": kmip.address(), "username": "u" }),
            "external.servers.password",
        ),
    ] {
        let bad = json!({ "svm": { "name": "svm2" }, "external": {
            "client_certificate": { "name": "svm1-client" }, "server_ca_certificates": [{ "name": "svm1-server-ca" }],
            "servers": [server] } });
        let refused = keymgr.post("/api/security/key-managers", &bad);
        assert_eq!(refused.status, 400, "{refused:?}");
        assert_eq!(refused.target(), target, "{refused:?}");
    }
    let no_servers = json!({ "svm": { "name": "svm2" }, "external": {
        "client_certificate": { "name": "missing" }, "server_ca_certificates": [{ "name": "missing-ca" }] } });
    keymgr
        .post("/api/security/key-managers", &no_servers)
        .assert_error(400, "65536876");
    keymgr
        .post(
            "/api/security/key-managers",
            &json!({ "svm": { "name": "svm2" }, "onboard": { "passphrase": "x".repeat(40) } }),
        )
        .assert_error(400, "65536916");
    keymgr
        .post(
            "/api/security/key-managers",
            &json!({ "onboard": { "passphrase": "too short" } }),
        )
        .assert_error(400, "65536920");

    // A certificate in use cannot be removed.
    let client_uuid = shown.body["external"]["client_certificate"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    keymgr
        .delete(&format!("/api/security/certificates/{client_uuid}"))
        .assert_error(400, "3735683");

    // Onboard passphrase rules.
    let onboard = keymgr.post(
        "/api/security/key-managers",
        &json!({ "onboard": { "passphrase": "a".repeat(32) } }),
    );
    assert_eq!(onboard.status, 201, "{onboard:?}");
    let onboard_path = onboard.location.expect("Location");
    keymgr
        .post(
            "/api/security/key-managers",
            &json!({ "onboard": { "passphrase": "b".repeat(32) } }),
        )
        .assert_error(400, "65539216");
    let change = |new: &str, existing: Option<&str>| {
        let mut onboard = json!({ "passphrase": new });
        if let Some(existing) = existing {
            onboard["existing_passphrase"] = existing.into();
        }
        keymgr.patch(&onboard_path, &json!({ "onboard": onboard }))
    };
    change(&"c".repeat(32), None).assert_error(400, "65536917");
    change(&"c".repeat(32), Some("wrong")).assert_error(400, "65536139");
    change("short", Some(&"a".repeat(32))).assert_error(400, "65536404");
    let synchronize = |existing: Option<&str>| {
        let mut onboard = json!({ "synchronize": true });
        if let Some(existing) = existing {
            onboard["existing_passphrase"] = existing.into();
        }
        keymgr.patch(&onboard_path, &json!({ "onboard": onboard }))
    };
    synchronize(None).assert_error(400, "262212");
    let wrong = synchronize(Some("wrong"));
    wrong.assert_error(400, "65536139");
    assert!(
        wrong
            .message()
            .starts_with("Cluster-wide passphrase is incorrect."),
        "ONTAP's text, which Ansible matches: {wrong:?}"
    );
    assert_eq!(synchronize(Some(&"a".repeat(32))).status, 200);
    assert_eq!(change(&"c".repeat(32), Some(&"a".repeat(32))).status, 200);
    let onboard_shown = keymgr.get(&format!("{onboard_path}?fields=**"));
    assert_eq!(
        onboard_shown.body["onboard"]["enabled"], true,
        "{onboard_shown:?}"
    );
    assert!(
        !onboard_shown.body.to_string().contains("cccccccc"),
        "{onboard_shown:?}"
    );

    // Deleting a key manager removes its key servers with it.
    assert_eq!(
        keymgr
            .delete(&format!("/api/security/key-managers/{km}"))
            .status,
        200
    );
    keymgr.get(&key_servers_path(&km)).assert_error(404, "4");
}

#[test]
fn no_password_or_private_key_is_ever_returned_logged_or_audited() {
    let pki = TestPki::new();
    let secured = PyKmip::start(PyKmipConfig {
        server: &pki.server,
        trusted_ca: &pki.ca,
        credential: Some(("kmip-user", "Sup3r-Secret-KMIP-pw")),
    });
    // The binary, whose log this test reads.
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    install_certificates(&keymgr, &pki, Some("svm1"), "svm1");
    let created = keymgr.post(
        "/api/security/key-managers",
        &json!({ "svm": { "name": "svm1" }, "external": {
            "client_certificate": { "name": "svm1-client" }, "server_ca_certificates": [{ "name": "svm1-server-ca" }],
            "servers": [{ "server": secured.address(), "username": "kmip-user", "password": "Sup3r-Secret-KMIP-pw" }] } }),
    );
    let km = created.created_uuid();
    let path = key_servers_path(&km);
    let instance = format!("{path}/{}", encoded(&secured.address()));
    // A failed attempt with a wrong password, and a successful change.
    keymgr
        .patch(
            &instance,
            &json!({ "username": "kmip-user", "password": "Wr0ng-Secret-attempt" }),
        )
        .assert_error(400, "65536921");
    assert_eq!(
        keymgr
            .patch(
                &instance,
                &json!({ "username": "kmip-user", "password": "Sup3r-Secret-KMIP-pw" })
            )
            .status,
        200
    );
    let onboard = keymgr.post(
        "/api/security/key-managers",
        &json!({ "onboard": { "passphrase": "Onboard-Passphrase-0123456789-abcdef" } }),
    );
    assert_eq!(onboard.status, 201, "{onboard:?}");

    let audit = keymgr.get("/api/security/audit/messages?fields=*");
    assert!(
        audit.body["num_records"].as_u64().unwrap_or(0) >= 6,
        "{audit:?}"
    );
    let audit_text = audit.body.to_string();
    assert!(
        audit_text.contains("<redacted>") && audit_text.contains("kmip-user"),
        "{audit_text}"
    );

    let mut everything = String::new();
    for path in [
        "/api/security/key-managers?fields=**".to_string(),
        format!("{path}?fields=**"),
        format!("{instance}?fields=**"),
        "/api/security/certificates?fields=**".to_string(),
        "/api/security/audit/messages?fields=**".to_string(),
    ] {
        let response = keymgr.get(&path);
        assert_eq!(response.status, 200, "{path}: {response:?}");
        everything.push_str(&response.body.to_string());
    }
    everything.push_str(&keymgr.log());
    let database = database_contents(&keymgr);
    // What is not secret is there to be found: the search below looks where the data is.
    let address = secured.address();
    assert!(
        database
            .windows(address.len())
            .any(|w| w == address.as_bytes()),
        "the key server is not in the database's contents"
    );
    let key_line = pki
        .client
        .key_pem
        .lines()
        .nth(1)
        .expect("key line")
        .to_string();
    for secret in [
        "Sup3r-Secret-KMIP-pw",
        "Wr0ng-Secret-attempt",
        "Onboard-Passphrase-0123456789",
        &key_line,
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked in a response or the log"
        );
        let in_bytes = |bytes: &[u8]| bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!in_bytes(&database), "{secret} is stored in clear");
    }
}

#[test]
fn readonly_users_may_read_but_not_write() {
    let keymgr = Keymgr::spawn_app();
    let cluster_uuid = keymgr.get("/api/cluster").body["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    let created = keymgr.post(
        "/api/security/accounts",
        &json!({ "name": "auditor", "password": "auditor-pass-1", "role": { "name": "readonly" },
                 "applications": [{ "application": "http", "authentication_methods": ["password"] }] }),
    );
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(
        created.location.as_deref(),
        Some(format!("/api/security/accounts/{cluster_uuid}/auditor").as_str())
    );
    let read = keymgr.request_as("auditor", "auditor-pass-1", "GET", "/api/svm/svms", None);
    assert_eq!(read.status, 200, "{read:?}");
    let write = keymgr.request_as(
        "auditor",
        "auditor-pass-1",
        "POST",
        "/api/svm/svms",
        Some(r#"{"name":"x1"}"#),
    );
    write.assert_error(403, "6");
    assert_eq!(keymgr.get("/api/svm/svms").body["num_records"], 0);

    let accounts = keymgr.get("/api/security/accounts?fields=*");
    assert!(
        !accounts.body.to_string().contains("auditor-pass-1"),
        "{accounts:?}"
    );
    assert_eq!(accounts.body["num_records"], 2, "{accounts:?}");
    keymgr
        .post(
            "/api/security/accounts",
            &json!({ "name": "auditor", "password": "another-pass" }),
        )
        .assert_error(409, "1");
    keymgr
        .post(
            "/api/security/accounts",
            &json!({ "name": "x", "password": "short" }),
        )
        .assert_error(400, "262197");
    keymgr
        .post(
            "/api/security/accounts",
            &json!({ "name": "boss", "password": "boss-pass-1", "role": { "name": "god" } }),
        )
        .assert_error(400, "262197");
    keymgr
        .delete(&format!("/api/security/accounts/{cluster_uuid}/admin"))
        .assert_error(409, "8");
    assert_eq!(
        keymgr
            .delete(&format!("/api/security/accounts/{cluster_uuid}/auditor"))
            .status,
        200
    );
    keymgr
        .request_as("auditor", "auditor-pass-1", "GET", "/api/svm/svms", None)
        .assert_error(401, "6");
}

#[test]
fn the_catalogue_is_bounded() {
    let keymgr = Keymgr::spawn_app();
    let limit = ontap_keymgr::domain::limits::MAX_SVMS;
    for n in 0..limit {
        let created = keymgr.post("/api/svm/svms", &json!({ "name": format!("svm{n}") }));
        assert_eq!(created.status, 201, "{n}: {created:?}");
    }
    let refused = keymgr.post("/api/svm/svms", &json!({ "name": "one-too-many" }));
    refused.assert_error(409, "262145");
    assert!(refused.message().contains("1024 SVMs"), "{refused:?}");
    let listed = keymgr.get("/api/svm/svms?return_records=false");
    assert_eq!(listed.body["num_records"], limit, "{listed:?}");
}
