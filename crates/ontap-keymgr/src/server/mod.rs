//! Starting the service: the data dir, the store, the first admin, then serving. The listener and
//! its connections (bounded, with a graceful shutdown on SIGINT or SIGTERM that lets in-flight
//! requests finish) are `connections.rs`; the HTTPS certificate (made at first start when none is
//! configured) is `tls.rs`.

mod connections;
mod tls;

use connections::{Connections, connection_limit, serve_connections, shutdown_signal};
pub use tls::self_signed;
use tls::tls_acceptor;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use tokio::net::TcpListener;

use crate::api;
use crate::config::Config;
use crate::domain::cluster::Cluster;
use crate::domain::security::SecurityChanges;
use crate::domain::users::AdminBootstrap;
use crate::domain::{Service, ServiceOptions};
use crate::store::Store;
use crate::store::copy::{Copied, copy_all};
use crate::store::postgres::PostgresStore;
use crate::store::read_model::ReadModel;
use crate::store::secrets::SecretBox;
use crate::store::sqlite::SqliteStore;

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
    let store = Arc::new(ReadModel::new(store));
    let options = ServiceOptions {
        lockout: config.login,
        monitor: config.health_monitor,
        audit_retention: config.audit_max_records,
    };
    let cluster = Cluster::new(&config.cluster, cluster_uuid);
    let service = Arc::new(Service::new(store, cluster, options));
    service
        .load()
        .await
        .map_err(|e| fail("cannot read the stored settings")(e.to_string()))?;
    apply_configured_security(&service, &config.security).await?;
    let outcome = service
        .accounts
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
