//! `/api/security`: the cluster's security configuration, and that the TLS offer it describes is
//! what the service offers key servers.

use crate::support::{Keymgr, create_key_manager, good_kmip, key_servers_path};
use serde_json::json;
use test_support::openssl::OpenSslServer;
use test_support::pki::TestPki;

#[test]
fn ontaps_defaults_are_shown_and_bad_changes_are_refused_without_effect() {
    let keymgr = Keymgr::spawn_app();
    let defaults = keymgr.get("/api/security");
    assert_eq!(defaults.status, 200, "{defaults:?}");
    assert_eq!(defaults.body["fips"]["enabled"], false);
    assert_eq!(
        defaults.body["tls"]["protocol_versions"],
        json!(["TLSv1.3", "TLSv1.2"])
    );
    let suites = defaults.body["tls"]["cipher_suites"]
        .as_array()
        .expect("suites");
    assert_eq!(suites.len(), 128);
    assert!(suites.contains(&json!("TLS_RSA_WITH_AES_128_CBC_SHA256")));

    let refusals = [
        (
            json!({ "tls": { "protocol_versions": ["TLSv9"] } }),
            "262197",
            "tls.protocol_versions",
        ),
        (
            json!({ "fips": { "enabled": true }, "tls": { "protocol_versions": ["TLSv1"] } }),
            "52428824",
            "tls.protocol_versions",
        ),
        (
            json!({ "fips.enabled": true, "tls.protocol_versions": ["SSLv3"] }),
            "52428817",
            "tls.protocol_versions",
        ),
        (
            json!({ "tls": { "cipher_suites": ["TLS_NOT_A_SUITE"] } }),
            "262197",
            "tls.cipher_suites",
        ),
        (
            json!({ "fips": { "enabled": true }, "tls": { "cipher_suites": ["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"] } }),
            "262197",
            "tls.cipher_suites",
        ),
        (
            json!({ "tls": { "protocol_versions": [] } }),
            "262197",
            "tls.protocol_versions",
        ),
        (
            json!({ "management_protocols": { "telnet_enabled": true } }),
            "262179",
            "management_protocols",
        ),
    ];
    for (body, code, target) in refusals {
        let response = keymgr.patch("/api/security", &body);
        response.assert_error(400, code);
        assert_eq!(response.target(), target, "{body}: {response:?}");
    }
    assert_eq!(keymgr.get("/api/security").body, defaults.body);

    // Dotted names, as Ansible sends them; FIPS on drops what FIPS does not allow.
    let response = keymgr.patch(
        "/api/security",
        &json!({ "fips.enabled": true, "tls.protocol_versions": ["TLSv1.2"] }),
    );
    assert_eq!(response.status, 200, "{response:?}");
    let fips = keymgr.get("/api/security?fields=fips,tls");
    assert_eq!(fips.body["fips"]["enabled"], true);
    assert_eq!(fips.body["tls"]["protocol_versions"], json!(["TLSv1.2"]));
    let kept = fips.body["tls"]["cipher_suites"]
        .as_array()
        .expect("suites");
    assert!(kept.len() < 128 && !kept.is_empty());
    assert!(
        !kept
            .iter()
            .any(|s| s.as_str().unwrap_or("").contains("CHACHA20"))
    );
}

#[test]
fn the_configured_offer_is_what_key_servers_are_offered() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let keymgr = Keymgr::spawn_app();
    let key_manager = create_key_manager(&keymgr, &pki, None, &[kmip.address()]);
    // A TLS server that accepts ChaCha20 only, and answers no KMIP.
    let chacha = OpenSslServer::start(
        &pki.server,
        &pki.ca,
        &["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"],
    );
    let add = || {
        keymgr.post(
            &key_servers_path(&key_manager),
            &json!({ "server": chacha.address(), "timeout": 2 }),
        )
    };
    // ONTAP's default offer includes ChaCha20: the handshake succeeds, KMIP does not.
    add().assert_error(400, "65536852");

    let response = keymgr.patch("/api/security", &json!({ "fips": { "enabled": true } }));
    assert_eq!(response.status, 200, "{response:?}");
    let refused = add();
    refused.assert_error(400, "66060340");
    assert!(
        refused.message().contains("FIPS mode on") && refused.message().contains("CHACHA20"),
        "{refused:?}"
    );
    // The PyKMIP server still passes: its CBC suites are FIPS-approved.
    let listed = keymgr.get(&format!(
        "{}?fields=connectivity",
        key_servers_path(&key_manager)
    ));
    assert_eq!(
        listed.body["records"][0]["connectivity"]["cluster_availability"], true,
        "{listed:?}"
    );
}
