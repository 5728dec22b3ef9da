//! End-to-end fixtures: the service with a fresh data dir, either as the real `ontap-keymgr`
//! binary or in this test process on a port-0 listener ([`Keymgr::spawn_app`]), an HTTPS client
//! that trusts only the certificate the service made for itself, and helpers that set up SVMs,
//! certificates and key managers through the API.
//!
//! The store: the data dir's SQLite file, or with `KEYMGR_TEST_STORE=postgres` a database of
//! its own on the test run's PostgreSQL server (`KEYMGR_TEST_PG_PORT`, started by
//! scripts/test.sh), kept for the data dir so that a restart on it finds its data: the same
//! tests run against both stores.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::pki::TestPki;
use test_support::pykmip::{PyKmip, PyKmipConfig, python};
use ureq::http;

pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";
const START_LIMIT: Duration = Duration::from_secs(60);

/// A running service. Dropping it kills it.
pub struct Keymgr {
    child: Option<Child>,
    app: Option<InProcessApp>,
    pub port: u16,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    agent: Option<ureq::Agent>,
    pub user: String,
    pub password: String,
}

pub struct Response {
    pub status: u16,
    pub body: Value,
    pub location: Option<String>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl Response {
    /// The ONTAP error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn target(&self) -> &str {
        self.body["error"]["target"].as_str().unwrap_or("")
    }

    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// The uuid that ends the `Location` of a `201 Created`.
    #[track_caller]
    pub fn created_uuid(&self) -> String {
        assert_eq!(self.status, 201, "{self:?}");
        let location = self.location.as_deref().expect("Location");
        location.rsplit('/').next().expect("uuid").to_string()
    }

    /// Asserts an ONTAP error with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!((self.status, self.code()), (status, code), "{self:?}");
        assert!(!self.message().is_empty(), "{self:?}");
    }
}

impl Keymgr {
    /// A fresh service with its own data dir.
    pub fn start() -> Keymgr {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let mut keymgr = Keymgr::start_in(&data_dir, &[]);
        keymgr._dir = Some(dir);
        keymgr
    }

    /// The app in this test process, serving HTTPS on a listener bound to port 0: the whole
    /// service but the process around it, so no port is picked and nothing outlives the test.
    /// Tests of restarts, signals, the command line and the log start the binary instead.
    pub fn spawn_app() -> Keymgr {
        Keymgr::spawn_app_with(|_| {})
    }

