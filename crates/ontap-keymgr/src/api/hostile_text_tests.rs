//! Every text field of every request body the document declares, sent through the whole router
//! with NUL, control characters, bidirectional overrides, oversized text and bytes that are not
//! UTF-8: each answer is a refusal or a success in ONTAP's shape, never a 5xx.

use axum::body::Body as HttpBody;
use axum::http::{Request, header};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Map, Value, json};
use tower::ServiceExt;

use super::openapi::{PATHS, Path};
use super::query::Type;

const PASSWORD: &str = "hostile-text-test-password";

/// Texts a client may send in a JSON string.
fn hostile_texts() -> Vec<String> {
    vec![
        "A\u{0}".into(),
        "\u{0}".into(),
        "TLS_RSA_WITH_AES_128_CBC_SHA256\u{0}".into(),
        "\u{1}\u{8}\u{1b}[31m\u{1f}\u{7f}".into(),
        "line\r\nInjected: header".into(),
        "\u{202e}evil\u{200b}".into(),
        "\u{fffd}\u{10ffff}".into(),
        " ".into(),
        "x".repeat(70_000),
    ]
}

/// `{"a": {"b": value}}` for the dotted name `a.b`.
fn nested(name: &str, value: Value) -> Value {
    name.rsplit('.')
        .fold(value, |inner, part| json!({ part: inner }))
}

/// The concrete path: parameters name objects that do not exist, so writes are refused after
/// their bodies are read.
fn concrete(path: &Path) -> String {
    path.path
        .replace("{uuid}", "00000000-0000-4000-8000-000000000001")
        .replace("{owner}", "00000000-0000-4000-8000-000000000002")
        .replace("{name}", "nobody")
        .replace("{server}", "ks.example.com:5696")
}

async fn send(app: &axum::Router, method: &str, uri: &str, body: Vec<u8>) -> (u16, Value) {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    let request = Request::builder()
        .method(method.to_ascii_uppercase().as_str())
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Basic {credentials}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(HttpBody::from(body))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("answer");
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_text_field_survives_nul_control_and_non_utf8_input() {
    let started = super::test_app::start(PASSWORD).await;
    let app = started.router;
    let mut sent = 0;
    for path in PATHS {
        let uri = concrete(path);
        for operation in path.operations {
            let Some(fields) = operation.body else {
                continue;
            };
            let texts: Vec<&str> = fields
                .iter()
                .filter(|(_, kind)| matches!(kind, Type::String | Type::StringList))
                .map(|(name, _)| *name)
                .collect();
            for name in &texts {
                let kind = fields.iter().find(|(n, _)| n == name).map(|(_, k)| *k);
                for text in hostile_texts() {
                    let value = match kind {
                        Some(Type::StringList) => json!([text]),
                        _ => json!(text),
                    };
                    let body = serde_json::to_vec(&nested(name, value)).expect("json");
                    let (status, answer) = send(&app, operation.method, &uri, body).await;
                    assert_answered(status, &answer, operation.method, &uri, name);
                    sent += 1;
                }
                // Bytes that are not UTF-8 inside the string.
                let mut body = format!("{{\"{name}\": \"").into_bytes();
                body.extend_from_slice(b"\xff\xfe\xc3");
                body.extend_from_slice(b"\"}");
                let (status, answer) = send(&app, operation.method, &uri, body).await;
                assert!(
                    (400..500).contains(&status),
                    "{} {uri} {name}: {answer}",
                    operation.method
                );
                assert_answered(status, &answer, operation.method, &uri, name);
                sent += 1;
            }
            // All of them at once, NUL everywhere.
            let mut all = Map::new();
            for name in &texts {
                if let Value::Object(one) = nested(name, json!("\u{0}")) {
                    merge(&mut all, one);
                }
            }
            let body = serde_json::to_vec(&Value::Object(all)).expect("json");
            let (status, answer) = send(&app, operation.method, &uri, body).await;
            assert_answered(status, &answer, operation.method, &uri, "all");
        }
    }
    assert!(
        sent > 300,
        "only {sent} requests: the document's tables lost their bodies?"
    );
    // The case that panicked in OpenSSL's binding: refused with its field as target.
    let body = br#"{"tls":{"cipher_suites":["A\u0000"]}}"#.to_vec();
    let (status, answer) = send(&app, "patch", "/api/security", body).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["target"], "tls.cipher_suites", "{answer}");
}

fn merge(into: &mut Map<String, Value>, more: Map<String, Value>) {
    for (name, value) in more {
        match (into.get_mut(&name), value) {
            (Some(Value::Object(existing)), Value::Object(inner)) => merge(existing, inner),
            (_, value) => {
                into.insert(name, value);
            }
        }
    }
}

#[track_caller]
fn assert_answered(status: u16, answer: &Value, method: &str, uri: &str, field: &str) {
    assert!(status < 500, "{method} {uri} {field}: {status} {answer}");
    if status >= 400 {
        let error = &answer["error"];
        assert!(
            error["code"].as_str().is_some_and(|c| !c.is_empty())
                && error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{method} {uri} {field}: not ONTAP's envelope: {answer}"
        );
    }
}
