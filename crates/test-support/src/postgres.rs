//! A throw-away PostgreSQL server for tests (issue 12): `initdb` into a temporary directory,
//! `postgres` on 127.0.0.1 and a free port, stopped (fast shutdown) when dropped. PostgreSQL
//! refuses to run as root, so when the tests run as root its files and processes belong to the
//! `postgres` user (Debian's package makes it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The role the tests connect as (trust authentication, on loopback only).
pub const USER: &str = "keymgr";

/// How long a server may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take before the server is killed.
const STOP_WITHIN: Duration = Duration::from_secs(10);

pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    child: Option<Child>,
    _dir: TempDir,
}

impl Postgres {
    /// Initializes a cluster and starts it; panics with the server's log when it cannot.
    pub fn start() -> Postgres {
        Postgres::start_with(None)
    }

    /// The same, speaking TLS (`ssl = on`) with this certificate and key (PEM): clients may
    /// connect with or without TLS.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Postgres {
        Postgres::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Postgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        if running_as_root() {
            run("chown", &["-R", "postgres:", &dir.path().to_string_lossy()]);
        }
        let initdb = bin.join("initdb");
        run_as_server_user(
            &initdb,
            &[
                "-D",
                &data.to_string_lossy(),
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
        );
        if let Some((cert_pem, key_pem)) = tls {
            enable_tls(&data, cert_pem, key_pem);
        }
        let mut postgres = Postgres {
            port: 0,
            bin,
            data,
            child: None,
            _dir: dir,
        };
        postgres.launch();
        postgres
    }

    /// `postgres://keymgr@127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        url_on(self.port, database)
    }

    /// Creates a database.
    pub fn create_database(&self, name: &str) {
        create_database_on(self.port, name);
    }

    /// Runs SQL through psql and answers its unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        psql_on(self.port, database, sql)
    }

    /// Stops the server (fast shutdown), as when the database goes away.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // The child may be `runuser`, which does not pass signals on: pg_ctl signals the
        // server itself (fast shutdown), found through its pid file.
        let _ = server_user_command(&self.bin.join("pg_ctl"))
            .args(["stop", "-m", "fast", "-w", "-t", "10", "-D"])
            .arg(&self.data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_WITHIN;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the stopped server again, on the same port when it is still free.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts `postgres` on a free port and waits until it accepts connections.
    fn launch(&mut self) {
        for _ in 0..3 {
            let port = if self.port == 0 {
                free_port()
            } else {
                self.port
            };
            let log = self.data.with_file_name(format!("postgres-{port}.log"));
            let child = server_user_command(&self.bin.join("postgres"))
                .args(["-D", &self.data.to_string_lossy()])
                .args(["-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-k", &self.data.to_string_lossy()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file(&log))
                .spawn()
                .expect("start postgres");
            self.child = Some(child);
            self.port = port;
            if self.wait_ready() {
                return;
            }
            self.stop();
            self.port = 0;
            eprintln!(
                "postgres did not start on port {port}: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        panic!("postgres did not start");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

/// The port of the server scripts/test.sh starts for the whole run (`KEYMGR_TEST_PG_PORT`), if
/// any: tests that only need a database make theirs there instead of starting a server.
pub fn shared_port() -> Option<u16> {
    std::env::var("KEYMGR_TEST_PG_PORT").ok()?.parse().ok()
}

/// `postgres://keymgr@127.0.0.1:PORT/DATABASE`.
pub fn url_on(port: u16, database: &str) -> String {
    format!("postgres://{USER}@127.0.0.1:{port}/{database}")
}

/// Creates a database on the server at `port`.
pub fn create_database_on(port: u16, name: &str) {
    let status = Command::new(bin_dir().join("createdb"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER, name])
        .status()
        .expect("createdb");
    assert!(status.success(), "createdb {name}");
}

/// A database of its own for a test on the server at `port`: its URL.
pub fn fresh_database_on(port: u16) -> String {
    static COUNT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!(
        "t{}_{}_{}",
        std::process::id(),
        COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    create_database_on(port, &name);
    url_on(port, &name)
}

/// Runs SQL through psql on the server at `port` and answers its unaligned, tuples-only output.
pub fn psql_on(port: u16, database: &str, sql: &str) -> String {
    let output = Command::new(bin_dir().join("psql"))
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER])
        .args(["-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Everything a database holds, as `pg_dump` writes it.
pub fn dump_on(port: u16, database: &str) -> Vec<u8> {
    let output = Command::new(bin_dir().join("pg_dump"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            USER,
            database,
        ])
        .output()
        .expect("pg_dump");
    assert!(output.status.success(), "pg_dump {database}");
    output.stdout
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// PostgreSQL's programs: `KEYMGR_TEST_PG_BIN`, else the newest of Debian's
/// `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KEYMGR_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("PostgreSQL is not installed: scripts/setup-test-env.sh installs it")
}

/// Writes the server's certificate and key into the data dir (the key readable by the server's
/// user only, as PostgreSQL demands) and turns TLS on.
fn enable_tls(data: &Path, cert_pem: &str, key_pem: &str) {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(data.join("server.crt"), cert_pem).expect("server.crt");
    std::fs::write(data.join("server.key"), key_pem).expect("server.key");
    std::fs::set_permissions(
        data.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("key permissions");
    let mut conf = std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .expect("postgresql.conf");
    writeln!(
        conf,
        "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'"
    )
    .expect("ssl settings");
    if running_as_root() {
        for file in ["server.crt", "server.key"] {
            run("chown", &["postgres:", &data.join(file).to_string_lossy()]);
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, run as the `postgres` user when the tests run as root.
fn server_user_command(program: &Path) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run_as_server_user(program: &Path, args: &[&str]) {
    let output = server_user_command(program)
        .args(args)
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{} failed: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().expect(program);
    assert!(status.success(), "{program} {args:?}");
}

/// A port nothing listens on now (another process may take it before postgres does: `launch`
/// retries).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn log_file(path: &Path) -> Stdio {
    std::fs::File::create(path)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}
