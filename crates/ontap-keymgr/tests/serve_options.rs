//! `serve` options: a TOML configuration file and plain HTTP (`http = true`, as behind a
//! TLS-terminating proxy), checked with a raw HTTP/1.1 request.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

fn raw_get(port: u16, path: &str, credentials: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let basic = base64::engine::general_purpose::STANDARD.encode(credentials);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn a_configuration_file_and_plain_http() {
    let dir = tempfile::tempdir().expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let config = dir.path().join("keymgr.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nhttp = true\n\n[cluster]\nname = \"lab-cluster\"\nversion = \"9.12.1\"\nnodes = [\"lab-01\", \"lab-02\", \"lab-03\"]\n\n[security]\nfips = true\ntls_protocol_versions = [\"TLSv1.2\"]\n"
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ontap-keymgr"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&config)
        .env("KEYMGR_ADMIN_PASSWORD", "plain-http-admin")
        .env_remove("KEYMGR_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answer = None;
    while Instant::now() < deadline && answer.is_none() {
        answer = raw_get(port, "/api/cluster", "admin:plain-http-admin");
        if answer.is_none() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let nodes = raw_get(port, "/api/cluster/nodes", "admin:plain-http-admin");
    let security = raw_get(
        port,
        "/api/security?fields=fips,tls.protocol_versions",
        "admin:plain-http-admin",
    );
    let _ = child.kill();
    let _ = child.wait();
    let answer = answer.expect("the service answers plain HTTP");
    let security = security.expect("the security configuration");
    assert!(
        security.contains(r#""fips":{"enabled":true}"#)
            && security.contains(r#""protocol_versions":["TLSv1.2"]"#),
        "[security] of the file is applied: {security}"
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"name\":\"lab-cluster\""), "{answer}");
    assert!(answer.contains("\"major\":12"), "{answer}");
    let nodes = nodes.expect("nodes");
    assert!(
        nodes.contains("\"num_records\":3") && nodes.contains("lab-03"),
        "{nodes}"
    );
    assert!(
        !dir.path().join("data/tls").exists(),
        "no HTTPS certificate is made for --http"
    );
}
