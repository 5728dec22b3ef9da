//! The audit trail keeps no secret, however a client sends it, and refuses secrets in URLs.

use crate::support::{
    Keymgr, create_key_manager, edit_database, encoded, good_kmip, key_servers_path,
};
use serde_json::json;
use test_support::pki::TestPki;

/// Everything the trail shows, read as a readonly user may read it.
fn trail_as_readonly(keymgr: &Keymgr) -> String {
    let created = keymgr.post(
        "/api/security/accounts",
        &json!({ "name": "reader", "password": "reader-password", "role": { "name": "readonly" } }),
    );
    assert!(matches!(created.status, 201 | 409), "{created:?}");
    let trail = keymgr.request_as(
        "reader",
        "reader-password",
        "GET",
        "/api/security/audit/messages?fields=*&max_records=10000",
        None,
    );
    assert_eq!(trail.status, 200, "{trail:?}");
    trail.body.to_string()
}

#[test]
fn secrets_never_reach_the_trail_whatever_their_shape() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let keymgr = Keymgr::spawn_app();
    let key_manager = create_key_manager(&keymgr, &pki, None, &[kmip.address()]);
    let server_path = format!(
        "{}/{}",
        key_servers_path(&key_manager),
        encoded(&kmip.address())
    );
    let key_body = pki
        .client
        .key_pem
        .lines()
        .nth(1)
        .expect("a key line")
        .to_string();

    // 1. A password in the query string: refused, and redacted in the trail.
    keymgr
        .patch(
            &format!("{server_path}?password=S3cret-in-url"),
            &json!({ "timeout": 30 }),
        )
        .assert_error(400, "262179");
    // 2. A secret under a name in another case.
    keymgr
        .patch(&server_path, &json!({ "Password": "S3cret-capital" }))
        .assert_error(400, "262179");
    // 3. A private key under another field name.
    keymgr
        .post(
            "/api/security/certificates",
            &json!({ "type": "client", "public_certificate": pki.client.cert_pem, "key": pki.client.key_pem }),
        )
        .assert_error(400, "262179");
    // 4. A certificate and its key in one PEM, in `public_certificate`.
    let both = format!("{}{}", pki.client.cert_pem, pki.client.key_pem);
    let response = keymgr.post(
        "/api/security/certificates",
        &json!({ "type": "server_ca", "public_certificate": both }),
    );
    assert!(response.status >= 400, "{response:?}");

    let trail = trail_as_readonly(&keymgr);
    for secret in ["S3cret-in-url", "S3cret-capital", key_body.as_str()] {
        assert!(!trail.contains(secret), "{secret} is in the trail: {trail}");
    }
    assert!(trail.contains("password=<redacted>"), "{trail}");
    assert!(
        trail.contains("BEGIN CERTIFICATE"),
        "certificates stay: {trail}"
    );
}

#[test]
fn every_write_refuses_unknown_query_parameters() {
    let keymgr = Keymgr::spawn_app();
    let svm = keymgr
        .post("/api/svm/svms", &json!({ "name": "svm1" }))
        .created_uuid();
    keymgr
        .request("DELETE", &format!("/api/svm/svms/{svm}?bogus=1"), None)
        .assert_error(400, "262179");
    keymgr
        .patch(
            "/api/security?bogus=1",
            &json!({ "fips": { "enabled": false } }),
        )
        .assert_error(400, "262179");
    // Known ones are accepted, and nothing was changed by the refusals.
    let deleted = keymgr.request(
        "DELETE",
        &format!("/api/svm/svms/{svm}?return_timeout=5"),
        None,
    );
    assert_eq!(deleted.status, 200, "{deleted:?}");
}

#[test]
fn long_inputs_are_kept_in_part() {
    let keymgr = Keymgr::spawn_app();
    let long_name = "n".repeat(100_000);
    let response = keymgr.post("/api/svm/svms", &json!({ "name": long_name }));
    assert_eq!(response.status, 400, "{response:?}");
    let trail = keymgr.get("/api/security/audit/messages?fields=input&max_records=100");
    let input = trail.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["input"].as_str())
        .find(|i| i.contains("nnnn"))
        .expect("the refused POST")
        .to_string();
    assert!(input.len() < 5_000, "{} bytes kept", input.len());
    assert!(input.ends_with("...(truncated)"), "{input}");
}

