//! Whatever a client sends, the service answers with ONTAP's error envelope — a 4xx status, a
//! numeric code and a message — and changes nothing: malformed JSON, bodies of the wrong shape,
//! wrong types, out-of-range numbers, oversized and invalid UTF-8 bodies, mangled addresses, and
//! odd paths and query strings, sent to every write endpoint. A bounded, fixed list: every case
//! runs once.

mod support;

use serde_json::{Value, json};
use support::{Keymgr, Response, create_key_manager, create_svm, encoded, good_kmip};
use test_support::pki::TestPki;

/// Bodies that are wrong for every write endpoint.
fn bad_bodies() -> Vec<(String, Vec<u8>)> {
    let mut bodies: Vec<(String, Vec<u8>)> = [
        "{not json",
        "null",
        "[]",
        "\"text\"",
        "42",
        "true",
        "{\"records\": \"x\"}",
        "{\"records\": [1, null]}",
        "{\"colour\": \"blue\"}",
        "{\"timeout\": 1e400}",
        "{\"timeout\": 99999999999999999999999}",
        "{\"timeout\": -1.5}",
        "{\"timeout\": \"ten\"}",
        "{\"username\": 5, \"password\": []}",
        "{\"secondary_key_servers\": [null]}",
        "{\"secondary_key_servers\": \"ks2\"}",
        "{\"name\": null}",
        "{\"svm\": \"svm1\"}",
        "{\"svm\": {\"name\": {\"name\": \"svm1\"}}}",
        "{\"external\": []}",
        "{\"external\": {\"servers\": [{\"server\": 1}]}}",
    ]
    .iter()
    .map(|text| (text.to_string(), text.as_bytes().to_vec()))
    .collect();
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    bodies.push(("5000 nested arrays".into(), deep.into_bytes()));
    let invalid_utf8 = b"{\"name\": \"\xff\xfe\"}".to_vec();
    bodies.push(("invalid UTF-8".into(), invalid_utf8));
    let oversized = format!("{{\"name\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    bodies.push(("a 2 MiB body".into(), oversized.into_bytes()));
    bodies
}

/// Key-server addresses that no parser may accept.
fn bad_servers() -> Vec<Value> {
    [
        "",
        " ",
        "[::1",
        "::1]:5696",
        "ks1:99999",
        "ks1:0",
        "ks1:-1",
        "ks1:5696:1",
        "a b",
        "ks1\u{0}",
        "300.1.1.1",
        "-leading-dash",
        "http://ks1",
    ]
    .iter()
    .map(|server| json!(server))
    .chain([json!("a".repeat(300)), json!(null), json!(["ks1"])])
    .collect()
}

/// Asserts ONTAP's error envelope with a 4xx status.
#[track_caller]
fn assert_refused(response: &Response, what: &str) {
    assert!(
        (400..500).contains(&response.status),
        "{what}: expected a 4xx, got {response:?}"
    );
    let code = response.code();
    assert!(
        !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()),
        "{what}: no numeric ONTAP code: {response:?}"
    );
    assert!(!response.message().is_empty(), "{what}: no message");
}

/// Everything the service holds, as the admin sees it.
fn state(keymgr: &Keymgr) -> Vec<Value> {
    [
        "/api/svm/svms?fields=*",
        "/api/security/certificates?fields=uuid,name,type",
        "/api/security/key-managers?fields=*",
        "/api/security/accounts?fields=*",
    ]
    .iter()
    .map(|path| {
        let response = keymgr.get(path);
        assert_eq!(response.status, 200, "{path}: {response:?}");
        response.body["records"].clone()
    })
    .collect()
}

#[test]
fn hostile_input_is_refused_with_an_envelope_and_changes_nothing() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let keymgr = Keymgr::start();
    create_svm(&keymgr, "svm1");
    let km = create_key_manager(&keymgr, &pki, Some("svm1"), &[kmip.address()]);
    let servers = format!("/api/security/key-managers/{km}/key-servers");
    let server = format!("{servers}/{}", encoded(&kmip.address()));
    let before = state(&keymgr);

    let writes = [
        ("POST", "/api/svm/svms".to_string()),
        ("POST", "/api/security/certificates".to_string()),
        ("POST", "/api/security/key-managers".to_string()),
        ("PATCH", format!("/api/security/key-managers/{km}")),
        ("POST", servers.clone()),
        ("PATCH", server.clone()),
        ("POST", "/api/security/accounts".to_string()),
    ];
    for (method, path) in &writes {
        for (what, body) in bad_bodies() {
            let response = keymgr.send_bytes(method, path, "application/json", body);
            assert_refused(&response, &format!("{method} {path} with {what}"));
        }
    }

    for bad in bad_servers() {
        let response = keymgr.post(&servers, &json!({ "server": bad }));
        assert_refused(&response, &format!("server {bad}"));
        let response = keymgr.post(&servers, &json!({ "records": [{ "server": bad }] }));
        assert_refused(&response, &format!("records [{bad}]"));
        let response = keymgr.patch(&server, &json!({ "secondary_key_servers": [bad] }));
        assert_refused(&response, &format!("secondary {bad}"));
    }

    let odd_paths = [
        "/api/security/key-managers/%ZZ".to_string(),
        format!("{servers}/%ZZ"),
        format!("{servers}/%5B%3A%3A1"),
        format!("{servers}/%00"),
        format!("{servers}/{}", "a".repeat(5000)),
        "/api/svm/svms?fields=%ZZ".to_string(),
        "/api/svm/svms?max_records=99999999999999999999".to_string(),
        "/api/svm/svms?max_records=-1".to_string(),
        "/api/svm/svms?order_by=name%20sideways".to_string(),
        "/api/svm/svms?return_timeout=121".to_string(),
        "/api/svm/svms?fields=name&fields=colour".to_string(),
        format!("{servers}?fields=connectivity.colour"),
    ];
    for path in &odd_paths {
        assert_refused(&keymgr.get(path), &format!("GET {path}"));
        assert_refused(&keymgr.delete(path), &format!("DELETE {path}"));
    }

    assert_eq!(
        state(&keymgr),
        before,
        "a refused request changed something"
    );
    let log = keymgr.log();
    assert!(!log.contains("panicked"), "{log}");
}
