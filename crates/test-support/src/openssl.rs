//! `openssl s_server` on 127.0.0.1, limited to chosen TLS versions and cipher suites: a TLS peer
//! that speaks no KMIP, for the facts of a handshake. It requires a client certificate signed by
//! the given CA, as key servers do.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::pki::{Ca, Issued};

/// How long `openssl s_server` may take to start listening.
const START_LIMIT: Duration = Duration::from_secs(20);

pub struct OpenSslServer {
    pub port: u16,
    child: Child,
    /// Held open: on end of input s_server would close its connection.
    _stdin: ChildStdin,
    _dir: tempfile::TempDir,
}

impl OpenSslServer {
    /// A server presenting `server`, trusting `ca` for client certificates, with `options` such
    /// as `["-tls1_2", "-cipher", "AES128-SHA256"]`.
    pub fn start(server: &Issued, ca: &Ca, options: &[&str]) -> OpenSslServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = server.write(dir.path(), "server");
        let ca_path = ca.write(dir.path(), "ca");
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-Verify", "1"])
            .arg("-cert")
            .arg(cert)
            .arg("-key")
            .arg(key)
            .arg("-CAfile")
            .arg(ca_path)
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server (Debian package openssl)");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let port = accepted_port(stdout).unwrap_or_else(|why| {
            let _ = child.kill();
            panic!("openssl s_server did not start: {why}")
        });
        OpenSslServer {
            port,
            child,
            _stdin: stdin,
            _dir: dir,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for OpenSslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads s_server's `ACCEPT 127.0.0.1:<port>` line, then keeps draining its output (it prints
/// what clients send) so that it never blocks on a full pipe.
fn accepted_port(stdout: std::process::ChildStdout) -> Result<u16, String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = sender.send(None);
                    return;
                }
                Ok(_) => {
                    if let Some(port) = line
                        .trim()
                        .strip_prefix("ACCEPT 127.0.0.1:")
                        .and_then(|p| p.parse::<u16>().ok())
                    {
                        let _ = sender.send(Some(port));
                        break;
                    }
                }
            }
        }
        let _ = std::io::copy(&mut reader.take(u64::MAX), &mut std::io::sink());
    });
    receiver
        .recv_timeout(START_LIMIT)
        .map_err(|_| "no ACCEPT line in time".to_string())?
        .ok_or_else(|| "it exited before listening".to_string())
}