#[test]
fn a_long_trail_is_read_a_page_at_a_time_and_kept_bounded() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let mut keymgr = Keymgr::start_in(&data, &[("KEYMGR_AUDIT_MAX_RECORDS", "20000")]);
    // 10,000 records of 2 KiB each, then one write of the admin's.
    edit_database(
        &keymgr,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) \
         INSERT INTO audit (time, user, method, path, input, status) \
         SELECT '2026-01-01T00:00:00Z', 'bulk', 'POST', '/api/svm/svms', \
         printf('%.2048c', 'x'), 201 FROM n",
        "INSERT INTO audit (time, \"user\", method, path, input, status) \
         SELECT '2026-01-01T00:00:00Z', 'bulk', 'POST', '/api/svm/svms', repeat('x', 2048), 201 \
         FROM generate_series(1, 10000)",
    );
    keymgr.post("/api/svm/svms", &json!({ "name": "needle" }));

    let first = keymgr.get("/api/security/audit/messages?max_records=1&fields=user");
    assert_eq!(first.body["num_records"], 1, "{first:?}");
    assert_eq!(first.body["records"][0]["user"], "bulk");
    assert!(
        first.body["_links"]["next"]["href"].is_string(),
        "{first:?}"
    );
    // A filter that only the last record passes reads on until it finds it.
    let found = keymgr.get("/api/security/audit/messages?user=admin&max_records=1&fields=path");
    assert_eq!(found.body["num_records"], 1, "{found:?}");
    assert_eq!(found.body["records"][0]["path"], "/api/svm/svms");
    let all = keymgr.get("/api/security/audit/messages?return_records=false");
    assert_eq!(all.body["num_records"], 10_001, "{all:?}");
    // No answer holds more than 1,000 records (each of these holds 2 KiB of input): the rest
    // is behind `_links.next`, as ONTAP answers a collection it could not gather at once.
    let unbounded = keymgr.get("/api/security/audit/messages?fields=input&max_records=5000");
    assert_eq!(unbounded.body["num_records"], 1_000, "{}", unbounded.status);
    let next = unbounded.body["_links"]["next"]["href"]
        .as_str()
        .expect("a next link");
    assert!(next.contains("start.offset=1000"), "{next}");
    // Sorted by the client: the newest first, read through the whole trail.
    let newest =
        keymgr.get("/api/security/audit/messages?order_by=index%20desc&max_records=2&fields=user");
    assert_eq!(newest.body["records"][0]["user"], "admin", "{newest:?}");
    assert_eq!(newest.body["records"][1]["user"], "bulk", "{newest:?}");
    // A sorted page deep in the trail would hold it all in memory: refused, with the way out.
    let deep = keymgr
        .get("/api/security/audit/messages?order_by=index%20desc&start.offset=4999&max_records=5");
    deep.assert_error(400, "262197");
    assert_eq!(deep.target(), "start.offset", "{deep:?}");

    // With a retention of 100, the next write leaves the newest 100.
    assert!(keymgr.stop());
    let keymgr = Keymgr::start_in(&data, &[("KEYMGR_AUDIT_MAX_RECORDS", "100")]);
    keymgr.post("/api/svm/svms", &json!({ "name": "another" }));
    let kept = keymgr.get("/api/security/audit/messages?return_records=false");
    assert_eq!(kept.body["num_records"], 100, "{kept:?}");
}

#[test]
fn the_trail_returns_whole_records_by_default_as_ontap_does() {
    let keymgr = Keymgr::spawn_app();
    keymgr.post("/api/svm/svms", &json!({ "name": "svm1" }));
    let trail = keymgr.get("/api/security/audit/messages");
    let record = &trail.body["records"][0];
    for field in [
        "index",
        "timestamp",
        "node",
        "application",
        "location",
        "user",
        "input",
        "state",
        "scope",
    ] {
        assert!(!record[field].is_null(), "{field} missing: {record}");
    }
    assert_eq!(record["node"]["name"], "node-01");
    // With `fields`, only what was asked (and the key).
    let narrow = keymgr.get("/api/security/audit/messages?fields=user");
    let keys: Vec<&String> = narrow.body["records"][0]
        .as_object()
        .expect("record")
        .keys()
        .collect();
    assert_eq!(keys, ["index", "user"], "{narrow:?}");
}