    /// The app in this test process, with its configuration changed by `configure`.
    pub fn spawn_app_with(configure: impl FnOnce(&mut ontap_keymgr::config::Config)) -> Keymgr {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("data");
        let overrides = ontap_keymgr::config::Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(data_dir.clone()),
            http: false,
            database_url: None,
        };
        let mut config =
            ontap_keymgr::config::Config::load(None, overrides).expect("configuration");
        config.store.url = test_database_url(&data_dir);
        configure(&mut config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = listener.local_addr().expect("bound address").port();
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let admin = ontap_keymgr::server::AdminStart {
                    password: Some(ADMIN_PASSWORD.into()),
                    reset: false,
                };
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(error) =
                    ontap_keymgr::server::run(listener, config, admin, shutdown).await
                {
                    panic!("the app did not start: {error}");
                }
            });
        });
        let mut keymgr = Keymgr {
            child: None,
            app: Some(InProcessApp {
                stop: Some(stop),
                thread: Some(thread),
            }),
            port,
            data_dir,
            _dir: Some(dir),
            agent: None,
            user: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        };
        keymgr.wait_until_ready(0);
        keymgr
    }

    /// A service on `data_dir`, with extra environment variables.
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Keymgr {
        Keymgr::start_with(data_dir, env, &[])
    }

    /// A service on `data_dir`, with extra environment variables and `serve` options. It binds
    /// port 0 and says which port it got: no port is picked here and lost to a race.
    pub fn start_with(data_dir: &Path, env: &[(&str, &str)], options: &[&str]) -> Keymgr {
        std::fs::create_dir_all(data_dir).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("../service.log"))
            .expect("log file");
        let stdout = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("../service.out"))
            .expect("stdout file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ontap-keymgr"));
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(options)
            .env_remove("KEYMGR_CONFIG")
            .env_remove("KEYMGR_DATABASE_URL")
            .env("KEYMGR_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("KEYMGR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log);
        if let Some(url) = test_database_url(data_dir) {
            command.env("KEYMGR_DATABASE_URL", url);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        // Standard output is appended across restarts: only what this start adds counts.
        let output_before = std::fs::metadata(data_dir.join("../service.out"))
            .map(|m| m.len() as usize)
            .unwrap_or(0);
        let child = command.spawn().expect("start ontap-keymgr");
        let mut keymgr = Keymgr {
            child: Some(child),
            app: None,
            port: 0,
            data_dir: data_dir.to_path_buf(),
            _dir: None,
            agent: None,
            user: "admin".into(),
            password: ADMIN_PASSWORD.into(),
        };
        keymgr.wait_until_ready(output_before);
        keymgr
    }

    fn wait_until_ready(&mut self, output_before: usize) {
        let deadline = Instant::now() + START_LIMIT;
        let cert_path = self.data_dir.join("tls/cert.pem");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("ontap-keymgr exited with {status}:\n{}", self.log());
                }
            }
            if self.app.as_ref().is_some_and(InProcessApp::has_stopped) {
                panic!("the in-process app stopped before answering");
            }
            if self.port == 0 {
                self.port = self.announced_port(output_before).unwrap_or(0);
                if self.port == 0 {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
            if self.agent.is_none() && cert_path.exists() {
                if let Ok(pem) = std::fs::read(&cert_path) {
                    self.agent = agent_trusting(&pem);
                }
            }
            // Any HTTP answer means it is up (401 when the admin password was generated).
            if self.agent.is_some() && self.get("/api/cluster").status != 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ontap-keymgr did not answer in time:\n{}", self.log());
    }

    /// The port of the `Listening on https://127.0.0.1:<port>` line this start printed.
    fn announced_port(&self, output_before: usize) -> Option<u16> {
        let output = self.output();
        output
            .get(output_before..)?
            .lines()
            .find_map(|line| line.strip_prefix("Listening on "))?
            .rsplit(':')
            .next()?
            .trim()
            .parse()
            .ok()
    }

    /// The service's log so far (standard error).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("../service.log")).unwrap_or_default()
    }

    /// What the service printed on standard output.
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("../service.out")).unwrap_or_default()
    }

    /// The service's process id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(|c| c.id())
            .expect("the service is up")
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    pub fn request_as(
        &self,
        user: &str,
        password: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Response {
        let body = body.unwrap_or("").as_bytes().to_vec();
        self.send(user, password, method, path, "application/json", body)
    }

    /// Any bytes, with any content type, as the admin.
    pub fn send_bytes(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        self.send(&self.user, &self.password, method, path, content_type, body)
    }

    fn send(
        &self,
        user: &str,
        password: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        let agent = self.agent.as_ref().expect("the service is up");
        let credentials = base64_encode(&format!("{user}:{password}"));
        let request = http::Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("Authorization", format!("Basic {credentials}"))
            .header("Content-Type", content_type)
            .header("Accept", "application/hal+json")
            .body(body)
            .expect("request");
        let mut response = match agent.run(request) {
            Ok(response) => response,
            Err(error) => {
                return Response {
                    status: 0,
                    body: json!({ "transport_error": error.to_string() }),
                    location: None,
                };
            }
        };
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Response {
            status,
            body,
            location,
        }
    }

    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        let text = body.map(Value::to_string);
        self.request_as(&self.user, &self.password, method, path, text.as_deref())
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, None)
    }

    /// Every record of a collection, following `_links.next` as netapp-ontap does (the audit
    /// trail answers at most 1,000 records at a time).
    #[allow(dead_code)] // not every test binary reads long collections
    pub fn get_all_records(&self, path: &str) -> Vec<Value> {
        let mut records = Vec::new();
        let mut next = Some(path.to_string());
        while let Some(path) = next.take() {
            let page = self.get(&path);
            assert_eq!(page.status, 200, "{path}: {page:?}");
            records.extend(page.body["records"].as_array().cloned().unwrap_or_default());
            next = page.body["_links"]["next"]["href"]
                .as_str()
                .map(str::to_string);
        }
        records
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.request("POST", path, Some(body))
    }

    pub fn patch(&self, path: &str, body: &Value) -> Response {
        self.request("PATCH", path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, None)
    }

    /// Sends `signal` (`TERM`, `INT`) to the service without waiting for it.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status();
            assert!(status.is_ok_and(|s| s.success()), "kill -{signal}");
        }
    }

    /// Stops the service with SIGTERM and waits for it; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        self.signal("TERM");
        self.wait_for_exit()
    }

    /// Waits (a bounded time) for the service to exit; returns whether it exited cleanly.
    pub fn wait_for_exit(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }
}

