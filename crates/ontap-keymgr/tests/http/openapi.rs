//! The OpenAPI document: served without credentials at /docs/api/openapi.json, equal to the
//! committed docs/openapi.json (regenerate with `ontap-keymgr openapi > docs/openapi.json`), and
//! every path and method it names is one the service routes.

use crate::support::Keymgr;
use serde_json::Value;

fn committed() -> Value {
    let path = test_support::workspace_root().join("docs/openapi.json");
    serde_json::from_str(&crate::support::read(&path)).expect("docs/openapi.json is JSON")
}

#[test]
fn the_served_document_is_the_committed_one() {
    let keymgr = Keymgr::spawn_app();
    let served = keymgr.request_as("", "", "GET", "/docs/api/openapi.json", None);
    assert_eq!(served.status, 200, "{served:?}");
    assert_eq!(
        served.body,
        committed(),
        "docs/openapi.json is stale: run `cargo run -- openapi > docs/openapi.json`"
    );
}

#[test]
fn the_openapi_command_prints_the_committed_document() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ontap-keymgr"))
        .arg("openapi")
        .output()
        .expect("run ontap-keymgr openapi");
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("openapi prints JSON");
    assert_eq!(printed, committed());
}

#[test]
fn every_documented_operation_is_routed() {
    let keymgr = Keymgr::spawn_app();
    let document = committed();
    let paths = document["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        let concrete = path
            .replace("{uuid}", "00000000-0000-0000-0000-000000000000")
            .replace("{server}", "ks1%3A5696");
        for method in operations.as_object().expect("operations").keys() {
            let body = (method == "post" || method == "patch").then_some("{}");
            let response = keymgr.request_as(
                "admin",
                crate::support::ADMIN_PASSWORD,
                &method.to_uppercase(),
                &concrete,
                body,
            );
            assert_ne!(response.status, 405, "{method} {path}: {response:?}");
            assert_ne!(
                response.code(),
                "262179",
                "{method} {path} is not routed: {response:?}"
            );
            assert!(
                response.status != 0 && response.status < 500,
                "{method} {path}: {response:?}"
            );
        }
    }
}
