//! Starting the service: the data dir, the store, the first admin, the HTTPS certificate (made
//! at first start when none is configured), the listener, and a graceful shutdown on SIGINT or
//! SIGTERM that lets in-flight requests finish.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api;
use crate::config::Config;
use crate::connections::{Activity, Connections};
use crate::domain::Service;
use crate::domain::cluster::Cluster;
use crate::domain::login::LockoutPolicy;
use crate::domain::security::SecurityChanges;
use crate::domain::users::AdminBootstrap;
use crate::store::Store;
use crate::store::copy::{Copied, copy_all};
use crate::store::postgres::PostgresStore;
use crate::store::read_model::ReadModel;
use crate::store::secrets::SecretBox;
use crate::store::sqlite::SqliteStore;

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// A client that does not finish its TLS handshake in this time is dropped.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// A client that does not send a request's headers in this time is dropped.
const HEADER_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(String);

fn fail(context: &str) -> impl FnOnce(String) -> StartError + '_ {
    move |detail| StartError(format!("{context}: {detail}"))
}

/// Everything the running service needs, built from the configuration.
pub struct Prepared {
    pub router: Router,
    pub service: Arc<Service>,
}

/// Opens the data dir and the store and prepares the first admin. `admin_password` comes from
/// `KEYMGR_ADMIN_PASSWORD`; a generated one is printed once on standard output.
pub async fn prepare(config: &Config, admin: &AdminStart) -> Result<Prepared, StartError> {
    create_private_dir(&config.data_dir).map_err(fail("cannot create the data dir"))?;
    let (store, cluster_uuid) = open_store(config).await?;
    let lockout = LockoutPolicy {
        max_failed_login_attempts: config.login.max_failed_login_attempts,
        lockout_duration: config.login.lockout_duration,
        max_failed_logins_per_address: config.login.max_failed_logins_per_address,
    };
    let store = Arc::new(ReadModel::new(store));
    let service = Arc::new(
        Service::new(store, Cluster::new(&config.cluster, cluster_uuid), lockout)
            .with_audit_retention(config.audit_max_records)
            .with_monitor(config.health_monitor),
    );
    service
        .load_security()
        .await
        .map_err(|e| fail("cannot read the security configuration")(e.to_string()))?;
    service
        .load_key_manager_config()
        .await
        .map_err(|e| fail("cannot read the key manager configuration")(e.to_string()))?;
    apply_configured_security(&service, &config.security).await?;
    let outcome = service
        .bootstrap_admin(admin.password.as_deref(), admin.reset)
        .await
        .map_err(|e| fail("cannot prepare the admin user")(e.to_string()))?;
    report_admin(&outcome, admin, &config.data_dir);
    let router = api::router(service.clone()).layer(middleware::from_fn(log_requests));
    Ok(Prepared { router, service })
}

/// How the `admin` user is prepared at start: `KEYMGR_ADMIN_PASSWORD`, and `--reset-admin-password`.
#[derive(Debug, Clone, Default)]
pub struct AdminStart {
    pub password: Option<String>,
    pub reset: bool,
}

/// Says what happened to `admin`. A generated password is printed once on standard output, on
/// purpose not through the log.
fn report_admin(outcome: &AdminBootstrap, admin: &AdminStart, data_dir: &Path) {
    let mut out = std::io::stdout().lock();
    match outcome {
        AdminBootstrap::Generated(password) => {
            let _ = writeln!(out, "Created user \"admin\" with password: {password}");
            let _ = writeln!(
                out,
                "It is shown only this once; set KEYMGR_ADMIN_PASSWORD to choose it."
            );
        }
        AdminBootstrap::Reset(Some(password)) => {
            let _ = writeln!(out, "Set the password of user \"admin\" to: {password}");
            let _ = writeln!(out, "It is shown only this once.");
        }
        AdminBootstrap::Configured => {
            tracing::info!("created user \"admin\" from KEYMGR_ADMIN_PASSWORD")
        }
        AdminBootstrap::Reset(None) => {
            tracing::info!("set the password of user \"admin\" from KEYMGR_ADMIN_PASSWORD")
        }
        AdminBootstrap::Existing if admin.password.is_some() => tracing::warn!(
            data_dir = %data_dir.display(),
            "KEYMGR_ADMIN_PASSWORD is set but not applied: the user \"admin\" exists already in \
             this data dir, with the password it was given then. To change it, PATCH \
             /api/security/accounts/<cluster uuid>/admin with {{\"password\": ...}}, or start once \
             with `serve --reset-admin-password`"
        ),
        AdminBootstrap::Existing => {}
    }
}