/// The app running on its own runtime in a thread of the test process.
struct InProcessApp {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcessApp {
    fn has_stopped(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for InProcessApp {
    /// Stops it as SIGINT stops the binary, and waits for it, so its data dir outlives it.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Keymgr {
    fn drop(&mut self) {
        self.app.take();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A file that a child's standard output and error can both append to, in the order written.
pub fn log_file(path: &Path) -> Stdio {
    let file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file");
    Stdio::from(file)
}

fn agent_trusting(pem: &[u8]) -> Option<ureq::Agent> {
    let certificate = ureq::tls::Certificate::from_pem(pem).ok()?.to_owned();
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![certificate])))
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build();
    Some(config.into())
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Reads a whole file into a string (test helper).
pub fn read(path: &Path) -> String {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .expect("read");
    text
}

/// Waits for `child` at most `limit`; kills it when the limit passes.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the client") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `condition` every 20 ms until it holds; fails the test, naming `what`, after `limit`.
#[allow(dead_code)] // not every test binary waits for a condition
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "still waiting after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether the tests' services keep their data in PostgreSQL (`KEYMGR_TEST_STORE=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("KEYMGR_TEST_STORE").is_ok_and(|store| store == "postgres")
}

/// The database of the services on `data_dir`, made at first use, when the tests run on
/// PostgreSQL.
pub fn test_database_url(data_dir: &Path) -> Option<String> {
    if !on_postgres() {
        return None;
    }
    let port = test_support::postgres::shared_port()
        .expect("KEYMGR_TEST_STORE=postgres needs KEYMGR_TEST_PG_PORT (scripts/test.sh sets both)");
    let file = data_dir.with_file_name("database-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return Some(url);
    }
    let url = test_support::postgres::fresh_database_on(port);
    std::fs::create_dir_all(data_dir.parent().expect("data dir parent")).expect("test dir");
    std::fs::write(&file, &url).expect("database url file");
    Some(url)
}

/// Everything the service's database holds, as stored: the SQLite file and its WAL, or a dump
/// of the PostgreSQL database.
pub fn database_contents(keymgr: &Keymgr) -> Vec<u8> {
    if let Some(url) = test_database_url(&keymgr.data_dir) {
        let port = test_support::postgres::shared_port().expect("test server");
        let database = url.rsplit('/').next().expect("database name");
        return test_support::postgres::dump_on(port, database);
    }
    let mut contents = std::fs::read(keymgr.data_dir.join("keymgr.db")).expect("database");
    contents.extend(std::fs::read(keymgr.data_dir.join("keymgr.db-wal")).unwrap_or_default());
    contents
}

/// Runs SQL on the service's database, as a damaged or hand-edited database would be: the
/// SQLite statement, or on PostgreSQL its equivalent. The running service does not see the
/// change in what it keeps in memory: stop it first, or edit what it does not keep.
pub fn edit_database(keymgr: &Keymgr, sqlite: &str, postgres: &str) {
    if let Some(url) = test_database_url(&keymgr.data_dir) {
        let port = test_support::postgres::shared_port().expect("test server");
        let database = url.rsplit('/').next().expect("database name");
        test_support::postgres::psql_on(port, database, postgres);
        return;
    }
    let script = "import sqlite3, sys\n\
                  db = sqlite3.connect(sys.argv[1])\n\
                  db.execute(sys.argv[2])\n\
                  db.commit()\n";
    let status = Command::new(python())
        .args(["-c", script])
        .arg(keymgr.data_dir.join("keymgr.db"))
        .arg(sqlite)
        .status()
        .expect("python");
    assert!(status.success(), "{sqlite}");
}

// ---- fixtures built through the API ------------------------------------------------------------

/// A good PyKMIP server for `pki`.
pub fn good_kmip(pki: &TestPki) -> PyKmip {
    PyKmip::start(PyKmipConfig::good(pki))
}

pub fn create_svm(keymgr: &Keymgr, name: &str) -> String {
    keymgr
        .post("/api/svm/svms", &json!({ "name": name }))
        .created_uuid()
}

/// Installs the key manager's client certificate and server CA; returns their names.
pub fn install_certificates(
    keymgr: &Keymgr,
    pki: &TestPki,
    svm: Option<&str>,
    prefix: &str,
) -> (String, String) {
    let client_name = format!("{prefix}-client");
    let ca_name = format!("{prefix}-server-ca");
    let mut client = json!({
        "type": "client",
        "name": client_name,
        "public_certificate": pki.client.cert_pem,
        "private_key": pki.client.key_pem,
    });
    let mut ca =
        json!({ "type": "server_ca", "name": ca_name, "public_certificate": pki.ca.cert_pem });
    if let Some(svm) = svm {
        client["svm"] = json!({ "name": svm });
        ca["svm"] = json!({ "name": svm });
    }
    for body in [client, ca] {
        let response = keymgr.post("/api/security/certificates", &body);
        assert_eq!(response.status, 201, "{response:?}");
    }
    (client_name, ca_name)
}

/// An external key manager for `svm` (or the cluster) with these servers; returns its uuid.
pub fn create_key_manager(
    keymgr: &Keymgr,
    pki: &TestPki,
    svm: Option<&str>,
    servers: &[String],
) -> String {
    let prefix = svm.unwrap_or("cluster");
    let (client, ca) = install_certificates(keymgr, pki, svm, prefix);
    let mut body = json!({
        "external": {
            "client_certificate": { "name": client },
            "server_ca_certificates": [{ "name": ca }],
            "servers": servers.iter().map(|s| json!({ "server": s })).collect::<Vec<_>>(),
        }
    });
    if let Some(svm) = svm {
        body["svm"] = json!({ "name": svm });
    }
    keymgr
        .post("/api/security/key-managers", &body)
        .created_uuid()
}

pub fn key_servers_path(key_manager: &str) -> String {
    format!("/api/security/key-managers/{key_manager}/key-servers")
}

/// The addresses of a key manager's key servers, in order.
pub fn servers_of(keymgr: &Keymgr, key_manager: &str) -> Vec<String> {
    let response = keymgr.get(&key_servers_path(key_manager));
    assert_eq!(response.status, 200, "{response:?}");
    response.body["records"]
        .as_array()
        .expect("records")
        .iter()
        .map(|r| r["server"].as_str().expect("server").to_string())
        .collect()
}

/// POSTs each of `servers` to `path` at once, a thread each, through the services of `through`
/// in turn: the statuses and codes, in order.
pub fn post_all_at_once(through: &[&Keymgr], path: &str, servers: &[String]) -> Vec<(u16, String)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = servers
            .iter()
            .enumerate()
            .map(|(index, server)| {
                let keymgr = through[index % through.len()];
                scope.spawn(move || {
                    let response = keymgr.post(path, &json!({ "server": server }));
                    (response.status, response.code().to_string())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    })
}

/// `ks1:5696` → `ks1%3A5696`, as clients encode path keys.
pub fn encoded(server: &str) -> String {
    server
        .replace(':', "%3A")
        .replace('[', "%5B")
        .replace(']', "%5D")
}

/// Runs a client of `tests/python/` (NetApp's own library, from the test virtualenv) against
/// `keymgr`, with its address and credentials and `env` as `NETAPP_TEST_*` variables; answers
/// its standard output, or fails the test with both outputs and the service's log.
pub fn run_python_client(keymgr: &Keymgr, script: &str, env: &[(&str, &str)]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    let mut command = Command::new(test_support::pykmip::python());
    command
        .arg(&script)
        // `requests` lets these override `verify=False`.
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NETAPP_TEST_HOST", "127.0.0.1")
        .env("NETAPP_TEST_PORT", keymgr.port.to_string())
        .env("NETAPP_TEST_USER", &keymgr.user)
        .env("NETAPP_TEST_PASSWORD", &keymgr.password);
    for (name, value) in env {
        command.env(format!("NETAPP_TEST_{name}"), value);
    }
    let output = command.output().expect("run the client");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        keymgr.log()
    );
    stdout
}
