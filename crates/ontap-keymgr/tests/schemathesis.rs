//! The served OpenAPI document against the service itself: schemathesis (from the test
//! virtualenv) generates requests for every operation from the document — its coverage, fuzzing
//! and stateful phases, with a fixed seed — and fails on any 5xx, network error, answer that
//! disagrees with the response schema the document declares, or request that breaks the
//! document and is accepted anyway.
//!
//! The service is seeded first (an SVM, certificates, a key manager with a PyKMIP key server), so
//! that reads return real records. Operations that take key-server addresses (creating a key
//! manager, adding or changing a key server) are left out: with a real key manager they would
//! make the service connect to whatever address the generator invents; `hostile_input.rs` covers
//! them with a fixed list. Deleting the seeded key manager and key server is left out too, so
//! that the reads keep something to read, and so is changing the admin's password, which the run
//! authenticates with.

// postgres-rerun: no (it checks the document against the behaviour, which no store changes; and it is long)
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{Keymgr, create_key_manager, good_kmip, wait_bounded};
use test_support::pki::TestPki;
use test_support::pykmip::python;

/// Examples per operation and phase: enough to find schema mismatches, bounded for CI.
const EXAMPLES: &str = "60";
/// The whole run's bound.
const RUN_LIMIT: Duration = Duration::from_secs(300);

const LEFT_OUT: [&str; 6] = [
    "post_security_key_managers",
    "post_security_key_managers_uuid_key_servers",
    "patch_security_key_managers_uuid_key_servers_server",
    "delete_security_key_managers_uuid",
    "delete_security_key_managers_uuid_key_servers_server",
    // A generated password for `admin` would lock the run out of the service it tests.
    "patch_security_accounts_owner_name",
];

#[test]
fn generated_requests_get_no_5xx_and_answers_match_the_document() {
    let pki = TestPki::new();
    let kmip = good_kmip(&pki);
    let keymgr = Keymgr::start();
    keymgr.post("/api/svm/svms", &json!({ "name": "svm1" }));
    let key_manager = create_key_manager(&keymgr, &pki, Some("svm1"), &[kmip.address()]);
    let cluster = keymgr.get("/api/cluster");
    let cluster_uuid = cluster.body["uuid"]
        .as_str()
        .expect("cluster uuid")
        .to_string();

    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("schemathesis.toml");
    // Path parameters that name the seeded objects; other objects' paths get 404s.
    std::fs::write(
        &config,
        format!(
            "[parameters]\n\"path.uuid\" = \"{key_manager}\"\n\"path.server\" = \"{}\"\n\
             \"path.owner\" = \"{cluster_uuid}\"\n\"path.name\" = \"admin\"\n",
            kmip.address()
        ),
    )
    .expect("config");
    let output = run_schemathesis(dir.path(), &config, &keymgr);
    let report = format!("{output}\n--- service log\n{}", keymgr.log());
    assert!(
        output.contains("passed") && !output.contains("FAILURES"),
        "{report}"
    );
}

fn run_schemathesis(dir: &Path, config: &Path, keymgr: &Keymgr) -> String {
    let st = python().with_file_name("st");
    assert!(
        st.exists(),
        "{} does not exist: run scripts/test.sh (or scripts/setup-test-env.sh) first",
        st.display()
    );
    let log = dir.join("schemathesis.log");
    let mut command = Command::new(&st);
    command
        .arg("--config-file")
        .arg(config)
        .args(["run", &keymgr.url("/docs/api/openapi.json")])
        .args(["--auth", &format!("{}:{}", keymgr.user, keymgr.password)])
        .args(["--tls-verify", "false"])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,negative_data_rejection",
        ])
        .args(["--phases", "coverage,fuzzing,stateful"])
        .args(["--max-examples", EXAMPLES])
        .args(["--workers", "1", "--seed", "1"]);
    for operation in LEFT_OUT {
        command.args(["--exclude-operation-id", operation]);
    }
    let mut child = command
        // `requests` lets these override `--tls-verify false`.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(support::log_file(&log))
        .stderr(support::log_file(&log))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", st.display()));
    let status = wait_bounded(&mut child, RUN_LIMIT);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    match status {
        Some(status) => assert!(status.success(), "schemathesis: {status}\n{output}"),
        None => panic!("schemathesis still running after {RUN_LIMIT:?}\n{output}"),
    }
    output
}