/// The configuration file's `[security]` settings, applied as a PATCH of `/api/security` would.
async fn apply_configured_security(
    service: &Service,
    security: &crate::config::SecurityConfig,
) -> Result<(), StartError> {
    let changes = SecurityChanges {
        fips: security.fips,
        protocol_versions: security.tls_protocol_versions.clone(),
        cipher_suites: security.tls_cipher_suites.clone(),
    };
    if changes.is_empty() {
        return Ok(());
    }
    let offer = service
        .modify_security(changes)
        .await
        .map_err(|e| fail("invalid [security] configuration")(e.to_string()))?;
    tracing::info!(offer = %offer.describe(), "applied the configured security settings");
    Ok(())
}

/// Prepares the store, binds the configured address, says on standard output which one it
/// got, and runs until SIGINT or SIGTERM.
pub async fn serve(config: Config, admin: AdminStart) -> Result<(), StartError> {
    let prepared = prepare(&config, &admin).await?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| fail("cannot listen")(format!("{}: {e}", config.listen)))?;
    let address = local_address(&listener)?;
    // For scripts and tests: with port 0 the system chose it.
    println!(
        "Listening on {}://{address}",
        if config.http { "http" } else { "https" }
    );
    let _ = std::io::stdout().flush();
    serve_prepared(listener, &config, prepared, shutdown_signal()).await
}

/// Serves on `listener` until `shutdown` completes, then lets open requests finish: the app
/// as the in-process tests start it.
pub async fn run(
    listener: TcpListener,
    config: Config,
    admin: AdminStart,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let prepared = prepare(&config, &admin).await?;
    serve_prepared(listener, &config, prepared, shutdown).await
}

async fn serve_prepared(
    listener: TcpListener,
    config: &Config,
    prepared: Prepared,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let address = local_address(&listener)?;
    let tls = if config.http {
        tracing::info!(%address, "serving plain HTTP");
        None
    } else {
        let acceptor = tls_acceptor(config)?;
        tracing::info!(%address, "serving HTTPS");
        Some(acceptor)
    };
    let connections = Connections::new(connection_limit(
        config.max_connections,
        config.health_monitor.max_concurrent_checks,
    ));
    let (stop_monitor, monitor_stops) = tokio::sync::oneshot::channel::<()>();
    let monitor = tokio::spawn(prepared.service.clone().run_health_monitor(async {
        let _ = monitor_stops.await;
    }));
    serve_connections(listener, tls, prepared.router, connections, shutdown).await;
    let _ = stop_monitor.send(());
    let _ = monitor.await;
    tracing::info!("stopped");
    Ok(())
}

fn local_address(listener: &TcpListener) -> Result<std::net::SocketAddr, StartError> {
    listener
        .local_addr()
        .map_err(|e| fail("cannot listen")(e.to_string()))
}

/// Descriptors kept for the database, logs and the like, besides client connections and
/// key-server checks.
const RESERVED_DESCRIPTORS: u64 = 32;

