//! The listener and its connections: each accepted (over TLS unless plain HTTP is configured),
//! served HTTP/1.1 with time limits, and drained at shutdown. Connections are bounded: each
//! holds a file descriptor and some memory, and idle ones cost nothing to their owner. At the limit, a new connection makes room by closing
//! the connection idle the longest (no request in flight); when every one is busy, the new one is
//! closed instead. Either way it is logged once per episode, not per connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use crate::api;

/// Connections kept below the limit by this share end an episode of shedding.
const CALM_SHARE: f64 = 0.9;

pub struct Connections {
    limit: usize,
    next_id: AtomicU64,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    open: HashMap<u64, Entry>,
    shedding: bool,
}

struct Entry {
    last_active: Instant,
    in_flight: usize,
    close: Arc<Notify>,
}

impl Connections {
    pub fn new(limit: usize) -> Arc<Connections> {
        Arc::new(Connections {
            limit: limit.max(1),
            next_id: AtomicU64::new(0),
            registry: Mutex::new(Registry::default()),
        })
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, closing the longest-idle one when at the limit. `None`: every
    /// connection is busy, and the new one must be closed.
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut registry = self.registry();
        if registry.open.len() >= self.limit {
            let idle_longest = registry
                .open
                .iter()
                .filter(|(_, entry)| entry.in_flight == 0)
                .min_by_key(|(_, entry)| entry.last_active)
                .map(|(id, _)| *id);
            if !registry.shedding {
                registry.shedding = true;
                tracing::warn!(
                    limit = self.limit,
                    "too many open connections: closing the longest idle ones"
                );
            }
            let victim = idle_longest.and_then(|id| registry.open.remove(&id))?;
            victim.close.notify_one();
        } else if registry.shedding && (registry.open.len() as f64) < self.limit as f64 * CALM_SHARE
        {
            registry.shedding = false;
            tracing::info!(
                open = registry.open.len(),
                "open connections back under the limit"
            );
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        registry.open.insert(
            id,
            Entry {
                last_active: Instant::now(),
                in_flight: 0,
                close: close.clone(),
            },
        );
        Some(Admitted {
            id,
            connections: self.clone(),
            close,
        })
    }

    /// How many connections are open.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.registry().open.len()
    }
}

/// A registered connection; dropping it deregisters it.
pub struct Admitted {
    id: u64,
    connections: Arc<Connections>,
    close: Arc<Notify>,
}

impl Admitted {
    /// Resolves when the connection must close to make room for another.
    pub async fn closing(&self) {
        self.close.notified().await
    }

    /// A handle for the connection's service, to mark its requests.
    pub fn activity(&self) -> Activity {
        Activity {
            id: self.id,
            connections: self.connections.clone(),
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.registry().open.remove(&self.id);
    }
}

/// Marks the requests of one connection, so that busy connections are never closed for room.
#[derive(Clone)]
pub struct Activity {
    id: u64,
    connections: Arc<Connections>,
}

impl Activity {
    /// A request started; it ends when the returned guard is dropped.
    pub fn request(&self) -> RequestInFlight {
        if let Some(entry) = self.connections.registry().open.get_mut(&self.id) {
            entry.in_flight += 1;
            entry.last_active = Instant::now();
        }
        RequestInFlight(self.clone())
    }
}

pub struct RequestInFlight(Activity);

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        if let Some(entry) = activity.connections.registry().open.get_mut(&activity.id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.last_active = Instant::now();
        }
    }
}

/// Raises the soft limit of open files to the hard one, so that the connection limit, not the
/// process's descriptors, is what bounds connections. Returns the soft limit now in force.
fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open files limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// A client that does not finish its TLS handshake in this time is dropped.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// A client that does not send a request's headers in this time is dropped.
const HEADER_LIMIT: Duration = Duration::from_secs(30);

/// Descriptors kept for the database, logs and the like, besides client connections and
/// key-server checks.
const RESERVED_DESCRIPTORS: u64 = 32;

/// The configured connection limit, lowered to what the open files limit allows after raising
/// it as far as it goes and keeping one descriptor per concurrent key-server check.
pub(super) fn connection_limit(configured: usize, concurrent_checks: usize) -> usize {
    let Some(files) = raise_open_files_limit() else {
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
pub(super) async fn serve_connections(
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

pub(super) async fn shutdown_signal() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_limit_the_longest_idle_connection_makes_room() {
        let connections = Connections::new(2);
        let first = connections.admit().expect("room");
        let second = connections.admit().expect("room");
        // The second is busy; the first, idle the longest, is closed for the third.
        let busy = second.activity().request();
        let third = connections.admit().expect("room made");
        tokio::time::timeout(std::time::Duration::from_secs(1), first.closing())
            .await
            .expect("the idle one is told to close");
        assert_eq!(connections.open(), 2);
        // Both open ones busy: no room.
        let _also_busy = third.activity().request();
        assert!(connections.admit().is_none());
        drop(busy);
        assert!(connections.admit().is_some(), "the second is idle again");
        drop(first);
        drop(second);
        drop(third);
        assert_eq!(connections.open(), 0);
    }
}
