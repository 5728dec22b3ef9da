//! Real PyKMIP servers on 127.0.0.1, started through `scripts/kmip_server.py` with the Python of
//! the test virtualenv (`scripts/setup-test-env.sh`, run by `scripts/test.sh`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::pki::{Ca, Issued, TestPki};

/// How long a PyKMIP server may take to start (it needs about a second).
const START_LIMIT: Duration = Duration::from_secs(60);

/// How long a stopping server may take before it is killed.
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// A running PyKMIP server. Dropping it stops the server: closing its standard input makes the
/// wrapper stop PyKMIP's forked manager process too, which a plain kill would orphan.
pub struct PyKmip {
    pub port: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    _dir: tempfile::TempDir,
}

/// What a server presents and whom it trusts.
pub struct PyKmipConfig<'a> {
    pub server: &'a Issued,
    pub trusted_ca: &'a Ca,
    /// When set, requests must carry this Username and Password credential.
    pub credential: Option<(&'a str, &'a str)>,
}

impl<'a> PyKmipConfig<'a> {
    /// `pki`'s server certificate, trusting `pki`'s CA: a server every check passes.
    pub fn good(pki: &'a TestPki) -> PyKmipConfig<'a> {
        PyKmipConfig {
            server: &pki.server,
            trusted_ca: &pki.ca,
            credential: None,
        }
    }

    /// A certificate from the unrelated CA: our client does not trust the server.
    pub fn untrusted(pki: &'a TestPki) -> PyKmipConfig<'a> {
        PyKmipConfig {
            server: &pki.rogue_server,
            ..PyKmipConfig::good(pki)
        }
    }

    /// Trusts only the unrelated CA: the server rejects our client certificate.
    pub fn rejecting(pki: &'a TestPki) -> PyKmipConfig<'a> {
        PyKmipConfig {
            trusted_ca: &pki.rogue_ca,
            ..PyKmipConfig::good(pki)
        }
    }
}

/// `scripts/kmip_server.py` on `port` (0: a free one) with `server`'s certificate, trusting
/// `trusted_ca`, its files written to `dir`: the command, for the caller to add to and start.
pub fn server_command(dir: &Path, server: &Issued, trusted_ca: &Ca, port: u16) -> Command {
    let (cert, key) = server.write(dir, "server");
    let ca = trusted_ca.write(dir, "ca");
    let python = python();
    assert!(
        python.exists(),
        "{} does not exist: run scripts/test.sh (or scripts/setup-test-env.sh) first",
        python.display()
    );
    let mut command = Command::new(python);
    command
        .arg(crate::workspace_root().join("scripts/kmip_server.py"))
        .arg("--dir")
        .arg(dir)
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg("--ca")
        .arg(ca)
        .arg("--port")
        .arg(port.to_string());
    command
}

/// The Python of the test virtualenv: `KEYMGR_TEST_PYTHON`, else `.venv/bin/python`.
pub fn python() -> PathBuf {
    match std::env::var_os("KEYMGR_TEST_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => crate::workspace_root().join(".venv/bin/python"),
    }
}

impl PyKmip {
    /// Starts several servers at once (each takes about a second to start), in order.
    pub fn start_all(configs: Vec<PyKmipConfig<'_>>) -> Vec<PyKmip> {
        std::thread::scope(|scope| {
            let starting: Vec<_> = configs
                .into_iter()
                .map(|config| scope.spawn(move || PyKmip::start(config)))
                .collect();
            starting
                .into_iter()
                .map(|handle| handle.join().expect("PyKMIP start"))
                .collect()
        })
    }

    /// A server on a free port.
    pub fn start(config: PyKmipConfig<'_>) -> PyKmip {
        PyKmip::start_on(config, 0)
    }

    /// A server on `port` (0: a free one), e.g. the port of a server that was stopped.
    pub fn start_on(config: PyKmipConfig<'_>, port: u16) -> PyKmip {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command = server_command(dir.path(), config.server, config.trusted_ca, port);
        command.arg("--stop-on-stdin-eof");
        if let Some((username, password)) = config.credential {
            command.args(["--username", username, "--password", password]);
        }
        // Not inherited: a server outliving the test must not hold the test runner's output open.
        let log_path = dir.path().join("stderr.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start scripts/kmip_server.py");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let port = read_port(stdout).unwrap_or_else(|why| {
            let _ = child.kill();
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("PyKMIP did not start: {why}\n{log}")
        });
        PyKmip {
            port,
            child,
            stdin: Some(stdin),
            _dir: dir,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for PyKmip {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + STOP_LIMIT;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_port(stdout: std::process::ChildStdout) -> Result<u16, String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let result = BufReader::new(stdout)
            .read_line(&mut line)
            .map(|_| line)
            .map_err(|e| e.to_string());
        let _ = sender.send(result);
    });
    let line = receiver
        .recv_timeout(START_LIMIT)
        .map_err(|_| "no LISTENING line in time".to_string())??;
    line.trim()
        .strip_prefix("LISTENING ")
        .and_then(|port| port.parse().ok())
        .ok_or_else(|| format!("unexpected first line {line:?}"))
}