/// The configured connection limit, lowered to what the open files limit allows after raising
/// it as far as it goes and keeping one descriptor per concurrent key-server check.
fn connection_limit(configured: usize, concurrent_checks: usize) -> usize {
    let Some(files) = crate::connections::raise_open_files_limit() else {
        return configured;
    };
    let reserved =
        RESERVED_DESCRIPTORS.saturating_add(u64::try_from(concurrent_checks).unwrap_or(u64::MAX));
    let allowed = usize::try_from(files.saturating_sub(reserved))
        .unwrap_or(usize::MAX)
        .max(1);
    if allowed < configured {
        tracing::warn!(
            open_files = files,
            max_connections = allowed,
            "the open files limit allows fewer connections than configured"
        );
    }
    configured.min(allowed)
}

/// Accepts connections (over TLS unless `tls` is `None`) until `shutdown` completes, then lets
/// the open ones finish their requests, for at most [`DRAIN_LIMIT`].
async fn serve_connections(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(connection) => connection,
                    Err(error) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(admitted) = connections.admit() else {
                    continue; // every connection is busy: this one is closed
                };
                // An answer's last TLS record must not wait for the client's delayed ACK of
                // the ones before it (up to 40 ms): the tail of large listings.
                let _ = tcp.set_nodelay(true);
                let tls = tls.clone();
                let service = TowerToHyperService::new(per_connection(router.clone(), peer, admitted.activity()));
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let serve = async move {
                        match tls {
                            None => serve_connection(TokioIo::new(tcp), service, watcher).await,
                            Some(acceptor) => {
                                let handshake = tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(tcp));
                                if let Ok(Ok(stream)) = handshake.await {
                                    serve_connection(TokioIo::new(stream), service, watcher).await;
                                }
                            }
                        }
                    };
                    // Closed for room only while idle: no request is cut off.
                    tokio::select! {
                        () = serve => {}
                        () = admitted.closing() => {}
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_LIMIT) => tracing::warn!("in-flight requests cut off after the drain limit"),
    }
}

/// The router as one connection sees it.
fn per_connection(
    router: Router,
    peer: std::net::SocketAddr,
    activity: Activity,
) -> ConnectionService {
    ConnectionService {
        inner: router,
        address: api::auth::ClientAddress(peer.ip()),
        activity,
    }
}

/// A router that tells each request where it came from, and the connection registry when a
/// request is in flight. Hand-written because `map_request` closures cannot be generic over
/// hyper's body type.
#[derive(Clone)]
struct ConnectionService {
    inner: Router,
    address: api::auth::ClientAddress,
    activity: Activity,
}

type RouterFuture<B> = <Router as tower::Service<axum::http::Request<B>>>::Future;

impl<B> tower::Service<axum::http::Request<B>> for ConnectionService
where
    Router: tower::Service<axum::http::Request<B>>,
    RouterFuture<B>: Send + 'static,
{
    type Response = <Router as tower::Service<axum::http::Request<B>>>::Response;
    type Error = <Router as tower::Service<axum::http::Request<B>>>::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<axum::http::Request<B>>::poll_ready(&mut self.inner, context)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(self.address);
        let in_flight = self.activity.request();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(in_flight);
            response
        })
    }
}

/// HTTP/1.1 on one connection. A client that does not send a request's headers within
/// [`HEADER_LIMIT`] is dropped, so idle or trickling connections cannot pile up.
async fn serve_connection<I>(
    io: I,
    service: TowerToHyperService<ConnectionService>,
    watcher: Watcher,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_LIMIT)
        .serve_connection(io, service);
    let _ = watcher.watch(connection).await;
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}

