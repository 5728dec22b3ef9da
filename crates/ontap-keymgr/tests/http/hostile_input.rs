//! Whatever a client sends, the service answers with ONTAP's error envelope — a 4xx status, a
//! numeric code and a message — and changes nothing: malformed JSON, bodies of the wrong shape,
//! wrong types, out-of-range numbers, oversized and invalid UTF-8 bodies, mangled addresses, and
//! odd paths and query strings, sent to every write endpoint. A bounded, fixed list: every case
//! runs once. A body over the size limit is refused before it is read, and its connection closed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::support::{Keymgr, Response, create_key_manager, create_svm, encoded, good_kmip};
use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode};
use serde_json::{Value, json};
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
    // Bodies over the size limit: `an_oversized_body_is_refused_unread_and_its_connection_closed`.
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

/// A TLS connection to the service that the test writes bytes on as it likes.
fn raw_connection(keymgr: &Keymgr) -> SslStream<TcpStream> {
    let mut connector = SslConnector::builder(SslMethod::tls_client()).expect("connector");
    connector.set_verify(SslVerifyMode::NONE);
    let tcp = TcpStream::connect(("127.0.0.1", keymgr.port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    tcp.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    connector
        .build()
        .connect("localhost", tcp)
        .expect("TLS handshake")
}

fn basic_authorization(keymgr: &Keymgr) -> String {
    use base64::Engine;
    let pair = format!("{}:{}", keymgr.user, keymgr.password);
    format!(
        "Authorization: Basic {}\r\n",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Everything the service sends until it closes the connection.
fn read_to_close(connection: &mut SslStream<TcpStream>) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n @ 1..) = connection.read(&mut buffer) {
        answer.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn an_oversized_body_is_refused_unread_and_its_connection_closed() {
    let keymgr = Keymgr::spawn_app();
    // A body announced at 100 MB, with and without credentials: answered before a byte of it is
    // sent, and the connection closed (the service would otherwise wait for the body).
    for (authorization, status, code) in [
        (basic_authorization(&keymgr), "400", "262199"),
        (String::new(), "401", "6"),
    ] {
        let mut connection = raw_connection(&keymgr);
        let head = format!(
            "POST /api/svm/svms HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             {authorization}Content-Length: 100000000\r\n\r\n"
        );
        connection.write_all(head.as_bytes()).expect("head");
        let answer = read_to_close(&mut connection);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
        assert!(answer.contains(&format!("\"code\":\"{code}\"")), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
    }
    // A chunked body that never ends: the service stops reading past the limit (1 MiB) and
    // closes; what the client manages to write is that plus the sockets' buffers, not more.
    let mut connection = raw_connection(&keymgr);
    let head = format!(
        "POST /api/svm/svms HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         {}Transfer-Encoding: chunked\r\n\r\n",
        basic_authorization(&keymgr)
    );
    connection.write_all(head.as_bytes()).expect("head");
    let chunk = format!("10000\r\n{}\r\n", "a".repeat(0x10000));
    let mut written = 0usize;
    while written < 100_000_000 && connection.write_all(chunk.as_bytes()).is_ok() {
        written += 0x10000;
    }
    assert!(
        written < 16 * 1024 * 1024,
        "the service read {written} bytes of a body over its 1 MiB limit"
    );
    // The service is still there for everyone else.
    assert_eq!(keymgr.get("/api/cluster").status, 200);
}