/// One line per request: method, path (no query: it is the client's), status, duration.
async fn log_requests(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        millis = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

fn create_private_dir(path: &Path) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// The store the configuration names, and the cluster's uuid: the data dir's SQLite file and
/// uuid, or a PostgreSQL database shared with other instances, and the uuid they share.
async fn open_store(config: &Config) -> Result<(Arc<dyn Store>, uuid::Uuid), StartError> {
    let key_file = config.store.secret_key_path(&config.data_dir);
    let secrets = SecretBox::load_or_create(&key_file)
        .map_err(|e| fail("cannot read the secret key")(e.to_string()))?;
    let local_uuid =
        cluster_uuid(&config.data_dir).map_err(fail("cannot read the cluster uuid"))?;
    let Some(url) = &config.store.url else {
        let store = SqliteStore::open(&config.data_dir.join("keymgr.db"), secrets)
            .map_err(|e| fail("cannot open the database")(e.to_string()))?;
        return Ok((Arc::new(store), local_uuid));
    };
    let store = PostgresStore::open(
        url,
        config.store.max_connections,
        secrets,
        &local_uuid.to_string(),
    )
    .await
    .map_err(|e| fail("cannot open the PostgreSQL database")(e.to_string()))?;
    let shared_uuid = store
        .cluster_uuid()
        .parse()
        .map_err(|e| fail("invalid cluster uuid in the database")(format!("{e}")))?;
    tracing::info!(database = %store.describe(), "using PostgreSQL");
    Ok((Arc::new(store), shared_uuid))
}

/// `store migrate`: copies the SQLite store of `data_dir` into the empty PostgreSQL database at
/// `url`, which takes the data dir's cluster uuid and is sealed with its key.
pub async fn migrate_store(data_dir: &Path, url: &str) -> Result<Copied, StartError> {
    let database = data_dir.join("keymgr.db");
    let key_file = data_dir.join("secret.key");
    for needed in [&database, &key_file] {
        if !needed.is_file() {
            return Err(StartError(format!(
                "{} does not exist: --from names a data dir of the service",
                needed.display()
            )));
        }
    }
    let secrets = || {
        SecretBox::load_or_create(&key_file)
            .map_err(|e| fail("cannot read the secret key")(e.to_string()))
    };
    let from = SqliteStore::open(&database, secrets()?)
        .map_err(|e| fail("cannot open the SQLite database")(e.to_string()))?;
    let uuid = cluster_uuid(data_dir).map_err(fail("cannot read the cluster uuid"))?;
    let to = PostgresStore::open(url, 4, secrets()?, &uuid.to_string())
        .await
        .map_err(|e| fail("cannot open the PostgreSQL database")(e.to_string()))?;
    if to.cluster_uuid() != uuid.to_string() {
        return Err(StartError(format!(
            "the PostgreSQL database belongs to another cluster ({}): migrate into an empty one",
            to.cluster_uuid()
        )));
    }
    copy_all(&from, &to)
        .await
        .map_err(|e| fail("the copy failed")(e.to_string()))
}

/// The cluster's uuid, made at first start and kept in the data dir.
fn cluster_uuid(data_dir: &Path) -> Result<uuid::Uuid, String> {
    let path = data_dir.join("cluster-uuid");
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let uuid = uuid::Uuid::new_v4();
            std::fs::write(&path, uuid.to_string())
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(uuid)
        }
        Err(error) => Err(format!("{}: {error}", path.display())),
    }
}

/// The HTTPS certificate: the configured one, or the self-signed one of the data dir, made at
/// first start.
fn tls_acceptor(config: &Config) -> Result<TlsAcceptor, StartError> {
    let (cert_path, key_path) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => self_signed(&config.data_dir, config.listen.ip())?,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|certs| certs.collect())
        .map_err(|e| {
            fail("cannot read the HTTPS certificate")(format!("{}: {e}", cert_path.display()))
        })?;
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| fail("cannot read the HTTPS key")(format!("{}: {e}", key_path.display())))?;
    let mut server_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail("TLS")(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| fail("the HTTPS certificate and key do not fit")(e.to_string()))?;
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server_config)))
}

/// How long a self-signed HTTPS certificate is valid: ONTAP's default for the certificates it
/// makes (`security certificate create -expire-days 365`).
const SELF_SIGNED_DAYS: i64 = 365;
/// A self-signed certificate this close to its end is replaced at start.
const RENEW_WITHIN_DAYS: i64 = 30;

/// `tls/cert.pem` and `tls/key.pem` in the data dir, for localhost, 127.0.0.1, ::1 and the
/// listen address: made at first start, and again at a start when they expire within 30 days.
pub fn self_signed(data_dir: &Path, listen: IpAddr) -> Result<(PathBuf, PathBuf), StartError> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if cert_path.exists() && key_path.exists() {
        match days_left(&cert_path) {
            Some(days) if days > RENEW_WITHIN_DAYS => return Ok((cert_path, key_path)),
            days => tracing::warn!(
                certificate = %cert_path.display(),
                days_left = ?days,
                "renewing the self-signed HTTPS certificate"
            ),
        }
    }
    create_private_dir(&dir).map_err(fail("cannot create the TLS dir"))?;
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !listen.is_unspecified() && !names.contains(&listen.to_string()) {
        names.push(listen.to_string());
    }
    let key = rcgen::KeyPair::generate().map_err(|e| fail("cannot make a key")(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(names)
        .map_err(|e| fail("cannot make a certificate")(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ontap-keymgr");
    // Shaped like the server certificates ONTAP makes: a year, for TLS servers, not a CA.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(SELF_SIGNED_DAYS);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .self_signed(&key)
        .map_err(|e| fail("cannot make a certificate")(e.to_string()))?;
    write_private(&key_path, &key.serialize_pem()).map_err(fail("cannot write the HTTPS key"))?;
    std::fs::write(&cert_path, cert.pem())
        .map_err(|e| fail("cannot write the HTTPS certificate")(e.to_string()))?;
    tracing::info!(certificate = %cert_path.display(), "made a self-signed HTTPS certificate");
    Ok((cert_path, key_path))
}

/// Whole days until the certificate in this PEM file expires; `None` when it cannot be read.
fn days_left(cert_path: &Path) -> Option<i64> {
    let pem = std::fs::read(cert_path).ok()?;
    let der = CertificateDer::pem_slice_iter(&pem).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let seconds =
        cert.validity().not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp();
    Some(seconds.div_euclid(86_400))
}

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(pem_path: &Path) -> (i64, bool, bool) {
        let pem = std::fs::read(pem_path).expect("certificate");
        let der = CertificateDer::pem_slice_iter(&pem)
            .next()
            .expect("a PEM block")
            .expect("PEM");
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).expect("X.509");
        let server_auth = cert
            .extended_key_usage()
            .ok()
            .flatten()
            .is_some_and(|e| e.value.server_auth);
        let not_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|b| !b.value.ca);
        (days_left(pem_path).expect("days"), server_auth, not_ca)
    }

    #[test]
    fn the_self_signed_certificate_is_shaped_like_ontaps_and_renewed_near_its_end() {
        let dir = tempfile::tempdir().expect("dir");
        let localhost = IpAddr::from([127, 0, 0, 1]);
        let (cert, key) = self_signed(dir.path(), localhost).expect("made");
        let (days, server_auth, not_ca) = parsed(&cert);
        assert!((363..=365).contains(&days), "{days} days");
        assert!(server_auth && not_ca);
        // Kept while it has time left.
        let first = std::fs::read(&cert).expect("read");
        self_signed(dir.path(), localhost).expect("kept");
        assert_eq!(std::fs::read(&cert).expect("read"), first);
        // Replaced when it expires within 30 days.
        let key_pair = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(10);
        let soon = params.self_signed(&key_pair).expect("certificate");
        std::fs::write(&cert, soon.pem()).expect("write");
        std::fs::write(&key, key_pair.serialize_pem()).expect("write");
        self_signed(dir.path(), localhost).expect("renewed");
        assert!(parsed(&cert).0 > 300, "renewed for a year");
    }
}
